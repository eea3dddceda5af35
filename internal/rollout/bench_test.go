package rollout

import (
	"fmt"
	"testing"
	"time"

	"github.com/bottlerocket-os/brupop-go/internal/window"
)

// benchFleet is 5,000 nodes in a realistic mid-rollout mix: most up to date, some waiting, a few
// in flight, in backoff or failed.
func benchFleet() Fleet {
	f := Fleet{ControllerNode: "n00042", LastRunEnd: t0.Add(-time.Hour)}
	for i := range 5000 {
		var opts []memberOpt
		switch {
		case i%100 == 0:
			opts = append(opts, inState(staged, -time.Minute, staged))
		case i%100 == 1:
			opts = append(opts, inState(mon, -time.Minute, mon))
		case i%50 == 2:
			opts = append(opts, crashes(3, -time.Minute, "HostAPIError: 500"))
		case i%3 == 0:
			opts = append(opts, upToDate())
		}
		f.Members = append(f.Members, member(fmt.Sprintf("n%05d", i), opts...))
	}
	return f
}

func BenchmarkDecide(b *testing.B) {
	fleet := benchFleet()
	policy := DefaultPolicy()
	policy.Concurrency = Concurrency{Percent: 5}
	policy.Schedule = window.MustParse("* * 8-18 * * Mon-Fri", time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		plan := Decide(fleet, policy, t0)
		if plan.InFlight > plan.Limit {
			b.Fatalf("%d in flight, limit %d", plan.InFlight, plan.Limit)
		}
	}
}
