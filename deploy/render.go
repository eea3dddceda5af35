// Package deploy renders Brupop's Helm charts (deploy/charts) with Helm's own template engine, as
// `helm template` would, for the generated all-in-one manifest (hack/chartgen) and for the tests
// that check the charts against the API server, config/rbac and the binaries' option parsers.
package deploy

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// The charts, by directory name under deploy/charts.
const (
	// ShadowChart holds the CustomResourceDefinitions.
	ShadowChart = "bottlerocket-shadow"
	// OperatorChart holds everything else: workloads, RBAC, Services, cert-manager objects.
	OperatorChart = "bottlerocket-update-operator"
)

// Object is one rendered Kubernetes object and the template it came from.
type Object struct {
	// Source is the template's path inside the chart, such as templates/agent-daemonset.yaml.
	Source string
	// YAML is the object as the template rendered it.
	YAML string
	// Object is YAML decoded.
	Object *unstructured.Unstructured
}

// Render renders the chart in dir for an install of a release named release, with values
// overriding the chart's values.yaml, and returns the objects in Helm's install order.
func Render(dir, release string, values map[string]any) ([]Object, error) {
	chrt, err := loader.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("deploy: load chart %s: %w", dir, err)
	}
	opts := chartutil.ReleaseOptions{Name: release, Namespace: "default", IsInstall: true, Revision: 1}
	vals, err := chartutil.ToRenderValues(chrt, values, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, fmt.Errorf("deploy: values of chart %s: %w", chrt.Name(), err)
	}
	files, err := engine.Render(chrt, vals)
	if err != nil {
		return nil, fmt.Errorf("deploy: render chart %s: %w", chrt.Name(), err)
	}
	for name := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			delete(files, name)
		}
	}
	_, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return nil, fmt.Errorf("deploy: sort manifests of chart %s: %w", chrt.Name(), err)
	}
	prefix := chrt.Name() + "/"
	objs := make([]Object, 0, len(manifests))
	for _, m := range manifests {
		u := &unstructured.Unstructured{}
		if err := yaml.UnmarshalStrict([]byte(m.Content), &u.Object); err != nil {
			return nil, fmt.Errorf("deploy: %s: %w", m.Name, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		objs = append(objs, Object{Source: strings.TrimPrefix(m.Name, prefix), YAML: m.Content, Object: u})
	}
	return objs, nil
}

// ChartDir is the directory of the chart named name in the repository whose root is root.
func ChartDir(root, name string) string {
	return filepath.Join(root, "deploy", "charts", name)
}

// Manifest joins objects into one multi-document YAML stream, each preceded by its source.
func Manifest(chart string, objs []Object) []byte {
	var b bytes.Buffer
	for _, o := range objs {
		fmt.Fprintf(&b, "---\n# Source: %s/%s\n%s\n", chart, o.Source, strings.TrimSpace(o.YAML))
	}
	return b.Bytes()
}
