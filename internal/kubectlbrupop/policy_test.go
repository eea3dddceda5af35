package kubectlbrupop

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

func TestPlanChange(t *testing.T) {
	policy := func(paused bool, annotations map[string]string, halted ...string) *v2.FleetPolicy {
		fp := &v2.FleetPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "default", Annotations: annotations},
			Spec: v2.FleetPolicySpec{Paused: paused}}
		for _, v := range halted {
			fp.Status.Versions = append(fp.Status.Versions, v2.FleetPolicyVersionStatus{Version: v, Halted: true})
		}
		return fp
	}
	annotate := "kubectl annotate bfp default -n ns brupop.bottlerocket.aws/resume=1.21.0 --overwrite"
	cases := []struct {
		name  string
		fp    *v2.FleetPolicy
		d     desired
		patch string
		want  PolicyChange
	}{
		{name: "pause", fp: policy(false, nil), d: desired{paused: true}, patch: `{"spec":{"paused":true}}`,
			want: PolicyChange{Policy: "ns/default", Changes: []string{"spec.paused: false -> true"},
				Commands: []string{`kubectl patch bfp default -n ns --type merge -p '{"spec":{"paused":true}}'`}}},
		{name: "pause when paused: nothing", fp: policy(true, nil), d: desired{paused: true},
			want: PolicyChange{Policy: "ns/default"}},
		{name: "resume clears the field", fp: policy(true, nil), d: desired{}, patch: `{"spec":{"paused":null}}`,
			want: PolicyChange{Policy: "ns/default", Changes: []string{"spec.paused: true -> false"},
				Commands: []string{`kubectl patch bfp default -n ns --type merge -p '{"spec":{"paused":null}}'`}}},
		{name: "resume a halted version", fp: policy(false, nil, "1.21.0"), d: desired{resume: "1.21.0"},
			patch: `{"metadata":{"annotations":{"brupop.bottlerocket.aws/resume":"1.21.0"}}}`,
			want: PolicyChange{Policy: "ns/default", Changes: []string{`metadata.annotations[brupop.bottlerocket.aws/resume]: "" -> "1.21.0"`},
				Commands: []string{annotate}}},
		{name: "resume a version that is not halted warns", fp: policy(true, nil, "1.20.0"), d: desired{resume: "1.21.0"},
			patch: `{"metadata":{"annotations":{"brupop.bottlerocket.aws/resume":"1.21.0"}},"spec":{"paused":null}}`,
			want: PolicyChange{Policy: "ns/default",
				Changes:  []string{"spec.paused: true -> false", `metadata.annotations[brupop.bottlerocket.aws/resume]: "" -> "1.21.0"`},
				Notes:    []string{"1.21.0 is not halted (halted: 1.20.0); the controller records the resume anyway."},
				Commands: []string{`kubectl patch bfp default -n ns --type merge -p '{"spec":{"paused":null}}'`, annotate}}},
		{name: "resume already requested", fp: policy(false, map[string]string{v2.ResumeAnnotation: "1.21.0"}, "1.21.0"), d: desired{resume: "1.21.0"},
			want: PolicyChange{Policy: "ns/default", Commands: []string{annotate},
				Notes: []string{"The resume of 1.21.0 is already requested; the controller has not acknowledged it yet."}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			patch, got := planChange(tc.fp, tc.d)
			if string(patch) != tc.patch {
				t.Errorf("patch = %s, want %s", patch, tc.patch)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("planChange mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
