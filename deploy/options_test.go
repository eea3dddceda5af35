package deploy_test

import (
	"fmt"
	"net"
	"path"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/bottlerocket-os/brupop-go/deploy"
	"github.com/bottlerocket-os/brupop-go/internal/agent"
	"github.com/bottlerocket-os/brupop-go/internal/apiserver"
	"github.com/bottlerocket-os/brupop-go/internal/controller"
)

// chartSetting is what a values case sets, as the binaries should read it.
type chartSetting struct {
	namespace, servicePort, internalPort, lbWait, maxConcurrent, cron string
	format, ansi, agentFilter, apiserverFilter, controllerFilter      string
}

var chartSettings = map[string]struct {
	file string
	want chartSetting
}{
	"defaults": {want: chartSetting{
		namespace: "brupop-bottlerocket-aws", servicePort: "443", internalPort: "8443", lbWait: "0",
		maxConcurrent: "1", cron: "* * * * * * *", format: "pretty", ansi: "true",
		agentFilter: "info", apiserverFilter: "info", controllerFilter: "info",
	}},
	"every value": {file: "values-all.yaml", want: chartSetting{
		namespace: "brupop-values-test", servicePort: "8444", internalPort: "9443", lbWait: "30",
		maxConcurrent: "unlimited", cron: "0 0 23 * * Mon-Fri *", format: "json", ansi: "false",
		agentFilter: "info,agent=trace", apiserverFilter: "warn", controllerFilter: "debug",
	}},
}

const testNode = "ip-10-0-0-1.example.internal"

// TestBinariesParseChartEnvironment runs each binary's own option parser on the environment the
// chart gives its container, so a renamed variable or value fails here, not in a cluster.
func TestBinariesParseChartEnvironment(t *testing.T) {
	for name, tc := range chartSettings {
		t.Run(name, func(t *testing.T) {
			var values map[string]any
			if tc.file != "" {
				values = valuesFile(t, tc.file)
			}
			r := render(t, deploy.OperatorChart, values)
			t.Run("agent", func(t *testing.T) { checkAgent(t, r, tc.want) })
			t.Run("apiserver", func(t *testing.T) { checkAPIServer(t, r, tc.want) })
			t.Run("controller", func(t *testing.T) { checkController(t, r, tc.want) })
		})
	}
}

func checkAgent(t *testing.T, r rendered, want chartSetting) {
	o, err := agent.DefaultOptions(r.getenv(t, agentWorkload, testNode))
	if err != nil {
		t.Fatal(err)
	}
	o.Namespace = want.namespace // kubelet's service-account mount says so in a pod
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	lbWait, _ := strconv.Atoi(want.lbWait)
	port, _ := strconv.Atoi(want.servicePort)
	tokenDir := r.mountOf(t, agentWorkload, func(v corev1.Volume) bool { return v.Projected != nil })
	var tokenPath *corev1.ServiceAccountTokenProjection
	for _, v := range r.pod(t, agentWorkload).Spec.Volumes {
		if v.Projected != nil && len(v.Projected.Sources) == 1 {
			tokenPath = v.Projected.Sources[0].ServiceAccountToken
		}
	}
	if tokenPath == nil {
		t.Fatal("agent: no projected service-account token")
	}
	checkEqual(t, map[string]any{
		"node":     testNode,
		"url":      fmt.Sprintf("https://brupop-apiserver.%s.svc.cluster.local:%d", want.namespace, port),
		"lb wait":  time.Duration(lbWait) * time.Second,
		"format":   want.format,
		"ansi":     want.ansi == "true",
		"filter":   want.agentFilter,
		"ca dir":   r.mountOf(t, agentWorkload, secretVolume("brupop-apiserver-client-certificate")),
		"token":    path.Join(tokenDir, tokenPath.Path),
		"audience": tokenPath.Audience,
		"api socket": r.mountOf(t, agentWorkload, func(v corev1.Volume) bool {
			return v.HostPath != nil && v.HostPath.Type != nil && *v.HostPath.Type == corev1.HostPathSocket
		}),
	}, map[string]any{
		"node": o.NodeName, "url": o.URL(), "lb wait": o.ExcludeFromLBWait, "format": o.LogFormat,
		"ansi": o.LogANSI, "filter": o.LogFilter, "ca dir": path.Dir(o.CAFile), "token": o.TokenFile,
		"audience": "brupop-apiserver", "api socket": o.HostSocket,
	})
}

