package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	brupopv2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/controller"
	"github.com/bottlerocket-os/brupop-go/internal/metrics"
)

// fleetPolicy creates the FleetPolicy of ns with a short monitoring period and deadlines.
func fleetPolicy(t *testing.T, c client.Client, ns string, mutate func(*brupopv2.FleetPolicySpec)) {
	t.Helper()
	fp := &brupopv2.FleetPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: brupopv2.DefaultFleetPolicyName},
		Spec: brupopv2.FleetPolicySpec{Monitoring: &brupopv2.FleetPolicyMonitoring{
			Period: &metav1.Duration{Duration: time.Second}, Deadline: &metav1.Duration{Duration: 2 * time.Second}}}}
	if mutate != nil {
		mutate(&fp.Spec)
	}
	if err := c.Create(context.Background(), fp); err != nil {
		t.Fatal(err)
	}
}

// closedWindowFleet creates n fleet nodes of ns under a FleetPolicy whose window stays closed
// for hours, starts a controller, and returns the node names.
func closedWindowFleet(t *testing.T, c client.Client, ns string, n int) []string {
	t.Helper()
	closedHour := (time.Now().UTC().Hour() + 12) % 24
	fleetPolicy(t, c, ns, func(s *brupopv2.FleetPolicySpec) {
		s.Schedule = &brupopv2.FleetPolicySchedule{Cron: fmt.Sprintf("* * %d * * * *", closedHour)}
	})
	names := nodeNames(ns, n)
	for _, name := range names {
		newFleetNode(t, c, ns, name)
	}
	startController(t, controllerIdentity(t, c, ns, nil), testOptions(ns, "unlimited"))
	return names
}

// touchStatus writes the node's shadow status, as an agent reporting would, to cause a pass.
func touchStatus(t *testing.T, c client.Client, ns, node string) {
	t.Helper()
	var brs brupopv2.BottlerocketShadow
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: brupopv2.ShadowName(node)}, &brs); err != nil {
		t.Fatal(err)
	}
	brs.Status.CrashCount = 0
	brs.Status.FailureReason = "touched"
	if err := c.Status().Update(context.Background(), &brs); err != nil {
		t.Fatal(err)
	}
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

func nodeNames(ns string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-n%02d", ns, i)
	}
	return names
}

func TestControllerFillsConcurrencyAtOnceAndNeverExceedsIt(t *testing.T) {
	t.Parallel()
	c := adminClient(t)
	ns := newNamespace(t, c)
	fleetPolicy(t, c, ns, nil) // concurrency from the environment: MAX_CONCURRENT_UPDATE=3
	fw := watchFleet(t, ns)
	names := nodeNames(ns, 10)
	for _, n := range names {
		newFleetNode(t, c, ns, n)
	}
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

func TestControllerClosedWindowStartsNothing(t *testing.T) {
	t.Parallel()
	c := adminClient(t)
	ns := newNamespace(t, c)
	names := closedWindowFleet(t, c, ns, 3)
	eventually(t, 20*time.Second, func() error {
		var fp brupopv2.FleetPolicy
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: brupopv2.DefaultFleetPolicyName}, &fp); err != nil {
			return err
		}
		if fp.Status.Counts.Waiting != 3 || fp.Status.Counts.InFlight != 0 {
			return fmt.Errorf("counts %+v, want 3 waiting and none in flight", fp.Status.Counts)
		}
		return nil
	})
	for _, n := range names {
		hasEvent(t, c, ns, brupopv2.ShadowName(n), controller.EventWaitingForWindow, "waits for the update window")
	}
	// More passes (a status write by an agent) must not start anything nor repeat the Event.
	touchStatus(t, c, ns, names[0])
	eventually(t, 10*time.Second, func() error {
		return noneStarted(context.Background(), c, ns, "in a closed window")
	})
	for _, n := range names {
		evs := events(t, c, ns, brupopv2.ShadowName(n), controller.EventWaitingForWindow)
		if len(evs) != 1 || (evs[0].Series != nil && evs[0].Series.Count > 1) {
			t.Errorf("%s: WaitingForWindow Events %d (series %v), want one, once", n, len(evs), evs[0].Series)
		}
	}
}

