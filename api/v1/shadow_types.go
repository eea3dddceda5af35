package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// State is a step of the v1 update state machine.
// +kubebuilder:validation:Enum=Idle;StagedUpdate;PerformedUpdate;RebootedIntoUpdate;MonitoringUpdate
type State string

// The v1 states.
const (
	StateIdle               State = "Idle"
	StateStagedUpdate       State = "StagedUpdate"
	StatePerformedUpdate    State = "PerformedUpdate"
	StateRebootedIntoUpdate State = "RebootedIntoUpdate"
	StateMonitoringUpdate   State = "MonitoringUpdate"
)

// States lists every v1 state.
var States = []State{StateIdle, StateStagedUpdate, StatePerformedUpdate, StateRebootedIntoUpdate, StateMonitoringUpdate}

// BottlerocketShadowSpec is the desired state of one node's update.
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

// BottlerocketShadowStatus is what the node's agent last reported.
type BottlerocketShadowStatus struct {
	// CurrentVersion is the Bottlerocket version the node runs.
	// +kubebuilder:validation:Pattern=`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`
	CurrentVersion string `json:"current_version"`
	// TargetVersion is the version the host would update to.
	// +kubebuilder:validation:Pattern=`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`
	TargetVersion string `json:"target_version"`
	// CurrentState is the state the agent has reached.
	CurrentState State `json:"current_state"`
}

// BottlerocketShadow is one node's update state, in the v1 layout.
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=bottlerocketshadows,singular=bottlerocketshadow,shortName=brs,scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.current_state`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.current_version`
// +kubebuilder:printcolumn:name="Target State",type=string,JSONPath=`.spec.state`
// +kubebuilder:printcolumn:name="Target Version",type=string,JSONPath=`.spec.version`
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
