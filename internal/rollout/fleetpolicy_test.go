package rollout

import (
	"strings"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/fixture"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
	"github.com/bottlerocket-os/brupop-go/internal/window"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSettingsFrom(t *testing.T) {
	env := Environment{MaxConcurrentUpdate: "2", SchedulerCronExpression: "* * 10-12 * * Mon"}
	budget := int32(3)
	zero := int32(0)
	cases := []struct {
		name       string
		fp         *v2.FleetPolicy
		env        Environment
		wantConc   Concurrency
		wantExpr   string
		wantZone   string
		wantBudget int
		wantMon    time.Duration
		wantErr    string
	}{
		{name: "no policy: environment and defaults", env: env,
			wantConc: Concurrency{Count: 2}, wantExpr: "* * 10-12 * * Mon", wantZone: "UTC", wantBudget: 1, wantMon: statemachine.DefaultMonitoringPeriod},
		{name: "no policy, no cron: always", env: Environment{MaxConcurrentUpdate: "unlimited"},
			wantConc: Concurrency{Unlimited: true}, wantExpr: window.DefaultExpression, wantZone: "UTC", wantBudget: 1, wantMon: statemachine.DefaultMonitoringPeriod},
		{name: "policy overrides", env: env, fp: &v2.FleetPolicy{Spec: v2.FleetPolicySpec{
			MaxConcurrentUpdates: "10%", Schedule: &v2.FleetPolicySchedule{Cron: "0 0 3 * * *", TimeZone: "Europe/Paris"},
			FailureBudget: &budget, Monitoring: &v2.FleetPolicyMonitoring{Period: fixture.Duration(0)}}},
			wantConc: Concurrency{Percent: 10}, wantExpr: "0 0 3 * * *", wantZone: "Europe/Paris", wantBudget: 3},
		{name: "time zone alone applies to the environment's cron", env: env, fp: &v2.FleetPolicy{Spec: v2.FleetPolicySpec{
			Schedule: &v2.FleetPolicySchedule{TimeZone: "Asia/Tokyo"}}},
			wantConc: Concurrency{Count: 2}, wantExpr: "* * 10-12 * * Mon", wantZone: "Asia/Tokyo", wantBudget: 1, wantMon: statemachine.DefaultMonitoringPeriod},
		{name: "missing MAX_CONCURRENT_UPDATE", env: Environment{}, wantErr: "MAX_CONCURRENT_UPDATE is required"},
		{name: "zero concurrency in a FleetPolicy is refused", env: env, fp: &v2.FleetPolicy{Spec: v2.FleetPolicySpec{MaxConcurrentUpdates: "0"}}, wantErr: "pause instead of 0"},
		{name: "bad cron", env: Environment{MaxConcurrentUpdate: "1", SchedulerCronExpression: "0 0 10 * *"}, wantErr: "want 6 or 7"},
		{name: "bad zone", env: env, fp: &v2.FleetPolicy{Spec: v2.FleetPolicySpec{Schedule: &v2.FleetPolicySchedule{TimeZone: "Mars/Olympus"}}}, wantErr: "IANA time zone"},
		{name: "zero budget", env: env, fp: &v2.FleetPolicy{Spec: v2.FleetPolicySpec{FailureBudget: &zero}}, wantErr: "at least 1"},
		{name: "negative timeout", env: env, fp: &v2.FleetPolicy{Spec: v2.FleetPolicySpec{StateTimeouts: &v2.FleetPolicyStateTimeouts{Reset: fixture.Duration(-time.Second)}}}, wantErr: "stateTimeouts.reset"},
		{name: "maxVersion not a version", env: env, fp: &v2.FleetPolicy{Spec: v2.FleetPolicySpec{MaxVersion: "1.21"}}, wantErr: "maxVersion"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := SettingsFrom(tc.fp, tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("SettingsFrom() error = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := s.Policy
			got := []any{p.Concurrency, p.Schedule.Expression(), p.Schedule.Location().String(), p.FailureBudget, p.StateMachine.MonitoringPeriod}
			want := []any{tc.wantConc, tc.wantExpr, tc.wantZone, tc.wantBudget, tc.wantMon}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("SettingsFrom() (-want +got):\n%s", diff)
			}
		})
	}
}

// TestZeroConcurrencyFromTheEnvironmentPauses keeps upstream's meaning of MAX_CONCURRENT_UPDATE=0
// ("start nothing") as a pause with a warning, instead of refusing to start.
func TestZeroConcurrencyFromTheEnvironmentPauses(t *testing.T) {
	s, err := SettingsFrom(nil, Environment{MaxConcurrentUpdate: " 0"})
	if err != nil {
		t.Fatalf("MAX_CONCURRENT_UPDATE=0: %v; want it accepted as upstream does", err)
	}
	if !s.Policy.Paused || len(s.Warnings) == 0 || !strings.Contains(s.Warnings[0], "MAX_CONCURRENT_UPDATE=0") {
		t.Errorf("settings = paused %v, warnings %q; want paused with a warning", s.Policy.Paused, s.Warnings)
	}
	// A FleetPolicy concurrency takes over from the environment's 0.
	s, err = SettingsFrom(&v2.FleetPolicy{Spec: v2.FleetPolicySpec{MaxConcurrentUpdates: "2"}}, Environment{MaxConcurrentUpdate: "0"})
	if err != nil || s.Policy.Paused || s.Policy.Concurrency != (Concurrency{Count: 2}) {
		t.Errorf("policy 2 over env 0 = %+v, %v; want 2, not paused", s.Policy.Concurrency, err)
	}
}

func TestSettingsFromDrainTimeoutExtendsTheRebootDeadline(t *testing.T) {
	env := Environment{MaxConcurrentUpdate: "1"}
	cases := []struct {
		name      string
		spec      v2.FleetPolicySpec
		wantDrain time.Duration // handed to the API server; 0 keeps its default
		want      time.Duration // the RebootedIntoUpdate deadline
	}{
		{name: "no drainTimeout: the agent's default 10m + 600s", want: 20 * time.Minute},
		{name: "drainTimeout 30m", spec: v2.FleetPolicySpec{DrainTimeout: &metav1.Duration{Duration: 30 * time.Minute}},
			wantDrain: 30 * time.Minute, want: 40 * time.Minute},
		{name: "drainTimeout 90s and rebootedIntoUpdate 5m", spec: v2.FleetPolicySpec{DrainTimeout: &metav1.Duration{Duration: 90 * time.Second},
			StateTimeouts: &v2.FleetPolicyStateTimeouts{RebootedIntoUpdate: &metav1.Duration{Duration: 5 * time.Minute}}},
			wantDrain: 90 * time.Second, want: 390 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := SettingsFrom(&v2.FleetPolicy{Spec: tc.spec}, env)
			if err != nil {
				t.Fatal(err)
			}
			if s.DrainTimeout != tc.wantDrain {
				t.Errorf("DrainTimeout = %s, want %s", s.DrainTimeout, tc.wantDrain)
			}
			if got := s.Policy.StateMachine.Deadline(v2.StateRebootedIntoUpdate); got != tc.want {
				t.Errorf("RebootedIntoUpdate deadline = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestLedgerFrom(t *testing.T) {
	fp := &v2.FleetPolicy{Status: v2.FleetPolicyStatus{LastRunEnd: fixture.Time(0), Versions: []v2.FleetPolicyVersionStatus{{
		Version: vNew, ResumedAt: fixture.Time(-time.Minute),
		Failures: []v2.FleetPolicyNodeFailure{{Node: "a", Reason: statemachine.ReasonMonitoringFailed, Time: metav1.NewTime(t0.Add(-time.Hour))}},
	}}}}
	ledger, end := LedgerFrom(&fp.Status)
	want := []VersionLedger{{Version: vNew, ResumedAt: t0.Add(-time.Minute), Failures: []NodeFailure{{Node: "a", Failure: statemachine.Failure{
		Reason: statemachine.ReasonMonitoringFailed, Class: statemachine.ClassRelease, Version: vNew, At: t0.Add(-time.Hour)}}}}}
	if diff := cmp.Diff(want, ledger); diff != "" || !end.Equal(t0) {
		t.Errorf("LedgerFrom() end %v (-want +got):\n%s", end, diff)
	}
	if l, e := LedgerFrom(nil); l != nil || !e.IsZero() {
		t.Errorf("LedgerFrom(nil) = %v, %v", l, e)
	}
}

// TestResolvedSettingsResolveToThemselves: what status.applied stores gives the same settings
// with no environment, so a controller that falls back to it applies exactly what was applied.
func TestResolvedSettingsResolveToThemselves(t *testing.T) {
	budget := int32(4)
	full := &v2.FleetPolicy{Spec: v2.FleetPolicySpec{
		MaxConcurrentUpdates: "25%", Paused: true, FailureBudget: &budget,
		Schedule: &v2.FleetPolicySchedule{Cron: "0 0 3 * * Mon-Fri", TimeZone: "Europe/Paris"},
		Monitoring: &v2.FleetPolicyMonitoring{Period: fixture.Duration(90 * time.Second), Deadline: fixture.Duration(time.Minute),
			PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		DrainTimeout:  fixture.Duration(7 * time.Minute),
		StateTimeouts: &v2.FleetPolicyStateTimeouts{StagedAndPerformedUpdate: fixture.Duration(30 * time.Minute), RebootedIntoUpdate: fixture.Duration(time.Minute), Reset: fixture.Duration(time.Second)},
		MaxVersion:    "1.21.0", ReleaseSoak: fixture.Duration(time.Hour), Zones: &v2.FleetPolicyZones{MaxInFlight: 2},
	}}
	cases := []struct {
		name string
		fp   *v2.FleetPolicy
		env  Environment
	}{
		{name: "environment only", env: Environment{MaxConcurrentUpdate: "3", SchedulerCronExpression: "* * 10-12 * * Mon"}},
		{name: "deprecated window", env: Environment{MaxConcurrentUpdate: "unlimited", UpdateWindowStart: "22:00:00", UpdateWindowStop: "02:00:00"}},
		{name: "upstream's zero is a pause", env: Environment{MaxConcurrentUpdate: "0"}},
		{name: "every field", fp: full, env: Environment{MaxConcurrentUpdate: "1"}},
	}
	same := cmp.Options{
		cmp.Transformer("schedule", func(s *window.Schedule) string { return s.String() }),
		cmp.Transformer("version", func(v *semver.Version) string {
			if v == nil {
				return ""
			}
			return v.Original()
		}),
		cmpopts.IgnoreFields(Settings{}, "Warnings"),
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, err := SettingsFrom(tc.fp, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			stored := &v2.FleetPolicy{Status: v2.FleetPolicyStatus{Applied: &v2.FleetPolicyApplied{Spec: want.Resolved()}}}
			got, ok, err := AppliedSettings(stored)
			if err != nil || !ok {
				t.Fatalf("AppliedSettings() = %v, %v", ok, err)
			}
			if d := cmp.Diff(want, got, same); d != "" {
				t.Errorf("settings from status.applied differ (-applied +resolved again):\n%s", d)
			}
		})
	}
	if _, ok, err := AppliedSettings(&v2.FleetPolicy{}); ok || err != nil {
		t.Errorf("AppliedSettings(no status) = %v, %v; want false, nil", ok, err)
	}
}
