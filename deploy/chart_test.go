package deploy_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/bottlerocket-os/brupop-go/deploy"
)

// componentOf maps the operator chart's objects to the component their labels name; objects
// upstream leaves unlabelled (cert-manager's) are absent.
var componentOf = map[string]string{
	"PriorityClass/brupop-controller-high-priority":                   "brupop-controller",
	"PodDisruptionBudget/brupop-apiserver":                            "apiserver",
	"ServiceAccount/brupop-agent-service-account":                     "agent",
	"ServiceAccount/brupop-apiserver-service-account":                 "apiserver",
	"ServiceAccount/brupop-controller-service-account":                "brupop-controller",
	"ClusterRole/brupop-agent-role":                                   "agent",
	"ClusterRole/brupop-apiserver-role":                               "apiserver",
	"ClusterRole/brupop-controller-role":                              "brupop-controller",
	"ClusterRoleBinding/brupop-agent-role-binding":                    "agent",
	"ClusterRoleBinding/brupop-apiserver-role-binding":                "apiserver",
	"ClusterRoleBinding/brupop-apiserver-auth-delegator-role-binding": "apiserver",
	"ClusterRoleBinding/brupop-controller-role-binding":               "brupop-controller",
	"Service/brupop-apiserver":                                        "apiserver",
	"Service/brupop-controller-server":                                "brupop-controller",
	"DaemonSet/brupop-agent":                                          "agent",
	"Deployment/brupop-apiserver":                                     "apiserver",
	"Deployment/brupop-controller-deployment":                         "brupop-controller",
	"ServiceMonitor/brupop-controller":                                "brupop-controller",
}

// certManagerObjects are the cert-manager objects of the operator chart (docs/upstream.md,
// "Charts and environment").
var certManagerObjects = []string{
	"Issuer/selfsigned-issuer",
	"Certificate/brupop-selfsigned-ca",
	"Issuer/brupop-root-certificate-issuer",
	"Certificate/brupop-apiserver-certificate",
	"Certificate/brupop-apiserver-client-certificate",
}

var clusterScoped = []string{"CustomResourceDefinition", "PriorityClass", "ClusterRole", "ClusterRoleBinding"}

func key(u *unstructured.Unstructured) string { return u.GetKind() + "/" + u.GetName() }

func TestOperatorChartObjects(t *testing.T) {
	for name, tc := range map[string]struct {
		values         map[string]any
		namespace      string
		serviceMonitor bool
		fleetPolicy    bool
	}{
		"defaults":    {namespace: "brupop-bottlerocket-aws"},
		"every value": {values: valuesFile(t, "values-all.yaml"), namespace: "brupop-values-test", serviceMonitor: true, fleetPolicy: true},
	} {
		t.Run(name, func(t *testing.T) {
			r := render(t, deploy.OperatorChart, tc.values)
			var want, got []string
			for k := range componentOf {
				if k != "ServiceMonitor/brupop-controller" || tc.serviceMonitor {
					want = append(want, k)
				}
			}
			want = append(want, certManagerObjects...)
			if tc.fleetPolicy {
				want = append(want, "FleetPolicy/default")
			}
			for _, o := range r.objs {
				u := o.Object
				got = append(got, key(u))
				if key(u) == "FleetPolicy/default" {
					v, _, _ := unstructured.NestedString(u.Object, "spec", "maxVersion")
					z, _, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "zones", "maxInFlight")
					if v != "1.21.0" || fmt.Sprint(z) != "1" {
						t.Errorf("FleetPolicy spec %v: want the fleetPolicy value's (maxVersion 1.21.0, zones.maxInFlight 1)", u.Object["spec"])
					}
				}
				checkNamespace(t, u, tc.namespace)
				if c, ok := componentOf[key(u)]; ok {
					checkLabels(t, u, c)
				}
			}
			slices.Sort(want)
			slices.Sort(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("rendered objects (-want +got):\n%s", diff)
			}
		})
	}
}

func checkNamespace(t *testing.T, u *unstructured.Unstructured, ns string) {
	t.Helper()
	want := ns
	if slices.Contains(clusterScoped, u.GetKind()) {
		want = ""
	}
	if u.GetNamespace() != want {
		t.Errorf("%s: namespace %q, want %q", key(u), u.GetNamespace(), want)
	}
}

func checkLabels(t *testing.T, u *unstructured.Unstructured, component string) {
	t.Helper()
	want := map[string]string{
		"app.kubernetes.io/component":       component,
		"app.kubernetes.io/managed-by":      "brupop",
		"app.kubernetes.io/part-of":         "brupop",
		"brupop.bottlerocket.aws/component": component,
	}
	if diff := cmp.Diff(want, u.GetLabels()); diff != "" {
		t.Errorf("%s: labels (-want +got):\n%s", key(u), diff)
	}
}

