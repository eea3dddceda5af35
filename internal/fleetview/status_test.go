package fleetview

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// rowLine is the part of a row the table cases check: node phase reason [until].
func rowLine(r NodeRow) string {
	s := fmt.Sprintf("%s %s %s", r.Node, r.Phase, r.Reason)
	if !r.Until.IsZero() {
		s += " until " + stamp(r.Until)
	}
	return s
}

func TestBuildStatus(t *testing.T) {
	staged, rebooted, mon := v2.StateStagedAndPerformedUpdate, v2.StateRebootedIntoUpdate, v2.StateMonitoringUpdate
	cases := []struct {
		name    string
		in      Input
		rows    []string
		summary string
	}{
		{name: "idle fleet at concurrency 1: first node starts, the others wait",
			in:      fleet(node("n1"), node("n2"), node("n3")),
			rows:    []string{"n1 Starting Start", "n2 Waiting ConcurrencyFull", "n3 Waiting ConcurrencyFull"},
			summary: "3 nodes (1.19.0 x3) | in flight 1/1 | waiting 2 (ConcurrencyFull 2) | failed 0 | halted none"},
		{name: "node in flight holds the slot",
			in:      fleet(env("2", ""), node("n1", updating(rebooted, -time.Minute, staged)), node("n2", updating(mon, -time.Minute, mon)), node("n3")),
			rows:    []string{"n1 InFlight AwaitingAgent", "n2 InFlight Monitoring", "n3 Waiting ConcurrencyFull"},
			summary: "3 nodes (1.19.0 x2, 1.20.0 x1) | in flight 2/2 | waiting 1 (ConcurrencyFull 1) | failed 0 | halted none"},
		{name: "up to date and no status",
			in:      fleet(node("n1", upToDate()), node("n2", noStatus())),
			rows:    []string{"n1 UpToDate UpToDate", "n2 NoStatus NoStatus"},
			summary: "2 nodes (1.20.0 x1) | in flight 0/1 | waiting 0 | failed 0 | halted none"},
		{name: "backoff after two failures lasts 2^2 minutes",
			in:      fleet(node("n1", failed(2, -time.Minute, "DrainTimeout: pdb")), node("n2", upToDate())),
			rows:    []string{"n1 Waiting Backoff until 2026-05-06 10:04:00Z", "n2 UpToDate UpToDate"},
			summary: "2 nodes (1.19.0 x1, 1.20.0 x1) | in flight 0/1 | waiting 1 (Backoff 1) | failed 1 | halted none"},
		{name: "paused",
			in:      fleet(policy(v2.FleetPolicySpec{Paused: true}), node("n1")),
			rows:    []string{"n1 Waiting Paused"},
			summary: "1 nodes (1.19.0 x1) | in flight 0/1 | waiting 1 (Paused 1) | failed 0 | halted none | PAUSED"},
		{name: "halted version",
			in:      fleet(halted(vNew, "n0", -time.Hour), node("n1")),
			rows:    []string{"n1 Waiting Halted"},
			summary: "1 nodes (1.19.0 x1) | in flight 0/1 | waiting 1 (Halted 1) | failed 0 | halted 1.20.0"},
		{name: "window closed until 02:00 the next day",
			in:      fleet(env("unlimited", "* * 2 * * * *"), node("n1")),
			rows:    []string{"n1 Waiting WaitingForWindow until 2026-05-07 02:00:00Z"},
			summary: "1 nodes (1.19.0 x1) | in flight 0/unlimited | waiting 1 (WaitingForWindow 1) | failed 0 | halted none | window closed until 2026-05-07 02:00:00Z"},
		{name: "not opted in, not ready",
			in:      fleet(node("n1", noLabel()), node("n2", notReady())),
			rows:    []string{"n1 Waiting NotOptedIn", "n2 Waiting NodeNotReady"},
			summary: "2 nodes (1.19.0 x2) | in flight 0/1 | waiting 2 (NodeNotReady 1, NotOptedIn 1) | failed 0 | halted none"},
		{name: "controller's node updates last",
			in:      fleet(controllerOn("n1"), node("n1"), node("n2")),
			rows:    []string{"n1 Waiting OwnNodeLast", "n2 Starting Start"},
			summary: "2 nodes (1.19.0 x2) | in flight 1/1 | waiting 1 (OwnNodeLast 1) | failed 0 | halted none"},
		{name: "percentage of opted-in nodes, rounded up",
			in:      fleet(policy(v2.FleetPolicySpec{MaxConcurrentUpdates: "50%"}), node("n1"), node("n2"), node("n3")),
			rows:    []string{"n1 Starting Start", "n2 Starting Start", "n3 Waiting ConcurrencyFull"},
			summary: "3 nodes (1.19.0 x3) | in flight 2/2 | waiting 1 (ConcurrencyFull 1) | failed 0 | halted none"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := BuildStatus(tc.in)
			var rows []string
			for _, r := range st.Nodes {
				rows = append(rows, rowLine(r))
			}
			if diff := cmp.Diff(tc.rows, rows); diff != "" {
				t.Errorf("rows mismatch (-want +got):\n%s", diff)
			}
			if got := SummaryLine(st.Summary); got != tc.summary {
				t.Errorf("SummaryLine =\n%s\nwant\n%s", got, tc.summary)
			}
		})
	}
}

