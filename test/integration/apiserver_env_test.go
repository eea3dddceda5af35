package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
	"github.com/bottlerocket-os/brupop-go/internal/apiserver"
)

// testServer is an API server running in the test process with only its RBAC rights.
type testServer struct {
	URL    string
	CAPEM  []byte
	NS     string
	Server *apiserver.Server
	kube   kubernetes.Interface // administrator
	// Stop shuts the server down as SIGTERM would, and waits for it; the test's end does too.
	Stop func()
	// rest is the server's identity; tlsDir holds its certificate.
	rest   *rest.Config
	tlsDir string
	// config, when set, changes the server's Config before New.
	config func(*apiserver.Config)
}

// startAPIServer runs an API server for namespace ns on a random port, acting as the
// brupop-apiserver ServiceAccount of ns bound to the ClusterRoles of config/rbac.
func startAPIServer(t *testing.T, ns string, tune func(*apiserver.Options)) *testServer {
	t.Helper()
	return startAPIServerWith(t, ns, tune, nil)
}

// startAPIServerWith is startAPIServer whose Config config changes (nil: none).
func startAPIServerWith(t *testing.T, ns string, tune func(*apiserver.Options), config func(*apiserver.Config)) *testServer {
	t.Helper()
	kube := kubernetes.NewForConfigOrDie(cluster.Config)
	ts := &testServer{NS: ns, kube: kube, rest: apiserverIdentity(t, kube, ns), tlsDir: t.TempDir(), config: config}
	ts.CAPEM = writeServingCert(t, ts.tlsDir)
	ts.start(t, tune)
	return ts
}

// replica starts another API server of the same namespace, identity and certificate, as a
// second replica of the Deployment is.
func (ts *testServer) replica(t *testing.T, tune func(*apiserver.Options)) *testServer {
	t.Helper()
	r := &testServer{NS: ts.NS, kube: ts.kube, rest: ts.rest, tlsDir: ts.tlsDir, CAPEM: ts.CAPEM}
	r.start(t, tune)
	return r
}

func (ts *testServer) start(t *testing.T, tune func(*apiserver.Options)) {
	t.Helper()
	opts := apiserver.DefaultOptions(ts.NS)
	opts.Port, opts.TLSDir = 0, ts.tlsDir
	opts.EvictionRetryDelay = 200 * time.Millisecond
	if tune != nil {
		tune(&opts)
	}
	cfg := apiserver.Config{Options: opts, REST: ts.rest, Log: testr.NewWithOptions(t, testr.Options{Verbosity: 1})}
	if ts.config != nil {
		ts.config(&cfg)
	}
	srv, err := apiserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, l) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("server: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	ts.URL, ts.Server, ts.Stop = "https://"+l.Addr().String(), srv, stop
}

// apiserverIdentity creates the API server's ServiceAccount in ns, binds it to the ClusterRoles
// of config/rbac/apiserver, and returns a client configuration with a token of it.
func apiserverIdentity(t *testing.T, kube kubernetes.Interface, ns string) *rest.Config {
	t.Helper()
	ctx := context.Background()
	const sa = "brupop-apiserver-service-account"
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "apiserver", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(raw, &role); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, roleName := range []string{role.Name, "system:auth-delegator"} {
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + strings.ReplaceAll(roleName, ":", "-")},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: roleName},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}},
		}
		if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = kube.RbacV1().ClusterRoleBindings().Delete(context.Background(), crb.Name, metav1.DeleteOptions{})
		})
	}
	tr, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(cluster.Config)
	cfg.BearerToken = tr.Status.Token
	cfg.QPS, cfg.Burst = 100, 200
	// RBAC reaches the authorizer through an informer: wait until the bindings count.
	self := kubernetes.NewForConfigOrDie(cfg)
	eventually(t, 10*time.Second, func() error {
		if _, err := self.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
			return err
		}
		_, err := self.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: "x"}}, metav1.CreateOptions{})
		return err
	})
	return cfg
}

// writeServingCert writes tls.crt and tls.key for 127.0.0.1, signed by a new CA, and returns
// the CA certificate.
func writeServingCert(t *testing.T, dir string) []byte {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "brupop-test-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "brupop-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("tls.crt", "CERTIFICATE", leafDER)
	write("tls.key", "PRIVATE KEY", keyDER)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}

// httpClient trusts the server's CA.
func (ts *testServer) httpClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ts.CAPEM)
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

// agent is a simulated node with an agent pod whose bound token is in TokenPath.
type agentIdentity struct {
	Node   *corev1.Node
	Pod    *corev1.Pod
	Token  string
	Client *agentapi.Client
}

