package window

import (
	"strings"
	"testing"
	"time"
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load zone %s: %v", name, err)
	}
	return loc
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, expr, want string
	}{
		{"empty", "", "want 6 or 7"},
		{"five fields", "* * * * *", "want 6 or 7"},
		{"eight fields", "* * * * * * * *", "want 6 or 7"},
		{"tag", "@daily", "want 6 or 7"},
		{"second out of range", "60 * * * * *", "second field"},
		{"hour out of range", "* * 24 * * *", "hour field"},
		{"list hides bad item", "* * 1,99 * * *", "hour field"},
		{"reversed range", "* * 12-10 * * *", "hour field"},
		{"zero step", "*/0 * * * * *", "second field"},
		{"day of week zero", "* * * * * 0", "Sun=1 to Sat=7"},
		{"day of week eight", "* * * * * 8", "Sun=1 to Sat=7"},
		{"unknown day name", "* * * * * Funday", "not a day-of-week name"},
		{"name in hour", "* * Mon * * *", "only allowed in the month and day-of-week"},
		{"last-day modifier", "* * * L * *", "names are only allowed"},
		{"nth weekday", "* * * * * 2#1", "unexpected character"},
		{"month zero", "* * * * 0 *", "month field"},
		{"garbage", "a b c d e f", "names are only allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.expr, nil)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want error", tc.expr, s)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "window: ") {
				t.Errorf("Parse(%q) error = %q, want it to start with %q and mention %q", tc.expr, err, "window: ", tc.want)
			}
		})
	}
}

func TestKind(t *testing.T) {
	cases := []struct {
		name, expr string
		want       Kind
	}{
		{"default always", DefaultExpression, Windowed},
		{"six fields always", "* * * * * *", Windowed},
		{"mondays 10 to 12", "* * 10-12 * * Mon *", Windowed},
		{"explicit seconds range", "0-59 0 3 * * *", Windowed},
		{"trigger at 10 on Mondays", "0 0 10 * * Mon *", Oneshot},
		{"once a minute is a trigger, as upstream", "0 * 10-12 * * * *", Oneshot},
		{"every other second", "*/2 * * * * *", Oneshot},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.expr, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Kind(); got != tc.want {
				t.Errorf("Kind(%q) = %v, want %v", tc.expr, got, tc.want)
			}
		})
	}
}

