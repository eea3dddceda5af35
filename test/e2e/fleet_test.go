//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/sim"
	"github.com/bottlerocket-os/brupop-go/internal/window"
)

// closedFor is how long the update window of TestWindowClosesMidRollout stays closed.
const closedFor = 15 * time.Second

// TestWindowClosesMidRollout: the FleetPolicy's cron window closes while nodes are in flight;
// they finish, no node starts until the window opens again, then every node finishes.
func TestWindowClosesMidRollout(t *testing.T) {
	opts := options(5, 2)
	opts.PrepareTime = 2 * time.Second // every start is seen while the node stages
	s := newStory(t, opts)
	started := map[string]time.Time{} // when the controller started each node (to the second)
	s.onSample(func(snap sim.Snapshot) {
		for _, r := range snap.Rows {
			if _, ok := started[r.Name]; !ok && r.Desired == v2.StateStagedAndPerformedUpdate {
				started[r.Name] = r.DesiredSince
			}
		}
	})
	s.publish()
	s.waitFor("a node in flight", time.Minute, func(snap sim.Snapshot) bool { return snap.InFlight > 0 })

	// A window open now, closed for closedFor from two seconds on (each minute: cron has no
	// better grain), evaluated by the controller's clock like any schedule.
	closeAt := time.Now().Truncate(time.Second).Add(2 * time.Second)
	cron := closedSeconds(closeAt.UTC().Second(), int(closedFor/time.Second))
	sched, err := window.Parse(cron, time.UTC)
	if err != nil {
		t.Fatalf("cron %q: %v", cron, err)
	}
	s.patchFleetPolicy(map[string]any{"schedule": map[string]any{"cron": cron}})
	s.note("window closes at %s for %s", closeAt.UTC().Format(time.TimeOnly), closedFor)
	reopen := closeAt.Add(closedFor)

	atClose := s.waitFor("the window to close", 10*time.Second, func(snap sim.Snapshot) bool { return !snap.At.Before(closeAt) })
	var inFlight []string
	for _, r := range atClose.Rows {
		if r.InFlight {
			inFlight = append(inFlight, r.Name)
		}
	}
	s.waitFor(fmt.Sprintf("the nodes in flight when the window closed (%v) to finish", inFlight), 2*time.Minute, func(snap sim.Snapshot) bool {
		for _, name := range inFlight {
			if r, ok := row(snap, name); !ok || !r.Updated {
				return false
			}
		}
		return true
	})
	s.waitFor("every node Idle on 1.21.0", 3*time.Minute, s.allOn("1.21.0"))
	s.checkInvariants()

	before, after := 0, 0
	for node, at := range started {
		if !sched.Contains(at) {
			t.Errorf("%s started at %s, while the window %q was closed", node, at.UTC().Format(time.TimeOnly), cron)
		}
		switch {
		case at.Before(closeAt):
			before++
		case !at.Before(reopen):
			after++
		}
	}
	if before == 0 || after == 0 || len(started) != 5 {
		t.Errorf("starts %v: want every node started, some before %s and some after %s", started, closeAt.UTC().Format(time.TimeOnly), reopen.UTC().Format(time.TimeOnly))
	}
}

// closedSeconds returns a cron expression of upstream's dialect open every second except the n
// seconds from second from of every minute.
func closedSeconds(from, n int) string {
	to := (from + n) % 60 // first open second after the gap
	var secs string
	switch {
	case from+n <= 60 && from == 0:
		secs = fmt.Sprintf("%d-59", to)
	case from+n < 60:
		secs = fmt.Sprintf("0-%d,%d-59", from-1, to)
	case from+n == 60:
		secs = fmt.Sprintf("0-%d", from-1)
	default: // the gap wraps around the minute
		secs = fmt.Sprintf("%d-%d", to, from-1)
	}
	return secs + " * * * * *"
}

// TestNodeDeletedMidUpdate: a node deleted while it updates loses its shadow to garbage
// collection, its update slot is freed, and the other nodes finish.
func TestNodeDeletedMidUpdate(t *testing.T) {
	s := newStory(t, options(4, 1))
	ctx := t.Context()
	s.publish()
	snap := s.waitFor("a node monitoring its update", 2*time.Minute, func(snap sim.Snapshot) bool {
		return firstRow(snap, func(r sim.NodeRow) bool { return r.State == v2.StateMonitoringUpdate }) != ""
	})
	gone := firstRow(snap, func(r sim.NodeRow) bool { return r.State == v2.StateMonitoringUpdate })
	if err := s.c.DeleteNode(ctx, gone); err != nil {
		t.Fatal(err)
	}
	s.note("deleted node %s", gone)
	s.poll("the shadow of "+gone+" to be garbage-collected", time.Minute, func(ctx context.Context) bool {
		brs, err := s.shadow(ctx, gone)
		return err == nil && brs == nil
	})
	s.note("the shadow of %s is gone", gone)
	s.waitFor("another node to take the freed slot", time.Minute, func(snap sim.Snapshot) bool {
		return firstRow(snap, func(r sim.NodeRow) bool { return r.InFlight && r.Name != gone }) != ""
	})
	s.waitFor("every remaining node Idle on 1.21.0", 3*time.Minute, s.allOn("1.21.0"))
	s.checkInvariants()
}
