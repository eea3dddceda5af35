package statemachine

import (
	"fmt"
	"time"

	"github.com/Masterminds/semver/v3"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// Defaults of Config: upstream's unused per-state timeouts (docs/upstream.md, "Per-state
// timeouts") and a real monitoring period.
const (
	DefaultStagedDeadline = 720 * time.Second
	// DefaultRebootedDeadline is the reboot allowance: how long the node may take to reboot and
	// its agent to report back once its drain budget (Config.DrainTimeout) is spent.
	DefaultRebootedDeadline = 600 * time.Second
	// DefaultDrainTimeout is the drain deadline the agent and the API server use when the
	// controller hands them none (their own default).
	DefaultDrainTimeout = 10 * time.Minute
	// DefaultMonitoringGrace is how long past the monitoring period a node may take to become
	// healthy before its monitoring fails.
	DefaultMonitoringGrace = 300 * time.Second
	// DefaultResetDeadline is how long a node whose spec was reset to Idle may take to report
	// Idle before it stops counting as in flight (upstream's Idle timeout).
	DefaultResetDeadline = 120 * time.Second
	// DefaultMonitoringPeriod is how long an updated node must stay healthy before its update is
	// complete. Upstream has no monitoring (0); set 0 to get its behaviour.
	DefaultMonitoringPeriod = 5 * time.Minute
)

// Deadlines bound the time the agent may take to reach each desired state, counted from
// spec.state_transition_timestamp. Zero means no deadline.
type Deadlines struct {
	// StagedAndPerformedUpdate bounds download and activation.
	StagedAndPerformedUpdate time.Duration
	// RebootedIntoUpdate bounds the reboot and the agent's return. It counts from the end of
	// the drain budget: the deadline of RebootedIntoUpdate is Config.DrainTimeout plus this
	// (see Config.Deadline), so a drain that uses its whole budget is never timed out.
	RebootedIntoUpdate time.Duration
	// MonitoringGrace is added to the monitoring period to bound MonitoringUpdate.
	MonitoringGrace time.Duration
	// Reset bounds how long a node reset to Idle keeps its update slot while its agent does
	// not report back (a dead agent must not stall the fleet).
	Reset time.Duration
}

// Config is what Next needs besides the shadow and the time.
type Config struct {
	// MonitoringPeriod is how long a node must stay healthy in MonitoringUpdate.
	MonitoringPeriod time.Duration
	// Deadlines bound every state.
	Deadlines Deadlines
	// DrainTimeout is the drain deadline the agent works to, counted like the
	// RebootedIntoUpdate deadline from the spec's transition; 0 means DefaultDrainTimeout, the
	// agent's and API server's own default.
	DrainTimeout time.Duration
	// MaxVersion, when set (with SetMaxVersion), caps the version nodes update to: a node
	// updates to the version its host offers, or to MaxVersion when the host offers a newer
	// one, and a node already at or past it is up to date (never downgraded).
	MaxVersion *semver.Version
}

// SetMaxVersion parses v (empty for none) into MaxVersion.
func (c *Config) SetMaxVersion(v string) error {
	if v == "" {
		c.MaxVersion = nil
		return nil
	}
	parsed, err := semver.StrictNewVersion(v)
	if err != nil {
		return fmt.Errorf("version %q: want a semantic version such as 1.21.0: %w", v, err)
	}
	c.MaxVersion = parsed
	return nil
}

// Target returns the version a node whose agent reports st should update to: st.target_version
// (the newest its host offers), capped at MaxVersion. A version that does not parse is not
// capped.
func (c Config) Target(st *v2.BottlerocketShadowStatus) string {
	if st == nil {
		return ""
	}
	if c.MaxVersion == nil {
		return st.TargetVersion
	}
	offered, err := semver.StrictNewVersion(st.TargetVersion)
	if err != nil || !offered.GreaterThan(c.MaxVersion) {
		return st.TargetVersion
	}
	return c.MaxVersion.Original()
}

// IsMaxVersion reports whether v is MaxVersion (by semantic version).
func (c Config) IsMaxVersion(v string) bool {
	if c.MaxVersion == nil {
		return false
	}
	parsed, err := semver.StrictNewVersion(v)
	return err == nil && parsed.Equal(c.MaxVersion)
}

// runs reports whether a node running current has nothing to update to when its Target is
// target: it runs target, or (with MaxVersion) a version at or past it, as upstream compares
// the strings.
func (c Config) runs(current, target string) bool {
	if current == target {
		return true
	}
	if c.MaxVersion == nil {
		return false
	}
	have, err1 := semver.StrictNewVersion(current)
	want, err2 := semver.StrictNewVersion(target)
	return err1 == nil && err2 == nil && !have.LessThan(want)
}

// DefaultConfig returns the defaults above.
func DefaultConfig() Config {
	return Config{
		MonitoringPeriod: DefaultMonitoringPeriod,
		Deadlines: Deadlines{
			StagedAndPerformedUpdate: DefaultStagedDeadline,
			RebootedIntoUpdate:       DefaultRebootedDeadline,
			MonitoringGrace:          DefaultMonitoringGrace,
			Reset:                    DefaultResetDeadline,
		},
		DrainTimeout: DefaultDrainTimeout,
	}
}

// Deadline returns how long the agent may take to reach the desired state, or 0 for none. The
// RebootedIntoUpdate deadline is the drain budget (EffectiveDrainTimeout) plus
// Deadlines.RebootedIntoUpdate: both count from the same spec timestamp, so a reboot deadline
// shorter than the drain would time out a slow but legal drain.
func (c Config) Deadline(state v2.State) time.Duration {
	switch state {
	case v2.StateStagedAndPerformedUpdate:
		return c.Deadlines.StagedAndPerformedUpdate
	case v2.StateRebootedIntoUpdate:
		if c.Deadlines.RebootedIntoUpdate == 0 {
			return 0
		}
		return c.EffectiveDrainTimeout() + c.Deadlines.RebootedIntoUpdate
	case v2.StateMonitoringUpdate:
		if c.Deadlines.MonitoringGrace == 0 {
			return 0
		}
		return c.MonitoringPeriod + c.Deadlines.MonitoringGrace
	case v2.StateIdle:
		return c.Deadlines.Reset
	}
	return 0
}

// EffectiveDrainTimeout returns DrainTimeout, or DefaultDrainTimeout when it is not set.
func (c Config) EffectiveDrainTimeout() time.Duration {
	if c.DrainTimeout <= 0 {
		return DefaultDrainTimeout
	}
	return c.DrainTimeout
}
