package sim

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

func TestTerminalViewFitsAndRedraws(t *testing.T) {
	o := DefaultOptions()
	o.Nodes = 2
	at := time.Unix(1000, 0)
	snap := Snapshot{At: at, InFlight: 1, Rows: []NodeRow{
		{Name: "node-01", State: v2.StateStagedAndPerformedUpdate, Desired: v2.StateRebootedIntoUpdate, InFlight: true,
			Version: "1.20.0", Target: "1.21.0", Since: at.Add(-2 * time.Second), Reason: "cordoned, drained"},
		{Name: "node-02", State: v2.StateIdle, Desired: v2.StateIdle, Version: "1.20.0", Target: "1.21.0", Since: at},
	}}
	var out bytes.Buffer
	v := NewTerminalView(&out, 60, o)
	v.Update(snap, 3*time.Second)
	first := out.String()
	for _, l := range strings.Split(strings.TrimSuffix(first, "\n"), "\n") {
		if n := utf8.RuneCountInString(l); n > 60 {
			t.Errorf("line of %d runes is wider than the terminal: %q", n, l)
		}
	}
	if !strings.Contains(first, "Staged > Rebooted") {
		t.Errorf("table lacks the state > desired column:\n%s", first)
	}
	out.Reset()
	v.Update(snap, 4*time.Second)
	if !strings.HasPrefix(out.String(), "\x1b[4A\x1b[J") {
		t.Errorf("the redraw does not move up over the 4 lines drawn: %q", out.String()[:12])
	}
}

func TestLogViewPrintsChangesOnly(t *testing.T) {
	o := DefaultOptions()
	o.Nodes = 1
	snap := Snapshot{Rows: []NodeRow{{Name: "node-01", State: v2.StateIdle, Version: "1.20.0", Target: "1.21.0"}}}
	var out bytes.Buffer
	v := NewLogView(&out, o)
	v.Update(snap, time.Second)
	v.Update(snap, 2*time.Second)
	if got := strings.Count(out.String(), "node-01"); got != 1 {
		t.Errorf("an unchanged node was printed %d times, want once:\n%s", got, out.String())
	}
}
