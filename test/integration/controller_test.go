package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	brupopv2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/controller"
	"github.com/bottlerocket-os/brupop-go/internal/fixture"
	"github.com/bottlerocket-os/brupop-go/internal/metrics"
)

// fleetPolicy creates the FleetPolicy of ns, fixture.Policy with a short monitoring period and
// deadline, then mutate's changes.
func fleetPolicy(t *testing.T, c client.Client, ns string, mutate func(*brupopv2.FleetPolicySpec)) {
	t.Helper()
	fp := fixture.Policy(func(s *brupopv2.FleetPolicySpec) {
		s.Monitoring = &brupopv2.FleetPolicyMonitoring{Period: fixture.Duration(time.Second), Deadline: fixture.Duration(2 * time.Second)}
		if mutate != nil {
			mutate(s)
		}
	})
	fp.Namespace = ns
	if err := c.Create(context.Background(), fp); err != nil {
		t.Fatal(err)
	}
}

// TestControllerRestartedWithAnInvalidPolicyKeepsTheWindowClosed is the real-cluster side of the
// controller's unit tests: status.applied round-trips through the CRD's schema, so a controller
// restarted on a FleetPolicy made invalid (a cron typo the CRD cannot catch) keeps its closed
// window although its environment's schedule is always open.
func TestControllerRestartedWithAnInvalidPolicyKeepsTheWindowClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	closedHour := (time.Now().UTC().Hour() + 12) % 24
	fleetPolicy(t, c, ns, func(s *brupopv2.FleetPolicySpec) {
		s.Schedule = &brupopv2.FleetPolicySchedule{Cron: fmt.Sprintf("* * %d * * * *", closedHour)}
	})
	newFleet(t, c, ns, 2)
	cfg := controllerIdentity(t, c, ns, nil)
	first := startController(t, cfg, testOptions(ns, "unlimited"))
	key := client.ObjectKey{Namespace: ns, Name: brupopv2.DefaultFleetPolicyName}
	var fp brupopv2.FleetPolicy
	eventually(t, 20*time.Second, func() error {
		if err := c.Get(ctx, key, &fp); err != nil {
			return err
		}
		if a := fp.Status.Applied; a == nil || a.Spec.Schedule == nil || a.Spec.MaxConcurrentUpdates != "unlimited" {
			return fmt.Errorf("status.applied %+v, want the closed window and the environment's concurrency", a)
		}
		return nil
	})
	first.stop(t)
	fp.Spec.Schedule.Cron = "0 3 * * *" // five fields
	if err := c.Update(ctx, &fp); err != nil {
		t.Fatal(err)
	}
	startController(t, cfg, testOptions(ns, "unlimited"))
	eventually(t, 20*time.Second, func() error {
		if err := c.Get(ctx, key, &fp); err != nil {
			return err
		}
		ready := findCondition(fp.Status.Conditions, controller.ConditionReady)
		if ready == nil || ready.Reason != "InvalidPolicy" || ready.ObservedGeneration != fp.Generation || !strings.Contains(ready.Message, "settings of generation 1") {
			return fmt.Errorf("Ready condition %+v at generation %d, want InvalidPolicy keeping generation 1", ready, fp.Generation)
		}
		return nil
	})
	hasEvent(t, c, ns, brupopv2.DefaultFleetPolicyName, controller.EventInvalidPolicy, "keeps applying the settings of generation 1")
	holds(t, 2*time.Second, func() error {
		return noneStarted(ctx, c, ns, "after a restart with an invalid policy: the controller fell back to the always-open environment")
	})
}

// noneStarted returns an error naming a shadow of ns whose spec left Idle, why saying when.
func noneStarted(ctx context.Context, c client.Client, ns, why string) error {
	var list brupopv2.BottlerocketShadowList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return err
	}
	for _, s := range list.Items {
		if s.Spec.State != brupopv2.StateIdle {
			return fmt.Errorf("%s started %s", s.Name, why)
		}
	}
	return nil
}

