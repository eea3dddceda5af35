package metrics

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names. The first two are upstream's and must not change.
const (
	HostsStateName     = "brupop_hosts_state"
	HostsVersionName   = "brupop_hosts_version"
	TransitionsName    = "brupop_state_transitions_total"
	FailuresName       = "brupop_update_failures_total"
	StateDurationName  = "brupop_state_duration_seconds"
	HaltedName         = "brupop_halted_rollouts"
	WaitingName        = "brupop_nodes_waiting"
	PassesName         = "brupop_decision_passes_total"
	PassDurationName   = "brupop_decision_pass_duration_seconds"
	stateLabel         = "state"
	versionLabel       = "bottlerocket_version"
	reasonLabel        = "reason"
	classLabel         = "class"
	fromLabel, toLabel = "from", "to"
)

// Snapshot is the fleet as one pass saw it, for the gauges.
type Snapshot struct {
	// States counts shadows per status.current_state (shadows without status are not counted,
	// as upstream).
	States map[string]int
	// Versions counts shadows per status.current_version.
	Versions map[string]int
	// Waiting counts nodes waiting to start per reason.
	Waiting map[string]int
	// Halted is the number of halted versions.
	Halted int
}

// Metrics are the controller's collectors. Its methods are safe for concurrent use.
type Metrics struct {
	hostsState, hostsVersion, waiting *zeroingGauge
	halted                            prometheus.Gauge
	transitions, failures             *prometheus.CounterVec
	durations                         *prometheus.HistogramVec
	passes                            prometheus.Counter
	passDuration                      prometheus.Histogram
}

// New creates the collectors and registers them with reg. knownStates and knownReasons are
// exported as 0 from the start, so dashboards see every series before it first happens.
func New(reg prometheus.Registerer, knownStates, knownReasons []string) (*Metrics, error) {
	m := &Metrics{
		hostsState:   newZeroingGauge(HostsStateName, "Number of Bottlerocket hosts per update state (status.current_state).", stateLabel),
		hostsVersion: newZeroingGauge(HostsVersionName, "Number of Bottlerocket hosts per running version.", versionLabel),
		waiting:      newZeroingGauge(WaitingName, "Number of nodes with an update to make that do not start now, per reason.", reasonLabel),
		halted:       prometheus.NewGauge(prometheus.GaugeOpts{Name: HaltedName, Help: "Number of target versions whose rollout is halted."}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: TransitionsName,
			Help: "Desired state changes written by the controller."}, []string{fromLabel, toLabel}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: FailuresName,
			Help: "Failed node updates, by reason and class (Release or Operational)."}, []string{reasonLabel, classLabel}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: StateDurationName,
			Help:    "Time nodes spent in a desired state before the controller moved them on.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14)}, []string{stateLabel}),
		passes:       prometheus.NewCounter(prometheus.CounterOpts{Name: PassesName, Help: "Fleet-wide decision passes."}),
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: PassDurationName, Help: "Duration of a decision pass, API writes included."}),
	}
	for _, c := range []prometheus.Collector{m.hostsState.vec, m.hostsVersion.vec, m.waiting.vec, m.halted,
		m.transitions, m.failures, m.durations, m.passes, m.passDuration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	m.hostsState.set(counts(knownStates))
	m.waiting.set(counts(knownReasons))
	return m, nil
}

func counts(keys []string) map[string]int {
	c := make(map[string]int, len(keys))
	for _, k := range keys {
		c[k] = 0
	}
	return c
}

// Observe sets the gauges from a snapshot.
func (m *Metrics) Observe(s Snapshot) {
	m.hostsState.set(s.States)
	m.hostsVersion.set(s.Versions)
	m.waiting.set(s.Waiting)
	m.halted.Set(float64(s.Halted))
}

// Transition counts a desired state change and observes how long the node spent in from.
// spent <= 0 (unknown) is not observed.
func (m *Metrics) Transition(from, to string, spent time.Duration) {
	m.transitions.WithLabelValues(from, to).Inc()
	if spent > 0 {
		m.durations.WithLabelValues(from).Observe(spent.Seconds())
	}
}

// Failure counts a failed node update.
func (m *Metrics) Failure(reason, class string) {
	m.failures.WithLabelValues(reason, class).Inc()
}

// Pass counts a decision pass that took d.
func (m *Metrics) Pass(d time.Duration) {
	m.passes.Inc()
	m.passDuration.Observe(d.Seconds())
}

// zeroingGauge is a gauge vector with one label that sets values it no longer sees to 0.
type zeroingGauge struct {
	vec  *prometheus.GaugeVec
	mu   sync.Mutex
	seen map[string]bool
}

func newZeroingGauge(name, help, label string) *zeroingGauge {
	return &zeroingGauge{vec: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{label}), seen: map[string]bool{}}
}

// set sets every value of c and 0 for every value seen before that c lacks.
func (g *zeroingGauge) set(c map[string]int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for v := range g.seen {
		if _, ok := c[v]; !ok {
			g.vec.WithLabelValues(v).Set(0)
		}
	}
	for v, n := range c {
		g.seen[v] = true
		g.vec.WithLabelValues(v).Set(float64(n))
	}
}
