package integration

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	brupopv2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/agent"
	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi/hostapitest"
)

const (
	oldVersion = "1.20.0"
	newVersion = "1.21.0"
	// agentWait bounds every wait for the agent; an update takes well under a second here.
	agentWait = 20 * time.Second
)

// agentEnv is one node: its Node, its simulated host, the stand-in API server and the shadow.
type agentEnv struct {
	c    client.Client
	ns   string
	node *corev1.Node
	host *hostapitest.Host
	hc   *hostapi.Client
	srv  *standin
	api  *agentapi.Client
	// lbWait and drainTimeout configure the agents started next; zero means off and 10s.
	lbWait, drainTimeout time.Duration
}

// newAgentEnv starts a simulated host with cfg (ms-scale timings unless set) for a new Node.
func newAgentEnv(t *testing.T, cfg hostapitest.Config) *agentEnv {
	t.Helper()
	c := adminClient(t)
	e := &agentEnv{c: c, ns: newNamespace(t, c), node: newNode(t, c)}
	if cfg.CommandTime == 0 {
		cfg.CommandTime = 10 * time.Millisecond
	}
	if cfg.RebootTime == 0 {
		cfg.RebootTime = 100 * time.Millisecond
	}
	host, err := hostapitest.Start(filepath.Join(t.TempDir(), "api.sock"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Close() })
	e.host = host
	e.hc = newHostClient(host.SocketPath())
	e.srv, e.api = newStandin(t, c, e.ns, e.node.Name)
	return e
}

func newHostClient(socket string) *hostapi.Client {
	return hostapi.New(hostapi.Options{
		SocketPath: socket, RequestTimeout: 2 * time.Second, PollInterval: 5 * time.Millisecond,
		RetryBase: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond, MaxErrors: 20,
	})
}

// startAgent runs an agent for the node and returns the function that kills it: it cancels the
// agent's context and waits until Run returned.
func (e *agentEnv) startAgent(t *testing.T) (kill func()) {
	t.Helper()
	api := *e.api
	drainTimeout := e.drainTimeout
	if drainTimeout == 0 {
		drainTimeout = 10 * time.Second
	}
	a, err := agent.New(agent.Config{
		NodeName: e.node.Name, Namespace: e.ns, Kube: cluster.Config, Server: &api,
		Host:              newHostClient(e.host.SocketPath()),
		ExcludeFromLBWait: e.lbWait, DrainTimeout: drainTimeout, RefreshInterval: 500 * time.Millisecond, Resync: time.Second,
		RebootTimeout: 5 * time.Second, PollInterval: 5 * time.Millisecond,
		RetryBase: 10 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		Log: testr.NewWithOptions(t, testr.Options{LogTimestamp: true}),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	kill = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("agent Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("agent did not stop within 10s of its context's end")
			}
		})
	}
	t.Cleanup(kill)
	return kill
}

// shadow reads the node's shadow.
func (e *agentEnv) shadow() (*brupopv2.BottlerocketShadow, error) {
	var brs brupopv2.BottlerocketShadow
	err := e.c.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: brupopv2.ShadowName(e.node.Name)}, &brs)
	return &brs, err
}

// waitStatus waits until the shadow's status satisfies ok, which explains itself by its error.
func (e *agentEnv) waitStatus(t *testing.T, ok func(*brupopv2.BottlerocketShadowStatus) error) *brupopv2.BottlerocketShadowStatus {
	t.Helper()
	var got *brupopv2.BottlerocketShadowStatus
	eventually(t, agentWait, func() error {
		brs, err := e.shadow()
		if err != nil {
			return err
		}
		if brs.Status == nil {
			return errors.New("no status yet")
		}
		got = brs.Status
		return ok(brs.Status)
	})
	return got
}

// inState checks that the status reports state.
func inState(state brupopv2.State) func(*brupopv2.BottlerocketShadowStatus) error {
	return func(s *brupopv2.BottlerocketShadowStatus) error {
		if s.CurrentState != state {
			return fmt.Errorf("status %s (reason %q), want %s", s.CurrentState, s.FailureReason, state)
		}
		return nil
	}
}

