package statemachine

import (
	"math"
	"testing"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/fixture"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const (
	idle   = v2.StateIdle
	staged = v2.StateStagedAndPerformedUpdate
	reboot = v2.StateRebootedIntoUpdate
	mon    = v2.StateMonitoringUpdate
	errRst = v2.StateErrorReset
)

func TestNext(t *testing.T) {
	cfg := DefaultConfig() // monitoring 5m, staged 720s, drain 10m + rebooted 600s, monitoring deadline 10m, reset 120s
	minute := time.Minute
	cases := []struct {
		name string
		brs  *v2.BottlerocketShadow
		node NodeFacts
		now  time.Duration // after t0
		want Decision
	}{
		// Upstream's table (docs/upstream.md, "Next state"), row by row.
		{name: "no status gives the default spec",
			brs: shadow(fixture.NoStatus(), fixture.Desired(staged, 0, vNew)), node: healthy, now: minute,
			want: Decision{Spec: defaultSpec, Changed: true, Outcome: OutcomeNoStatus}},
		{name: "no status and default spec is unchanged",
			brs: shadow(fixture.NoStatus()), node: healthy, now: minute,
			want: Decision{Spec: defaultSpec, Outcome: OutcomeNoStatus}},
		{name: "agent has not reached staged: wait",
			brs: shadow(fixture.Updating(staged, 0, idle)), node: healthy, now: minute,
			want: Decision{Spec: fixture.Spec(staged, 0, vNew), Outcome: OutcomeAwaitingAgent, Wake: t0.Add(721 * time.Second)}},
		{name: "agent has not reached rebooted: wait",
			brs: shadow(fixture.Updating(reboot, 0, staged)), node: healthy, now: minute,
			want: Decision{Spec: fixture.Spec(reboot, 0, vNew), Outcome: OutcomeAwaitingAgent, Wake: t0.Add(1201 * time.Second)}},
		{name: "agent has not reached monitoring: wait",
			brs: shadow(fixture.Updating(mon, 0, reboot)), node: healthy, now: minute,
			want: Decision{Spec: fixture.Spec(mon, 0, vNew), Outcome: OutcomeAwaitingAgent, Wake: t0.Add(601 * time.Second)}},
		{name: "agent has not reported idle after completion: wait",
			brs: shadow(fixture.Updating(idle, 0, mon)), node: healthy, now: minute,
			want: Decision{Spec: fixture.Spec(idle, 0, vNew), Outcome: OutcomeAwaitingAgent, Wake: t0.Add(121 * time.Second)}},
		{name: "error reset during staging: idle, version kept, operational failure",
			brs: shadow(fixture.Updating(staged, 0, errRst), fixture.Crashed(1, minute, "HostAPIError: prepare-update returned 500")), node: healthy, now: 2 * minute,
			want: Decision{Spec: fixture.Spec(idle, 2*minute, vNew), Changed: true, Outcome: OutcomeFailed,
				Failure: &Failure{Reason: ReasonHostAPIError, Message: "prepare-update returned 500", Class: ClassOperational, Version: vNew, State: staged, At: t0.Add(minute)}}},
		{name: "error reset after reboot into old version: release failure",
			brs: shadow(fixture.Updating(reboot, 0, errRst), fixture.Crashed(1, minute, "BootRolledBack: booted 1.19.0")), node: healthy, now: 2 * minute,
			want: Decision{Spec: fixture.Spec(idle, 2*minute, vNew), Changed: true, Outcome: OutcomeFailed,
				Failure: &Failure{Reason: ReasonBootRolledBack, Message: "booted 1.19.0", Class: ClassRelease, Version: vNew, State: reboot, At: t0.Add(minute)}}},
		{name: "error reset from upstream agent without reason: operational",
			brs: shadow(fixture.Updating(reboot, 0, errRst), fixture.Crashed(2, minute, "")), node: healthy, now: 2 * minute,
			want: Decision{Spec: fixture.Spec(idle, 2*minute, vNew), Changed: true, Outcome: OutcomeFailed,
				Failure: &Failure{Reason: ReasonAgentError, Class: ClassOperational, Version: vNew, State: reboot, At: t0.Add(minute)}}},
		{name: "error reset with spec already idle: agent recovering",
			brs: shadow(fixture.Updating(idle, 0, errRst), fixture.Crashed(1, 0, "")), node: healthy, now: minute,
			want: Decision{Spec: fixture.Spec(idle, 0, vNew), Outcome: OutcomeRecovering, Wake: t0.Add(121 * time.Second)}},
		{name: "idle with update and no failure: start",
			brs: shadow(), node: healthy, now: minute,
			want: Decision{Spec: fixture.Spec(staged, minute, vNew), Changed: true, Start: true, Outcome: OutcomeStart}},
		{name: "idle with update, backoff elapsed (3 minute > 2^1): start",
			brs: shadow(fixture.Desired(idle, 0, vNew), fixture.Crashed(1, 0, "")), node: healthy, now: 3 * minute,
			want: Decision{Spec: fixture.Spec(staged, 3*minute, vNew), Changed: true, Start: true, Outcome: OutcomeStart}},
		{name: "idle with update, backoff not elapsed (2 minute, not > 2^1): wait",
			brs: shadow(fixture.Desired(idle, 0, vNew), fixture.Crashed(1, 0, "")), node: healthy, now: 2*minute + 59*time.Second,
			want: Decision{Spec: fixture.Spec(idle, 0, vNew), Outcome: OutcomeBackoff, Wake: t0.Add(3 * minute)}},
		{name: "idle with update, 24h cap: start",
			brs: shadow(fixture.Desired(idle, 0, vNew), fixture.Crashed(30, 0, "")), node: healthy, now: 1441 * minute,
			want: Decision{Spec: fixture.Spec(staged, 1441*minute, vNew), Changed: true, Start: true, Outcome: OutcomeStart}},
		{name: "upstream's largest crash_count plus the largest record: capped at a day, no overflow",
			brs:  shadow(fixture.Desired(idle, 0, vNew), fixture.Crashed(math.MaxUint32, 0, ""), withRecord(Record{Count: math.MaxInt32, At: t0, Reason: ReasonStateTimeout})),
			node: healthy, now: 1440 * minute,
			want: Decision{Spec: fixture.Spec(idle, 0, vNew), Outcome: OutcomeBackoff, Wake: t0.Add(1441 * minute)}},
		{name: "upstream's largest crash_count plus the largest record, a day and a minute later: start",
			brs:  shadow(fixture.Desired(idle, 0, vNew), fixture.Crashed(math.MaxUint32, 0, ""), withRecord(Record{Count: math.MaxInt32, At: t0, Reason: ReasonStateTimeout})),
			node: healthy, now: 1441 * minute,
			want: Decision{Spec: fixture.Spec(staged, 1441*minute, vNew), Changed: true, Start: true, Outcome: OutcomeStart}},
		{name: "the largest record stays the largest on another failure",
			brs: shadow(fixture.Updating(staged, 0, idle), withRecord(Record{Count: math.MaxInt32, At: t0.Add(-time.Hour)})), node: healthy, now: 721 * time.Second,
			want: Decision{Spec: fixture.Spec(idle, 721*time.Second, vNew), Changed: true, Outcome: OutcomeTimedOut, Record: &Record{Count: math.MaxInt32, At: t0.Add(721 * time.Second), Reason: ReasonStateTimeout},
				Failure: &Failure{Reason: ReasonStateTimeout, Class: ClassOperational, Version: vNew, State: staged, At: t0.Add(721 * time.Second)}}},
		{name: "controller record adds to the backoff",
			brs: shadow(fixture.Desired(idle, 0, vNew), withRecord(Record{Count: 2, At: t0, Reason: ReasonStateTimeout})), node: healthy, now: 4 * minute,
			want: Decision{Spec: fixture.Spec(idle, 0, vNew), Outcome: OutcomeBackoff, Wake: t0.Add(5 * minute)}},
		// A release failure contains the release, not the node: a fix is not delayed by it.
		{name: "rolled back on the target, same target: backoff",
			brs: shadow(fixture.Desired(idle, 0, vNew), fixture.Crashed(1, 0, "BootRolledBack: booted 1.19.0")), node: healthy, now: minute,
			want: Decision{Spec: fixture.Spec(idle, 0, vNew), Outcome: OutcomeBackoff, Wake: t0.Add(3 * minute)}},
		{name: "rolled back on a release, a fix is the target now: start at once",
			brs: shadow(fixture.Desired(idle, 0, vNew), fixture.Offers(vFix), fixture.Crashed(1, 0, "BootRolledBack: booted 1.19.0")), node: healthy, now: minute,
			want: Decision{Spec: fixture.Spec(staged, minute, vFix), Changed: true, Start: true, Outcome: OutcomeStart}},
		{name: "monitoring failed (controller's record) on a release, a fix is the target: start at once",
			brs: shadow(fixture.Desired(idle, 0, vNew), fixture.Offers(vFix), withRecord(Record{Count: 1, At: t0, Reason: ReasonMonitoringFailed})), node: healthy, now: minute,
			want: Decision{Spec: fixture.Spec(staged, minute, vFix), Changed: true, Start: true, Outcome: OutcomeStart}},
		{name: "drain timed out on a release, another target now: backoff (the node's trouble)",
			brs: shadow(fixture.Desired(idle, 0, vNew), fixture.Offers(vFix), fixture.Crashed(1, 0, "DrainTimeout: 1 pod left")), node: healthy, now: minute,
			want: Decision{Spec: fixture.Spec(idle, 0, vNew), Outcome: OutcomeBackoff, Wake: t0.Add(3 * minute)}},
		{name: "release failure then a later operational one, fix out: backoff",
			brs: shadow(fixture.Desired(idle, 0, vNew), fixture.Offers(vFix), withRecord(Record{Count: 1, At: t0, Reason: ReasonMonitoringFailed}), fixture.Crashed(1, minute, "HostAPIError: refresh failed")), node: healthy, now: 2 * minute,
			want: Decision{Spec: fixture.Spec(idle, 0, vNew), Outcome: OutcomeBackoff, Wake: t0.Add(6 * minute)}},
		{name: "idle and up to date with stale spec: default spec",
			brs: shadow(fixture.Desired(idle, 0, vNew), fixture.UpToDate()), node: healthy, now: minute,
			want: Decision{Spec: defaultSpec, Changed: true, Outcome: OutcomeUpToDate}},
		{name: "idle and up to date: unchanged",
			brs: shadow(fixture.UpToDate()), node: healthy, now: minute,
			want: Decision{Spec: defaultSpec, Outcome: OutcomeUpToDate}},
		{name: "reached staged: reboot",
			brs: shadow(fixture.Updating(staged, 0, staged)), node: healthy, now: minute,
			want: Decision{Spec: fixture.Spec(reboot, minute, vNew), Changed: true, Outcome: OutcomeAdvance}},
		{name: "reached rebooted: monitor",
			brs: shadow(fixture.Updating(reboot, 0, reboot)), node: healthy, now: minute,
			want: Decision{Spec: fixture.Spec(mon, minute, vNew), Changed: true, Outcome: OutcomeAdvance}},
		{name: "reached rebooted in another version: release failure",
			brs: shadow(fixture.Desired(reboot, 0, vNew), fixture.Reported(reboot, "1.19.5", vNew)), node: healthy, now: minute,
			want: Decision{Spec: fixture.Spec(idle, minute, vNew), Changed: true, Outcome: OutcomeFailed, Record: &Record{Count: 1, At: t0.Add(minute), Reason: ReasonVersionMismatch},
				Failure: &Failure{Reason: ReasonVersionMismatch, Class: ClassRelease, Version: vNew, State: reboot, At: t0.Add(minute)}}},
		// Deadlines.
		{name: "staged deadline passed: timed out, operational",
			brs: shadow(fixture.Updating(staged, 0, idle)), node: healthy, now: 721 * time.Second,
			want: Decision{Spec: fixture.Spec(idle, 721*time.Second, vNew), Changed: true, Outcome: OutcomeTimedOut, Record: &Record{Count: 1, At: t0.Add(721 * time.Second), Reason: ReasonStateTimeout},
				Failure: &Failure{Reason: ReasonStateTimeout, Class: ClassOperational, Version: vNew, State: staged, At: t0.Add(721 * time.Second)}}},
		{name: "staged deadline exactly reached: still waiting",
			brs: shadow(fixture.Updating(staged, 0, idle)), node: healthy, now: 720 * time.Second,
			want: Decision{Spec: fixture.Spec(staged, 0, vNew), Outcome: OutcomeAwaitingAgent, Wake: t0.Add(721 * time.Second)}},
		{name: "slow but legal drain: the host rebooting after 9m of drain is not timed out at 11m",
			brs: shadow(fixture.Updating(reboot, 0, staged)), node: NodeFacts{ReadySince: t0.Add(9 * minute)}, now: 11 * minute,
			want: Decision{Spec: fixture.Spec(reboot, 0, vNew), Outcome: OutcomeAwaitingAgent, Wake: t0.Add(1201 * time.Second)}},
		{name: "reboot deadline exactly reached (drain 10m + reboot 600s): still waiting",
			brs: shadow(fixture.Updating(reboot, 0, staged)), node: NodeFacts{ReadySince: t0.Add(9 * minute)}, now: 20 * minute,
			want: Decision{Spec: fixture.Spec(reboot, 0, vNew), Outcome: OutcomeAwaitingAgent, Wake: t0.Add(1201 * time.Second)}},
		{name: "reboot deadline passed with node ready: drain stuck, operational",
			brs: shadow(fixture.Updating(reboot, 0, staged), withRecord(Record{Count: 1, At: t0.Add(-time.Hour)})), node: healthy, now: 21 * minute,
			want: Decision{Spec: fixture.Spec(idle, 21*minute, vNew), Changed: true, Outcome: OutcomeTimedOut, Record: &Record{Count: 2, At: t0.Add(21 * minute), Reason: ReasonStateTimeout},
				Failure: &Failure{Reason: ReasonStateTimeout, Class: ClassOperational, Version: vNew, State: reboot, At: t0.Add(21 * minute)}}},
		{name: "reboot deadline passed with node gone not ready after the request: release failure",
			brs: shadow(fixture.Updating(reboot, 0, staged)), node: NodeFacts{ReadySince: t0.Add(9 * minute)}, now: 21 * minute,
			want: Decision{Spec: fixture.Spec(idle, 21*minute, vNew), Changed: true, Outcome: OutcomeTimedOut, Record: &Record{Count: 1, At: t0.Add(21 * minute), Reason: ReasonRebootNotReady},
				Failure: &Failure{Reason: ReasonRebootNotReady, Class: ClassRelease, Version: vNew, State: reboot, At: t0.Add(21 * minute)}}},
		{name: "reboot deadline passed with node not ready since before the request: operational",
			brs: shadow(fixture.Updating(reboot, 0, staged)), node: NodeFacts{ReadySince: t0.Add(-minute)}, now: 21 * minute,
			want: Decision{Spec: fixture.Spec(idle, 21*minute, vNew), Changed: true, Outcome: OutcomeTimedOut, Record: &Record{Count: 1, At: t0.Add(21 * minute), Reason: ReasonStateTimeout},
				Failure: &Failure{Reason: ReasonStateTimeout, Class: ClassOperational, Version: vNew, State: reboot, At: t0.Add(21 * minute)}}},
		{name: "desired state without timestamp gets one to start its deadline",
			brs: shadow(fixture.Updating(staged, 0, idle), untimed()), node: healthy, now: minute,
			want: Decision{Spec: fixture.Spec(staged, minute, vNew), Changed: true, Outcome: OutcomeAwaitingAgent}},
		// Monitoring gate.
		{name: "monitoring: healthy but period not over",
			brs: shadow(fixture.Updating(mon, 0, mon)), node: healthy, now: 4 * minute,
			want: Decision{Spec: fixture.Spec(mon, 0, vNew), Outcome: OutcomeMonitoring, Wake: t0.Add(5 * minute)}},
		{name: "monitoring: healthy for the period: complete, record cleared",
			brs: shadow(fixture.Updating(mon, 0, mon), withRecord(Record{Count: 1})), node: healthy, now: 5 * minute,
			want: Decision{Spec: fixture.Spec(idle, 5*minute, vNew), Changed: true, Outcome: OutcomeComplete, ClearRecord: true}},
		{name: "monitoring: node ready only recently restarts the clock",
			brs: shadow(fixture.Updating(mon, 0, mon)), node: NodeFacts{Ready: true, ReadySince: t0.Add(3 * minute), PodsReady: true}, now: 6 * minute,
			want: Decision{Spec: fixture.Spec(mon, 0, vNew), Outcome: OutcomeMonitoring, Wake: t0.Add(8 * minute)}},
		{name: "monitoring: node not ready, before the deadline: keep watching",
			brs: shadow(fixture.Updating(mon, 0, mon)), node: NodeFacts{}, now: 9 * minute,
			want: Decision{Spec: fixture.Spec(mon, 0, vNew), Outcome: OutcomeMonitoring, Wake: t0.Add(10*minute + time.Second)}},
		{name: "monitoring: pods not ready at the deadline: release failure",
			brs: shadow(fixture.Updating(mon, 0, mon)), node: NodeFacts{Ready: true, ReadySince: t0}, now: 10*minute + time.Second,
			want: Decision{Spec: fixture.Spec(idle, 10*minute+time.Second, vNew), Changed: true, Outcome: OutcomeFailed, Record: &Record{Count: 1, At: t0.Add(10*minute + time.Second), Reason: ReasonMonitoringFailed},
				Failure: &Failure{Reason: ReasonMonitoringFailed, Class: ClassRelease, Version: vNew, State: mon, At: t0.Add(10*minute + time.Second)}}},
		{name: "monitoring: wrong version: release failure",
			brs: shadow(fixture.Desired(mon, 0, vNew), fixture.Reported(mon, vOld, vNew)), node: healthy, now: minute,
			want: Decision{Spec: fixture.Spec(idle, minute, vNew), Changed: true, Outcome: OutcomeFailed, Record: &Record{Count: 1, At: t0.Add(minute), Reason: ReasonVersionMismatch},
				Failure: &Failure{Reason: ReasonVersionMismatch, Class: ClassRelease, Version: vNew, State: mon, At: t0.Add(minute)}}},
		{name: "desired error reset is never valid: idle",
			brs: shadow(fixture.Updating(errRst, 0, errRst), fixture.Crashed(1, 0, "")), node: healthy, now: minute,
			want: Decision{Spec: fixture.Spec(idle, minute, vNew), Changed: true, Outcome: OutcomeFailed,
				Failure: &Failure{Reason: ReasonAgentError, Class: ClassOperational, Version: vNew, State: errRst, At: t0}}},
	}
	ignore := cmpopts.IgnoreFields(Decision{}, "Message")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Next(tc.brs, tc.node, cfg, t0.Add(tc.now))
			// Failure messages are checked only where the case spells one out.
			var ignoreMsg cmp.Option = cmp.Options{}
			if tc.want.Failure != nil && tc.want.Failure.Message == "" {
				ignoreMsg = cmpopts.IgnoreFields(Failure{}, "Message")
			}
			if diff := cmp.Diff(tc.want, got, ignore, ignoreMsg); diff != "" {
				t.Errorf("Next() mismatch (-want +got):\n%s", diff)
			}
			if got.Message == "" {
				t.Error("Next() gave no message")
			}
		})
	}
}