func checkAPIServer(t *testing.T, r rendered, want chartSetting) {
	c, err := apiserver.ParseCommandLine(nil, r.getenv(t, apiserverWorkload, testNode), want.namespace)
	if err != nil {
		t.Fatal(err)
	}
	ctr := r.container(t, apiserverWorkload)
	var svc corev1.Service
	into(t, r.get(t, "Service", "brupop-apiserver"), &svc)
	port, _ := strconv.Atoi(want.servicePort)
	checkEqual(t, map[string]any{
		"port": c.Server.Port, "container port": c.Server.Port, "liveness": c.Server.Port,
		"readiness": c.Server.Port, "target port": c.Server.Port, "service port": port,
		"scheme": corev1.URISchemeHTTPS, "path": "/ping",
		"tls dir": r.mountOf(t, apiserverWorkload, secretVolume("brupop-apiserver-certificate")),
		"format":  want.format, "ansi": want.ansi == "true", "filter": want.apiserverFilter,
	}, map[string]any{
		"port": mustAtoi(t, want.internalPort), "container port": int(ctr.Ports[0].ContainerPort),
		"liveness": ctr.LivenessProbe.HTTPGet.Port.IntValue(), "readiness": ctr.ReadinessProbe.HTTPGet.Port.IntValue(),
		"target port": svc.Spec.Ports[0].TargetPort.IntValue(), "service port": int(svc.Spec.Ports[0].Port),
		"scheme": ctr.ReadinessProbe.HTTPGet.Scheme, "path": ctr.LivenessProbe.HTTPGet.Path,
		"tls dir": c.Server.TLSDir, "format": c.Logging.Format, "ansi": c.Logging.ANSI, "filter": c.Logging.Filter,
	})
}

func checkController(t *testing.T, r rendered, want chartSetting) {
	o, err := controller.ParseOptions(nil, r.getenv(t, controllerWorkload, testNode))
	if err != nil {
		t.Fatal(err)
	}
	ctr := r.container(t, controllerWorkload)
	ports := map[string]int{}
	for _, p := range ctr.Ports {
		ports[p.Name] = int(p.ContainerPort)
	}
	var svc corev1.Service
	into(t, r.get(t, "Service", "brupop-controller-server"), &svc)
	annotations := r.pod(t, controllerWorkload).Annotations
	checkEqual(t, map[string]any{
		"namespace": want.namespace, "node": testNode, "max": want.maxConcurrent, "cron": want.cron,
		"format": want.format, "ansi": want.ansi == "true", "filter": want.controllerFilter, "leader": true,
		"metrics": portOf(t, o.MetricsAddr), "service target": portOf(t, o.MetricsAddr),
		"scrape port": strconv.Itoa(portOf(t, o.MetricsAddr)),
		"healthz":     portOf(t, o.HealthAddr), "liveness": "/healthz", "readiness": "/readyz",
	}, map[string]any{
		"namespace": o.Namespace, "node": o.NodeName, "max": o.Environment.MaxConcurrentUpdate,
		"cron": o.Environment.SchedulerCronExpression, "format": o.LogFormat, "ansi": o.LogANSI,
		"filter": o.LogFilter, "leader": o.LeaderElect,
		"metrics": ports["metrics"], "service target": svc.Spec.Ports[0].TargetPort.IntValue(),
		"scrape port": annotations["prometheus.io/port"],
		"healthz":     ports[ctr.LivenessProbe.HTTPGet.Port.StrVal],
		"liveness":    ctr.LivenessProbe.HTTPGet.Path, "readiness": ctr.ReadinessProbe.HTTPGet.Path,
	})
	if ctr.ReadinessProbe.HTTPGet.Port != ctr.LivenessProbe.HTTPGet.Port {
		t.Errorf("readiness probe port %v differs from liveness %v", ctr.ReadinessProbe.HTTPGet.Port, ctr.LivenessProbe.HTTPGet.Port)
	}
}

// checkEqual compares want and got key by key, naming each difference. Each pair sets what the
// chart renders against what the binary read from it.
func checkEqual(t *testing.T, want, got map[string]any) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s: want %v (%T), got %v (%T)", k, w, w, g, g)
		}
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// portOf is the port of a listen address such as ":8080".
func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return mustAtoi(t, p)
}
