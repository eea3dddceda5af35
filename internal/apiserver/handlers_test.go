package apiserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/clock"

	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
	"github.com/bottlerocket-os/brupop-go/internal/drain"
)

// The fake cluster of these tests: node n1 (UID uid-1) whose agent presents token "token-n1";
// pods in namespace app whose names start with "db-" are protected by a PodDisruptionBudget.
const (
	testNode  = "n1"
	testUID   = "uid-1"
	testToken = "token-n1"
)

// fakeCluster returns a fake clientset holding objs, which answers TokenReviews for testToken as
// kube-apiserver would for the agent pod of n1, and whose Eviction API deletes a pod unless a PDB
// protects it (429).
func fakeCluster(t *testing.T, objs ...runtime.Object) *fake.Clientset {
	t.Helper()
	cs := fake.NewClientset(objs...)
	cs.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		tr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenReview).DeepCopy()
		if tr.Spec.Token == testToken {
			rev := agentReview(testNode, testUID)
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, Audiences: rev.Audiences, User: rev.User}
		} else {
			tr.Status = authenticationv1.TokenReviewStatus{Error: "invalid bearer token"}
		}
		return true, tr, nil
	})
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		ev := a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
		if strings.HasPrefix(ev.Name, "db-") {
			return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
		}
		return true, ev, cs.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), ev.Namespace, ev.Name)
	})
	return cs
}

func node(annotations map[string]string, cordoned bool) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: testNode, UID: testUID, Annotations: annotations},
		Spec:       corev1.NodeSpec{Unschedulable: cordoned},
	}
}

func pod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: name, UID: types.UID(name)},
		Spec:       corev1.PodSpec{NodeName: testNode}, Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

// newHandler builds the server's handler on cs, as Serve does, with drain rounds of round.
func newHandler(t *testing.T, cs *fake.Clientset, round time.Duration, options ...func(*Options)) http.Handler {
	t.Helper()
	opts := DefaultOptions("brupop")
	opts.DrainPollTime = round
	for _, o := range options {
		o(&opts)
	}
	s := &Server{opts: opts, log: testr.New(t), clock: clock.RealClock{}, kube: cs, registry: prometheus.NewRegistry()}
	s.metrics = newMetrics(s.registry)
	s.reviewer = &TokenReviewer{Client: cs, Clock: s.clock}
	s.nodes = drain.Nodes{Client: cs}
	s.drainer = &drain.Drainer{Client: cs, RoundTime: round, RetryDelay: 20 * time.Millisecond, PollInterval: 10 * time.Millisecond, Observer: s.observe}
	return s.handler(nodeEvents{})
}

// request is an agent request of n1 with token, and the extra headers (name, value pairs).
func request(ctx context.Context, method, path, token, body string, headers ...string) *http.Request {
	r := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
	r.Header.Set(agentapi.HeaderNodeName, testNode)
	r.Header.Set(agentapi.HeaderNodeUID, testUID)
	if token != "" {
		r.Header.Set(agentapi.HeaderToken, token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandlerRefusesWhatItMustNotServe(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		req      *http.Request
		wantCode int
		wantBody string
	}{
		{"no token", request(ctx, http.MethodPost, agentapi.PathUncordon, "", ""), http.StatusUnauthorized, "missing BrupopK8sAuthToken"},
		{"a token kube-apiserver rejects", request(ctx, http.MethodPost, agentapi.PathUncordon, "forged", ""), http.StatusUnauthorized, ""},
		{"another node's name", request(ctx, http.MethodPost, agentapi.PathCordonAndDrain, testToken, "", agentapi.HeaderNodeName, "n2"), http.StatusForbidden, ""},
		{"no node headers", request(ctx, http.MethodPost, agentapi.PathUncordon, testToken, "", agentapi.HeaderNodeName, "", agentapi.HeaderNodeUID, ""), http.StatusBadRequest, "missing"},
		{"malformed status", request(ctx, http.MethodPut, agentapi.PathShadow, testToken, `{"current_state":`), http.StatusBadRequest, "malformed JSON body"},
		{"invalid status", request(ctx, http.MethodPut, agentapi.PathShadow, testToken, `{"current_version":"x","target_version":"1.0.0","current_state":"Idle"}`), http.StatusBadRequest, `current_version "x"`},
		{"too large a status", request(ctx, http.MethodPut, agentapi.PathShadow, testToken, `{"x":"`+strings.Repeat("a", DefaultMaxBodyBytes)+`"}`), http.StatusRequestEntityTooLarge, ""},
		{"a body naming another node", request(ctx, http.MethodPost, agentapi.PathShadow, testToken, `{"node_selector":{"node_name":"n2","node_uid":"uid-2"}}`), http.StatusForbidden, "body names node n2"},
		{"a drain deadline that is no time", request(ctx, http.MethodPost, agentapi.PathCordonAndDrain, testToken, "", agentapi.HeaderDrainDeadline, "tomorrow"), http.StatusBadRequest, "not an RFC 3339 time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fakeCluster(t, node(nil, false))
			w := serve(newHandler(t, cs, time.Second), tt.req)
			if w.Code != tt.wantCode || !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Errorf("answer %d %q, want %d with %q", w.Code, w.Body.String(), tt.wantCode, tt.wantBody)
			}
			n, err := cs.CoreV1().Nodes().Get(ctx, testNode, metav1.GetOptions{})
			if err != nil || n.Spec.Unschedulable {
				t.Errorf("node after a refused request: unschedulable %v (%v), want untouched", n.Spec.Unschedulable, err)
			}
		})
	}
}

