package sim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// unschedulableGrace is how long a node may stay cordoned after its update ended (the agent
// uncordons it in its last step) before the invariant counts it as broken.
const unschedulableGrace = 10 * time.Second

// pdbGrace is how long a PodDisruptionBudget may have fewer healthy pods than it requires
// before the invariant counts it as broken: its status lags the pods by a moment.
const pdbGrace = 5 * time.Second

// NodeRow is what the live table shows about one node.
type NodeRow struct {
	Name string `json:"name"`
	// State is the state the agent reports; Desired is the controller's spec.
	State, Desired v2.State
	// Version runs; Target is the version the node is updating to, or Version.
	Version, Target string
	// Since is when the node entered State (as the simulation saw it); DesiredSince is when
	// the controller set Desired (spec.state_transition_timestamp, to the second).
	Since, DesiredSince time.Time

	CrashCount uint32
	// Reason is why the node is not plainly progressing: cordoned, rebooting, a failure.
	Reason                  string
	Ready, Unschedulable    bool
	InFlight, Updated, Fail bool
}

// Snapshot is one observation of the fleet.
type Snapshot struct {
	At   time.Time
	Rows []NodeRow
	// InFlight, Unschedulable, Updated and Failed count the rows.
	InFlight, Unschedulable, Updated, Failed int
	// Halted reports that the target version's rollout halted (its failure budget is spent).
	Halted    bool
	Evictions int
}

// Observer samples the fleet, keeps the per-node history and checks the running invariants
// (never more nodes in flight than allowed, no node unschedulable that is not being updated,
// no PodDisruptionBudget of the workloads below its healthy pods). It is not safe for
// concurrent use.
type Observer struct {
	c     *Cluster
	start time.Time

	since      map[string]time.Time // when each node entered its current row state
	prevState  map[string]v2.State
	began      map[string]time.Time // when each node's update started
	took       map[string]time.Duration
	cordoned   map[string]time.Time // since when a node not in flight is unschedulable
	pods       map[types.UID]bool   // demo pods seen and not yet gone
	evictions  int
	pdbLow     map[string]time.Time // since when a PDB has fewer healthy pods than it requires
	maxFlight  int
	maxUnsched int
	// unresolvable says the last sample's published settings did not resolve (logged once).
	unresolvable bool
	// Breaches of the running invariants.
	flightBreaches, unschedBreaches, pdbBreaches []string
}

// NewObserver returns an Observer of the cluster; elapsed times count from start.
func (c *Cluster) NewObserver(start time.Time) *Observer {
	return &Observer{
		c: c, start: start,
		since: map[string]time.Time{}, prevState: map[string]v2.State{}, began: map[string]time.Time{},
		took: map[string]time.Duration{}, cordoned: map[string]time.Time{}, pods: map[types.UID]bool{},
		pdbLow: map[string]time.Time{},
	}
}

