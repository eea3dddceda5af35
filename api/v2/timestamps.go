package v2

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// The CRD types the shadows' timestamps as any string, as upstream's does (docs/install.md,
// "What differs from upstream's CRD"): upstream's components and ours write RFC 3339, but a
// person may write anything, and a shadow we cannot decode would stop the controller's whole
// cache. So the spec and the status decode their timestamps with DecodeTimestamp, and every
// other field as apimachinery decodes it (keys are case-sensitive).

// timestampLayouts are the spellings DecodeTimestamp reads, after upper-casing and a 'T'
// between date and time: RFC 3339 (any fraction of a second), its offset without a colon, and
// no offset at all, read as UTC.
var timestampLayouts = []string{time.RFC3339, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999"}

// ParseTimestamp reads a timestamp string: RFC 3339, or a close ISO 8601 spelling (lower case,
// a space instead of the 'T', an offset without a colon, no offset meaning UTC). It returns nil
// for anything else, the empty string included.
func ParseTimestamp(s string) *metav1.Time {
	s = strings.ToUpper(strings.TrimSpace(s))
	if len(s) > 10 && s[10] == ' ' {
		s = s[:10] + "T" + s[11:]
	}
	for _, layout := range timestampLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			m := metav1.NewTime(t.Local()) // as metav1.Time decodes
			return &m
		}
	}
	return nil
}

// DecodeTimestamp decodes a timestamp field: null, or a string read by ParseTimestamp (nil when
// it cannot be). Only JSON other than a string or null is an error, as the CRD refuses it.
func DecodeTimestamp(raw []byte) (*metav1.Time, error) {
	if raw == nil || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := utiljson.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("timestamp %s is not a string", raw)
	}
	return ParseTimestamp(s), nil
}

// DecodeTimestampInto decodes the timestamp field name of a document into *dst with
// DecodeTimestamp, naming the field in the error. raw is nil when the document has no such
// field: *dst is then left as it was, as encoding/json leaves a field it does not see.
func DecodeTimestampInto(raw []byte, name string, dst **metav1.Time) error {
	if raw == nil {
		return nil
	}
	t, err := DecodeTimestamp(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	*dst = t
	return nil
}

// UnmarshalJSON decodes a spec, its state_transition_timestamp with DecodeTimestamp.
func (s *BottlerocketShadowSpec) UnmarshalJSON(b []byte) error {
	type plain BottlerocketShadowSpec // without this method
	in := struct {
		*plain
		StateTransitionTimestamp json.RawMessage `json:"state_transition_timestamp"`
	}{plain: (*plain)(s)}
	if err := utiljson.Unmarshal(b, &in); err != nil {
		return err
	}
	return DecodeTimestampInto(in.StateTransitionTimestamp, "state_transition_timestamp", &s.StateTransitionTimestamp)
}

// UnmarshalJSON decodes a status, its state_transition_failure_timestamp with DecodeTimestamp.
func (s *BottlerocketShadowStatus) UnmarshalJSON(b []byte) error {
	type plain BottlerocketShadowStatus // without this method
	in := struct {
		*plain
		StateTransitionFailureTimestamp json.RawMessage `json:"state_transition_failure_timestamp"`
	}{plain: (*plain)(s)}
	if err := utiljson.Unmarshal(b, &in); err != nil {
		return err
	}
	return DecodeTimestampInto(in.StateTransitionFailureTimestamp, "state_transition_failure_timestamp", &s.StateTransitionFailureTimestamp)
}