// TestControllerKeepsTheLastValidPolicy breaks a FleetPolicy that keeps the window closed: the
// controller says so (status, one Warning Event) and keeps the closed window rather than falling
// back to "always open"; once fixed, the policy applies.
func TestControllerKeepsTheLastValidPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	names := closedWindowFleet(t, c, ns, 2)
	key := client.ObjectKey{Namespace: ns, Name: brupopv2.DefaultFleetPolicyName}
	readyCondition := func(want metav1.ConditionStatus, reason, text string) {
		t.Helper()
		eventually(t, 20*time.Second, func() error {
			var fp brupopv2.FleetPolicy
			if err := c.Get(ctx, key, &fp); err != nil {
				return err
			}
			ready := meta.FindStatusCondition(fp.Status.Conditions, controller.ConditionReady)
			if ready == nil || ready.Status != want || ready.Reason != reason || !strings.Contains(ready.Message, text) || ready.ObservedGeneration != fp.Generation {
				return fmt.Errorf("Ready condition %+v at generation %d, want %s %s mentioning %q", ready, fp.Generation, want, reason, text)
			}
			return nil
		})
	}
	readyCondition(metav1.ConditionTrue, "Applied", "")
	setSchedule := func(cron string) {
		t.Helper()
		var fp brupopv2.FleetPolicy
		if err := c.Get(ctx, key, &fp); err != nil {
			t.Fatal(err)
		}
		fp.Spec.Schedule.Cron = cron
		if err := c.Update(ctx, &fp); err != nil {
			t.Fatal(err)
		}
	}

	setSchedule("every night at ten")
	readyCondition(metav1.ConditionFalse, "InvalidPolicy", "every night at ten")
	hasEvent(t, c, ns, brupopv2.DefaultFleetPolicyName, controller.EventInvalidPolicy, "keeps the last valid settings")
	// Passes go on (a status write), still in the closed window, and the Event is not repeated.
	touchStatus(t, c, ns, names[0])
	holds(t, 2*time.Second, func() error {
		return noneStarted(ctx, c, ns, "while the policy was invalid: the controller dropped the closed window")
	})
	if evs := events(t, c, ns, brupopv2.DefaultFleetPolicyName, controller.EventInvalidPolicy); len(evs) != 1 || (evs[0].Series != nil && evs[0].Series.Count > 1) {
		t.Errorf("InvalidPolicy Events: %d, want one, once", len(evs))
	}

	setSchedule("* * * * * *") // always open
	readyCondition(metav1.ConditionTrue, "Applied", "")
	eventually(t, 20*time.Second, func() error {
		var list brupopv2.BottlerocketShadowList
		if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, s := range list.Items {
			if s.Spec.State == brupopv2.StateIdle {
				return fmt.Errorf("%s did not start once the policy was fixed", s.Name)
			}
		}
		return nil
	})
}

// TestControllerCapsUpdatesAtMaxVersion: with maxVersion between the running and the offered
// version, nodes update to maxVersion and a node already there is left alone; lifting the cap
// (as after a staging fleet validated the newest) updates every node to it.
func TestControllerCapsUpdatesAtMaxVersion(t *testing.T) {
	t.Parallel()
	const capVersion = "1.19.5" // between ctrlOldVersion and ctrlNewVersion
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	fleetPolicy(t, c, ns, func(s *brupopv2.FleetPolicySpec) { s.MaxVersion = capVersion })
	fw := watchFleet(t, ns)
	names := nodeNames(ns, 3)
	for _, n := range names {
		newFleetNode(t, c, ns, n)
	}
	atCap := brupopv2.ShadowName(names[2])
	var brs brupopv2.BottlerocketShadow
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: atCap}, &brs); err != nil {
		t.Fatal(err)
	}
	brs.Status.CurrentVersion = capVersion
	if err := c.Status().Update(ctx, &brs); err != nil {
		t.Fatal(err)
	}
	runAgents(t, c, ns, nil)
	startController(t, controllerIdentity(t, c, ns, nil), testOptions(ns, "unlimited"))

	versions := func(want string) {
		t.Helper()
		eventually(t, 30*time.Second, func() error {
			var list brupopv2.BottlerocketShadowList
			if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
				return err
			}
			for _, s := range list.Items {
				if s.Status == nil || s.Status.CurrentVersion != want || s.Status.CurrentState != brupopv2.StateIdle || s.Spec.State != brupopv2.StateIdle {
					return fmt.Errorf("%s: spec %s, status %+v; want Idle on %s", s.Name, s.Spec.State, s.Status, want)
				}
			}
			return nil
		})
	}
	versions(capVersion)
	_, starts := fw.snapshot()
	if starts[atCap] != 0 || starts[brupopv2.ShadowName(names[0])] != 1 {
		t.Errorf("starts per shadow %v; want none for %s (already at maxVersion) and one for the others", starts, atCap)
	}

	var fp brupopv2.FleetPolicy
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: brupopv2.DefaultFleetPolicyName}, &fp); err != nil {
		t.Fatal(err)
	}
	fp.Spec.MaxVersion = ""
	if err := c.Update(ctx, &fp); err != nil {
		t.Fatal(err)
	}
	versions(ctrlNewVersion)
}

