package sim

import (
	"fmt"
	"io"
	"strings"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// NewTerminalView returns a View that redraws the node table and the progress line in place
// on a terminal of width columns, with ANSI escapes.
func NewTerminalView(w io.Writer, width int, opts Options) View {
	return &terminalView{w: w, width: max(width, 40), opts: opts}
}

// NewLogView returns a View that writes plain log lines: one per change of a node's state
// and a progress line when the counts change or every few seconds.
func NewLogView(w io.Writer, opts Options) View {
	return &logView{w: w, opts: opts, states: map[string]string{}}
}

// terminalView redraws the table and the progress line.
type terminalView struct {
	w     io.Writer
	width int
	opts  Options
	lines int // lines drawn last time, to move up over
}

// Update redraws the table; lines are cut to the terminal's width so none wraps and the
// next redraw moves up over exactly what this one drew.
func (v *terminalView) Update(s Snapshot, elapsed time.Duration) {
	var b strings.Builder
	writeTable(&b, s)
	fmt.Fprintf(&b, "%s %s\n", clock(elapsed), progress(s, v.opts))
	lines := strings.SplitAfter(b.String(), "\n")
	var out strings.Builder
	if v.lines > 0 {
		fmt.Fprintf(&out, "\x1b[%dA\x1b[J", v.lines)
	}
	v.lines = 0
	for _, l := range lines {
		if l == "" {
			continue
		}
		out.WriteString(truncate(strings.TrimSuffix(l, "\n"), v.width) + "\n")
		v.lines++
	}
	_, _ = io.WriteString(v.w, out.String())
}

// Done prints the summary under the last table.
func (v *terminalView) Done(s Summary) { writeSummary(v.w, s) }

// logView prints changes as lines.
type logView struct {
	w        io.Writer
	opts     Options
	states   map[string]string
	lastProg time.Duration
	lastLine string
}

// Update prints each node whose state changed, and the progress every 5 s or when it changed.
func (v *logView) Update(s Snapshot, elapsed time.Duration) {
	at := fmt.Sprintf("%6.1fs", elapsed.Seconds())
	for _, r := range s.Rows {
		state := fmt.Sprintf("%s %s -> %s", r.State, r.Version, r.Target)
		if r.Reason != "" {
			state += " (" + r.Reason + ")"
		}
		if v.states[r.Name] != state {
			v.states[r.Name] = state
			fmt.Fprintf(v.w, "%s %s %s crash=%d\n", at, r.Name, state, r.CrashCount)
		}
	}
	line := progress(s, v.opts)
	if line != v.lastLine || elapsed-v.lastProg >= 5*time.Second {
		v.lastLine, v.lastProg = line, elapsed
		fmt.Fprintf(v.w, "%s %s\n", at, line)
	}
}

// Done prints the summary.
func (v *logView) Done(s Summary) { writeSummary(v.w, s) }

// tableRow lays out one line of the node table in fixed columns, so the table holds still
// while it is redrawn.
const tableRow = "%-8s %-21s %-16s %8s %5s  %s\n"

// writeTable writes the node table.
func writeTable(w io.Writer, s Snapshot) {
	fmt.Fprintf(w, tableRow, "NODE", "STATE > DESIRED", "VERSION -> TARGET", "IN STATE", "CRASH", "REASON")
	for _, r := range s.Rows {
		state := abbreviate(r.State)
		if r.Desired != r.State && r.InFlight {
			state += " > " + abbreviate(r.Desired)
		}
		fmt.Fprintf(w, tableRow, r.Name, state, r.Version+" -> "+r.Target,
			s.At.Sub(r.Since).Truncate(100*time.Millisecond), fmt.Sprint(r.CrashCount), r.Reason)
	}
}

// abbreviate shortens a state for the table.
func abbreviate(s v2.State) string {
	switch v := string(s); v {
	case "StagedAndPerformedUpdate":
		return "Staged"
	case "RebootedIntoUpdate":
		return "Rebooted"
	case "MonitoringUpdate":
		return "Monitoring"
	default:
		return v
	}
}

// truncate cuts s to n runes, marking the cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// clock formats the time since the release.
func clock(d time.Duration) string { return fmt.Sprintf("%5.1fs", d.Seconds()) }

// progress is the one-line progress: a bar of updated nodes and the counts.
func progress(s Snapshot, o Options) string {
	const width = 16
	filled := 0
	if o.Nodes > 0 {
		filled = s.Updated * width / o.Nodes
	}
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	halted := ""
	if s.Halted {
		halted = " · HALTED"
	}
	return fmt.Sprintf("[%s] %d/%d updated · %d/%d in flight · %d failed · %d cordoned · %d evicted%s",
		bar, s.Updated, o.Nodes, s.InFlight, o.MaxConcurrent, s.Failed, s.Unschedulable, s.Evictions, halted)
}

// writeSummary prints the summary for people.
func writeSummary(w io.Writer, s Summary) {
	fmt.Fprintf(w, "\nRollout %s -> %s of %d nodes at concurrency %d: %d updated, %d failed, %d not updated in %.1fs",
		s.From, s.To, s.Nodes, s.MaxConcurrent, s.Updated, s.Failed, s.NotUpdated, s.RolloutSeconds)
	switch {
	case s.TimedOut:
		fmt.Fprint(w, " (TIMED OUT)")
	case s.Halted:
		fmt.Fprint(w, " (release halted)")
	}
	fmt.Fprintln(w)
	if len(s.FailedNodes) > 0 {
		fmt.Fprintf(w, "Failed: %s (told to fail: %s)\n", strings.Join(s.FailedNodes, ", "), strings.Join(s.ExpectedFailures, ", "))
	}
	if s.MinimumSeconds > 0 {
		waves := fmt.Sprintf("ceil(%d/%d)", s.Started, s.MaxConcurrent)
		if s.Zones > 0 {
			waves = fmt.Sprintf("%d waves (%d zones, %d at a time)", s.Waves, s.Zones, s.ZonesInFlight)
		}
		soak := ""
		if s.SoakSeconds > 0 {
			soak = fmt.Sprintf(" + %.0fs soak", s.SoakSeconds)
		}
		fmt.Fprintf(w, "Theoretical minimum: %s x %.1fs per node%s = %.1fs; ratio %.2f\n",
			waves, s.PerNodeSeconds, soak, s.MinimumSeconds, s.Ratio)
	}
	fmt.Fprintf(w, "Highest in flight: %d (allowed %d) · highest unschedulable: %d · evictions: %d\n",
		s.MaxInFlight, s.MaxConcurrent, s.MaxUnschedulable, s.Evictions)
	for _, inv := range s.Invariants {
		mark := "held  "
		if !inv.Held {
			mark = "BROKEN"
		}
		fmt.Fprintf(w, "  %s  %s\n", mark, inv.Name)
		for _, b := range inv.Breaches {
			fmt.Fprintf(w, "          - %s\n", b)
		}
	}
	if s.OK {
		fmt.Fprintln(w, "OK")
	} else {
		fmt.Fprintln(w, "FAILED")
	}
}
