package agent

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

func TestReachedStatus(t *testing.T) {
	failedAt := &metav1.Time{Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	failed := func(state v2.State) *v2.BottlerocketShadowStatus {
		return &v2.BottlerocketShadowStatus{CurrentState: state, CrashCount: 2, StateTransitionFailureTimestamp: failedAt, FailureReason: "HostAPIError: x"}
	}
	monitoringFailed := map[string]string{statemachine.RecordAnnotation: statemachine.Record{Count: 1, Reason: statemachine.ReasonMonitoringFailed}.String()}
	tests := []struct {
		name        string
		prev        *v2.BottlerocketShadowStatus
		annotations map[string]string
		state       v2.State
		want        *v2.BottlerocketShadowStatus
	}{
		{name: "first", state: v2.StateIdle, want: &v2.BottlerocketShadowStatus{CurrentVersion: oldV, TargetVersion: newV, CurrentState: v2.StateIdle}},
		{name: "keeps crash info on recovery", prev: failed(v2.StateErrorReset), state: v2.StateIdle,
			want: &v2.BottlerocketShadowStatus{CurrentVersion: oldV, TargetVersion: newV, CurrentState: v2.StateIdle, CrashCount: 2,
				StateTransitionFailureTimestamp: failedAt, FailureReason: "HostAPIError: x"}},
		{name: "keeps crash info through an update", prev: failed(v2.StateStagedAndPerformedUpdate), state: v2.StateRebootedIntoUpdate,
			want: &v2.BottlerocketShadowStatus{CurrentVersion: oldV, TargetVersion: newV, CurrentState: v2.StateRebootedIntoUpdate, CrashCount: 2,
				StateTransitionFailureTimestamp: failedAt, FailureReason: "HostAPIError: x"}},
		{name: "resets after a completed update", prev: failed(v2.StateMonitoringUpdate), state: v2.StateIdle,
			want: &v2.BottlerocketShadowStatus{CurrentVersion: oldV, TargetVersion: newV, CurrentState: v2.StateIdle}},
		{name: "keeps crash info when the controller failed the monitoring", prev: failed(v2.StateMonitoringUpdate), annotations: monitoringFailed, state: v2.StateIdle,
			want: &v2.BottlerocketShadowStatus{CurrentVersion: oldV, TargetVersion: newV, CurrentState: v2.StateIdle, CrashCount: 2,
				StateTransitionFailureTimestamp: failedAt, FailureReason: "HostAPIError: x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			brs := &v2.BottlerocketShadow{ObjectMeta: metav1.ObjectMeta{Annotations: tt.annotations}, Status: tt.prev}
			got := ReachedStatus(brs, tt.state, oldV, newV)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ReachedStatus() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFailedStatusSaturatesTheCrashCount(t *testing.T) {
	prev := &v2.BottlerocketShadowStatus{CurrentState: v2.StateStagedAndPerformedUpdate, CrashCount: math.MaxUint32}
	got := FailedStatus(prev, &Failure{Reason: statemachine.ReasonAgentError, Message: "x"}, oldV, newV, time.Now())
	if got.CrashCount != math.MaxUint32 {
		t.Errorf("crash_count after upstream's largest = %d, want it to stay %d, not wrap", got.CrashCount, uint32(math.MaxUint32))
	}
}

func TestFailedStatus(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC)
	prev := &v2.BottlerocketShadowStatus{CurrentState: v2.StateStagedAndPerformedUpdate, CrashCount: 3}
	got := FailedStatus(prev, &Failure{Reason: statemachine.ReasonBootRolledBack, Message: "booted 1.20.0"}, oldV, newV, now)
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
	// The controller reads the reason back to classify the failure.
	if reason, msg := statemachine.ParseFailureReason(got.FailureReason); reason != statemachine.ReasonBootRolledBack || msg != "booted 1.20.0" {
		t.Errorf("ParseFailureReason(%q) = %q, %q", got.FailureReason, reason, msg)
	}
	if c := statemachine.Classify(statemachine.ReasonBootRolledBack); c != statemachine.ClassRelease {
		t.Errorf("a boot rollback is classified %s, want %s", c, statemachine.ClassRelease)
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
	lenient := o
	lenient.LogFilter = "garbage!!"
	if err := lenient.Validate(); err != nil {
		t.Errorf("Validate() of filter %q = %v, want it ignored with a warning, as upstream", lenient.LogFilter, err)
	}
	if lo := o.Logging(); lo.Format != "json" || lo.Filter != "info" {
		t.Errorf("Logging() = %+v, want json at info", lo)
	}
	if _, err := DefaultOptions(func(k string) string { return map[string]string{EnvServicePort: "https"}[k] }); err == nil {
		t.Error("DefaultOptions accepted a non-numeric port")
	}
}

// TestOptionsBadLBWaitTurnsTheExclusionOff checks that a value of EXCLUDE_FROM_LB_WAIT_TIME_IN_SEC
// upstream cannot parse turns the feature off with a warning at start-up, as upstream, instead of
// stopping the agent.
func TestOptionsBadLBWaitTurnsTheExclusionOff(t *testing.T) {
	for _, v := range []string{"abc", "-5", "1.5", "30s", " 30", "99999999999"} {
		t.Run(v, func(t *testing.T) {
			env := map[string]string{EnvNodeName: "node-a", EnvServicePort: "443", EnvExcludeLBWait: v, EnvLogFormat: "json"}
			o, err := DefaultOptions(func(k string) string { return env[k] })
			if err != nil {
				t.Fatalf("DefaultOptions: %v", err)
			}
			o.Namespace = "brupop"
			if err := o.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if o.ExcludeFromLBWait != 0 {
				t.Errorf("ExcludeFromLBWait = %s, want 0 (off)", o.ExcludeFromLBWait)
			}
			var buf bytes.Buffer
			if _, err := o.Logger(&buf); err != nil {
				t.Fatal(err)
			}
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("want one JSON warning line, got %q: %v", buf.String(), err)
			}
			if line["level"] != "WARN" || line["setting"] != EnvExcludeLBWait || line["value"] != v || !strings.Contains(line["reason"].(string), "off") {
				t.Errorf("warning = %v", line)
			}
		})
	}
	for v, want := range map[string]time.Duration{"0": 0, "+30": 30 * time.Second, "4294967295": 4294967295 * time.Second} {
		o, err := DefaultOptions(func(k string) string { return map[string]string{EnvExcludeLBWait: v}[k] })
		if err != nil || o.ExcludeFromLBWait != want || len(o.Warnings) != 0 {
			t.Errorf("%s: wait %s, warnings %v, err %v; want %s", v, o.ExcludeFromLBWait, o.Warnings, err, want)
		}
	}
}
