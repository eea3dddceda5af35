package fleetview

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// WriteStatus writes the status table and its summary for a terminal. Lines longer than width
// are cut (0 keeps them whole).
func WriteStatus(w io.Writer, st Status, width int) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tVERSION\tIN STATE\tCRASHES\tREASON")
	suffix := domainSuffix(st.Nodes)
	for _, r := range st.Nodes {
		since := "-"
		if !r.Since.IsZero() {
			since = Age(st.Time.Sub(r.Since))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", strings.TrimSuffix(r.Node, suffix), arrow(short(r.State), short(r.TargetState)),
			arrow(r.Version, r.TargetVersion), since, r.CrashCount, reasonText(r, st.Time))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("fleetview: render the table: %w", err)
	}
	for line := range strings.Lines(buf.String()) {
		if _, err := fmt.Fprintln(w, cut(strings.TrimRight(line, " \n"), width)); err != nil {
			return fmt.Errorf("fleetview: write the status: %w", err)
		}
	}
	if suffix != "" {
		buf.Reset()
		fmt.Fprintf(&buf, "(node names end with %s)\n", suffix)
		if _, err := w.Write(buf.Bytes()); err != nil {
			return fmt.Errorf("fleetview: write the status: %w", err)
		}
	}
	lines := append(wrap(SummaryLine(st.Summary), summarySep, width), notes(st.Summary)...)
	for _, l := range lines {
		if _, err := fmt.Fprintln(w, l); err != nil {
			return fmt.Errorf("fleetview: write the status: %w", err)
		}
	}
	return nil
}

// SummaryLine returns the fleet in one line: nodes per version, in flight over the limit,
// waiting nodes and why, failed nodes and halted versions.
func SummaryLine(s Summary) string {
	versions := make([]string, 0, len(s.Versions))
	for _, v := range s.Versions {
		versions = append(versions, fmt.Sprintf("%s x%d", v.Version, v.Nodes))
	}
	parts := []string{fmt.Sprintf("%d nodes (%s)", s.Nodes, orNone(strings.Join(versions, ", ")))}
	if s.Concurrency == "" {
		// No concurrency in force (SettingsMissing, or no valid policy ever applied).
		parts = append(parts, fmt.Sprintf("in flight %d", s.InFlight))
	} else {
		parts = append(parts, fmt.Sprintf("in flight %d/%s", s.InFlight, limitText(s.Limit)))
	}
	if s.SettingsMissing == "" {
		waiting := fmt.Sprintf("waiting %d", s.Waiting)
		if len(s.WaitingBy) > 0 {
			by := make([]string, 0, len(s.WaitingBy))
			for _, r := range s.WaitingBy {
				by = append(by, fmt.Sprintf("%s %d", r.Reason, r.Nodes))
			}
			waiting += " (" + strings.Join(by, ", ") + ")"
		}
		parts = append(parts, waiting)
	}
	parts = append(parts, fmt.Sprintf("failed %d", s.Failed))
	halted := make([]string, 0, len(s.Halted))
	for _, h := range s.Halted {
		halted = append(halted, h.Version)
	}
	parts = append(parts, "halted "+orNone(strings.Join(halted, ", ")))
	if s.Paused {
		parts = append(parts, "PAUSED")
	}
	if !s.WindowOpen && s.SettingsMissing == "" {
		parts = append(parts, "window closed until "+stamp(s.NextOpen))
	}
	return strings.Join(parts, summarySep)
}

// summarySep separates the parts of the summary line.
const summarySep = " | "

// wrap breaks line at sep into lines of at most width runes where it can, indenting the
// continuations; width 0 keeps it whole.
func wrap(line, sep string, width int) []string {
	if width <= 0 || utf8.RuneCountInString(line) <= width {
		return []string{line}
	}
	var out []string
	cur := ""
	for i, part := range strings.Split(line, sep) {
		switch {
		case i == 0:
			cur = part
		case utf8.RuneCountInString(cur+sep+part) > width:
			out = append(out, cur)
			cur = "  " + part
		default:
			cur += sep + part
		}
	}
	return append(out, cur)
}

