package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	v1 "github.com/bottlerocket-os/brupop-go/api/v1"
	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// ConvertReview answers a ConversionReview for BottlerocketShadows: every object is converted to
// the desired version with the state mappings of api/v1 (labels and annotations kept). The
// answer echoes the review's apiVersion and kind and the request's UID; on any failure its
// result is Failed with the reason and no object is returned.
func ConvertReview(in *apiextensionsv1.ConversionReview) *apiextensionsv1.ConversionReview {
	out := &apiextensionsv1.ConversionReview{TypeMeta: in.TypeMeta, Response: &apiextensionsv1.ConversionResponse{}}
	if in.Request == nil {
		out.Response.Result = failed(errors.New("conversion review has no request"))
		return out
	}
	out.Response.UID = in.Request.UID
	converted := make([]runtime.RawExtension, 0, len(in.Request.Objects))
	for i, obj := range in.Request.Objects {
		raw, err := convertObject(obj.Raw, in.Request.DesiredAPIVersion)
		if err != nil {
			out.Response.Result = failed(fmt.Errorf("object %d: %w", i, err))
			return out
		}
		converted = append(converted, runtime.RawExtension{Raw: raw})
	}
	out.Response.ConvertedObjects = converted
	out.Response.Result = metav1.Status{Status: metav1.StatusSuccess}
	return out
}

func failed(err error) metav1.Status {
	return metav1.Status{Status: metav1.StatusFailure, Message: err.Error()}
}

// convertObject converts one serialized shadow to the desired apiVersion.
func convertObject(raw []byte, desired string) ([]byte, error) {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(raw, &tm); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if tm.APIVersion == desired {
		return raw, nil
	}
	v1GV, v2GV := v1.GroupVersion.String(), v2.GroupVersion.String()
	switch {
	case tm.APIVersion == v1GV && desired == v2GV:
		var src v1.BottlerocketShadow
		if err := json.Unmarshal(raw, &src); err != nil {
			return nil, fmt.Errorf("decode %s: %w", v1GV, err)
		}
		var dst v2.BottlerocketShadow
		if err := src.ConvertTo(&dst); err != nil {
			return nil, fmt.Errorf("convert %s to %s: %w", v1GV, v2GV, err)
		}
		return marshalKeepingTimestamp(raw, &dst)
	case tm.APIVersion == v2GV && desired == v1GV:
		var src v2.BottlerocketShadow
		if err := json.Unmarshal(raw, &src); err != nil {
			return nil, fmt.Errorf("decode %s: %w", v2GV, err)
		}
		var dst v1.BottlerocketShadow
		if err := dst.ConvertFrom(&src); err != nil {
			return nil, fmt.Errorf("convert %s to %s: %w", v2GV, v1GV, err)
		}
		return marshalKeepingTimestamp(raw, &dst)
	}
	return nil, fmt.Errorf("cannot convert %q to %q", tm.APIVersion, desired)
}

// marshalKeepingTimestamp marshals the converted object dst with the source's (src)
// spec.state_transition_timestamp as it was written. The CRD takes any string there, as
// upstream's (docs/install.md, "What differs from upstream's CRD"); the typed conversion reads
// one it cannot parse as absent and writes a parsed one in its own spelling, and converting must
// not change a value.
func marshalKeepingTimestamp(src []byte, dst any) ([]byte, error) {
	out, err := json.Marshal(dst)
	if err != nil {
		return nil, err
	}
	var in struct {
		Spec struct {
			Timestamp *string `json:"state_transition_timestamp"`
		} `json:"spec"`
	}
	if json.Unmarshal(src, &in) != nil || in.Spec.Timestamp == nil {
		return out, nil // null, absent: the typed conversion kept it
	}
	d := json.NewDecoder(bytes.NewReader(out))
	d.UseNumber() // crash_count and the rest as written
	var obj map[string]any
	if err := d.Decode(&obj); err != nil {
		return nil, err
	}
	spec, ok := obj["spec"].(map[string]any)
	if !ok || spec["state_transition_timestamp"] == *in.Spec.Timestamp {
		return out, nil
	}
	spec["state_transition_timestamp"] = *in.Spec.Timestamp
	return json.Marshal(obj)
}