func TestDrainRoundAnswersDrained(t *testing.T) {
	ctx := context.Background()
	cs := fakeCluster(t, node(nil, false), pod("web-1"), pod("web-2"))
	deadline := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	w := serve(newHandler(t, cs, time.Minute), request(ctx, http.MethodPost, agentapi.PathCordonAndDrain, testToken, "",
		agentapi.HeaderDrainDeadline, deadline.Format(time.RFC3339)))
	if w.Code != http.StatusOK {
		t.Fatalf("answer %d %q, want 200 (drained)", w.Code, w.Body.String())
	}
	if got := w.Header().Get(agentapi.HeaderDrainDeadline); got != deadline.Format(time.RFC3339) {
		t.Errorf("answered deadline %q, want the requested %s", got, deadline.Format(time.RFC3339))
	}
	n, _ := cs.CoreV1().Nodes().Get(ctx, testNode, metav1.GetOptions{})
	if !n.Spec.Unschedulable || n.Annotations[drain.AnnotationCordoned] == "" || n.Annotations[drain.AnnotationCordonTime] == "" {
		t.Errorf("node after the drain: unschedulable %v, annotations %v; want cordoned by Brupop with its cordon time", n.Spec.Unschedulable, n.Annotations)
	}
	if pods, _ := cs.CoreV1().Pods("app").List(ctx, metav1.ListOptions{}); len(pods.Items) != 0 {
		t.Errorf("%d pods left after a drained answer", len(pods.Items))
	}
}

func TestDrainRoundAnswersThePodsLeft(t *testing.T) {
	ctx := context.Background()
	cs := fakeCluster(t, node(nil, false), pod("db-0"), pod("web-1"))
	start := time.Now()
	// No deadline asked, as upstream's agents: held to --max-drain-timeout, in rounds of a sixth.
	capped := func(o *Options) { o.MaxDrainTimeout = 6 * time.Second }
	w := serve(newHandler(t, cs, 300*time.Millisecond, capped), request(ctx, http.MethodPost, agentapi.PathCordonAndDrain, testToken, ""))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "1 pods left: [app/db-0]") ||
		!strings.Contains(w.Body.String(), "blocked by a PodDisruptionBudget: [app/db-0]") || w.Header().Get("Retry-After") == "" {
		t.Fatalf("answer %d %q, want 503 naming the blocked app/db-0, with Retry-After", w.Code, w.Body.String())
	}
	if took := time.Since(start); took < time.Second || took > 10*time.Second {
		t.Errorf("a round of a sixth of 6s answered after %s", took)
	}
	// The deadline: --max-drain-timeout, counted from the cordon time it wrote.
	n, _ := cs.CoreV1().Nodes().Get(ctx, testNode, metav1.GetOptions{})
	since, err := time.Parse(time.RFC3339, n.Annotations[drain.AnnotationCordonTime])
	if err != nil || !n.Spec.Unschedulable {
		t.Fatalf("node after the round: unschedulable %v, cordon time %v; want cordoned with a cordon time", n.Spec.Unschedulable, err)
	}
	if got, want := w.Header().Get(agentapi.HeaderDrainDeadline), since.Add(6*time.Second).Format(time.RFC3339); got != want {
		t.Errorf("answered deadline %q, want the cordon time plus --max-drain-timeout, %s", got, want)
	}
	if pods, _ := cs.CoreV1().Pods("app").List(ctx, metav1.ListOptions{}); len(pods.Items) != 1 {
		t.Errorf("%d pods left, want only db-0", len(pods.Items))
	}
}