// Sample reads shadows, Nodes, workload pods and PDBs, and the FleetPolicy once, records what it
// saw and checks the running invariants at now.
func (o *Observer) Sample(ctx context.Context, now time.Time) (Snapshot, error) {
	var shadows v2.BottlerocketShadowList
	var nodes corev1.NodeList
	var pods corev1.PodList
	var pdbs policyv1.PodDisruptionBudgetList
	var fp v2.FleetPolicy
	cl := o.c.client
	if err := cl.List(ctx, &shadows, client.InNamespace(Namespace)); err != nil {
		return Snapshot{}, fmt.Errorf("sim: list shadows: %w", err)
	}
	if err := cl.List(ctx, &nodes); err != nil {
		return Snapshot{}, fmt.Errorf("sim: list nodes: %w", err)
	}
	if err := cl.List(ctx, &pods, client.InNamespace(WorkloadNamespace)); err != nil {
		return Snapshot{}, fmt.Errorf("sim: list pods: %w", err)
	}
	if err := cl.List(ctx, &pdbs, client.InNamespace(WorkloadNamespace)); err != nil {
		return Snapshot{}, fmt.Errorf("sim: list PDBs: %w", err)
	}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: v2.DefaultFleetPolicyName}, &fp); err != nil {
		return Snapshot{}, fmt.Errorf("sim: get fleet policy: %w", err)
	}
	o.countEvictions(pods.Items)
	byNode := map[string]*v2.BottlerocketShadow{}
	for i := range shadows.Items {
		if name, ok := v2.NodeNameFromShadow(shadows.Items[i].Name); ok {
			byNode[name] = &shadows.Items[i]
		}
	}
	target := o.c.Target()
	cfg, err := rowConfig(&fp)
	if err != nil && !o.unresolvable {
		o.c.log.Error(err, "The controller's published settings do not resolve; rows judge the shadows alone")
	}
	o.unresolvable = err != nil
	snap := Snapshot{At: now, Halted: halted(&fp, target)}
	failed := failedNodes(&fp, target)
	for i := range nodes.Items {
		row := o.row(&nodes.Items[i], byNode[nodes.Items[i].Name], failed[nodes.Items[i].Name], cfg, now)
		snap.Rows = append(snap.Rows, row)
		snap.InFlight += b2i(row.InFlight)
		snap.Unschedulable += b2i(row.Unschedulable)
		snap.Updated += b2i(row.Updated)
		snap.Failed += b2i(row.Fail)
	}
	slices.SortFunc(snap.Rows, func(a, b NodeRow) int { return strings.Compare(a.Name, b.Name) })
	snap.Evictions = o.evictions
	o.check(&snap, now)
	o.checkPDBs(pdbs.Items, now)
	return snap, nil
}

// rowConfig is what rows judge a node with: the state machine settings the controller
// published in the FleetPolicy's status (rollout.AppliedSettings), so that a row's target is
// capped at the maxVersion it applies and a node is in flight by its deadlines. Before its
// first pass there are none: the zero Config leaves the target uncapped and counts a node in
// flight while its shadow is not Idle on both sides.
func rowConfig(fp *v2.FleetPolicy) (statemachine.Config, error) {
	s, ok, err := rollout.AppliedSettings(fp)
	if !ok || err != nil {
		return statemachine.Config{}, err
	}
	return s.Policy.StateMachine, nil
}

// row builds a node's row and updates its history. A node has failed when its last attempt
// failed (crash_count) or the controller recorded a release failure of the target for it (a
// failed monitoring leaves crash_count alone).
func (o *Observer) row(node *corev1.Node, brs *v2.BottlerocketShadow, releaseFailed bool, cfg statemachine.Config, now time.Time) NodeRow {
	r := shadowRow(brs, statemachine.FactsOf(node, nil), cfg, now)
	r.Name, r.Ready, r.Unschedulable = node.Name, nodeReady(node), node.Spec.Unschedulable
	to := o.c.Target()
	r.Fail = !r.InFlight && (releaseFailed || r.CrashCount > 0 && r.Version != to)
	r.Updated = !r.InFlight && !r.Fail && r.State == v2.StateIdle && r.Version == to
	switch {
	case !r.Ready:
		r.Reason = "Node NotReady"
	case r.Unschedulable && r.InFlight:
		r.Reason = "cordoned"
	}
	o.track(&r, now)
	return r
}

// shadowRow is what a node's shadow says; "?" versions until its agent reported. A node is in
// flight as the controller counts it: its update runs, or it was reset while its Node is still
// cordoned by Brupop or NotReady.
func shadowRow(brs *v2.BottlerocketShadow, node statemachine.NodeFacts, cfg statemachine.Config, now time.Time) NodeRow {
	r := NodeRow{State: v2.StateIdle, Desired: v2.StateIdle, Version: "?", Target: "?"}
	if brs == nil {
		return r
	}
	r.Desired = brs.Spec.State
	if t := brs.Spec.StateTransitionTimestamp; t != nil {
		r.DesiredSince = t.Time
	}
	r.InFlight = statemachine.NodeInFlight(brs, node, cfg, now)
	if st := brs.Status; st != nil {
		r.State, r.Version, r.Target, r.CrashCount = st.CurrentState, st.CurrentVersion, cfg.Target(st), st.CrashCount
		r.Reason = st.FailureReason
	}
	if brs.Spec.Version != nil && r.InFlight {
		r.Target = *brs.Spec.Version
	}
	return r
}

