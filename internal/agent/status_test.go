package agent

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

func TestReachedStatus(t *testing.T) {
	failedAt := &metav1.Time{Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	failed := func(state v2.State) *v2.BottlerocketShadowStatus {
		return &v2.BottlerocketShadowStatus{CurrentState: state, CrashCount: 2, StateTransitionFailureTimestamp: failedAt, FailureReason: "HostAPIError: x"}
	}
	tests := []struct {
		name  string
		prev  *v2.BottlerocketShadowStatus
		state v2.State
		want  *v2.BottlerocketShadowStatus
	}{
		{"first", nil, v2.StateIdle, &v2.BottlerocketShadowStatus{CurrentVersion: oldV, TargetVersion: newV, CurrentState: v2.StateIdle}},
		{"keeps crash info on recovery", failed(v2.StateErrorReset), v2.StateIdle,
			&v2.BottlerocketShadowStatus{CurrentVersion: oldV, TargetVersion: newV, CurrentState: v2.StateIdle, CrashCount: 2,
				StateTransitionFailureTimestamp: failedAt, FailureReason: "HostAPIError: x"}},
		{"keeps crash info through an update", failed(v2.StateStagedAndPerformedUpdate), v2.StateRebootedIntoUpdate,
			&v2.BottlerocketShadowStatus{CurrentVersion: oldV, TargetVersion: newV, CurrentState: v2.StateRebootedIntoUpdate, CrashCount: 2,
				StateTransitionFailureTimestamp: failedAt, FailureReason: "HostAPIError: x"}},
		{"resets after monitoring", failed(v2.StateMonitoringUpdate), v2.StateIdle,
			&v2.BottlerocketShadowStatus{CurrentVersion: oldV, TargetVersion: newV, CurrentState: v2.StateIdle}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ReachedStatus(tt.prev, tt.state, oldV, newV)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ReachedStatus() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFailedStatus(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC)
	prev := &v2.BottlerocketShadowStatus{CurrentState: v2.StateStagedAndPerformedUpdate, CrashCount: 3}
	got := FailedStatus(prev, &Failure{Reason: ReasonBootRolledBack, Message: "booted 1.20.0"}, oldV, newV, now)
	want := &v2.BottlerocketShadowStatus{
		CurrentVersion: oldV, TargetVersion: newV, CurrentState: v2.StateErrorReset, CrashCount: 4,
		StateTransitionFailureTimestamp: &metav1.Time{Time: now.Truncate(time.Second)},
		FailureReason:                   "BootRolledBack: booted 1.20.0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FailedStatus() mismatch (-want +got):\n%s", diff)
	}
	if !sameStatus(want, got) || sameStatus(want, prev) {
		t.Error("sameStatus disagrees with cmp")
	}
}

func TestTargetVersion(t *testing.T) {
	if got := TargetVersion("", oldV); got != oldV {
		t.Errorf("no choice: got %s", got)
	}
	if got := TargetVersion(newV, oldV); got != newV {
		t.Errorf("chosen: got %s", got)
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"info", slog.LevelInfo, false},
		{"agent=debug,hyper=warn", slog.LevelDebug, false},
		{"WARN", slog.LevelWarn, false},
		{"trace", slog.LevelDebug - 4, false},
		{"loud", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLevel(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseLevel(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	env := map[string]string{EnvNodeName: "node-a", EnvServicePort: "8443", EnvExcludeLBWait: "30", EnvLogFormat: "json"}
	o, err := DefaultOptions(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	o.Namespace = "brupop"
	if err := o.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	if got, want := o.URL(), "https://brupop-apiserver.brupop.svc.cluster.local:8443"; got != want {
		t.Errorf("URL() = %s, want %s", got, want)
	}
	if o.ExcludeFromLBWait != 30*time.Second {
		t.Errorf("ExcludeFromLBWait = %s", o.ExcludeFromLBWait)
	}
	o.ClusterDomain = "corp.example"
	if got := o.URL(); !strings.Contains(got, ".svc.corp.example:") {
		t.Errorf("URL() = %s ignores the cluster domain", got)
	}

	bad := o
	bad.NodeName, bad.LogFormat, bad.DrainTimeout = "", "xml", 0
	err = bad.Validate()
	for _, want := range []string{EnvNodeName, "--log-format", "--drain-timeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %s", err, want)
		}
	}
	if _, err := DefaultOptions(func(k string) string { return map[string]string{EnvServicePort: "https"}[k] }); err == nil {
		t.Error("DefaultOptions accepted a non-numeric port")
	}
}

func TestDrainTimeoutAnnotation(t *testing.T) {
	for name, tc := range map[string]struct {
		value string
		want  time.Duration
	}{
		"set by the controller": {"4s", 4 * time.Second},
		"absent":                {"", 0},
		"invalid":               {"soon", 0},
		"negative":              {"-1m", 0},
	} {
		t.Run(name, func(t *testing.T) {
			brs := &v2.BottlerocketShadow{}
			if tc.value != "" {
				brs.Annotations = map[string]string{v2.DrainTimeoutAnnotation: tc.value}
			}
			if got := drainTimeout(brs); got != tc.want {
				t.Errorf("drainTimeout(%q) = %s, want %s", tc.value, got, tc.want)
			}
		})
	}
}
