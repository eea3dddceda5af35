package sim

import (
	"context"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"

	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
)

// startCluster starts a simulated cluster for a test and stops it when the test ends.
func startCluster(t *testing.T, opts Options) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a control plane and kwok")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return c
}

func TestClusterComesUp(t *testing.T) {
	opts := DefaultOptions()
	opts.Nodes = 3
	opts.Components = DefaultComponents()
	opts.Components.Agent = nil // no agents: nothing changes while the test looks
	c := startCluster(t, opts)
	ctx := t.Context()

	nodes, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 3 {
		t.Fatalf("got %d nodes, want 3", len(nodes.Items))
	}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if !nodeReady(n) || !strings.Contains(n.Status.NodeInfo.OSImage, "1.20.0") {
			t.Errorf("node %s: Ready=%t osImage %q, want Ready on 1.20.0", n.Name, nodeReady(n), n.Status.NodeInfo.OSImage)
		}
	}
	pods, err := c.kube.CoreV1().Pods(WorkloadNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s is %s, want Running", p.Name, p.Status.Phase)
		}
	}
	for _, n := range c.nodes {
		os, err := hostapi.New(hostapi.Options{SocketPath: n.host.SocketPath()}).OS(ctx)
		if err != nil || os.VersionID != "1.20.0" {
			t.Errorf("host of %s: %+v, %v; want version 1.20.0", n.name, os, err)
		}
	}
	checkTokens(t, c)
	checkConversion(t, c)
}

// checkConversion reads a v2 shadow as v1: kube-apiserver converts it through our API server's
// webhook, over TLS with the simulation's CA.
func checkConversion(t *testing.T, c *Cluster) {
	t.Helper()
	ctx := t.Context()
	brs := &v2.BottlerocketShadow{
		ObjectMeta: metav1.ObjectMeta{Name: v2.ShadowName(NodeName(0)), Namespace: Namespace},
		Spec:       v2.BottlerocketShadowSpec{State: v2.StateIdle},
	}
	if err := c.client.Create(ctx, brs); err != nil {
		t.Fatal(err)
	}
	var v1 unstructured.Unstructured
	v1.SetAPIVersion(v2.GroupVersion.Group + "/v1")
	v1.SetKind("BottlerocketShadow")
	if err := c.client.Get(ctx, client.ObjectKeyFromObject(brs), &v1); err != nil {
		t.Fatalf("read the shadow as v1 through the conversion webhook: %v", err)
	}
	if got, _, _ := unstructured.NestedString(v1.Object, "spec", "state"); got != "Idle" {
		t.Errorf("v1 spec.state = %q, want Idle", got)
	}
}

// checkTokens checks that an agent token bound to a node's agent pod authenticates for the
// API server's audience with the pod and node in its extra, and that the API server's and
// controller's identities are real ServiceAccounts that RBAC restricts.
func checkTokens(t *testing.T, c *Cluster) {
	t.Helper()
	ctx := t.Context()
	pod, err := c.agentPod(ctx, NodeName(0))
	if err != nil {
		t.Fatal(err)
	}
	token, err := requestToken(ctx, c.kube, agentapi.AgentServiceAccount, agentapi.TokenAudience, pod)
	if err != nil {
		t.Fatal(err)
	}
	review, err := c.kube.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{agentapi.TokenAudience}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := review.Status
	if !st.Authenticated || st.User.Username != "system:serviceaccount:"+Namespace+":"+agentapi.AgentServiceAccount {
		t.Fatalf("token review: %+v", st)
	}
	if got := st.User.Extra["authentication.kubernetes.io/node-name"]; len(got) != 1 || got[0] != NodeName(0) {
		t.Errorf("token's node-name extra = %v, want [%s]", got, NodeName(0))
	}
	cfg, err := serviceAccountConfig(ctx, c.admin, c.kube, ControllerServiceAccount)
	if err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ssr, err := kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("the controller's token does not authenticate: %v", err)
	}
	if want := "system:serviceaccount:" + Namespace + ":" + ControllerServiceAccount; ssr.Status.UserInfo.Username != want {
		t.Errorf("controller authenticates as %q, want %q", ssr.Status.UserInfo.Username, want)
	}
	_, err = kube.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{})
	if err == nil {
		t.Error("the controller's ServiceAccount may list secrets in kube-system: RBAC is not in force")
	}
}
