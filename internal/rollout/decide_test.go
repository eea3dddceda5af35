package rollout

import (
	"math"
	"testing"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/fixture"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
	"github.com/bottlerocket-os/brupop-go/internal/window"
	"github.com/google/go-cmp/cmp"
)

// summary is what the table checks of a Plan.
type summary struct {
	Started  []string            // nodes whose change starts an update
	Progress map[string]v2.State // other changes: node -> new spec state
	Waiting  map[string]WaitReason
	Failed   map[string]string // node -> reason
	Halted   map[string][]string
	InFlight int
	Requeue  time.Duration
	RunEnd   time.Time
}

func summarize(p Plan) summary {
	s := summary{Progress: map[string]v2.State{}, Waiting: map[string]WaitReason{}, Failed: map[string]string{}, Halted: map[string][]string{},
		InFlight: p.InFlight, Requeue: p.RequeueAfter, RunEnd: p.LastRunEnd}
	for _, c := range p.Changes {
		if c.Start {
			s.Started = append(s.Started, c.Node)
		} else {
			s.Progress[c.Node] = c.Spec.State
		}
	}
	for _, w := range p.Waiting {
		s.Waiting[w.Node] = w.Reason
	}
	for _, f := range p.Failures {
		s.Failed[f.Node] = f.Reason
	}
	for _, h := range p.Halts {
		s.Halted[h.Version] = h.Nodes
	}
	return s
}

func policy(mod func(*Policy)) Policy {
	p := DefaultPolicy()
	if mod != nil {
		mod(&p)
	}
	return p
}

