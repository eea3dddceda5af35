package deploy_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chart/loader"
	"sigs.k8s.io/yaml"

	"github.com/bottlerocket-os/brupop-go/deploy"
)

// upstreamValues are the value keys of upstream Brupop v1.4.0's operator chart and their
// defaults, in YAML (docs/install.md, "Values"). A user's values for upstream must mean the same
// here.
var upstreamValues = []struct{ key, value string }{
	{"namespace", `brupop-bottlerocket-aws`},
	{"image", `public.ecr.aws/bottlerocket/bottlerocket-update-operator:v1.4.0`},
	{"placement.agent.tolerations", `[]`},
	{"placement.agent.priorityClassName", `""`},
	{"placement.controller.tolerations", `[]`},
	{"placement.controller.nodeSelector", `{}`},
	{"placement.controller.podAffinity", `{}`},
	{"placement.controller.podAntiAffinity", `{}`},
	{"placement.controller.priorityClassName", `brupop-controller-high-priority`},
	{"placement.apiserver.topologySpreadConstraints", `[]`},
	{"placement.apiserver.tolerations", `[]`},
	{"placement.apiserver.nodeSelector", `{}`},
	{"placement.apiserver.podAffinity", `{}`},
	{"placement.apiserver.podAntiAffinity", `
preferredDuringSchedulingIgnoredDuringExecution:
  - weight: 1
    podAffinityTerm:
      labelSelector:
        matchExpressions:
          - key: brupop.bottlerocket.aws/component
            operator: In
            values: [apiserver]
      topologyKey: kubernetes.io/hostname`},
	{"placement.apiserver.priorityClassName", `""`},
	{"exclude_from_lb_wait_time_in_sec", `"0"`},
	{"max_concurrent_updates", `"1"`},
	{"update_window_start", `"0:0:0"`},
	{"update_window_stop", `"0:0:0"`},
	{"scheduler_cron_expression", `"* * * * * * *"`},
	{"apiserver_internal_port", `"8443"`},
	{"apiserver_service_port", `"443"`},
	{"logging.formatter", `pretty`},
	{"logging.ansi_enabled", `"true"`},
	{"logging.controller.tracing_filter", `info`},
	{"logging.agent.tracing_filter", `info`},
	{"logging.apiserver.tracing_filter", `info`},
	{"prometheus.controller.serviceMonitor.enabled", `false`},
	{"resources.agent.resources", `{limits: {cpu: 10m, memory: 50Mi}, requests: {cpu: 5m, memory: 8Mi}}`},
	{"resources.apiserver.resources", `{limits: {memory: 256Mi}, requests: {cpu: 10m, memory: 40Mi}}`},
	{"resources.controller.resources", `{limits: {memory: 256Mi}, requests: {cpu: 10m, memory: 40Mi}}`},
	{"podLabels", `{}`},
}

// ourTopLevelValues are the top-level keys the operator chart adds to upstream's.
var ourTopLevelValues = []string{"apiserver", "controller", "fleetPolicy"}

func TestUpstreamValuesAndDefaults(t *testing.T) {
	chrt, err := loader.Load(deploy.ChartDir(root, deploy.OperatorChart))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range upstreamValues {
		t.Run(tc.key, func(t *testing.T) {
			got, ok := lookup(chrt.Values, tc.key)
			if !ok {
				t.Fatalf("value %s is missing", tc.key)
			}
			var want any
			if err := yaml.Unmarshal([]byte(tc.value), &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("default of %s (-upstream +ours):\n%s", tc.key, diff)
			}
		})
	}
	if v, ok := chrt.Values["image_pull_secrets"]; ok {
		t.Errorf("image_pull_secrets = %v; upstream leaves it unset", v)
	}
	known := ourTopLevelValues
	for _, tc := range upstreamValues {
		known = append(known, strings.Split(tc.key, ".")[0])
	}
	for key := range chrt.Values {
		if !slices.Contains(known, key) {
			t.Errorf("top-level value %s is neither upstream's nor in ourTopLevelValues", key)
		}
	}
}

func TestShadowChartUpstreamValues(t *testing.T) {
	chrt, err := loader.Load(deploy.ChartDir(root, deploy.ShadowChart))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"namespace": "brupop-bottlerocket-aws", "apiserver_service_port": "443"}
	if diff := cmp.Diff(want, chrt.Values); diff != "" {
		t.Errorf("values of %s (-upstream +ours):\n%s", deploy.ShadowChart, diff)
	}
}

// lookup returns the value at the dotted path key of values.
func lookup(values map[string]any, key string) (any, bool) {
	var cur any = values
	for _, part := range strings.Split(key, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}