// notes are the lines under the summary that say what to do.
func notes(s Summary) []string {
	var out []string
	for _, h := range s.Halted {
		out = append(out, fmt.Sprintf("Rollout of %s halted since %s: %s", h.Version, stamp(h.Since), h.Reason),
			"  Resume: "+h.Resume)
	}
	if s.Paused {
		out = append(out, "The rollout is paused. Resume: kubectl brupop resume")
	}
	if s.SettingsMissing != "" {
		out = append(out, "Cannot tell what the controller decides: "+s.SettingsMissing+".",
			"  The rows show what the shadows say. Is the controller running, and is it this version?")
	}
	if s.PolicyError != "" {
		out = append(out, "FleetPolicy invalid (Ready=False): "+s.PolicyError)
	}
	if s.PolicyPending != "" {
		out = append(out, s.PolicyPending+".")
	}
	var promo []string
	if s.MaxVersion != "" {
		promo = append(promo, "max version "+s.MaxVersion)
	}
	if s.ReleaseSoak != "" {
		promo = append(promo, "release soak "+s.ReleaseSoak)
	}
	if s.ZonesInFlight > 0 {
		promo = append(promo, fmt.Sprintf("at most %d zone(s) at once", s.ZonesInFlight))
	}
	if len(promo) > 0 {
		out = append(out, "Promotion: "+strings.Join(promo, " · "))
	}
	return out
}

// WriteExplanation writes the answer of `kubectl brupop why NODE`.
func WriteExplanation(w io.Writer, e Explanation) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", e.Node, e.Verdict)
	if e.Reason != "" {
		fmt.Fprintf(&b, " (%s)", e.Reason)
	}
	fmt.Fprintf(&b, "\n  %s\n", e.Summary)
	for _, d := range e.Details {
		fmt.Fprintf(&b, "  %s\n", d)
	}
	for _, c := range e.Commands {
		fmt.Fprintf(&b, "  $ %s\n", c)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("fleetview: write the explanation: %w", err)
	}
	return nil
}

// Age formats a duration the way kubectl's AGE column does, to two units: 45s, 3m12s, 2h5m,
// 3d4h.
func Age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Truncate(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// domainSuffix returns the DNS suffix, such as ".us-west-2.compute.internal", that every node
// name shares after its first label, or "" when they do not all share one. The table leaves it
// out so that cloud node names fit a terminal.
func domainSuffix(rows []NodeRow) string {
	suffix := ""
	for i, r := range rows {
		_, rest, ok := strings.Cut(r.Node, ".")
		if !ok || (i > 0 && "."+rest != suffix) {
			return ""
		}
		suffix = "." + rest
	}
	return suffix
}

// reasonText is the REASON cell: the reason, how long until it ends, and the last failure.
func reasonText(r NodeRow, now time.Time) string {
	s := r.Reason
	switch r.Phase {
	case PhaseUpToDate:
		s = ""
	case PhaseStarting:
		s = "Starting"
	}
	if !r.Until.IsZero() {
		s += " " + Age(r.Until.Sub(now)) + " left"
	}
	if r.LastFailure != "" && r.Phase != PhaseUpToDate {
		s += " (last: " + r.LastFailure + ")"
	}
	return s
}

// short abbreviates a state for the table.
func short(s v2.State) string {
	switch s {
	case v2.StateStagedAndPerformedUpdate:
		return "Staged"
	case v2.StateRebootedIntoUpdate:
		return "Rebooted"
	case v2.StateMonitoringUpdate:
		return "Monitoring"
	case "":
		return "-"
	}
	return string(s)
}

func arrow(from, to string) string {
	if to == "" || to == "-" || from == to {
		return from
	}
	return from + "→" + to
}

// stamp formats an instant for people: UTC to the second.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func limitText(limit int) string {
	if limit == math.MaxInt || limit < 0 {
		return "unlimited"
	}
	return fmt.Sprint(limit)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// cut shortens line to width runes, marking the cut with "…"; width 0 keeps it whole.
func cut(line string, width int) string {
	if width <= 0 || utf8.RuneCountInString(line) <= width {
		return line
	}
	r := []rune(line)
	return string(r[:width-1]) + "…"
}
