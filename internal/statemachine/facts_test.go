package statemachine

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

func pod(node string, phase corev1.PodPhase, ready bool, deleting bool) corev1.Pod {
	p := corev1.Pod{Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: phase}}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
	if deleting {
		now := metav1.Now()
		p.DeletionTimestamp = &now
	}
	return p
}

func TestPodsReadyByNode(t *testing.T) {
	got := PodsReadyByNode([]corev1.Pod{
		pod("a", corev1.PodRunning, true, false),
		pod("b", corev1.PodRunning, false, false),   // not Ready: counts
		pod("c", corev1.PodSucceeded, false, false), // finished: ignored
		pod("d", corev1.PodRunning, false, true),    // being deleted: ignored
		pod("", corev1.PodPending, false, false),    // unscheduled: ignored
	})
	if d := cmp.Diff(map[string]bool{"b": false}, got); d != "" {
		t.Errorf("PodsReadyByNode (-want +got):\n%s", d)
	}
	for name, n := range map[string]*corev1.Node{"a": {}, "b": {}} {
		n.Name = name
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		if f := FactsOf(n, got); !f.Ready || f.PodsReady != (name == "a") {
			t.Errorf("FactsOf(%s) = %+v", name, f)
		}
	}
}

func TestFactsOfCordonedAndMissing(t *testing.T) {
	ours := map[string]string{v2.CordonedAnnotation: ""}
	for name, tc := range map[string]struct {
		node                    *corev1.Node
		cordoned, missing, disr bool
	}{
		"gone":                         {node: nil, missing: true},
		"schedulable":                  {node: &corev1.Node{}, disr: true},
		"cordoned by Brupop":           {node: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Annotations: ours}, Spec: corev1.NodeSpec{Unschedulable: true}}, cordoned: true, disr: true},
		"cordoned by someone else":     {node: &corev1.Node{Spec: corev1.NodeSpec{Unschedulable: true}}, disr: true},
		"annotation left, schedulable": {node: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Annotations: ours}}, disr: true},
	} {
		f := FactsOf(tc.node, nil)
		if f.Cordoned != tc.cordoned || f.Missing != tc.missing || f.Disrupted() != tc.disr {
			t.Errorf("%s: FactsOf = %+v, Disrupted %v; want Cordoned %v, Missing %v, Disrupted %v", name, f, f.Disrupted(), tc.cordoned, tc.missing, tc.disr)
		}
		if tc.node == nil {
			continue
		}
		tc.node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		if f := FactsOf(tc.node, nil); f.Disrupted() != tc.cordoned {
			t.Errorf("%s, Ready: Disrupted = %v, want %v", name, f.Disrupted(), tc.cordoned)
		}
	}
}

func TestOptedIn(t *testing.T) {
	for name, tc := range map[string]struct {
		labels map[string]string
		want   bool
	}{
		"labelled":      {labels: map[string]string{v2.NodeOptInLabel: v2.NodeOptInValue}, want: true},
		"other version": {labels: map[string]string{v2.NodeOptInLabel: "1.0.0"}},
		"no label":      {},
	} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: tc.labels}}
		if got := OptedIn(n); got != tc.want {
			t.Errorf("%s: OptedIn = %v, want %v", name, got, tc.want)
		}
	}
	if OptedIn(nil) {
		t.Error("a missing Node is opted in")
	}
}