func TestContains(t *testing.T) {
	utc := time.UTC
	ny := mustLoad(t, "America/New_York")
	tokyo := mustLoad(t, "Asia/Tokyo")
	cases := []struct {
		name string
		expr string
		loc  *time.Location
		at   time.Time
		want bool
	}{
		{"always", DefaultExpression, utc, time.Date(2024, 5, 6, 1, 2, 3, 0, utc), true},
		{"monday window inside", "* * 10-12 * * Mon *", utc, time.Date(2024, 5, 6, 12, 59, 59, 0, utc), true},
		{"monday window after stop hour", "* * 10-12 * * Mon *", utc, time.Date(2024, 5, 6, 13, 0, 0, 0, utc), false},
		{"monday window on tuesday", "* * 10-12 * * Mon *", utc, time.Date(2024, 5, 7, 11, 0, 0, 0, utc), false},
		{"numeric 2 is monday as upstream", "* * * * * 2", utc, time.Date(2024, 5, 6, 11, 0, 0, 0, utc), true},
		{"numeric 1 is sunday as upstream", "* * * * * 1", utc, time.Date(2024, 5, 5, 11, 0, 0, 0, utc), true},
		{"numeric 7 is saturday as upstream", "* * * * * 7", utc, time.Date(2024, 5, 4, 11, 0, 0, 0, utc), true},
		{"full day name", "* * * * * monday", utc, time.Date(2024, 5, 6, 11, 0, 0, 0, utc), true},
		{"weekday range by name", "* * * * * Mon-Fri", utc, time.Date(2024, 5, 5, 11, 0, 0, 0, utc), false},
		{"weekday step as upstream", "* * * * * 2/2", utc, time.Date(2024, 5, 8, 0, 0, 0, 0, utc), true},
		{"month name", "* * * * Jan,Dec *", utc, time.Date(2024, 12, 1, 0, 0, 0, 0, utc), true},
		{"year field", "* * * * * * 2025", utc, time.Date(2024, 12, 1, 0, 0, 0, 0, utc), false},
		{"both day fields must match: 13th not friday", "* * * 13 * Fri", utc, time.Date(2024, 5, 13, 0, 0, 0, 0, utc), false},
		{"both day fields must match: friday not 13th", "* * * 13 * Fri", utc, time.Date(2024, 5, 10, 0, 0, 0, 0, utc), false},
		{"both day fields must match: friday 13th", "* * * 13 * Fri", utc, time.Date(2024, 9, 13, 0, 0, 0, 0, utc), true},
		{"wrap midnight late", "* * 22-23,0-2 * * *", utc, time.Date(2024, 5, 6, 23, 30, 0, 0, utc), true},
		{"wrap midnight early", "* * 22-23,0-2 * * *", utc, time.Date(2024, 5, 7, 2, 59, 59, 0, utc), true},
		{"wrap midnight gap", "* * 22-23,0-2 * * *", utc, time.Date(2024, 5, 7, 3, 0, 0, 0, utc), false},
		{"new york local hours", "* * 1-3 * * *", ny, time.Date(2024, 1, 15, 7, 0, 0, 0, utc), true},
		{"new york winter 08 utc is 03 local", "* * 1-3 * * *", ny, time.Date(2024, 1, 15, 8, 0, 0, 0, utc), true},
		{"new york summer 08 utc is 04 local", "* * 1-3 * * *", ny, time.Date(2024, 7, 15, 8, 0, 0, 0, utc), false},
		{"tokyo sunday is utc saturday", "* * 0-5 * * Sun", tokyo, time.Date(2024, 5, 4, 16, 0, 0, 0, utc), true},
		{"sub-second instant counts as its second", "0 0 10 * * *", utc, time.Date(2024, 5, 6, 10, 0, 0, 999, utc), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.expr, tc.loc)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Contains(tc.at); got != tc.want {
				t.Errorf("Parse(%q, %v).Contains(%v) = %v, want %v", tc.expr, tc.loc, tc.at, got, tc.want)
			}
			if got := s.Open(tc.at); got != tc.want {
				t.Errorf("Open = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNextOpen(t *testing.T) {
	utc := time.UTC
	ny := mustLoad(t, "America/New_York")
	cases := []struct {
		name   string
		expr   string
		loc    *time.Location
		now    time.Time
		want   time.Time
		wantOK bool
	}{
		{"open now is now", DefaultExpression, utc, time.Date(2024, 5, 6, 1, 2, 3, 500, utc), time.Date(2024, 5, 6, 1, 2, 3, 0, utc), true},
		{"next monday window", "* * 10-12 * * Mon *", utc, time.Date(2024, 5, 6, 13, 0, 0, 0, utc), time.Date(2024, 5, 13, 10, 0, 0, 0, utc), true},
		{"later today", "* * 22-23,0-2 * * *", utc, time.Date(2024, 5, 6, 3, 0, 0, 0, utc), time.Date(2024, 5, 6, 22, 0, 0, 0, utc), true},
		{"across new year", "0 0 0 1 Jan *", utc, time.Date(2024, 12, 31, 23, 59, 59, 0, utc), time.Date(2025, 1, 1, 0, 0, 0, 0, utc), true},
		{"next friday 13th", "0 0 9 13 * Fri", utc, time.Date(2024, 5, 1, 0, 0, 0, 0, utc), time.Date(2024, 9, 13, 9, 0, 0, 0, utc), true},
		{"in a zone", "0 0 2 * * *", ny, time.Date(2024, 1, 15, 8, 0, 0, 0, utc), time.Date(2024, 1, 16, 7, 0, 0, 0, utc), true},
		{"year in the past never opens", "* * * * * * 2020", utc, time.Date(2024, 1, 1, 0, 0, 0, 0, utc), time.Time{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.expr, tc.loc)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := s.NextOpen(tc.now)
			if ok != tc.wantOK || !got.Equal(tc.want) {
				t.Errorf("NextOpen(%v) = %v, %v; want %v, %v", tc.now, got, ok, tc.want, tc.wantOK)
			}
			if ok && !s.Contains(got) {
				t.Errorf("NextOpen returned %v, which the schedule does not contain", got)
			}
		})
	}
}

func TestAdmits(t *testing.T) {
	utc := time.UTC
	trigger := MustParse("0 0 10 * * Mon *", utc)
	window := MustParse("* * 10-12 * * Mon *", utc)
	mon10 := time.Date(2024, 5, 6, 10, 0, 0, 0, utc)
	cases := []struct {
		name       string
		s          *Schedule
		now        time.Time
		lastRunEnd time.Time
		want       bool
	}{
		{"oneshot before trigger", trigger, mon10.Add(-time.Second), mon10.Add(-time.Hour), false},
		{"oneshot at trigger", trigger, mon10, mon10.Add(-time.Hour), true},
		{"oneshot run goes on after trigger", trigger, mon10.Add(30 * time.Hour), mon10.Add(-time.Hour), true},
		{"oneshot run ended after trigger", trigger, mon10.Add(30 * time.Hour), mon10.Add(time.Hour), false},
		{"oneshot zero run end waits for next trigger", trigger, mon10.Add(time.Minute), time.Time{}, false},
		{"oneshot run end in the future", trigger, mon10, mon10.Add(time.Hour), false},
		{"windowed ignores run end inside", window, mon10.Add(time.Hour), mon10.Add(time.Hour), true},
		{"windowed ignores run end outside", window, mon10.Add(3 * time.Hour), time.Time{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.s.Admits(tc.now, tc.lastRunEnd)
			if got != tc.want {
				t.Errorf("Admits(%v, %v) = %v, want %v", tc.now, tc.lastRunEnd, got, tc.want)
			}
			if got || tc.lastRunEnd.IsZero() {
				return // a zero run end never admits: the caller records one
			}
			next, ok := tc.s.NextAdmit(tc.now, tc.lastRunEnd)
			if !ok || !next.After(tc.now.Add(-time.Second)) || !tc.s.Admits(next, tc.lastRunEnd) {
				t.Errorf("NextAdmit(%v, %v) = %v, %v: want a later time that Admits", tc.now, tc.lastRunEnd, next, ok)
			}
		})
	}
}

// FuzzParse checks that no expression panics, that a bad one is an error and not a schedule, and
// that a schedule that parses answers consistently (fails closed, never open without a fire time).
func FuzzParse(f *testing.F) {
	for _, seed := range []string{DefaultExpression, "* * 10-12 * * Mon *", "0 0 10 * * Mon", "* * * 13 * Fri",
		"*/0 * * * * *", "1-2-3 * * * * *", "1/2/3 * * * * *", ",,, * * * * *", "-1 * * * * *", "? ? ? ? ? ? ?",
		"* * * * * 8", "59-0 * * * * *", "0/99999999999999999999 * * * * *", "* * * * * * 99999", "\t* *\n* * * *"} {
		f.Add(seed, int64(1715000000))
	}
	f.Fuzz(func(t *testing.T, expr string, unix int64) {
		s, err := Parse(expr, time.UTC)
		if err != nil {
			if s != nil {
				t.Fatalf("Parse(%q) returned a schedule and an error", expr)
			}
			return
		}
		now := time.Unix(unix%(1<<34), 0).UTC()
		next, ok := s.NextOpen(now)
		if ok && (next.Before(now.Truncate(time.Second)) || !s.Contains(next)) {
			t.Fatalf("Parse(%q).NextOpen(%v) = %v, which is not a fire time at or after now", expr, now, next)
		}
		if s.Contains(now) && (!ok || !next.Equal(now.Truncate(time.Second))) {
			t.Fatalf("Parse(%q) contains %v but NextOpen = %v, %v", expr, now, next, ok)
		}
		_ = s.Admits(now, now.Add(-time.Hour))
	})
}
