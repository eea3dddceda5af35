package fleetview

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// Verdict is the short answer of `kubectl brupop why NODE`.
type Verdict string

// The verdicts.
const (
	// VerdictNotManaged: Brupop does not manage the node (no opt-in label, or no shadow yet).
	VerdictNotManaged Verdict = "NotManaged"
	// VerdictUpToDate: the node runs the newest version it knows of.
	VerdictUpToDate Verdict = "UpToDate"
	// VerdictUpdating: the node is in flight.
	VerdictUpdating Verdict = "Updating"
	// VerdictStarting: the controller starts the node's update on its next pass.
	VerdictStarting Verdict = "Starting"
	// VerdictWaiting: the node has an update that does not start now.
	VerdictWaiting Verdict = "Waiting"
	// VerdictUnknown: the node has an update, and what the controller decides about it depends
	// on settings it has not published; the reason is ReasonUnpublished.
	VerdictUnknown Verdict = "Unknown"
)

// Explanation is the view of `kubectl brupop why NODE`.
type Explanation struct {
	Node    string  `json:"node"`
	Verdict Verdict `json:"verdict"`
	// Reason is the rollout.WaitReason of a waiting node, else the statemachine.Outcome.
	Reason string `json:"reason,omitempty"`
	// Summary answers the question in one sentence.
	Summary string `json:"summary"`
	// Details are the facts behind it, one per line.
	Details []string `json:"details,omitempty"`
	// Until is when the wait or the current state ends by itself; zero when unknown.
	Until time.Time `json:"until,omitzero"`
	// Commands are what an operator may run about it.
	Commands []string `json:"commands,omitempty"`
}

// Why explains why the node named node is or is not updating at in.Now. node may leave out the
// DNS suffix the status table leaves out ("ip-10-0-1-23" for
// "ip-10-0-1-23.us-west-2.compute.internal") when that names one node. It fails only when the
// cluster knows neither a Node nor a shadow of that name.
func Why(in Input, node string) (Explanation, error) {
	a := analyse(in)
	node = a.fullName(node)
	m := a.byNode[node]
	if m == nil {
		return a.unmanaged(node)
	}
	e := Explanation{Node: node, Reason: string(m.decision.Outcome)}
	s := m.shadow
	switch {
	case s.Status == nil:
		e.Verdict, e.Reason = VerdictNotManaged, string(statemachine.OutcomeNoStatus)
		e.Summary = "Its agent has not reported its status yet."
		e.Details = []string{fmt.Sprintf("The shadow %s/%s has no status: is the agent pod running on the node?", in.Namespace, s.Name)}
	case a.missing != "":
		a.explainUnpublished(m, &e)
	case m.wait != nil:
		a.explainWait(m, &e)
	case m.starting:
		e.Verdict = VerdictStarting
		e.Summary = fmt.Sprintf("It may update now: the controller starts its update to %s on its next pass.", targetVersion(s, a.settings.Policy.StateMachine))
		e.Details = []string{a.slotsLine()}
	case m.inFlight:
		a.explainInFlight(m, &e)
	default:
		e.Verdict = VerdictUpToDate
		e.Summary = fmt.Sprintf("It is up to date: it runs %s and its host offers no newer version.", s.Status.CurrentVersion)
		if limit := a.settings.Policy.StateMachine.MaxVersion; limit != nil && s.Status.CurrentVersion != s.Status.TargetVersion {
			e.Summary = fmt.Sprintf("It is up to date for this fleet: it runs %s and the FleetPolicy's maxVersion %s holds it back from %s, which its host offers.",
				s.Status.CurrentVersion, limit.Original(), s.Status.TargetVersion)
		}
	}
	if !m.optedIn && e.Verdict != VerdictNotManaged && (m.wait == nil || m.wait.Reason != rollout.WaitNotOptedIn) {
		e.Details = append(e.Details, "Note: the Node lacks the opt-in label, so no new update will start on it: "+labelCommand(node))
	}
	if a.policyError != "" && (m.wait == nil || m.wait.Reason != rollout.WaitUnresolved) {
		e.Details = append(e.Details, "Note: the FleetPolicy is invalid (Ready=False): "+a.policyError)
	}
	if a.pending != "" {
		e.Details = append(e.Details, "Note: "+a.pending+".")
	}
	return e, nil
}

