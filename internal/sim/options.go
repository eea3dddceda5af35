package sim

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
)

// Step is an update step a simulated node can be told to fail.
type Step string

// The steps --fail accepts.
const (
	StepRefresh  Step = "refresh"
	StepPrepare  Step = "prepare"
	StepActivate Step = "activate"
	StepBoot     Step = "boot"
	StepMonitor  Step = "monitor"
)

// Steps lists every Step in update order.
var Steps = []Step{StepRefresh, StepPrepare, StepActivate, StepBoot, StepMonitor}

// Fault makes one node fail one step of every update it attempts.
type Fault struct {
	Node string
	Step Step
}

// ParseFault parses NODE:STEP, e.g. "node-03:boot".
func ParseFault(s string) (Fault, error) {
	node, step, ok := strings.Cut(s, ":")
	if !ok || node == "" {
		return Fault{}, fmt.Errorf("sim: fault %q: want NODE:STEP, e.g. node-03:boot", s)
	}
	for _, st := range Steps {
		if string(st) == step {
			return Fault{Node: node, Step: st}, nil
		}
	}
	return Fault{}, fmt.Errorf("sim: fault %q: step %q is not one of %v", s, step, Steps)
}

// String is NODE:STEP.
func (f Fault) String() string { return f.Node + ":" + string(f.Step) }

// Options describe a simulated cluster and its rollout.
type Options struct {
	// Nodes is the number of simulated nodes, named node-01, node-02, ...
	Nodes int
	// MaxConcurrent is the FleetPolicy's maxConcurrentUpdates.
	MaxConcurrent int
	// Cron is the FleetPolicy's update window; empty means always open.
	Cron string
	// From is the version every host runs at start; To is the version Publish releases.
	From, To string
	// RebootTime is how long a reboot keeps a host down and its Node NotReady.
	RebootTime time.Duration
	// PrepareTime is how long downloading an update (prepare) takes on a host; the other
	// commands take a tenth of it.
	PrepareTime time.Duration
	// MonitoringPeriod is the FleetPolicy's monitoring period after a reboot.
	MonitoringPeriod time.Duration
	// Faults are the nodes told to fail a step.
	Faults []Fault
	// AlsoOffer are versions newer than To that Publish offers with it; with MaxVersion set to
	// To, the rollout holds the nodes at To although their hosts offer these.
	AlsoOffer []string
	// MaxVersion is the FleetPolicy's maxVersion; empty for none.
	MaxVersion string
	// ReleaseSoak is the FleetPolicy's releaseSoak; zero for none.
	ReleaseSoak time.Duration
	// Zones labels the nodes round-robin with zones zone-a, zone-b, ...; 0 leaves them
	// unlabelled.
	Zones int
	// ZonesInFlight is the FleetPolicy's zones.maxInFlight; 0 leaves zones out of it.
	ZonesInFlight int
	// Seed seeds the simulation's own jitter (each host's prepare time, ±20%). Where pods
	// land and the order of the components' work are not the simulation's to repeat.
	Seed int64
	// Timeout bounds the rollout Watch observes; zero means a generous estimate.
	Timeout time.Duration
	// ToolsDir holds the binaries `make tools` built; empty means the default location.
	ToolsDir string
	// ProcessOutput, when set, receives the output of the control-plane and kwok processes.
	ProcessOutput io.Writer
	// Log receives the components' logs; the zero logger discards them.
	Log logr.Logger
	// Components are Brupop's components to run; DefaultComponents when nil.
	Components *Components
}

// DefaultOptions are the demo's: 12 nodes at concurrency 3 from 1.20.0 to 1.21.0 with short
// timings, so the rollout takes about a minute.
func DefaultOptions() Options {
	return Options{
		Nodes: 12, MaxConcurrent: 3, From: "1.20.0",
		RebootTime: 3 * time.Second, PrepareTime: 2 * time.Second, MonitoringPeriod: 3 * time.Second,
		Seed: 1,
	}
}

// NextMinor returns the version one minor newer than v: 1.20.0 -> 1.21.0.
func NextMinor(v string) (string, error) {
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("sim: version %q: want MAJOR.MINOR.PATCH", v)
	}
	minor, err := strconv.Atoi(parts[1])
	if err != nil {
		return "", fmt.Errorf("sim: version %q: minor: %w", v, err)
	}
	return fmt.Sprintf("%s.%d.0", parts[0], minor+1), nil
}

// NodeName is the name of the i-th node (from 0).
func NodeName(i int) string { return fmt.Sprintf("node-%02d", i+1) }

// ZoneOf is the zone of the i-th node (from 0) among zones, "" when zones is 0.
func ZoneOf(i, zones int) string {
	if zones <= 0 {
		return ""
	}
	return "zone-" + string(rune('a'+i%zones))
}

// Validate fills To when empty and returns every problem, each saying what to fix.
func (o *Options) Validate() error {
	var errs []error
	if o.Nodes < 1 || o.Nodes > 500 {
		errs = append(errs, fmt.Errorf("--nodes %d: want 1 to 500", o.Nodes))
	}
	if o.MaxConcurrent < 1 {
		errs = append(errs, fmt.Errorf("--max-concurrent %d: want at least 1", o.MaxConcurrent))
	}
	if o.To == "" {
		to, err := NextMinor(o.From)
		errs = append(errs, err)
		o.To = to
	}
	if o.From == o.To {
		errs = append(errs, fmt.Errorf("--to %s: must differ from --from", o.To))
	}
	for name, d := range map[string]time.Duration{"--reboot-time": o.RebootTime, "--prepare-time": o.PrepareTime, "--monitoring-period": o.MonitoringPeriod} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %s: must not be negative", name, d))
		}
	}
	if len(o.AlsoOffer) > 0 && o.MaxVersion != o.To {
		errs = append(errs, fmt.Errorf("--also-offer %v: set --max-version %s too: the rollout's target is --to", o.AlsoOffer, o.To))
	}
	if o.Zones < 0 || o.Zones > 26 {
		errs = append(errs, fmt.Errorf("--zones %d: want 0 to 26", o.Zones))
	}
	if o.ZonesInFlight < 0 {
		errs = append(errs, fmt.Errorf("--zones-in-flight %d: must not be negative", o.ZonesInFlight))
	}
	if o.ReleaseSoak < 0 {
		errs = append(errs, fmt.Errorf("--release-soak %s: must not be negative", o.ReleaseSoak))
	}
	seen := map[string]bool{}
	for _, f := range o.Faults {
		if !o.hasNode(f.Node) {
			errs = append(errs, fmt.Errorf("--fail %s: no such node (nodes are %s to %s)", f, NodeName(0), NodeName(o.Nodes-1)))
		}
		if seen[f.Node] {
			errs = append(errs, fmt.Errorf("--fail %s: one fault per node", f))
		}
		seen[f.Node] = true
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sim: invalid options: %w", err)
	}
	return nil
}

func (o *Options) hasNode(name string) bool {
	for i := range o.Nodes {
		if NodeName(i) == name {
			return true
		}
	}
	return false
}

// faultOf returns the step the node is told to fail, or "".
func (o *Options) faultOf(node string) Step {
	for _, f := range o.Faults {
		if f.Node == node {
			return f.Step
		}
	}
	return ""
}
