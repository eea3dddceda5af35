package controller

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/fixture"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
)

// TestRestartWithAnInvalidPolicyKeepsTheWindowClosed: a closed window is applied; the policy
// then breaks (a cron typo the CRD cannot catch) and the controller restarts, or another replica
// takes over. The environment's schedule is always open, yet nothing starts: the new process
// applies the settings stored in status.applied. The invalid policy is announced once, across
// both processes.
func TestRestartWithAnInvalidPolicyKeepsTheWindowClosed(t *testing.T) {
	k := newCluster(t, append(fleet(3, nil), fixture.Policy(closedWindow))...)
	first := k.controller("ctl-a", alwaysOpen)
	k.pass(first)
	if got := k.inFlight(); len(got) != 0 {
		t.Fatalf("closed window: started %v", got)
	}
	applied := k.policy().Status.Applied
	if applied == nil || applied.Generation != 1 || applied.Spec.Schedule.Cron != "* * 3-4 * * *" || applied.Spec.MaxConcurrentUpdates != "1" {
		t.Fatalf("status.applied = %+v, want generation 1 with the closed window and the environment's concurrency", applied)
	}

	k.editPolicy(invalidCron)
	k.pass(first)
	k.pass(k.controller("ctl-a", alwaysOpen)) // restarted
	k.pass(k.controller("ctl-b", alwaysOpen)) // failed over
	if got := k.inFlight(); len(got) != 0 {
		t.Fatalf("invalid policy after a restart: started %v in a closed window", got)
	}
	ready := k.ready()
	if ready.Status != metav1.ConditionFalse || ready.Reason != reasonInvalidPolicy || ready.ObservedGeneration != 2 {
		t.Errorf("Ready = %+v, want False InvalidPolicy at generation 2", ready)
	}
	mustContain(t, "Ready message", ready.Message, "0 3 * * *")
	mustContain(t, "Ready message", ready.Message, "settings of generation 1")
	if a := k.policy().Status.Applied; a == nil || a.Generation != 1 || !a.Time.Equal(&applied.Time) {
		t.Errorf("status.applied = %+v, want generation 1 kept as it was", a)
	}
	if evs := k.drainEvents(EventInvalidPolicy); len(evs) != 1 {
		t.Errorf("InvalidPolicy Events %q, want one across the restarts", evs)
	}

	// Fixed: the new settings apply at once, in any process.
	k.editPolicy(func(s *v2.FleetPolicySpec) { s.Schedule = nil; s.MaxConcurrentUpdates = "2" })
	k.pass(k.controller("ctl-c", alwaysOpen))
	if got := k.inFlight(); len(got) != 2 {
		t.Errorf("fixed policy with concurrency 2: in flight %v", got)
	}
	if r := k.ready(); r.Status != metav1.ConditionTrue || k.policy().Status.Applied.Generation != 3 {
		t.Errorf("fixed policy: Ready %s, applied generation %d; want True, 3", r.Status, k.policy().Status.Applied.Generation)
	}
}

// TestAnInvalidPolicyNeverAppliedStartsNothing: with no applied settings to fall back to, the
// controller starts nothing (not the environment's always-open defaults) and says why.
func TestAnInvalidPolicyNeverAppliedStartsNothing(t *testing.T) {
	k := newCluster(t, append(fleet(2, nil), fixture.Policy(invalidCron))...)
	r := k.controller("ctl-a", rollout.Environment{MaxConcurrentUpdate: "unlimited"})
	k.pass(r)
	k.pass(r)
	if got := k.inFlight(); len(got) != 0 {
		t.Fatalf("invalid policy, nothing applied: started %v", got)
	}
	ready := k.ready()
	if ready.Status != metav1.ConditionFalse || ready.Reason != reasonInvalidPolicy {
		t.Errorf("Ready = %+v, want False InvalidPolicy", ready)
	}
	mustContain(t, "Ready message", ready.Message, "no update starts")
	if a := k.policy().Status.Applied; a != nil {
		t.Errorf("status.applied = %+v, want none: nothing valid was applied", a)
	}
	if evs := k.drainEvents(EventInvalidPolicy); len(evs) != 1 {
		t.Errorf("InvalidPolicy Events %q, want one", evs)
	}
	if n := k.policy().Status.Counts.Waiting; n != 2 {
		t.Errorf("status counts %d waiting, want 2", n)
	}
}

