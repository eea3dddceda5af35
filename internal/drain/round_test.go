package drain

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// fakeCluster is a fake clientset holding node n1 and pods on it, whose Eviction API deletes the
// pod unless its name is in blocked, which a PodDisruptionBudget protects (429).
func fakeCluster(t *testing.T, cordoned bool, blocked []string, pods ...string) *fake.Clientset {
	t.Helper()
	objs := []runtime.Object{&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{Unschedulable: cordoned}}}
	for _, name := range pods {
		objs = append(objs, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: name, UID: types.UID(name)},
			Spec:       corev1.PodSpec{NodeName: "n1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning},
		})
	}
	cs := fake.NewClientset(objs...)
	cs.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		ev := action.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
		if slices.Contains(blocked, ev.Name) {
			return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
		}
		gvr := corev1.SchemeGroupVersion.WithResource("pods")
		if err := cs.Tracker().Delete(gvr, ev.Namespace, ev.Name); err != nil {
			return true, nil, err
		}
		return true, ev, nil
	})
	return cs
}

func fastDrainer(cs *fake.Clientset, round time.Duration) *Drainer {
	return &Drainer{Client: cs, RoundTime: round, RetryDelay: 20 * time.Millisecond, PollInterval: 10 * time.Millisecond}
}

func podsOnNode(t *testing.T, cs *fake.Clientset) []string {
	t.Helper()
	list, err := cs.CoreV1().Pods("app").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list.Items {
		names = append(names, p.Name)
	}
	return names
}

func TestRoundDrainsWhatNoBudgetProtects(t *testing.T) {
	cs := fakeCluster(t, true, nil, "web-1", "web-2")
	if err := fastDrainer(cs, time.Minute).Round(context.Background(), "n1", time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("Round = %v, want drained", err)
	}
	if left := podsOnNode(t, cs); len(left) != 0 {
		t.Errorf("pods after a drained round: %v, want none", left)
	}
}

func TestRoundEndsWithThePodsLeft(t *testing.T) {
	cs := fakeCluster(t, true, []string{"db-0"}, "db-0", "web-1")
	start := time.Now()
	err := fastDrainer(cs, 300*time.Millisecond).Round(context.Background(), "n1", start.Add(time.Hour))
	var left *PodsLeftError
	if !errors.As(err, &left) || !errors.Is(err, ErrPodsLeft) || errors.Is(err, ErrDeadlineExceeded) {
		t.Fatalf("Round = %v, want pods left before the deadline", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a 300ms round took %s", took)
	}
	want := &PodsLeftError{Node: "n1", Pods: []string{"app/db-0"}, Blocked: []string{"app/db-0"}}
	if diff := cmp.Diff(want, left); diff != "" {
		t.Errorf("pods left (-want +got):\n%s", diff)
	}
	if got := podsOnNode(t, cs); !slices.Equal(got, []string{"db-0"}) {
		t.Errorf("pods after the round: %v, want only the protected db-0", got)
	}
}

func TestRoundAtTheDeadlineIsTheVerdict(t *testing.T) {
	cs := fakeCluster(t, true, []string{"db-0"}, "db-0")
	deadline := time.Now().Add(200 * time.Millisecond)
	err := fastDrainer(cs, time.Minute).Round(context.Background(), "n1", deadline)
	var left *PodsLeftError
	if !errors.As(err, &left) || !errors.Is(err, ErrDeadlineExceeded) || !left.Deadline.Equal(deadline) {
		t.Fatalf("Round = %v, want the deadline passed with pods left", err)
	}
	// Asked again past the deadline, it evicts nothing and answers from the cluster.
	cs.PrependReactor("create", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() == "eviction" {
			t.Errorf("eviction of %s past the deadline", action.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction).Name)
		}
		return false, nil, nil
	})
	err = fastDrainer(cs, time.Minute).Round(context.Background(), "n1", deadline)
	if !errors.As(err, &left) || !errors.Is(err, ErrDeadlineExceeded) || !slices.Equal(left.Pods, []string{"app/db-0"}) {
		t.Errorf("Round past the deadline = %v, want the verdict naming app/db-0", err)
	}
}

