package statemachine

import (
	"encoding/json"
	"time"
)

// RecordAnnotation is the shadow annotation where the controller keeps the failures it detected
// itself (Record), since only the agent writes status.
const RecordAnnotation = "brupop.bottlerocket.aws/controller-failures"

// Record is the controller's memory of the failures it detected on one node since its last
// completed update. Its Count adds to status.crash_count and its At competes with
// status.state_transition_failure_timestamp in the backoff.
type Record struct {
	// Count is the number of controller-detected failures.
	Count int32 `json:"count"`
	// At is when the last one happened.
	At time.Time `json:"at"`
	// Reason is the reason of the last one.
	Reason string `json:"reason"`
}

// String returns the annotation value of the record.
func (r Record) String() string {
	b, _ := json.Marshal(r) // a struct of plain fields always marshals
	return string(b)
}

// RecordFromAnnotations returns the record kept in annotations, and the zero Record when there is
// none or it cannot be read (a hand-edited value must not block the node forever).
func RecordFromAnnotations(annotations map[string]string) Record {
	v, ok := annotations[RecordAnnotation]
	if !ok {
		return Record{}
	}
	var r Record
	if json.Unmarshal([]byte(v), &r) != nil || r.Count < 0 {
		return Record{}
	}
	return r
}
