package fleetview

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// Phase is where a node stands in the rollout, as `kubectl brupop status` shows it.
type Phase string

// The phases of a node.
const (
	// PhaseNoStatus: the node's agent has not reported yet.
	PhaseNoStatus Phase = "NoStatus"
	// PhaseUpToDate: the node runs the newest version it knows of.
	PhaseUpToDate Phase = "UpToDate"
	// PhaseInFlight: the node holds an update slot.
	PhaseInFlight Phase = "InFlight"
	// PhaseStarting: the controller starts the node's update on its next pass.
	PhaseStarting Phase = "Starting"
	// PhaseWaiting: the node has an update to make that does not start now.
	PhaseWaiting Phase = "Waiting"
	// PhaseUnknown: the node has an update to make, and what the controller decides about it
	// depends on settings it has not published (Summary.SettingsMissing); the reason is
	// ReasonUnpublished.
	PhaseUnknown Phase = "Unknown"
)

// ReasonUnpublished is the reason of a PhaseUnknown row and of a VerdictUnknown explanation.
const ReasonUnpublished = "SettingsUnpublished"

// NodeRow is one node of the status table.
type NodeRow struct {
	Node string `json:"node"`
	// State is the state the agent reports; TargetState the state the controller wants.
	State       v2.State `json:"state,omitempty"`
	TargetState v2.State `json:"targetState"`
	// Version is the version the node runs; TargetVersion the one it updates or would update to.
	Version       string `json:"version,omitempty"`
	TargetVersion string `json:"targetVersion,omitempty"`
	// Since is when the controller set the target state; zero when it never did.
	Since time.Time `json:"since,omitzero"`
	// CrashCount counts the node's consecutive failures (the agent's and the controller's).
	CrashCount int64 `json:"crashCount"`
	Phase      Phase `json:"phase"`
	// Reason is the wait reason of a waiting node (rollout.WaitReason), or the outcome of the
	// controller's decision (statemachine.Outcome).
	Reason string `json:"reason,omitempty"`
	// Until is when a wait ends by itself (backoff, window); zero when unknown.
	Until time.Time `json:"until,omitzero"`
	// LastFailure is the reason of the node's last failure while it still counts.
	LastFailure string `json:"lastFailure,omitempty"`
	// Message says the same for people.
	Message string `json:"message,omitempty"`
}

// VersionCount is how many nodes run a version.
type VersionCount struct {
	Version string `json:"version"`
	Nodes   int    `json:"nodes"`
}

// ReasonCount is how many nodes wait for a reason.
type ReasonCount struct {
	Reason rollout.WaitReason `json:"reason"`
	Nodes  int                `json:"nodes"`
}

// HaltedVersion is a version whose rollout is halted.
type HaltedVersion struct {
	Version string    `json:"version"`
	Nodes   []string  `json:"nodes"`
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since,omitzero"`
	// Resume is the command that resumes it.
	Resume string `json:"resume"`
}

// Summary is the fleet in one line.
type Summary struct {
	Nodes    int            `json:"nodes"`
	Versions []VersionCount `json:"versions"`
	InFlight int            `json:"inFlight"`
	// Limit is the number of nodes allowed in flight; -1 when unlimited, 0 when the controller
	// applies no concurrency (SettingsMissing, or no valid policy ever applied).
	Limit int `json:"limit"`
	// Concurrency is the configured limit (a number, a percentage or "unlimited"); empty when
	// Limit is 0.
	Concurrency string        `json:"concurrency"`
	Waiting     int           `json:"waiting"`
	WaitingBy   []ReasonCount `json:"waitingBy,omitempty"`
	// Failed counts the nodes whose last update attempt failed and that have not updated since.
	Failed int             `json:"failed"`
	Halted []HaltedVersion `json:"halted,omitempty"`
	Paused bool            `json:"paused"`
	// WindowOpen says whether new updates may start now; NextOpen is when they may if not.
	WindowOpen bool      `json:"windowOpen"`
	NextOpen   time.Time `json:"nextOpen,omitzero"`
	Schedule   string    `json:"schedule,omitempty"`
	// PolicyError is the message of the FleetPolicy's Ready=False condition: the controller
	// cannot apply the spec, and says which settings it keeps applying instead.
	PolicyError string `json:"policyError,omitempty"`
	// ControllerSource says where the settings of the view come from: the FleetPolicy's
	// status.applied, as the controller published them.
	ControllerSource string `json:"controllerSource,omitempty"`
	// ControllerNode is the node the controller runs on (status.controllerNode), which
	// updates last.
	ControllerNode string `json:"controllerNode,omitempty"`
	// SettingsMissing says why the view has no settings of the controller (no FleetPolicy, no
	// status.applied); the rows then show what the shadows say and no decision, and the gates
	// (Limit, Paused, WindowOpen, Schedule) are unknown and left zero.
	SettingsMissing string `json:"settingsMissing,omitempty"`
	// PolicyPending says that the FleetPolicy changed since the controller last acted on it:
	// the view shows the settings in force until its next pass.
	PolicyPending string `json:"policyPending,omitempty"`
	// MaxVersion, ReleaseSoak and ZonesInFlight are the FleetPolicy's promotion controls, when
	// set.
	MaxVersion    string `json:"maxVersion,omitempty"`
	ReleaseSoak   string `json:"releaseSoak,omitempty"`
	ZonesInFlight int    `json:"zonesInFlight,omitempty"`
}

