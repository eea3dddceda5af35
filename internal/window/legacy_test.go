package window

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLegacyExpression(t *testing.T) {
	cases := []struct {
		name, start, stop, want, wantErr string
	}{
		{"same day", "9:00:00", "17:30:00", "* * 9-17 * * * *", ""},
		{"equal hours", "10:00:00", "10:59:59", "* * 10-10 * * * *", ""},
		{"wraps midnight", "22:00:00", "04:00:00", "* * 22-23,0-4 * * * *", ""},
		{"minutes and seconds ignored", "01:59:59", "02:00:00", "* * 1-2 * * * *", ""},
		{"only start", "22:00:00", "", "", "set both"},
		{"only stop", "", "04:00:00", "", "set both"},
		{"hour 24", "24:00:00", "04:00:00", "", "UPDATE_WINDOW_START"},
		{"no seconds", "22:00", "04:00:00", "", "want H:M:S"},
		{"garbage stop", "22:00:00", "soon", "", "UPDATE_WINDOW_STOP"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LegacyExpression(tc.start, tc.stop)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LegacyExpression(%q, %q) = %q, %v; want error mentioning %q", tc.start, tc.stop, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("LegacyExpression(%q, %q) = %q, %v; want %q", tc.start, tc.stop, got, err, tc.want)
			}
		})
	}
}

func TestFromLegacyWindowWrap(t *testing.T) {
	s, err := FromLegacyWindow("22:00:00", "01:00:00")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		hour int
		want bool
	}{{21, false}, {22, true}, {23, true}, {0, true}, {1, true}, {2, false}} {
		at := time.Date(2024, 5, 6, tc.hour, 30, 0, 0, time.UTC)
		if got := s.Open(at); got != tc.want {
			t.Errorf("Open(%v) = %v, want %v (stop hour inclusive, as upstream)", at, got, tc.want)
		}
	}
}

func TestFromEnvironment(t *testing.T) {
	cases := []struct {
		name, cron, start, stop string
		wantExpr                string
		wantWarnings            int
		wantErr                 error
	}{
		{"nothing set is always", "", "", "", DefaultExpression, 0, nil},
		{"cron only", "0 0 10 * * Mon", "", "", "0 0 10 * * Mon", 0, nil},
		{"legacy only", "", "9:00:00", "17:00:00", "* * 9-17 * * * *", 1, nil},
		{"cron wins over legacy", "0 0 10 * * Mon", "9:00:00", "17:00:00", "0 0 10 * * Mon", 1, nil},
		{"one legacy half", "", "9:00:00", "", "", 1, ErrLegacyBothOrNone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, warnings, err := FromEnvironment(tc.cron, tc.start, tc.stop, nil)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if len(warnings) != tc.wantWarnings {
				t.Errorf("warnings = %q, want %d", warnings, tc.wantWarnings)
			}
			if err == nil && s.Expression() != tc.wantExpr {
				t.Errorf("expression = %q, want %q", s.Expression(), tc.wantExpr)
			}
		})
	}
}
