package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	brupopv2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/controller"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
)

const fleetPolicySample = "config/samples/fleetpolicy.yaml"

func readSample(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", fleetPolicySample))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestFleetPolicySampleMeansWhatItsCommentsSay creates the documented sample in the real API
// server (CRD validation) and resolves it as the controller does.
func TestFleetPolicySampleMeansWhatItsCommentsSay(t *testing.T) {
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	var fp brupopv2.FleetPolicy
	if err := yaml.UnmarshalStrict(readSample(t), &fp); err != nil {
		t.Fatalf("%s: %v", fleetPolicySample, err)
	}
	fp.Namespace = ns
	if err := c.Create(ctx, &fp); err != nil {
		t.Fatalf("create the sample: %v", err)
	}
	var stored brupopv2.FleetPolicy
	if err := c.Get(ctx, client.ObjectKeyFromObject(&fp), &stored); err != nil {
		t.Fatal(err)
	}
	s, err := controller.Settings(&stored, rollout.Environment{MaxConcurrentUpdate: "1"}, "UTC")
	if err != nil {
		t.Fatalf("the controller rejects the sample: %v", err)
	}
	p := s.Policy
	if p.Concurrency != (rollout.Concurrency{Percent: 10}) {
		t.Errorf("concurrency %+v, want 10%%", p.Concurrency)
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at   time.Time
		open bool
	}{
		{time.Date(2026, 12, 1, 23, 30, 0, 0, paris), true},  // Tuesday night
		{time.Date(2026, 12, 2, 5, 59, 59, 0, paris), true},  // Wednesday before 6
		{time.Date(2026, 12, 2, 6, 0, 0, 0, paris), false},   // Wednesday morning
		{time.Date(2026, 12, 1, 12, 0, 0, 0, paris), false},  // Tuesday noon
		{time.Date(2026, 12, 5, 23, 30, 0, 0, paris), false}, // Saturday night
	} {
		if p.Schedule == nil || p.Schedule.Open(tt.at) != tt.open {
			t.Errorf("window open at %s = %v, want %v (schedule %v)", tt.at, p.Schedule != nil && p.Schedule.Open(tt.at), tt.open, p.Schedule)
		}
	}
	sm := p.StateMachine
	for name, got := range map[string][2]time.Duration{
		"monitoring.period":                      {sm.MonitoringPeriod, 10 * time.Minute},
		"monitoring.deadline":                    {sm.Deadlines.MonitoringGrace, 5 * time.Minute},
		"drainTimeout":                           {s.DrainTimeout, 15 * time.Minute},
		"stateTimeouts.stagedAndPerformedUpdate": {sm.Deadlines.StagedAndPerformedUpdate, 30 * time.Minute},
		"stateTimeouts.rebootedIntoUpdate":       {sm.Deadlines.RebootedIntoUpdate, 10 * time.Minute},
		"stateTimeouts.reset":                    {sm.Deadlines.Reset, 2 * time.Minute},
	} {
		if got[0] != got[1] {
			t.Errorf("%s = %s, want %s", name, got[0], got[1])
		}
	}
	if p.ReleaseSoak != 72*time.Hour || sm.MaxVersion != nil {
		t.Errorf("release soak %s, max version %v; want 72h and none (commented out)", p.ReleaseSoak, sm.MaxVersion)
	}
	if z := p.Zones; z == nil || z.Label != brupopv2.DefaultZoneLabel || z.MaxInFlight != 1 {
		t.Errorf("zones %+v, want one at a time by %s", z, brupopv2.DefaultZoneLabel)
	}
	if p.FailureBudget != 2 || p.Paused {
		t.Errorf("failure budget %d, paused %v; want 2, false", p.FailureBudget, p.Paused)
	}
	if s.PodSelector == nil || s.PodSelector.MatchLabels["app.kubernetes.io/name"] != "ingress-nginx" {
		t.Errorf("pod selector %v, want app.kubernetes.io/name=ingress-nginx", s.PodSelector)
	}
}

// TestFleetPolicyDocShowsTheSample keeps docs/fleetpolicy.md's example the tested sample.
func TestFleetPolicyDocShowsTheSample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "fleetpolicy.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), string(readSample(t))) {
		t.Errorf("docs/fleetpolicy.md does not show %s verbatim; copy it in", fleetPolicySample)
	}
}

// TestFleetPolicyRejectsBadDurations checks that the API server refuses a duration the
// controller could not decode, naming the field, rather than letting it break the controller's
// watch of FleetPolicies.
func TestFleetPolicyRejectsBadDurations(t *testing.T) {
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	for _, bad := range []string{"10 minutes", "-1m", "90"} {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": brupopv2.GroupVersion.String(), "kind": "FleetPolicy",
			"metadata": map[string]any{"name": brupopv2.DefaultFleetPolicyName, "namespace": ns},
			"spec":     map[string]any{"monitoring": map[string]any{"period": bad}},
		}}
		err := c.Create(ctx, u)
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.monitoring.period") || !strings.Contains(err.Error(), "non-negative duration") {
			t.Errorf("monitoring.period %q: %v; want Invalid naming spec.monitoring.period", bad, err)
		}
		if err == nil {
			_ = c.Delete(ctx, u)
		}
	}
}
