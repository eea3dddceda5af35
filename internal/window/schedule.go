package window

import (
	"fmt"
	"strings"
	"time"

	"github.com/adhocore/gronx"
)

// DefaultExpression is upstream's schedule when SCHEDULER_CRON_EXPRESSION is unset: always open.
const DefaultExpression = "* * * * * * *"

// maxDaySearches bounds the day-by-day search for expressions that restrict both day fields
// (e.g. "Friday the 13th"), so a schedule that never fires fails closed instead of looping.
const maxDaySearches = 2000

// Kind says how a schedule lets updates start.
type Kind int

const (
	// Windowed schedules let new updates start while the current second matches the expression.
	Windowed Kind = iota
	// Oneshot schedules fire triggers; after a trigger new updates start until none is left.
	Oneshot
)

// String returns the name of the kind.
func (k Kind) String() string {
	if k == Oneshot {
		return "Oneshot"
	}
	return "Windowed"
}

// Schedule is a parsed update schedule in a time zone. Its methods are safe for concurrent use.
type Schedule struct {
	expr  string
	loc   *time.Location
	kind  Kind
	gronx []string // all must match
}

// Parse parses an expression of upstream's dialect (see the package documentation) evaluated in
// loc (UTC when nil). The error says which field is wrong and how to fix it.
func Parse(expr string, loc *time.Location) (s *Schedule, err error) {
	if loc == nil {
		loc = time.UTC
	}
	defer func() {
		// gronx is third-party code parsing untrusted input: a panic there must fail closed.
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("window: cron expression %q: %v", expr, r)
		}
	}()
	exprs, err := translate(expr)
	if err != nil {
		return nil, fmt.Errorf("window: cron expression %q: %w", expr, err)
	}
	s = &Schedule{expr: strings.Join(strings.Fields(expr), " "), loc: loc, gronx: exprs}
	s.kind = s.detectKind()
	return s, nil
}

// MustParse is Parse for expressions known to be valid, such as constants; it panics on error.
func MustParse(expr string, loc *time.Location) *Schedule {
	s, err := Parse(expr, loc)
	if err != nil {
		panic(err)
	}
	return s
}

// detectKind applies upstream's "next two fire times are one second apart" rule to the seconds
// field alone, so the answer does not depend on when the schedule was parsed.
func (s *Schedule) detectKind() Kind {
	sec := strings.Fields(s.gronx[0])[fieldSecond] + " * * * * * *"
	base := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := false
	for i := range 60 {
		due, err := gronx.New().IsDue(sec, base.Add(time.Duration(i)*time.Second))
		due = due && err == nil
		if due && prev {
			return Windowed
		}
		prev = due
	}
	return Oneshot
}

// String returns the expression as given (whitespace normalised) and its time zone.
func (s *Schedule) String() string { return s.expr + " (" + s.loc.String() + ")" }

// Expression returns the expression as given, whitespace normalised.
func (s *Schedule) Expression() string { return s.expr }

// Location returns the time zone the schedule is evaluated in.
func (s *Schedule) Location() *time.Location { return s.loc }

// Kind returns whether the schedule is Windowed or Oneshot.
func (s *Schedule) Kind() Kind { return s.kind }

// Contains reports whether t, truncated to the second, is a fire time of the schedule. For a
// Windowed schedule that means "the window is open at t"; for a Oneshot schedule "t is a trigger".
func (s *Schedule) Contains(t time.Time) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	t = t.In(s.loc).Truncate(time.Second)
	for _, e := range s.gronx {
		if due, err := gronx.New().IsDue(e, t); err != nil || !due {
			return false
		}
	}
	return true
}

// Open reports whether a Windowed schedule is open at now. A Oneshot schedule is only "open" on
// the second of a trigger; use Admits to follow a Oneshot run.
func (s *Schedule) Open(now time.Time) bool { return s.Contains(now) }

// Admits reports whether new updates may start at now. For a Windowed schedule that is Open(now)
// and lastRunEnd is ignored. For a Oneshot schedule it is whether a trigger fired after
// lastRunEnd and at or before now: a run starts at a trigger and lasts until the caller sees a
// pass with no node left to start, which the caller records as the new lastRunEnd. A zero
// lastRunEnd counts as now (no run in progress: wait for the next trigger), as upstream does
// when it starts.
func (s *Schedule) Admits(now, lastRunEnd time.Time) bool {
	if s.kind == Windowed {
		return s.Contains(now)
	}
	if lastRunEnd.IsZero() || lastRunEnd.After(now) {
		return false
	}
	next, ok := s.next(lastRunEnd, false)
	return ok && !next.After(now)
}

// NextOpen returns the earliest second at or after now at which the schedule fires (Windowed:
// the window is open; Oneshot: a trigger), and false when it never fires again (for example a
// year in the past) or cannot be found within gronx's search limits, which callers should treat
// as closed.
func (s *Schedule) NextOpen(now time.Time) (time.Time, bool) { return s.next(now, true) }

// NextAdmit returns the earliest time after which Admits(t, lastRunEnd) becomes true when it is
// false at now: the window's next opening, or the next trigger after both now and lastRunEnd.
// False means never (treat as closed).
func (s *Schedule) NextAdmit(now, lastRunEnd time.Time) (time.Time, bool) {
	if s.kind == Windowed {
		return s.NextOpen(now)
	}
	from := now
	if lastRunEnd.After(from) {
		from = lastRunEnd
	}
	return s.next(from, false)
}

// next returns the first fire time at or after (inclusive) or strictly after t.
func (s *Schedule) next(t time.Time, inclusive bool) (next time.Time, ok bool) {
	defer func() {
		if recover() != nil {
			next, ok = time.Time{}, false
		}
	}()
	// Seconds are the unit of the schedule, as in Contains.
	t = t.In(s.loc).Truncate(time.Second)
	for range maxDaySearches {
		c, err := gronx.NextTickAfter(s.gronx[0], t, inclusive)
		if err != nil {
			return time.Time{}, false
		}
		c = c.Truncate(time.Second)
		if !inclusive && !c.After(t) {
			return time.Time{}, false
		}
		if len(s.gronx) == 1 {
			return c, true
		}
		if due, err := gronx.New().IsDue(s.gronx[1], c); err == nil && due {
			return c, true
		}
		// The day of month matched but not the day of week: try from the next day.
		y, m, d := c.Date()
		t, inclusive = time.Date(y, m, d+1, 0, 0, 0, 0, s.loc), true
	}
	return time.Time{}, false
}
