package fleetview

import (
	"fmt"
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
			rows:    []string{"n1 Waiting Backoff until 2024-05-06 10:04:00Z", "n2 UpToDate UpToDate"},
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
			rows:    []string{"n1 Waiting WaitingForWindow until 2024-05-07 02:00:00Z"},
			summary: "1 nodes (1.19.0 x1) | in flight 0/unlimited | waiting 1 (WaitingForWindow 1) | failed 0 | halted none | window closed until 2024-05-07 02:00:00Z"},
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

func TestBuildStatusInvalidPolicy(t *testing.T) {
	st := BuildStatus(fleet(policy(v2.FleetPolicySpec{MaxConcurrentUpdates: "0"}), node("n1")))
	if st.Summary.PolicyError == "" {
		t.Fatal("PolicyError is empty for maxConcurrentUpdates 0")
	}
}
