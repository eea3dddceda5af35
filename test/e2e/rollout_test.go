//go:build e2e

package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/fleetview"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
	"github.com/bottlerocket-os/brupop-go/internal/sim"
)

// TestHappyPath: ten nodes go from 1.20.0 to 1.21.0, three at a time, draining their workloads
// within the PDB.
func TestHappyPath(t *testing.T) {
	s := newStory(t, options(10, 3))
	s.publish()
	end := s.waitFor("every node Idle on 1.21.0", 4*time.Minute, s.allOn("1.21.0"))
	s.checkInvariants()
	for _, r := range end.Rows {
		if r.CrashCount != 0 {
			t.Errorf("%s: crash count %d, want 0", r.Name, r.CrashCount)
		}
	}
	if end.Evictions == 0 {
		t.Error("no workload pod was evicted: the drains did no work")
	}
	if s.maxLive < 2 {
		t.Errorf("at most %d node in flight: the rollout did not use its concurrency of 3", s.maxLive)
	}
}

// TestDrainBlockedByPDB: a pod on node-01 whose PDB allows no eviction makes that node's drain
// hit its deadline; the node is uncordoned and backs off, and the others finish.
func TestDrainBlockedByPDB(t *testing.T) {
	const blocked = "node-01"
	s := newStory(t, options(4, 2))
	s.pinUnevictable("pinned", blocked)
	// Long enough for the other nodes' drains, which wait on the demo PDB, to finish.
	s.patchFleetPolicy(map[string]any{"drainTimeout": "15s"})
	s.publish()
	end := s.waitFor("every other node Idle on 1.21.0 and "+blocked+" back to Idle after its failure", 3*time.Minute,
		func(snap sim.Snapshot) bool {
			r, ok := row(snap, blocked)
			return ok && s.allOn("1.21.0", blocked)(snap) && r.CrashCount == 1 && !r.InFlight && r.State == v2.StateIdle && !r.Unschedulable
		})
	s.checkInvariants()
	r, _ := row(end, blocked)
	if r.Version != "1.20.0" {
		t.Errorf("%s runs %s, want 1.20.0 (its update failed before the reboot)", blocked, r.Version)
	}
	brs, err := s.shadow(t.Context(), blocked)
	if err != nil || brs == nil || brs.Status == nil {
		t.Fatalf("shadow of %s: %v, %v", blocked, brs, err)
	}
	if !strings.HasPrefix(brs.Status.FailureReason, "DrainTimeout") {
		t.Errorf("%s failure reason %q, want DrainTimeout", blocked, brs.Status.FailureReason)
	}
	var st fleetview.Status
	if err := json.Unmarshal([]byte(s.kubectlBrupop("status", "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Nodes {
		if n.Node == blocked && (n.Phase != fleetview.PhaseWaiting || n.Reason != string(rollout.WaitBackoff)) {
			t.Errorf("kubectl brupop status says %s is %s (%s), want Waiting in Backoff", blocked, n.Phase, n.Reason)
		}
	}
}
