package v2

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

func TestParseTimestamp(t *testing.T) {
	want := time.Date(2022, 7, 9, 19, 32, 38, 0, time.UTC)
	for in, ok := range map[string]bool{
		"2022-07-09T19:32:38Z":                true,
		"2022-07-09T19:32:38.609610964+00:00": true, // upstream's to_rfc3339
		"2022-07-09T21:32:38+02:00":           true,
		"2022-07-09t19:32:38z":                true,
		"2022-07-09 19:32:38Z":                true,
		"2022-07-09T19:32:38+0000":            true,
		"2022-07-09T19:32:38":                 true, // no offset: UTC
		"":                                    false,
		"yesterday":                           false,
		"2022-07-09":                          false,
		"1657395158":                          false,
	} {
		got := ParseTimestamp(in)
		if (got != nil) != ok {
			t.Errorf("ParseTimestamp(%q) = %v, want parsed %v", in, got, ok)
			continue
		}
		if got != nil && !got.Truncate(time.Second).Equal(want) {
			t.Errorf("ParseTimestamp(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestShadowDecodesAnyTimestampString checks that a shadow whose timestamps the CRD accepts (any
// string) decodes, with both decoders our clients use: an unreadable timestamp is absent, the
// other fields are intact, and only a non-string is an error.
func TestShadowDecodesAnyTimestampString(t *testing.T) {
	const doc = `{"apiVersion":"brupop.bottlerocket.aws/v2","kind":"BottlerocketShadow","metadata":{"name":"brs-a"},
		"spec":{"state":"Idle","state_transition_timestamp":%s,"version":"1.21.0"},
		"status":{"current_version":"1.20.0","target_version":"1.21.0","current_state":"ErrorReset","crash_count":4294967295,
		"state_transition_failure_timestamp":%s,"failure_reason":"DrainTimeout: x"}}`
	decoders := map[string]func([]byte, any) error{"encoding/json": json.Unmarshal, "apimachinery": utiljson.Unmarshal}
	for _, tc := range []struct {
		spec, failure string
		wantSpec      bool
		wantFailure   bool
	}{
		{spec: `"2022-07-09T19:32:38Z"`, failure: `"2022-07-09T19:32:38.609610964+00:00"`, wantSpec: true, wantFailure: true},
		{spec: `"yesterday"`, failure: `""`},
		{spec: `null`, failure: `"2022-07-09 19:32:38Z"`, wantFailure: true},
	} {
		for name, decode := range decoders {
			raw := strings.Replace(strings.Replace(doc, "%s", tc.spec, 1), "%s", tc.failure, 1)
			var s BottlerocketShadow
			if err := decode([]byte(raw), &s); err != nil {
				t.Errorf("%s: spec %s, failure %s: %v", name, tc.spec, tc.failure, err)
				continue
			}
			if (s.Spec.StateTransitionTimestamp != nil) != tc.wantSpec || (s.Status.StateTransitionFailureTimestamp != nil) != tc.wantFailure {
				t.Errorf("%s: spec %s, failure %s: decoded %v and %v", name, tc.spec, tc.failure, s.Spec.StateTransitionTimestamp, s.Status.StateTransitionFailureTimestamp)
			}
			if s.Spec.State != StateIdle || s.Spec.Version == nil || *s.Spec.Version != "1.21.0" || s.Status.CrashCount != 4294967295 ||
				s.Status.CurrentState != StateErrorReset || s.Status.FailureReason != "DrainTimeout: x" || s.Name != "brs-a" {
				t.Errorf("%s: other fields lost: %+v %+v", name, s.Spec, s.Status)
			}
		}
	}
	for name, decode := range decoders {
		var s BottlerocketShadow
		if err := decode([]byte(strings.Replace(strings.Replace(doc, "%s", "12", 1), "%s", "null", 1)), &s); err == nil {
			t.Errorf("%s: a number as timestamp decoded", name)
		}
		if err := decode([]byte(strings.Replace(strings.Replace(strings.Replace(doc, "%s", "null", 1), "%s", "null", 1), "4294967295", "4294967296", 1)), &s); err == nil {
			t.Errorf("%s: crash_count 4294967296 decoded into upstream's u32", name)
		}
	}
}

// TestShadowDecodingMergesLikeEncodingJSON checks that decoding into a shadow keeps a timestamp
// the document does not mention, as the generic decoder would.
func TestShadowDecodingMergesLikeEncodingJSON(t *testing.T) {
	var spec BottlerocketShadowSpec
	if err := json.Unmarshal([]byte(`{"state":"Idle","state_transition_timestamp":"2022-07-09T19:32:38Z"}`), &spec); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(`{"state":"RebootedIntoUpdate"}`), &spec); err != nil {
		t.Fatal(err)
	}
	if spec.State != StateRebootedIntoUpdate || spec.StateTransitionTimestamp == nil {
		t.Errorf("spec = %+v", spec)
	}
}

// TestShadowCRDMatchesUpstreamTypes checks the generated CRD against upstream's schema for the
// fields whose type matters to a drop-in: timestamps are any string (no format), and crash_count
// is a u32.
func TestShadowCRDMatchesUpstreamTypes(t *testing.T) {
	raw, err := os.ReadFile("../../config/crd/brupop.bottlerocket.aws_bottlerocketshadows.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatal(err)
	}
	for _, v := range crd.Spec.Versions {
		props := v.Schema.OpenAPIV3Schema.Properties
		fields := map[string]apiextensionsv1.JSONSchemaProps{"spec.state_transition_timestamp": props["spec"].Properties["state_transition_timestamp"]}
		if v.Name == "v2" {
			fields["status.state_transition_failure_timestamp"] = props["status"].Properties["state_transition_failure_timestamp"]
			c := props["status"].Properties["crash_count"]
			if c.Type != "integer" || c.Format != "uint32" || c.Minimum == nil || *c.Minimum != 0 || c.Maximum == nil || *c.Maximum != 4294967295 {
				t.Errorf("v2 crash_count = %+v, want an integer from 0 to 4294967295 (uint32)", c)
			}
		}
		for name, f := range fields {
			if f.Type != "string" || f.Format != "" || f.Pattern != "" || !f.Nullable {
				t.Errorf("%s %s = %+v, want a nullable string of any format, as upstream", v.Name, name, f)
			}
		}
	}
}
