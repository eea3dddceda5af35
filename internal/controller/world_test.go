package controller

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

func pod(ns, name, node string, labels map[string]string, ready corev1.ConditionStatus) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:   corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}}}
}

func TestReadPodsFindsNodesWithUnreadySelectedPods(t *testing.T) {
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	app := map[string]string{"app": "critical"}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		pod("a", "ok", "n1", app, corev1.ConditionTrue),
		pod("b", "starting", "n2", app, corev1.ConditionFalse),
		pod("a", "other", "n3", map[string]string{"app": "other"}, corev1.ConditionFalse),
	).Build()
	r := NewReconciler(c, c, nil, nil, Options{Namespace: "ns"})
	w := &world{nodes: map[string]*corev1.Node{}}
	if err := r.readPods(context.Background(), w, &metav1.LabelSelector{MatchLabels: app}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]bool{"n2": false}, w.podsReady); diff != "" {
		t.Errorf("podsReady mismatch (-want +got):\n%s", diff)
	}
	n2 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2", Labels: map[string]string{v2.NodeOptInLabel: v2.NodeOptInValue}},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	if f := statemachine.FactsOf(n2, w.podsReady); !f.Ready || f.PodsReady {
		t.Errorf("statemachine.FactsOf(n2) = %+v, want Ready with pods not Ready", f)
	}
	if f := statemachine.FactsOf(nil, w.podsReady); f.Ready {
		t.Errorf("nodeFacts of a missing Node = %+v, want not Ready", f)
	}
}
