package v2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// State is a step of the update state machine. The controller writes the desired one into
// spec.state and the agent reports the one it reached in status.current_state.
// +kubebuilder:validation:Enum=Idle;StagedAndPerformedUpdate;RebootedIntoUpdate;MonitoringUpdate;ErrorReset
type State string

// The states of a node's update, in the order a successful update walks them.
const (
	// StateIdle is the start, the end and the recovery state: nothing is in progress.
	StateIdle State = "Idle"
	// StateStagedAndPerformedUpdate means the update is downloaded to the inactive partition set
	// and activated for the next boot; workloads still run.
	StateStagedAndPerformedUpdate State = "StagedAndPerformedUpdate"
	// StateRebootedIntoUpdate means the node was cordoned, drained, rebooted and runs the target
	// version.
	StateRebootedIntoUpdate State = "RebootedIntoUpdate"
	// StateMonitoringUpdate means the node runs the update and is being watched before the update
	// is called complete.
	StateMonitoringUpdate State = "MonitoringUpdate"
	// StateErrorReset means the agent failed a step; it is only ever reported, never desired.
	StateErrorReset State = "ErrorReset"
)

// States lists every state of this version, in update order.
var States = []State{StateIdle, StateStagedAndPerformedUpdate, StateRebootedIntoUpdate, StateMonitoringUpdate, StateErrorReset}

// SemverPattern is the semver.org regular expression upstream validates versions with.
const SemverPattern = `^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`

// BottlerocketShadowSpec is the desired state of one node's update; only the controller writes it.
type BottlerocketShadowSpec struct {
	// State is the state the controller wants the node to reach.
	State State `json:"state"`
	// StateTransitionTimestamp is when the controller set this desired state. Any string, as
	// upstream's CRD allows; Brupop writes RFC 3339 and reads a value it cannot parse as absent.
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=string
	// +nullable
	// +optional
	StateTransitionTimestamp *metav1.Time `json:"state_transition_timestamp"`
	// Version is the Bottlerocket version the node should update to.
	// +kubebuilder:validation:Pattern=`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`
	// +nullable
	// +optional
	Version *string `json:"version"`
}

// BottlerocketShadowStatus is what the node's agent last reported; only the API server writes it,
// on behalf of the agent of that node.
type BottlerocketShadowStatus struct {
	// CurrentVersion is the Bottlerocket version the node runs.
	// +kubebuilder:validation:Pattern=`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`
	CurrentVersion string `json:"current_version"`
	// TargetVersion is the version the host would update to, or CurrentVersion if none.
	// +kubebuilder:validation:Pattern=`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`
	TargetVersion string `json:"target_version"`
	// CurrentState is the state the agent has reached.
	CurrentState State `json:"current_state"`
	// CrashCount is the number of consecutive failed update attempts: upstream's u32, so any
	// 0 to 4294967295.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=uint32
	CrashCount uint32 `json:"crash_count"`
	// StateTransitionFailureTimestamp is when the last failure happened. Any string, as
	// upstream's CRD allows; Brupop writes RFC 3339 and reads a value it cannot parse as absent.
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=string
	// +nullable
	// +optional
	StateTransitionFailureTimestamp *metav1.Time `json:"state_transition_failure_timestamp,omitempty"`
	// FailureReason says, for people, why the last attempt failed. Not in upstream; optional.
	// +optional
	FailureReason string `json:"failure_reason,omitempty"`
	// Conditions carry progress that upstream's fields cannot express, such as the phase of a
	// drain. Not in upstream; optional.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// BottlerocketShadow is one node's update state, named brs-<node> and owned by that Node.
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=bottlerocketshadows,singular=bottlerocketshadow,shortName=brs,scope=Namespaced
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.current_state`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.current_version`
// +kubebuilder:printcolumn:name="Target State",type=string,JSONPath=`.spec.state`
// +kubebuilder:printcolumn:name="Target Version",type=string,JSONPath=`.spec.version`
// +kubebuilder:printcolumn:name="Crash Count",type=string,JSONPath=`.status.crash_count`
type BottlerocketShadow struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BottlerocketShadowSpec `json:"spec"`
	// +nullable
	// +optional
	Status *BottlerocketShadowStatus `json:"status,omitempty"`
}

// BottlerocketShadowList is a list of BottlerocketShadow.
// +kubebuilder:object:root=true
type BottlerocketShadowList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BottlerocketShadow `json:"items"`
}

// Hub marks v2 as the conversion hub.
func (*BottlerocketShadow) Hub() {}

var _ runtime.Object = &BottlerocketShadow{}
