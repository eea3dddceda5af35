//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/sim"
)

// TestBadReleaseHaltsUntilFixed: 1.21.0 fails to boot on every node, so the first nodes to try
// it roll back; the rollout halts within the failure budget. After a fixed 1.21.1 is published
// and the operator resumes, every node ends on 1.21.1.
func TestBadReleaseHaltsUntilFixed(t *testing.T) {
	const nodes, conc, budget = 5, 2, 1 // the FleetPolicy's default failure budget
	opts := options(nodes, conc)
	for i := range nodes {
		opts.Faults = append(opts.Faults, sim.Fault{Node: sim.NodeName(i), Step: sim.StepBoot})
	}
	s := newStory(t, opts)
	tried := map[string]bool{} // nodes that went in flight for the bad release
	s.onSample(func(snap sim.Snapshot) {
		for _, r := range snap.Rows {
			if r.InFlight && r.Target == "1.21.0" {
				tried[r.Name] = true
			}
		}
	})
	s.publish()
	s.waitFor("the rollout of 1.21.0 halted with no node in flight", 2*time.Minute, func(snap sim.Snapshot) bool {
		return snap.Halted && snap.InFlight == 0
	})
	s.mu.Lock()
	n := len(tried)
	s.mu.Unlock()
	if n == 0 || n > budget+conc {
		t.Fatalf("%d nodes tried the bad release, want 1 to %d (failure budget %d + concurrency %d)", n, budget+conc, budget, conc)
	}
	s.note("%d nodes tried 1.21.0 before it halted", n)

	// The nodes that rolled back take the fix at once: their failure was the release's, so no
	// per-node backoff delays them.
	if err := s.c.PublishFix("1.21.1"); err != nil {
		t.Fatal(err)
	}
	s.note("published the fix 1.21.1")
	s.kubectlBrupop("resume", "1.21.0")
	s.poll("the halt of 1.21.0 lifted", 30*time.Second, func(context.Context) bool {
		for _, v := range s.fleetPolicy().Status.Versions {
			if v.Version == "1.21.0" {
				return !v.Halted && v.ResumedAt != nil
			}
		}
		return false
	})
	end := s.waitFor("every node Idle on 1.21.1", 3*time.Minute, s.allOn("1.21.1"))
	s.checkInvariants()
	for _, r := range end.Rows {
		if r.CrashCount != 0 {
			t.Errorf("%s: crash count %d after its successful update, want 0", r.Name, r.CrashCount)
		}
	}
}

// TestComponentsKilled: agents are killed while staging, mid-drain and while monitoring, and the
// API server (mid-drain) and the controller are killed and restarted: the rollout finishes with
// no invariant broken and no node failed.
func TestComponentsKilled(t *testing.T) {
	const blocked = "node-02" // in the first wave: its drain waits until the story lets it go
	opts := options(6, 2)
	opts.PrepareTime = 2 * time.Second // long enough to be seen staging
	s := newStory(t, opts)
	ctx := t.Context()
	pdb := s.pinUnevictable("pinned", blocked)
	killed := map[v2.State]string{}
	kill := func(state v2.State, node string) {
		t.Helper()
		if err := s.c.RestartAgent(ctx, node); err != nil {
			t.Fatal(err)
		}
		killed[state] = node
		s.note("killed the agent of %s in %s", node, state)
	}
	s.publish()

	snap := s.waitFor("a node staging its update", time.Minute, func(snap sim.Snapshot) bool {
		return firstRow(snap, func(r sim.NodeRow) bool {
			return r.Desired == v2.StateStagedAndPerformedUpdate && r.State == v2.StateIdle
		}) != ""
	})
	kill(v2.StateStagedAndPerformedUpdate, firstRow(snap, func(r sim.NodeRow) bool {
		return r.Desired == v2.StateStagedAndPerformedUpdate && r.State == v2.StateIdle
	}))

	s.waitFor(blocked+" draining", time.Minute, func(snap sim.Snapshot) bool {
		r, ok := row(snap, blocked)
		return ok && r.Desired == v2.StateRebootedIntoUpdate && r.State == v2.StateStagedAndPerformedUpdate && r.Unschedulable
	})
	kill(v2.StateRebootedIntoUpdate, blocked)
	if err := s.c.RestartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	s.note("restarted the API server while %s drains", blocked)
	if err := s.c.Client().Delete(ctx, pdb); err != nil {
		t.Fatal(err)
	}
	s.note("deleted the PDB that held the drain of %s", blocked)

	snap = s.waitFor("a node monitoring its update", 2*time.Minute, func(snap sim.Snapshot) bool {
		return firstRow(snap, func(r sim.NodeRow) bool {
			return r.State == v2.StateMonitoringUpdate && r.Desired == v2.StateMonitoringUpdate
		}) != ""
	})
	kill(v2.StateMonitoringUpdate, firstRow(snap, func(r sim.NodeRow) bool {
		return r.State == v2.StateMonitoringUpdate && r.Desired == v2.StateMonitoringUpdate
	}))
	if snap.Updated == len(snap.Rows) {
		t.Fatal("every node updated before the controller could be killed mid-rollout")
	}
	if err := s.c.RestartController(ctx); err != nil {
		t.Fatal(err)
	}
	s.note("restarted the controller")

	end := s.waitFor("every node Idle on 1.21.0", 3*time.Minute, s.allOn("1.21.0"))
	s.checkInvariants()
	for _, r := range end.Rows {
		if r.CrashCount != 0 {
			t.Errorf("%s: crash count %d, want 0: a killed component made an update fail", r.Name, r.CrashCount)
		}
	}
	t.Logf("agents killed: %v", killed)
}

// firstRow returns the name of the first node whose row satisfies cond, or "".
func firstRow(snap sim.Snapshot, cond func(sim.NodeRow) bool) string {
	for _, r := range snap.Rows {
		if cond(r) {
			return r.Name
		}
	}
	return ""
}