// track records when the node entered its state and how long its update took.
func (o *Observer) track(r *NodeRow, now time.Time) {
	if prev, ok := o.prevState[r.Name]; !ok || prev != r.State {
		o.since[r.Name] = now
		o.prevState[r.Name] = r.State
	}
	r.Since = o.since[r.Name]
	if _, ok := o.began[r.Name]; r.InFlight && !ok {
		o.began[r.Name] = now
	}
	if began, ok := o.began[r.Name]; ok && r.Updated {
		if _, done := o.took[r.Name]; !done {
			o.took[r.Name] = now.Sub(began)
		}
	}
}

// countEvictions counts the demo pods that went away: every one was evicted by a drain.
func (o *Observer) countEvictions(pods []corev1.Pod) {
	alive := map[types.UID]bool{}
	for i := range pods {
		if pods[i].DeletionTimestamp == nil {
			alive[pods[i].UID] = true
		}
	}
	for uid := range o.pods {
		if !alive[uid] {
			o.evictions++
			delete(o.pods, uid)
		}
	}
	for uid := range alive {
		o.pods[uid] = true
	}
}

// check records the running invariants: never more in flight than allowed, and no node
// unschedulable that is not being updated (beyond a grace).
func (o *Observer) check(snap *Snapshot, now time.Time) {
	o.maxFlight = max(o.maxFlight, snap.InFlight)
	o.maxUnsched = max(o.maxUnsched, snap.Unschedulable)
	if snap.InFlight > o.c.Options.MaxConcurrent {
		o.violate(&o.flightBreaches, now, fmt.Sprintf("%d nodes in flight, more than %d allowed", snap.InFlight, o.c.Options.MaxConcurrent))
	}
	for _, r := range snap.Rows {
		if !r.Unschedulable || r.InFlight {
			delete(o.cordoned, r.Name)
			continue
		}
		t, ok := o.cordoned[r.Name]
		if !ok {
			o.cordoned[r.Name] = now
		} else if now.Sub(t) > unschedulableGrace {
			o.violate(&o.unschedBreaches, now, fmt.Sprintf("%s unschedulable for %s while not being updated", r.Name, now.Sub(t).Round(time.Second)))
			o.cordoned[r.Name] = now // once per grace period, not every sample
		}
	}
}

// checkPDBs records the PodDisruptionBudgets whose healthy pods stayed below what they require
// for longer than pdbGrace: no drain may take more pods down than a PDB allows.
func (o *Observer) checkPDBs(pdbs []policyv1.PodDisruptionBudget, now time.Time) {
	for i := range pdbs {
		p := &pdbs[i]
		st := p.Status
		if st.ObservedGeneration < p.Generation || st.CurrentHealthy >= st.DesiredHealthy {
			delete(o.pdbLow, p.Name)
			continue
		}
		t, ok := o.pdbLow[p.Name]
		if !ok {
			o.pdbLow[p.Name] = now
		} else if now.Sub(t) > pdbGrace {
			o.violate(&o.pdbBreaches, now, fmt.Sprintf("PDB %s had %d healthy pods, fewer than the %d it requires, for %s",
				p.Name, st.CurrentHealthy, st.DesiredHealthy, now.Sub(t).Round(time.Second)))
			o.pdbLow[p.Name] = now // once per grace period, not every sample
		}
	}
}

func (o *Observer) violate(to *[]string, now time.Time, msg string) {
	*to = append(*to, fmt.Sprintf("%s after %s", msg, now.Sub(o.start).Round(100*time.Millisecond)))
}

// failedNodes returns the nodes the FleetPolicy's ledger lists as failing version since the
// last resume of that version.
func failedNodes(fp *v2.FleetPolicy, version string) map[string]bool {
	out := map[string]bool{}
	for _, v := range fp.Status.Versions {
		if v.Version != version {
			continue
		}
		for _, f := range v.Failures {
			if v.ResumedAt == nil || f.Time.After(v.ResumedAt.Time) {
				out[f.Node] = true
			}
		}
	}
	return out
}

// halted reports whether the FleetPolicy's status says version's rollout halted.
func halted(fp *v2.FleetPolicy, version string) bool {
	for _, v := range fp.Status.Versions {
		if v.Version == version && v.Halted {
			return true
		}
	}
	return false
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
