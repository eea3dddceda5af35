package agent

import (
	"fmt"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// DrainTimeout returns the drain timeout the controller chose for the shadow, from
// v2.DrainTimeoutAnnotation, or fallback when the annotation is absent. An annotation that is not
// a positive Go duration also gives fallback, with an error saying so.
func DrainTimeout(annotations map[string]string, fallback time.Duration) (time.Duration, error) {
	v, ok := annotations[v2.DrainTimeoutAnnotation]
	if !ok {
		return fallback, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return fallback, fmt.Errorf("agent: annotation %s=%q is not a positive duration; using %s", v2.DrainTimeoutAnnotation, v, fallback)
	}
	return d, nil
}

// DrainDeadline returns when the drain of an update to spec must end: timeout after the spec's
// transition to its state, plus lbWait, the wait after the load-balancer exclusion that precedes
// the drain. Counting from the transition gives an agent restarted mid-drain the same deadline;
// a spec without a transition time, or with one after now, counts from now.
func DrainDeadline(spec v2.BottlerocketShadowSpec, now time.Time, lbWait, timeout time.Duration) time.Time {
	start := now
	if ts := spec.StateTransitionTimestamp; ts != nil && ts.Time.Before(now) {
		start = ts.Time
	}
	return start.Add(lbWait + timeout)
}