// Status is the view of `kubectl brupop status`.
type Status struct {
	Time    time.Time `json:"time"`
	Nodes   []NodeRow `json:"nodes"`
	Summary Summary   `json:"summary"`
}

// BuildStatus returns the fleet's status at in.Now: one row per shadow, sorted by node, and the
// summary.
func BuildStatus(in Input) Status {
	a := analyse(in)
	st := Status{Time: in.Now, Nodes: make([]NodeRow, 0, len(a.members))}
	for i := range a.members {
		st.Nodes = append(st.Nodes, a.row(&a.members[i]))
	}
	st.Summary = a.summary(st.Nodes)
	return st
}

// row returns the table row of one member.
func (a *analysis) row(m *member) NodeRow {
	s := m.shadow
	r := NodeRow{Node: m.node, TargetState: s.Spec.State, TargetVersion: targetVersion(s, a.settings.Policy.StateMachine), CrashCount: crashes(s)}
	if t := s.Spec.StateTransitionTimestamp; t != nil {
		r.Since = t.Time
	}
	if s.Status == nil {
		r.Phase, r.Reason, r.Message = PhaseNoStatus, string(statemachine.OutcomeNoStatus), "Waiting for the node's agent to report its status"
		return r
	}
	r.State, r.Version = s.Status.CurrentState, s.Status.CurrentVersion
	if r.CrashCount > 0 {
		r.LastFailure = lastFailure(s)
	}
	d := m.decision
	r.Reason, r.Message = string(d.Outcome), d.Message
	switch {
	case a.missing != "" && m.inFlight:
		r.Phase = PhaseInFlight
	case a.missing != "" && !hasUpdate(s):
		r.Phase, r.Reason = PhaseUpToDate, string(statemachine.OutcomeUpToDate)
	case a.missing != "":
		r.Phase, r.Reason, r.Message = PhaseUnknown, ReasonUnpublished, "Cannot tell what the controller decides: "+a.missing
	case m.wait != nil:
		r.Phase, r.Reason, r.Until = PhaseWaiting, string(m.wait.Reason), m.wait.Until
		r.Message = waitMessage(a, m)
	case m.starting:
		r.Phase = PhaseStarting
	case m.inFlight:
		r.Phase = PhaseInFlight
	default:
		r.Phase = PhaseUpToDate
	}
	return r
}

// lastFailure returns the reason of a shadow's last failure, the agent's or the controller's.
func lastFailure(s *v2.BottlerocketShadow) string {
	rec := statemachine.RecordFromAnnotations(s.Annotations)
	var agentAt time.Time
	if t := s.Status.StateTransitionFailureTimestamp; t != nil {
		agentAt = t.Time
	}
	if rec.Count > 0 && rec.At.After(agentAt) {
		return rec.Reason
	}
	if s.Status.CrashCount == 0 {
		return ""
	}
	reason, _ := statemachine.ParseFailureReason(s.Status.FailureReason)
	return reason
}

