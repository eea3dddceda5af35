package rollout

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
	"github.com/bottlerocket-os/brupop-go/internal/window"
)

// DefaultFailureBudget is how many release failures a version may have before its rollout halts.
const DefaultFailureBudget = 1

// Member is one shadow of the fleet with what the controller knows of its Node.
type Member struct {
	// Shadow is the node's BottlerocketShadow; Decide never modifies it.
	Shadow *v2.BottlerocketShadow
	// Node holds the facts about the Node the monitoring needs.
	Node statemachine.NodeFacts
	// OptedIn is whether the Node carries the opt-in label; only opted-in nodes start updates.
	OptedIn bool
	// NodeLabels are the Node's labels (nil when it is gone), for Policy.Zones.
	NodeLabels map[string]string
}

// MemberOf returns the member of shadow s whose Node is n (nil when gone); podsReady is as
// statemachine.FactsOf takes it.
func MemberOf(s *v2.BottlerocketShadow, n *corev1.Node, podsReady map[string]bool) Member {
	m := Member{Shadow: s, Node: statemachine.FactsOf(n, podsReady), OptedIn: statemachine.OptedIn(n)}
	if n != nil {
		m.NodeLabels = n.Labels
	}
	return m
}

// Fleet is the world as one pass sees it.
type Fleet struct {
	// Members are all shadows, in any order.
	Members []Member
	// ControllerNode is the node the controller runs on (MY_NODE_NAME); it updates last.
	ControllerNode string
	// Ledger holds the release failures recorded so far, per target version.
	Ledger []VersionLedger
	// LastRunEnd is when the last run of a Oneshot schedule ended (see window.Schedule.Admits);
	// the caller keeps Plan.LastRunEnd here. Zero is treated as now: wait for the next trigger.
	LastRunEnd time.Time
	// Releases maps the versions offered as updates to when they were first seen; the caller
	// keeps Plan.Releases here.
	Releases map[string]time.Time
}

// VersionLedger is the release failures of one target version. Failures at or before ResumedAt
// were forgiven by an operator and no longer count against the budget.
type VersionLedger struct {
	Version   string
	Failures  []NodeFailure
	ResumedAt time.Time
}

// NodeFailure is a failure of one node's update.
type NodeFailure struct {
	// Node is the node's name.
	Node string
	statemachine.Failure
}

// Policy is how the fleet rolls out. The zero value is invalid; start from DefaultPolicy.
type Policy struct {
	// Concurrency limits the nodes in flight.
	Concurrency Concurrency
	// Schedule says when new nodes may start; nil means always.
	Schedule *window.Schedule
	// Paused stops new nodes from starting; nodes in flight finish.
	Paused bool
	// Unresolved says no valid policy was ever applied (the FleetPolicy does not resolve and its
	// status stores no applied settings): like Paused, nothing starts, with its own wait reason.
	Unresolved bool
	// FailureBudget is how many release failures a version may have before it halts (>= 1).
	FailureBudget int
	// StateMachine holds the monitoring period, the state deadlines and the version cap.
	StateMachine statemachine.Config
	// ReleaseSoak is how long a version must have been offered (Fleet.Releases) before nodes
	// start on it; 0 for no soak. A version the cap picks is not soaked.
	ReleaseSoak time.Duration
	// Zones, when set, limits how many zones have nodes in flight.
	Zones *Zones
}

// Zones limits how many zones update at once.
type Zones struct {
	// Label is the Node label naming a node's zone; nodes without it share the zone "".
	Label string
	// MaxInFlight is how many zones may have nodes in flight (>= 1).
	MaxInFlight int
}

// DefaultPolicy returns upstream's defaults: one node at a time, always open, not paused, a
// budget of DefaultFailureBudget and statemachine.DefaultConfig.
func DefaultPolicy() Policy {
	return Policy{Concurrency: DefaultConcurrency, FailureBudget: DefaultFailureBudget, StateMachine: statemachine.DefaultConfig()}
}

// WaitReason says why a node that could update does not start now.
type WaitReason string

// The reasons a node waits, in the order Decide checks them.
const (
	WaitNotOptedIn   WaitReason = "NotOptedIn"
	WaitNodeNotReady WaitReason = "NodeNotReady"
	WaitBackoff      WaitReason = "Backoff"
	WaitHalted       WaitReason = "Halted"
	WaitSoaking      WaitReason = "Soaking"
	WaitUnresolved   WaitReason = "InvalidPolicy"
	WaitPaused       WaitReason = "Paused"
	WaitWindowClosed WaitReason = "WaitingForWindow"
	WaitZones        WaitReason = "OtherZonesUpdating"
	WaitConcurrency  WaitReason = "ConcurrencyFull"
	WaitOwnNodeLast  WaitReason = "OwnNodeLast"
)

// WaitReasons are all the reasons, in the order Decide checks them (for metrics' label values).
var WaitReasons = []WaitReason{WaitNotOptedIn, WaitNodeNotReady, WaitBackoff, WaitHalted, WaitSoaking, WaitUnresolved, WaitPaused,
	WaitWindowClosed, WaitZones, WaitConcurrency, WaitOwnNodeLast}

// Wait is a node that has an update to make but does not start in this pass.
type Wait struct {
	// Node is the node's name.
	Node string
	// Version is the version it waits to update to.
	Version string
	Reason  WaitReason
	// Until is when the wait ends by itself (backoff, window), zero when unknown.
	Until time.Time
}

// Change is a spec to write on one shadow, with the decision behind it.
type Change struct {
	// Shadow is the shadow's name; Node its node's.
	Shadow, Node string
	statemachine.Decision
}

// Halt is a target version whose rollout is halted because its failure budget is spent.
type Halt struct {
	Version string
	// Nodes are the nodes whose release failures spent the budget, in failure order.
	Nodes []string
	// Reason summarises the failures, for people.
	Reason string
	// Since is when the failure that spent the budget happened.
	Since time.Time
}

// Plan is the outcome of one pass.
type Plan struct {
	// Changes are the specs to write, nodes in flight first, then the nodes started this pass in
	// start order.
	Changes []Change
	// Failures are the failures detected in this pass; the caller records the release ones in
	// the ledger (after writing the Changes) and reports all of them.
	Failures []NodeFailure
	// Halts are the halted versions, including halts caused by this pass's failures.
	Halts []Halt
	// Waiting are the nodes with an update to make that do not start now, in start order.
	Waiting []Wait
	// InFlight counts the nodes in flight once the Changes are written; Limit is the allowed
	// number (math.MaxInt when unlimited); Started counts the nodes started by this plan.
	InFlight, Limit, Started int
	// WindowOpen is whether the schedule lets new nodes start now.
	WindowOpen bool
	// LastRunEnd is the value for Fleet.LastRunEnd in the next pass.
	LastRunEnd time.Time
	// Releases is the value for Fleet.Releases in the next pass: the versions some member's host
	// offers as an update now, first seen at their Fleet.Releases time or now, to the second.
	Releases map[string]time.Time
	// RequeueAfter is when to run the next pass if no event comes first (a window opening, a
	// state deadline, a backoff or monitoring period ending); 0 means only events matter.
	RequeueAfter time.Duration
}