func TestControllerFillsConcurrencyAtOnceAndNeverExceedsIt(t *testing.T) {
	t.Parallel()
	c := adminClient(t)
	ns := newNamespace(t, c)
	fleetPolicy(t, c, ns, nil) // concurrency from the environment: MAX_CONCURRENT_UPDATE=3
	fw := watchFleet(t, ns)
	names := newFleet(t, c, ns, 10)
	var requests requestCounter
	rc := startController(t, controllerIdentity(t, c, ns, &requests), testOptions(ns, "3"))

	// Without agents, the first nodes start and stay: exactly 3, all written by one pass.
	var started []brupopv2.BottlerocketShadow
	eventually(t, 20*time.Second, func() error {
		var list brupopv2.BottlerocketShadowList
		if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		started = started[:0]
		for _, s := range list.Items {
			if s.Spec.State == brupopv2.StateStagedAndPerformedUpdate {
				started = append(started, s)
			}
		}
		if len(started) != 3 {
			return fmt.Errorf("%d nodes started, want 3", len(started))
		}
		return nil
	})
	for _, s := range started[1:] {
		if !s.Spec.StateTransitionTimestamp.Equal(started[0].Spec.StateTransitionTimestamp) {
			t.Errorf("started at different times (not one pass): %s %v, %s %v", started[0].Name,
				started[0].Spec.StateTransitionTimestamp, s.Name, s.Spec.StateTransitionTimestamp)
		}
	}
	hasEvent(t, c, ns, started[0].Name, controller.EventUpdateStarted, "Started the update to "+ctrlNewVersion)
	hasEvent(t, c, metav1.NamespaceDefault, strings.TrimPrefix(started[0].Name, "brs-"), controller.EventUpdateStarted, ctrlNewVersion)

	begin := time.Now()
	runAgents(t, c, ns, nil)
	allUpdated(t, c, ns, len(names), 45*time.Second)
	maxInFlight, starts := fw.snapshot()
	if maxInFlight > 3 {
		t.Errorf("%d nodes were in flight at once, limit 3", maxInFlight)
	}
	for _, n := range names {
		if got := starts[brupopv2.ShadowName(n)]; got != 1 {
			t.Errorf("%s started %d times, want 1", n, got)
		}
	}
	if got := rc.gauge(t, metrics.HostsVersionName, ctrlNewVersion); got != 10 {
		t.Errorf("%s{%s} = %v, want 10", metrics.HostsVersionName, ctrlNewVersion, got)
	}
	if got := rc.gauge(t, metrics.HostsVersionName, ctrlOldVersion); got != 0 {
		t.Errorf("%s{%s} = %v, want 0 (kept, not removed)", metrics.HostsVersionName, ctrlOldVersion, got)
	}
	passes := rc.passes(t)
	t.Logf("rollout of 10 nodes at concurrency 3: %s, max in flight %d, %.0f passes, %d API requests (%.1f per pass, watches excluded)",
		time.Since(begin).Round(time.Millisecond), maxInFlight, passes, requests.n.Load(), float64(requests.n.Load())/passes)
}

