package rollout

import (
	"cmp"
	"slices"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
	"github.com/bottlerocket-os/brupop-go/internal/window"
)

// candidate is a node that may start an update in this pass.
type candidate struct {
	shadow, node, version string
	member                *Member
	decision              statemachine.Decision
	crashes               int64
	own                   bool
}

// pass holds the state of one Decide call.
type pass struct {
	fleet  Fleet
	policy Policy
	now    time.Time
	plan   Plan

	candidates []candidate
	optedIn    int
	wake       time.Time
	halted     map[string]bool
	nextOpen   time.Time
	// zones are the zones with nodes in flight, when Policy.Zones is set.
	zones map[string]bool
}

// Decide makes one decision pass over the fleet at now. It never modifies fleet.
func Decide(fleet Fleet, policy Policy, now time.Time) Plan {
	p := &pass{fleet: fleet, policy: policy, now: now}
	p.plan.Changes = make([]Change, 0, 16)
	p.candidates = make([]candidate, 0, len(fleet.Members))
	p.evaluate()
	p.halt()
	p.openWindow()
	p.start()
	p.finish()
	return p.plan
}

// evaluate runs the state machine on every member: nodes in flight progress, failures are
// collected, and nodes that could start become candidates.
func (p *pass) evaluate() {
	cfg := p.policy.StateMachine
	for i := range p.fleet.Members {
		m := &p.fleet.Members[i]
		if m.OptedIn {
			p.optedIn++
		}
		p.seeRelease(m.Shadow.Status)
		d := statemachine.Next(m.Shadow, m.Node, cfg, p.now)
		node := nodeName(m.Shadow.Name)
		if d.Failure != nil {
			p.plan.Failures = append(p.plan.Failures, NodeFailure{Node: node, Failure: *d.Failure})
		}
		if d.Start {
			p.candidates = append(p.candidates, candidate{shadow: m.Shadow.Name, node: node, version: *d.Spec.Version,
				member: m, decision: d, crashes: failureCount(m.Shadow), own: node == p.fleet.ControllerNode})
			continue
		}
		p.addWake(d.Wake)
		spec := &m.Shadow.Spec
		if d.Changed {
			p.plan.Changes = append(p.plan.Changes, Change{Shadow: m.Shadow.Name, Node: node, Decision: d})
			spec = &d.Spec
		}
		if statemachine.SpecNodeInFlight(spec, m.Shadow.Status, m.Node, cfg, p.now) {
			p.plan.InFlight++
			p.zoneInFlight(m)
		}
		if d.Outcome == statemachine.OutcomeBackoff {
			p.plan.Waiting = append(p.plan.Waiting, Wait{Node: node, Version: cfg.Target(m.Shadow.Status), Reason: WaitBackoff, Until: d.Wake})
		}
	}
}

// openWindow decides whether the schedule lets nodes start now.
func (p *pass) openWindow() {
	s := p.policy.Schedule
	p.plan.LastRunEnd = p.fleet.LastRunEnd
	if p.plan.LastRunEnd.IsZero() {
		p.plan.LastRunEnd = p.now
	}
	p.plan.WindowOpen = s == nil || s.Admits(p.now, p.plan.LastRunEnd)
	if !p.plan.WindowOpen {
		if next, ok := s.NextAdmit(p.now, p.plan.LastRunEnd); ok {
			p.nextOpen = next
		}
	}
}

// start fills the free slots with candidates in upstream's order; the others wait.
func (p *pass) start() {
	slices.SortFunc(p.candidates, func(a, b candidate) int {
		if a.own != b.own {
			if a.own {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.crashes, b.crashes), cmp.Compare(a.node, b.node))
	})
	p.plan.Limit = p.policy.Concurrency.Limit(p.optedIn)
	p.plan.Waiting = slices.Grow(p.plan.Waiting, len(p.candidates))
	for i := range p.candidates {
		c := &p.candidates[i]
		reason, until := p.gate(c)
		if reason == "" && p.zoneFull(c.member) {
			reason = WaitZones
		}
		if reason == "" && p.plan.InFlight >= p.plan.Limit {
			reason = WaitConcurrency
			if c.own {
				reason = WaitOwnNodeLast
			}
		}
		if reason != "" {
			p.plan.Waiting = append(p.plan.Waiting, Wait{Node: c.node, Version: c.version, Reason: reason, Until: until})
			continue
		}
		p.plan.Changes = append(p.plan.Changes, Change{Shadow: c.shadow, Node: c.node, Decision: c.decision})
		p.plan.InFlight++
		p.plan.Started++
		p.zoneInFlight(c.member)
	}
}

