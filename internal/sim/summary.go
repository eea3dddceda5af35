package sim

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Invariant is one property the rollout must keep, and whether it did.
type Invariant struct {
	Name string `json:"name"`
	Held bool   `json:"held"`
	// Breaches say when and how it broke.
	Breaches []string `json:"breaches,omitempty"`
}

// Summary is the outcome of a rollout.
type Summary struct {
	Nodes         int    `json:"nodes"`
	MaxConcurrent int    `json:"maxConcurrent"`
	From          string `json:"from"`
	To            string `json:"to"`
	// Updated nodes run To and are Idle; Failed ones failed an attempt and are not in flight;
	// NotUpdated are the others (waiting behind a halt, or still in flight at a timeout).
	Updated    int `json:"updated"`
	Failed     int `json:"failed"`
	NotUpdated int `json:"notUpdated"`
	// FailedNodes lists the failed nodes; ExpectedFailures those the options told to fail.
	FailedNodes      []string `json:"failedNodes,omitempty"`
	ExpectedFailures []string `json:"expectedFailures,omitempty"`
	// UnexpectedFailures lists the failed nodes nobody told to fail.
	UnexpectedFailures []string `json:"unexpectedFailures,omitempty"`
	Halted             bool     `json:"halted"`
	TimedOut           bool     `json:"timedOut"`
	// RolloutSeconds is from the release to the end of the rollout.
	RolloutSeconds float64 `json:"rolloutSeconds"`
	// PerNodeSeconds is the mean time one node took, from its start to Idle on To.
	PerNodeSeconds float64 `json:"perNodeSeconds"`
	// Started counts the nodes whose update started.
	Started int `json:"started"`
	// Waves is the least number of rounds the started nodes can update in: ceil(Started /
	// MaxConcurrent), or with zones the rounds of ZonesInFlight zones times the waves of each.
	Waves int `json:"waves"`
	// Zones and ZonesInFlight are the options', when the FleetPolicy limits zones.
	Zones         int `json:"zones,omitempty"`
	ZonesInFlight int `json:"zonesInFlight,omitempty"`
	// SoakSeconds is the FleetPolicy's release soak.
	SoakSeconds float64 `json:"soakSeconds,omitempty"`
	// MinimumSeconds is SoakSeconds + Waves x PerNodeSeconds; Ratio is RolloutSeconds /
	// MinimumSeconds.
	MinimumSeconds float64 `json:"minimumSeconds"`
	Ratio          float64 `json:"ratio"`
	// MaxInFlight and MaxUnschedulable are the highest counts seen at any moment.
	MaxInFlight      int `json:"maxInFlight"`
	MaxUnschedulable int `json:"maxUnschedulable"`
	// Evictions counts the workload pods drains evicted.
	Evictions  int         `json:"evictions"`
	Invariants []Invariant `json:"invariants"`
	// OK is true when every invariant held, no node failed unexpectedly and the rollout ended.
	OK bool `json:"ok"`
}

// waves is the least number of rounds in which n nodes can update under o: ceil(n /
// concurrency), or, when the FleetPolicy lets only ZonesInFlight of Zones zones update at once,
// ceil(zones / ZonesInFlight) rounds of ceil(nodes of those zones / concurrency) waves each
// (zones of even size, as the simulation labels them).
func waves(n int, o Options) int {
	ceilDiv := func(a, b int) int { return (a + b - 1) / b }
	zones := min(o.Zones, n)
	if n == 0 || o.ZonesInFlight <= 0 || zones <= o.ZonesInFlight {
		return ceilDiv(n, o.MaxConcurrent)
	}
	return ceilDiv(zones, o.ZonesInFlight) * ceilDiv(ceilDiv(n, zones)*o.ZonesInFlight, o.MaxConcurrent)
}

