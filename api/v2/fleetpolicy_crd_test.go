package v2

import (
	"os"
	"regexp"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// TestFleetPolicyConcurrencyPattern checks the generated CRD rejects what ParseConcurrency
// rejects (0, garbage, percentages outside 1-100) before it reaches the controller.
func TestFleetPolicyConcurrencyPattern(t *testing.T) {
	raw, err := os.ReadFile("../../config/crd/brupop.bottlerocket.aws_fleetpolicies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatal(err)
	}
	field := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["maxConcurrentUpdates"]
	re, err := regexp.Compile(field.Pattern)
	if err != nil {
		t.Fatalf("pattern %q: %v", field.Pattern, err)
	}
	for in, want := range map[string]bool{
		"1": true, "25": true, "unlimited": true, "Unlimited": true, "1%": true, "50%": true, "100%": true,
		"0": false, "00": false, "01": false, "0%": false, "101%": false, "-1": false, "": false, "two": false, "10 %": false,
	} {
		if got := re.MatchString(in); got != want {
			t.Errorf("pattern %q matches %q = %v, want %v", field.Pattern, in, got, want)
		}
	}
}