// setSpec writes the shadow's spec as the controller does.
func (e *agentEnv) setSpec(t *testing.T, state brupopv2.State, version string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		brs, err := e.shadow()
		if err != nil {
			return err
		}
		brs.Spec = brupopv2.BottlerocketShadowSpec{State: state, StateTransitionTimestamp: &metav1.Time{Time: time.Now()}}
		if version != "" {
			brs.Spec.Version = ptr.To(version)
		}
		return e.c.Update(context.Background(), brs)
	})
	if err != nil {
		t.Fatalf("set spec %s: %v", state, err)
	}
}

// step writes spec state and waits until the agent reports it.
func (e *agentEnv) step(t *testing.T, state brupopv2.State, version string) {
	t.Helper()
	e.setSpec(t, state, version)
	e.waitStatus(t, inState(state))
}

// checkNodeRestored checks that the Node is schedulable and carries nothing of Brupop's.
func (e *agentEnv) checkNodeRestored(t *testing.T) {
	t.Helper()
	eventually(t, agentWait, func() error {
		var n corev1.Node
		if err := e.c.Get(context.Background(), client.ObjectKeyFromObject(e.node), &n); err != nil {
			return err
		}
		if n.Spec.Unschedulable || n.Annotations[standinCordoned] != "" {
			return errors.New("node still cordoned")
		}
		if _, ok := n.Labels[brupopv2.ExcludeFromLBLabel]; ok {
			return errors.New("node still excluded from load balancers")
		}
		return nil
	})
}

// waitIdleWithTarget waits for the first report: Idle, running old, offering new.
func (e *agentEnv) waitIdleWithTarget(t *testing.T, target string) {
	t.Helper()
	e.waitStatus(t, func(s *brupopv2.BottlerocketShadowStatus) error {
		if s.CurrentState != brupopv2.StateIdle || s.CurrentVersion != oldVersion || s.TargetVersion != target {
			return fmt.Errorf("status %s %s -> %s, want Idle %s -> %s", s.CurrentState, s.CurrentVersion, s.TargetVersion, oldVersion, target)
		}
		return nil
	})
}

func TestAgentUpdatesItsNode(t *testing.T) {
	e := newAgentEnv(t, hostapitest.Config{Version: oldVersion, Available: []string{oldVersion, newVersion}})
	e.lbWait = 50 * time.Millisecond
	e.startAgent(t)

	e.waitIdleWithTarget(t, newVersion)
	brs, err := e.shadow()
	if err != nil {
		t.Fatal(err)
	}
	if refs := brs.OwnerReferences; len(refs) != 1 || refs[0].UID != e.node.UID {
		t.Errorf("shadow owners = %v, want the Node", refs)
	}

	e.step(t, brupopv2.StateStagedAndPerformedUpdate, newVersion)
	if st, err := e.hc.Status(context.Background()); err != nil || st.State != hostapi.StateReady || st.StagedVersion() != newVersion {
		t.Errorf("host after StagedAndPerformedUpdate: %s staged %q (%v), want Ready %s", st.State, st.StagedVersion(), err, newVersion)
	}
	e.step(t, brupopv2.StateRebootedIntoUpdate, newVersion)
	if e.host.Version() != newVersion || e.host.Boots() != 1 {
		t.Errorf("host runs %s after %d boots, want %s after 1", e.host.Version(), e.host.Boots(), newVersion)
	}
	if e.srv.drainCalls() == 0 || !e.srv.excludedAtDrain() {
		t.Errorf("drains: %d, excluded from load balancers at the drain: %v; want a drain after the exclusion", e.srv.drainCalls(), e.srv.excludedAtDrain())
	}
	e.checkNodeRestored(t)
	e.step(t, brupopv2.StateMonitoringUpdate, newVersion)
	e.setSpec(t, brupopv2.StateIdle, newVersion)
	got := e.waitStatus(t, inState(brupopv2.StateIdle))
	if got.CurrentVersion != newVersion || got.TargetVersion != newVersion || got.CrashCount != 0 {
		t.Errorf("final status %+v, want Idle at %s with no crash", got, newVersion)
	}
	e.checkNodeRestored(t)
}

