package agent

import (
	"math"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// TargetVersion is the version the host would update to, as upstream reports it: the chosen
// update's version, or the running version when the host chose none.
func TargetVersion(chosen, running string) string {
	if chosen == "" {
		return running
	}
	return chosen
}

// ReachedStatus returns the status reporting state with the host's versions, keeping the crash
// count, failure timestamp and reason of brs's status, except that an update that completed
// (MonitoringUpdate back to Idle) clears them, upstream's only reset. The controller also resets
// a node from MonitoringUpdate to Idle when its monitoring fails; it then records the failure in
// the statemachine.RecordAnnotation annotation (written with the spec, and removed when an
// update completes), so a shadow carrying it did not complete and keeps its crash data: the
// failed node must not go first after a resume.
func ReachedStatus(brs *v2.BottlerocketShadow, state v2.State, current, target string) *v2.BottlerocketShadowStatus {
	s := &v2.BottlerocketShadowStatus{CurrentVersion: current, TargetVersion: target, CurrentState: state}
	if brs == nil || brs.Status == nil {
		return s
	}
	prev := brs.Status
	_, failed := brs.Annotations[statemachine.RecordAnnotation]
	if state == v2.StateIdle && prev.CurrentState == v2.StateMonitoringUpdate && !failed {
		return s
	}
	s.CrashCount = prev.CrashCount
	s.StateTransitionFailureTimestamp = prev.StateTransitionFailureTimestamp.DeepCopy()
	s.FailureReason = prev.FailureReason
	s.Conditions = prev.Conditions
	return s
}

// FailedStatus returns the status reporting failure f at now: ErrorReset, crash_count + 1, the
// failure timestamp and reason.
func FailedStatus(prev *v2.BottlerocketShadowStatus, f *Failure, current, target string, now time.Time) *v2.BottlerocketShadowStatus {
	s := &v2.BottlerocketShadowStatus{
		CurrentVersion:                  current,
		TargetVersion:                   target,
		CurrentState:                    v2.StateErrorReset,
		StateTransitionFailureTimestamp: &metav1.Time{Time: now.UTC().Truncate(time.Second)},
		FailureReason:                   f.Error(),
	}
	if prev != nil {
		s.CrashCount = prev.CrashCount
		if s.CrashCount < math.MaxUint32 {
			s.CrashCount++ // saturated, not wrapped to 0: upstream's u32 ends there
		}
		s.Conditions = prev.Conditions
	} else {
		s.CrashCount = 1
	}
	return s
}

// sameStatus reports whether a and b report the same thing; timestamps compare to the second,
// the precision the API keeps.
func sameStatus(a, b *v2.BottlerocketShadowStatus) bool {
	if a == nil || b == nil {
		return a == b
	}
	ta, tb := a.StateTransitionFailureTimestamp, b.StateTransitionFailureTimestamp
	if (ta == nil) != (tb == nil) || (ta != nil && !ta.Truncate(time.Second).Equal(tb.Truncate(time.Second))) {
		return false
	}
	return a.CurrentVersion == b.CurrentVersion && a.TargetVersion == b.TargetVersion &&
		a.CurrentState == b.CurrentState && a.CrashCount == b.CrashCount && a.FailureReason == b.FailureReason
}
