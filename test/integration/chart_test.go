package integration

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/bottlerocket-os/brupop-go/deploy"
)

// notInTestCluster are the API groups of the charts' objects whose CRDs the test control plane
// lacks; deploy's tests check those objects by structure.
var notInTestCluster = map[string]bool{"cert-manager.io": true, "monitoring.coreos.com": true}

// TestChartsPassAPIServerValidation server-side applies, as a dry run, every object both charts
// render, with the defaults and with every value set, so the API server validates them.
func TestChartsPassAPIServerValidation(t *testing.T) {
	c := adminClient(t)
	ns := newNamespace(t, c)
	root := filepath.Join("..", "..")
	raw, err := os.ReadFile(filepath.Join(root, "deploy", "testdata", "values-all.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var everyValue map[string]any
	if err := yaml.Unmarshal(raw, &everyValue); err != nil {
		t.Fatal(err)
	}
	for name, values := range map[string]map[string]any{"defaults": {}, "every value": everyValue} {
		t.Run(name, func(t *testing.T) {
			values["namespace"] = ns
			crdValues := map[string]any{"namespace": ns}
			if port, ok := values["apiserver_service_port"]; ok {
				crdValues["apiserver_service_port"] = port
			}
			applied := 0
			for chart, v := range map[string]map[string]any{deploy.ShadowChart: crdValues, deploy.OperatorChart: values} {
				objs, err := deploy.Render(deploy.ChartDir(root, chart), chart, v)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range objs {
					u := o.Object
					if notInTestCluster[u.GroupVersionKind().Group] {
						continue
					}
					err := c.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(u),
						client.FieldOwner("brupop-chart-test"), client.ForceOwnership, client.DryRunAll)
					if err != nil {
						t.Errorf("%s %s (%s): %v", u.GetKind(), u.GetName(), o.Source, err)
					}
					applied++
				}
			}
			if applied < 18 {
				t.Errorf("applied %d objects; the charts render at least 18 the API server knows", applied)
			}
		})
	}
}
