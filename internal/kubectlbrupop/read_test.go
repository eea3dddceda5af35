package kubectlbrupop

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/fixture"
)

// TestMonitoredPods: the pods the plugin reads are the ones the monitoring the controller
// applies selects (status.applied), not the spec's.
func TestMonitoredPods(t *testing.T) {
	spec := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "spec"}}
	applied := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "applied"}}
	fp := fixture.Policy(func(s *v2.FleetPolicySpec) { s.Monitoring = &v2.FleetPolicyMonitoring{PodSelector: spec} })
	if got := monitoredPods(fp); got != nil {
		t.Errorf("monitoredPods without status.applied = %v, want nil", got)
	}
	fp.Status.Applied = &v2.FleetPolicyApplied{Spec: v2.FleetPolicySpec{Monitoring: &v2.FleetPolicyMonitoring{PodSelector: applied}}}
	if got := monitoredPods(fp); got != applied {
		t.Errorf("monitoredPods = %v, want the applied selector %v", got, applied)
	}
	if got := monitoredPods(nil); got != nil {
		t.Errorf("monitoredPods(nil) = %v, want nil", got)
	}
}
