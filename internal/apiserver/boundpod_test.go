package apiserver

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
)

// podOnlyReview is the review of agent-1's token by a kube-apiserver before 1.30: no node extras.
func podOnlyReview() Review {
	r := agentReview("", "")
	delete(r.User.Extra, extraNodeName)
	delete(r.User.Extra, extraNodeUID)
	return r
}

func agentPod(uid, node string, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "brupop", Name: "agent-1", UID: types.UID(uid)},
		Spec:       corev1.PodSpec{NodeName: node, ServiceAccountName: agentapi.AgentServiceAccount},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

func TestAuthorizeByBoundPod(t *testing.T) {
	nodes := []runtime.Object{
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", UID: "uid-a"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b", UID: "uid-b"}},
	}
	otherSA := agentPod("pod-uid", "node-a", corev1.PodRunning)
	otherSA.Spec.ServiceAccountName = "default"
	tests := []struct {
		name     string
		pod      *corev1.Pod // nil: none
		node     string
		uid      string
		wantCode int
	}{
		{"own node", agentPod("pod-uid", "node-a", corev1.PodRunning), "node-a", "uid-a", 0},
		{"another node", agentPod("pod-uid", "node-a", corev1.PodRunning), "node-b", "uid-b", http.StatusForbidden},
		{"another node's UID", agentPod("pod-uid", "node-a", corev1.PodRunning), "node-a", "uid-b", http.StatusForbidden},
		{"pod gone", nil, "node-a", "uid-a", http.StatusForbidden},
		{"pod recreated under the same name", agentPod("other-uid", "node-a", corev1.PodRunning), "node-a", "uid-a", http.StatusForbidden},
		{"pod pending", agentPod("pod-uid", "node-a", corev1.PodPending), "node-a", "uid-a", http.StatusForbidden},
		{"pod not scheduled", agentPod("pod-uid", "", corev1.PodPending), "node-a", "uid-a", http.StatusForbidden},
		{"pod of another ServiceAccount", otherSA, "node-a", "uid-a", http.StatusForbidden},
		{"pod on a node that is gone", agentPod("pod-uid", "node-c", corev1.PodRunning), "node-c", "uid-c", http.StatusForbidden},
	}
	for _, informer := range []bool{false, true} {
		for _, tt := range tests {
			name := tt.name + " (live read)"
			if informer {
				name = tt.name + " (informer)"
			}
			t.Run(name, func(t *testing.T) {
				objs := append([]runtime.Object(nil), nodes...)
				if tt.pod != nil {
					objs = append(objs, tt.pod)
				}
				cs := fake.NewClientset(objs...)
				b := &BoundPods{Client: cs, Namespace: "brupop", TTL: 10 * time.Second, MaxEntries: 8}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if informer {
					b.Start(ctx.Done())
					_ = b.podLister()
					if !cache.WaitForCacheSync(ctx.Done(), b.synced) {
						t.Fatal("pod informer did not sync")
					}
					cs.ClearActions()
				}
				c, refusal, err := Authorize(ctx, podOnlyReview(), "brupop", tt.node, tt.uid, b)
				if err != nil {
					t.Fatal(err)
				}
				gotCode := 0
				if refusal != nil {
					gotCode = refusal.Code
				}
				if gotCode != tt.wantCode {
					t.Fatalf("Authorize = %+v, %v; want code %d", c, refusal, tt.wantCode)
				}
				want := Caller{NodeName: tt.node, NodeUID: tt.uid, PodName: "agent-1", PodUID: "pod-uid"}
				if refusal == nil && c != want {
					t.Errorf("caller = %+v, want %+v", c, want)
				}
				for _, a := range cs.Actions() {
					if informer && refusal == nil && a.Matches("get", "pods") {
						t.Errorf("pod read from kube-apiserver, not from the informer")
					}
				}
			})
		}
	}
}

func TestAuthorizeWithoutNodeExtrasNeedsPodNodes(t *testing.T) {
	_, refusal, err := Authorize(context.Background(), podOnlyReview(), "brupop", "node-a", "uid-a", nil)
	if err != nil || refusal == nil || refusal.Code != http.StatusForbidden {
		t.Errorf("Authorize without PodNodes = %v, %v; want 403", refusal, err)
	}
}

func TestAuthorizeFastPathLooksNothingUp(t *testing.T) {
	cs := fake.NewClientset()
	b := &BoundPods{Client: cs, Namespace: "brupop"}
	c, refusal, err := Authorize(context.Background(), agentReview("node-a", "uid-a"), "brupop", "node-a", "uid-a", b)
	if err != nil || refusal != nil || c.NodeName != "node-a" {
		t.Fatalf("Authorize = %+v, %v, %v", c, refusal, err)
	}
	if n := len(cs.Actions()); n != 0 {
		t.Errorf("the fast path made %d API calls: %v", n, cs.Actions())
	}
}

func TestBoundPodsCachesNodeUIDsOnlyWhileTheTokenCacheWould(t *testing.T) {
	cs := fake.NewClientset(agentPod("pod-uid", "node-a", corev1.PodRunning), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", UID: "uid-a"}})
	nodeGets := 0
	cs.PrependReactor("get", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		nodeGets++
		return false, nil, nil
	})
	clk := clocktesting.NewFakePassiveClock(time.Unix(0, 0))
	b := &BoundPods{Client: cs, Namespace: "brupop", Clock: clk, TTL: 10 * time.Second, MaxEntries: 8}
	ctx := context.Background()
	lookup := func(wantRefusal bool) {
		t.Helper()
		_, _, refusal, err := b.NodeOf(ctx, "agent-1", "pod-uid")
		if err != nil || (refusal != nil) != wantRefusal {
			t.Fatalf("NodeOf = %v, %v; want refusal %v", refusal, err, wantRefusal)
		}
	}
	lookup(false)
	lookup(false)
	if nodeGets != 1 {
		t.Errorf("%d node reads for two lookups within the TTL, want 1", nodeGets)
	}
	clk.SetTime(clk.Now().Add(10 * time.Second))
	lookup(false)
	if nodeGets != 2 {
		t.Errorf("an expired node UID was reused")
	}
	// The pod is looked up every time: once gone, the next lookup refuses, cache or not.
	if err := cs.CoreV1().Pods("brupop").Delete(ctx, "agent-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	lookup(true)
}

func TestBoundPodsFailureIsAnErrorNotARefusal(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("get", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	b := &BoundPods{Client: cs, Namespace: "brupop"}
	_, refusal, err := Authorize(context.Background(), podOnlyReview(), "brupop", "node-a", "uid-a", b)
	if err == nil || refusal != nil {
		t.Errorf("Authorize when pods cannot be read = %v, %v; want an error", refusal, err)
	}
}
