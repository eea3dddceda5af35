package rollout

import (
	"fmt"
	"testing"
	"time"

	"github.com/bottlerocket-os/brupop-go/internal/fixture"
	"github.com/bottlerocket-os/brupop-go/internal/window"
)

// benchFleet is 5,000 nodes in a realistic mid-rollout mix: most up to date, some waiting, a few
// in flight, in backoff or failed.
func benchFleet() Fleet {
	f := Fleet{ControllerNode: "n00042", LastRunEnd: t0.Add(-time.Hour)}
	for i := range 5000 {
		var opts []fixture.Option
		switch {
		case i%100 == 0:
			opts = append(opts, fixture.Updating(staged, -time.Minute, staged))
		case i%100 == 1:
			opts = append(opts, fixture.Updating(mon, -time.Minute, mon))
		case i%50 == 2:
			opts = append(opts, fixture.Crashed(3, -time.Minute, "HostAPIError: 500"))
		case i%3 == 0:
			opts = append(opts, fixture.UpToDate())
		}
		f.Members = append(f.Members, member(fmt.Sprintf("n%05d", i), opts...))
	}
	return f
}

// benchPolicy is 5% at once in a weekday window, open at t0.
func benchPolicy() Policy {
	policy := DefaultPolicy()
	policy.Concurrency = Concurrency{Percent: 5}
	policy.Schedule = window.MustParse("* * 8-18 * * Mon-Fri", time.UTC)
	return policy
}

// TestBenchFleetIsAMidRolloutMix checks the benchmark measures what its comment says: a pass
// that progresses nodes in flight, fills free slots and leaves nodes waiting and backing off.
func TestBenchFleetIsAMidRolloutMix(t *testing.T) {
	plan := Decide(benchFleet(), benchPolicy(), t0)
	waits := map[WaitReason]int{}
	for _, w := range plan.Waiting {
		waits[w.Reason]++
	}
	if plan.Limit != 250 || plan.InFlight != plan.Limit || plan.Started == 0 || plan.Started == plan.InFlight ||
		waits[WaitConcurrency] == 0 || waits[WaitBackoff] == 0 {
		t.Errorf("limit %d, in flight %d, started %d, waiting %v: not a mid-rollout pass", plan.Limit, plan.InFlight, plan.Started, waits)
	}
}

func BenchmarkDecide(b *testing.B) {
	fleet := benchFleet()
	policy := benchPolicy()
	b.ReportAllocs()
	for b.Loop() {
		plan := Decide(fleet, policy, t0)
		if plan.InFlight > plan.Limit {
			b.Fatalf("%d in flight, limit %d", plan.InFlight, plan.Limit)
		}
	}
}