func TestRoundStopsWhenTheNodeIsUncordoned(t *testing.T) {
	cs := fakeCluster(t, true, []string{"db-0"}, "db-0")
	done := make(chan error, 1)
	go func() {
		done <- fastDrainer(cs, time.Minute).Round(context.Background(), "n1", time.Now().Add(time.Hour))
	}()
	if _, err := cs.CoreV1().Nodes().Patch(context.Background(), "n1", types.MergePatchType,
		[]byte(`{"spec":{"unschedulable":false}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrUncordoned) {
			t.Errorf("Round = %v, want ErrUncordoned", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the round went on for 10s after the node was uncordoned")
	}
}

func TestRoundCancelledIsNotDrained(t *testing.T) {
	cs := fakeCluster(t, true, []string{"db-0"}, "db-0")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := fastDrainer(cs, time.Minute).Round(ctx, "n1", time.Now().Add(time.Hour))
	if err == nil || errors.Is(err, ErrPodsLeft) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Round with its context ended = %v, want the context's error", err)
	}
}

func TestCordonKeepsItsTime(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	cs := fakeCluster(t, false, nil)
	n := Nodes{Client: cs}
	c, err := n.Cordon(ctx, "n1", t0)
	if err != nil || c != (Cordon{Ours: true, Started: true, Since: t0}) {
		t.Fatalf("first Cordon = %+v, %v; want ours, started at %s", c, err, t0)
	}
	// Asked again later (by any replica), the cordon time is the first one.
	c, err = n.Cordon(ctx, "n1", t0.Add(time.Minute))
	if err != nil || c != (Cordon{Ours: true, Since: t0}) {
		t.Errorf("second Cordon = %+v, %v; want ours since %s", c, err, t0)
	}
	if done, err := n.Uncordon(ctx, "n1"); err != nil || !done {
		t.Fatalf("Uncordon = %v, %v", done, err)
	}
	node, err := cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if node.Spec.Unschedulable || len(node.Annotations) != 0 {
		t.Errorf("node after Uncordon: unschedulable %v, annotations %v; want schedulable, none", node.Spec.Unschedulable, node.Annotations)
	}
}

func TestCordonOfAnAdministratorsCordon(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	cs := fakeCluster(t, true, nil)
	n := Nodes{Client: cs}
	c, err := n.Cordon(ctx, "n1", t0)
	if err != nil || c != (Cordon{Started: true, Since: t0}) {
		t.Fatalf("Cordon = %+v, %v; want not ours, started at %s", c, err, t0)
	}
	if done, err := n.Uncordon(ctx, "n1"); err != nil || done {
		t.Fatalf("Uncordon = %v, %v; want the node left cordoned", done, err)
	}
	node, err := cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !node.Spec.Unschedulable || len(node.Annotations) != 0 {
		t.Errorf("node after Uncordon: unschedulable %v, annotations %v; want still cordoned, no cordon time", node.Spec.Unschedulable, node.Annotations)
	}
}

// TestRoundBegunAtTheDeadlineIsTheVerdict: a round whose time is up before its pods are even
// listed (here the list takes 100ms of a 20ms round) still answers the verdict naming them.
func TestRoundBegunAtTheDeadlineIsTheVerdict(t *testing.T) {
	cs := fakeCluster(t, true, []string{"db-0"}, "db-0")
	cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		<-time.After(100 * time.Millisecond)
		return false, nil, nil
	})
	err := fastDrainer(cs, time.Minute).Round(context.Background(), "n1", time.Now().Add(20*time.Millisecond))
	var left *PodsLeftError
	if !errors.As(err, &left) || !errors.Is(err, ErrDeadlineExceeded) || !slices.Equal(left.Pods, []string{"app/db-0"}) {
		t.Errorf("Round = %v, want the verdict naming app/db-0", err)
	}
}