func TestAgentKilledInEveryStateFinishes(t *testing.T) {
	e := newAgentEnv(t, hostapitest.Config{
		Version: oldVersion, Available: []string{oldVersion, newVersion},
		CommandTimes: map[hostapi.CommandType]time.Duration{hostapi.CommandPrepare: 300 * time.Millisecond},
	})
	kill := e.startAgent(t)
	e.waitIdleWithTarget(t, newVersion)

	// Killed while the host prepares the update.
	e.setSpec(t, brupopv2.StateStagedAndPerformedUpdate, newVersion)
	eventually(t, agentWait, func() error {
		if _, err := e.hc.Status(context.Background()); !errors.Is(err, hostapi.ErrLocked) {
			return fmt.Errorf("host not busy: %w", err)
		}
		return nil
	})
	kill()
	kill = e.startAgent(t)
	e.waitStatus(t, inState(brupopv2.StateStagedAndPerformedUpdate))

	// Killed while the drain is in progress, then right after the reboot.
	e.srv.setDrainBusy(3)
	e.setSpec(t, brupopv2.StateRebootedIntoUpdate, newVersion)
	eventually(t, agentWait, func() error {
		if e.srv.drainCalls() == 0 {
			return errors.New("no drain yet")
		}
		return nil
	})
	kill()
	kill = e.startAgent(t)
	eventually(t, agentWait, func() error {
		if e.host.Boots() == 0 {
			return errors.New("no reboot yet")
		}
		return nil
	})
	kill()
	kill = e.startAgent(t)
	e.waitStatus(t, inState(brupopv2.StateRebootedIntoUpdate))

	// Killed as soon as the spec changes.
	e.setSpec(t, brupopv2.StateMonitoringUpdate, newVersion)
	kill()
	kill = e.startAgent(t)
	e.waitStatus(t, inState(brupopv2.StateMonitoringUpdate))
	e.setSpec(t, brupopv2.StateIdle, newVersion)
	kill()
	e.startAgent(t)
	got := e.waitStatus(t, inState(brupopv2.StateIdle))

	if got.CurrentVersion != newVersion || got.CrashCount != 0 {
		t.Errorf("final status %+v, want Idle at %s with no crash", got, newVersion)
	}
	if e.host.Version() != newVersion || e.host.Boots() != 1 {
		t.Errorf("host runs %s after %d boots, want %s after exactly 1", e.host.Version(), e.host.Boots(), newVersion)
	}
	e.checkNodeRestored(t)
}

func TestAgentReportsBootRollback(t *testing.T) {
	e := newAgentEnv(t, hostapitest.Config{
		Version: oldVersion, Available: []string{oldVersion, newVersion}, Faults: hostapitest.Faults{FailBoot: true},
	})
	e.startAgent(t)
	e.waitIdleWithTarget(t, newVersion)
	e.step(t, brupopv2.StateStagedAndPerformedUpdate, newVersion)
	e.setSpec(t, brupopv2.StateRebootedIntoUpdate, newVersion)

	got := e.waitStatus(t, inState(brupopv2.StateErrorReset))
	if !strings.HasPrefix(got.FailureReason, agent.ReasonBootRolledBack+": ") || got.CrashCount != 1 ||
		got.StateTransitionFailureTimestamp == nil || got.CurrentVersion != oldVersion {
		t.Errorf("status after the rollback = %+v, want ErrorReset, crash 1, a timestamp, reason %s", got, agent.ReasonBootRolledBack)
	}
	if e.host.Boots() != 1 {
		t.Errorf("host booted %d times, want 1: a rollback must not be retried blindly", e.host.Boots())
	}

	// The controller resets the spec; the agent recovers and keeps the crash record.
	e.setSpec(t, brupopv2.StateIdle, newVersion)
	got = e.waitStatus(t, inState(brupopv2.StateIdle))
	if got.CrashCount != 1 || got.FailureReason == "" {
		t.Errorf("status after recovery = %+v, want the crash record kept", got)
	}
	e.checkNodeRestored(t)
}