// Summary computes the Summary from the history and the last observation.
func (o *Observer) Summary(last Snapshot, timedOut bool) Summary {
	opts := o.c.Options
	to := o.c.Target()
	s := Summary{
		Nodes: opts.Nodes, MaxConcurrent: opts.MaxConcurrent, From: opts.From, To: to,
		Halted: last.Halted, TimedOut: timedOut,
		RolloutSeconds: seconds(last.At.Sub(o.start)), MaxInFlight: o.maxFlight, MaxUnschedulable: o.maxUnsched,
		Evictions: o.evictions, Started: len(o.began), SoakSeconds: seconds(opts.ReleaseSoak),
	}
	if opts.ZonesInFlight > 0 && opts.Zones > 0 {
		s.Zones, s.ZonesInFlight = opts.Zones, opts.ZonesInFlight
	}
	for _, f := range opts.Faults {
		s.ExpectedFailures = append(s.ExpectedFailures, f.Node)
	}
	var endBreaches []string
	for _, r := range last.Rows {
		expected := opts.faultOf(r.Name) != ""
		switch {
		case r.Updated:
			s.Updated++
		case r.Fail:
			s.Failed++
			s.FailedNodes = append(s.FailedNodes, r.Name)
			if !expected {
				s.UnexpectedFailures = append(s.UnexpectedFailures, r.Name)
			}
		default:
			s.NotUpdated++
		}
		endBreaches = append(endBreaches, endBreach(r, expected, last.Halted && len(opts.Faults) > 0, to)...)
	}
	if len(o.took) > 0 {
		var total time.Duration
		for _, d := range o.took {
			total += d
		}
		s.PerNodeSeconds = seconds(total / time.Duration(len(o.took)))
		// Count the nodes that went: behind a halt, the others never had to.
		s.Waves = waves(len(o.began), opts)
		s.MinimumSeconds = seconds(opts.ReleaseSoak) + float64(s.Waves)*s.PerNodeSeconds
		s.Ratio = math.Round(s.RolloutSeconds/s.MinimumSeconds*100) / 100
	}
	s.Invariants = append(o.Invariants(), Invariant{
		Name: "at the end every node Idle and schedulable, on " + to + " unless told to fail",
		Held: len(endBreaches) == 0, Breaches: endBreaches,
	})
	s.OK = !timedOut && len(s.UnexpectedFailures) == 0
	for _, inv := range s.Invariants {
		s.OK = s.OK && inv.Held
	}
	return s
}

// endBreach says what is wrong with a node at the end: every node must be schedulable and not
// in flight, and run To unless it was told to fail or waits behind a halt such a failure
// caused.
func endBreach(r NodeRow, expected, expectedHalt bool, to string) []string {
	var out []string
	if r.Unschedulable {
		out = append(out, r.Name+" is unschedulable at the end")
	}
	if r.InFlight {
		out = append(out, fmt.Sprintf("%s is still in flight (%s)", r.Name, r.State))
	} else if !r.Updated && !expected && !expectedHalt {
		out = append(out, fmt.Sprintf("%s ended %s on %s, not Idle on %s", r.Name, r.State, r.Version, to))
	}
	return out
}

// Invariants returns the invariants checked while the rollout runs, with their breaches so far.
func (o *Observer) Invariants() []Invariant {
	mk := func(name string, breaches []string) Invariant {
		return Invariant{Name: name, Held: len(breaches) == 0, Breaches: slices.Clone(breaches)}
	}
	return []Invariant{
		mk(fmt.Sprintf("never more than %d nodes in flight", o.c.Options.MaxConcurrent), o.flightBreaches),
		mk(fmt.Sprintf("no node unschedulable unless being updated (grace %s)", unschedulableGrace), o.unschedBreaches),
		mk(fmt.Sprintf("no PodDisruptionBudget below its required healthy pods (grace %s)", pdbGrace), o.pdbBreaches),
	}
}

func seconds(d time.Duration) float64 { return math.Round(d.Seconds()*10) / 10 }