func TestDecide(t *testing.T) {
	closed := window.MustParse("* * 22-23 * * * *", time.UTC) // t0 is 10:00
	trigger := window.MustParse("0 0 10 * * Wed *", time.UTC) // t0 is Wednesday 10:00
	cases := []struct {
		name   string
		fleet  Fleet
		policy Policy
		want   summary
	}{
		{name: "fills every free slot in one pass, by name",
			fleet:  Fleet{Members: idleFleet(5)},
			policy: policy(func(p *Policy) { p.Concurrency = Concurrency{Count: 3} }),
			want: summary{Started: []string{"node-0", "node-1", "node-2"}, InFlight: 3,
				Waiting: map[string]WaitReason{"node-3": WaitConcurrency, "node-4": WaitConcurrency}}},
		{name: "nodes in flight use slots and progress",
			fleet:  Fleet{Members: append(idleFleet(3), member("a", fixture.Updating(staged, 0, staged)), member("b", fixture.Updating(reboot, 0, staged)))},
			policy: policy(func(p *Policy) { p.Concurrency = Concurrency{Count: 3} }),
			want: summary{Started: []string{"node-0"}, Progress: map[string]v2.State{"a": reboot}, InFlight: 3,
				Waiting: map[string]WaitReason{"node-1": WaitConcurrency, "node-2": WaitConcurrency}, Requeue: 1201 * time.Second}},
		{name: "percentage of opted-in nodes, rounded up",
			fleet:  Fleet{Members: append(idleFleet(9), member("x", fixture.OptedOut()))},
			policy: policy(func(p *Policy) { p.Concurrency = Concurrency{Percent: 30} }),
			want: summary{Started: []string{"node-0", "node-1", "node-2"}, InFlight: 3, Waiting: map[string]WaitReason{
				"node-3": WaitConcurrency, "node-4": WaitConcurrency, "node-5": WaitConcurrency, "node-6": WaitConcurrency, "node-7": WaitConcurrency, "node-8": WaitConcurrency, "x": WaitNotOptedIn}}},
		{name: "unlimited starts all",
			fleet:  Fleet{Members: idleFleet(4)},
			policy: policy(func(p *Policy) { p.Concurrency = Concurrency{Unlimited: true} }),
			want:   summary{Started: []string{"node-0", "node-1", "node-2", "node-3"}, InFlight: 4}},
		{name: "lowest crash count first, then name",
			fleet:  Fleet{Members: []Member{member("a", fixture.Crashed(2, -48*time.Hour, "")), member("b", fixture.Crashed(1, -48*time.Hour, "")), member("c"), member("d", fixture.Crashed(1, -48*time.Hour, ""))}},
			policy: policy(func(p *Policy) { p.Concurrency = Concurrency{Count: 2} }),
			want:   summary{Started: []string{"c", "b"}, InFlight: 2, Waiting: map[string]WaitReason{"a": WaitConcurrency, "d": WaitConcurrency}}},
		{name: "controller-detected failures count like crash_count: failed monitoring goes after a clean node",
			fleet:  Fleet{Members: []Member{member("a", recorded(1, -48*time.Hour)), member("b"), member("c", fixture.Crashed(1, -48*time.Hour, ""), recorded(1, -48*time.Hour)), member("d", fixture.Crashed(1, -48*time.Hour, ""))}},
			policy: policy(func(p *Policy) { p.Concurrency = Concurrency{Count: 2} }),
			want:   summary{Started: []string{"b", "a"}, InFlight: 2, Waiting: map[string]WaitReason{"c": WaitConcurrency, "d": WaitConcurrency}}},
		{name: "controller's own node last even with the lowest crash count",
			fleet:  Fleet{Members: []Member{member("a", fixture.Crashed(3, -48*time.Hour, "")), member("own")}, ControllerNode: "own"},
			policy: policy(nil),
			want:   summary{Started: []string{"a"}, InFlight: 1, Waiting: map[string]WaitReason{"own": WaitOwnNodeLast}}},
		{name: "own node starts when a slot is left",
			fleet:  Fleet{Members: []Member{member("own"), member("a")}, ControllerNode: "own"},
			policy: policy(func(p *Policy) { p.Concurrency = Concurrency{Count: 2} }),
			want:   summary{Started: []string{"a", "own"}, InFlight: 2}},
		{name: "closed window starts nothing but nodes in flight progress",
			fleet:  Fleet{Members: []Member{member("a"), member("b", fixture.Updating(staged, 0, staged))}},
			policy: policy(func(p *Policy) { p.Schedule = closed; p.Concurrency = Concurrency{Count: 5} }),
			want: summary{Progress: map[string]v2.State{"b": reboot}, InFlight: 1, Waiting: map[string]WaitReason{"a": WaitWindowClosed},
				Requeue: 12 * time.Hour}},
		{name: "paused starts nothing but nodes in flight progress",
			fleet:  Fleet{Members: []Member{member("a"), member("b", fixture.Updating(reboot, 0, reboot))}},
			policy: policy(func(p *Policy) { p.Paused = true; p.Concurrency = Concurrency{Count: 5} }),
			want:   summary{Progress: map[string]v2.State{"b": mon}, InFlight: 1, Waiting: map[string]WaitReason{"a": WaitPaused}}},
		{name: "not ready and opted-out nodes do not start",
			fleet:  Fleet{Members: []Member{member("a", fixture.NotReady()), member("b", fixture.OptedOut()), member("c", fixture.UpToDate())}},
			policy: policy(nil),
			want:   summary{Waiting: map[string]WaitReason{"a": WaitNodeNotReady, "b": WaitNotOptedIn}}},
		{name: "budget spent halts the version, other versions go on",
			fleet: Fleet{Members: []Member{member("a"), member("b", fixture.Offers(vOther))},
				Ledger: []VersionLedger{{Version: vNew, Failures: []NodeFailure{releaseFailure("z", vNew, t0.Add(-time.Hour))}}}},
			policy: policy(func(p *Policy) { p.Concurrency = Concurrency{Count: 5} }),
			want: summary{Started: []string{"b"}, InFlight: 1, Waiting: map[string]WaitReason{"a": WaitHalted},
				Halted: map[string][]string{vNew: {"z"}}}},
		{name: "resumed version starts again",
			fleet: Fleet{Members: []Member{member("a")},
				Ledger: []VersionLedger{{Version: vNew, ResumedAt: t0.Add(-time.Minute), Failures: []NodeFailure{releaseFailure("z", vNew, t0.Add(-time.Hour))}}}},
			policy: policy(nil),
			want:   summary{Started: []string{"a"}, InFlight: 1}},
		{name: "budget of two is not spent by one failure",
			fleet: Fleet{Members: []Member{member("a")},
				Ledger: []VersionLedger{{Version: vNew, Failures: []NodeFailure{releaseFailure("z", vNew, t0.Add(-time.Hour))}}}},
			policy: policy(func(p *Policy) { p.FailureBudget = 2 }),
			want:   summary{Started: []string{"a"}, InFlight: 1}},
		{name: "release failure in this pass halts at once, the failed node recovers",
			fleet: Fleet{Members: []Member{member("a"),
				member("b", fixture.Updating(reboot, 0, errRst), fixture.Crashed(1, 0, statemachine.FormatFailureReason(statemachine.ReasonBootRolledBack, "booted 1.19.0")))}},
			policy: policy(func(p *Policy) { p.Concurrency = Concurrency{Count: 5} }),
			want: summary{Progress: map[string]v2.State{"b": idle}, InFlight: 1, Waiting: map[string]WaitReason{"a": WaitHalted},
				Failed: map[string]string{"b": statemachine.ReasonBootRolledBack}, Halted: map[string][]string{vNew: {"b"}}}},
		{name: "operational failure backs off without halting",
			fleet: Fleet{Members: []Member{member("a", fixture.Crashed(1, -time.Minute, "")),
				member("b", fixture.Updating(staged, 0, errRst), fixture.Crashed(1, 0, "DrainTimeout: PDB"))}},
			policy: policy(func(p *Policy) { p.Concurrency = Concurrency{Count: 5} }),
			want: summary{Progress: map[string]v2.State{"b": idle}, InFlight: 1, Waiting: map[string]WaitReason{"a": WaitBackoff},
				Failed: map[string]string{"b": statemachine.ReasonDrainTimeout}, Requeue: 2 * time.Minute}},
		{name: "a timed-out node frees its slot in the same pass",
			fleet:  Fleet{Members: []Member{member("a"), member("b", fixture.Updating(staged, -13*time.Minute, idle))}},
			policy: policy(nil),
			want: summary{Started: []string{"a"}, Progress: map[string]v2.State{"b": idle}, InFlight: 1,
				Failed: map[string]string{"b": statemachine.ReasonStateTimeout}}},
		{name: "monitoring gate holds the slot until the period ends",
			fleet:  Fleet{Members: []Member{member("a"), member("b", fixture.Updating(mon, -time.Minute, mon))}},
			policy: policy(nil),
			want:   summary{InFlight: 1, Waiting: map[string]WaitReason{"a": WaitConcurrency}, Requeue: 4 * time.Minute}},
		{name: "a node reset to Idle and abandoned by its agent still holds its slot while cordoned",
			fleet:  Fleet{Members: []Member{member("a", fixture.Updating(idle, -200*time.Second, reboot), fixture.Cordoned(true)), member("b")}},
			policy: policy(nil),
			want:   summary{InFlight: 1, Waiting: map[string]WaitReason{"b": WaitConcurrency}}},
		{name: "a node reset to Idle and abandoned by its agent still holds its slot while NotReady",
			fleet:  Fleet{Members: []Member{member("a", fixture.Updating(idle, -200*time.Second, reboot), fixture.NotReady()), member("b")}},
			policy: policy(nil),
			want:   summary{InFlight: 1, Waiting: map[string]WaitReason{"b": WaitConcurrency}}},
		{name: "a node reset to Idle and abandoned by its agent frees its slot once uncordoned and Ready",
			fleet:  Fleet{Members: []Member{member("a", fixture.Updating(idle, -200*time.Second, reboot)), member("b")}},
			policy: policy(nil),
			want:   summary{Started: []string{"b"}, InFlight: 1}},
		{name: "a node reset to Idle and abandoned by its agent frees its slot once its Node is deleted",
			fleet:  Fleet{Members: []Member{nodeless("a", fixture.Updating(idle, -200*time.Second, reboot)), member("b")}},
			policy: policy(nil),
			want:   summary{Started: []string{"b"}, InFlight: 1}},
		{name: "a node reset to Idle holds its slot until the reset deadline even if uncordoned and Ready",
			fleet:  Fleet{Members: []Member{member("a", fixture.Updating(idle, -60*time.Second, reboot)), member("b")}},
			policy: policy(nil),
			want:   summary{InFlight: 1, Waiting: map[string]WaitReason{"b": WaitConcurrency}, Requeue: 61 * time.Second}},
		{name: "a cordoned Idle node counts once when it starts",
			fleet:  Fleet{Members: []Member{member("a", fixture.Cordoned(true)), member("b")}},
			policy: policy(func(p *Policy) { p.Concurrency = Concurrency{Count: 2} }),
			want:   summary{Started: []string{"a", "b"}, InFlight: 2}},
		{name: "a cordoned Idle node takes the only slot once",
			fleet:  Fleet{Members: []Member{member("a", fixture.Cordoned(true)), member("b")}},
			policy: policy(nil),
			want:   summary{Started: []string{"a"}, InFlight: 1, Waiting: map[string]WaitReason{"b": WaitConcurrency}}},
		{name: "a version first seen now soaks: nothing starts, wake when the soak ends",
			fleet:  Fleet{Members: idleFleet(2)},
			policy: policy(func(p *Policy) { p.ReleaseSoak = time.Hour }),
			want:   summary{Waiting: map[string]WaitReason{"node-0": WaitSoaking, "node-1": WaitSoaking}, Requeue: time.Hour}},
		{name: "a version seen long enough ago starts",
			fleet:  Fleet{Members: idleFleet(2), Releases: map[string]time.Time{vNew: t0.Add(-2 * time.Hour)}},
			policy: policy(func(p *Policy) { p.ReleaseSoak = time.Hour; p.Concurrency = Concurrency{Count: 2} }),
			want:   summary{Started: []string{"node-0", "node-1"}, InFlight: 2}},
		{name: "a version maxVersion picks is not soaked",
			fleet: Fleet{Members: []Member{member("a", fixture.Offers(vOther))},
				Releases: map[string]time.Time{vOther: t0}},
			policy: policy(func(p *Policy) {
				p.ReleaseSoak = time.Hour
				if err := p.StateMachine.SetMaxVersion(vNew); err != nil {
					panic(err)
				}
			}),
			want: summary{Started: []string{"a"}, InFlight: 1}},
		{name: "the maxVersion version is not soaked when a host offers exactly it either",
			fleet: Fleet{Members: []Member{member("a")}, Releases: map[string]time.Time{vNew: t0}},
			policy: policy(func(p *Policy) {
				p.ReleaseSoak = time.Hour
				if err := p.StateMachine.SetMaxVersion(vNew); err != nil {
					panic(err)
				}
			}),
			want: summary{Started: []string{"a"}, InFlight: 1}},
		{name: "a halted version says halted, not soaking",
			fleet:  Fleet{Members: idleFleet(1), Ledger: []VersionLedger{{Version: vNew, Failures: []NodeFailure{releaseFailure("x", vNew, t0.Add(-time.Minute))}}}},
			policy: policy(func(p *Policy) { p.ReleaseSoak = time.Hour }),
			want:   summary{Waiting: map[string]WaitReason{"node-0": WaitHalted}, Halted: map[string][]string{vNew: {"x"}}}},
		{name: "one zone at a time: the first candidate's zone fills, the others wait",
			fleet: Fleet{Members: []Member{member("a1", fixture.Zone("a")), member("a2", fixture.Zone("a")), member("b1", fixture.Zone("b")), member("x")}},
			policy: policy(func(p *Policy) {
				p.Concurrency = Concurrency{Unlimited: true}
				p.Zones = &Zones{Label: v2.DefaultZoneLabel, MaxInFlight: 1}
			}),
			want: summary{Started: []string{"a1", "a2"}, InFlight: 2, Waiting: map[string]WaitReason{"b1": WaitZones, "x": WaitZones}}},
		{name: "a zone in flight keeps the slots for itself, within the concurrency",
			fleet: Fleet{Members: []Member{member("a1", fixture.Zone("a")), member("b1", fixture.Zone("b"), fixture.Updating(staged, 0, idle)),
				member("b2", fixture.Zone("b")), member("b3", fixture.Zone("b"))}},
			policy: policy(func(p *Policy) {
				p.Concurrency = Concurrency{Count: 2}
				p.Zones = &Zones{Label: v2.DefaultZoneLabel, MaxInFlight: 1}
			}),
			want: summary{Started: []string{"b2"}, InFlight: 2, Requeue: 721 * time.Second,
				Waiting: map[string]WaitReason{"a1": WaitZones, "b3": WaitConcurrency}}},
		{name: "two zones at once; nodes without the label are a zone of their own",
			fleet: Fleet{Members: []Member{member("a1", fixture.Zone("a")), member("b1", fixture.Zone("b")), member("c1", fixture.Zone("c")), member("x")}},
			policy: policy(func(p *Policy) {
				p.Concurrency = Concurrency{Unlimited: true}
				p.Zones = &Zones{Label: v2.DefaultZoneLabel, MaxInFlight: 2}
			}),
			want: summary{Started: []string{"a1", "b1"}, InFlight: 2, Waiting: map[string]WaitReason{"c1": WaitZones, "x": WaitZones}}},
		{name: "oneshot trigger starts a run that outlives the trigger",
			fleet:  Fleet{Members: idleFleet(2), LastRunEnd: t0.Add(-time.Hour)},
			policy: policy(func(p *Policy) { p.Schedule = trigger }),
			want: summary{Started: []string{"node-0"}, InFlight: 1, Waiting: map[string]WaitReason{"node-1": WaitConcurrency},
				RunEnd: t0.Add(-time.Hour)}},
		{name: "oneshot run ends when nothing is left to start",
			fleet:  Fleet{Members: idleFleet(1), LastRunEnd: t0.Add(-time.Hour)},
			policy: policy(func(p *Policy) { p.Schedule = trigger }),
			want:   summary{Started: []string{"node-0"}, InFlight: 1, RunEnd: t0}},
		{name: "oneshot with no recorded run waits for the next trigger",
			fleet:  Fleet{Members: idleFleet(1)},
			policy: policy(func(p *Policy) { p.Schedule = trigger }),
			want:   summary{Waiting: map[string]WaitReason{"node-0": WaitWindowClosed}, RunEnd: t0, Requeue: 7 * 24 * time.Hour}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := summarize(Decide(tc.fleet, tc.policy, t0))
			want := tc.want
			if want.Progress == nil {
				want.Progress = map[string]v2.State{}
			}
			for _, m := range []*map[string]WaitReason{&want.Waiting} {
				if *m == nil {
					*m = map[string]WaitReason{}
				}
			}
			if want.Failed == nil {
				want.Failed = map[string]string{}
			}
			if want.Halted == nil {
				want.Halted = map[string][]string{}
			}
			if want.RunEnd.IsZero() && tc.fleet.LastRunEnd.IsZero() {
				want.RunEnd = t0
			} else if want.RunEnd.IsZero() {
				want.RunEnd = tc.fleet.LastRunEnd
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Decide() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseConcurrency(t *testing.T) {
	cases := []struct {
		in      string
		want    Concurrency
		limit10 int
		wantErr bool
	}{
		{in: "1", want: Concurrency{Count: 1}, limit10: 1},
		{in: " 3 ", want: Concurrency{Count: 3}, limit10: 3},
		{in: "unlimited", want: Concurrency{Unlimited: true}, limit10: math.MaxInt},
		{in: "UNLIMITED", want: Concurrency{Unlimited: true}, limit10: math.MaxInt},
		{in: "25%", want: Concurrency{Percent: 25}, limit10: 3},
		{in: "100%", want: Concurrency{Percent: 100}, limit10: 10},
		{in: "1%", want: Concurrency{Percent: 1}, limit10: 1},
		{in: "0", wantErr: true},
		{in: "0%", wantErr: true},
		{in: "101%", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "", wantErr: true},
		{in: "two", wantErr: true},
		{in: "1.5", wantErr: true},
		{in: "%", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseConcurrency(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseConcurrency(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if got != tc.want || got.Limit(10) != tc.limit10 {
				t.Errorf("ParseConcurrency(%q) = %+v (limit of 10: %d), want %+v (%d)", tc.in, got, got.Limit(10), tc.want, tc.limit10)
			}
			if again, err := ParseConcurrency(got.String()); err != nil || again != got {
				t.Errorf("String() %q does not parse back: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestDecideKeepsWhenReleasesWereFirstSeen(t *testing.T) {
	fleet := Fleet{
		Members: []Member{
			member("a"),                         // offers vNew, first seen an hour ago
			member("b", fixture.Offers(vOther)), // offers vOther, new
			member("c", fixture.UpToDate()),     // up to date
		},
		Releases: map[string]time.Time{vNew: t0.Add(-time.Hour), "1.18.0": t0.Add(-48 * time.Hour)},
	}
	now := t0.Add(500 * time.Millisecond)
	plan := Decide(fleet, policy(func(p *Policy) { p.ReleaseSoak = 2 * time.Hour }), now)
	want := map[string]time.Time{vNew: t0.Add(-time.Hour), vOther: t0} // 1.18.0 no longer offered: dropped
	if diff := cmp.Diff(want, plan.Releases); diff != "" {
		t.Errorf("Plan.Releases (-want +got):\n%s", diff)
	}
	for _, w := range plan.Waiting {
		wantUntil := map[string]time.Time{"a": t0.Add(time.Hour), "b": t0.Add(2 * time.Hour)}[w.Node]
		if w.Reason != WaitSoaking || !w.Until.Equal(wantUntil) {
			t.Errorf("%s waits %s until %s, want Soaking until %s", w.Node, w.Reason, w.Until, wantUntil)
		}
	}
	if len(plan.Waiting) != 2 || plan.RequeueAfter != time.Hour-500*time.Millisecond {
		t.Errorf("%d waiting, requeue after %s; want 2 and when the first soak ends", len(plan.Waiting), plan.RequeueAfter)
	}
	if len(fleet.Releases) != 2 || fleet.Releases["1.18.0"].IsZero() {
		t.Errorf("Decide modified Fleet.Releases: %v", fleet.Releases)
	}
}