// explainUnpublished explains a node when the controller published no settings: only what
// its shadow says, and why nothing more can be told.
func (a *analysis) explainUnpublished(m *member, e *Explanation) {
	s := m.shadow
	cannot := "Cannot tell what the controller decides: " + a.missing + "."
	switch {
	case m.inFlight:
		e.Verdict, e.Reason = VerdictUpdating, ""
		e.Summary = fmt.Sprintf("It is updating to %s: the controller wants %s, the agent reports %s.",
			targetVersion(s, statemachine.Config{}), s.Spec.State, s.Status.CurrentState)
		e.Details = []string{cannot + " Neither its deadline nor its next step is known."}
	case !hasUpdate(s):
		e.Verdict, e.Reason = VerdictUpToDate, string(statemachine.OutcomeUpToDate)
		e.Summary = fmt.Sprintf("It is up to date: it runs %s and its host offers no newer version.", s.Status.CurrentVersion)
	default:
		e.Verdict, e.Reason = VerdictUnknown, ReasonUnpublished
		e.Summary = fmt.Sprintf("It runs %s and its host offers %s. %s", s.Status.CurrentVersion, s.Status.TargetVersion, cannot)
		e.Details = []string{"The controller publishes the settings it applies in the FleetPolicy's status.applied on every pass: is it running, and is it this version?"}
		e.Commands = []string{fmt.Sprintf("kubectl get bfp %s -n %s -o yaml", v2.DefaultFleetPolicyName, a.in.Namespace)}
	}
}

// fullName returns the name of the one Node or shadow whose name is short followed by a DNS
// suffix, or short itself.
func (a *analysis) fullName(short string) string {
	if a.byNode[short] != nil || a.nodes[short] != nil {
		return short
	}
	found := map[string]bool{}
	for name := range a.nodes {
		if strings.HasPrefix(name, short+".") {
			found[name] = true
		}
	}
	for name := range a.byNode {
		if strings.HasPrefix(name, short+".") {
			found[name] = true
		}
	}
	if len(found) != 1 {
		return short
	}
	for name := range found {
		return name
	}
	return short
}

// unmanaged explains a node without a shadow.
func (a *analysis) unmanaged(node string) (Explanation, error) {
	n := a.nodes[node]
	if n == nil {
		return Explanation{}, fmt.Errorf("fleetview: no Node %q and no shadow %s in %s", node, v2.ShadowName(node), a.in.Namespace)
	}
	e := Explanation{Node: node, Verdict: VerdictNotManaged}
	if !statemachine.OptedIn(n) {
		e.Reason = string(rollout.WaitNotOptedIn)
		e.Summary = "Brupop does not manage it: the Node lacks the opt-in label."
		e.Details = []string{fmt.Sprintf("Label %s=%s is %s.", v2.NodeOptInLabel, v2.NodeOptInValue, labelState(n.Labels))}
		e.Commands = []string{labelCommand(node)}
		return e, nil
	}
	e.Reason = string(statemachine.OutcomeNoStatus)
	e.Summary = "The Node is opted in but has no shadow yet: its agent has not reported."
	e.Details = []string{fmt.Sprintf("No shadow %s in %s: is the Brupop agent DaemonSet running a pod on the node?", v2.ShadowName(node), a.in.Namespace)}
	return e, nil
}

