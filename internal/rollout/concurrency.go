package rollout

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Concurrency is how many nodes may be in flight at once: a number, a percentage of the opted-in
// nodes, or unlimited.
type Concurrency struct {
	// Unlimited lifts the limit.
	Unlimited bool
	// Count is the limit when Percent is 0 and Unlimited is false.
	Count int
	// Percent (1-100) of the opted-in nodes, rounded up.
	Percent int
}

// DefaultConcurrency is the Helm chart's default of MAX_CONCURRENT_UPDATE, one node at a time.
var DefaultConcurrency = Concurrency{Count: 1}

// ParseConcurrency parses MAX_CONCURRENT_UPDATE or FleetPolicy maxConcurrentUpdates: a positive
// integer, "unlimited" (any case, as upstream) or "N%" with N in 1-100. Zero is rejected here: it
// would silently stop every update. SettingsFrom reads upstream's MAX_CONCURRENT_UPDATE=0 as a
// pause, with a warning; a FleetPolicy must say paused.
func ParseConcurrency(s string) (Concurrency, error) {
	v := strings.TrimSpace(s)
	if strings.EqualFold(v, "unlimited") {
		return Concurrency{Unlimited: true}, nil
	}
	if p, ok := strings.CutSuffix(v, "%"); ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 100 {
			return Concurrency{}, fmt.Errorf("rollout: max concurrent updates %q: a percentage must be 1%% to 100%%", s)
		}
		return Concurrency{Percent: n}, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return Concurrency{}, fmt.Errorf("rollout: max concurrent updates %q: want a positive number, \"unlimited\" or a percentage like \"10%%\" (to stop updates, pause instead of 0)", s)
	}
	return Concurrency{Count: n}, nil
}

// Limit returns how many nodes may be in flight in a fleet of optedIn opted-in nodes. A
// percentage is rounded up, so it allows at least one node when there is one.
func (c Concurrency) Limit(optedIn int) int {
	switch {
	case c.Unlimited:
		return math.MaxInt
	case c.Percent > 0:
		return (optedIn*c.Percent + 99) / 100
	default:
		return c.Count
	}
}

// String returns the value in the syntax ParseConcurrency reads.
func (c Concurrency) String() string {
	switch {
	case c.Unlimited:
		return "unlimited"
	case c.Percent > 0:
		return strconv.Itoa(c.Percent) + "%"
	default:
		return strconv.Itoa(c.Count)
	}
}