// summary counts the rows and states the fleet-wide gates.
func (a *analysis) summary(rows []NodeRow) Summary {
	p := a.plan
	pol := a.settings.Policy
	sum := Summary{Nodes: len(rows), InFlight: p.InFlight, Limit: p.Limit, Waiting: len(p.Waiting),
		Paused: pol.Paused, WindowOpen: p.WindowOpen, PolicyError: a.policyError, SettingsMissing: a.missing}
	a.source(&sum)
	switch {
	case !a.known():
		sum.Limit = 0
	case p.Limit == math.MaxInt:
		sum.Limit = -1
	}
	if a.known() {
		sum.Concurrency = pol.Concurrency.String()
	}
	if a.missing != "" {
		for _, r := range rows {
			sum.InFlight += b2i(r.Phase == PhaseInFlight)
		}
		sum.Halted = storedHalts(a.in.Policy)
	}
	if v := pol.StateMachine.MaxVersion; v != nil {
		sum.MaxVersion = v.Original()
	}
	if pol.ReleaseSoak > 0 {
		sum.ReleaseSoak = pol.ReleaseSoak.String()
	}
	if pol.Zones != nil {
		sum.ZonesInFlight = pol.Zones.MaxInFlight
	}
	if s := pol.Schedule; s != nil {
		sum.Schedule = s.String()
		if !p.WindowOpen {
			if next, ok := s.NextAdmit(a.in.Now, p.LastRunEnd); ok {
				sum.NextOpen = next
			}
		}
	}
	versions := map[string]int{}
	for _, r := range rows {
		if r.Version != "" {
			versions[r.Version]++
		}
		if r.CrashCount > 0 && r.Phase != PhaseUpToDate {
			sum.Failed++
		}
	}
	for v, n := range versions {
		sum.Versions = append(sum.Versions, VersionCount{Version: v, Nodes: n})
	}
	slices.SortFunc(sum.Versions, func(x, y VersionCount) int { return cmp.Compare(x.Version, y.Version) })
	reasons := map[rollout.WaitReason]int{}
	for _, w := range p.Waiting {
		reasons[w.Reason]++
	}
	for r, n := range reasons {
		sum.WaitingBy = append(sum.WaitingBy, ReasonCount{Reason: r, Nodes: n})
	}
	slices.SortFunc(sum.WaitingBy, func(x, y ReasonCount) int {
		return cmp.Or(cmp.Compare(y.Nodes, x.Nodes), cmp.Compare(x.Reason, y.Reason))
	})
	for _, h := range p.Halts {
		sum.Halted = append(sum.Halted, HaltedVersion{Version: h.Version, Nodes: h.Nodes, Reason: h.Reason,
			Since: h.Since, Resume: ResumeCommand(h.Version)})
	}
	return sum
}

// source fills in where the settings come from, the controller's node, and whether the
// controller has acted on the FleetPolicy's latest spec.
func (a *analysis) source(sum *Summary) {
	fp := a.in.Policy
	if fp == nil {
		return
	}
	sum.ControllerNode = fp.Status.ControllerNode
	if ap := fp.Status.Applied; ap != nil && a.missing == "" {
		sum.ControllerSource = fmt.Sprintf("FleetPolicy %s/%s status.applied (generation %d, since %s)", fp.Namespace, fp.Name, ap.Generation, stamp(ap.Time.Time))
	} else if a.missing == "" {
		sum.ControllerSource = fmt.Sprintf("FleetPolicy %s/%s status (no valid spec ever applied)", fp.Namespace, fp.Name)
	}
	sum.PolicyPending = a.pending
}

// storedHalts returns the halted versions the FleetPolicy's status records, for a view that
// cannot run the decision pass.
func storedHalts(fp *v2.FleetPolicy) []HaltedVersion {
	if fp == nil {
		return nil
	}
	var out []HaltedVersion
	for _, v := range fp.Status.Versions {
		if !v.Halted {
			continue
		}
		h := HaltedVersion{Version: v.Version, Reason: v.Reason, Resume: ResumeCommand(v.Version)}
		if v.HaltedSince != nil {
			h.Since = v.HaltedSince.Time
		}
		for _, f := range v.Failures {
			// Failures at or before a resume no longer count (rollout.VersionLedger).
			counts := v.ResumedAt == nil || f.Time.After(v.ResumedAt.Time)
			if counts && !slices.Contains(h.Nodes, f.Node) {
				h.Nodes = append(h.Nodes, f.Node)
			}
		}
		out = append(out, h)
	}
	return out
}

// hasUpdate reports whether the shadow's host offers a version other than the one it runs.
func hasUpdate(s *v2.BottlerocketShadow) bool {
	return s.Status.TargetVersion != "" && s.Status.TargetVersion != s.Status.CurrentVersion
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ResumeCommand is the plugin command that resumes the halted rollout of version.
func ResumeCommand(version string) string {
	return "kubectl brupop resume " + version
}

// ResumeAnnotateCommand is the plain kubectl command that resumes the halted rollout of version.
func ResumeAnnotateCommand(namespace, version string) string {
	return fmt.Sprintf("kubectl annotate bfp %s -n %s %s=%s --overwrite", v2.DefaultFleetPolicyName, namespace, v2.ResumeAnnotation, version)
}