// TestPlacementValues checks that every placement, resources, pod label and pull secret value
// lands in its own workload, and only there.
func TestPlacementValues(t *testing.T) {
	values := valuesFile(t, "values-all.yaml")
	r := render(t, deploy.OperatorChart, values)
	v := func(path string) any {
		got, ok := lookup(values, path)
		if !ok {
			t.Fatalf("values-all.yaml has no %s", path)
		}
		return got
	}
	for _, w := range workloads {
		t.Run(w.component, func(t *testing.T) {
			p := r.pod(t, w)
			place := "placement." + map[string]string{"agent": "agent", "apiserver": "apiserver", "brupop-controller": "controller"}[w.component]
			resources := "resources." + strings.TrimPrefix(place, "placement.") + ".resources"
			same(t, "tolerations", v(place+".tolerations"), p.Spec.Tolerations)
			same(t, "priorityClassName", v(place+".priorityClassName"), p.Spec.PriorityClassName)
			same(t, "resources", v(resources), p.Spec.Containers[0].Resources)
			same(t, "image", v("image"), p.Spec.Containers[0].Image)
			same(t, "imagePullSecrets", []any{map[string]any{"name": "brupop"}, map[string]any{"name": "mirror"}}, p.Spec.ImagePullSecrets)
			same(t, "pod labels", map[string]any{"team": "platform", "brupop.bottlerocket.aws/component": w.component}, p.Labels)
			if w == agentWorkload {
				checkAgentAffinity(t, p.Spec)
				same(t, "nodeSelector", nil, p.Spec.NodeSelector)
				same(t, "topologySpreadConstraints", nil, p.Spec.TopologySpreadConstraints)
				return
			}
			same(t, "nodeSelector", v(place+".nodeSelector"), p.Spec.NodeSelector)
			same(t, "podAffinity", v(place+".podAffinity"), p.Spec.Affinity.PodAffinity)
			same(t, "podAntiAffinity", v(place+".podAntiAffinity"), p.Spec.Affinity.PodAntiAffinity)
			if w == apiserverWorkload {
				same(t, "topologySpreadConstraints", v(place+".topologySpreadConstraints"), p.Spec.TopologySpreadConstraints)
			} else {
				same(t, "topologySpreadConstraints", nil, p.Spec.TopologySpreadConstraints)
			}
		})
	}
	var apiserver, controller appsv1.Deployment
	into(t, r.get(t, "Deployment", "brupop-apiserver"), &apiserver)
	into(t, r.get(t, "Deployment", "brupop-controller-deployment"), &controller)
	same(t, "apiserver replicas", 4, *apiserver.Spec.Replicas)
	same(t, "controller replicas", 2, *controller.Spec.Replicas)
	var pdb policyv1.PodDisruptionBudget
	into(t, r.get(t, "PodDisruptionBudget", "brupop-apiserver"), &pdb)
	same(t, "PDB maxUnavailable", intstr.FromInt32(2), *pdb.Spec.MaxUnavailable)
	same(t, "PDB selector", apiserver.Spec.Selector, pdb.Spec.Selector)
	checkServiceMonitor(t, r)
}

// checkServiceMonitor checks that the ServiceMonitor scrapes the controller Service's port.
func checkServiceMonitor(t *testing.T, r rendered) {
	t.Helper()
	var svc corev1.Service
	into(t, r.get(t, "Service", "brupop-controller-server"), &svc)
	sm := r.get(t, "ServiceMonitor", "brupop-controller").Object
	endpoints, _, _ := unstructured.NestedSlice(sm, "spec", "endpoints")
	selector, _, _ := unstructured.NestedStringMap(sm, "spec", "selector", "matchLabels")
	namespaces, _, _ := unstructured.NestedStringSlice(sm, "spec", "namespaceSelector", "matchNames")
	same(t, "ServiceMonitor endpoints", []any{map[string]any{"port": svc.Spec.Ports[0].Name}}, endpoints)
	same(t, "ServiceMonitor namespaces", []string{svc.Namespace}, namespaces)
	for k, v := range selector {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s; the controller Service has %q", k, v, svc.Labels[k])
		}
	}
}

// same fails the test when want, a value from a values file, and got differ once both are
// written as JSON (so YAML maps compare with typed structs).
func same(t *testing.T, what string, want, got any) {
	t.Helper()
	w, g := normalize(t, want), normalize(t, got)
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("%s (-values +rendered):\n%s", what, diff)
	}
}

func normalize(t *testing.T, v any) any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkAgentAffinity(t *testing.T, spec corev1.PodSpec) {
	t.Helper()
	terms := spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	want := corev1.NodeSelectorRequirement{Key: "bottlerocket.aws/updater-interface-version", Operator: corev1.NodeSelectorOpIn, Values: []string{"2.0.0"}}
	if len(terms) != 1 || !slices.ContainsFunc(terms[0].MatchExpressions, func(r corev1.NodeSelectorRequirement) bool { return cmp.Equal(r, want) }) {
		t.Errorf("agent node affinity %+v lacks %+v", terms, want)
	}
}

