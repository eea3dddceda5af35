package statemachine

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

func TestAdoptsUpstreamChanges(t *testing.T) {
	shadow := func(spec, status v2.State, annotations map[string]string) *v2.BottlerocketShadow {
		brs := &v2.BottlerocketShadow{ObjectMeta: metav1.ObjectMeta{Annotations: annotations}, Spec: v2.BottlerocketShadowSpec{State: spec}}
		if status != "" {
			brs.Status = &v2.BottlerocketShadowStatus{CurrentState: status}
		}
		return brs
	}
	ours := map[string]string{StartedAnnotation: "true"}
	tests := []struct {
		name string
		brs  *v2.BottlerocketShadow
		want bool
	}{
		{"no shadow", nil, false},
		{"Idle: an administrator's cordon", shadow(v2.StateIdle, v2.StateIdle, nil), false},
		{"Idle without a status", shadow(v2.StateIdle, "", nil), false},
		{"upstream's drain: spec RebootedIntoUpdate, status StagedAndPerformedUpdate", shadow(v2.StateRebootedIntoUpdate, v2.StateStagedAndPerformedUpdate, nil), true},
		{"staged", shadow(v2.StateStagedAndPerformedUpdate, v2.StateStagedAndPerformedUpdate, nil), true},
		{"rebooted, reported", shadow(v2.StateMonitoringUpdate, v2.StateRebootedIntoUpdate, nil), true},
		{"monitoring", shadow(v2.StateMonitoringUpdate, v2.StateMonitoringUpdate, nil), false},
		{"failed, back to Idle", shadow(v2.StateIdle, v2.StateErrorReset, nil), false},
		{"an update Brupop started", shadow(v2.StateRebootedIntoUpdate, v2.StateStagedAndPerformedUpdate, ours), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AdoptsUpstreamChanges(tt.brs); got != tt.want {
				t.Errorf("AdoptsUpstreamChanges = %v, want %v", got, tt.want)
			}
		})
	}
}
