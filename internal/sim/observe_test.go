package sim

import (
	"testing"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/fixture"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
)

// TestRowConfigReadsThePublishedSettings: rows judge nodes with what the controller published in
// status.applied, not with the spec.
func TestRowConfigReadsThePublishedSettings(t *testing.T) {
	fp := fixture.Policy(func(s *v2.FleetPolicySpec) { s.MaxVersion = fixture.Old })
	offered := fixture.Shadow("n1").Status
	cfg, err := rowConfig(fp)
	if err != nil || cfg.Target(offered) != fixture.New {
		t.Errorf("rowConfig without status.applied = target %s, %v; want the offered %s: the spec's cap is not applied yet", cfg.Target(offered), err, fixture.New)
	}
	applied, err := rollout.SettingsFrom(fixture.Policy(func(s *v2.FleetPolicySpec) {
		s.MaxVersion, s.Monitoring = "1.19.5", &v2.FleetPolicyMonitoring{Period: fixture.Duration(3 * time.Second)}
	}), rollout.Environment{MaxConcurrentUpdate: "1"})
	if err != nil {
		t.Fatal(err)
	}
	fp.Status.Applied = &v2.FleetPolicyApplied{Generation: 1, Spec: applied.Resolved()}
	cfg, err = rowConfig(fp)
	if err != nil || cfg.Target(offered) != "1.19.5" || cfg.MonitoringPeriod != 3*time.Second {
		t.Errorf("rowConfig = target %s, monitoring %s, %v; want the applied cap 1.19.5 and period 3s", cfg.Target(offered), cfg.MonitoringPeriod, err)
	}
	fp.Status.Applied.Spec.Schedule = &v2.FleetPolicySchedule{Cron: "* * * * * * *", TimeZone: "Mars/Olympus_Mons"}
	if _, err := rowConfig(fp); err == nil {
		t.Error("rowConfig of settings that do not resolve succeeded")
	}
}
