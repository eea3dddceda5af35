package apiserver

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// TestStatusPatchClearsTheLastFailure checks that a status without failure fields is sent with
// explicit nulls, so that the merge patch removes the last failure's timestamp and reason instead
// of keeping them for ever.
func TestStatusPatchClearsTheLastFailure(t *testing.T) {
	raw, err := statusPatch(&v2.BottlerocketShadowStatus{
		CurrentVersion: "1.21.0", TargetVersion: "1.21.0", CurrentState: v2.StateIdle,
	})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"apiVersion": "brupop.bottlerocket.aws/v2", "kind": "BottlerocketShadow",
		"status": map[string]any{
			"current_version": "1.21.0", "target_version": "1.21.0", "current_state": "Idle", "crash_count": float64(0),
			"state_transition_failure_timestamp": nil, "failure_reason": nil, "conditions": nil,
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("patch (-want +got):\n%s", d)
	}
}