// explainWait explains a node with an update that does not start now.
func (a *analysis) explainWait(m *member, e *Explanation) {
	w := m.wait
	e.Verdict, e.Reason, e.Until = VerdictWaiting, string(w.Reason), w.Until
	e.Summary = waitMessage(a, m)
	switch w.Reason {
	case rollout.WaitNotOptedIn:
		e.Details = []string{fmt.Sprintf("Label %s=%s is %s.", v2.NodeOptInLabel, v2.NodeOptInValue, labelState(nodeLabels(m)))}
		e.Commands = []string{labelCommand(m.node)}
	case rollout.WaitNodeNotReady:
		e.Details = []string{"Updates start only on Ready nodes."}
	case rollout.WaitBackoff:
		e.Details = []string{m.decision.Message}
		if f := lastFailure(m.shadow); f != "" {
			e.Details = append(e.Details, "Last failure: "+failureText(m.shadow))
		}
	case rollout.WaitHalted:
		e.Details, e.Commands = a.haltDetails(w.Version)
	case rollout.WaitSoaking:
		e.Details = []string{fmt.Sprintf("The FleetPolicy's releaseSoak is %s: a version starts rolling out that long after a host first offered it (status.releases).",
			a.settings.Policy.ReleaseSoak)}
	case rollout.WaitUnresolved:
		e.Details = []string{"The controller never applied a valid FleetPolicy, so it starts no update until the spec is fixed; updates in flight finish.",
			"Fix the FleetPolicy; its Ready condition says what is wrong: " + a.policyError}
		e.Commands = []string{fmt.Sprintf("kubectl describe bfp %s -n %s", v2.DefaultFleetPolicyName, a.in.Namespace)}
	case rollout.WaitPaused:
		e.Details = []string{"The controller applies paused=true (status.applied: the FleetPolicy's spec.paused, or MAX_CONCURRENT_UPDATE=0 in its environment); updates in flight finish, none starts."}
		e.Commands = []string{"kubectl brupop resume"}
	case rollout.WaitWindowClosed:
		e.Details = []string{"Schedule: " + a.scheduleText()}
	case rollout.WaitZones:
		e.Details = []string{a.zonesLine()}
	case rollout.WaitConcurrency, rollout.WaitOwnNodeLast:
		e.Details = []string{a.slotsLine()}
		if w.Reason == rollout.WaitOwnNodeLast {
			e.Details = append(e.Details, "The controller runs on this node, so it updates after every other node.")
		}
	}
}

// waitMessage says in one sentence why a waiting node does not start.
func waitMessage(a *analysis, m *member) string {
	w := m.wait
	switch w.Reason {
	case rollout.WaitNotOptedIn:
		return fmt.Sprintf("It waits to update to %s, but the Node lacks the opt-in label.", w.Version)
	case rollout.WaitNodeNotReady:
		return fmt.Sprintf("It waits to update to %s until the Node is Ready.", w.Version)
	case rollout.WaitBackoff:
		return fmt.Sprintf("It is backing off after %d failed attempts; it retries %s at %s.", crashes(m.shadow), w.Version, stamp(w.Until))
	case rollout.WaitHalted:
		return fmt.Sprintf("The rollout of %s is halted: its failure budget is spent.", w.Version)
	case rollout.WaitSoaking:
		return fmt.Sprintf("%s is soaking: first offered at %s, nodes start on it at %s.", w.Version, stamp(w.Until.Add(-a.settings.Policy.ReleaseSoak)), stamp(w.Until))
	case rollout.WaitUnresolved:
		return fmt.Sprintf("The FleetPolicy is invalid and no valid one was ever applied, so no update starts; it waits to update to %s.", w.Version)
	case rollout.WaitPaused:
		return fmt.Sprintf("The rollout is paused; it waits to update to %s.", w.Version)
	case rollout.WaitWindowClosed:
		if w.Until.IsZero() {
			return fmt.Sprintf("The update window is closed and never opens again; it waits to update to %s.", w.Version)
		}
		return fmt.Sprintf("The update window is closed until %s; it waits to update to %s.", stamp(w.Until), w.Version)
	case rollout.WaitZones:
		return fmt.Sprintf("Other zones are updating (at most %d at once); it waits to update to %s.", a.settings.Policy.Zones.MaxInFlight, w.Version)
	case rollout.WaitConcurrency:
		return fmt.Sprintf("Concurrency is full (%d/%s in flight); it waits to update to %s.", a.plan.InFlight, limitText(a.plan.Limit), w.Version)
	case rollout.WaitOwnNodeLast:
		return fmt.Sprintf("The controller's own node updates last; it waits to update to %s.", w.Version)
	}
	return fmt.Sprintf("It waits to update to %s: %s.", w.Version, w.Reason)
}

