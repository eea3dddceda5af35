package apiserver

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

func agentReview(node, nodeUID string) Review {
	return Review{
		Authenticated: true,
		Audiences:     []string{"brupop-apiserver"},
		User: authenticationv1.UserInfo{
			Username: "system:serviceaccount:brupop:brupop-agent-service-account",
			Extra: map[string]authenticationv1.ExtraValue{
				extraPodName: {"agent-1"}, extraPodUID: {"pod-uid"},
				extraNodeName: {node}, extraNodeUID: {nodeUID},
			},
		},
	}
}

func TestAuthorize(t *testing.T) {
	mutate := func(f func(*Review)) Review {
		r := agentReview("node-a", "uid-a")
		f(&r)
		return r
	}
	tests := []struct {
		name     string
		review   Review
		node     string
		uid      string
		wantCode int
	}{
		{"own node", agentReview("node-a", "uid-a"), "node-a", "uid-a", 0},
		{"another node's name", agentReview("node-a", "uid-a"), "node-b", "uid-a", http.StatusForbidden},
		{"another node's UID", agentReview("node-a", "uid-a"), "node-a", "uid-b", http.StatusForbidden},
		{"invalid token", mutate(func(r *Review) { r.Authenticated, r.Error = false, "expired" }), "node-a", "uid-a", http.StatusUnauthorized},
		{"other audience", mutate(func(r *Review) { r.Audiences = []string{"other"} }), "node-a", "uid-a", http.StatusUnauthorized},
		{"no audience", mutate(func(r *Review) { r.Audiences = nil }), "node-a", "uid-a", http.StatusUnauthorized},
		{"other service account", mutate(func(r *Review) { r.User.Username = "system:serviceaccount:brupop:default" }), "node-a", "uid-a", http.StatusForbidden},
		{"other namespace", mutate(func(r *Review) {
			r.User.Username = "system:serviceaccount:other:brupop-agent-service-account"
		}), "node-a", "uid-a", http.StatusForbidden},
		{"not pod-bound", mutate(func(r *Review) { r.User.Extra = nil }), "node-a", "uid-a", http.StatusForbidden},
		{"two node names", mutate(func(r *Review) { r.User.Extra[extraNodeName] = []string{"node-a", "node-b"} }), "node-a", "uid-a", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, refusal, err := Authorize(context.Background(), tt.review, "brupop", tt.node, tt.uid, nil)
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
			if refusal == nil {
				want := Caller{NodeName: "node-a", NodeUID: "uid-a", PodName: "agent-1", PodUID: "pod-uid"}
				if diff := cmp.Diff(want, c); diff != "" {
					t.Errorf("caller (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestTokenReviewerCache(t *testing.T) {
	kube := fake.NewClientset()
	reviews := 0
	kube.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		reviews++
		tr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenReview)
		tr.Status = authenticationv1.TokenReviewStatus{Authenticated: tr.Spec.Token == "good", Audiences: tr.Spec.Audiences}
		return true, tr, nil
	})
	clk := clocktesting.NewFakePassiveClock(time.Unix(0, 0))
	hits := 0
	r := &TokenReviewer{Client: kube, Clock: clk, TTL: 10 * time.Second, MaxEntries: 2, OnLookup: func(hit bool) {
		if hit {
			hits++
		}
	}}
	ctx := context.Background()
	review := func(token string, wantAuth bool) {
		t.Helper()
		rev, err := r.Review(ctx, token)
		if err != nil || rev.Authenticated != wantAuth {
			t.Fatalf("Review(%s) = %+v, %v; want authenticated %v", token, rev, err, wantAuth)
		}
	}
	for range 5 {
		review("good", true)
		review("bad", false)
	}
	// The good token is reviewed once and then served from the cache; forged tokens are never
	// cached, so they cannot push valid answers out.
	if reviews != 6 || hits != 4 {
		t.Errorf("after 10 reviews of 2 tokens: %d TokenReviews, %d cache hits; want 6, 4", reviews, hits)
	}
	for _, forged := range []string{"third", "fourth", "fifth"} {
		review(forged, false)
	}
	if r.Len() != 1 {
		t.Errorf("cache holds %d answers, want only the good one", r.Len())
	}
	before := reviews
	review("good", true)
	if reviews != before {
		t.Errorf("forged tokens pushed the good answer out of the cache")
	}
	clk.SetTime(clk.Now().Add(10 * time.Second))
	before = reviews
	review("good", true)
	if reviews != before+1 {
		t.Errorf("an expired answer was reused")
	}
}