func TestControllerHaltsAVersionAndResumesIt(t *testing.T) {
	t.Parallel()
	c := adminClient(t)
	ns := newNamespace(t, c)
	fleetPolicy(t, c, ns, func(s *brupopv2.FleetPolicySpec) { s.MaxConcurrentUpdates = "2" })
	names := newFleet(t, c, ns, 4) // the first two start first and fail their monitoring
	bad := map[string]bool{brupopv2.ShadowName(names[0]): true, brupopv2.ShadowName(names[1]): true}
	runAgents(t, c, ns, func(brs *brupopv2.BottlerocketShadow) bool {
		if bad[brs.Name] && brs.Spec.State == brupopv2.StateMonitoringUpdate {
			node := strings.TrimPrefix(brs.Name, "brs-")
			if err := nodeReady(context.Background(), c, node, false); err != nil { // the new version breaks the node
				return false // retried on the next tick
			}
		}
		return true
	})
	startController(t, controllerIdentity(t, c, ns, nil), testOptions(ns, "1"))

	var fp brupopv2.FleetPolicy
	eventually(t, 30*time.Second, func() error {
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: brupopv2.DefaultFleetPolicyName}, &fp); err != nil {
			return err
		}
		if len(fp.Status.Versions) != 1 || !fp.Status.Versions[0].Halted || len(fp.Status.Versions[0].Failures) != 2 {
			return fmt.Errorf("versions %+v, want %s halted by 2 failures", fp.Status.Versions, ctrlNewVersion)
		}
		return nil
	})
	v := fp.Status.Versions[0]
	resumeCmd := controller.ResumeCommand(ns, ctrlNewVersion)
	for _, f := range v.Failures {
		if f.Reason != "MonitoringFailed" || !bad[brupopv2.ShadowName(f.Node)] {
			t.Errorf("failure %+v, want MonitoringFailed on a bad node", f)
		}
	}
	if v.Version != ctrlNewVersion || !strings.Contains(v.Reason, names[0]) || !strings.Contains(v.Reason, names[1]) {
		t.Errorf("halt %+v does not name %s and both nodes", v, ctrlNewVersion)
	}
	cond := findCondition(fp.Status.Conditions, controller.ConditionHalted)
	if cond == nil || cond.Status != metav1.ConditionTrue || !strings.Contains(cond.Message, resumeCmd) {
		t.Errorf("Halted condition %+v lacks the resume command %q", cond, resumeCmd)
	}
	hasEvent(t, c, ns, brupopv2.DefaultFleetPolicyName, controller.EventRolloutHalted, resumeCmd)
	hasEvent(t, c, ns, brupopv2.ShadowName(names[0]), controller.EventRolloutHalted, "MonitoringFailed")
	hasEvent(t, c, ns, brupopv2.ShadowName(names[0]), controller.EventUpdateFailed, "not healthy")
	for _, n := range names[2:] {
		var brs brupopv2.BottlerocketShadow
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: brupopv2.ShadowName(n)}, &brs); err != nil {
			t.Fatal(err)
		}
		if brs.Spec.State != brupopv2.StateIdle {
			t.Fatalf("%s started while %s is halted", n, ctrlNewVersion)
		}
	}

	// The operator resumes with the exact command the status gives.
	args := append([]string{"--kubeconfig", cluster.KubeconfigPath}, strings.Fields(resumeCmd)[1:]...)
	if out, err := exec.Command(cluster.KubectlPath(), args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", resumeCmd, err, out)
	}
	eventually(t, 30*time.Second, func() error {
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: brupopv2.DefaultFleetPolicyName}, &fp); err != nil {
			return err
		}
		if _, ok := fp.Annotations[brupopv2.ResumeAnnotation]; ok {
			return fmt.Errorf("resume annotation not acknowledged")
		}
		if v := fp.Status.Versions[0]; v.Halted || v.ResumedAt == nil {
			return fmt.Errorf("version %+v still halted", v)
		}
		return nil
	})
	for _, n := range names[2:] {
		eventually(t, 30*time.Second, func() error {
			var brs brupopv2.BottlerocketShadow
			if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: brupopv2.ShadowName(n)}, &brs); err != nil {
				return err
			}
			if brs.Status.CurrentVersion != ctrlNewVersion || brs.Status.CurrentState != brupopv2.StateIdle {
				return fmt.Errorf("%s not updated after the resume: %+v", n, brs.Status)
			}
			return nil
		})
	}
}

func findCondition(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

func TestControllerRestartMidRolloutKeepsInFlightNodes(t *testing.T) {
	t.Parallel()
	c := adminClient(t)
	ns := newNamespace(t, c)
	fleetPolicy(t, c, ns, func(s *brupopv2.FleetPolicySpec) {
		s.MaxConcurrentUpdates = "2"
		s.Monitoring.Period = &metav1.Duration{Duration: 2 * time.Second}
	})
	fw := watchFleet(t, ns)
	names := newFleet(t, c, ns, 6)
	cfg := controllerIdentity(t, c, ns, nil)
	first := startController(t, cfg, testOptions(ns, "1"))
	runAgents(t, c, ns, nil)
	eventually(t, 20*time.Second, func() error {
		if _, starts := fw.snapshot(); len(starts) < 2 {
			return fmt.Errorf("%d nodes started", len(starts))
		}
		return nil
	})
	first.stop(t) // mid-rollout: two nodes in flight, the agents keep going
	startController(t, cfg, testOptions(ns, "1"))
	allUpdated(t, c, ns, len(names), 45*time.Second)
	maxInFlight, starts := fw.snapshot()
	if maxInFlight > 2 {
		t.Errorf("%d nodes in flight at once across the restart, limit 2", maxInFlight)
	}
	for _, n := range names {
		if got := starts[brupopv2.ShadowName(n)]; got != 1 {
			t.Errorf("%s started %d times across the restart, want 1", n, got)
		}
	}
}

func TestControllerRemovesShadowsOfOptedOutAndDeletedNodes(t *testing.T) {
	t.Parallel()
	c := adminClient(t)
	ns := newNamespace(t, c)
	names := newFleet(t, c, ns, 3)
	o := testOptions(ns, "1")
	o.MetricsAddr, o.HealthAddr = freeAddr(t), freeAddr(t)
	// Served from controller-runtime's registry, as cmd/controller does; a constant label keeps
	// the collectors of repeated runs (-count) apart.
	reg := prometheus.WrapRegistererWith(prometheus.Labels{"test_run": ns}, ctrlmetrics.Registry)
	startControllerWith(t, controllerIdentity(t, c, ns, nil), o, reg)
	for _, probe := range []struct{ url, want string }{
		{"http://" + o.HealthAddr + "/healthz", "ok"},
		{"http://" + o.HealthAddr + "/readyz", "ok"},
		{"http://" + o.MetricsAddr + "/metrics", `brupop_hosts_state{state="Idle",test_run="` + ns + `"} 3`},
		{"http://" + o.MetricsAddr + "/metrics", `brupop_hosts_version{bottlerocket_version="` + ctrlOldVersion + `",test_run="` + ns + `"} 3`},
	} {
		eventually(t, 15*time.Second, func() error { return httpContains(probe.url, probe.want) })
	}
	var node corev1.Node
	if err := c.Get(context.Background(), client.ObjectKey{Name: names[0]}, &node); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(node.DeepCopy())
	delete(node.Labels, brupopv2.NodeOptInLabel)
	if err := c.Patch(context.Background(), &node, patch); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: names[1]}},
		client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		t.Fatal(err)
	}
	for _, n := range names[:2] {
		eventually(t, 30*time.Second, func() error {
			err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: brupopv2.ShadowName(n)}, &brupopv2.BottlerocketShadow{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("shadow of %s still there: %w", n, err)
		})
	}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: brupopv2.ShadowName(names[2])}, &brupopv2.BottlerocketShadow{}); err != nil {
		t.Errorf("shadow of the opted-in node: %v", err)
	}
}

