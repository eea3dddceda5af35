package statemachine

import (
	"fmt"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// Outcome names what Next decided, for Events, metrics and the wait reasons of package rollout.
type Outcome string

// The outcomes of Next, in the order of its checks.
const (
	// OutcomeNoStatus: the agent has not reported yet; the spec is (reset to) the default.
	OutcomeNoStatus Outcome = "NoStatus"
	// OutcomeFailed: the agent reported ErrorReset, or the controller found the update failed
	// (monitoring, version); the spec goes back to Idle.
	OutcomeFailed Outcome = "Failed"
	// OutcomeRecovering: the spec is Idle after a failure and the agent is recovering.
	OutcomeRecovering Outcome = "Recovering"
	// OutcomeTimedOut: the agent missed the deadline of the desired state; the spec goes to Idle.
	OutcomeTimedOut Outcome = "TimedOut"
	// OutcomeAwaitingAgent: the agent has not reached the desired state yet.
	OutcomeAwaitingAgent Outcome = "AwaitingAgent"
	// OutcomeStart: an update is available and the backoff allows it; Decision.Start is set and
	// the spec becomes StagedAndPerformedUpdate if the caller lets the node start.
	OutcomeStart Outcome = "Start"
	// OutcomeBackoff: an update is available but the node failed recently.
	OutcomeBackoff Outcome = "Backoff"
	// OutcomeUpToDate: nothing to do; the spec is (reset to) the default.
	OutcomeUpToDate Outcome = "UpToDate"
	// OutcomeAdvance: the agent reached the desired state; the spec moves to the next one.
	OutcomeAdvance Outcome = "Advance"
	// OutcomeMonitoring: the node is being monitored.
	OutcomeMonitoring Outcome = "Monitoring"
	// OutcomeComplete: monitoring passed; the update is complete and the spec goes to Idle.
	OutcomeComplete Outcome = "Complete"
)

// NodeFacts are what the controller observes of the Node of a shadow.
type NodeFacts struct {
	// Ready is the Node's Ready condition.
	Ready bool
	// ReadySince is when the Ready condition last changed (its lastTransitionTime).
	ReadySince time.Time
	// PodsReady is whether every pod selected by the monitoring checks on the node is Ready;
	// true when no pod selector is configured.
	PodsReady bool
	// Cordoned is whether the Node is unschedulable and carries v2.CordonedAnnotation: Brupop
	// cordoned it and has not uncordoned it yet.
	Cordoned bool
	// Missing is whether the Node object is gone.
	Missing bool
}

// Disrupted reports whether the Node is still disrupted by an update: cordoned by Brupop, or
// NotReady while it still exists. A node whose agent was abandoned (see SpecNodeInFlight) keeps
// its update slot while it is disrupted.
func (f NodeFacts) Disrupted() bool {
	return f.Cordoned || (!f.Ready && !f.Missing)
}

// Failure is a failed update attempt of one node.
type Failure struct {
	// Reason is one of the Reason constants (or what the agent reported).
	Reason string
	// Message says what happened, for people.
	Message string
	// Class is Classify(Reason).
	Class Class
	// Version is the version the node was updating to.
	Version string
	// State is the desired state the node failed in.
	State v2.State
	// At is when the failure happened.
	At time.Time
}

// Decision is the result of Next for one shadow.
type Decision struct {
	// Spec is the spec the shadow should have; equal to the current one unless Changed.
	Spec v2.BottlerocketShadowSpec
	// Changed says Spec differs from the current spec and must be written.
	Changed bool
	// Start says the change starts a new update. The caller writes it only when the node may
	// start now (window, pause, halt, concurrency); otherwise the node waits.
	Start bool
	// Outcome and Message say why, for people.
	Outcome Outcome
	Message string
	// Failure is set when this decision fails the node.
	Failure *Failure
	// Record, when set, is the new value of the RecordAnnotation annotation.
	Record *Record
	// ClearRecord says the RecordAnnotation annotation must be removed.
	ClearRecord bool
	// Wake is when the decision may change with no new event (a deadline, the end of a backoff
	// or of the monitoring period); zero when only an event can change it.
	Wake time.Time
}

// input is what the checks of Next look at.
type input struct {
	brs    *v2.BottlerocketShadow
	status *v2.BottlerocketShadowStatus
	node   NodeFacts
	cfg    Config
	now    time.Time
	record Record
}

// Next returns the decision for one shadow at now: upstream's table (docs/upstream.md, "Next
// state") with deadlines and monitoring. The checks run in order and the first that applies
// decides:
//
//  1. no status: the default spec;
//  2. status ErrorReset: spec Idle (timestamp now, version kept) and the agent's Failure, unless
//     the spec is already Idle (recovering);
//  3. the desired state is not reached and its deadline passed: spec Idle and a Failure
//     (StateTimeout, or RebootNotReady when the Node went NotReady after the reboot was
//     requested and is still not Ready at the reboot deadline);
//  4. the desired state is not reached: wait for the agent;
//  5. reached Idle: start (Decision.Start) when current != target and the backoff allows, wait
//     in backoff, or reset the spec to the default when up to date;
//  6. reached MonitoringUpdate: complete once the Node (and the selected pods) have been Ready
//     for the monitoring period, fail when its deadline passes first;
//  7. reached StagedAndPerformedUpdate or RebootedIntoUpdate: the next state (failing with
//     VersionMismatch if the node rebooted into another version).
func Next(brs *v2.BottlerocketShadow, node NodeFacts, cfg Config, now time.Time) Decision {
	in := input{brs: brs, status: brs.Status, node: node, cfg: cfg, now: now, record: RecordFromAnnotations(brs.Annotations)}
	d, ok := checkNoStatus(&in)
	// The checks are called directly rather than through a slice of functions so that in stays
	// on the stack: Next runs for every shadow on every pass.
	if !ok {
		d, ok = checkCrashed(&in)
	}
	if !ok {
		d, ok = checkDeadline(&in)
	}
	if !ok {
		d, ok = checkAwaitingAgent(&in)
	}
	if !ok {
		d, ok = checkIdle(&in)
	}
	if !ok {
		d, ok = checkMonitoring(&in)
	}
	if !ok {
		d, _ = checkAdvance(&in)
	}
	d.Changed = !specEqual(d.Spec, brs.Spec)
	return d
}

func checkNoStatus(in *input) (Decision, bool) {
	if in.status != nil {
		return Decision{}, false
	}
	return Decision{Spec: v2.BottlerocketShadowSpec{State: v2.StateIdle}, Outcome: OutcomeNoStatus,
		Message: "Waiting for the node's agent to report its status"}, true
}

func checkCrashed(in *input) (Decision, bool) {
	if in.status.CurrentState != v2.StateErrorReset {
		return Decision{}, false
	}
	if in.brs.Spec.State == v2.StateIdle {
		d := in.awaitIdle(OutcomeRecovering, "Waiting for the agent to recover from its failure")
		return d, true
	}
	reason, msg := ParseFailureReason(in.status.FailureReason)
	at := in.now
	if ts := in.status.StateTransitionFailureTimestamp; ts != nil {
		at = ts.Time
	}
	f := &Failure{Reason: reason, Message: msg, Class: Classify(reason), Version: in.version(), State: in.brs.Spec.State, At: at}
	return Decision{Spec: in.reset(), Outcome: OutcomeFailed, Failure: f,
		Message: fmt.Sprintf("The agent failed %s (crash count %d): %s", in.brs.Spec.State, in.status.CrashCount, FormatFailureReason(reason, msg))}, true
}

func checkDeadline(in *input) (Decision, bool) {
	spec := in.brs.Spec
	if in.reached() || spec.State == v2.StateIdle || spec.StateTransitionTimestamp == nil {
		return Decision{}, false
	}
	limit := in.cfg.Deadline(spec.State)
	if limit == 0 || in.now.Sub(spec.StateTransitionTimestamp.Time) <= limit {
		return Decision{}, false
	}
	reason, msg := ReasonStateTimeout, fmt.Sprintf("the agent did not reach %s within %s (it reports %s)", spec.State, limit, in.status.CurrentState)
	if spec.State == v2.StateRebootedIntoUpdate {
		reason, msg = in.rebootTimeout(limit)
	}
	d := in.fail(reason, msg)
	d.Outcome = OutcomeTimedOut
	return d, true
}

func checkAwaitingAgent(in *input) (Decision, bool) {
	if in.reached() {
		return Decision{}, false
	}
	if in.brs.Spec.State == v2.StateIdle {
		return in.awaitIdle(OutcomeAwaitingAgent, "Waiting for the agent to report Idle"), true
	}
	d := Decision{Spec: in.brs.Spec, Outcome: OutcomeAwaitingAgent,
		Message: fmt.Sprintf("Waiting for the agent to reach %s", in.brs.Spec.State)}
	if in.brs.Spec.StateTransitionTimestamp == nil {
		// Without a timestamp no deadline can run: restart the clock (the agent ignores it).
		d.Spec = *in.brs.Spec.DeepCopy()
		d.Spec.StateTransitionTimestamp = ts(in.now)
	} else if limit := in.cfg.Deadline(in.brs.Spec.State); limit > 0 {
		d.Wake = in.brs.Spec.StateTransitionTimestamp.Add(limit + time.Second)
	}
	return d, true
}

func checkIdle(in *input) (Decision, bool) {
	if in.brs.Spec.State != v2.StateIdle {
		return Decision{}, false
	}
	st := in.status
	// The target is worked out once: with a maxVersion it parses versions.
	target := in.cfg.Target(st)
	if in.cfg.runs(st.CurrentVersion, target) {
		msg := "Running " + st.CurrentVersion + ", no update available"
		if st.CurrentVersion != st.TargetVersion && in.cfg.MaxVersion != nil {
			msg = fmt.Sprintf("Running %s: the FleetPolicy's maxVersion %s holds it back from %s", st.CurrentVersion, in.cfg.MaxVersion.Original(), st.TargetVersion)
		}
		return Decision{Spec: v2.BottlerocketShadowSpec{State: v2.StateIdle}, Outcome: OutcomeUpToDate, Message: msg}, true
	}
	crashes, last := in.backoffInputs()
	if !BackoffAllows(crashes, last, in.now) && !in.releaseFailureOfAnotherVersion(target) {
		return Decision{Spec: in.brs.Spec, Outcome: OutcomeBackoff, Wake: BackoffEnds(crashes, last),
			Message: fmt.Sprintf("Failed %d times, last at %s: retrying after %s", crashes, last.UTC().Format(time.RFC3339), BackoffEnds(crashes, last).UTC().Format(time.RFC3339))}, true
	}
	version := target // only a started node's version escapes to the heap
	return Decision{Spec: v2.BottlerocketShadowSpec{State: v2.StateStagedAndPerformedUpdate, StateTransitionTimestamp: ts(in.now), Version: &version},
		Start: true, Outcome: OutcomeStart, Message: "Update from " + st.CurrentVersion + " to " + target}, true
}

func checkMonitoring(in *input) (Decision, bool) {
	if in.brs.Spec.State != v2.StateMonitoringUpdate {
		return Decision{}, false
	}
	if d, ok := in.versionMismatch(); ok {
		return d, true
	}
	start := in.now
	if t := in.brs.Spec.StateTransitionTimestamp; t != nil {
		start = t.Time
	}
	healthySince := start
	if in.node.ReadySince.After(healthySince) {
		healthySince = in.node.ReadySince
	}
	period := in.cfg.MonitoringPeriod
	healthy := in.node.Ready && in.node.PodsReady
	if healthy && in.now.Sub(healthySince) >= period {
		return Decision{Spec: in.reset(), Outcome: OutcomeComplete, ClearRecord: in.hasRecord(),
			Message: fmt.Sprintf("Update to %s complete: healthy for %s", in.version(), period)}, true
	}
	deadline := start.Add(in.cfg.Deadline(v2.StateMonitoringUpdate))
	if in.cfg.Deadline(v2.StateMonitoringUpdate) > 0 && in.now.After(deadline) {
		return in.fail(ReasonMonitoringFailed, in.unhealthyMessage(period)), true
	}
	d := Decision{Spec: in.brs.Spec, Outcome: OutcomeMonitoring,
		Message: fmt.Sprintf("Monitoring the update to %s for %s: %s", in.version(), period, in.healthMessage())}
	if in.cfg.Deadline(v2.StateMonitoringUpdate) > 0 {
		d.Wake = deadline.Add(time.Second)
	}
	if healthy {
		d.Wake = healthySince.Add(period)
	}
	return d, true
}

func checkAdvance(in *input) (Decision, bool) {
	var next v2.State
	switch in.brs.Spec.State {
	case v2.StateStagedAndPerformedUpdate:
		next = v2.StateRebootedIntoUpdate
	case v2.StateRebootedIntoUpdate:
		if d, ok := in.versionMismatch(); ok {
			return d, true
		}
		next = v2.StateMonitoringUpdate
	default:
		// A desired ErrorReset (never written by Brupop) is reset to Idle.
		return Decision{Spec: in.reset(), Outcome: OutcomeAdvance, Message: fmt.Sprintf("Invalid desired state %q reset to Idle", in.brs.Spec.State)}, true
	}
	spec := *in.brs.Spec.DeepCopy()
	spec.State, spec.StateTransitionTimestamp = next, ts(in.now)
	return Decision{Spec: spec, Outcome: OutcomeAdvance, Message: fmt.Sprintf("Reached %s, moving to %s", in.brs.Spec.State, next)}, true
}

// rebootTimeout classifies a missed RebootedIntoUpdate deadline. Only a Node that went NotReady
// after the reboot was requested and has not come back points at the release (RebootNotReady).
// A Node that stayed Ready never rebooted (its agent is stuck, say draining), and one that was
// NotReady before the request (or is gone) did not go down because of the new version: both are
// operational (StateTimeout).
func (in *input) rebootTimeout(limit time.Duration) (string, string) {
	requested := in.brs.Spec.StateTransitionTimestamp.Time
	switch {
	case in.node.Ready:
		return ReasonStateTimeout, fmt.Sprintf("the agent did not reach %s within %s (it reports %s) and the Node stayed Ready: it never rebooted (a drain or the agent is stuck)",
			v2.StateRebootedIntoUpdate, limit, in.status.CurrentState)
	case in.node.ReadySince.After(requested):
		return ReasonRebootNotReady, fmt.Sprintf("the Node is not Ready %s after the reboot into %s was requested", limit, in.version())
	default:
		return ReasonStateTimeout, fmt.Sprintf("the agent did not reach %s within %s (it reports %s); the Node was not Ready before the reboot was requested",
			v2.StateRebootedIntoUpdate, limit, in.status.CurrentState)
	}
}
