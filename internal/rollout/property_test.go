package rollout

import (
	"fmt"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
	"github.com/bottlerocket-os/brupop-go/internal/window"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"pgregory.net/rapid"
)

// world is a simulated fleet: the test plays the agents, the operator and the clock, and writes
// every Plan back as the reconciler would.
type world struct {
	fleet  Fleet
	policy Policy
	now    time.Time
	// seen is the test's own record of when each offered version was first offered.
	seen map[string]time.Time
	// maxVersion is the cap the policy was given ("" for none).
	maxVersion string
}

// countInFlight is the test's own reading of "in flight": upstream's active set (status present
// and current_state != Idle, or spec.state != status.current_state), minus nodes reset to Idle more
// than the reset deadline ago whose agent never answered, unless their Node is still disrupted:
// cordoned by Brupop, or NotReady and not deleted.
func countInFlight(w *world) int { return len(inFlight(w)) }

// inFlight returns the members in flight as countInFlight counts them.
func inFlight(w *world) []*Member {
	var out []*Member
	for i := range w.fleet.Members {
		m := &w.fleet.Members[i]
		st, spec := m.Shadow.Status, m.Shadow.Spec
		if st == nil || (st.CurrentState == idle && spec.State == idle) {
			continue
		}
		if spec.State == idle && spec.StateTransitionTimestamp != nil &&
			w.now.Sub(spec.StateTransitionTimestamp.Time) > w.policy.StateMachine.Deadlines.Reset &&
			!m.Node.Cordoned && (m.Node.Ready || m.Node.Missing) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// zonesInFlight counts the zones with a node in flight.
func zonesInFlight(w *world) int {
	zones := map[string]bool{}
	for _, m := range inFlight(w) {
		zones[m.NodeLabels[v2.DefaultZoneLabel]] = true
	}
	return len(zones)
}

// see updates the test's record of offered versions before a pass: a version offered now keeps
// its first time, or starts now; a version no longer offered is forgotten.
func see(w *world) {
	seen := map[string]time.Time{}
	for _, m := range w.fleet.Members {
		if st := m.Shadow.Status; st != nil && st.TargetVersion != "" && st.TargetVersion != st.CurrentVersion {
			if t, ok := w.seen[st.TargetVersion]; ok {
				seen[st.TargetVersion] = t
			} else if _, ok := seen[st.TargetVersion]; !ok {
				seen[st.TargetVersion] = w.now
			}
		}
	}
	w.seen = seen
}

// spentBudget reports whether version's failure budget is spent by the ledger and this plan.
func spentBudget(w *world, version string, plan Plan) bool {
	var resumed time.Time
	n := 0
	for _, l := range w.fleet.Ledger {
		if l.Version == version {
			resumed = l.ResumedAt
			for _, f := range l.Failures {
				if f.At.After(resumed) {
					n++
				}
			}
		}
	}
	for _, f := range plan.Failures {
		if f.Version == version && f.Class == statemachine.ClassRelease && f.At.After(resumed) {
			n++
		}
	}
	return n >= max(w.policy.FailureBudget, 1)
}

// legal lists the spec transitions the controller may make, given the reported state.
func legal(from v2.State, reported v2.State, to v2.State) bool {
	switch {
	case to == idle, from == to:
		return true
	case from == idle && to == staged:
		return reported == idle
	case from == staged && to == reboot:
		return reported == staged
	case from == reboot && to == mon:
		return reported == reboot
	}
	return false
}

func TestPropertyRollout(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		w := newWorld(rt)
		for step := range rapid.IntRange(1, 80).Draw(rt, "steps") {
			act(rt, w)
			checkPass(rt, w, step)
		}
	})
}

