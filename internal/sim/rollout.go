package sim

import (
	"context"
	"fmt"
	"slices"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// sampleInterval is how often the rollout is observed.
const sampleInterval = 250 * time.Millisecond

// View shows a rollout while it runs.
type View interface {
	// Update shows one observation, elapsed after the release.
	Update(s Snapshot, elapsed time.Duration)
	// Done shows the summary.
	Done(s Summary)
}

// Rollout publishes the target version, observes the rollout until every node is updated, has
// failed as told, or waits behind a halted release, and returns its Summary. It fails only
// when the cluster cannot be observed or ctx ends; a rollout that broke an invariant or timed
// out returns a Summary whose OK is false.
func (c *Cluster) Rollout(ctx context.Context, view View) (Summary, error) {
	if !c.components.complete() {
		return Summary{}, fmt.Errorf("sim: a rollout needs the API server, the controller and the agents; this cluster runs only some")
	}
	start := time.Now()
	if err := c.Publish(); err != nil {
		return Summary{}, err
	}
	obs := c.NewObserver(start)
	timeout := c.Options.Timeout
	if timeout == 0 {
		timeout = c.estimate()
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(sampleInterval)
	defer tick.Stop()
	var last Snapshot
	timedOut := false
	for done := false; !done && !timedOut; {
		snap, err := obs.Sample(ctx, time.Now())
		if err != nil {
			c.log.Error(err, "Cannot observe the fleet; retrying")
		} else {
			last = snap
			c.playMonitorFaults(ctx, snap)
			view.Update(snap, snap.At.Sub(start))
			done = c.finished(snap)
		}
		if done {
			break
		}
		select {
		case <-ctx.Done():
			return Summary{}, fmt.Errorf("sim: rollout: %w", ctx.Err())
		case <-deadline.C:
			timedOut = true
		case <-tick.C:
		}
	}
	s := obs.Summary(last, timedOut)
	view.Done(s)
	return s, nil
}

// estimate is a generous bound of the rollout's time: the release soak, five times the
// theoretical minimum of a node's steps, plus two minutes.
func (c *Cluster) estimate() time.Duration {
	o := c.Options
	perNode := o.PrepareTime*2 + o.RebootTime + o.MonitoringPeriod + 20*time.Second
	return o.ReleaseSoak + time.Duration(waves(o.Nodes, o)*5)*perNode + 2*time.Minute
}

// finished reports whether the rollout is over: every node updated, failed as told, or
// waiting behind a halted release.
func (c *Cluster) finished(s Snapshot) bool {
	if len(s.Rows) < c.Options.Nodes-c.Deleted() {
		return false
	}
	for _, r := range s.Rows {
		expectedFailure := c.Options.faultOf(r.Name) != "" && r.Fail
		waitsBehindHalt := s.Halted && !r.InFlight
		if !r.Updated && !expectedFailure && !waitsBehindHalt {
			return false
		}
	}
	return true
}

// playMonitorFaults keeps the Node of a node told to fail its monitoring NotReady while it is
// in MonitoringUpdate, as a node whose update broke it would be.
func (c *Cluster) playMonitorFaults(ctx context.Context, s Snapshot) {
	for _, n := range c.nodes {
		if n.faultStep() != StepMonitor {
			continue
		}
		i := slices.IndexFunc(s.Rows, func(r NodeRow) bool { return r.Name == n.name })
		if i < 0 {
			continue
		}
		monitoring := s.Rows[i].State == v2.StateMonitoringUpdate || s.Rows[i].Desired == v2.StateMonitoringUpdate
		if monitoring != n.monitorDown {
			n.monitorDown = monitoring
			n.setNotReady(ctx, monitoring)
		}
	}
}
