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
)

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
	CrashCount int32 `json:"crashCount"`
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
	// Limit is the number of nodes allowed in flight; -1 when unlimited.
	Limit int `json:"limit"`
	// Concurrency is the configured limit (a number, a percentage or "unlimited").
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
	// PolicyError says why the FleetPolicy is invalid; the controller then keeps its last valid
	// policy, which the view cannot know.
	PolicyError string `json:"policyError,omitempty"`
	// ControllerSource says where the controller's configuration was read.
	ControllerSource string `json:"controllerSource,omitempty"`
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
	sum := Summary{Nodes: len(rows), InFlight: p.InFlight, Limit: p.Limit, Waiting: len(p.Waiting),
		Concurrency: a.settings.Policy.Concurrency.String(), Paused: a.settings.Policy.Paused,
		WindowOpen: p.WindowOpen, ControllerSource: a.in.Controller.Source}
	if p.Limit == math.MaxInt {
		sum.Limit = -1
	}
	if a.settingsErr != nil {
		sum.PolicyError = a.settingsErr.Error()
	}
	pol := a.settings.Policy
	if v := pol.StateMachine.MaxVersion; v != nil {
		sum.MaxVersion = v.Original()
	}
	if pol.ReleaseSoak > 0 {
		sum.ReleaseSoak = pol.ReleaseSoak.String()
	}
	if pol.Zones != nil {
		sum.ZonesInFlight = pol.Zones.MaxInFlight
	}
	if s := a.settings.Policy.Schedule; s != nil {
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

// ResumeCommand is the plugin command that resumes the halted rollout of version.
func ResumeCommand(version string) string {
	return "kubectl brupop resume " + version
}

// ResumeAnnotateCommand is the plain kubectl command that resumes the halted rollout of version.
func ResumeAnnotateCommand(namespace, version string) string {
	return fmt.Sprintf("kubectl annotate bfp %s -n %s %s=%s --overwrite", v2.DefaultFleetPolicyName, namespace, v2.ResumeAnnotation, version)
}