// TestFailoverMidRolloutKeepsTheSameSettings: a rollout at concurrency 2 runs under controller A;
// the policy breaks and B, whose environment says 5 and whose schedule is open, takes over. B
// finishes the rollout with A's settings: never more than 2 nodes in flight, every node updated.
func TestFailoverMidRolloutKeepsTheSameSettings(t *testing.T) {
	k := newCluster(t, append(fleet(6, nil), fixture.Policy(func(s *v2.FleetPolicySpec) {
		s.MaxConcurrentUpdates = "2"
		s.Monitoring = &v2.FleetPolicyMonitoring{Period: fixture.Duration(0)}
	}))...)
	a := k.controller("ctl-a", alwaysOpen)
	k.pass(a)
	if got := k.inFlight(); len(got) != 2 {
		t.Fatalf("controller A: in flight %v, want 2", got)
	}
	k.agents()
	k.pass(a)
	k.editPolicy(invalidCron)

	b := k.controller("ctl-b", rollout.Environment{MaxConcurrentUpdate: "5"})
	most := 0
	k.roll(b, 40, fixture.New, func([]v2.BottlerocketShadow) { most = max(most, len(k.inFlight())) })
	if most > 2 {
		t.Errorf("after the failover %d nodes were in flight at once, want at most 2 (the applied settings)", most)
	}
	if st := k.policy().Status; st.ControllerNode != "ctl-b" || st.Applied.Spec.MaxConcurrentUpdates != "2" {
		t.Errorf("status controllerNode %q, applied concurrency %q; want ctl-b, 2", st.ControllerNode, st.Applied.Spec.MaxConcurrentUpdates)
	}
}

// TestTheLedgerLivesInStatus: a release failure halts the version in status; a new process
// reads the halt from there (nothing in its memory) and does not announce it again.
func TestTheLedgerLivesInStatus(t *testing.T) {
	budget := int32(1)
	objs := fleet(3, nil, fixture.Updating(v2.StateMonitoringUpdate, -time.Hour, v2.StateMonitoringUpdate))
	// node-0 never became healthy after its reboot: its monitoring fails, a release failure.
	objs[0] = fixture.Node(fixture.NodeName(0), fixture.NotReady())
	k := newCluster(t, append(objs, fixture.Policy(func(s *v2.FleetPolicySpec) {
		s.FailureBudget = &budget
		s.Monitoring = &v2.FleetPolicyMonitoring{Period: fixture.Duration(time.Minute), Deadline: fixture.Duration(time.Minute)}
	}))...)
	k.pass(k.controller("ctl-a", alwaysOpen))
	st := k.policy().Status
	i := slices.IndexFunc(st.Versions, func(v v2.FleetPolicyVersionStatus) bool { return v.Version == fixture.New })
	if i < 0 || !st.Versions[i].Halted || len(st.Versions[i].Failures) != 1 || st.Versions[i].Failures[0].Node != fixture.NodeName(0) {
		t.Fatalf("status versions %+v, want %s halted after node-0's failure", st.Versions, fixture.New)
	}
	if evs := k.drainEvents(EventRolloutHalted); len(evs) == 0 {
		t.Error("no RolloutHalted Event")
	}
	// A new process reads the halt from status and does not announce it again.
	k.pass(k.controller("ctl-b", alwaysOpen))
	if evs := k.drainEvents(EventRolloutHalted); len(evs) != 0 {
		t.Errorf("a new process announced the stored halt again: %q", evs)
	}
	if st := k.policy().Status; len(st.Versions) != 1 || !st.Versions[0].Halted {
		t.Errorf("status versions after a restart %+v, want the halt kept", st.Versions)
	}
}

// TestACacheThatNeverCatchesUpDoesNotStallThePasses: passes wait for the cache to show the
// FleetPolicy last written, but not for ever (etcd restored from a backup has lower revisions).
func TestACacheThatNeverCatchesUpDoesNotStallThePasses(t *testing.T) {
	k := newCluster(t, append(fleet(1, nil), fixture.Policy(nil))...)
	r := k.controller("ctl", alwaysOpen)
	k.pass(r)
	if got := k.inFlight(); len(got) != 1 {
		t.Fatalf("in flight %v, want node-0", got)
	}
	// This process remembers a write far ahead of anything the cluster will show.
	r.policyWritten.resourceVersion += 1 << 40
	if res := k.pass(r); res.RequeueAfter != retryStale {
		t.Fatalf("a pass behind the cache: requeue after %s, want %s", res.RequeueAfter, retryStale)
	}
	k.clock.Step(policyWaitLimit)
	k.agents()
	k.pass(r)
	if st := k.shadows()[0].Spec.State; st == v2.StateStagedAndPerformedUpdate {
		t.Errorf("after %s the pass still waited for the cache: spec %s", policyWaitLimit, st)
	}
}
