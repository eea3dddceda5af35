package fleetview

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// Input is the world as one view sees it, read once.
type Input struct {
	// Namespace is Brupop's namespace (for the commands the views suggest).
	Namespace string
	// Shadows are the shadows of the namespace, in any order.
	Shadows []v2.BottlerocketShadow
	// Nodes are the cluster's Nodes.
	Nodes []corev1.Node
	// Policy is the FleetPolicy named "default", nil when there is none. Its status holds the
	// settings the controller applies (status.applied) and the node it runs on
	// (status.controllerNode): the views take them from there, never from the controller's
	// environment.
	Policy *v2.FleetPolicy
	// PodsReady is false for the nodes where a pod selected by the monitoring is not Ready;
	// absent means true.
	PodsReady map[string]bool
	// Now is the time the view is computed at.
	Now time.Time
}

// member is one shadow with what the views computed about it.
type member struct {
	node     string
	shadow   *v2.BottlerocketShadow
	k8sNode  *corev1.Node
	facts    statemachine.NodeFacts
	optedIn  bool
	decision statemachine.Decision
	// inFlight says the node holds an update slot after the controller's next pass.
	inFlight bool
	starting bool
	wait     *rollout.Wait
}

// analysis is one rollout.Decide pass over the Input plus the per-node decisions behind it.
type analysis struct {
	in Input
	// settings are the ones the controller applies; valid only when missing is "".
	settings rollout.Settings
	// missing says why the view has no settings to decide with ("" when it has): the
	// controller published none it can read, so nothing is decided and no node waits.
	missing string
	// policyError is the message of the FleetPolicy's Ready=False condition: the
	// controller's verdict on a spec it cannot apply.
	policyError string
	// pending says that the FleetPolicy changed since the controller last acted on it.
	pending string
	plan    rollout.Plan
	members []member
	byNode  map[string]*member
	nodes   map[string]*corev1.Node
}

// conditionReady is the FleetPolicy condition that says whether the controller could apply
// the spec (api/v2/fleetpolicy_types.go, FleetPolicyStatus.Conditions).
const conditionReady = "Ready"

// analyse takes the settings the controller published and runs its decision pass.
func analyse(in Input) *analysis {
	a := &analysis{in: in, byNode: map[string]*member{}, nodes: map[string]*corev1.Node{}}
	a.readPolicy()
	for i := range in.Nodes {
		a.nodes[in.Nodes[i].Name] = &in.Nodes[i]
	}
	fleet := rollout.Fleet{}
	if in.Policy != nil {
		st := &in.Policy.Status
		fleet.ControllerNode = st.ControllerNode
		fleet.Ledger, fleet.LastRunEnd = rollout.LedgerFrom(st)
		fleet.Releases = rollout.ReleasesFrom(st)
	}
	for i := range in.Shadows {
		s := &in.Shadows[i]
		if s.DeletionTimestamp != nil {
			continue
		}
		node, ok := v2.NodeNameFromShadow(s.Name)
		if !ok {
			node = s.Name
		}
		n := a.nodes[node]
		fm := rollout.MemberOf(s, n, in.PodsReady)
		m := member{node: node, shadow: s, k8sNode: n, facts: fm.Node, optedIn: fm.OptedIn}
		a.decide(&m)
		a.members = append(a.members, m)
		fleet.Members = append(fleet.Members, fm)
	}
	slices.SortFunc(a.members, func(x, y member) int { return cmp.Compare(x.node, y.node) })
	for i := range a.members {
		a.byNode[a.members[i].node] = &a.members[i]
	}
	if a.missing != "" {
		return a
	}
	a.plan = rollout.Decide(fleet, a.settings.Policy, in.Now)
	for i := range a.plan.Waiting {
		if m := a.byNode[a.plan.Waiting[i].Node]; m != nil {
			m.wait = &a.plan.Waiting[i]
		}
	}
	for _, c := range a.plan.Changes {
		if m := a.byNode[c.Node]; m != nil && c.Start {
			m.starting, m.inFlight = true, true
		}
	}
	return a
}

