package controller

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/fixture"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

var t0 = fixture.T0

func failure(node string, at time.Duration) rollout.NodeFailure {
	return rollout.NodeFailure{Node: node, Failure: statemachine.Failure{Reason: statemachine.ReasonMonitoringFailed,
		Class: statemachine.ClassRelease, Version: "1.20.0", At: t0.Add(at)}}
}

func TestMergeLedgersDeduplicatesToTheSecond(t *testing.T) {
	memory := recordFailure(nil, failure("a", 500*time.Millisecond)) // remembered with nanoseconds
	stored := []rollout.VersionLedger{{Version: "1.20.0", Failures: []rollout.NodeFailure{failure("a", 0), failure("b", time.Minute)}}}
	got := mergeLedgers(memory, stored)
	want := []rollout.VersionLedger{{Version: "1.20.0", Failures: []rollout.NodeFailure{failure("a", 0), failure("b", time.Minute)}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ledger mismatch (-want +got):\n%s", diff)
	}
}

// TestMergeStatusKeepsWhatAPassCouldNotStore: a status that failed to store adds its failures,
// halts, resumes, releases and run end to the stored one, and never loses a stored one.
func TestMergeStatusKeepsWhatAPassCouldNotStore(t *testing.T) {
	at := func(d time.Duration) metav1.Time { return metav1.NewTime(t0.Add(d)) }
	ptr := func(m metav1.Time) *metav1.Time { return &m }
	stored := v2.FleetPolicyStatus{
		Versions: []v2.FleetPolicyVersionStatus{{Version: "1.20.0", Failures: []v2.FleetPolicyNodeFailure{{Node: "a", Time: at(0)}}}},
		Releases: []v2.FleetPolicyRelease{{Version: "1.20.0", FirstSeen: at(time.Hour)}},
		Applied:  &v2.FleetPolicyApplied{Generation: 2},
	}
	unsaved := v2.FleetPolicyStatus{
		Versions: []v2.FleetPolicyVersionStatus{
			{Version: "1.20.0", Failures: []v2.FleetPolicyNodeFailure{{Node: "a", Time: at(0)}, {Node: "b", Time: at(time.Minute)}},
				Halted: true, HaltedSince: ptr(at(time.Minute)), Reason: "budget", ResumedAt: ptr(at(-time.Hour))},
			{Version: "1.19.0", ResumedAt: ptr(at(0))},
		},
		Releases:   []v2.FleetPolicyRelease{{Version: "1.20.0", FirstSeen: at(0)}, {Version: "1.21.0", FirstSeen: at(2 * time.Hour)}},
		LastRunEnd: ptr(at(3 * time.Hour)),
		Applied:    &v2.FleetPolicyApplied{Generation: 1},
	}
	got := mergeStatus(stored, unsaved)
	want := v2.FleetPolicyStatus{
		Versions: []v2.FleetPolicyVersionStatus{
			{Version: "1.19.0", ResumedAt: ptr(at(0))},
			{Version: "1.20.0", Failures: []v2.FleetPolicyNodeFailure{{Node: "a", Time: at(0)}, {Node: "b", Time: at(time.Minute)}},
				Halted: true, HaltedSince: ptr(at(time.Minute)), Reason: "budget", ResumedAt: ptr(at(-time.Hour))},
		},
		Releases:   []v2.FleetPolicyRelease{{Version: "1.20.0", FirstSeen: at(0)}, {Version: "1.21.0", FirstSeen: at(2 * time.Hour)}},
		LastRunEnd: ptr(at(3 * time.Hour)),
		Applied:    &v2.FleetPolicyApplied{Generation: 2},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mergeStatus mismatch (-want +got):\n%s", diff)
	}
}

func TestStoredHaltsDropsHaltsOfUnwrittenFailures(t *testing.T) {
	ledger := recordFailure(nil, failure("a", 0))
	halts := []rollout.Halt{{Version: "1.20.0", Nodes: []string{"a"}}, {Version: "1.20.0", Nodes: []string{"a", "b"}}, {Version: "1.21.0", Nodes: []string{"c"}}}
	got := storedHalts(halts, ledger)
	if diff := cmp.Diff(halts[:1], got); diff != "" {
		t.Errorf("storedHalts mismatch (-want +got):\n%s", diff)
	}
}

func TestFleetPolicyStatus(t *testing.T) {
	ledger := recordFailure(recordFailure(nil, failure("a", 0)), failure("b", time.Second))
	halt := rollout.Halt{Version: "1.20.0", Nodes: []string{"a", "b"}, Reason: "2 release failures", Since: t0.Add(time.Second)}
	prev := v2.FleetPolicyStatus{Conditions: []metav1.Condition{{Type: ConditionReady, Status: metav1.ConditionTrue, Reason: reasonApplied, LastTransitionTime: metav1.NewTime(t0.Add(-time.Hour))}}}
	got := fleetPolicyStatus(prev, statusInput{generation: 3, ledger: ledger, halts: []rollout.Halt{halt},
		plan: rollout.Plan{InFlight: 1, Limit: 2, Waiting: make([]rollout.Wait, 4)}, nodes: 7, lastRunEnd: t0, namespace: "ns"})
	wantVersions := []v2.FleetPolicyVersionStatus{{Version: "1.20.0", Halted: true, HaltedSince: ptrTime(t0.Add(time.Second)), Reason: "2 release failures",
		Failures: []v2.FleetPolicyNodeFailure{{Node: "a", Reason: "MonitoringFailed", Time: metav1.NewTime(t0)}, {Node: "b", Reason: "MonitoringFailed", Time: metav1.NewTime(t0.Add(time.Second))}}}}
	if diff := cmp.Diff(wantVersions, got.Versions); diff != "" {
		t.Errorf("versions mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(v2.FleetPolicyCounts{Nodes: 7, InFlight: 1, Waiting: 4, Halted: 1}, got.Counts); diff != "" {
		t.Errorf("counts mismatch (-want +got):\n%s", diff)
	}
	ready, halted := findCond(got.Conditions, ConditionReady), findCond(got.Conditions, ConditionHalted)
	if ready == nil || !ready.LastTransitionTime.Equal(&prev.Conditions[0].LastTransitionTime) || ready.ObservedGeneration != 3 {
		t.Errorf("Ready condition %+v: want its transition time kept", ready)
	}
	wantCmd := "kubectl annotate bfp default -n ns brupop.bottlerocket.aws/resume=1.20.0 --overwrite"
	if halted == nil || halted.Status != metav1.ConditionTrue || !strings.Contains(halted.Message, wantCmd) {
		t.Errorf("Halted condition %+v: want True with %q", halted, wantCmd)
	}

	invalid := fleetPolicyStatus(got, statusInput{settingsErr: errors.New("rollout: failureBudget 0: must be at least 1")})
	if c := findCond(invalid.Conditions, ConditionReady); c.Status != metav1.ConditionFalse || c.Reason != reasonInvalidPolicy || !strings.Contains(c.Message, "failureBudget") {
		t.Errorf("Ready condition with an invalid policy: %+v", c)
	}
}

func findCond(cs []metav1.Condition, typ string) *metav1.Condition {
	for i := range cs {
		if cs[i].Type == typ {
			return &cs[i]
		}
	}
	return nil
}

func TestPatchedShadow(t *testing.T) {
	v := "1.20.0"
	before := &v2.BottlerocketShadow{ObjectMeta: metav1.ObjectMeta{Name: "brs-a", Annotations: map[string]string{
		statemachine.RecordAnnotation: `{"count":1}`, v2.DrainTimeoutAnnotation: "5m0s"}}}
	start := statemachine.Decision{Spec: v2.BottlerocketShadowSpec{State: v2.StateStagedAndPerformedUpdate, Version: &v}, Start: true, ClearRecord: true}
	got := patchedShadow(before, start, 90*time.Second)
	if diff := cmp.Diff(map[string]string{v2.DrainTimeoutAnnotation: "1m30s", statemachine.StartedAnnotation: "true"}, got.Annotations); diff != "" {
		t.Errorf("annotations after a start (-want +got):\n%s", diff)
	}
	if got = patchedShadow(before, start, 0); got.Annotations[v2.DrainTimeoutAnnotation] != "" {
		t.Errorf("drain timeout kept with the API server's default: %v", got.Annotations)
	}
	rec := statemachine.Record{Count: 2, At: t0, Reason: statemachine.ReasonStateTimeout}
	got = patchedShadow(before, statemachine.Decision{Spec: v2.BottlerocketShadowSpec{State: v2.StateIdle}, Record: &rec}, time.Minute)
	if got.Annotations[statemachine.RecordAnnotation] != rec.String() || got.Annotations[v2.DrainTimeoutAnnotation] != "5m0s" {
		t.Errorf("annotations after a failure: %v", got.Annotations)
	}
	// Reset to Idle (a timed-out update: the agent still reports StagedAndPerformedUpdate and
	// will recover), the mark that Brupop started it stays, so that the recovery's uncordon
	// never takes an administrator's cordon for one upstream left.
	started := patchedShadow(before, start, time.Minute)
	started.Status = &v2.BottlerocketShadowStatus{CurrentState: v2.StateStagedAndPerformedUpdate}
	got = patchedShadow(started, statemachine.Decision{Spec: v2.BottlerocketShadowSpec{State: v2.StateIdle}}, time.Minute)
	if got.Annotations[statemachine.StartedAnnotation] == "" || statemachine.AdoptsUpstreamChanges(got) {
		t.Errorf("annotations after a reset mid-update: %v; want %s kept and nothing adopted", got.Annotations, statemachine.StartedAnnotation)
	}
	if before.Annotations[statemachine.RecordAnnotation] != `{"count":1}` {
		t.Error("patchedShadow modified its input")
	}
}

func TestOnlyStale(t *testing.T) {
	stale := fmt.Errorf("patch shadow a: %w", errConflict)
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{stale, true},
		{errors.Join(stale, nil, errors.Join(stale)), true},
		{errors.Join(stale, errors.New("boom")), false},
		{errors.New("boom"), false},
	} {
		if got := onlyStale(tc.err); got != tc.want {
			t.Errorf("onlyStale(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestReplaceStatusPatchClearsWhatTheNewStatusOmits(t *testing.T) {
	prev := v2.FleetPolicyStatus{ObservedGeneration: 2,
		Releases: []v2.FleetPolicyRelease{{Version: "1.21.0", FirstSeen: metav1.NewTime(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))}}}
	next := v2.FleetPolicyStatus{ObservedGeneration: 3}
	body, err := replaceStatusPatch(prev, next)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(body); !strings.Contains(got, `"releases":null`) || !strings.Contains(got, `"observedGeneration":3`) {
		t.Errorf("patch %s; want releases cleared and the generation set", got)
	}
}
