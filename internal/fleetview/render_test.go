package fleetview

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

func TestWriteStatus(t *testing.T) {
	in := fleet(env("2", ""), halted("1.21.0", "n9", -time.Hour),
		node("ip-10-0-1-23.us-west-2.compute.internal", updating(v2.StateRebootedIntoUpdate, -90*time.Second, v2.StateStagedAndPerformedUpdate)),
		node("ip-10-0-1-24.us-west-2.compute.internal", failed(1, -time.Minute, "DrainTimeout")),
		node("ip-10-0-1-25.us-west-2.compute.internal", upToDate()), node("ip-10-0-1-26.us-west-2.compute.internal"))
	var b strings.Builder
	if err := WriteStatus(&b, BuildStatus(in), 100); err != nil {
		t.Fatal(err)
	}
	want := `NODE          STATE            VERSION        IN STATE  CRASHES  REASON
ip-10-0-1-23  Staged→Rebooted  1.19.0→1.20.0  1m30s     0        AwaitingAgent
ip-10-0-1-24  Idle             1.19.0→1.20.0  -         1        Backoff 2m0s left (last: DrainTime…
ip-10-0-1-25  Idle             1.20.0         -         0
ip-10-0-1-26  Idle             1.19.0→1.20.0  -         0        Starting
(node names end with .us-west-2.compute.internal)
4 nodes (1.19.0 x3, 1.20.0 x1) | in flight 2/2 | waiting 1 (Backoff 1) | failed 1 | halted 1.21.0
Rollout of 1.21.0 halted since 2026-05-06 09:00:00Z: 1 release failures (budget 1): n9: BootRolledBack
  Resume: kubectl brupop resume 1.21.0
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("WriteStatus mismatch (-want +got):\n%s", diff)
	}
}

func TestWriteStatusPromotion(t *testing.T) {
	soak := metav1.Duration{Duration: 72 * time.Hour}
	in := fleet(policy(v2.FleetPolicySpec{MaxVersion: "1.20.0", ReleaseSoak: &soak, Zones: &v2.FleetPolicyZones{MaxInFlight: 1}}), node("n1", upToDate()))
	var b strings.Builder
	if err := WriteStatus(&b, BuildStatus(in), 0); err != nil {
		t.Fatal(err)
	}
	if want := "Promotion: max version 1.20.0 · release soak 72h0m0s · at most 1 zone(s) at once\n"; !strings.HasSuffix(b.String(), want) {
		t.Errorf("WriteStatus ends %q, want it to end with %q", b.String(), want)
	}
}

func TestWrap(t *testing.T) {
	line := "6 nodes (1.20.0 x4, 1.21.0 x2) | in flight 2/2 | waiting 3 (Backoff 1, Halted 1, Paused 1) | failed 1 | halted 1.22.0 | PAUSED"
	want := []string{
		"6 nodes (1.20.0 x4, 1.21.0 x2) | in flight 2/2 | waiting 3 (Backoff 1, Halted 1, Paused 1)",
		"  failed 1 | halted 1.22.0 | PAUSED",
	}
	if diff := cmp.Diff(want, wrap(line, summarySep, 100)); diff != "" {
		t.Errorf("wrap mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{line}, wrap(line, summarySep, 0)); diff != "" {
		t.Errorf("wrap without a width mismatch (-want +got):\n%s", diff)
	}
}

func TestAge(t *testing.T) {
	cases := map[time.Duration]string{
		-time.Second: "0s", 45 * time.Second: "45s", 192 * time.Second: "3m12s",
		2*time.Hour + 5*time.Minute: "2h5m", 76 * time.Hour: "3d4h",
	}
	for d, want := range cases {
		if got := Age(d); got != want {
			t.Errorf("Age(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestWriteExplanation(t *testing.T) {
	e, err := Why(fleet(policy(v2.FleetPolicySpec{Paused: true}), node("n1")), "n1")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := WriteExplanation(&b, e); err != nil {
		t.Fatal(err)
	}
	want := `n1: Waiting (Paused)
  The rollout is paused; it waits to update to 1.20.0.
  The controller applies paused=true (status.applied: the FleetPolicy's spec.paused, or MAX_CONCURRENT_UPDATE=0 in its environment); updates in flight finish, none starts.
  $ kubectl brupop resume
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("WriteExplanation mismatch (-want +got):\n%s", diff)
	}
}