func TestRebootedDeadlineCountsFromTheEndOfTheDrain(t *testing.T) {
	cases := []struct {
		name   string
		config func(*Config)
		want   time.Duration
	}{
		{name: "defaults: drain 10m + reboot 600s", want: 20 * time.Minute},
		{name: "drain timeout unset: the agent's default 10m", config: func(c *Config) { c.DrainTimeout = 0 }, want: 20 * time.Minute},
		{name: "FleetPolicy drain timeout", config: func(c *Config) { c.DrainTimeout = 30 * time.Minute }, want: 40 * time.Minute},
		{name: "short drain, short reboot allowance", config: func(c *Config) { c.DrainTimeout = time.Minute; c.Deadlines.RebootedIntoUpdate = 2 * time.Minute }, want: 3 * time.Minute},
		{name: "no reboot deadline", config: func(c *Config) { c.Deadlines.RebootedIntoUpdate = 0 }, want: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tc.config != nil {
				tc.config(&cfg)
			}
			if got := cfg.Deadline(reboot); got != tc.want {
				t.Errorf("Deadline(RebootedIntoUpdate) = %s, want %s", got, tc.want)
			}
			// A drain that uses its whole budget is never timed out.
			brs := shadow(fixture.Updating(reboot, 0, staged))
			if d := Next(brs, NodeFacts{ReadySince: t0.Add(cfg.EffectiveDrainTimeout())}, cfg, t0.Add(cfg.EffectiveDrainTimeout())); d.Failure != nil {
				t.Errorf("at the end of the drain budget: failed with %s", d.Failure.Reason)
			}
		})
	}
}

