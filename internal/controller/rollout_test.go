package controller

import (
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/fixture"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// quickMonitoring is a FleetPolicy with a one-second monitoring period, as the integration
// tests use, and what mutate sets.
func quickMonitoring(mutate func(*v2.FleetPolicySpec)) *v2.FleetPolicy {
	return fixture.Policy(func(s *v2.FleetPolicySpec) {
		s.Monitoring = &v2.FleetPolicyMonitoring{Period: fixture.Duration(time.Second), Deadline: fixture.Duration(2 * time.Second)}
		if mutate != nil {
			mutate(s)
		}
	})
}

// roll runs passes of r, each followed by every agent's step and a second of the clock, until
// every node is Idle on version or steps run out. observe sees the fleet after each pass.
func (k *cluster) roll(r *Reconciler, steps int, version string, observe func([]v2.BottlerocketShadow)) {
	k.t.Helper()
	for range steps {
		k.pass(r)
		shadows := k.shadows()
		if observe != nil {
			observe(shadows)
		}
		if !slices.ContainsFunc(shadows, func(s v2.BottlerocketShadow) bool {
			return s.Spec.State != v2.StateIdle || s.Status.CurrentState != v2.StateIdle || s.Status.CurrentVersion != version
		}) {
			return
		}
		k.agents()
		k.clock.Step(time.Second)
	}
	for _, s := range k.shadows() {
		k.t.Errorf("%s: spec %s, status %s on %s after %d passes; want Idle on %s", s.Name, s.Spec.State, s.Status.CurrentState,
			s.Status.CurrentVersion, steps, version)
	}
}

// starts counts, per shadow, the passes at which its spec left Idle.
func starts(counts map[string]int, prev map[string]v2.State) func([]v2.BottlerocketShadow) {
	return func(shadows []v2.BottlerocketShadow) {
		for _, s := range shadows {
			if prev[s.Name] == v2.StateIdle && s.Spec.State != v2.StateIdle {
				counts[s.Name]++
			}
			prev[s.Name] = s.Spec.State
		}
	}
}

func fresh(shadows map[string]v2.State, n int) map[string]v2.State {
	for i := range n {
		shadows[v2.ShadowName(fixture.NodeName(i))] = v2.StateIdle
	}
	return shadows
}

// TestClosedWindowStartsNothing: nodes wait for the window, each announced once however many
// passes run; the status counts them waiting.
func TestClosedWindowStartsNothing(t *testing.T) {
	k := newCluster(t, append(fleet(3, nil), quickMonitoring(closedWindow))...)
	r := k.controller("ctl", rollout.Environment{MaxConcurrentUpdate: "unlimited"})
	res := k.pass(r)
	k.pass(r)
	if got := k.inFlight(); len(got) != 0 {
		t.Fatalf("closed window: started %v", got)
	}
	if c := k.policy().Status.Counts; c.Waiting != 3 || c.InFlight != 0 {
		t.Errorf("counts %+v, want 3 waiting and none in flight", c)
	}
	evs := k.drainEvents(EventWaitingForWindow)
	if len(evs) != 3*2 { // on each shadow and its Node, once
		t.Errorf("WaitingForWindow Events %q, want one per shadow and Node", evs)
	}
	for _, e := range evs {
		mustContain(t, "Event", e, "opens at 2026-05-07T03:00:00Z")
	}
	// The pass wakes when the window opens (03:00 the next day, 17 h from 10:00).
	if res.RequeueAfter != 17*time.Hour {
		t.Errorf("requeue after %s, want 17h (the window's opening)", res.RequeueAfter)
	}
	k.clock.Step(res.RequeueAfter)
	k.pass(r)
	if got := k.inFlight(); len(got) != 3 {
		t.Errorf("window open: in flight %v, want all 3", got)
	}
}

// TestCapsUpdatesAtMaxVersion: with maxVersion between the running and the offered version,
// nodes update to maxVersion and a node already there is left alone; lifting the cap updates
// every node to the newest.
func TestCapsUpdatesAtMaxVersion(t *testing.T) {
	const capVersion = "1.19.5" // between fixture.Old and fixture.New
	objs := fleet(3, nil)
	objs[5] = fixture.Shadow(fixture.NodeName(2), fixture.Reported(v2.StateIdle, capVersion, fixture.New))
	k := newCluster(t, append(objs, quickMonitoring(func(s *v2.FleetPolicySpec) { s.MaxVersion = capVersion }))...)
	r := k.controller("ctl", rollout.Environment{MaxConcurrentUpdate: "unlimited"})
	counts := map[string]int{}
	k.roll(r, 30, capVersion, starts(counts, fresh(map[string]v2.State{}, 3)))
	if atCap := v2.ShadowName(fixture.NodeName(2)); counts[atCap] != 0 || counts[v2.ShadowName(fixture.NodeName(0))] != 1 {
		t.Errorf("starts per shadow %v; want none for %s (already at maxVersion) and one for the others", counts, atCap)
	}
	for _, s := range k.shadows() {
		if s.Spec.Version != nil && *s.Spec.Version != capVersion {
			t.Errorf("%s was sent to %s, want %s", s.Name, *s.Spec.Version, capVersion)
		}
	}
	k.editPolicy(func(s *v2.FleetPolicySpec) { s.MaxVersion = "" })
	k.roll(r, 30, fixture.New, nil)
}

// TestSoaksANewRelease: nodes start on a newly offered version only once it has been offered for
// the soak, counted from the controller's first sight, kept in status.releases; once every node
// runs it, it is no longer listed.
func TestSoaksANewRelease(t *testing.T) {
	const soak = 4 * time.Second
	k := newCluster(t, append(fleet(2, nil), quickMonitoring(func(s *v2.FleetPolicySpec) { s.ReleaseSoak = fixture.Duration(soak) }))...)
	r := k.controller("ctl", rollout.Environment{MaxConcurrentUpdate: "unlimited"})
	res := k.pass(r)
	rel := k.policy().Status.Releases
	if len(rel) != 1 || rel[0].Version != fixture.New || !rel[0].FirstSeen.Time.Equal(fixture.T0) {
		t.Fatalf("status.releases %+v, want %s first seen at T0", rel, fixture.New)
	}
	if got := k.inFlight(); len(got) != 0 || res.RequeueAfter != soak {
		t.Fatalf("soaking: in flight %v, requeue after %s; want none, %s", got, res.RequeueAfter, soak)
	}
	if evs := k.drainEvents(EventReleaseSoaking); len(evs) != 4 {
		t.Errorf("ReleaseSoaking Events %q, want one per shadow and Node", evs)
	}
	// A new process soaks from the stored first sight, not from its own.
	r = k.controller("ctl", rollout.Environment{MaxConcurrentUpdate: "unlimited"})
	k.clock.Step(soak - time.Second)
	k.pass(r)
	if got := k.inFlight(); len(got) != 0 {
		t.Fatalf("a restarted controller started %v before the soak ended", got)
	}
	k.clock.Step(time.Second)
	k.pass(r)
	if got := k.inFlight(); len(got) != 2 {
		t.Fatalf("soak over: in flight %v, want both", got)
	}
	k.roll(r, 30, fixture.New, nil)
	k.pass(r)
	if rel := k.policy().Status.Releases; len(rel) != 0 {
		t.Errorf("status.releases %+v once every node runs it, want none", rel)
	}
}

// TestUpdatesOneZoneAtATime: with zones.maxInFlight 1 and no concurrency limit, the nodes of one
// zone update together and the other zone's wait; every node ends updated.
func TestUpdatesOneZoneAtATime(t *testing.T) {
	k := newCluster(t, append(append(
		fleet(2, []fixture.NodeOpt{fixture.Zone("zone-a")}),
		fleetFrom(2, 2, []fixture.NodeOpt{fixture.Zone("zone-b")})...),
		quickMonitoring(func(s *v2.FleetPolicySpec) { s.Zones = &v2.FleetPolicyZones{MaxInFlight: 1} }))...)
	r := k.controller("ctl", rollout.Environment{MaxConcurrentUpdate: "unlimited"})
	zoneOf := func(s v2.BottlerocketShadow) string {
		if s.Name == v2.ShadowName(fixture.NodeName(0)) || s.Name == v2.ShadowName(fixture.NodeName(1)) {
			return "zone-a"
		}
		return "zone-b"
	}
	mostZones, mostNodes := 0, 0
	k.roll(r, 60, fixture.New, func(shadows []v2.BottlerocketShadow) {
		zones, nodes := map[string]bool{}, 0
		for _, s := range shadows {
			if s.Spec.State != v2.StateIdle || s.Status.CurrentState != v2.StateIdle {
				zones[zoneOf(s)] = true
				nodes++
			}
		}
		mostZones, mostNodes = max(mostZones, len(zones)), max(mostNodes, nodes)
	})
	if mostZones != 1 || mostNodes != 2 {
		t.Errorf("at most %d zones and %d nodes in flight at once; want 1 zone with both its nodes", mostZones, mostNodes)
	}
}

// TestStuckNodeTimesOutAndFreesItsSlot: a node whose agent never stages times out, is reset
// with a StateTimeout record, and the next node takes the slot with the policy's drain timeout.
func TestStuckNodeTimesOutAndFreesItsSlot(t *testing.T) {
	k := newCluster(t, append(fleet(2, nil), quickMonitoring(func(s *v2.FleetPolicySpec) {
		s.StateTimeouts = &v2.FleetPolicyStateTimeouts{StagedAndPerformedUpdate: fixture.Duration(2 * time.Second)}
		s.DrainTimeout = fixture.Duration(90 * time.Second)
	}))...)
	r := k.controller("ctl", alwaysOpen)
	k.pass(r)
	stuck := v2.ShadowName(fixture.NodeName(0)) // same crash count: by name
	if got := k.inFlight(); !slices.Equal(got, []string{fixture.NodeName(0)}) {
		t.Fatalf("in flight %v, want %s first", got, fixture.NodeName(0))
	}
	k.clock.Step(3 * time.Second) // its agent never answers
	k.pass(r)
	evs := k.drainEvents(EventUpdateTimedOut)
	if len(evs) == 0 {
		t.Fatal("no UpdateTimedOut Event")
	}
	mustContain(t, "Event", evs[0], "did not reach StagedAndPerformedUpdate within 2s")
	for _, s := range k.shadows() {
		switch s.Name {
		case stuck:
			if s.Spec.State != v2.StateIdle || !strings.Contains(s.Annotations[statemachine.RecordAnnotation], "StateTimeout") {
				t.Errorf("stuck node: spec %s, annotations %v; want Idle with a StateTimeout record", s.Spec.State, s.Annotations)
			}
		default:
			if s.Spec.State == v2.StateIdle || s.Annotations[v2.DrainTimeoutAnnotation] != "1m30s" {
				t.Errorf("second node: spec %s, drain timeout %q; want started with 1m30s", s.Spec.State, s.Annotations[v2.DrainTimeoutAnnotation])
			}
		}
	}
}

// fleetFrom is fleet with node indexes from first on.
func fleetFrom(first, n int, nodeOpts []fixture.NodeOpt) []client.Object {
	var objs []client.Object
	for i := first; i < first+n; i++ {
		objs = append(objs, fixture.Node(fixture.NodeName(i), nodeOpts...), fixture.Shadow(fixture.NodeName(i)))
	}
	return objs
}