// freeAddr returns a free local TCP address.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// httpContains fetches url and checks that the body contains want.
func httpContains(url, want string) error {
	resp, err := http.Get(url) //nolint:gosec,noctx // a test URL of our own
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
		return fmt.Errorf("GET %s: %s, body lacks %q", url, resp.Status, want)
	}
	return nil
}

func TestControllerWithoutFleetPolicyKeepsAHaltAcrossARestart(t *testing.T) {
	t.Parallel()
	c := adminClient(t)
	ns := newNamespace(t, c) // no FleetPolicy: the environment's settings, budget 1
	names := newFleet(t, c, ns, 3)
	fw := watchFleet(t, ns)
	bad := brupopv2.ShadowName(names[0]) // starts first (same crash count: by name)
	runAgents(t, c, ns, func(brs *brupopv2.BottlerocketShadow) bool {
		if brs.Name != bad || brs.Spec.State != brupopv2.StateRebootedIntoUpdate || brs.Status.CurrentState == brupopv2.StateErrorReset {
			return true
		}
		// The new version does not boot: the agent reports a release failure.
		st := brs.Status
		st.CurrentState, st.CrashCount = brupopv2.StateErrorReset, st.CrashCount+1
		st.StateTransitionFailureTimestamp, st.FailureReason = ptr.To(metav1.Now()), "BootRolledBack: booted "+ctrlOldVersion
		_ = c.Status().Update(context.Background(), brs) // a conflict is retried on the next tick
		return false
	})
	cfg := controllerIdentity(t, c, ns, nil)
	first := startController(t, cfg, testOptions(ns, "1"))

	// The controller creates the FleetPolicy and keeps the halt in its status.
	halted := func() error {
		var fp brupopv2.FleetPolicy
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: brupopv2.DefaultFleetPolicyName}, &fp); err != nil {
			return err
		}
		if len(fp.Status.Versions) != 1 || !fp.Status.Versions[0].Halted || fp.Status.Versions[0].Version != ctrlNewVersion {
			return fmt.Errorf("versions %+v, want %s halted", fp.Status.Versions, ctrlNewVersion)
		}
		return nil
	}
	eventually(t, 30*time.Second, halted)
	first.stop(t)

	second := startController(t, cfg, testOptions(ns, "1"))
	eventually(t, 30*time.Second, func() error {
		if n := second.passes(t); n < 1 {
			return fmt.Errorf("%v passes after the restart", n)
		}
		return nil
	})
	if err := halted(); err != nil {
		t.Errorf("after the restart: %v", err)
	}
	for _, n := range names[1:] {
		var brs brupopv2.BottlerocketShadow
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: brupopv2.ShadowName(n)}, &brs); err != nil {
			t.Fatal(err)
		}
		if brs.Spec.State != brupopv2.StateIdle {
			t.Errorf("%s started (spec %s) on halted %s after the restart", n, brs.Spec.State, ctrlNewVersion)
		}
	}
	if _, starts := fw.snapshot(); len(starts) != 1 || starts[bad] != 1 {
		t.Errorf("starts %v, want only %s once", starts, bad)
	}
}