// readPolicy takes the settings, the verdict on the spec and its progress from the
// FleetPolicy's status.
func (a *analysis) readPolicy() {
	fp := a.in.Policy
	a.settings, a.missing = published(a.in.Namespace, fp)
	if c := invalid(fp); c != nil {
		a.policyError = c.Message
	}
	if fp != nil && a.missing == "" && fp.Status.ObservedGeneration < fp.Generation {
		a.pending = fmt.Sprintf("FleetPolicy %s/%s is at generation %d and the controller last acted on generation %d: this shows the settings in force until its next pass",
			fp.Namespace, fp.Name, fp.Generation, fp.Status.ObservedGeneration)
	}
}

// decide runs the state machine on m's shadow as the controller's next pass does.
func (a *analysis) decide(m *member) {
	s := m.shadow
	cfg := a.settings.Policy.StateMachine
	switch {
	case s.Status == nil:
	case a.missing != "":
		// Without the settings only the shadow tells: an update runs while either side is not
		// Idle.
		m.inFlight = s.Spec.State != v2.StateIdle || s.Status.CurrentState != v2.StateIdle
	default:
		m.decision = statemachine.Next(s, m.facts, cfg, a.in.Now)
		spec := &s.Spec
		if m.decision.Changed && !m.decision.Start {
			spec = &m.decision.Spec
		}
		m.inFlight = !m.decision.Start && statemachine.SpecNodeInFlight(spec, s.Status, m.facts, cfg, a.in.Now)
	}
}

// published returns the settings the controller applies, as the FleetPolicy fp of namespace
// (nil when there is none) publishes them in status.applied (rollout.AppliedSettings), or why
// there are none. A controller that reports the spec invalid and never applied a valid one
// starts nothing: its settings are then the defaults with Policy.Unresolved, whose deadlines
// are the ones it carries the nodes in flight through.
func published(namespace string, fp *v2.FleetPolicy) (rollout.Settings, string) {
	s, ok, err := rollout.AppliedSettings(fp)
	switch {
	case err != nil:
		return rollout.Settings{}, err.Error()
	case ok:
		return s, ""
	case fp == nil:
		return rollout.Settings{}, fmt.Sprintf("the controller has not published its settings yet (there is no FleetPolicy %s/%s)",
			namespace, v2.DefaultFleetPolicyName)
	case invalid(fp) != nil:
		s = rollout.Settings{Policy: rollout.DefaultPolicy()}
		s.Policy.Unresolved = true
		return s, ""
	}
	return rollout.Settings{}, fmt.Sprintf("the controller has not published its settings yet (FleetPolicy %s/%s has no status.applied)",
		fp.Namespace, fp.Name)
}

// invalid returns the FleetPolicy's Ready condition when it is False, nil otherwise.
func invalid(fp *v2.FleetPolicy) *metav1.Condition {
	if fp == nil {
		return nil
	}
	if c := meta.FindStatusCondition(fp.Status.Conditions, conditionReady); c != nil && c.Status == metav1.ConditionFalse {
		return c
	}
	return nil
}

// known reports whether the view knows the concurrency the controller applies: it published
// valid settings (a controller that never applied any starts nothing, whatever its limit).
func (a *analysis) known() bool {
	return a.missing == "" && !a.settings.Policy.Unresolved
}

// targetVersion returns the version a shadow is updating or would update to under cfg (capped
// by the FleetPolicy's maxVersion).
func targetVersion(s *v2.BottlerocketShadow, cfg statemachine.Config) string {
	if s.Spec.Version != nil && s.Spec.State != v2.StateIdle {
		return *s.Spec.Version
	}
	return cfg.Target(s.Status)
}

// crashes returns the node's consecutive failures: the agent's and the controller's, summed in
// an int64, where no uint32 plus int32 overflows.
func crashes(s *v2.BottlerocketShadow) int64 {
	n := int64(statemachine.RecordFromAnnotations(s.Annotations).Count)
	if s.Status != nil {
		n += int64(s.Status.CrashCount)
	}
	return n
}
