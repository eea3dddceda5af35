package v1

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

func v1Shadow(spec, status State) *BottlerocketShadow {
	ts := metav1.NewTime(time.Date(2026, 11, 5, 17, 2, 11, 0, time.UTC))
	version := "1.21.0"
	s := &BottlerocketShadow{
		ObjectMeta: metav1.ObjectMeta{
			Name: "brs-node-1", Namespace: "brupop-bottlerocket-aws",
			Labels:          map[string]string{"team": "a"},
			Annotations:     map[string]string{"note": "kept"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "node-1", UID: "u-1"}},
		},
		Spec: BottlerocketShadowSpec{State: spec, StateTransitionTimestamp: &ts, Version: &version},
	}
	if status != "" {
		s.Status = &BottlerocketShadowStatus{CurrentVersion: "1.20.0", TargetVersion: "1.21.0", CurrentState: status}
	}
	return s
}

// TestRoundTripV1 converts every v1 state to v2 and back. PerformedUpdate is the one lossy state:
// v2 has a single StagedAndPerformedUpdate, which comes back as StagedUpdate.
func TestRoundTripV1(t *testing.T) {
	lossy := map[State]State{StatePerformedUpdate: StateStagedUpdate}
	for _, st := range States {
		t.Run(string(st), func(t *testing.T) {
			src := v1Shadow(st, st)
			var hub v2.BottlerocketShadow
			if err := src.ConvertTo(&hub); err != nil {
				t.Fatal(err)
			}
			if hub.Status.CrashCount != 0 || hub.Status.StateTransitionFailureTimestamp != nil {
				t.Errorf("v1 -> v2 status = %+v, want crash_count 0 and no failure timestamp", hub.Status)
			}
			var back BottlerocketShadow
			if err := back.ConvertFrom(&hub); err != nil {
				t.Fatal(err)
			}
			want := v1Shadow(st, st)
			if l, ok := lossy[st]; ok {
				want = v1Shadow(l, l)
			}
			want.APIVersion, want.Kind = GroupVersion.String(), "BottlerocketShadow"
			if d := cmp.Diff(want, &back); d != "" {
				t.Errorf("round trip (-want +got):\n%s", d)
			}
		})
	}
}

// TestRoundTripV2 converts every v2 state to v1 and back: nothing is lost, though v1 has no
// ErrorReset and no crash fields, as V2FieldsAnnotation carries them through the v1 form.
func TestRoundTripV2(t *testing.T) {
	failed := metav1.NewTime(time.Date(2026, 11, 5, 18, 0, 0, 0, time.UTC))
	for _, st := range v2.States {
		t.Run(string(st), func(t *testing.T) {
			var src v2.BottlerocketShadow
			if err := v1Shadow(StateIdle, StateIdle).ConvertTo(&src); err != nil {
				t.Fatal(err)
			}
			src.Spec.State, src.Status.CurrentState = st, st
			src.Status.CrashCount, src.Status.StateTransitionFailureTimestamp = math.MaxUint32, &failed
			src.Status.FailureReason = "DrainTimeout: 1 pod left"
			src.Status.Conditions = []metav1.Condition{{Type: "Draining", Status: metav1.ConditionTrue, Reason: "Evicting", LastTransitionTime: failed}}
			var mid BottlerocketShadow
			if err := mid.ConvertFrom(&src); err != nil {
				t.Fatal(err)
			}
			if mid.Annotations[V2FieldsAnnotation] == "" || mid.Annotations["note"] != "kept" {
				t.Errorf("v1 form annotations = %v, want note and %s", mid.Annotations, V2FieldsAnnotation)
			}
			var back v2.BottlerocketShadow
			if err := mid.ConvertTo(&back); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(src.DeepCopy(), &back); d != "" {
				t.Errorf("round trip (-want +got):\n%s", d)
			}
		})
	}
}

