package apiserver

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	v1 "github.com/bottlerocket-os/brupop-go/api/v1"
)

func review(desired string, objects ...string) *apiextensionsv1.ConversionReview {
	in := &apiextensionsv1.ConversionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "ConversionReview"},
		Request:  &apiextensionsv1.ConversionRequest{UID: "req-1", DesiredAPIVersion: desired},
	}
	for _, o := range objects {
		in.Request.Objects = append(in.Request.Objects, runtime.RawExtension{Raw: []byte(o)})
	}
	return in
}

const meta = `"metadata":{"name":"brs-a","namespace":"ns","uid":"u1","labels":{"l":"1"},"annotations":{"a":"2"}}`

func TestConvertReview(t *testing.T) {
	tests := []struct {
		name        string
		in          *apiextensionsv1.ConversionReview
		wantStatus  string
		wantObjects []map[string]any
	}{
		{
			name: "v1 to v2 keeps labels and annotations",
			in: review("brupop.bottlerocket.aws/v2", `{"apiVersion":"brupop.bottlerocket.aws/v1","kind":"BottlerocketShadow",`+meta+
				`,"spec":{"state":"PerformedUpdate","state_transition_timestamp":null,"version":"1.2.3"},"status":{"current_version":"1.2.2","target_version":"1.2.3","current_state":"StagedUpdate"}}`),
			wantStatus: metav1.StatusSuccess,
			wantObjects: []map[string]any{{
				"apiVersion": "brupop.bottlerocket.aws/v2", "kind": "BottlerocketShadow",
				"metadata": map[string]any{"name": "brs-a", "namespace": "ns", "uid": "u1", "labels": map[string]any{"l": "1"}, "annotations": map[string]any{"a": "2"}},
				"spec":     map[string]any{"state": "StagedAndPerformedUpdate", "state_transition_timestamp": nil, "version": "1.2.3"},
				"status":   map[string]any{"current_version": "1.2.2", "target_version": "1.2.3", "current_state": "StagedAndPerformedUpdate", "crash_count": float64(0)},
			}},
		},
		{
			name: "v2 ErrorReset to v1 MonitoringUpdate",
			in: review("brupop.bottlerocket.aws/v1", `{"apiVersion":"brupop.bottlerocket.aws/v2","kind":"BottlerocketShadow",`+meta+
				`,"spec":{"state":"Idle","state_transition_timestamp":null,"version":null},"status":{"current_version":"1.2.2","target_version":"1.2.3","current_state":"ErrorReset","crash_count":3}}`),
			wantStatus: metav1.StatusSuccess,
			wantObjects: []map[string]any{{
				"apiVersion": "brupop.bottlerocket.aws/v1", "kind": "BottlerocketShadow",
				"metadata": map[string]any{"name": "brs-a", "namespace": "ns", "uid": "u1", "labels": map[string]any{"l": "1"}, "annotations": map[string]any{
					"a": "2", v1.V2FieldsAnnotation: `{"status":{"current_state":"ErrorReset","crash_count":3}}`}},
				"spec":   map[string]any{"state": "Idle", "state_transition_timestamp": nil, "version": nil},
				"status": map[string]any{"current_version": "1.2.2", "target_version": "1.2.3", "current_state": "MonitoringUpdate"},
			}},
		},
		{
			name: "v2 to v1 with upstream's largest crash_count and timestamps the CRD takes but no clock reads",
			in: review("brupop.bottlerocket.aws/v1", `{"apiVersion":"brupop.bottlerocket.aws/v2","kind":"BottlerocketShadow",`+meta+
				`,"spec":{"state":"Idle","state_transition_timestamp":"yesterday","version":"1.2.3"},"status":{"current_version":"1.2.2","target_version":"1.2.3","current_state":"ErrorReset","crash_count":4294967295,"state_transition_failure_timestamp":""}}`),
			wantStatus: metav1.StatusSuccess,
			wantObjects: []map[string]any{{
				"apiVersion": "brupop.bottlerocket.aws/v1", "kind": "BottlerocketShadow",
				"metadata": map[string]any{"name": "brs-a", "namespace": "ns", "uid": "u1", "labels": map[string]any{"l": "1"}, "annotations": map[string]any{
					"a": "2", v1.V2FieldsAnnotation: `{"status":{"current_state":"ErrorReset","crash_count":4294967295}}`}},
				"spec":   map[string]any{"state": "Idle", "state_transition_timestamp": "yesterday", "version": "1.2.3"},
				"status": map[string]any{"current_version": "1.2.2", "target_version": "1.2.3", "current_state": "MonitoringUpdate"},
			}},
		},
		{
			name: "v1 to v2 keeps upstream's spelling of a timestamp",
			in: review("brupop.bottlerocket.aws/v2", `{"apiVersion":"brupop.bottlerocket.aws/v1","kind":"BottlerocketShadow",`+meta+
				`,"spec":{"state":"RebootedIntoUpdate","state_transition_timestamp":"2022-07-09T19:32:38.609610964+00:00","version":"1.8.0"}}`),
			wantStatus: metav1.StatusSuccess,
			wantObjects: []map[string]any{{
				"apiVersion": "brupop.bottlerocket.aws/v2", "kind": "BottlerocketShadow",
				"metadata": map[string]any{"name": "brs-a", "namespace": "ns", "uid": "u1", "labels": map[string]any{"l": "1"}, "annotations": map[string]any{"a": "2"}},
				"spec":     map[string]any{"state": "RebootedIntoUpdate", "state_transition_timestamp": "2022-07-09T19:32:38.609610964+00:00", "version": "1.8.0"},
			}},
		},
		{
			name:       "unknown desired version",
			in:         review("brupop.bottlerocket.aws/v3", `{"apiVersion":"brupop.bottlerocket.aws/v2","kind":"BottlerocketShadow",`+meta+`,"spec":{"state":"Idle"}}`),
			wantStatus: metav1.StatusFailure,
		},
		{
			name:       "unknown state",
			in:         review("brupop.bottlerocket.aws/v2", `{"apiVersion":"brupop.bottlerocket.aws/v1","kind":"BottlerocketShadow",`+meta+`,"spec":{"state":"Rebooting"}}`),
			wantStatus: metav1.StatusFailure,
		},
		{
			name:       "not JSON",
			in:         review("brupop.bottlerocket.aws/v2", `{`),
			wantStatus: metav1.StatusFailure,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := ConvertReview(tt.in)
			if out.APIVersion != tt.in.APIVersion || out.Kind != tt.in.Kind || out.Response.UID != "req-1" {
				t.Errorf("review not echoed: %+v %s", out.TypeMeta, out.Response.UID)
			}
			if out.Response.Result.Status != tt.wantStatus {
				t.Fatalf("result = %+v, want %s", out.Response.Result, tt.wantStatus)
			}
			if tt.wantStatus == metav1.StatusFailure {
				if out.Response.ConvertedObjects != nil || out.Response.Result.Message == "" {
					t.Errorf("failure with objects or without a message: %+v", out.Response)
				}
				return
			}
			var got []map[string]any
			for _, o := range out.Response.ConvertedObjects {
				var m map[string]any
				if err := json.Unmarshal(o.Raw, &m); err != nil {
					t.Fatal(err)
				}
				got = append(got, m)
			}
			if diff := cmp.Diff(tt.wantObjects, got); diff != "" {
				t.Errorf("converted objects (-want +got):\n%s", diff)
			}
		})
	}
}