// gate returns why a candidate may not start now regardless of free slots, and until when.
func (p *pass) gate(c *candidate) (WaitReason, time.Time) {
	switch {
	case !c.member.OptedIn:
		return WaitNotOptedIn, time.Time{}
	case !c.member.Node.Ready:
		return WaitNodeNotReady, time.Time{}
	case p.halted[c.version]:
		return WaitHalted, time.Time{}
	case p.soaking(c):
		return WaitSoaking, p.plan.Releases[c.version].Add(p.policy.ReleaseSoak)
	case p.policy.Unresolved:
		return WaitUnresolved, time.Time{}
	case p.policy.Paused:
		return WaitPaused, time.Time{}
	case !p.plan.WindowOpen:
		return WaitWindowClosed, p.nextOpen
	}
	return "", time.Time{}
}

// finish ends a Oneshot run when nothing is left to start and computes the requeue.
func (p *pass) finish() {
	s := p.policy.Schedule
	if s != nil && s.Kind() == window.Oneshot && p.plan.WindowOpen && !p.pending() {
		p.plan.LastRunEnd = p.now
	}
	for _, w := range p.plan.Waiting {
		switch w.Reason {
		case WaitWindowClosed:
			p.addWake(p.nextOpen)
		case WaitSoaking:
			p.addWake(w.Until)
		}
	}
	if !p.wake.IsZero() {
		p.plan.RequeueAfter = max(p.wake.Sub(p.now), time.Second)
	}
}

// pending reports whether a node still waits to start for a reason a Oneshot run outlives.
func (p *pass) pending() bool {
	for _, w := range p.plan.Waiting {
		switch w.Reason {
		case WaitConcurrency, WaitOwnNodeLast, WaitPaused, WaitUnresolved:
			return true
		}
	}
	return false
}

// zoneInFlight records that m's zone has a node in flight.
func (p *pass) zoneInFlight(m *Member) {
	if z := p.policy.Zones; z != nil {
		if p.zones == nil {
			p.zones = map[string]bool{}
		}
		p.zones[m.NodeLabels[z.Label]] = true
	}
}

// zoneFull reports whether m may not start because its zone has no node in flight and as many
// other zones as allowed have.
func (p *pass) zoneFull(m *Member) bool {
	z := p.policy.Zones
	return z != nil && !p.zones[m.NodeLabels[z.Label]] && len(p.zones) >= z.MaxInFlight
}

// seeRelease records the version st's host offers as an update in Plan.Releases, keeping the
// time it was first seen.
func (p *pass) seeRelease(st *v2.BottlerocketShadowStatus) {
	if st == nil || st.TargetVersion == "" || st.TargetVersion == st.CurrentVersion {
		return
	}
	if _, ok := p.plan.Releases[st.TargetVersion]; ok {
		return
	}
	seen, ok := p.fleet.Releases[st.TargetVersion]
	if !ok || seen.After(p.now) {
		seen = p.now
	}
	if p.plan.Releases == nil {
		p.plan.Releases = map[string]time.Time{}
	}
	p.plan.Releases[st.TargetVersion] = seen.Truncate(time.Second)
}

// soaking reports whether c waits for its version's release soak: the version is not the one
// maxVersion names (an operator chose that one) and was first seen less than ReleaseSoak ago.
func (p *pass) soaking(c *candidate) bool {
	if p.policy.ReleaseSoak <= 0 || p.policy.StateMachine.IsMaxVersion(c.version) {
		return false
	}
	return p.now.Before(p.plan.Releases[c.version].Add(p.policy.ReleaseSoak))
}

func (p *pass) addWake(t time.Time) {
	if !t.IsZero() && (p.wake.IsZero() || t.Before(p.wake)) {
		p.wake = t
	}
}

// failureCount is a node's failure count for upstream's order: the agent's crash_count plus the
// failures the controller detected itself (statemachine.Record), such as failed monitoring,
// which the agent does not count. The sum is an int64: no uint32 plus int32 overflows it.
func failureCount(s *v2.BottlerocketShadow) int64 {
	return int64(s.Status.CrashCount) + int64(statemachine.RecordFromAnnotations(s.Annotations).Count)
}

// nodeName returns the node of a shadow name (the name itself if it is not brs-<node>).
func nodeName(shadow string) string {
	if n, ok := v2.NodeNameFromShadow(shadow); ok {
		return n
	}
	return shadow
}
