package v2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultFleetPolicyName is the name of the one FleetPolicy of an installation; the controller
// ignores FleetPolicies with other names.
const DefaultFleetPolicyName = "default"

// ResumeAnnotation is set on the FleetPolicy to a halted version to ask the controller to resume
// that version's rollout: `kubectl annotate bfp default brupop.bottlerocket.aws/resume=1.20.0`.
// The controller records the resume in status and removes the annotation.
const ResumeAnnotation = "brupop.bottlerocket.aws/resume"

// FleetPolicySchedule says when new updates may start.
type FleetPolicySchedule struct {
	// Cron is an expression of upstream's SCHEDULER_CRON_EXPRESSION dialect: "sec min hour
	// day-of-month month day-of-week [year]". Defaults to the controller's environment.
	// +optional
	Cron string `json:"cron,omitempty"`
	// TimeZone is the IANA time zone the expression is evaluated in. Defaults to UTC.
	// +optional
	TimeZone string `json:"timeZone,omitempty"`
}

// FleetPolicyMonitoring is the monitoring step after the reboot.
type FleetPolicyMonitoring struct {
	// Period is how long the Node (and the selected pods) must stay Ready before the update is
	// complete. "0s" disables monitoring, as upstream. Defaults to 5m.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="must be a non-negative duration such as 90s, 10m or 1h30m"
	Period *metav1.Duration `json:"period,omitempty"`
	// PodSelector selects pods on the node that must be Ready during the period.
	// +optional
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`
	// Deadline is how long past the period a node may take to become healthy before its
	// monitoring fails. Defaults to 5m.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="must be a non-negative duration such as 90s, 10m or 1h30m"
	Deadline *metav1.Duration `json:"deadline,omitempty"`
}

// DefaultZoneLabel is the Node label FleetPolicyZones reads a node's zone from by default.
const DefaultZoneLabel = "topology.kubernetes.io/zone"

// FleetPolicyZones limits how many zones update at once, so that a zone-redundant workload
// never loses capacity in two zones at the same time.
type FleetPolicyZones struct {
	// Label is the Node label that names a node's zone. Nodes without it form one zone of their
	// own. Defaults to topology.kubernetes.io/zone.
	// +optional
	Label string `json:"label,omitempty"`
	// MaxInFlight is how many zones may have nodes updating at once.
	// +kubebuilder:validation:Minimum=1
	MaxInFlight int32 `json:"maxInFlight"`
}

// FleetPolicyStateTimeouts bound how long the agent may take to reach each state.
type FleetPolicyStateTimeouts struct {
	// StagedAndPerformedUpdate bounds download and activation. Defaults to 720s.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="must be a non-negative duration such as 90s, 10m or 1h30m"
	StagedAndPerformedUpdate *metav1.Duration `json:"stagedAndPerformedUpdate,omitempty"`
	// RebootedIntoUpdate bounds the reboot and the agent's return, counted from the end of the
	// drain budget: the node may take drainTimeout (10m when unset) plus this to reach
	// RebootedIntoUpdate. Defaults to 600s.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="must be a non-negative duration such as 90s, 10m or 1h30m"
	RebootedIntoUpdate *metav1.Duration `json:"rebootedIntoUpdate,omitempty"`
	// Reset bounds how long a node reset to Idle keeps its slot while its agent is silent.
	// Defaults to 120s.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="must be a non-negative duration such as 90s, 10m or 1h30m"
	Reset *metav1.Duration `json:"reset,omitempty"`
}

// FleetPolicySpec is how the fleet rolls out. Unset fields take the controller's environment
// (upstream's variables) or the documented defaults.
type FleetPolicySpec struct {
	// MaxConcurrentUpdates is how many nodes may update at once: a positive number, "unlimited"
	// or a percentage of the opted-in nodes such as "10%". Defaults to MAX_CONCURRENT_UPDATE.
	// +kubebuilder:validation:Pattern=`^([1-9][0-9]*|[uU][nN][lL][iI][mM][iI][tT][eE][dD]|([1-9]|[1-9][0-9]|100)%)$`
	// +optional
	MaxConcurrentUpdates string `json:"maxConcurrentUpdates,omitempty"`
	// Schedule says when new updates may start.
	// +optional
	Schedule *FleetPolicySchedule `json:"schedule,omitempty"`
	// Paused stops new updates from starting; updates in flight finish.
	// +optional
	Paused bool `json:"paused,omitempty"`
	// Monitoring is the health check after the reboot.
	// +optional
	Monitoring *FleetPolicyMonitoring `json:"monitoring,omitempty"`
	// FailureBudget is how many release failures a version may have before its rollout halts.
	// Defaults to 1.
	// +kubebuilder:validation:Minimum=1
	// +optional
	FailureBudget *int32 `json:"failureBudget,omitempty"`
	// DrainTimeout is the drain deadline handed to the API server. Defaults to the API server's.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="must be a non-negative duration such as 90s, 10m or 1h30m"
	DrainTimeout *metav1.Duration `json:"drainTimeout,omitempty"`
	// StateTimeouts bound every state of an update.
	// +optional
	StateTimeouts *FleetPolicyStateTimeouts `json:"stateTimeouts,omitempty"`
	// MaxVersion caps the Bottlerocket version nodes update to, such as the version a staging
	// fleet validated: a node updates to the newest version its host offers, or to MaxVersion
	// when the host offers a newer one; a node at or past it is left alone (never downgraded).
	// Unset: the newest version, as upstream.
	// +kubebuilder:validation:Pattern=`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`
	// +optional
	MaxVersion string `json:"maxVersion,omitempty"`
	// ReleaseSoak is how long a version must have been offered to the fleet before any node
	// starts updating to it, counted from when the controller first saw a host offer it
	// (status.releases). A version that maxVersion picks is not soaked: an operator chose it.
	// Unset or 0s: no soak, as upstream.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="must be a non-negative duration such as 90s, 10m or 1h30m"
	// +optional
	ReleaseSoak *metav1.Duration `json:"releaseSoak,omitempty"`
	// Zones limits how many zones update at once; maxConcurrentUpdates still bounds the nodes.
	// Unset: zones are not considered, as upstream.
	// +optional
	Zones *FleetPolicyZones `json:"zones,omitempty"`
}

// FleetPolicyNodeFailure is one release failure of a node.
type FleetPolicyNodeFailure struct {
	// Node is the node's name.
	Node string `json:"node"`
	// Reason is the failure reason (BootRolledBack, VersionMismatch, MonitoringFailed, ...).
	Reason string `json:"reason"`
	// Message says what happened.
	// +optional
	Message string `json:"message,omitempty"`
	// Time is when it happened.
	Time metav1.Time `json:"time"`
}

// FleetPolicyVersionStatus is the rollout of one target version that had release failures.
type FleetPolicyVersionStatus struct {
	// Version is the target version.
	Version string `json:"version"`
	// Failures are its release failures, oldest first.
	// +optional
	Failures []FleetPolicyNodeFailure `json:"failures,omitempty"`
	// Halted says the failure budget is spent: no new node starts on this version.
	// +optional
	Halted bool `json:"halted,omitempty"`
	// HaltedSince is when the rollout halted.
	// +optional
	HaltedSince *metav1.Time `json:"haltedSince,omitempty"`
	// Reason says why it halted, naming the nodes.
	// +optional
	Reason string `json:"reason,omitempty"`
	// ResumedAt is when an operator last resumed it; failures before it no longer count.
	// +optional
	ResumedAt *metav1.Time `json:"resumedAt,omitempty"`
}

// FleetPolicyRelease is a version some host of the fleet offers as an update, and since when.
type FleetPolicyRelease struct {
	// Version is the offered version.
	Version string `json:"version"`
	// FirstSeen is when the controller first saw a host offer it.
	FirstSeen metav1.Time `json:"firstSeen"`
}

// FleetPolicyCounts counts the nodes of the fleet.
type FleetPolicyCounts struct {
	// Nodes is the number of shadows.
	Nodes int32 `json:"nodes"`
	// InFlight is the number of nodes updating.
	InFlight int32 `json:"inFlight"`
	// Waiting is the number of nodes with an update that did not start.
	Waiting int32 `json:"waiting"`
	// Halted is the number of halted versions.
	Halted int32 `json:"halted"`
}

// FleetPolicyApplied is the policy the controller applies, resolved: every field the spec leaves
// unset holds the controller's environment value or the default it stands for. It is what a
// controller falls back to when the spec becomes invalid, and what kubectl brupop shows.
type FleetPolicyApplied struct {
	// Generation is the generation of the spec these settings were resolved from.
	Generation int64 `json:"generation"`
	// Time is when the controller first applied these settings.
	Time metav1.Time `json:"time"`
	// Spec is the resolved spec: maxConcurrentUpdates, schedule (cron and time zone),
	// failureBudget, monitoring and stateTimeouts are always set; drainTimeout only when the
	// policy or the environment sets one (the API server's default applies otherwise).
	Spec FleetPolicySpec `json:"spec"`
}

// FleetPolicyStatus is what the controller observed and decided; only the controller writes it.
type FleetPolicyStatus struct {
	// ObservedGeneration is the generation of the spec the controller last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Applied is the policy in force, with the environment's values resolved. A spec that does
	// not resolve (Ready=False, InvalidPolicy) leaves it as it was: the controller keeps applying
	// it, across restarts and failovers. Without it such a controller starts no update.
	// +optional
	Applied *FleetPolicyApplied `json:"applied,omitempty"`
	// ControllerNode is the node of the controller that wrote this status (MY_NODE_NAME); its
	// node updates last.
	// +optional
	ControllerNode string `json:"controllerNode,omitempty"`
	// Conditions are Ready (the policy is valid and applied) and Halted (a version is halted).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Versions are the target versions that had release failures, halted or not.
	// +optional
	// +listType=map
	// +listMapKey=version
	Versions []FleetPolicyVersionStatus `json:"versions,omitempty"`
	// Releases are the versions the hosts offer as updates, with when each was first seen; the
	// release soak counts from then.
	// +optional
	// +listType=map
	// +listMapKey=version
	Releases []FleetPolicyRelease `json:"releases,omitempty"`
	// Counts count the nodes at the last pass.
	// +optional
	Counts FleetPolicyCounts `json:"counts,omitempty"`
	// LastRunEnd is when the last run of a one-shot schedule ended.
	// +optional
	LastRunEnd *metav1.Time `json:"lastRunEnd,omitempty"`
}

// FleetPolicy is how Brupop rolls updates out across the fleet: one per installation, named
// "default", in Brupop's namespace. Without it the controller uses its environment.
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=fleetpolicies,singular=fleetpolicy,shortName=bfp,scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Concurrency",type=string,JSONPath=`.spec.maxConcurrentUpdates`
// +kubebuilder:printcolumn:name="Paused",type=boolean,JSONPath=`.spec.paused`
// +kubebuilder:printcolumn:name="In Flight",type=integer,JSONPath=`.status.counts.inFlight`
// +kubebuilder:printcolumn:name="Halted",type=integer,JSONPath=`.status.counts.halted`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type FleetPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec FleetPolicySpec `json:"spec,omitempty"`
	// +optional
	Status FleetPolicyStatus `json:"status,omitempty"`
}

// FleetPolicyList is a list of FleetPolicy.
// +kubebuilder:object:root=true
type FleetPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FleetPolicy `json:"items"`
}