// TestV2FieldsAnnotation checks when the annotation is written, that it is never stored in v2,
// and that a v1 writer's change of state wins over it.
func TestV2FieldsAnnotation(t *testing.T) {
	var plain v2.BottlerocketShadow
	if err := v1Shadow(StateIdle, StateIdle).ConvertTo(&plain); err != nil {
		t.Fatal(err)
	}
	var mid BottlerocketShadow
	if err := mid.ConvertFrom(&plain); err != nil {
		t.Fatal(err)
	}
	if _, ok := mid.Annotations[V2FieldsAnnotation]; ok {
		t.Errorf("v1 form of a shadow v1 can express carries %s", V2FieldsAnnotation)
	}

	failed := plain.DeepCopy()
	failed.Status.CurrentState, failed.Status.CrashCount = v2.StateErrorReset, 7
	if err := mid.ConvertFrom(failed); err != nil {
		t.Fatal(err)
	}
	mid.Status.CurrentState = StateIdle // a v1 writer reports Idle
	var back v2.BottlerocketShadow
	if err := mid.ConvertTo(&back); err != nil {
		t.Fatal(err)
	}
	if back.Status.CurrentState != v2.StateIdle || back.Status.CrashCount != 7 {
		t.Errorf("after a v1 writer's Idle: status %+v, want Idle with crash_count 7", back.Status)
	}
	if _, ok := back.Annotations[V2FieldsAnnotation]; ok {
		t.Errorf("v2 form carries %s", V2FieldsAnnotation)
	}

	mid.Annotations[V2FieldsAnnotation] = "{not json"
	if err := mid.ConvertTo(&back); err != nil {
		t.Fatal(err)
	}
	if _, ok := back.Annotations[V2FieldsAnnotation]; ok || back.Status.CrashCount != 0 {
		t.Errorf("unreadable annotation: annotations %v, crash_count %d; want it dropped and crash_count 0", back.Annotations, back.Status.CrashCount)
	}
}

func TestConversionRejectsUnknownStates(t *testing.T) {
	var hub v2.BottlerocketShadow
	if err := v1Shadow("Sleeping", StateIdle).ConvertTo(&hub); err == nil {
		t.Error("unknown v1 spec state converted")
	}
	hub.Spec.State = "Sleeping"
	var v1s BottlerocketShadow
	if err := v1s.ConvertFrom(&hub); err == nil {
		t.Error("unknown v2 spec state converted")
	}
}

// FuzzConversion checks that any v2 object that converts to v1 converts back to v2 with the same
// metadata, spec version and timestamps, and a state that maps to the same v1 state.
func FuzzConversion(f *testing.F) {
	for i, st := range v2.States {
		f.Add(string(st), string(v2.States[(i+1)%len(v2.States)]), "1.21.0", uint32(i), "app")
	}
	f.Fuzz(func(t *testing.T, spec, status, version string, crash uint32, label string) {
		src := &v2.BottlerocketShadow{
			ObjectMeta: metav1.ObjectMeta{Name: "brs-x", Labels: map[string]string{"l": label}},
			Spec:       v2.BottlerocketShadowSpec{State: v2.State(spec), Version: &version},
			Status: &v2.BottlerocketShadowStatus{
				CurrentState: v2.State(status), CurrentVersion: version, TargetVersion: version, CrashCount: crash,
			},
		}
		var mid BottlerocketShadow
		if err := mid.ConvertFrom(src); err != nil {
			return // unknown states are refused, never half converted
		}
		var back v2.BottlerocketShadow
		if err := mid.ConvertTo(&back); err != nil {
			t.Fatalf("v1 produced by conversion does not convert back: %v", err)
		}
		if d := cmp.Diff(src.ObjectMeta, back.ObjectMeta); d != "" {
			t.Errorf("metadata changed: %s", d)
		}
		if *back.Spec.Version != version || back.Status.CurrentVersion != version {
			t.Errorf("versions changed")
		}
		s1, _ := StateFromV2(src.Spec.State)
		s2, _ := StateFromV2(back.Spec.State)
		if s1 != s2 {
			t.Errorf("spec state %s came back as %s", src.Spec.State, back.Spec.State)
		}
		if _, err := json.Marshal(&back); err != nil {
			t.Fatal(err)
		}
	})
}
