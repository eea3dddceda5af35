package integration

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	brupopv2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
	"github.com/bottlerocket-os/brupop-go/internal/apiserver"
)

func TestAPIServerAgentCreatesAndReportsItsShadow(t *testing.T) {
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	ts := startAPIServer(t, ns, nil)
	a := ts.newAgent(t, readyNode(t, ts.kube, ns+"-a", nil, false))

	brs, err := a.Client.CreateShadow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantOwner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: a.Node.Name, UID: a.Node.UID}}
	if brs.Name != "brs-"+a.Node.Name || brs.Namespace != ns || !cmp.Equal(brs.OwnerReferences, wantOwner) || brs.Spec.State != brupopv2.StateIdle || brs.Spec.Version != nil {
		t.Errorf("created shadow = %s/%s owners %v spec %+v; want brs-%s owned by its Node, spec Idle", brs.Namespace, brs.Name, brs.OwnerReferences, brs.Spec, a.Node.Name)
	}
	again, err := a.Client.CreateShadow(ctx)
	if err != nil || again.UID != brs.UID {
		t.Errorf("second create = %v, %v; want the same shadow", again, err)
	}
	status := &brupopv2.BottlerocketShadowStatus{CurrentVersion: "1.20.0", TargetVersion: "1.21.0", CurrentState: brupopv2.StateIdle}
	for range 5 {
		if err := a.Client.UpdateStatus(ctx, status); err != nil {
			t.Fatal(err)
		}
	}
	var got brupopv2.BottlerocketShadow
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: brs.Name}, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(status, got.Status); diff != "" {
		t.Errorf("status in kube-apiserver (-want +got):\n%s", diff)
	}

	// Seven agent requests of one token: one TokenReview, six answers from the cache.
	api := ts.metricValue(t, "brupop_apiserver_token_reviews_total", map[string]string{"source": "api"})
	cached := ts.metricValue(t, "brupop_apiserver_token_reviews_total", map[string]string{"source": "cache"})
	t.Logf("TokenReviews: %v created, %v answered from the cache", api, cached)
	if api != 1 || cached != 6 {
		t.Errorf("TokenReviews created %v, from cache %v; want 1 and 6", api, cached)
	}
	if code, body := ts.call(t, http.MethodGet, agentapi.PathPing, nil, nil); code != http.StatusOK || body != "pong" {
		t.Errorf("ping = %d %q", code, body)
	}
	code, body := ts.call(t, http.MethodGet, agentapi.PathMetrics, nil, nil)
	if code != http.StatusOK || !strings.Contains(body, `brupop_apiserver_requests_total{code="200",path="PUT /bottlerocket-node-resource"} 5`) {
		t.Errorf("metrics without a token = %d, missing request counts:\n%.2000s", code, body)
	}
}

