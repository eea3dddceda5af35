package window

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// legacyTime is upstream's pattern for UPDATE_WINDOW_START and UPDATE_WINDOW_STOP (H:M:S).
var legacyTime = regexp.MustCompile(`^(2[0-3]|[01]?[0-9]):([0-5]?[0-9]):([0-5]?[0-9])$`)

// ErrLegacyBothOrNone is returned when only one of the deprecated window variables is set.
var ErrLegacyBothOrNone = errors.New("window: set both UPDATE_WINDOW_START and UPDATE_WINDOW_STOP (H:M:S), or neither")

// LegacyExpression returns the cron expression upstream derives from the deprecated
// UPDATE_WINDOW_START and UPDATE_WINDOW_STOP values (H:M:S, both required). As upstream, only the
// hours count and the stop hour is inclusive: start <= stop gives "* * S-E * * * *", otherwise the
// window wraps midnight: "* * S-23,0-E * * * *".
func LegacyExpression(start, stop string) (string, error) {
	if start == "" || stop == "" {
		return "", ErrLegacyBothOrNone
	}
	s, err := legacyHour("UPDATE_WINDOW_START", start)
	if err != nil {
		return "", err
	}
	e, err := legacyHour("UPDATE_WINDOW_STOP", stop)
	if err != nil {
		return "", err
	}
	if s <= e {
		return fmt.Sprintf("* * %d-%d * * * *", s, e), nil
	}
	return fmt.Sprintf("* * %d-23,0-%d * * * *", s, e), nil
}

func legacyHour(name, v string) (int, error) {
	m := legacyTime.FindStringSubmatch(v)
	if m == nil {
		return 0, fmt.Errorf("window: %s=%q: want H:M:S with hours 0-23, for example 22:00:00", name, v)
	}
	return strconv.Atoi(m[1])
}

// FromLegacyWindow returns the Windowed schedule of the deprecated UPDATE_WINDOW_START/STOP
// values, evaluated in UTC as upstream does.
func FromLegacyWindow(start, stop string) (*Schedule, error) {
	expr, err := LegacyExpression(start, stop)
	if err != nil {
		return nil, err
	}
	return Parse(expr, time.UTC)
}

// FromEnvironment resolves upstream's schedule variables the way upstream does: cron (the value
// of SCHEDULER_CRON_EXPRESSION, "" when unset) wins over the deprecated start/stop window, with a
// warning; with neither set the schedule is DefaultExpression (always open). The schedule is
// evaluated in loc (UTC when nil). Warnings are for the log; the error says what to fix.
func FromEnvironment(cron, start, stop string, loc *time.Location) (*Schedule, []string, error) {
	legacy := start != "" || stop != ""
	switch {
	case cron != "" && legacy:
		s, err := Parse(cron, loc)
		return s, []string{"UPDATE_WINDOW_START/STOP are deprecated and ignored because SCHEDULER_CRON_EXPRESSION is set"}, err
	case cron != "":
		s, err := Parse(cron, loc)
		return s, nil, err
	case legacy:
		s, err := FromLegacyWindow(start, stop)
		return s, []string{"UPDATE_WINDOW_START/STOP are deprecated: use SCHEDULER_CRON_EXPRESSION"}, err
	default:
		s, err := Parse(DefaultExpression, loc)
		return s, nil, err
	}
}