func TestBackoffAllows(t *testing.T) {
	cases := []struct {
		name    string
		crashes int64
		gap     time.Duration
		want    bool
	}{
		{"no failure", 0, 0, true},
		{"one crash, 2 whole minutes is not more than 2", 1, 2*time.Minute + 59*time.Second, false},
		{"one crash, 3 minutes", 1, 3 * time.Minute, true},
		{"three crashes, 8 minutes is not more than 8", 3, 8 * time.Minute, false},
		{"three crashes, 9 minutes", 3, 9 * time.Minute, true},
		{"eleven crashes, a day is not more than a day", 11, 1440 * time.Minute, false},
		{"eleven crashes, a day and a minute", 11, 1441 * time.Minute, true},
		{"huge crash count is capped at a day", 1 << 30, 1441 * time.Minute, true},
		{"upstream's largest crash_count, a day is not more than a day", math.MaxUint32, 1440 * time.Minute, false},
		{"upstream's largest crash_count, a day and a minute", math.MaxUint32, 1441 * time.Minute, true},
		{"crash_count plus record beyond any uint32, a day is not more than a day", math.MaxUint32 + math.MaxInt32, 1440 * time.Minute, false},
		{"crash_count plus record beyond any uint32, a day and a minute", math.MaxUint32 + math.MaxInt32, 1441 * time.Minute, true},
		{"largest int64 is capped at a day", math.MaxInt64, 1441 * time.Minute, true},
		{"a negative count waits as none: 1 minute is not more than 1", -5, time.Minute, false},
		{"failure in the future waits", 0, -time.Hour, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			last := t0
			if tc.name == "no failure" {
				last = time.Time{}
			}
			if got := BackoffAllows(tc.crashes, last, t0.Add(tc.gap)); got != tc.want {
				t.Errorf("BackoffAllows(%d, gap %s) = %v, want %v", tc.crashes, tc.gap, got, tc.want)
			}
			if end := BackoffEnds(tc.crashes, last); !end.IsZero() && !BackoffAllows(tc.crashes, last, end) {
				t.Errorf("BackoffAllows at BackoffEnds %v = false", end)
			}
		})
	}
}