// TestUpstreamImagePullSecretsString checks upstream's form of image_pull_secrets, a YAML string.
func TestUpstreamImagePullSecretsString(t *testing.T) {
	r := render(t, deploy.OperatorChart, map[string]any{"image_pull_secrets": "- name: \"brupop\"\n"})
	for _, w := range workloads {
		same(t, w.name+" imagePullSecrets", []any{map[string]any{"name": "brupop"}}, r.pod(t, w).Spec.ImagePullSecrets)
	}
}

// TestCertificatesAndWebhook checks the cert-manager objects by structure (their CRDs are not in
// the test cluster) and that the CRD's conversion webhook reaches the apiserver and trusts its CA.
func TestCertificatesAndWebhook(t *testing.T) {
	for name, values := range map[string]map[string]any{"defaults": nil, "every value": valuesFile(t, "values-all.yaml")} {
		t.Run(name, func(t *testing.T) {
			ns, port := "brupop-bottlerocket-aws", "443"
			if values != nil {
				ns, port = values["namespace"].(string), values["apiserver_service_port"].(string)
			}
			op := render(t, deploy.OperatorChart, values)
			crds := render(t, deploy.ShadowChart, map[string]any{"namespace": ns, "apiserver_service_port": port})
			checkCertificates(t, op, ns)
			checkWebhook(t, op, crds, ns)
		})
	}
}

func checkCertificates(t *testing.T, r rendered, ns string) {
	t.Helper()
	spec := func(kind, name string) map[string]any {
		s, _, _ := unstructured.NestedMap(r.get(t, kind, name).Object, "spec")
		return s
	}
	same(t, "selfsigned-issuer", map[string]any{"selfSigned": map[string]any{}}, spec("Issuer", "selfsigned-issuer"))
	ca := spec("Certificate", "brupop-selfsigned-ca")
	same(t, "CA", map[string]any{
		"isCA": true, "commonName": "brupop-selfsigned-ca", "secretName": "brupop-root-ca-secret",
		"privateKey": map[string]any{"algorithm": "RSA", "encoding": "PKCS8"},
		"issuerRef":  map[string]any{"name": "selfsigned-issuer", "kind": "Issuer"},
	}, ca)
	same(t, "root issuer", map[string]any{"ca": map[string]any{"secretName": ca["secretName"]}}, spec("Issuer", "brupop-root-certificate-issuer"))
	for cert, usage := range map[string]string{"brupop-apiserver-certificate": "server auth", "brupop-apiserver-client-certificate": "client auth"} {
		same(t, cert, map[string]any{
			"secretName": cert,
			"privateKey": map[string]any{"algorithm": "RSA", "encoding": "PKCS8"},
			"dnsNames":   []any{"*." + ns + ".svc.cluster.local", "*." + ns + ".svc"},
			"usages":     []any{usage, "key encipherment", "digital signature"},
			"issuerRef":  map[string]any{"name": "brupop-root-certificate-issuer", "kind": "Issuer"},
		}, spec("Certificate", cert))
	}
	// The pods mount the secrets the Certificates fill.
	r.mountOf(t, apiserverWorkload, secretVolume("brupop-apiserver-certificate"))
	r.mountOf(t, agentWorkload, secretVolume("brupop-apiserver-client-certificate"))
}

func checkWebhook(t *testing.T, op, crds rendered, ns string) {
	t.Helper()
	var crd apiextensionsv1.CustomResourceDefinition
	into(t, crds.get(t, "CustomResourceDefinition", "bottlerocketshadows.brupop.bottlerocket.aws"), &crd)
	crds.get(t, "CustomResourceDefinition", "fleetpolicies.brupop.bottlerocket.aws")
	inject := crd.Annotations["cert-manager.io/inject-ca-from"]
	certNS, certName, _ := strings.Cut(inject, "/")
	if certNS != ns || op.find("Certificate", certName) == nil {
		t.Errorf("inject-ca-from %q names no Certificate of the chart in %s", inject, ns)
	} else if isCA, _, _ := unstructured.NestedBool(op.get(t, "Certificate", certName).Object, "spec", "isCA"); !isCA {
		t.Errorf("inject-ca-from %q names a Certificate that is not the CA", inject)
	}
	var svc corev1.Service
	into(t, op.get(t, "Service", "brupop-apiserver"), &svc)
	ref := crd.Spec.Conversion.Webhook.ClientConfig.Service
	got := fmt.Sprintf("%s/%s:%d%s", ref.Namespace, ref.Name, *ref.Port, *ref.Path)
	want := fmt.Sprintf("%s/%s:%d/crdconvert", svc.Namespace, svc.Name, svc.Spec.Ports[0].Port)
	if got != want {
		t.Errorf("conversion webhook %s, want the apiserver Service %s", got, want)
	}
}