// readyNode creates a Ready, schedulable Node (no kubelet: its status is written here) and
// deletes it when the test ends.
func readyNode(t *testing.T, kube kubernetes.Interface, name string, labels map[string]string, unschedulable bool) *corev1.Node {
	t.Helper()
	ctx := context.Background()
	_, err := kube.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.NodeSpec{Unschedulable: unschedulable},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	res := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110"),
	}
	now := metav1.Now()
	status, err := json.Marshal(map[string]any{"status": corev1.NodeStatus{
		Capacity: res, Allocatable: res,
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	node, err := kube.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, status, metav1.PatchOptions{}, "status")
	if err != nil {
		t.Fatal(err)
	}
	return node
}

// agentNodeLabel marks the nodes the test's agent DaemonSet runs on; its value is the namespace.
const agentNodeLabel = "brupop-test/agent"

// newAgent labels node for the namespace's agent DaemonSet, waits for the agent pod the
// DaemonSet controller and the scheduler put there, and gives it a bound token.
func (ts *testServer) newAgent(t *testing.T, node *corev1.Node) *agentIdentity {
	t.Helper()
	ctx := context.Background()
	ts.ensureAgentDaemonSet(t)
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, agentNodeLabel, ts.NS)
	node, err := ts.kube.CoreV1().Nodes().Patch(ctx, node.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	eventually(t, 30*time.Second, func() error {
		pods, err := ts.kube.CoreV1().Pods(ts.NS).List(ctx, metav1.ListOptions{
			LabelSelector: "brupop.bottlerocket.aws/component=agent", FieldSelector: "spec.nodeName=" + node.Name,
		})
		if err != nil {
			return err
		}
		if len(pods.Items) != 1 {
			return fmt.Errorf("%d agent pods on node %s, want 1", len(pods.Items), node.Name)
		}
		pod = &pods.Items[0]
		return nil
	})
	token := boundToken(t, ts.kube, ts.NS, agentapi.AgentServiceAccount, pod, agentapi.TokenAudience)
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	return &agentIdentity{Node: node, Pod: pod, Token: token, Client: &agentapi.Client{
		BaseURL: ts.URL, NodeName: node.Name, NodeUID: string(node.UID), TokenPath: path, HTTPClient: ts.httpClient(),
	}}
}

// clientOf is a client of the agent calling ts, another replica than the one of a.Client.
func (a *agentIdentity) clientOf(ts *testServer) *agentapi.Client {
	return &agentapi.Client{BaseURL: ts.URL, NodeName: a.Node.Name, NodeUID: string(a.Node.UID), TokenPath: a.Client.TokenPath, HTTPClient: ts.httpClient()}
}

// ensureAgentDaemonSet creates the agent ServiceAccount and DaemonSet of the namespace once.
func (ts *testServer) ensureAgentDaemonSet(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	_, err := ts.kube.CoreV1().ServiceAccounts(ts.NS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: agentapi.AgentServiceAccount}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"brupop.bottlerocket.aws/component": "agent"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "brupop-agent"},
		Spec: appsv1.DaemonSetSpec{
			Selector:       &metav1.LabelSelector{MatchLabels: labels},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: agentapi.AgentServiceAccount,
					NodeSelector:       map[string]string{agentNodeLabel: ts.NS},
					Containers:         []corev1.Container{{Name: "agent", Image: "agent"}},
				},
			},
		},
	}
	if _, err := ts.kube.AppsV1().DaemonSets(ts.NS).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func podOn(t *testing.T, kube kubernetes.Interface, ns, name, sa, node string) *corev1.Pod {
	t.Helper()
	pod, err := kube.CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"brupop.bottlerocket.aws/component": "agent"}},
		Spec: corev1.PodSpec{
			NodeName: node, ServiceAccountName: sa,
			Containers: []corev1.Container{{Name: "agent", Image: "agent"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

func boundToken(t *testing.T, kube kubernetes.Interface, ns, sa string, pod *corev1.Pod, audience string) string {
	t.Helper()
	tr, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:      []string{audience},
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// call sends one raw request and returns the status code and body.
func (ts *testServer) call(t *testing.T, method, path string, headers map[string]string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := ts.httpClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// agentHeaders are the headers of a request for node (name, uid) with token.
func agentHeaders(token, name, uid string) map[string]string {
	h := map[string]string{agentapi.HeaderNodeName: name, agentapi.HeaderNodeUID: uid}
	if token != "" {
		h[agentapi.HeaderToken] = token
	}
	return h
}

// fakeKubelet marks the pods of ns bound to a node Running and Ready once they are readyAfter
// old (creation timestamps have a one-second resolution), and removes terminating ones, until
// the test ends.
func fakeKubelet(t *testing.T, kube kubernetes.Interface, ns string, readyAfter time.Duration) {
	t.Helper()
	everyTick(t, 100*time.Millisecond, func(ctx context.Context) {
		if err := kubeletPass(ctx, kube, ns, readyAfter); err != nil && ctx.Err() == nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			t.Logf("fake kubelet: %v", err)
		}
	})
}

func kubeletPass(ctx context.Context, kube kubernetes.Interface, ns string, readyAfter time.Duration) error {
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var errs []error
	for i := range pods.Items {
		p := &pods.Items[i]
		switch {
		case p.DeletionTimestamp != nil:
			errs = append(errs, kube.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}))
		case p.Spec.NodeName != "" && p.Status.Phase != corev1.PodRunning && time.Since(p.CreationTimestamp.Time) >= readyAfter:
			now := metav1.Now()
			p.Status.Phase = corev1.PodRunning
			p.Status.Conditions = []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			}
			_, err := kube.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// metricValue reads one sample of the server's metrics; 0 when absent.
func (ts *testServer) metricValue(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := ts.Server.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	sample:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue sample
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}