func newWorld(rt *rapid.T) *world {
	n := rapid.IntRange(1, 10).Draw(rt, "nodes")
	w := &world{now: t0, policy: DefaultPolicy()}
	for i := range n {
		m := member(fmt.Sprintf("n%02d", i))
		m.OptedIn = rapid.IntRange(0, 9).Draw(rt, "optedOut") > 0
		if rapid.Bool().Draw(rt, "upToDate") {
			m.Shadow.Status.TargetVersion = vOld
		}
		if zone := rapid.SampledFrom([]string{"", "a", "b", "c"}).Draw(rt, "zone"); zone != "" {
			m.NodeLabels = map[string]string{v2.DefaultZoneLabel: zone}
		}
		w.fleet.Members = append(w.fleet.Members, m)
	}
	w.fleet.ControllerNode = "n00"
	switch rapid.IntRange(0, 2).Draw(rt, "concurrencyKind") {
	case 0:
		w.policy.Concurrency = Concurrency{Count: rapid.IntRange(1, 4).Draw(rt, "count")}
	case 1:
		w.policy.Concurrency = Concurrency{Percent: rapid.IntRange(1, 100).Draw(rt, "percent")}
	default:
		w.policy.Concurrency = Concurrency{Unlimited: true}
	}
	w.policy.FailureBudget = rapid.IntRange(1, 3).Draw(rt, "budget")
	w.policy.Schedule = rapid.SampledFrom([]*window.Schedule{nil,
		window.MustParse("* * 10-11 * * *", time.UTC), window.MustParse("0 0 */6 * * *", time.UTC)}).Draw(rt, "schedule")
	w.policy.StateMachine.MonitoringPeriod = rapid.SampledFrom([]time.Duration{0, time.Minute, 5 * time.Minute}).Draw(rt, "monitoring")
	if zones := rapid.IntRange(0, 2).Draw(rt, "zonesInFlight"); zones > 0 {
		w.policy.Zones = &Zones{Label: v2.DefaultZoneLabel, MaxInFlight: zones}
	}
	w.maxVersion = rapid.SampledFrom([]string{"", "1.19.5", vNew}).Draw(rt, "maxVersion")
	if err := w.policy.StateMachine.SetMaxVersion(w.maxVersion); err != nil {
		rt.Fatal(err)
	}
	w.policy.ReleaseSoak = rapid.SampledFrom([]time.Duration{0, 30 * time.Minute}).Draw(rt, "soak")
	return w
}

// act changes the world the way agents, Nodes, operators and the clock do.
func act(rt *rapid.T, w *world) {
	switch rapid.IntRange(0, 6).Draw(rt, "action") {
	case 0:
		w.now = w.now.Add(time.Duration(rapid.IntRange(0, 3600).Draw(rt, "seconds")) * time.Second)
	case 1, 2:
		agent(rt, w, &w.fleet.Members[rapid.IntRange(0, len(w.fleet.Members)-1).Draw(rt, "node")])
	case 3:
		m := &w.fleet.Members[rapid.IntRange(0, len(w.fleet.Members)-1).Draw(rt, "node")]
		m.Node.Ready = !m.Node.Ready
		m.Node.ReadySince = w.now
	case 6:
		// The Node is deleted (and gone NotReady) or comes back.
		m := &w.fleet.Members[rapid.IntRange(0, len(w.fleet.Members)-1).Draw(rt, "node")]
		m.Node.Missing = !m.Node.Missing
		if m.Node.Missing {
			m.Node.Ready, m.Node.Cordoned = false, false
		}
	case 4:
		w.policy.Paused = rapid.Bool().Draw(rt, "paused")
	case 5:
		for i := range w.fleet.Ledger {
			if rapid.Bool().Draw(rt, "resume") {
				w.fleet.Ledger[i].ResumedAt = w.now
			}
		}
	}
}

// agent plays one step of a node's agent, following its protocol (docs/upstream.md, "Agent
// protocol").
func agent(rt *rapid.T, w *world, m *Member) {
	st, spec := m.Shadow.Status, m.Shadow.Spec
	fail := func(reason string) {
		st.CurrentState, st.CrashCount = errRst, st.CrashCount+1
		st.StateTransitionFailureTimestamp, st.FailureReason = &metav1.Time{Time: w.now}, reason
	}
	switch {
	case st.CurrentState == errRst && spec.State == idle:
		st.CurrentState = idle
	case spec.State == st.CurrentState && spec.State == idle:
		st.TargetVersion = rapid.SampledFrom([]string{vOld, vNew, vOther}).Draw(rt, "target")
	case spec.State == st.CurrentState || st.CurrentState == errRst:
		// Waiting for the controller.
	case rapid.IntRange(0, 4).Draw(rt, "agentFails") == 0:
		fail(rapid.SampledFrom([]string{"", "HostAPIError: 500", "DrainTimeout: PDB", "BootRolledBack: old"}).Draw(rt, "reason"))
	default:
		if spec.State == reboot && spec.Version != nil {
			st.CurrentVersion = *spec.Version
		}
		if _, failed := m.Shadow.Annotations[statemachine.RecordAnnotation]; spec.State == idle && st.CurrentState == mon && !failed {
			st.CrashCount, st.StateTransitionFailureTimestamp = 0, nil
		}
		st.CurrentState = spec.State
	}
	// The agent cordons its Node to drain it and uncordons it after the reboot or on giving up.
	switch st.CurrentState {
	case staged:
		m.Node.Cordoned = !m.Node.Missing
	case reboot, idle:
		m.Node.Cordoned = false
	}
}