// explainInFlight explains a node holding an update slot.
func (a *analysis) explainInFlight(m *member, e *Explanation) {
	s := m.shadow
	e.Verdict = VerdictUpdating
	e.Summary = fmt.Sprintf("It is updating to %s: the controller wants %s, the agent reports %s.",
		targetVersion(s, a.settings.Policy.StateMachine), s.Spec.State, s.Status.CurrentState)
	e.Details = []string{m.decision.Message}
	if t := s.Spec.StateTransitionTimestamp; t != nil {
		e.Details = append(e.Details, fmt.Sprintf("In %s since %s (%s ago).", s.Spec.State, stamp(t.Time), Age(a.in.Now.Sub(t.Time))))
		if limit := a.settings.Policy.StateMachine.Deadline(s.Spec.State); limit > 0 {
			e.Until = t.Add(limit)
			e.Details = append(e.Details, fmt.Sprintf("Deadline: %s (%s after entering it).", stamp(e.Until), limit))
		}
	}
	if m.decision.Failure != nil {
		e.Details = append(e.Details, "The controller fails this attempt on its next pass: "+
			statemachine.FormatFailureReason(m.decision.Failure.Reason, m.decision.Failure.Message))
	}
	e.Details = append(e.Details, a.slotsLine())
}

// haltDetails explains a halted version and how to resume it.
func (a *analysis) haltDetails(version string) ([]string, []string) {
	for _, h := range a.plan.Halts {
		if h.Version == version {
			return []string{fmt.Sprintf("Halted since %s after failures on %s: %s", stamp(h.Since), strings.Join(h.Nodes, ", "), h.Reason)},
				[]string{ResumeCommand(version), ResumeAnnotateCommand(a.in.Namespace, version)}
		}
	}
	return nil, []string{ResumeCommand(version)}
}

// slotsLine names the nodes in flight and the limit.
func (a *analysis) slotsLine() string {
	var names []string
	for i := range a.members {
		if m := &a.members[i]; m.inFlight {
			state := m.shadow.Spec.State
			if m.starting {
				state = m.decision.Spec.State
			}
			names = append(names, fmt.Sprintf("%s (%s)", m.node, short(state)))
		}
	}
	in := "none"
	if len(names) > 0 {
		in = strings.Join(names, ", ")
	}
	if !a.known() {
		return fmt.Sprintf("In flight %d: %s.", a.plan.InFlight, in)
	}
	return fmt.Sprintf("In flight %d/%s (concurrency %s): %s.", a.plan.InFlight, limitText(a.plan.Limit), a.settings.Policy.Concurrency, in)
}

// zonesLine names the zones with nodes in flight (or starting), and the nodes.
func (a *analysis) zonesLine() string {
	z := a.settings.Policy.Zones
	byZone := map[string][]string{}
	for i := range a.members {
		if m := &a.members[i]; m.inFlight || m.starting {
			zone := nodeLabels(m)[z.Label]
			byZone[zone] = append(byZone[zone], m.node)
		}
	}
	parts := make([]string, 0, len(byZone))
	for _, zone := range slices.Sorted(maps.Keys(byZone)) {
		name := zone
		if name == "" {
			name = "(no " + z.Label + " label)"
		}
		parts = append(parts, fmt.Sprintf("%s: %s", name, strings.Join(byZone[zone], ", ")))
	}
	return fmt.Sprintf("Zones updating (label %s, at most %d at once): %s.", z.Label, z.MaxInFlight, strings.Join(parts, "; "))
}

func (a *analysis) scheduleText() string {
	if s := a.settings.Policy.Schedule; s != nil {
		return fmt.Sprintf("%s, %s", s, strings.ToLower(s.Kind().String()))
	}
	return "always open"
}

func nodeLabels(m *member) map[string]string {
	if m.k8sNode == nil {
		return nil
	}
	return m.k8sNode.Labels
}

func labelState(labels map[string]string) string {
	if v, ok := labels[v2.NodeOptInLabel]; ok {
		return fmt.Sprintf("set to %q", v)
	}
	return "missing"
}

func labelCommand(node string) string {
	return fmt.Sprintf("kubectl label node %s %s=%s --overwrite", node, v2.NodeOptInLabel, v2.NodeOptInValue)
}

func failureText(s *v2.BottlerocketShadow) string {
	rec := statemachine.RecordFromAnnotations(s.Annotations)
	var agentAt time.Time
	if t := s.Status.StateTransitionFailureTimestamp; t != nil {
		agentAt = t.Time
	}
	if rec.Count > 0 && rec.At.After(agentAt) {
		return fmt.Sprintf("%s at %s (detected by the controller)", rec.Reason, stamp(rec.At))
	}
	r, msg := statemachine.ParseFailureReason(s.Status.FailureReason)
	return fmt.Sprintf("%s at %s", statemachine.FormatFailureReason(r, msg), stamp(agentAt))
}