func TestAgentDeactivatesAbandonedUpdate(t *testing.T) {
	e := newAgentEnv(t, hostapitest.Config{Version: oldVersion, Available: []string{oldVersion, newVersion}})
	e.startAgent(t)
	e.waitIdleWithTarget(t, newVersion)
	e.step(t, brupopv2.StateStagedAndPerformedUpdate, newVersion)

	e.step(t, brupopv2.StateIdle, newVersion)
	ctx := context.Background()
	eventually(t, agentWait, func() error {
		st, err := e.hc.Status(ctx)
		switch {
		case err != nil:
			return err
		case st.State != hostapi.StateStaged || st.StagedVersion() != newVersion:
			return fmt.Errorf("host %s staged %q, want Staged %s", st.State, st.StagedVersion(), newVersion)
		case st.StagingPartition.NextToBoot || !st.ActivePartition.NextToBoot:
			return errors.New("the update still boots next")
		}
		return nil
	})
	// A later, unrelated reboot keeps the running version.
	e.host.Reboot()
	eventually(t, agentWait, func() error {
		if _, err := e.hc.OS(ctx); err != nil {
			return err
		}
		return nil
	})
	if e.host.Version() != oldVersion {
		t.Errorf("host runs %s after an unrelated reboot, want %s", e.host.Version(), oldVersion)
	}
}

func TestAgentPinsTheDesiredVersion(t *testing.T) {
	const newest = "1.22.0"
	e := newAgentEnv(t, hostapitest.Config{Version: oldVersion, Available: []string{oldVersion, newVersion, newest}})
	e.startAgent(t)
	e.waitIdleWithTarget(t, newest)

	// The controller wants 1.21.0 although the host would choose 1.22.0.
	e.step(t, brupopv2.StateStagedAndPerformedUpdate, newVersion)
	if got := e.host.UpdateSettings(); got.VersionLock != hostapi.VersionLockLatest || got.IgnoreWaves {
		t.Errorf("host settings after staging = %+v, want restored to latest", got)
	}
	e.step(t, brupopv2.StateRebootedIntoUpdate, newVersion)
	if e.host.Version() != newVersion {
		t.Errorf("host runs %s, want %s", e.host.Version(), newVersion)
	}
}

func TestAgentReportsDrainTimeoutAndDeactivates(t *testing.T) {
	e := newAgentEnv(t, hostapitest.Config{Version: oldVersion, Available: []string{oldVersion, newVersion}})
	e.drainTimeout = 500 * time.Millisecond
	e.startAgent(t)
	e.waitIdleWithTarget(t, newVersion)
	e.step(t, brupopv2.StateStagedAndPerformedUpdate, newVersion)

	e.srv.setDrainBusy(1 << 30) // a PodDisruptionBudget that never allows an eviction
	e.setSpec(t, brupopv2.StateRebootedIntoUpdate, newVersion)
	got := e.waitStatus(t, inState(brupopv2.StateErrorReset))
	if !strings.HasPrefix(got.FailureReason, agent.ReasonDrainTimeout+": ") || got.CrashCount != 1 {
		t.Errorf("status after the drain timeout = %+v, want ErrorReset, crash 1, reason %s", got, agent.ReasonDrainTimeout)
	}

	e.step(t, brupopv2.StateIdle, newVersion)
	if st, err := e.hc.Status(context.Background()); err != nil || st.State != hostapi.StateStaged {
		t.Errorf("host after the abandoned attempt: %s (%v), want the update deactivated (Staged)", st.State, err)
	}
	if e.host.Boots() != 0 {
		t.Errorf("host rebooted %d times, want none", e.host.Boots())
	}
	e.checkNodeRestored(t)
}