func TestAPIServerRefusesWhatIsNotTheCallersOwn(t *testing.T) {
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	ts := startAPIServer(t, ns, func(o *apiserver.Options) { o.MaxBodyBytes = 4096 })
	a := ts.newAgent(t, readyNode(t, ts.kube, ns+"-a", nil, false))
	b := readyNode(t, ts.kube, ns+"-b", nil, false)
	if _, err := a.Client.CreateShadow(ctx); err != nil {
		t.Fatal(err)
	}
	reported := &brupopv2.BottlerocketShadowStatus{CurrentVersion: "1.20.0", TargetVersion: "1.21.0", CurrentState: brupopv2.StateIdle}
	if err := a.Client.UpdateStatus(ctx, reported); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "intruder"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	intruder := boundToken(t, ts.kube, ns, "intruder", podOn(t, ts.kube, ns, "intruder", "intruder", a.Node.Name), agentapi.TokenAudience)
	otherAudience := boundToken(t, ts.kube, ns, agentapi.AgentServiceAccount, a.Pod, "someone-else")

	A, B := a.Node, b
	asA := agentHeaders(a.Token, A.Name, string(A.UID))
	asB := agentHeaders(a.Token, B.Name, string(B.UID))
	status := `{"current_version":"1.21.0","target_version":"1.21.0","current_state":"MonitoringUpdate","crash_count":0}`
	selectB := `{"node_selector":{"node_name":"` + B.Name + `","node_uid":"` + string(B.UID) + `"}}`
	tests := []struct {
		name, method, path string
		headers            map[string]string
		body               string
		want               int
	}{
		{"create another node's shadow", http.MethodPost, agentapi.PathShadow, asB, selectB, http.StatusForbidden},
		{"report as another node", http.MethodPut, agentapi.PathShadow, asB, status, http.StatusForbidden},
		{"drain another node", http.MethodPost, agentapi.PathCordonAndDrain, asB, "", http.StatusForbidden},
		{"exclude another node from LB", http.MethodPost, agentapi.PathExcludeFromLB, asB, "", http.StatusForbidden},
		{"own name, another node's UID", http.MethodPut, agentapi.PathShadow, agentHeaders(a.Token, A.Name, string(B.UID)), status, http.StatusForbidden},
		{"body naming another node", http.MethodPost, agentapi.PathShadow, asA, selectB, http.StatusForbidden},
		{"token of another ServiceAccount", http.MethodPut, agentapi.PathShadow, agentHeaders(intruder, A.Name, string(A.UID)), status, http.StatusForbidden},
		{"token for another audience", http.MethodPut, agentapi.PathShadow, agentHeaders(otherAudience, A.Name, string(A.UID)), status, http.StatusUnauthorized},
		{"forged token", http.MethodPut, agentapi.PathShadow, agentHeaders("not-a-token", A.Name, string(A.UID)), status, http.StatusUnauthorized},
		{"no token", http.MethodPut, agentapi.PathShadow, agentHeaders("", A.Name, string(A.UID)), status, http.StatusUnauthorized},
		{"malformed JSON", http.MethodPut, agentapi.PathShadow, asA, `{"current_version":`, http.StatusBadRequest},
		{"invalid status", http.MethodPut, agentapi.PathShadow, asA, `{"current_version":"1.21","target_version":"1.21.0","current_state":"Rebooting"}`, http.StatusBadRequest},
		{"oversized body", http.MethodPut, agentapi.PathShadow, asA, `{"current_version":"` + strings.Repeat("1", 5000) + `"}`, http.StatusRequestEntityTooLarge},
		{"bad drain deadline", http.MethodPost, agentapi.PathCordonAndDrain, withHeader(asA, agentapi.HeaderDrainDeadline, "tomorrow"), "", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := ts.call(t, tt.method, tt.path, tt.headers, strings.NewReader(tt.body))
			if code != tt.want {
				t.Errorf("%s %s = %d %q, want %d", tt.method, tt.path, code, body, tt.want)
			}
			if lines := strings.Count(strings.TrimSpace(body), "\n"); body == "" || lines > 0 {
				t.Errorf("reason %q is not one line", body)
			}
		})
	}

	// Nothing changed in the cluster.
	var brs brupopv2.BottlerocketShadowList
	if err := c.List(ctx, &brs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(brs.Items) != 1 || brs.Items[0].Name != "brs-"+A.Name || !cmp.Equal(brs.Items[0].Status, reported) {
		t.Errorf("shadows after refused requests: %+v; want only brs-%s with the status it reported", brs.Items, A.Name)
	}
	var node corev1.Node
	if err := c.Get(ctx, client.ObjectKey{Name: B.Name}, &node); err != nil {
		t.Fatal(err)
	}
	if node.Spec.Unschedulable || node.Labels[brupopv2.ExcludeFromLBLabel] != "" || len(node.Annotations) != 0 {
		t.Errorf("node B changed: unschedulable %v labels %v annotations %v", node.Spec.Unschedulable, node.Labels, node.Annotations)
	}
}

func withHeader(h map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for hk, hv := range h {
		out[hk] = hv
	}
	return out
}