func TestBuildStatusHalt(t *testing.T) {
	st := BuildStatus(fleet(halted(vNew, "n0", -time.Hour), node("n1")))
	want := []HaltedVersion{{Version: vNew, Nodes: []string{"n0"}, Reason: "1 release failures (budget 1): n0: BootRolledBack",
		Since: t0.Add(-time.Hour), Resume: "kubectl brupop resume 1.20.0"}}
	if diff := cmp.Diff(want, st.Summary.Halted); diff != "" {
		t.Errorf("Halted mismatch (-want +got):\n%s", diff)
	}
}

// TestBuildStatusReadsTheAppliedSettings: the view applies what status.applied says, not the
// spec: here the controller has not acted on the spec's concurrency 1 yet and still applies 3,
// in Tokyo's time zone.
func TestBuildStatusReadsTheAppliedSettings(t *testing.T) {
	tokyo := &v2.FleetPolicySchedule{Cron: "* * 10-23 * * * *", TimeZone: "Asia/Tokyo"}
	in := fleet(env("1", ""), before(v2.FleetPolicySpec{MaxConcurrentUpdates: "3", Schedule: tokyo}),
		policy(v2.FleetPolicySpec{MaxConcurrentUpdates: "1"}), notSeen(), controllerOn("n9"),
		node("n1"), node("n2"), node("n3"), node("n4"))
	st := BuildStatus(in)
	// 10:00Z is 19:00 in Tokyo: the window is open.
	if got, want := SummaryLine(st.Summary), "4 nodes (1.19.0 x4) | in flight 3/3 | waiting 1 (ConcurrencyFull 1) | failed 0 | halted none"; got != want {
		t.Errorf("SummaryLine =\n%s\nwant\n%s", got, want)
	}
	sum := st.Summary
	if sum.Concurrency != "3" || sum.Schedule != "* * 10-23 * * * * (Asia/Tokyo)" || sum.ControllerNode != "n9" ||
		sum.ControllerSource != "FleetPolicy brupop-bottlerocket-aws/default status.applied (generation 1, since 2026-05-06 09:00:00Z)" {
		t.Errorf("Summary = concurrency %q, schedule %q, controller node %q, source %q", sum.Concurrency, sum.Schedule, sum.ControllerNode, sum.ControllerSource)
	}
	if want := "FleetPolicy brupop-bottlerocket-aws/default is at generation 2 and the controller last acted on generation 1"; !strings.Contains(sum.PolicyPending, want) {
		t.Errorf("PolicyPending = %q, want it to say %q", sum.PolicyPending, want)
	}
}

