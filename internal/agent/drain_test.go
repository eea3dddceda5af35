package agent

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// drainServer answers cordon-and-drain requests as the API server does, from the deadline each
// request asks for: past it, the verdict naming the pod a PDB holds; before it, 503 naming that
// pod, or 200 once drained says so. held, when set, is the deadline the server holds the drain
// to instead of the asked one.
type drainServer struct {
	requests atomic.Int32
	drained  func(n int32) bool
	held     time.Time
}

func (s *drainServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.requests.Add(1)
	deadline, _ := time.Parse(time.RFC3339, r.Header.Get(agentapi.HeaderDrainDeadline))
	if !s.held.IsZero() && s.held.Before(deadline) {
		deadline = s.held
	}
	w.Header().Set(agentapi.HeaderDrainDeadline, deadline.UTC().Format(time.RFC3339))
	switch {
	case s.drained != nil && s.drained(n):
		w.WriteHeader(http.StatusOK)
	case !time.Now().Before(deadline):
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "drain: deadline passed for node n1 with 1 pods left: [app/db-0]\n")
	default:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "drain: node n1 has 1 pods left: [app/db-0]\n")
	}
}

// drainingAgent is an agent whose API server is h, retrying after 10-50ms.
func drainingAgent(t *testing.T, h http.Handler) *Agent {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("token"), 0o600); err != nil {
		t.Fatal(err)
	}
	client := &agentapi.Client{BaseURL: srv.URL, NodeName: "n1", NodeUID: "uid-1", TokenPath: token, HTTPClient: srv.Client()}
	cfg := Config{Server: client, RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}.withDefaults()
	return &Agent{cfg: cfg, log: testr.New(t)}
}

func TestDrainAsksAgainUntilDrained(t *testing.T) {
	s := &drainServer{drained: func(n int32) bool { return n == 3 }}
	if err := drainingAgent(t, s).drain(context.Background(), time.Now().Add(time.Minute)); err != nil {
		t.Fatalf("drain = %v, want drained", err)
	}
	if n := s.requests.Load(); n != 3 {
		t.Errorf("%d requests, want 3: two rounds with pods left, then drained", n)
	}
}

func TestDrainReportsTheVerdictAtTheDeadline(t *testing.T) {
	s := &drainServer{}
	start := time.Now()
	err := drainingAgent(t, s).drain(context.Background(), start.Add(time.Second))
	var f *Failure
	if !errors.As(err, &f) || f.Reason != statemachine.ReasonDrainTimeout || !strings.Contains(f.Message, "deadline passed") || !strings.Contains(f.Message, "[app/db-0]") {
		t.Fatalf("drain = %v, want a DrainTimeout failure with the server's verdict naming app/db-0", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("a drain with a deadline of 1s failed after %s", took)
	}
}

// TestDrainHoldsToTheServersDeadline: the server's cap ends the drain before the agent's own
// deadline, and the agent reports it then rather than ask until its own.
func TestDrainHoldsToTheServersDeadline(t *testing.T) {
	s := &drainServer{held: time.Now().Add(time.Second)}
	start := time.Now()
	err := drainingAgent(t, s).drain(context.Background(), start.Add(time.Hour))
	var f *Failure
	if !errors.As(err, &f) || f.Reason != statemachine.ReasonDrainTimeout || !strings.Contains(f.Message, "[app/db-0]") {
		t.Fatalf("drain = %v, want a DrainTimeout failure naming app/db-0", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("a drain the server holds to 1s failed after %s", took)
	}
}

func TestDrainStopsAtARefusal(t *testing.T) {
	var requests atomic.Int32
	a := drainingAgent(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		http.Error(w, "pod p runs on node n2, not on node n1", http.StatusForbidden)
	}))
	err := a.drain(context.Background(), time.Now().Add(time.Minute))
	var se *agentapi.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden || requests.Load() != 1 {
		t.Errorf("drain = %v after %d requests, want the 403 after one", err, requests.Load())
	}
}
