package agent

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

func TestDrainTimeout(t *testing.T) {
	const fallback = 10 * time.Minute
	tests := []struct {
		name        string
		annotations map[string]string
		want        time.Duration
		wantErr     bool
	}{
		{name: "no annotations", want: fallback},
		{name: "other annotations", annotations: map[string]string{"a": "1m"}, want: fallback},
		{name: "controller's timeout", annotations: map[string]string{v2.DrainTimeoutAnnotation: "1m30s"}, want: 90 * time.Second},
		{name: "not a duration", annotations: map[string]string{v2.DrainTimeoutAnnotation: "90"}, want: fallback, wantErr: true},
		{name: "zero", annotations: map[string]string{v2.DrainTimeoutAnnotation: "0s"}, want: fallback, wantErr: true},
		{name: "negative", annotations: map[string]string{v2.DrainTimeoutAnnotation: "-1m"}, want: fallback, wantErr: true},
		{name: "empty", annotations: map[string]string{v2.DrainTimeoutAnnotation: ""}, want: fallback, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DrainTimeout(tt.annotations, fallback)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("DrainTimeout(%v) = %s, %v; want %s, error %v", tt.annotations, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestDrainDeadline(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(d)} }
	tests := []struct {
		name            string
		transition      *metav1.Time
		lbWait, timeout time.Duration
		want            time.Time
	}{
		{name: "counts from the transition", transition: at(-3 * time.Minute), timeout: 5 * time.Minute, want: now.Add(2 * time.Minute)},
		{name: "already passed", transition: at(-time.Hour), timeout: 5 * time.Minute, want: now.Add(-55 * time.Minute)},
		{name: "adds the load-balancer wait", transition: at(-time.Minute), lbWait: 30 * time.Second, timeout: time.Minute, want: now.Add(30 * time.Second)},
		{name: "no transition time", timeout: time.Minute, want: now.Add(time.Minute)},
		{name: "transition in the future", transition: at(time.Hour), timeout: time.Minute, want: now.Add(time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := v2.BottlerocketShadowSpec{State: v2.StateRebootedIntoUpdate, StateTransitionTimestamp: tt.transition}
			if got := DrainDeadline(spec, now, tt.lbWait, tt.timeout); !got.Equal(tt.want) {
				t.Errorf("DrainDeadline = %s, want %s", got, tt.want)
			}
		})
	}
}
