package agent_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/agent"
	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
	"github.com/bottlerocket-os/brupop-go/internal/fixture"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi/hostapitest"
)

// startHost starts a simulated host running fixture.Old whose repository offers fixture.New,
// with faults.
func startHost(t *testing.T, faults hostapitest.Faults) (*hostapitest.Host, *hostapi.Client) {
	t.Helper()
	host, err := hostapitest.Start(filepath.Join(t.TempDir(), "api.sock"), hostapitest.Config{
		Version: fixture.Old, Available: []string{fixture.Old, fixture.New},
		CommandTime: 5 * time.Millisecond, RebootTime: 50 * time.Millisecond, Faults: faults,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Close() })
	return host, hostapi.New(hostapi.Options{
		SocketPath: host.SocketPath(), RequestTimeout: 2 * time.Second, PollInterval: 5 * time.Millisecond,
		RetryBase: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond, MaxErrors: 20,
	})
}

// runAgent runs an agent of the cluster's node on host until the test ends. Its resync is an
// hour: every pass the test sees follows a change of the shadow.
func runAgent(t *testing.T, c *cluster, host *hostapi.Client) {
	t.Helper()
	a, err := agent.New(agent.Config{
		NodeName: c.node.Name, Namespace: fixture.Namespace, Watch: c, Server: c.serve(t), Host: host,
		Resync: time.Hour, PollInterval: 5 * time.Millisecond, RetryBase: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		Log: testr.New(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent Run: %v", err)
			}
		case <-time.After(clusterWait):
			t.Error("agent did not stop within its context's end")
		}
	})
}

// reported is the status without its failure timestamp, for comparing.
func reported(s *v2.BottlerocketShadow) v2.BottlerocketShadowStatus {
	st := *s.Status
	st.StateTransitionFailureTimestamp = nil
	return st
}

func TestAgentCreatesItsShadowAndReportsTheHost(t *testing.T) {
	_, hc := startHost(t, hostapitest.Faults{})
	c := newCluster(fixture.Node("n1"), nil)
	runAgent(t, c, hc)
	s := c.waitFor(t, "first status", func(s *v2.BottlerocketShadow) bool { return s.Status != nil })
	want := v2.BottlerocketShadowStatus{CurrentState: v2.StateIdle, CurrentVersion: fixture.Old, TargetVersion: fixture.New}
	if diff := cmp.Diff(want, reported(s)); diff != "" {
		t.Errorf("first status (-want +got):\n%s", diff)
	}
	if calls := c.calledServer(); len(calls) < 2 || calls[0] != "POST "+agentapi.PathShadow || calls[1] != "PUT "+agentapi.PathShadow {
		t.Errorf("API-server calls %q, want the shadow created, then its status", calls)
	}
}

// TestAgentStagesTheUpdateTheSpecAsksFor: once the controller sets the spec to
// StagedAndPerformedUpdate, the host stages and activates the update without rebooting, and the
// agent reports the state reached.
func TestAgentStagesTheUpdateTheSpecAsksFor(t *testing.T) {
	host, hc := startHost(t, hostapitest.Faults{})
	c := newCluster(fixture.Pair("n1", fixture.NoStatus()))
	runAgent(t, c, hc)
	c.waitFor(t, "first status", func(s *v2.BottlerocketShadow) bool { return s.Status != nil })

	c.setSpec(fixture.Spec(v2.StateStagedAndPerformedUpdate, 0, fixture.New))
	s := c.waitFor(t, "StagedAndPerformedUpdate", func(s *v2.BottlerocketShadow) bool {
		return s.Status.CurrentState != v2.StateIdle
	})
	want := v2.BottlerocketShadowStatus{CurrentState: v2.StateStagedAndPerformedUpdate, CurrentVersion: fixture.Old, TargetVersion: fixture.New}
	if diff := cmp.Diff(want, reported(s)); diff != "" {
		t.Errorf("status after the spec change (-want +got):\n%s", diff)
	}
	st, err := hc.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Boots counts the reboots since the host started.
	if st.State != hostapi.StateReady || st.StagedVersion() != fixture.New || host.Version() != fixture.Old || host.Boots() != 0 {
		t.Errorf("host: update %s, staged %q, running %s after %d reboots; want %s activated, %s still running, not rebooted",
			st.State, st.StagedVersion(), host.Version(), host.Boots(), fixture.New, fixture.Old)
	}
	if calls := c.calledServer(); slices.Contains(calls, "POST "+agentapi.PathCordonAndDrain) {
		t.Errorf("API-server calls %q: staging drained the node", calls)
	}
}

// TestAgentReportsAFailedStage: a host that cannot prepare the update makes the agent report
// ErrorReset with the host API's reason and one more crash.
func TestAgentReportsAFailedStage(t *testing.T) {
	_, hc := startHost(t, hostapitest.Faults{FailPrepare: "no space left on device"})
	c := newCluster(fixture.Pair("n1", fixture.Updating(v2.StateStagedAndPerformedUpdate, 0, v2.StateIdle)))
	runAgent(t, c, hc)
	s := c.waitFor(t, "ErrorReset", func(s *v2.BottlerocketShadow) bool { return s.Status.CurrentState == v2.StateErrorReset })
	if st := s.Status; st.CrashCount != 1 || st.StateTransitionFailureTimestamp == nil ||
		!strings.HasPrefix(st.FailureReason, "HostAPIError: ") || !strings.Contains(st.FailureReason, "no space left on device") {
		t.Errorf("status %+v, want one crash now, for HostAPIError naming the host's error", st)
	}
}
