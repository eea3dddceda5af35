package fleetview

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// DefaultMaxConcurrentUpdate is the Helm chart's MAX_CONCURRENT_UPDATE, used when the
// controller's environment cannot be read.
const DefaultMaxConcurrentUpdate = "1"

// Controller is what the views know of the controller's configuration.
type Controller struct {
	// Environment holds the controller's MAX_CONCURRENT_UPDATE, SCHEDULER_CRON_EXPRESSION and
	// UPDATE_WINDOW_START/STOP, the defaults of the FleetPolicy. An empty MaxConcurrentUpdate
	// takes DefaultMaxConcurrentUpdate.
	Environment rollout.Environment
	// TimeZone is the controller's SCHEDULER_TIME_ZONE ("" for UTC).
	TimeZone string
	// NodeName is the node the controller runs on (it updates last), "" when unknown.
	NodeName string
	// Source says where this configuration was read, for people ("Deployment ns/name",
	// "upstream defaults").
	Source string
}

// Input is the world as one view sees it, read once.
type Input struct {
	// Namespace is Brupop's namespace (for the commands the views suggest).
	Namespace string
	// Shadows are the shadows of the namespace, in any order.
	Shadows []v2.BottlerocketShadow
	// Nodes are the cluster's Nodes.
	Nodes []corev1.Node
	// Policy is the FleetPolicy named "default", nil when there is none.
	Policy *v2.FleetPolicy
	// Controller is the controller's configuration.
	Controller Controller
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
	in          Input
	settings    rollout.Settings
	settingsErr error
	plan        rollout.Plan
	members     []member
	byNode      map[string]*member
	nodes       map[string]*corev1.Node
}

// analyse resolves the settings as the controller does and runs the decision pass.
func analyse(in Input) *analysis {
	a := &analysis{in: in, byNode: map[string]*member{}, nodes: map[string]*corev1.Node{}}
	a.settings, a.settingsErr = Settings(in.Policy, in.Controller)
	for i := range in.Nodes {
		a.nodes[in.Nodes[i].Name] = &in.Nodes[i]
	}
	fleet := rollout.Fleet{ControllerNode: in.Controller.NodeName}
	fleet.Ledger, fleet.LastRunEnd = rollout.LedgerFrom(in.Policy)
	fleet.Releases = rollout.ReleasesFrom(in.Policy)
	cfg := a.settings.Policy.StateMachine
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
		if s.Status != nil {
			m.decision = statemachine.Next(s, m.facts, cfg, in.Now)
			spec := &s.Spec
			if m.decision.Changed && !m.decision.Start {
				spec = &m.decision.Spec
			}
			m.inFlight = !m.decision.Start && statemachine.SpecNodeInFlight(spec, s.Status, m.facts, cfg, in.Now)
		}
		a.members = append(a.members, m)
		fleet.Members = append(fleet.Members, fm)
	}
	slices.SortFunc(a.members, func(x, y member) int { return cmp.Compare(x.node, y.node) })
	for i := range a.members {
		a.byNode[a.members[i].node] = &a.members[i]
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

// Settings resolves the FleetPolicy fp (nil when absent) against the controller's configuration
// exactly as the controller does: unset fields take its environment, and a schedule that names
// no time zone is evaluated in the controller's.
func Settings(fp *v2.FleetPolicy, c Controller) (rollout.Settings, error) {
	env := c.Environment
	if env.MaxConcurrentUpdate == "" {
		env.MaxConcurrentUpdate = DefaultMaxConcurrentUpdate
	}
	if c.TimeZone != "" && c.TimeZone != "UTC" && (fp == nil || fp.Spec.Schedule == nil || fp.Spec.Schedule.TimeZone == "") {
		withZone := &v2.FleetPolicy{}
		if fp != nil {
			withZone = fp.DeepCopy()
		}
		if withZone.Spec.Schedule == nil {
			withZone.Spec.Schedule = &v2.FleetPolicySchedule{}
		}
		withZone.Spec.Schedule.TimeZone = c.TimeZone
		fp = withZone
	}
	s, err := rollout.SettingsFrom(fp, env)
	if err != nil {
		return s, fmt.Errorf("fleetview: resolve the fleet policy: %w", err)
	}
	return s, nil
}

// targetVersion returns the version a shadow is updating or would update to under cfg (capped
// by the FleetPolicy's maxVersion).
func targetVersion(s *v2.BottlerocketShadow, cfg statemachine.Config) string {
	if s.Spec.Version != nil && s.Spec.State != v2.StateIdle {
		return *s.Spec.Version
	}
	return cfg.Target(s.Status)
}

// crashes returns the node's consecutive failures: the agent's and the controller's.
func crashes(s *v2.BottlerocketShadow) int32 {
	n := statemachine.RecordFromAnnotations(s.Annotations).Count
	if s.Status != nil {
		n += s.Status.CrashCount
	}
	return n
}
