package statemachine

import "time"

// maxBackoffMinutes is upstream's cap: a node is retried at least once a day.
const maxBackoffMinutes = 1440

// BackoffAllows reports whether a node whose last failure happened at lastFailure, after
// crashCount consecutive failures, may start an update at now. It is upstream's
// node_allowed_to_update: with gap the whole minutes since the failure, allowed iff there was no
// failure, gap > 1440 or gap > 2^crashCount. A failure in the future (clock skew) waits.
// crashCount is an int64 so that the agent's crash_count (any uint32) plus the controller's
// Record.Count cannot overflow; any count of 11 or more waits the 24 h cap.
func BackoffAllows(crashCount int64, lastFailure, now time.Time) bool {
	if lastFailure.IsZero() {
		return true
	}
	gap := int64(now.Sub(lastFailure) / time.Minute)
	if now.Before(lastFailure) {
		return false
	}
	return gap > maxBackoffMinutes || gap > backoffMinutes(crashCount)
}

// BackoffEnds returns the first whole minute after lastFailure at which BackoffAllows is true.
func BackoffEnds(crashCount int64, lastFailure time.Time) time.Time {
	if lastFailure.IsZero() {
		return time.Time{}
	}
	limit := min(backoffMinutes(crashCount), maxBackoffMinutes)
	return lastFailure.Add(time.Duration(limit+1) * time.Minute)
}

// backoffMinutes is 2^crashCount, saturated at 2^20 (far above the cap) so that no shift
// overflows.
func backoffMinutes(crashCount int64) int64 {
	if crashCount < 0 {
		crashCount = 0
	}
	if crashCount > 20 {
		return 1 << 20
	}
	return 1 << crashCount
}
