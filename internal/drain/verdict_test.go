package drain

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

// TestVerdict checks the answer to a drain request that comes after its deadline, from the
// state of the node and its pods (the fake clientset only serves objects: no logic is faked).
func TestVerdict(t *testing.T) {
	deadline := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	node := func(cordoned bool) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{Unschedulable: cordoned}}
	}
	pod := func(name string, owner metav1.OwnerReference, phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: name, OwnerReferences: []metav1.OwnerReference{owner}},
			Spec: corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Phase: phase}}
	}
	rs := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "rs", Controller: new(true)}
	ds := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agent", UID: "ds", Controller: new(true)}
	daemonSet := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "agent", UID: "ds"}}
	for _, tc := range []struct {
		name    string
		objs    []runtime.Object
		wantErr string // "" for drained
	}{
		{name: "cordoned, only a DaemonSet pod and a finished pod: drained",
			objs: []runtime.Object{node(true), daemonSet, pod("agent-x", ds, corev1.PodRunning), pod("job-1", rs, corev1.PodSucceeded)}},
		{name: "cordoned with a pod left: names it",
			objs:    []runtime.Object{node(true), pod("web-1-abc", rs, corev1.PodRunning)},
			wantErr: "deadline passed at 2026-12-01T10:00:00Z for node n1 with 1 pods left: [app/web-1-abc]"},
		{name: "not cordoned: never drained",
			objs:    []runtime.Object{node(false)},
			wantErr: "for node n1, which is not cordoned"},
		{name: "node gone",
			wantErr: "could not be read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Drainer{Client: fake.NewClientset(tc.objs...)}
			err := d.Verdict(context.Background(), "n1", deadline)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Verdict = %v, want drained", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Verdict = %v, want an error with %q", err, tc.wantErr)
			case tc.wantErr != "" && tc.objs != nil && !errors.Is(err, ErrDeadlineExceeded):
				t.Errorf("Verdict = %v, want it to wrap ErrDeadlineExceeded", err)
			}
		})
	}
}