// TestControllerSoaksANewRelease: with a release soak, nodes start on a newly offered version only
// once it has been offered for the soak, counted from when the controller first saw it, which
// the FleetPolicy's status keeps; once every node runs it, it is no longer listed.
func TestControllerSoaksANewRelease(t *testing.T) {
	t.Parallel()
	const soak = 4 * time.Second
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	fleetPolicy(t, c, ns, func(s *brupopv2.FleetPolicySpec) { s.ReleaseSoak = &metav1.Duration{Duration: soak} })
	names := nodeNames(ns, 2)
	for _, n := range names {
		newFleetNode(t, c, ns, n)
	}
	runAgents(t, c, ns, nil)
	startController(t, controllerIdentity(t, c, ns, nil), testOptions(ns, "unlimited"))

	key := client.ObjectKey{Namespace: ns, Name: brupopv2.DefaultFleetPolicyName}
	var firstSeen time.Time
	eventually(t, 20*time.Second, func() error {
		var fp brupopv2.FleetPolicy
		if err := c.Get(ctx, key, &fp); err != nil {
			return err
		}
		if len(fp.Status.Releases) != 1 || fp.Status.Releases[0].Version != ctrlNewVersion {
			return fmt.Errorf("status.releases %+v, want %s", fp.Status.Releases, ctrlNewVersion)
		}
		firstSeen = fp.Status.Releases[0].FirstSeen.Time
		return nil
	})
	for _, n := range names {
		hasEvent(t, c, ns, brupopv2.ShadowName(n), controller.EventReleaseSoaking, "waits for the release soak")
	}
	allUpdated(t, c, ns, len(names), 30*time.Second)
	for _, n := range names {
		evs := events(t, c, ns, brupopv2.ShadowName(n), controller.EventUpdateStarted)
		if len(evs) != 1 {
			t.Fatalf("%s: %d UpdateStarted Events, want 1", n, len(evs))
		}
		// firstSeen is stored to the second: the soak ends no earlier than firstSeen + soak.
		if started := evs[0].EventTime.Time; started.Before(firstSeen.Add(soak)) {
			t.Errorf("%s started at %s, before the soak ended (first seen %s + %s)", n, started, firstSeen, soak)
		}
	}
	eventually(t, 20*time.Second, func() error {
		var fp brupopv2.FleetPolicy
		if err := c.Get(ctx, key, &fp); err != nil {
			return err
		}
		if len(fp.Status.Releases) != 0 {
			return fmt.Errorf("status.releases %+v once every node runs it, want none", fp.Status.Releases)
		}
		return nil
	})
}