// TestDrainPastTheCapIsTheVerdict: a node cordoned longer than --max-drain-timeout ago gets the
// cluster's verdict, whatever deadline the agent asks for, from any server instance.
func TestDrainPastTheCapIsTheVerdict(t *testing.T) {
	ctx := context.Background()
	since := time.Now().Add(-2 * DefaultMaxDrainTimeout).UTC().Truncate(time.Second)
	annotations := map[string]string{drain.AnnotationCordoned: "true", drain.AnnotationCordonTime: since.Format(time.RFC3339)}
	cs := fakeCluster(t, node(annotations, true), pod("db-0"))
	evictions := 0
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "eviction" {
			evictions++
		}
		return false, nil, nil
	})
	asked := time.Now().Add(time.Hour).Format(time.RFC3339)
	var answers []string
	for range 2 { // two servers, as two replicas or a restart: no drain state in either
		w := serve(newHandler(t, cs, time.Minute), request(ctx, http.MethodPost, agentapi.PathCordonAndDrain, testToken, "",
			agentapi.HeaderDrainDeadline, asked))
		if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "deadline passed") || !strings.Contains(w.Body.String(), "[app/db-0]") {
			t.Errorf("answer %d %q, want 500: the deadline passed with app/db-0 left", w.Code, w.Body.String())
		}
		if got, want := w.Header().Get(agentapi.HeaderDrainDeadline), since.Add(DefaultMaxDrainTimeout).Format(time.RFC3339); got != want {
			t.Errorf("answered deadline %q, want the cordon time plus the cap, %s", got, want)
		}
		answers = append(answers, w.Body.String())
	}
	if !slices.Equal(answers[:1], answers[1:]) {
		t.Errorf("the second server answered %q, the first %q", answers[1], answers[0])
	}
	if evictions != 0 {
		t.Errorf("%d evictions past the deadline, want none", evictions)
	}
}

func TestDrainRoundCancelledIsNotSuccess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	cs := fakeCluster(t, node(nil, false), pod("db-0"))
	w := serve(newHandler(t, cs, time.Minute), request(ctx, http.MethodPost, agentapi.PathCordonAndDrain, testToken, ""))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("answer of a round whose client left: %d %q, want 503", w.Code, w.Body.String())
	}
}

func TestUncordonRemovesTheCordonTime(t *testing.T) {
	ctx := context.Background()
	cs := fakeCluster(t, node(nil, false))
	h := newHandler(t, cs, time.Minute)
	if w := serve(h, request(ctx, http.MethodPost, agentapi.PathCordonAndDrain, testToken, "")); w.Code != http.StatusOK {
		t.Fatalf("drain of an empty node: %d %q", w.Code, w.Body.String())
	}
	if w := serve(h, request(ctx, http.MethodPost, agentapi.PathUncordon, testToken, "")); w.Code != http.StatusOK {
		t.Fatalf("uncordon: %d %q", w.Code, w.Body.String())
	}
	n, _ := cs.CoreV1().Nodes().Get(ctx, testNode, metav1.GetOptions{})
	if n.Spec.Unschedulable || len(n.Annotations) != 0 {
		t.Errorf("node after uncordon: unschedulable %v, annotations %v; want schedulable, no annotation", n.Spec.Unschedulable, n.Annotations)
	}
}

// TestUpstreamRounds: a request without a deadline is held to --max-drain-timeout (or a shorter
// --drain-timeout), in rounds long enough for the six tries of upstream's agent to reach it.
func TestUpstreamRounds(t *testing.T) {
	tests := []struct {
		name                           string
		drainTimeout, poll, maxTimeout time.Duration
		wantTimeout, wantRound         time.Duration
	}{
		{"defaults", DefaultDrainTimeout, DefaultDrainPollTime, DefaultMaxDrainTimeout, time.Hour, 10 * time.Minute},
		{"a shorter drain timeout", 12 * time.Minute, DefaultDrainPollTime, time.Hour, 12 * time.Minute, 5 * time.Minute},
		{"a drain timeout beyond the cap", 3 * time.Hour, DefaultDrainPollTime, time.Hour, time.Hour, 10 * time.Minute},
		{"long rounds", 0, 20 * time.Minute, time.Hour, time.Hour, 20 * time.Minute},
		{"a timeout not divisible by six", 0, time.Second, 7 * time.Second, 7 * time.Second, 1166666667 * time.Nanosecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{DrainTimeout: tt.drainTimeout, DrainPollTime: tt.poll, MaxDrainTimeout: tt.maxTimeout}
			if got := o.HeaderlessDrainTimeout(); got != tt.wantTimeout {
				t.Errorf("HeaderlessDrainTimeout = %s, want %s", got, tt.wantTimeout)
			}
			got := o.UpstreamRoundTime()
			if got != tt.wantRound {
				t.Errorf("UpstreamRoundTime = %s, want %s", got, tt.wantRound)
			}
			if UpstreamDrainAttempts*got < tt.wantTimeout {
				t.Errorf("%d rounds of %s end before the drain timeout %s", UpstreamDrainAttempts, got, tt.wantTimeout)
			}
		})
	}
}

func TestDrainDeadline(t *testing.T) {
	since := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		requested time.Time
		want      time.Time
	}{
		{"none asked: the default from the cordon", time.Time{}, since.Add(10 * time.Minute)},
		{"asked within the cap", since.Add(30 * time.Minute), since.Add(30 * time.Minute)},
		{"asked beyond the cap", since.Add(3 * time.Hour), since.Add(time.Hour)},
		{"asked before the cordon", since.Add(-time.Minute), since.Add(-time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := drainDeadline(since, tt.requested, 10*time.Minute, time.Hour); !got.Equal(tt.want) {
				t.Errorf("drainDeadline = %s, want %s", got, tt.want)
			}
		})
	}
}
