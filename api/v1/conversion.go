package v1

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// The state mappings are upstream's (docs/upstream.md, "v1 and v2 state mapping"):
//   - v1 StagedUpdate and PerformedUpdate both become v2 StagedAndPerformedUpdate, which comes back
//     as StagedUpdate;
//   - v2 ErrorReset has no v1 spelling and becomes MonitoringUpdate; v2's crash_count, failure
//     timestamp, failure reason and conditions have no v1 field (a v1 shadow without them
//     becomes crash_count 0, as upstream).
//
// Unlike upstream, conversion keeps the whole ObjectMeta, labels and annotations included, and
// v2 -> v1 -> v2 loses nothing: what v1 cannot hold travels in the V2FieldsAnnotation of the v1
// form, and comes back from it. Without that, a v1 client's update would reset the stored
// status (kube-apiserver keeps the status of the old object in the request's version, v1) and
// with it the crash_count the backoff depends on.

// StateToV2 maps a v1 state to its v2 state.
func StateToV2(s State) (v2.State, error) {
	switch s {
	case StateIdle:
		return v2.StateIdle, nil
	case StateStagedUpdate, StatePerformedUpdate:
		return v2.StateStagedAndPerformedUpdate, nil
	case StateRebootedIntoUpdate:
		return v2.StateRebootedIntoUpdate, nil
	case StateMonitoringUpdate:
		return v2.StateMonitoringUpdate, nil
	}
	return "", fmt.Errorf("v1: unknown state %q", s)
}

// StateFromV2 maps a v2 state to its v1 state.
func StateFromV2(s v2.State) (State, error) {
	switch s {
	case v2.StateIdle:
		return StateIdle, nil
	case v2.StateStagedAndPerformedUpdate:
		return StateStagedUpdate, nil
	case v2.StateRebootedIntoUpdate:
		return StateRebootedIntoUpdate, nil
	case v2.StateMonitoringUpdate, v2.StateErrorReset:
		return StateMonitoringUpdate, nil
	}
	return "", fmt.Errorf("v1: unknown v2 state %q", s)
}

// ConvertTo converts this v1 shadow into the v2 hub.
func (src *BottlerocketShadow) ConvertTo(hub runtimeHub) error {
	dst, ok := hub.(*v2.BottlerocketShadow)
	if !ok {
		return fmt.Errorf("v1: cannot convert to %T", hub)
	}
	state, err := StateToV2(src.Spec.State)
	if err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	dst.ObjectMeta = *src.ObjectMeta.DeepCopy()
	dst.APIVersion, dst.Kind = v2.GroupVersion.String(), "BottlerocketShadow"
	dst.Spec = v2.BottlerocketShadowSpec{
		State:                    state,
		StateTransitionTimestamp: src.Spec.StateTransitionTimestamp.DeepCopy(),
		Version:                  copyString(src.Spec.Version),
	}
	dst.Status = nil
	if src.Status != nil {
		cur, err := StateToV2(src.Status.CurrentState)
		if err != nil {
			return fmt.Errorf("status: %w", err)
		}
		dst.Status = &v2.BottlerocketShadowStatus{
			CurrentVersion: src.Status.CurrentVersion,
			TargetVersion:  src.Status.TargetVersion,
			CurrentState:   cur,
		}
	}
	restoreV2Fields(dst)
	return nil
}

// ConvertFrom converts the v2 hub into this v1 shadow.
func (src *BottlerocketShadow) ConvertFrom(hub runtimeHub) error {
	dst := src
	hubObj, ok := hub.(*v2.BottlerocketShadow)
	if !ok {
		return fmt.Errorf("v1: cannot convert from %T", hub)
	}
	state, err := StateFromV2(hubObj.Spec.State)
	if err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	dst.ObjectMeta = *hubObj.ObjectMeta.DeepCopy()
	dst.APIVersion, dst.Kind = GroupVersion.String(), "BottlerocketShadow"
	dst.Spec = BottlerocketShadowSpec{
		State:                    state,
		StateTransitionTimestamp: hubObj.Spec.StateTransitionTimestamp.DeepCopy(),
		Version:                  copyString(hubObj.Spec.Version),
	}
	dst.Status = nil
	if hubObj.Status != nil {
		cur, err := StateFromV2(hubObj.Status.CurrentState)
		if err != nil {
			return fmt.Errorf("status: %w", err)
		}
		dst.Status = &BottlerocketShadowStatus{
			CurrentVersion: hubObj.Status.CurrentVersion,
			TargetVersion:  hubObj.Status.TargetVersion,
			CurrentState:   cur,
		}
	}
	keepV2Fields(dst, hubObj)
	return nil
}

// runtimeHub is controller-runtime's conversion.Hub, spelled out so that api/* imports only
// apimachinery.
type runtimeHub interface {
	runtime.Object
	Hub()
}

func copyString(s *string) *string {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}
