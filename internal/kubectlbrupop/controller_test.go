package kubectlbrupop

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bottlerocket-os/brupop-go/internal/fleetview"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
)

func deployment(containers ...corev1.Container) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: ControllerDeploymentName}}
	d.Spec.Template.Spec.Containers = containers
	return d
}

func TestControllerFromDeployment(t *testing.T) {
	cases := []struct {
		name string
		dep  *appsv1.Deployment
		want fleetview.Controller
	}{
		{name: "upstream environment",
			dep: deployment(corev1.Container{Name: "brupop", Env: []corev1.EnvVar{
				{Name: "MAX_CONCURRENT_UPDATE", Value: "3"}, {Name: "SCHEDULER_CRON_EXPRESSION", Value: "* * 2 * * * *"},
				{Name: "MY_NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}}}),
			want: fleetview.Controller{Source: "Deployment ns/brupop-controller-deployment",
				Environment: rollout.Environment{MaxConcurrentUpdate: "3", SchedulerCronExpression: "* * 2 * * * *"}}},
		{name: "flags override the environment, both spellings",
			dep: deployment(corev1.Container{Name: "brupop", Env: []corev1.EnvVar{{Name: "MAX_CONCURRENT_UPDATE", Value: "3"}},
				Args: []string{"--max-concurrent-update=10%", "--time-zone", "Europe/Paris", "--leader-elect"}}),
			want: fleetview.Controller{Source: "Deployment ns/brupop-controller-deployment",
				Environment: rollout.Environment{MaxConcurrentUpdate: "10%"}, TimeZone: "Europe/Paris"}},
		{name: "values from a ConfigMap are named, not resolved",
			dep: deployment(corev1.Container{Name: "sidecar"}, corev1.Container{Name: "brupop", Env: []corev1.EnvVar{
				{Name: "MAX_CONCURRENT_UPDATE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "k"}}}}}),
			want: fleetview.Controller{Source: "Deployment ns/brupop-controller-deployment; not resolved: MAX_CONCURRENT_UPDATE"}},
		{name: "no containers", dep: deployment(),
			want: fleetview.Controller{Source: "Deployment ns/brupop-controller-deployment"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, controllerFromDeployment(tc.dep)); diff != "" {
				t.Errorf("controllerFromDeployment mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestControllerNode(t *testing.T) {
	pod := func(name, node string, phase corev1.PodPhase) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: phase}}
	}
	two := []corev1.Pod{pod("c-a", "n1", corev1.PodRunning), pod("c-b", "n2", corev1.PodRunning)}
	cases := []struct {
		name   string
		pods   []corev1.Pod
		holder string
		want   string
	}{
		{"leader's node", two, "c-b_5f0c", "n2"},
		{"two running, no leader: unknown", two, "", ""},
		{"one running", []corev1.Pod{pod("c-a", "n1", corev1.PodPending), pod("c-b", "n2", corev1.PodRunning)}, "", "n2"},
		{"no pods", nil, "c-a_1", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := controllerNode(tc.pods, tc.holder); got != tc.want {
				t.Errorf("controllerNode = %q, want %q", got, tc.want)
			}
		})
	}
}