// checkPass runs one Decide, checks its invariants and writes the Plan back.
func checkPass(rt *rapid.T, w *world, step int) {
	lastRunEnd := w.fleet.LastRunEnd
	if lastRunEnd.IsZero() {
		lastRunEnd = w.now
	}
	open := w.policy.Schedule == nil || w.policy.Schedule.Admits(w.now, lastRunEnd)
	see(w)
	plan := Decide(w.fleet, w.policy, w.now)
	byNode := map[string]*Member{}
	for i := range w.fleet.Members {
		byNode[nodeName(w.fleet.Members[i].Shadow.Name)] = &w.fleet.Members[i]
	}
	for _, c := range plan.Changes {
		m := byNode[c.Node]
		from, reported := m.Shadow.Spec.State, m.Shadow.Status.CurrentState
		if !legal(from, reported, c.Spec.State) {
			rt.Fatalf("step %d: %s: spec %s -> %s while the agent reports %s skips a state", step, c.Node, from, c.Spec.State, reported)
		}
		if c.Start {
			switch {
			case !open:
				rt.Fatalf("step %d: %s started outside the window", step, c.Node)
			case w.policy.Paused:
				rt.Fatalf("step %d: %s started while paused", step, c.Node)
			case spentBudget(w, *c.Spec.Version, plan):
				rt.Fatalf("step %d: %s started on halted version %s", step, c.Node, *c.Spec.Version)
			case !m.OptedIn:
				rt.Fatalf("step %d: %s started without opting in", step, c.Node)
			case w.policy.StateMachine.MaxVersion != nil && semver.MustParse(*c.Spec.Version).GreaterThan(w.policy.StateMachine.MaxVersion):
				rt.Fatalf("step %d: %s started to %s, past maxVersion %s", step, c.Node, *c.Spec.Version, w.policy.StateMachine.MaxVersion)
			case w.policy.ReleaseSoak > 0 && *c.Spec.Version != w.maxVersion && w.now.Before(w.seen[*c.Spec.Version].Add(w.policy.ReleaseSoak)):
				rt.Fatalf("step %d: %s started to %s, first offered at %s, before its soak of %s", step, c.Node, *c.Spec.Version, w.seen[*c.Spec.Version], w.policy.ReleaseSoak)
			}
		}
		if c.Outcome == statemachine.OutcomeComplete && w.now.Sub(m.Shadow.Spec.StateTransitionTimestamp.Time) < w.policy.StateMachine.MonitoringPeriod {
			rt.Fatalf("step %d: %s completed before its monitoring period", step, c.Node)
		}
	}
	apply(w, plan, byNode)
	optedIn := 0
	for _, m := range w.fleet.Members {
		if m.OptedIn {
			optedIn++
		}
	}
	// A node abandoned by its agent may be disrupted again (its Node goes NotReady) after others
	// took its slot, so only a pass that starts nodes must stay within the limit.
	if z := w.policy.Zones; z != nil && plan.Started > 0 && zonesInFlight(w) > z.MaxInFlight {
		rt.Fatalf("step %d: %d zones in flight after starting %d, %d allowed", step, zonesInFlight(w), plan.Started, z.MaxInFlight)
	}
	if got, limit := countInFlight(w), w.policy.Concurrency.Limit(optedIn); got > limit && plan.Started > 0 {
		rt.Fatalf("step %d: %d nodes in flight after starting %d, %d allowed", step, got, plan.Started, limit)
	} else if got != plan.InFlight {
		rt.Fatalf("step %d: plan says %d in flight, the test counts %d", step, plan.InFlight, got)
	}
}

// apply writes a Plan back as the reconciler would.
func apply(w *world, plan Plan, byNode map[string]*Member) {
	for _, c := range plan.Changes {
		m := byNode[c.Node]
		m.Shadow = m.Shadow.DeepCopy()
		m.Shadow.Spec = c.Spec
		if c.Record != nil {
			m.Shadow.Annotations = map[string]string{statemachine.RecordAnnotation: c.Record.String()}
		}
		if c.ClearRecord {
			delete(m.Shadow.Annotations, statemachine.RecordAnnotation)
		}
	}
	for _, f := range plan.Failures {
		if f.Class != statemachine.ClassRelease {
			continue
		}
		i := ledgerIndex(&w.fleet, f.Version)
		w.fleet.Ledger[i].Failures = append(w.fleet.Ledger[i].Failures, f)
	}
	w.fleet.LastRunEnd = plan.LastRunEnd
	w.fleet.Releases = plan.Releases
}

func ledgerIndex(f *Fleet, version string) int {
	for i, l := range f.Ledger {
		if l.Version == version {
			return i
		}
	}
	f.Ledger = append(f.Ledger, VersionLedger{Version: version})
	return len(f.Ledger) - 1
}