// TestBuildStatusWithoutPublishedSettings: with no status.applied the view decides nothing and
// says why; the rows show what the shadows say.
func TestBuildStatusWithoutPublishedSettings(t *testing.T) {
	badZone := func(w *world) {
		policy(v2.FleetPolicySpec{})(w)
		w.Policy.Status.Applied = &v2.FleetPolicyApplied{Generation: 1, Spec: v2.FleetPolicySpec{MaxConcurrentUpdates: "2",
			Schedule: &v2.FleetPolicySchedule{Cron: "* * * * * * *", TimeZone: "Mars/Olympus_Mons"}}}
	}
	nodes := []inputOpt{node("n1"), node("n2", upToDate()), node("n3", updating(v2.StateRebootedIntoUpdate, -time.Minute, v2.StateStagedAndPerformedUpdate))}
	cases := []struct {
		name    string
		opts    []inputOpt
		missing string
		// halted is the summary's part on halts, which the FleetPolicy's status records.
		halted string
	}{
		{name: "no status.applied", opts: []inputOpt{policy(v2.FleetPolicySpec{MaxConcurrentUpdates: "5"}), unpublished(), halted(vNew, "n0", -time.Hour)},
			halted:  "halted 1.20.0",
			missing: "the controller has not published its settings yet (FleetPolicy brupop-bottlerocket-aws/default has no status.applied)"},
		{name: "no FleetPolicy", opts: []inputOpt{unpublished()}, halted: "halted none",
			missing: "the controller has not published its settings yet (there is no FleetPolicy brupop-bottlerocket-aws/default)"},
		{name: "applied settings that do not resolve here", opts: []inputOpt{badZone, unpublished(), halted(vNew, "n0", -time.Hour)},
			halted:  "halted 1.20.0",
			missing: "the applied settings stored in FleetPolicy brupop-bottlerocket-aws/default status do not resolve"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := BuildStatus(fleet(slices.Concat(nodes, tc.opts)...))
			var rows []string
			for _, r := range st.Nodes {
				rows = append(rows, rowLine(r))
			}
			want := []string{"n1 Unknown SettingsUnpublished", "n2 UpToDate UpToDate", "n3 InFlight "}
			if diff := cmp.Diff(want, rows); diff != "" {
				t.Errorf("rows mismatch (-want +got):\n%s", diff)
			}
			sum := st.Summary
			if !strings.Contains(sum.SettingsMissing, tc.missing) || sum.Limit != 0 || sum.Concurrency != "" || sum.ControllerSource != "" {
				t.Errorf("Summary = missing %q, limit %d, concurrency %q, source %q; want missing %q and no settings",
					sum.SettingsMissing, sum.Limit, sum.Concurrency, sum.ControllerSource, tc.missing)
			}
			if got, want := SummaryLine(sum), "3 nodes (1.19.0 x2, 1.20.0 x1) | in flight 1 | failed 0 | "+tc.halted; got != want {
				t.Errorf("SummaryLine =\n%s\nwant\n%s", got, want)
			}
			var b strings.Builder
			if err := WriteStatus(&b, st, 0); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), "Cannot tell what the controller decides: ") || !strings.Contains(b.String(), tc.missing) {
				t.Errorf("WriteStatus does not say why it decides nothing:\n%s", b.String())
			}
		})
	}
}

// TestBuildStatusInvalidPolicy: the view shows the controller's verdict on a spec it cannot
// apply (Ready=False), and applies what the controller applies: the settings it kept, or none.
func TestBuildStatusInvalidPolicy(t *testing.T) {
	invalid := policy(v2.FleetPolicySpec{MaxConcurrentUpdates: "0"})
	cases := []struct {
		name             string
		opts             []inputOpt
		summary, message string
	}{
		{name: "never valid: nothing starts", opts: []inputOpt{invalid},
			summary: "2 nodes (1.19.0 x2) | in flight 0 | waiting 2 (InvalidPolicy 2) | failed 0 | halted none",
			message: "no valid policy was ever applied"},
		{name: "the stored settings stay in force", opts: []inputOpt{before(v2.FleetPolicySpec{MaxConcurrentUpdates: "2"}), invalid},
			summary: "2 nodes (1.19.0 x2) | in flight 2/2 | waiting 0 | failed 0 | halted none",
			message: "the controller keeps applying the settings of generation 1 (status.applied)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := BuildStatus(fleet(append(tc.opts, node("n1"), node("n2"))...))
			if got := SummaryLine(st.Summary); got != tc.summary {
				t.Errorf("SummaryLine =\n%s\nwant\n%s", got, tc.summary)
			}
			if !strings.Contains(st.Summary.PolicyError, tc.message) || !strings.Contains(st.Summary.PolicyError, `"0"`) {
				t.Errorf("PolicyError = %q, want the Ready condition's message", st.Summary.PolicyError)
			}
		})
	}
}
