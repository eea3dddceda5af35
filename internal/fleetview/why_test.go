package fleetview

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

func TestWhy(t *testing.T) {
	staged, rebooted := v2.StateStagedAndPerformedUpdate, v2.StateRebootedIntoUpdate
	cases := []struct {
		name    string
		in      Input
		node    string
		verdict Verdict
		reason  string
		until   time.Time
		// says are phrases the summary or details must contain.
		says     []string
		commands []string
	}{
		{name: "label missing and no shadow", in: fleet(node("n1", noLabel(), noShadow())), node: "n1",
			verdict: VerdictNotManaged, reason: "NotOptedIn", says: []string{"lacks the opt-in label", "is missing"},
			commands: []string{"kubectl label node n1 bottlerocket.aws/updater-interface-version=2.0.0 --overwrite"}},
		{name: "label wrong with a shadow", in: fleet(node("n1", noLabel())), node: "n1",
			verdict: VerdictWaiting, reason: "NotOptedIn", says: []string{"lacks the opt-in label", "is missing"},
			commands: []string{"kubectl label node n1 bottlerocket.aws/updater-interface-version=2.0.0 --overwrite"}},
		{name: "opted in without a shadow", in: fleet(node("n1", noShadow())), node: "n1",
			verdict: VerdictNotManaged, reason: "NoStatus", says: []string{"has no shadow yet"}},
		{name: "window closed", in: fleet(env("1", "* * 2 * * * *"), node("n1")), node: "n1",
			verdict: VerdictWaiting, reason: "WaitingForWindow", until: t0.Add(16 * time.Hour),
			says: []string{"closed until 2026-05-07 02:00:00Z", "Schedule: * * 2 * * * * (UTC), windowed"}},
		{name: "concurrency full names who is in flight", in: fleet(node("n1", updating(staged, -time.Minute, v2.StateIdle)), node("n2")), node: "n2",
			verdict: VerdictWaiting, reason: "ConcurrencyFull", says: []string{"Concurrency is full (1/1 in flight)", "n1 (Staged)"}},
		{name: "backoff until when", in: fleet(node("n1", failed(3, -time.Minute, "DrainTimeout: pod a/b"))), node: "n1",
			verdict: VerdictWaiting, reason: "Backoff", until: t0.Add(8 * time.Minute),
			says: []string{"after 3 failed attempts", "2026-05-06 10:08:00Z", "Last failure: DrainTimeout: pod a/b at 2026-05-06 09:59:00Z"}},
		{name: "halted with resume commands", in: fleet(halted(vNew, "n0", -time.Hour), node("n1")), node: "n1",
			verdict: VerdictWaiting, reason: "Halted", says: []string{"rollout of 1.20.0 is halted", "failures on n0"},
			commands: []string{"kubectl brupop resume 1.20.0", "kubectl annotate bfp default -n brupop-bottlerocket-aws brupop.bottlerocket.aws/resume=1.20.0 --overwrite"}},
		{name: "soaking until when", in: fleet(policy(v2.FleetPolicySpec{ReleaseSoak: &metav1.Duration{Duration: 72 * time.Hour}}), releaseSeen(vNew, -time.Hour), node("n1")), node: "n1",
			verdict: VerdictWaiting, reason: "Soaking", until: t0.Add(71 * time.Hour),
			says: []string{"1.20.0 is soaking: first offered at 2026-05-06 09:00:00Z, nodes start on it at 2026-05-09 09:00:00Z", "releaseSoak is 72h0m0s"}},
		{name: "other zones updating, naming them", in: fleet(policy(v2.FleetPolicySpec{MaxConcurrentUpdates: "unlimited", Zones: &v2.FleetPolicyZones{MaxInFlight: 1}}),
			node("n1", zone("a"), updating(staged, -time.Minute, v2.StateIdle)), node("n2", zone("b"))), node: "n2",
			verdict: VerdictWaiting, reason: "OtherZonesUpdating", says: []string{"Other zones are updating (at most 1 at once)", "a: n1"}},
		{name: "paused", in: fleet(policy(v2.FleetPolicySpec{Paused: true}), node("n1")), node: "n1",
			verdict: VerdictWaiting, reason: "Paused", says: []string{"paused"}, commands: []string{"kubectl brupop resume"}},
		{name: "own node last", in: fleet(controllerOn("n1"), node("n1"), node("n2")), node: "n1",
			verdict: VerdictWaiting, reason: "OwnNodeLast", says: []string{"controller runs on this node", "n2 (Staged)"}},
		{name: "in flight with its deadline", in: fleet(node("n1", updating(rebooted, -2*time.Minute, staged))), node: "n1",
			verdict: VerdictUpdating, reason: "AwaitingAgent", until: t0.Add(18 * time.Minute), // drain 10m + reboot 600s
			says: []string{"wants RebootedIntoUpdate, the agent reports StagedAndPerformedUpdate", "(2m0s ago)", "Deadline: 2026-05-06 10:18:00Z"}},
		{name: "starts now", in: fleet(node("n1")), node: "n1",
			verdict: VerdictStarting, reason: "Start", says: []string{"starts its update to 1.20.0", "In flight 1/1"}},
		{name: "up to date", in: fleet(node("n1", upToDate())), node: "n1",
			verdict: VerdictUpToDate, reason: "UpToDate", says: []string{"runs 1.20.0"}},
		{name: "held back by maxVersion", in: fleet(policy(v2.FleetPolicySpec{MaxVersion: vOld}), node("n1")), node: "n1",
			verdict: VerdictUpToDate, reason: "UpToDate", says: []string{"runs 1.19.0", "maxVersion 1.19.0 holds it back from 1.20.0"}},
		{name: "capped by maxVersion", in: fleet(policy(v2.FleetPolicySpec{MaxVersion: "1.19.5"}), node("n1")), node: "n1",
			verdict: VerdictStarting, reason: "Start", says: []string{"starts its update to 1.19.5"}},
		{name: "short name of a cloud node", in: fleet(node("ip-1.eu-west-1.compute.internal", upToDate())), node: "ip-1",
			verdict: VerdictUpToDate, reason: "UpToDate", says: []string{"runs 1.20.0"}},
		{name: "no status yet", in: fleet(node("n1", noStatus())), node: "n1",
			verdict: VerdictNotManaged, reason: "NoStatus", says: []string{"agent has not reported"}},
		{name: "no published settings", in: fleet(unpublished(), policy(v2.FleetPolicySpec{}), node("n1")), node: "n1",
			verdict: VerdictUnknown, reason: "SettingsUnpublished",
			says:     []string{"runs 1.19.0 and its host offers 1.20.0", "FleetPolicy brupop-bottlerocket-aws/default has no status.applied", "is it running"},
			commands: []string{"kubectl get bfp default -n brupop-bottlerocket-aws -o yaml"}},
		{name: "in flight without published settings", in: fleet(unpublished(), node("n1", updating(staged, -time.Minute, v2.StateIdle))), node: "n1",
			verdict: VerdictUpdating, says: []string{"updating to 1.20.0", "there is no FleetPolicy", "Neither its deadline"}},
		{name: "invalid policy never applied", in: fleet(policy(v2.FleetPolicySpec{MaxConcurrentUpdates: "0"}), node("n1")), node: "n1",
			verdict: VerdictWaiting, reason: "InvalidPolicy",
			says:     []string{"no valid one was ever applied", "Fix the FleetPolicy; its Ready condition says what is wrong: rollout: max concurrent updates"},
			commands: []string{"kubectl describe bfp default -n brupop-bottlerocket-aws"}},
		{name: "invalid policy, the kept settings decide", in: fleet(before(v2.FleetPolicySpec{Paused: true}), policy(v2.FleetPolicySpec{MaxConcurrentUpdates: "0"}), node("n1")), node: "n1",
			verdict: VerdictWaiting, reason: "Paused", commands: []string{"kubectl brupop resume"},
			says: []string{"Note: the FleetPolicy is invalid (Ready=False)", "keeps applying the settings of generation 1"}},
		{name: "spec not acted on yet", in: fleet(before(v2.FleetPolicySpec{Paused: true}), policy(v2.FleetPolicySpec{}), notSeen(), node("n1")), node: "n1",
			verdict: VerdictWaiting, reason: "Paused", commands: []string{"kubectl brupop resume"},
			says: []string{"Note: FleetPolicy brupop-bottlerocket-aws/default is at generation 2 and the controller last acted on generation 1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Why(tc.in, tc.node)
			if err != nil {
				t.Fatal(err)
			}
			if e.Verdict != tc.verdict || e.Reason != tc.reason || !e.Until.Equal(tc.until) {
				t.Errorf("Why = %s (%s) until %v, want %s (%s) until %v", e.Verdict, e.Reason, e.Until, tc.verdict, tc.reason, tc.until)
			}
			text := e.Summary + "\n" + strings.Join(e.Details, "\n")
			for _, s := range tc.says {
				if !strings.Contains(text, s) {
					t.Errorf("explanation does not say %q:\n%s", s, text)
				}
			}
			if diff := cmp.Diff(tc.commands, e.Commands); diff != "" {
				t.Errorf("Commands mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWhyUnknownNode(t *testing.T) {
	if _, err := Why(fleet(node("n1")), "nope"); err == nil || !strings.Contains(err.Error(), `no Node "nope"`) {
		t.Errorf("Why(unknown) error = %v, want one naming the node", err)
	}
}
