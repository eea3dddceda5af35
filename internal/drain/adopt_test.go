package drain

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// upstreamNode is node n1 as upstream's components leave it: cordoned without Brupop's
// annotation, and excluded from load balancers when excluded.
func upstreamNode(excluded bool) *fake.Clientset {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{Unschedulable: true}}
	if excluded {
		n.Labels = map[string]string{v2.ExcludeFromLBLabel: ExcludeFromLBValue}
	}
	return fake.NewClientset(n)
}

// adoptIf is an Adopt that answers yes and counts its calls.
func adoptIf(yes bool, calls *int) func(context.Context, string) (bool, error) {
	return func(_ context.Context, node string) (bool, error) {
		*calls++
		return yes && node == "n1", nil
	}
}

func getNode(t *testing.T, cs *fake.Clientset) *corev1.Node {
	t.Helper()
	n, err := cs.CoreV1().Nodes().Get(context.Background(), "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCordonAdoptsUpstreamsCordonMidUpdate: the drain of a node upstream cordoned and excluded
// mid-update takes both as Brupop's, and the end of the update undoes both.
func TestCordonAdoptsUpstreamsCordonMidUpdate(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	cs, calls := upstreamNode(true), 0
	n := Nodes{Client: cs, Adopt: adoptIf(true, &calls)}
	c, err := n.Cordon(ctx, "n1", t0)
	if err != nil || c != (Cordon{Ours: true, Started: true, Since: t0, Adopted: true}) {
		t.Fatalf("Cordon = %+v, %v; want adopted as ours, started at %s", c, err, t0)
	}
	node := getNode(t, cs)
	if node.Annotations[AnnotationCordoned] == "" || node.Annotations[AnnotationLBExcluded] == "" || !node.Spec.Unschedulable {
		t.Fatalf("node after Cordon: unschedulable %v, annotations %v; want both marked Brupop's", node.Spec.Unschedulable, node.Annotations)
	}
	// Marked, the node is Brupop's: Adopt is not asked again.
	if _, err := n.Cordon(ctx, "n1", t0.Add(time.Minute)); err != nil || calls != 1 {
		t.Fatalf("second Cordon: %v, Adopt asked %d times; want once in all", err, calls)
	}
	if err := n.RemoveExclusionFromLB(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if done, err := n.Uncordon(ctx, "n1"); err != nil || !done {
		t.Fatalf("Uncordon = %v, %v; want the adopted cordon undone", done, err)
	}
	node = getNode(t, cs)
	if _, labelled := node.Labels[v2.ExcludeFromLBLabel]; node.Spec.Unschedulable || labelled || len(node.Annotations) != 0 {
		t.Errorf("node at the end: unschedulable %v, labels %v, annotations %v; want schedulable, not excluded, no annotation",
			node.Spec.Unschedulable, node.Labels, node.Annotations)
	}
	if calls != 1 {
		t.Errorf("Adopt asked %d times, want once", calls)
	}
}

// TestUncordonAdoptsUpstreamsCordonMidUpdate: an agent that takes over after the reboot only
// asks for the uncordon (and the exclusion's removal): both adopt upstream's changes.
func TestUncordonAdoptsUpstreamsCordonMidUpdate(t *testing.T) {
	ctx := context.Background()
	cs, calls := upstreamNode(true), 0
	n := Nodes{Client: cs, Adopt: adoptIf(true, &calls)}
	if err := n.RemoveExclusionFromLB(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if done, err := n.Uncordon(ctx, "n1"); err != nil || !done {
		t.Fatalf("Uncordon = %v, %v; want upstream's cordon undone", done, err)
	}
	node := getNode(t, cs)
	if _, labelled := node.Labels[v2.ExcludeFromLBLabel]; node.Spec.Unschedulable || labelled {
		t.Errorf("node: unschedulable %v, labels %v; want schedulable and not excluded", node.Spec.Unschedulable, node.Labels)
	}
}

// TestAdministratorsCordonOnAnIdleNodeIsKept: without adoption (the shadow Idle) a cordon and an
// exclusion someone else made stay, through a drain and its end.
func TestAdministratorsCordonOnAnIdleNodeIsKept(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, adopt := range []func(context.Context, string) (bool, error){nil, adoptIf(false, new(int))} {
		cs := upstreamNode(true)
		n := Nodes{Client: cs, Adopt: adopt}
		c, err := n.Cordon(ctx, "n1", t0)
		if err != nil || c != (Cordon{Started: true, Since: t0}) {
			t.Fatalf("Cordon = %+v, %v; want not ours, started at %s", c, err, t0)
		}
		if err := n.ExcludeFromLB(ctx, "n1"); err != nil {
			t.Fatal(err)
		}
		if err := n.RemoveExclusionFromLB(ctx, "n1"); err != nil {
			t.Fatal(err)
		}
		if done, err := n.Uncordon(ctx, "n1"); err != nil || done {
			t.Fatalf("Uncordon = %v, %v; want the administrator's cordon kept", done, err)
		}
		node := getNode(t, cs)
		if _, labelled := node.Labels[v2.ExcludeFromLBLabel]; !node.Spec.Unschedulable || !labelled || len(node.Annotations) != 0 {
			t.Errorf("node: unschedulable %v, labels %v, annotations %v; want still cordoned and excluded, no annotation",
				node.Spec.Unschedulable, node.Labels, node.Annotations)
		}
	}
}

// TestExcludeFromLBAdoptsUpstreamsLabel: an agent that excludes the node before its drain finds
// upstream's label and takes it as Brupop's, so that its removal at the end removes it.
func TestExcludeFromLBAdoptsUpstreamsLabel(t *testing.T) {
	ctx := context.Background()
	cs, calls := upstreamNode(true), 0
	n := Nodes{Client: cs, Adopt: adoptIf(true, &calls)}
	if err := n.ExcludeFromLB(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if node := getNode(t, cs); node.Annotations[AnnotationLBExcluded] == "" {
		t.Fatalf("annotations %v, want the label marked Brupop's", node.Annotations)
	}
	if err := n.RemoveExclusionFromLB(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if node := getNode(t, cs); node.Labels[v2.ExcludeFromLBLabel] != "" || node.Annotations[AnnotationLBExcluded] != "" {
		t.Errorf("labels %v, annotations %v; want the exclusion removed", node.Labels, node.Annotations)
	}
}
