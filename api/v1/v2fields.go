package v1

import (
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// V2FieldsAnnotation holds, on the v1 form of a shadow, what its v2 form has that v1 cannot
// express: crash_count, the failure timestamp and reason, the conditions, and ErrorReset (which v1
// reads as MonitoringUpdate). Converting back to v2 restores them and drops the annotation, so it
// is never stored.
const V2FieldsAnnotation = "brupop.bottlerocket.aws/v2-fields"

// v2Fields is the content of V2FieldsAnnotation, as JSON.
type v2Fields struct {
	// SpecState is set when spec.state is ErrorReset.
	SpecState v2.State `json:"spec_state,omitempty"`
	// Status holds the status fields v1 lacks; nil when the shadow has no status.
	Status *v2StatusFields `json:"status,omitempty"`
}

type v2StatusFields struct {
	// CurrentState is set when current_state is ErrorReset.
	CurrentState                    v2.State           `json:"current_state,omitempty"`
	CrashCount                      uint32             `json:"crash_count,omitempty"`
	StateTransitionFailureTimestamp *metav1.Time       `json:"state_transition_failure_timestamp,omitempty"`
	FailureReason                   string             `json:"failure_reason,omitempty"`
	Conditions                      []metav1.Condition `json:"conditions,omitempty"`
}

// keepV2Fields writes into dst, the v1 form of hub, the V2FieldsAnnotation of what v1 cannot
// express, or removes the annotation when there is nothing to keep.
func keepV2Fields(dst *BottlerocketShadow, hub *v2.BottlerocketShadow) {
	var f v2Fields
	if hub.Spec.State == v2.StateErrorReset {
		f.SpecState = hub.Spec.State
	}
	if st := hub.Status; st != nil && (st.CurrentState == v2.StateErrorReset || st.CrashCount != 0 ||
		st.StateTransitionFailureTimestamp != nil || st.FailureReason != "" || len(st.Conditions) > 0) {
		f.Status = &v2StatusFields{CrashCount: st.CrashCount, StateTransitionFailureTimestamp: st.StateTransitionFailureTimestamp.DeepCopy(),
			FailureReason: st.FailureReason, Conditions: st.Conditions}
		if st.CurrentState == v2.StateErrorReset {
			f.Status.CurrentState = st.CurrentState
		}
	}
	if f.SpecState == "" && f.Status == nil {
		dropV2Fields(&dst.ObjectMeta)
		return
	}
	raw, _ := json.Marshal(f) // plain fields always marshal
	if dst.Annotations == nil {
		dst.Annotations = map[string]string{}
	}
	dst.Annotations[V2FieldsAnnotation] = string(raw)
}

// restoreV2Fields puts back into dst, the v2 form of a v1 shadow, what its V2FieldsAnnotation
// keeps, and drops the annotation. ErrorReset comes back only where the v1 state is still
// MonitoringUpdate, the state it was read as: a v1 writer that changed the state meant it. An
// annotation that cannot be read is dropped.
func restoreV2Fields(dst *v2.BottlerocketShadow) {
	raw, ok := dst.Annotations[V2FieldsAnnotation]
	if !ok {
		return
	}
	dropV2Fields(&dst.ObjectMeta)
	var f v2Fields
	if json.Unmarshal([]byte(raw), &f) != nil {
		return
	}
	if f.SpecState == v2.StateErrorReset && dst.Spec.State == v2.StateMonitoringUpdate {
		dst.Spec.State = f.SpecState
	}
	st := dst.Status
	if st == nil || f.Status == nil {
		return
	}
	if f.Status.CurrentState == v2.StateErrorReset && st.CurrentState == v2.StateMonitoringUpdate {
		st.CurrentState = f.Status.CurrentState
	}
	st.CrashCount, st.StateTransitionFailureTimestamp = f.Status.CrashCount, f.Status.StateTransitionFailureTimestamp
	st.FailureReason, st.Conditions = f.Status.FailureReason, f.Status.Conditions
}

func dropV2Fields(m *metav1.ObjectMeta) {
	delete(m.Annotations, V2FieldsAnnotation)
	if len(m.Annotations) == 0 {
		m.Annotations = nil
	}
}
