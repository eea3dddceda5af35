package statemachine

import (
	"fmt"
	"math"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// reached reports whether the agent reached the desired state.
func (in *input) reached() bool { return in.status.CurrentState == in.brs.Spec.State }

// version returns the version the node is updating to.
func (in *input) version() string {
	if v := in.brs.Spec.Version; v != nil {
		return *v
	}
	return in.cfg.Target(in.status)
}

// reset returns spec Idle with the timestamp now and the version kept, as upstream on failure.
func (in *input) reset() v2.BottlerocketShadowSpec {
	spec := *in.brs.Spec.DeepCopy()
	spec.State, spec.StateTransitionTimestamp = v2.StateIdle, ts(in.now)
	return spec
}

// fail resets the spec and records a failure the controller detected itself.
func (in *input) fail(reason, msg string) Decision {
	rec := Record{Count: in.record.Count, At: in.now, Reason: reason}
	if rec.Count < math.MaxInt32 {
		rec.Count++ // saturated: a hand-edited count must not wrap to a negative one
	}
	f := &Failure{Reason: reason, Message: msg, Class: Classify(reason), Version: in.version(), State: in.brs.Spec.State, At: in.now}
	return Decision{Spec: in.reset(), Outcome: OutcomeFailed, Failure: f, Record: &rec,
		Message: "Failed: " + FormatFailureReason(reason, msg)}
}

// awaitIdle waits for the agent to report Idle after a reset; its Wake is when the node stops
// counting as in flight (see NodeInFlight), unless that has passed: from then on only a Node event
// (uncordon, Ready, deletion) or the agent changes whether it counts (see SpecNodeInFlight).
func (in *input) awaitIdle(o Outcome, msg string) Decision {
	d := Decision{Spec: in.brs.Spec, Outcome: o, Message: msg}
	if t := in.brs.Spec.StateTransitionTimestamp; t == nil {
		d.Spec = *in.brs.Spec.DeepCopy()
		d.Spec.StateTransitionTimestamp = ts(in.now)
	} else if limit := in.cfg.Deadlines.Reset; limit > 0 && !in.now.After(t.Add(limit)) {
		d.Wake = t.Add(limit + time.Second)
	}
	return d
}

// versionMismatch fails a node that rebooted into a version other than spec.version.
func (in *input) versionMismatch() (Decision, bool) {
	v := in.brs.Spec.Version
	if v == nil || *v == in.status.CurrentVersion {
		return Decision{}, false
	}
	return in.fail(ReasonVersionMismatch, fmt.Sprintf("the node runs %s after its reboot into %s", in.status.CurrentVersion, *v)), true
}

// backoffInputs combines the agent's crash count and failure time with the controller's Record,
// adding the counts in an int64, where no uint32 plus int32 overflows.
func (in *input) backoffInputs() (int64, time.Time) {
	var last time.Time
	if t := in.status.StateTransitionFailureTimestamp; t != nil {
		last = t.Time
	}
	if in.record.At.After(last) {
		last = in.record.At
	}
	return int64(in.status.CrashCount) + int64(in.record.Count), last
}

// releaseFailureOfAnotherVersion reports whether the node's last failure pointed at the release
// it was updating to and the node now targets another version, target (a fix was published). The
// failure budget contains a bad release; the per-node backoff is for trouble with the node, and
// a bad release says nothing about the node taking another one, so it does not delay the fix.
func (in *input) releaseFailureOfAnotherVersion(target string) bool {
	failed := in.brs.Spec.Version
	if failed == nil || *failed == target {
		return false
	}
	reason := in.record.Reason
	if t := in.status.StateTransitionFailureTimestamp; t != nil && t.After(in.record.At) {
		reason, _ = ParseFailureReason(in.status.FailureReason)
	}
	return Classify(reason) == ClassRelease
}

func (in *input) healthMessage() string {
	switch {
	case !in.node.Ready:
		return "the Node is not Ready"
	case !in.node.PodsReady:
		return "selected pods on the node are not Ready"
	default:
		return "healthy"
	}
}

func (in *input) unhealthyMessage(period time.Duration) string {
	return fmt.Sprintf("the node was not healthy for %s within %s after the reboot into %s: %s",
		period, in.cfg.Deadline(v2.StateMonitoringUpdate), in.version(), in.healthMessage())
}

// NodeInFlight reports whether a shadow holds an update slot at now: upstream's active set
// (docs/upstream.md, "Active set": status present and current_state != Idle, or spec.state !=
// status.current_state), except a node whose spec was reset to Idle more than Deadlines.Reset
// ago and whose agent still has not reported Idle (a dead agent must not hold a slot forever).
// Such an abandoned node still holds its slot while its Node is Disrupted (cordoned by Brupop, or
// NotReady and not deleted), so that a dead agent does not let another node start while its own
// is out of service.
func NodeInFlight(brs *v2.BottlerocketShadow, node NodeFacts, cfg Config, now time.Time) bool {
	return SpecNodeInFlight(&brs.Spec, brs.Status, node, cfg, now)
}

// SpecNodeInFlight is NodeInFlight for a shadow whose spec is replaced by spec.
func SpecNodeInFlight(spec *v2.BottlerocketShadowSpec, st *v2.BottlerocketShadowStatus, node NodeFacts, cfg Config, now time.Time) bool {
	if st == nil || (st.CurrentState == v2.StateIdle && spec.State == v2.StateIdle) {
		return false
	}
	return !specAbandoned(spec, st, cfg, now) || node.Disrupted()
}

// Abandoned reports whether a shadow's spec was reset to Idle more than Deadlines.Reset ago and
// its agent still reports another state.
func Abandoned(brs *v2.BottlerocketShadow, cfg Config, now time.Time) bool {
	return specAbandoned(&brs.Spec, brs.Status, cfg, now)
}

func specAbandoned(spec *v2.BottlerocketShadowSpec, st *v2.BottlerocketShadowStatus, cfg Config, now time.Time) bool {
	t := spec.StateTransitionTimestamp
	return st != nil && spec.State == v2.StateIdle && st.CurrentState != v2.StateIdle &&
		cfg.Deadlines.Reset > 0 && t != nil && now.Sub(t.Time) > cfg.Deadlines.Reset
}

func ts(t time.Time) *metav1.Time {
	m := metav1.NewTime(t)
	return &m
}

// specEqual compares specs; timestamps are compared as instants.
func specEqual(a, b v2.BottlerocketShadowSpec) bool {
	if a.State != b.State || (a.Version == nil) != (b.Version == nil) || (a.Version != nil && *a.Version != *b.Version) {
		return false
	}
	ta, tb := a.StateTransitionTimestamp, b.StateTransitionTimestamp
	if ta == nil || tb == nil {
		return ta == tb
	}
	return ta.Equal(tb)
}

// hasRecord reports whether the shadow carries the RecordAnnotation annotation.
func (in *input) hasRecord() bool {
	_, ok := in.brs.Annotations[RecordAnnotation]
	return ok
}
