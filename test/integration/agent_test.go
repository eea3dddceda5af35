package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	brupopv2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/agent"
	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
	"github.com/bottlerocket-os/brupop-go/internal/apiserver"
	"github.com/bottlerocket-os/brupop-go/internal/drain"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi/hostapitest"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

const (
	agentOldVersion = "1.20.0"
	agentNewVersion = "1.21.0"
	// agentWait bounds every wait for the agent; an update takes a few seconds here.
	agentWait = 30 * time.Second
)

// agentEnv is one node: its Node with an agent pod of the namespace's DaemonSet, its simulated
// host, the real API server of the test's namespace, and the shadow.
type agentEnv struct {
	c    client.Client
	ns   string
	ts   *testServer
	node *corev1.Node
	host *hostapitest.Host
	hc   *hostapi.Client
	// tokenPath holds a token bound to the agent pod; caPath the API server's CA.
	tokenPath, caPath string
	// lbWait configures the agents started next; zero turns the exclusion off.
	lbWait time.Duration
	// retryBase configures the backoff of the agents started next; zero means 10ms.
	retryBase time.Duration
	// onLog, when set, sees every log line of the agents started next.
	onLog func(line string)
}

// newAgentEnv starts an API server for a new namespace (drain rounds of 1s, then tune), a Ready
// Node with an agent pod, and a simulated host with cfg (ms-scale timings unless set).
func newAgentEnv(t *testing.T, cfg hostapitest.Config, tune ...func(*apiserver.Options)) *agentEnv {
	t.Helper()
	c := adminClient(t)
	ns := newNamespace(t, c)
	ts := startAPIServer(t, ns, func(o *apiserver.Options) {
		o.DrainPollTime = time.Second
		for _, f := range tune {
			f(o)
		}
	})
	labels := map[string]string{brupopv2.NodeOptInLabel: brupopv2.NodeOptInValue}
	id := ts.newAgent(t, readyNode(t, ts.kube, ns+"-node", labels, false))
	e := &agentEnv{c: c, ns: ns, ts: ts, node: id.Node, tokenPath: id.Client.TokenPath}
	e.caPath = filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(e.caPath, ts.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
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
	return e
}

func newHostClient(socket string) *hostapi.Client {
	return hostapi.New(hostapi.Options{
		SocketPath: socket, RequestTimeout: 2 * time.Second, PollInterval: 5 * time.Millisecond,
		RetryBase: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond, MaxErrors: 20,
	})
}

// startAgent runs an agent for the node, calling the API server with the pod's bound token and
// the server's CA as a deployed agent does, and returns the function that kills it: it cancels
// the agent's context and waits until Run returned.
func (e *agentEnv) startAgent(t *testing.T) (kill func()) {
	t.Helper()
	retryBase, retryMax := 10*time.Millisecond, 200*time.Millisecond
	if e.retryBase > 0 {
		retryBase, retryMax = e.retryBase, e.retryBase
	}
	log := testr.NewWithOptions(t, testr.Options{LogTimestamp: true})
	if e.onLog != nil {
		log = funcr.New(func(prefix, args string) {
			t.Log(prefix, args)
			e.onLog(args)
		}, funcr.Options{LogTimestamp: true})
	}
	watch, err := agent.WatchCluster(cluster.Config, e.node.Name, e.ns)
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{
		NodeName: e.node.Name, Namespace: e.ns, Watch: watch,
		Server:            &agentapi.Client{BaseURL: e.ts.URL, NodeName: e.node.Name, TokenPath: e.tokenPath, CAPath: e.caPath},
		Host:              newHostClient(e.host.SocketPath()),
		ExcludeFromLBWait: e.lbWait, DrainTimeout: time.Minute, RefreshInterval: 500 * time.Millisecond, Resync: time.Second,
		RebootTimeout: 5 * time.Second, PollInterval: 5 * time.Millisecond,
		RetryBase: retryBase, RetryMax: retryMax,
		Log: log,
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

// blockDrains runs, on the node, a pod of a Deployment whose PodDisruptionBudget allows no
// eviction, and a fake kubelet for the namespace.
func (e *agentEnv) blockDrains(t *testing.T) {
	t.Helper()
	fakeKubelet(t, e.ts.kube, e.ns, 0)
	workload(t, e.c, e.ns, "db", 1, 0, func(s *corev1.PodSpec) { s.NodeSelector = map[string]string{agentNodeLabel: e.ns} })
	waitPDB(t, e.c, e.ns, "db", 0, 1)
}

// allowDrains lets the PodDisruptionBudget of blockDrains allow one eviction.
func (e *agentEnv) allowDrains(t *testing.T) {
	t.Helper()
	patch := []byte(`{"spec":{"maxUnavailable":1}}`)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "db"}}
	if err := e.c.Patch(context.Background(), pdb, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
}

// watchNode records every version of the Node from now until the test ends; the returned
// function returns the versions seen so far.
func (e *agentEnv) watchNode(t *testing.T) func() []corev1.Node {
	t.Helper()
	var n corev1.Node
	if err := e.c.Get(context.Background(), client.ObjectKeyFromObject(e.node), &n); err != nil {
		t.Fatal(err)
	}
	w, err := e.ts.kube.CoreV1().Nodes().Watch(context.Background(), metav1.ListOptions{
		FieldSelector: "metadata.name=" + n.Name, ResourceVersion: n.ResourceVersion,
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := []corev1.Node{n}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if node, ok := ev.Object.(*corev1.Node); ok {
				mu.Lock()
				seen = append(seen, *node)
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { w.Stop(); <-done })
	return func() []corev1.Node {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
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

// annotate sets an annotation of the shadow, as the controller does.
func (e *agentEnv) annotate(t *testing.T, key, value string) {
	t.Helper()
	brs, err := e.shadow()
	if err != nil {
		t.Fatal(err)
	}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, key, value)
	if err := e.c.Patch(context.Background(), brs, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
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
		_, ours := n.Annotations[drain.AnnotationCordoned]
		_, timed := n.Annotations[drain.AnnotationCordonTime]
		if n.Spec.Unschedulable || ours || timed {
			return fmt.Errorf("node still cordoned: unschedulable %v, annotations %v", n.Spec.Unschedulable, n.Annotations)
		}
		if _, ok := n.Labels[brupopv2.ExcludeFromLBLabel]; ok || n.Annotations[drain.AnnotationLBExcluded] != "" {
			return errors.New("node still excluded from load balancers")
		}
		return nil
	})
}

// waitIdleWithTarget waits for the first report: Idle, running old, offering new.
func (e *agentEnv) waitIdleWithTarget(t *testing.T, target string) {
	t.Helper()
	e.waitStatus(t, func(s *brupopv2.BottlerocketShadowStatus) error {
		if s.CurrentState != brupopv2.StateIdle || s.CurrentVersion != agentOldVersion || s.TargetVersion != target {
			return fmt.Errorf("status %s %s -> %s, want Idle %s -> %s", s.CurrentState, s.CurrentVersion, s.TargetVersion, agentOldVersion, target)
		}
		return nil
	})
}

func TestAgentUpdatesItsNode(t *testing.T) {
	e := newAgentEnv(t, hostapitest.Config{Version: agentOldVersion, Available: []string{agentOldVersion, agentNewVersion}})
	e.lbWait = 50 * time.Millisecond
	history := e.watchNode(t)
	e.startAgent(t)

	e.waitIdleWithTarget(t, agentNewVersion)
	brs, err := e.shadow()
	if err != nil {
		t.Fatal(err)
	}
	if refs := brs.OwnerReferences; len(refs) != 1 || refs[0].UID != e.node.UID {
		t.Errorf("shadow owners = %v, want the Node", refs)
	}

	e.step(t, brupopv2.StateStagedAndPerformedUpdate, agentNewVersion)
	if st, err := e.hc.Status(context.Background()); err != nil || st.State != hostapi.StateReady || st.StagedVersion() != agentNewVersion {
		t.Errorf("host after StagedAndPerformedUpdate: %s staged %q (%v), want Ready %s", st.State, st.StagedVersion(), err, agentNewVersion)
	}
	e.step(t, brupopv2.StateRebootedIntoUpdate, agentNewVersion)
	if e.host.Version() != agentNewVersion || e.host.Boots() != 1 {
		t.Errorf("host runs %s after %d boots, want %s after 1", e.host.Version(), e.host.Boots(), agentNewVersion)
	}
	if n := e.ts.metricValue(t, "brupop_apiserver_drains_total", map[string]string{"result": "succeeded"}); n != 1 {
		t.Errorf("API server drains that succeeded: %v, want 1", n)
	}
	e.checkNodeRestored(t)
	checkExcludedBeforeCordon(t, history())
	e.step(t, brupopv2.StateMonitoringUpdate, agentNewVersion)
	e.setSpec(t, brupopv2.StateIdle, agentNewVersion)
	got := e.waitStatus(t, inState(brupopv2.StateIdle))
	if got.CurrentVersion != agentNewVersion || got.TargetVersion != agentNewVersion || got.CrashCount != 0 {
		t.Errorf("final status %+v, want Idle at %s with no crash", got, agentNewVersion)
	}
	e.checkNodeRestored(t)
}

func TestAgentKilledInEveryStateFinishes(t *testing.T) {
	e := newAgentEnv(t, hostapitest.Config{
		Version: agentOldVersion, Available: []string{agentOldVersion, agentNewVersion},
		CommandTimes: map[hostapi.CommandType]time.Duration{hostapi.CommandPrepare: 300 * time.Millisecond},
	})
	e.blockDrains(t)
	kill := e.startAgent(t)
	e.waitIdleWithTarget(t, agentNewVersion)

	// Killed while the host prepares the update.
	e.setSpec(t, brupopv2.StateStagedAndPerformedUpdate, agentNewVersion)
	eventually(t, agentWait, func() error {
		if _, err := e.hc.Status(context.Background()); !errors.Is(err, hostapi.ErrLocked) {
			return fmt.Errorf("host not busy: %w", err)
		}
		return nil
	})
	kill()
	kill = e.startAgent(t)
	e.waitStatus(t, inState(brupopv2.StateStagedAndPerformedUpdate))

	// Killed while a PodDisruptionBudget holds the drain, then right after the reboot.
	e.setSpec(t, brupopv2.StateRebootedIntoUpdate, agentNewVersion)
	eventually(t, agentWait, func() error {
		if e.ts.metricValue(t, "brupop_apiserver_evictions_total", map[string]string{"result": string(drain.EventBlocked)}) == 0 {
			return errors.New("no eviction refused by the PodDisruptionBudget yet")
		}
		return nil
	})
	kill()
	kill = e.startAgent(t)
	e.allowDrains(t)
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
	e.setSpec(t, brupopv2.StateMonitoringUpdate, agentNewVersion)
	kill()
	kill = e.startAgent(t)
	e.waitStatus(t, inState(brupopv2.StateMonitoringUpdate))
	e.setSpec(t, brupopv2.StateIdle, agentNewVersion)
	kill()
	e.startAgent(t)
	got := e.waitStatus(t, inState(brupopv2.StateIdle))

	if got.CurrentVersion != agentNewVersion || got.CrashCount != 0 {
		t.Errorf("final status %+v, want Idle at %s with no crash", got, agentNewVersion)
	}
	if e.host.Version() != agentNewVersion || e.host.Boots() != 1 {
		t.Errorf("host runs %s after %d boots, want %s after exactly 1", e.host.Version(), e.host.Boots(), agentNewVersion)
	}
	if n := e.ts.metricValue(t, "brupop_apiserver_evictions_total", map[string]string{"result": string(drain.EventEvicted)}); n != 1 {
		t.Errorf("pods evicted: %v, want the one db pod", n)
	}
	e.checkNodeRestored(t)
}

func TestAgentReportsBootRollback(t *testing.T) {
	e := newAgentEnv(t, hostapitest.Config{
		Version: agentOldVersion, Available: []string{agentOldVersion, agentNewVersion}, Faults: hostapitest.Faults{FailBoot: true},
	})
	e.startAgent(t)
	e.waitIdleWithTarget(t, agentNewVersion)
	e.step(t, brupopv2.StateStagedAndPerformedUpdate, agentNewVersion)
	e.setSpec(t, brupopv2.StateRebootedIntoUpdate, agentNewVersion)

	got := e.waitStatus(t, inState(brupopv2.StateErrorReset))
	if !strings.HasPrefix(got.FailureReason, statemachine.ReasonBootRolledBack+": ") || got.CrashCount != 1 ||
		got.StateTransitionFailureTimestamp == nil || got.CurrentVersion != agentOldVersion {
		t.Errorf("status after the rollback = %+v, want ErrorReset, crash 1, a timestamp, reason %s", got, statemachine.ReasonBootRolledBack)
	}
	if e.host.Boots() != 1 {
		t.Errorf("host booted %d times, want 1: a rollback must not be retried blindly", e.host.Boots())
	}

	// The controller resets the spec; the agent recovers and keeps the crash record.
	e.setSpec(t, brupopv2.StateIdle, agentNewVersion)
	got = e.waitStatus(t, inState(brupopv2.StateIdle))
	if got.CrashCount != 1 || got.FailureReason == "" {
		t.Errorf("status after recovery = %+v, want the crash record kept", got)
	}
	e.checkNodeRestored(t)
}

func TestAgentDeactivatesAbandonedUpdate(t *testing.T) {
	e := newAgentEnv(t, hostapitest.Config{Version: agentOldVersion, Available: []string{agentOldVersion, agentNewVersion}})
	e.startAgent(t)
	e.waitIdleWithTarget(t, agentNewVersion)
	e.step(t, brupopv2.StateStagedAndPerformedUpdate, agentNewVersion)

	e.step(t, brupopv2.StateIdle, agentNewVersion)
	ctx := context.Background()
	eventually(t, agentWait, func() error {
		st, err := e.hc.Status(ctx)
		switch {
		case err != nil:
			return err
		case st.State != hostapi.StateStaged || st.StagedVersion() != agentNewVersion:
			return fmt.Errorf("host %s staged %q, want Staged %s", st.State, st.StagedVersion(), agentNewVersion)
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
	if e.host.Version() != agentOldVersion {
		t.Errorf("host runs %s after an unrelated reboot, want %s", e.host.Version(), agentOldVersion)
	}
}

func TestAgentPinsTheDesiredVersion(t *testing.T) {
	const newest = "1.22.0"
	e := newAgentEnv(t, hostapitest.Config{Version: agentOldVersion, Available: []string{agentOldVersion, agentNewVersion, newest}})
	e.startAgent(t)
	e.waitIdleWithTarget(t, newest)

	// The controller wants 1.21.0 although the host would choose 1.22.0.
	e.step(t, brupopv2.StateStagedAndPerformedUpdate, agentNewVersion)
	if got := e.host.UpdateSettings(); got.VersionLock != hostapi.VersionLockLatest || got.IgnoreWaves {
		t.Errorf("host settings after staging = %+v, want restored to latest", got)
	}
	e.step(t, brupopv2.StateRebootedIntoUpdate, agentNewVersion)
	if e.host.Version() != agentNewVersion {
		t.Errorf("host runs %s, want %s", e.host.Version(), agentNewVersion)
	}
}

// TestAgentReportsAVersionTheHostDoesNotOffer: asked for a version the host's repository lacks
// (a pulled release, or a maxVersion that names none), the agent fails with VersionNotOffered,
// a release failure, and leaves the host's update settings as they were.
func TestAgentReportsAVersionTheHostDoesNotOffer(t *testing.T) {
	const missing = "1.20.5"
	e := newAgentEnv(t, hostapitest.Config{Version: agentOldVersion, Available: []string{agentOldVersion, agentNewVersion}})
	e.startAgent(t)
	e.waitIdleWithTarget(t, agentNewVersion)
	e.setSpec(t, brupopv2.StateStagedAndPerformedUpdate, missing)
	got := e.waitStatus(t, inState(brupopv2.StateErrorReset))
	if !strings.HasPrefix(got.FailureReason, statemachine.ReasonVersionNotOffered+": ") || !strings.Contains(got.FailureReason, missing) || got.CrashCount != 1 {
		t.Errorf("status = %+v, want ErrorReset, crash 1, reason %s naming %s", got, statemachine.ReasonVersionNotOffered, missing)
	}
	if statemachine.Classify(statemachine.ReasonVersionNotOffered) != statemachine.ClassRelease {
		t.Error("VersionNotOffered is not a release failure: a bad cap would back every node off instead of halting")
	}
	if settings := e.host.UpdateSettings(); settings.VersionLock != hostapi.VersionLockLatest || settings.IgnoreWaves {
		t.Errorf("host settings after the failure = %+v, want restored to latest", settings)
	}
	if st, err := e.hc.Status(context.Background()); err != nil || st.State == hostapi.StateStaged || st.State == hostapi.StateReady {
		t.Errorf("host update state %s (%v) after the failure, want nothing staged", st.State, err)
	}
}

// TestAgentTellsASlowSettingsRenderFromAMissingVersion: the host lists the version the
// controller wants but, its new settings not rendered yet, chooses another: the agent reports
// an operational failure (the node backs off and retries), not a release failure that would
// halt the version for the whole fleet.
func TestAgentTellsASlowSettingsRenderFromAMissingVersion(t *testing.T) {
	const newest = "1.22.0"
	e := newAgentEnv(t, hostapitest.Config{Version: agentOldVersion, Available: []string{agentOldVersion, agentNewVersion, newest}})
	e.startAgent(t)
	e.waitIdleWithTarget(t, newest)
	e.host.SetFaults(hostapitest.Faults{StaleSettings: true})
	e.setSpec(t, brupopv2.StateStagedAndPerformedUpdate, agentNewVersion)
	got := e.waitStatus(t, inState(brupopv2.StateErrorReset))
	reason, _ := statemachine.ParseFailureReason(got.FailureReason)
	if reason != statemachine.ReasonHostAPIError || statemachine.Classify(reason) != statemachine.ClassOperational || !strings.Contains(got.FailureReason, "lists "+agentNewVersion) {
		t.Errorf("failure %q (%s), want an operational %s saying the host lists %s", got.FailureReason, statemachine.Classify(reason), statemachine.ReasonHostAPIError, agentNewVersion)
	}
	if settings := e.host.UpdateSettings(); settings.VersionLock != hostapi.VersionLockLatest {
		t.Errorf("host settings after the failure = %+v, want restored to latest", settings)
	}
}

// TestAgentReportsDrainTimeoutAndDeactivates: the agent asks for drain rounds until the drain
// timeout the controller set passes, then reports the API server's verdict, which names the pod a
// PodDisruptionBudget keeps, deactivates the update and has the node uncordoned.
func TestAgentReportsDrainTimeoutAndDeactivates(t *testing.T) {
	e := newAgentEnv(t, hostapitest.Config{Version: agentOldVersion, Available: []string{agentOldVersion, agentNewVersion}})
	e.blockDrains(t) // a PodDisruptionBudget that never allows an eviction
	e.startAgent(t)  // with a drain timeout of 1m
	e.waitIdleWithTarget(t, agentNewVersion)
	e.step(t, brupopv2.StateStagedAndPerformedUpdate, agentNewVersion)

	// The controller's drain timeout, on the shadow, wins over the agent's.
	e.annotate(t, brupopv2.DrainTimeoutAnnotation, "3s")

	start := time.Now()
	e.setSpec(t, brupopv2.StateRebootedIntoUpdate, agentNewVersion)
	got := e.waitStatus(t, inState(brupopv2.StateErrorReset))
	e.checkDrainTimeout(t, got)
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("a drain with a 3s timeout was reported after %s", took.Round(time.Millisecond))
	}

	e.step(t, brupopv2.StateIdle, agentNewVersion)
	if st, err := e.hc.Status(context.Background()); err != nil || st.State != hostapi.StateStaged {
		t.Errorf("host after the abandoned attempt: %s (%v), want the update deactivated (Staged)", st.State, err)
	}
	if e.host.Boots() != 0 {
		t.Errorf("host rebooted %d times, want none", e.host.Boots())
	}
	e.checkNodeRestored(t)
}

// TestAgentHoldsToTheAPIServersDrainCap: the API server caps how long a node stays cordoned for a
// drain (--max-drain-timeout, 3s here), below the agent's own drain timeout (1m); the agent
// reports the drain timeout at the server's cap.
func TestAgentHoldsToTheAPIServersDrainCap(t *testing.T) {
	e := newAgentEnv(t, hostapitest.Config{Version: agentOldVersion, Available: []string{agentOldVersion, agentNewVersion}},
		func(o *apiserver.Options) { o.MaxDrainTimeout = 3 * time.Second })
	e.blockDrains(t)
	e.startAgent(t)
	e.waitIdleWithTarget(t, agentNewVersion)
	e.step(t, brupopv2.StateStagedAndPerformedUpdate, agentNewVersion)

	start := time.Now()
	e.setSpec(t, brupopv2.StateRebootedIntoUpdate, agentNewVersion)
	got := e.waitStatus(t, inState(brupopv2.StateErrorReset))
	e.checkDrainTimeout(t, got)
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("a drain the API server caps at 3s was reported after %s, not long before the agent's 1m", took.Round(time.Millisecond))
	}
	e.step(t, brupopv2.StateIdle, agentNewVersion)
	e.checkNodeRestored(t)
}

// checkDrainTimeout checks that status reports a drain timeout with the API server's verdict,
// naming the pod blockDrains placed.
func (e *agentEnv) checkDrainTimeout(t *testing.T, got *brupopv2.BottlerocketShadowStatus) {
	t.Helper()
	if !strings.HasPrefix(got.FailureReason, statemachine.ReasonDrainTimeout+": ") || !strings.Contains(got.FailureReason, "deadline passed") ||
		!strings.Contains(got.FailureReason, e.ns+"/db-") || got.CrashCount != 1 {
		t.Errorf("status after the drain timeout = %+v, want ErrorReset, crash 1, reason %s with the verdict naming the blocked pod", got, statemachine.ReasonDrainTimeout)
	}
	t.Logf("failure reason: %s", got.FailureReason)
}

// checkExcludedBeforeCordon checks, in the Node's history, that Brupop cordoned the node once it
// was already out of the load balancers.
func checkExcludedBeforeCordon(t *testing.T, history []corev1.Node) {
	t.Helper()
	for _, n := range history {
		if !n.Spec.Unschedulable {
			continue
		}
		if n.Labels[brupopv2.ExcludeFromLBLabel] != drain.ExcludeFromLBValue || n.Annotations[drain.AnnotationCordoned] == "" {
			t.Errorf("first cordoned version of the Node: labels %v, annotations %v; want excluded from load balancers and cordoned by Brupop", n.Labels, n.Annotations)
		}
		return
	}
	t.Errorf("the Node was never cordoned in %d versions", len(history))
}

func TestAgentEndsItsBackoffWhenTheSpecChanges(t *testing.T) {
	e := newAgentEnv(t, hostapitest.Config{Version: agentOldVersion, Available: []string{agentOldVersion, agentNewVersion}})
	e.retryBase = 2 * time.Minute // a failed pass waits at least a minute
	failed := make(chan struct{}, 1)
	e.onLog = func(line string) {
		if strings.Contains(line, `"msg"="Pass failed; retrying"`) {
			select {
			case failed <- struct{}{}:
			default:
			}
		}
	}
	e.startAgent(t)
	e.waitIdleWithTarget(t, agentNewVersion)

	// The host answers garbage for a while: the agent's passes fail and it backs off.
	e.host.SetFaults(hostapitest.Faults{Garbage: true})
	select {
	case <-failed:
	case <-time.After(agentWait):
		t.Fatal("the agent never failed a pass against a host answering garbage")
	}
	e.host.SetFaults(hostapitest.Faults{})

	// The controller asks for the update: the agent stages it now, not after its backoff.
	start := time.Now()
	e.setSpec(t, brupopv2.StateStagedAndPerformedUpdate, agentNewVersion)
	e.waitStatus(t, inState(brupopv2.StateStagedAndPerformedUpdate))
	if took := time.Since(start); took >= time.Minute {
		t.Errorf("the agent staged the update %s after the spec changed, want before its 1m backoff ended", took.Round(time.Millisecond))
	}
}