// TestControllerUpdatesOneZoneAtATime: with zones.maxInFlight 1 and no concurrency limit, the
// nodes of one zone update together and the other zone's wait; every node ends updated.
func TestControllerUpdatesOneZoneAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	fleetPolicy(t, c, ns, func(s *brupopv2.FleetPolicySpec) { s.Zones = &brupopv2.FleetPolicyZones{MaxInFlight: 1} })
	names := nodeNames(ns, 4)
	zoneOf := map[string]string{}
	for i, n := range names {
		newFleetNode(t, c, ns, n)
		zoneOf[brupopv2.ShadowName(n)] = fmt.Sprintf("zone-%d", i%2)
		var node corev1.Node
		if err := c.Get(ctx, client.ObjectKey{Name: n}, &node); err != nil {
			t.Fatal(err)
		}
		orig := node.DeepCopy()
		node.Labels[brupopv2.DefaultZoneLabel] = zoneOf[brupopv2.ShadowName(n)]
		if err := c.Patch(ctx, &node, client.MergeFrom(orig)); err != nil { // no conflict with status writers
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	mostZones, mostNodes := 0, 0
	everyTick(t, 20*time.Millisecond, func(ctx context.Context) {
		var list brupopv2.BottlerocketShadowList
		if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return
		}
		zones, nodes := map[string]bool{}, 0
		for _, s := range list.Items {
			if s.Status != nil && (s.Spec.State != brupopv2.StateIdle || s.Status.CurrentState != brupopv2.StateIdle) {
				zones[zoneOf[s.Name]] = true
				nodes++
			}
		}
		mu.Lock()
		mostZones, mostNodes = max(mostZones, len(zones)), max(mostNodes, nodes)
		mu.Unlock()
	})
	runAgents(t, c, ns, nil)
	startController(t, controllerIdentity(t, c, ns, nil), testOptions(ns, "unlimited"))
	allUpdated(t, c, ns, len(names), 60*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if mostZones != 1 || mostNodes != 2 {
		t.Errorf("at most %d zones and %d nodes in flight at once; want 1 zone with both its nodes", mostZones, mostNodes)
	}
}

func TestControllerStuckNodeTimesOutAndFreesItsSlot(t *testing.T) {
	t.Parallel()
	c := adminClient(t)
	ns := newNamespace(t, c)
	fleetPolicy(t, c, ns, func(s *brupopv2.FleetPolicySpec) {
		s.StateTimeouts = &brupopv2.FleetPolicyStateTimeouts{StagedAndPerformedUpdate: &metav1.Duration{Duration: 2 * time.Second}}
		s.DrainTimeout = &metav1.Duration{Duration: 90 * time.Second}
	})
	names := nodeNames(ns, 2) // names[0] starts first (same crash count: by name)
	for _, n := range names {
		newFleetNode(t, c, ns, n)
	}
	stuck := brupopv2.ShadowName(names[0])
	runAgents(t, c, ns, func(brs *brupopv2.BottlerocketShadow) bool {
		return brs.Name != stuck || brs.Spec.State == brupopv2.StateIdle
	})
	startController(t, controllerIdentity(t, c, ns, nil), testOptions(ns, "1"))
	hasEvent(t, c, ns, stuck, controller.EventUpdateTimedOut, "did not reach StagedAndPerformedUpdate within 2s")
	eventually(t, 30*time.Second, func() error {
		var brs brupopv2.BottlerocketShadow
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: brupopv2.ShadowName(names[1])}, &brs); err != nil {
			return err
		}
		if brs.Status.CurrentVersion != ctrlNewVersion || brs.Status.CurrentState != brupopv2.StateIdle {
			return fmt.Errorf("second node: %+v", brs.Status)
		}
		if got := brs.Annotations[brupopv2.DrainTimeoutAnnotation]; got != "1m30s" {
			return fmt.Errorf("drain timeout annotation %q, want 1m30s", got)
		}
		return nil
	})
	var brs brupopv2.BottlerocketShadow
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: stuck}, &brs); err != nil {
		t.Fatal(err)
	}
	if brs.Spec.State != brupopv2.StateIdle || !strings.Contains(brs.Annotations["brupop.bottlerocket.aws/controller-failures"], "StateTimeout") {
		t.Errorf("stuck node: spec %s, annotations %v; want Idle with a StateTimeout record", brs.Spec.State, brs.Annotations)
	}
}

func TestControllerHaltsAVersionAndResumesIt(t *testing.T) {
	t.Parallel()
	c := adminClient(t)
	ns := newNamespace(t, c)
	fleetPolicy(t, c, ns, func(s *brupopv2.FleetPolicySpec) { s.MaxConcurrentUpdates = "2" })
	names := nodeNames(ns, 4) // the first two start first and fail their monitoring
	for _, n := range names {
		newFleetNode(t, c, ns, n)
	}
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
	names := nodeNames(ns, 6)
	for _, n := range names {
		newFleetNode(t, c, ns, n)
	}
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
	names := nodeNames(ns, 3)
	for _, n := range names {
		newFleetNode(t, c, ns, n)
	}
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
	names := nodeNames(ns, 3)
	for _, n := range names {
		newFleetNode(t, c, ns, n)
	}
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
