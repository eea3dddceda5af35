package deploy_test

import (
	"os"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/bottlerocket-os/brupop-go/deploy"
)

// root is the repository's root, seen from this package's directory.
const root = ".."

// rendered is the output of one chart: its objects by kind and name.
type rendered struct {
	objs []deploy.Object
}

// render renders chart with values (nil: the defaults).
func render(t *testing.T, chart string, values map[string]any) rendered {
	t.Helper()
	objs, err := deploy.Render(deploy.ChartDir(root, chart), chart, values)
	if err != nil {
		t.Fatal(err)
	}
	return rendered{objs: objs}
}

// valuesFile reads a values file of testdata.
func valuesFile(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// get returns the object of kind and name, failing the test when there is none.
func (r rendered) get(t *testing.T, kind, name string) *unstructured.Unstructured {
	t.Helper()
	if u := r.find(kind, name); u != nil {
		return u
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return nil
}

func (r rendered) find(kind, name string) *unstructured.Unstructured {
	for _, o := range r.objs {
		if o.Object.GetKind() == kind && o.Object.GetName() == name {
			return o.Object
		}
	}
	return nil
}

// into converts u into the typed object out.
func into(t *testing.T, u *unstructured.Unstructured, out any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

// workload is one of the three pod templates of the operator chart.
type workload struct {
	kind, name, component string
}

var (
	agentWorkload      = workload{"DaemonSet", "brupop-agent", "agent"}
	apiserverWorkload  = workload{"Deployment", "brupop-apiserver", "apiserver"}
	controllerWorkload = workload{"Deployment", "brupop-controller-deployment", "brupop-controller"}
	workloads          = []workload{agentWorkload, apiserverWorkload, controllerWorkload}
)

// pod returns the pod template of w.
func (r rendered) pod(t *testing.T, w workload) corev1.PodTemplateSpec {
	t.Helper()
	u := r.get(t, w.kind, w.name)
	if w.kind == "DaemonSet" {
		var ds appsv1.DaemonSet
		into(t, u, &ds)
		return ds.Spec.Template
	}
	var d appsv1.Deployment
	into(t, u, &d)
	return d.Spec.Template
}

// container returns the only container of w's pods.
func (r rendered) container(t *testing.T, w workload) corev1.Container {
	t.Helper()
	p := r.pod(t, w)
	if len(p.Spec.Containers) != 1 {
		t.Fatalf("%s has %d containers, want 1", w.name, len(p.Spec.Containers))
	}
	return p.Spec.Containers[0]
}

// getenv returns the environment a container of w would see on node, in namespace ns: its
// literal values and the field references the chart uses, resolved.
func (r rendered) getenv(t *testing.T, w workload, node string) func(string) string {
	t.Helper()
	u := r.get(t, w.kind, w.name)
	env := map[string]string{}
	for _, e := range r.container(t, w).Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName":
			env[e.Name] = node
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			env[e.Name] = u.GetNamespace()
		default:
			t.Fatalf("%s: env %s has a source the test does not resolve: %+v", w.name, e.Name, e.ValueFrom)
		}
	}
	return func(name string) string { return env[name] }
}

// mountOf returns the mount path of the volume of w's pods that has the source want reports.
func (r rendered) mountOf(t *testing.T, w workload, want func(corev1.Volume) bool) string {
	t.Helper()
	p := r.pod(t, w)
	for _, v := range p.Spec.Volumes {
		if !want(v) {
			continue
		}
		for _, m := range p.Spec.Containers[0].VolumeMounts {
			if m.Name == v.Name {
				return m.MountPath
			}
		}
		t.Fatalf("%s: volume %s is not mounted", w.name, v.Name)
	}
	t.Fatalf("%s: no such volume", w.name)
	return ""
}

// secretVolume matches the volume of the named secret.
func secretVolume(name string) func(corev1.Volume) bool {
	return func(v corev1.Volume) bool { return v.Secret != nil && v.Secret.SecretName == name }
}