func TestInFlight(t *testing.T) {
	cfg := DefaultConfig()
	cases := []struct {
		name string
		brs  *v2.BottlerocketShadow
		now  time.Duration
		want bool
	}{
		{"no status", shadow(fixture.NoStatus(), fixture.Desired(staged, 0, vNew)), 0, false},
		{"idle and idle", shadow(), 0, false},
		{"spec ahead of status", shadow(fixture.Updating(staged, 0, idle)), 0, true},
		{"status not idle", shadow(fixture.Updating(mon, 0, mon)), 0, true},
		{"reset, agent still reporting", shadow(fixture.Updating(idle, 0, errRst)), 2 * time.Minute, true},
		{"reset, agent silent past the reset deadline", shadow(fixture.Updating(idle, 0, reboot)), 2*time.Minute + time.Second, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A healthy, schedulable Node: only the shadow decides.
			if got := NodeInFlight(tc.brs, NodeFacts{Ready: true, PodsReady: true}, cfg, t0.Add(tc.now)); got != tc.want {
				t.Errorf("NodeInFlight = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNodeInFlight(t *testing.T) {
	cfg := DefaultConfig()
	abandoned := shadow(fixture.Updating(idle, 0, reboot))
	late := 200 * time.Second
	cases := []struct {
		name string
		brs  *v2.BottlerocketShadow
		node NodeFacts
		now  time.Duration
		want bool
	}{
		{"idle and idle, cordoned", shadow(), NodeFacts{Cordoned: true}, 0, false},
		{"idle and idle, NotReady", shadow(), NodeFacts{}, 0, false},
		{"updating, healthy", shadow(fixture.Updating(mon, 0, mon)), healthy, 0, true},
		{"reset, within the reset deadline, healthy", abandoned, healthy, 2 * time.Minute, true},
		{"abandoned, healthy and uncordoned", abandoned, healthy, late, false},
		{"abandoned, cordoned", abandoned, NodeFacts{Ready: true, ReadySince: t0, PodsReady: true, Cordoned: true}, late, true},
		{"abandoned, NotReady", abandoned, NodeFacts{PodsReady: true}, late, true},
		{"abandoned, Node deleted", abandoned, FactsOf(nil, nil), late, false},
		{"abandoned, cordoned and pods not Ready", abandoned, NodeFacts{Ready: true, Cordoned: true}, late, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := NodeInFlight(tc.brs, tc.node, cfg, t0.Add(tc.now)); got != tc.want {
				t.Errorf("NodeInFlight = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAwaitIdleWake(t *testing.T) {
	cfg := DefaultConfig()
	brs := shadow(fixture.Updating(idle, 0, reboot))
	if d := Next(brs, healthy, cfg, t0.Add(time.Minute)); !d.Wake.Equal(t0.Add(cfg.Deadlines.Reset + time.Second)) {
		t.Errorf("within the reset deadline: Wake = %v, want the deadline", d.Wake)
	}
	if d := Next(brs, healthy, cfg, t0.Add(cfg.Deadlines.Reset+2*time.Second)); !d.Wake.IsZero() {
		t.Errorf("past the reset deadline: Wake = %v, want none", d.Wake)
	}
}

func TestFailureReason(t *testing.T) {
	cases := []struct {
		in, reason, message string
		class               Class
	}{
		{FormatFailureReason(ReasonBootRolledBack, "booted 1.19.0"), ReasonBootRolledBack, "booted 1.19.0", ClassRelease},
		{FormatFailureReason(ReasonVersionMismatch, ""), ReasonVersionMismatch, "", ClassRelease},
		{FormatFailureReason(ReasonDrainTimeout, "pod a/b: PDB"), ReasonDrainTimeout, "pod a/b: PDB", ClassOperational},
		{"", ReasonAgentError, "", ClassOperational},
		{"failed to drain node: timeout", ReasonAgentError, "failed to drain node: timeout", ClassOperational},
		{"Unknown: x", "Unknown", "x", ClassOperational},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			r, m := ParseFailureReason(tc.in)
			if r != tc.reason || m != tc.message || Classify(r) != tc.class {
				t.Errorf("ParseFailureReason(%q) = %q, %q (%s); want %q, %q (%s)", tc.in, r, m, Classify(r), tc.reason, tc.message, tc.class)
			}
		})
	}
}

func TestMaxVersion(t *testing.T) {
	var cfg Config
	if err := cfg.SetMaxVersion("1.20"); err == nil {
		t.Fatal(`SetMaxVersion("1.20") accepted a version without a patch number`)
	}
	if err := cfg.SetMaxVersion(vNew); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name             string
		current, offered string
		wantTarget       string
		wantUpToDate     bool
	}{
		{"offered below the cap", vOld, "1.19.5", "1.19.5", false},
		{"offered at the cap", vOld, vNew, vNew, false},
		{"offered past the cap: capped", vOld, "1.21.0", vNew, false},
		{"at the cap, newer offered: held", vNew, "1.21.0", vNew, true},
		{"past the cap: never downgraded", "1.20.3", "1.21.0", vNew, true},
		{"nothing offered", vOld, vOld, vOld, true},
		{"offered version unparsable: not capped", vOld, "latest", "latest", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := &v2.BottlerocketShadowStatus{CurrentVersion: tc.current, TargetVersion: tc.offered}
			if got := cfg.Target(st); got != tc.wantTarget {
				t.Errorf("Target = %s, want %s", got, tc.wantTarget)
			}
			if got := cfg.runs(st.CurrentVersion, cfg.Target(st)); got != tc.wantUpToDate {
				t.Errorf("up to date = %v, want %v", got, tc.wantUpToDate)
			}
			d := Next(shadow(fixture.Reported(idle, tc.current, tc.offered)), healthy, withMax(cfg), t0)
			switch {
			case tc.wantUpToDate && d.Outcome != OutcomeUpToDate:
				t.Errorf("Next: %s (%s), want UpToDate", d.Outcome, d.Message)
			case !tc.wantUpToDate && (d.Outcome != OutcomeStart || *d.Spec.Version != tc.wantTarget):
				t.Errorf("Next: %s to %v, want a start to %s", d.Outcome, d.Spec.Version, tc.wantTarget)
			}
		})
	}
}

// withMax returns the default configuration with cfg's MaxVersion.
func withMax(cfg Config) Config {
	c := DefaultConfig()
	c.MaxVersion = cfg.MaxVersion
	return c
}
