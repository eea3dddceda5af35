package controller

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

func getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseOptionsDefaultsAndEnvironment(t *testing.T) {
	noFile := filepath.Join(t.TempDir(), "namespace") // outside a pod
	o, err := ParseOptions([]string{"--namespace-file=" + noFile}, getenv(map[string]string{
		"MY_NODE_NAME": "node-1", "MAX_CONCURRENT_UPDATE": "unlimited",
		"SCHEDULER_CRON_EXPRESSION": "* * 10-12 * * Mon *", "LOGGING_FORMATTER": "json",
		"LOGGING_ANSI_ENABLED": "true", "TRACING_FILTER_DIRECTIVE": "controller=trace,debug",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Options{
		Namespace: "brupop-bottlerocket-aws", NamespaceFile: noFile, NodeName: "node-1",
		Environment: rollout.Environment{MaxConcurrentUpdate: "unlimited", SchedulerCronExpression: "* * 10-12 * * Mon *"},
		TimeZone:    "UTC", MetricsAddr: ":8080", HealthAddr: ":8081", LeaderElect: true, LeaderElectionID: DefaultLeaderElectionID,
		LogFormat: "json", LogANSI: true, LogFilter: "controller=trace,debug",
	}
	if diff := cmp.Diff(want, o, cmpopts.IgnoreFields(Options{}, "Log")); diff != "" { // no flag sets Log
		t.Errorf("ParseOptions mismatch (-want +got):\n%s", diff)
	}
}

func TestParseOptionsFlagsOverrideEnvironment(t *testing.T) {
	o, err := ParseOptions([]string{"--namespace=ns", "--max-concurrent-update=10%", "--leader-elect=false",
		"--metrics-bind-address=0", "--time-zone=Europe/Paris"},
		getenv(map[string]string{"MY_NODE_NAME": "n", "MAX_CONCURRENT_UPDATE": "1", "KUBERNETES_SERVICE_HOST": "fd00::1"}))
	if err != nil {
		t.Fatal(err)
	}
	if o.Namespace != "ns" || o.Environment.MaxConcurrentUpdate != "10%" || o.LeaderElect || o.MetricsAddr != "0" || o.TimeZone != "Europe/Paris" {
		t.Errorf("flags not applied: %+v", o)
	}
	s, err := Settings(nil, o.Environment, o.TimeZone)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Policy.Schedule.Location().String(); got != "Europe/Paris" {
		t.Errorf("schedule time zone = %s, want Europe/Paris", got)
	}
}

// TestParseOptionsNamespace: --namespace, else POD_NAMESPACE (our chart), else the
// ServiceAccount's namespace file (upstream's manifests set no variable), else the default.
func TestParseOptionsNamespace(t *testing.T) {
	dir := t.TempDir()
	saFile := filepath.Join(dir, "namespace")
	if err := os.WriteFile(saFile, []byte("from-sa-file"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	valid := map[string]string{"MY_NODE_NAME": "n", "MAX_CONCURRENT_UPDATE": "1"}
	withPodNS := map[string]string{"MY_NODE_NAME": "n", "MAX_CONCURRENT_UPDATE": "1", "POD_NAMESPACE": "from-env"}
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"flag over everything", []string{"--namespace=from-flag", "--namespace-file=" + saFile}, withPodNS, "from-flag"},
		{"POD_NAMESPACE over the file", []string{"--namespace-file=" + saFile}, withPodNS, "from-env"},
		{"the ServiceAccount's file", []string{"--namespace-file=" + saFile}, valid, "from-sa-file"},
		{"no file: the default", []string{"--namespace-file=" + missing}, valid, v2.DefaultNamespace},
	} {
		o, err := ParseOptions(c.args, getenv(c.env))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if o.Namespace != c.want {
			t.Errorf("%s: Namespace = %q, want %q", c.name, o.Namespace, c.want)
		}
	}
	if _, err := ParseOptions([]string{"--namespace="}, getenv(withPodNS)); err == nil || !strings.Contains(err.Error(), "--namespace must not be empty") {
		t.Errorf("an empty --namespace: error %v, want it refused", err)
	}
}

func TestParseOptionsIPv6MetricsAddress(t *testing.T) {
	o, err := ParseOptions(nil, getenv(map[string]string{"MY_NODE_NAME": "n", "MAX_CONCURRENT_UPDATE": "1", "KUBERNETES_SERVICE_HOST": "fd00::1"}))
	if err != nil {
		t.Fatal(err)
	}
	if o.MetricsAddr != "[::]:8080" {
		t.Errorf("MetricsAddr = %q, want [::]:8080", o.MetricsAddr)
	}
}

func TestParseOptionsRejectsBadValues(t *testing.T) {
	valid := map[string]string{"MY_NODE_NAME": "n", "MAX_CONCURRENT_UPDATE": "1"}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string // a fragment of the error that says what to fix
	}{
		{name: "missing node name", env: map[string]string{"MAX_CONCURRENT_UPDATE": "1"}, want: "MY_NODE_NAME is required"},
		{name: "missing concurrency", env: map[string]string{"MY_NODE_NAME": "n"}, want: "MAX_CONCURRENT_UPDATE is required"},
		{name: "word concurrency", env: map[string]string{"MY_NODE_NAME": "n", "MAX_CONCURRENT_UPDATE": "many"}, want: "want a positive number"},
		{name: "bad cron", env: with(valid, "SCHEDULER_CRON_EXPRESSION", "* * 25 * * * *"), want: "cron expression"},
		{name: "one legacy window bound", env: with(valid, "UPDATE_WINDOW_START", "10:00:00"), want: "UPDATE_WINDOW_STOP"},
		{name: "bad formatter", env: with(valid, "LOGGING_FORMATTER", "xml"), want: "log format \"xml\": set LOGGING_FORMATTER"},
		{name: "bad ansi", env: with(valid, "LOGGING_ANSI_ENABLED", "yes please"), want: "LOGGING_ANSI_ENABLED"},
		{name: "bad time zone", env: valid, args: []string{"--time-zone=Mars/Olympus"}, want: "IANA"},
		{name: "unknown flag", env: valid, args: []string{"--nope"}, want: "nope"},
		{name: "empty lease name", env: valid, args: []string{"--leader-election-id="}, want: "leader-election-id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseOptions(tc.args, getenv(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseOptions error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func with(m map[string]string, k, v string) map[string]string {
	c := map[string]string{k: v}
	for mk, mv := range m {
		c[mk] = mv
	}
	return c
}

func TestLoggerFormatAndLevel(t *testing.T) {
	var buf bytes.Buffer
	o := Options{LogFormat: "json", LogFilter: "warn"}
	log := o.Logger(&buf)
	log.Info("hidden")
	log.Error(nil, "Shown", "node", "n1")
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, `"msg":"Shown"`) || !strings.Contains(got, `"node":"n1"`) {
		t.Errorf("log output = %q", got)
	}
}

func TestSettingsHandTheDrainTimeoutToTheStateMachine(t *testing.T) {
	env := rollout.Environment{MaxConcurrentUpdate: "1"}
	fp := &v2.FleetPolicy{Spec: v2.FleetPolicySpec{DrainTimeout: &metav1.Duration{Duration: 25 * time.Minute}}}
	s, err := Settings(fp, env, "UTC")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Policy.StateMachine.Deadline(v2.StateRebootedIntoUpdate), 25*time.Minute+statemachine.DefaultRebootedDeadline; got != want {
		t.Errorf("with drainTimeout 25m: RebootedIntoUpdate deadline %s, want %s", got, want)
	}
	s, err = Settings(nil, env, "UTC")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Policy.StateMachine.Deadline(v2.StateRebootedIntoUpdate), statemachine.DefaultDrainTimeout+statemachine.DefaultRebootedDeadline; got != want {
		t.Errorf("without a FleetPolicy: RebootedIntoUpdate deadline %s, want %s", got, want)
	}
}
