package rollout

import (
	"errors"
	"fmt"
	"strings"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
	"github.com/bottlerocket-os/brupop-go/internal/window"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Environment holds upstream's controller variables; they are the defaults of a FleetPolicy.
type Environment struct {
	// MaxConcurrentUpdate is MAX_CONCURRENT_UPDATE (required, as upstream).
	MaxConcurrentUpdate string
	// SchedulerCronExpression is SCHEDULER_CRON_EXPRESSION ("" when unset).
	SchedulerCronExpression string
	// UpdateWindowStart and UpdateWindowStop are the deprecated UPDATE_WINDOW_START/STOP.
	UpdateWindowStart, UpdateWindowStop string
}

// Settings is a FleetPolicy resolved against the environment.
type Settings struct {
	// Policy is what Decide needs.
	Policy Policy
	// PodSelector selects the pods that must be Ready on a monitored node; nil for none.
	PodSelector *metav1.LabelSelector
	// DrainTimeout is the drain deadline to hand to the API server; 0 leaves its default.
	DrainTimeout time.Duration
	// Warnings are for the log (deprecated variables).
	Warnings []string
}

// SettingsFrom resolves the FleetPolicy fp (nil when there is none) against the environment:
// every field fp leaves unset takes the environment's value or the default of DefaultPolicy.
// The error names the field or variable to fix; a caller at start-up exits with it, a caller
// reconciling a FleetPolicy reports it in the policy's status and keeps the last good Settings.
func SettingsFrom(fp *v2.FleetPolicy, env Environment) (Settings, error) {
	var spec v2.FleetPolicySpec
	if fp != nil {
		spec = fp.Spec
	}
	s := Settings{Policy: DefaultPolicy()}
	var errs []error
	conc := env.MaxConcurrentUpdate
	if spec.MaxConcurrentUpdates != "" {
		conc = spec.MaxConcurrentUpdates
	}
	// Upstream reads MAX_CONCURRENT_UPDATE=0 as "start nothing"; keep that meaning, as a pause,
	// so that an installation switching from upstream with 0 does not crash-loop.
	envZero := spec.MaxConcurrentUpdates == "" && strings.TrimSpace(conc) == "0"
	if envZero {
		conc = "1"
		s.Warnings = append(s.Warnings, "MAX_CONCURRENT_UPDATE=0 starts no update, as upstream: the rollout is paused (set a positive number, \"unlimited\" or a percentage to update)")
	}
	if conc == "" {
		errs = append(errs, errors.New("rollout: MAX_CONCURRENT_UPDATE is required (a positive number, \"unlimited\" or a percentage like \"10%\")"))
	} else if c, err := ParseConcurrency(conc); err != nil {
		errs = append(errs, err)
	} else {
		s.Policy.Concurrency = c
	}
	sched, warnings, err := scheduleFrom(spec.Schedule, env)
	errs = append(errs, err)
	s.Policy.Schedule, s.Warnings = sched, append(s.Warnings, warnings...)
	s.Policy.Paused = spec.Paused || envZero
	if spec.FailureBudget != nil {
		if *spec.FailureBudget < 1 {
			errs = append(errs, fmt.Errorf("rollout: failureBudget %d: must be at least 1", *spec.FailureBudget))
		}
		s.Policy.FailureBudget = int(*spec.FailureBudget)
	}
	if m := spec.Monitoring; m != nil {
		s.PodSelector = m.PodSelector
		errs = append(errs, duration(&s.Policy.StateMachine.MonitoringPeriod, m.Period, "monitoring.period"),
			duration(&s.Policy.StateMachine.Deadlines.MonitoringGrace, m.Deadline, "monitoring.deadline"))
	}
	if t := spec.StateTimeouts; t != nil {
		d := &s.Policy.StateMachine.Deadlines
		errs = append(errs, duration(&d.StagedAndPerformedUpdate, t.StagedAndPerformedUpdate, "stateTimeouts.stagedAndPerformedUpdate"),
			duration(&d.RebootedIntoUpdate, t.RebootedIntoUpdate, "stateTimeouts.rebootedIntoUpdate"),
			duration(&d.Reset, t.Reset, "stateTimeouts.reset"))
	}
	errs = append(errs, duration(&s.DrainTimeout, spec.DrainTimeout, "drainTimeout"),
		duration(&s.Policy.ReleaseSoak, spec.ReleaseSoak, "releaseSoak"))
	if z := spec.Zones; z != nil {
		label := z.Label
		if label == "" {
			label = v2.DefaultZoneLabel
		}
		if z.MaxInFlight < 1 {
			errs = append(errs, fmt.Errorf("rollout: zones.maxInFlight %d: must be at least 1", z.MaxInFlight))
		}
		s.Policy.Zones = &Zones{Label: label, MaxInFlight: int(z.MaxInFlight)}
	}
	if err := s.Policy.StateMachine.SetMaxVersion(spec.MaxVersion); err != nil {
		errs = append(errs, fmt.Errorf("rollout: maxVersion: %w", err))
	}
	// The RebootedIntoUpdate deadline counts from the end of the drain budget the agent gets;
	// without a drainTimeout the agent's default (statemachine.DefaultDrainTimeout) applies.
	if s.DrainTimeout > 0 {
		s.Policy.StateMachine.DrainTimeout = s.DrainTimeout
	}
	return s, errors.Join(errs...)
}

func scheduleFrom(fs *v2.FleetPolicySchedule, env Environment) (*window.Schedule, []string, error) {
	loc := time.UTC
	cron := env.SchedulerCronExpression
	if fs != nil {
		if fs.TimeZone != "" {
			l, err := time.LoadLocation(fs.TimeZone)
			if err != nil {
				return nil, nil, fmt.Errorf("rollout: schedule.timeZone %q: want an IANA time zone such as Europe/Paris: %w", fs.TimeZone, err)
			}
			loc = l
		}
		if fs.Cron != "" {
			s, err := window.Parse(fs.Cron, loc)
			return s, nil, err
		}
	}
	return window.FromEnvironment(cron, env.UpdateWindowStart, env.UpdateWindowStop, loc)
}

// duration sets *dst from d when d is set, rejecting negative values.
func duration(dst *time.Duration, d *metav1.Duration, field string) error {
	if d == nil {
		return nil
	}
	if d.Duration < 0 {
		return fmt.Errorf("rollout: %s %s: must not be negative", field, d.Duration)
	}
	*dst = d.Duration
	return nil
}

// ReleasesFrom returns the first-seen times of the offered versions kept in a FleetPolicy's
// status (nil when st is nil), for Fleet.Releases.
func ReleasesFrom(st *v2.FleetPolicyStatus) map[string]time.Time {
	if st == nil || len(st.Releases) == 0 {
		return nil
	}
	out := make(map[string]time.Time, len(st.Releases))
	for _, r := range st.Releases {
		out[r.Version] = r.FirstSeen.Time
	}
	return out
}

// LedgerFrom returns the failure ledger and the end of the last Oneshot run kept in a
// FleetPolicy's status (nothing when st is nil), for Fleet.Ledger and Fleet.LastRunEnd.
func LedgerFrom(st *v2.FleetPolicyStatus) ([]VersionLedger, time.Time) {
	if st == nil {
		return nil, time.Time{}
	}
	var lastRunEnd time.Time
	if t := st.LastRunEnd; t != nil {
		lastRunEnd = t.Time
	}
	ledger := make([]VersionLedger, 0, len(st.Versions))
	for _, v := range st.Versions {
		l := VersionLedger{Version: v.Version}
		if v.ResumedAt != nil {
			l.ResumedAt = v.ResumedAt.Time
		}
		for _, f := range v.Failures {
			l.Failures = append(l.Failures, NodeFailure{Node: f.Node, Failure: statemachine.Failure{
				Reason: f.Reason, Message: f.Message, Class: statemachine.ClassRelease, Version: v.Version, At: f.Time.Time}})
		}
		ledger = append(ledger, l)
	}
	return ledger, lastRunEnd
}

// Resolved returns the spec that resolves, with no environment, to the same Policy, pod selector
// and drain timeout as s: every field set, the schedule with its time zone, upstream's
// MAX_CONCURRENT_UPDATE=0 as paused. It is what FleetPolicy status.applied stores, so that a
// controller that later meets an invalid spec, in this process or another, keeps applying it.
func (s Settings) Resolved() v2.FleetPolicySpec {
	p := s.Policy
	d := p.StateMachine.Deadlines
	dur := func(v time.Duration) *metav1.Duration { return &metav1.Duration{Duration: v} }
	budget := int32(p.FailureBudget)
	spec := v2.FleetPolicySpec{
		MaxConcurrentUpdates: p.Concurrency.String(),
		Paused:               p.Paused,
		FailureBudget:        &budget,
		Monitoring: &v2.FleetPolicyMonitoring{Period: dur(p.StateMachine.MonitoringPeriod),
			Deadline: dur(d.MonitoringGrace), PodSelector: s.PodSelector.DeepCopy()},
		StateTimeouts: &v2.FleetPolicyStateTimeouts{StagedAndPerformedUpdate: dur(d.StagedAndPerformedUpdate),
			RebootedIntoUpdate: dur(d.RebootedIntoUpdate), Reset: dur(d.Reset)},
		ReleaseSoak: dur(p.ReleaseSoak),
	}
	if p.Schedule != nil {
		spec.Schedule = &v2.FleetPolicySchedule{Cron: p.Schedule.Expression(), TimeZone: p.Schedule.Location().String()}
	}
	if s.DrainTimeout > 0 {
		spec.DrainTimeout = dur(s.DrainTimeout)
	}
	if v := p.StateMachine.MaxVersion; v != nil {
		spec.MaxVersion = v.Original()
	}
	if z := p.Zones; z != nil {
		spec.Zones = &v2.FleetPolicyZones{Label: z.Label, MaxInFlight: int32(z.MaxInFlight)}
	}
	return spec
}

// AppliedSettings returns the settings a FleetPolicy's status.applied stores (see
// Settings.Resolved), and false when the status holds none.
func AppliedSettings(fp *v2.FleetPolicy) (Settings, bool, error) {
	if fp == nil || fp.Status.Applied == nil {
		return Settings{}, false, nil
	}
	s, err := FromApplied(fp.Status.Applied)
	if err != nil {
		return Settings{}, true, fmt.Errorf("rollout: the applied settings stored in FleetPolicy %s/%s status do not resolve: %w", fp.Namespace, fp.Name, err)
	}
	return s, true, nil
}

// FromApplied resolves applied settings (see Settings.Resolved) with no environment.
func FromApplied(a *v2.FleetPolicyApplied) (Settings, error) {
	return SettingsFrom(&v2.FleetPolicy{Spec: a.Spec}, Environment{})
}
