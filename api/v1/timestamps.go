package v1

import (
	"encoding/json"

	utiljson "k8s.io/apimachinery/pkg/util/json"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// UnmarshalJSON decodes a spec, its state_transition_timestamp with v2.DecodeTimestamp: the CRD
// takes any string there, as upstream's, and one that is not a time reads as absent.
func (s *BottlerocketShadowSpec) UnmarshalJSON(b []byte) error {
	type plain BottlerocketShadowSpec // without this method
	in := struct {
		*plain
		StateTransitionTimestamp json.RawMessage `json:"state_transition_timestamp"`
	}{plain: (*plain)(s)}
	if err := utiljson.Unmarshal(b, &in); err != nil {
		return err
	}
	return v2.DecodeTimestampInto(in.StateTransitionTimestamp, "state_transition_timestamp", &s.StateTransitionTimestamp)
}
