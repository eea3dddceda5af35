package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	brupopv2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
	"github.com/bottlerocket-os/brupop-go/internal/apiserver"
)

// TestAPIServerAuthorizesTokensWithoutNodeByTheirPod runs the API server against the real
// TokenReviews of real bound tokens, minus the node extras, which kube-apiserver adds only from
// 1.30 on: the server must take the node from the bound pod, and refuse when that pod is not
// the token's, Running on the node the request names.
func TestAPIServerAuthorizesTokensWithoutNodeByTheirPod(t *testing.T) {
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	var dropped atomic.Int64
	dropNode := func(s *authenticationv1.TokenReviewStatus) {
		for _, k := range []string{"authentication.kubernetes.io/node-name", "authentication.kubernetes.io/node-uid"} {
			if _, ok := s.User.Extra[k]; ok {
				delete(s.User.Extra, k)
				dropped.Add(1)
			}
		}
	}
	// The longest token cache, so that a token's review outlives its pod, as it may in production.
	ts := startAPIServerWith(t, ns, func(o *apiserver.Options) { o.TokenCacheTTL = time.Minute },
		func(cfg *apiserver.Config) { cfg.TokenReviewFilter = dropNode })
	a := ts.newAgent(t, readyNode(t, ts.kube, ns+"-a", nil, false))
	B := readyNode(t, ts.kube, ns+"-b", nil, false)
	setPodPhase(t, ts.kube, a.Pod.Namespace, a.Pod.Name, corev1.PodRunning)

	// Own node: authorized.
	if _, err := a.Client.CreateShadow(ctx); err != nil {
		t.Fatal(err)
	}
	reported := &brupopv2.BottlerocketShadowStatus{CurrentVersion: "1.20.0", TargetVersion: "1.21.0", CurrentState: brupopv2.StateIdle}
	if err := a.Client.UpdateStatus(ctx, reported); err != nil {
		t.Fatal(err)
	}
	if dropped.Load() == 0 {
		t.Fatal("the real TokenReview carried no node extras to drop: the test would not test the pod lookup")
	}

	// Another node: refused.
	status := `{"current_version":"1.21.0","target_version":"1.21.0","current_state":"MonitoringUpdate","crash_count":0}`
	asB := agentHeaders(a.Token, B.Name, string(B.UID))
	for _, r := range []struct{ name, method, path, body string }{
		{"create another node's shadow", http.MethodPost, agentapi.PathShadow, ""},
		{"report as another node", http.MethodPut, agentapi.PathShadow, status},
		{"drain another node", http.MethodPost, agentapi.PathCordonAndDrain, ""},
	} {
		if code, body := ts.call(t, r.method, r.path, asB, strings.NewReader(r.body)); code != http.StatusForbidden || !strings.Contains(body, "not on node "+B.Name) {
			t.Errorf("%s = %d %q, want 403 naming node %s", r.name, code, body, B.Name)
		}
	}
	if code, body := ts.call(t, http.MethodPut, agentapi.PathShadow, agentHeaders(a.Token, a.Node.Name, string(B.UID)), strings.NewReader(status)); code != http.StatusForbidden {
		t.Errorf("own name, another node's UID = %d %q, want 403", code, body)
	}
	var brs brupopv2.BottlerocketShadow
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "brs-" + B.Name}, &brs); !apierrors.IsNotFound(err) {
		t.Errorf("shadow of node B after refused requests: %v", err)
	}

	// A pod of its own (not the DaemonSet's), so that it can be pending, deleted and recreated
	// under the same name.
	D := readyNode(t, ts.kube, ns+"-d", nil, false)
	d := podOn(t, ts.kube, ns, "agent-d", agentapi.AgentServiceAccount, D.Name)
	dToken := boundToken(t, ts.kube, ns, agentapi.AgentServiceAccount, d, agentapi.TokenAudience)
	asD := agentHeaders(dToken, D.Name, string(D.UID))
	createAsD := func() (int, string) {
		return ts.call(t, http.MethodPost, agentapi.PathShadow, asD, strings.NewReader(""))
	}
	if code, body := createAsD(); code != http.StatusForbidden || !strings.Contains(body, "not Running") {
		t.Errorf("pod not Running: %d %q, want 403 saying so", code, body)
	}
	setPodPhase(t, ts.kube, ns, d.Name, corev1.PodRunning)
	if code, body := createAsD(); code != http.StatusOK {
		t.Fatalf("pod Running on its node: %d %q, want 200", code, body)
	}

	// The token's review stays cached; the pod it is bound to goes.
	if err := ts.kube.CoreV1().Pods(ns).Delete(ctx, d.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if code, body := createAsD(); code != http.StatusForbidden || !strings.Contains(body, "gone") {
			return fmt.Errorf("pod deleted: %d %q, want 403 saying it is gone", code, body)
		}
		return nil
	})

	// Another pod under the same name, Running on the same node: not the token's.
	eventually(t, 10*time.Second, func() error {
		_, err := ts.kube.CoreV1().Pods(ns).Get(ctx, d.Name, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("pod %s not gone yet: %w", d.Name, err)
		}
		return nil
	})
	again := podOn(t, ts.kube, ns, d.Name, agentapi.AgentServiceAccount, D.Name)
	setPodPhase(t, ts.kube, ns, again.Name, corev1.PodRunning)
	eventually(t, 10*time.Second, func() error {
		if code, body := createAsD(); code != http.StatusForbidden || !strings.Contains(body, "is now UID "+string(again.UID)) {
			return fmt.Errorf("pod recreated: %d %q, want 403 naming its new UID", code, body)
		}
		return nil
	})
	// The watch the server's pod cache makes is one kube-apiserver serves to the server's
	// identity, and holds only the agent ServiceAccount's pods.
	if _, err := ts.kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	podOn(t, ts.kube, ns, "other", "other", D.Name)
	pods, err := kubernetes.NewForConfigOrDie(ts.rest).CoreV1().Pods(ns).List(ctx, metav1.ListOptions{FieldSelector: "spec.serviceAccountName=" + agentapi.AgentServiceAccount})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 {
		t.Errorf("the agent ServiceAccount's pods: %d, want 2 (the DaemonSet's and %s)", len(pods.Items), d.Name)
	}
	// The new pod's own token is authorized.
	newToken := boundToken(t, ts.kube, ns, agentapi.AgentServiceAccount, again, agentapi.TokenAudience)
	if code, body := ts.call(t, http.MethodPost, agentapi.PathShadow, agentHeaders(newToken, D.Name, string(D.UID)), strings.NewReader("")); code != http.StatusOK {
		t.Errorf("the recreated pod's own token: %d %q, want 200", code, body)
	}
}

// setPodPhase writes phase into the pod's status, as its kubelet would.
func setPodPhase(t *testing.T, kube kubernetes.Interface, ns, name string, phase corev1.PodPhase) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		p, err := kube.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Status.Phase = phase
		_, err = kube.CoreV1().Pods(ns).UpdateStatus(context.Background(), p, metav1.UpdateOptions{})
		return err
	})
}
