package kubectlbrupop

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/bottlerocket-os/brupop-go/internal/fleetview"
)

// Names of the controller's objects, as upstream's manifests spell them.
const (
	// ControllerDeploymentName is the name of the controller's Deployment.
	ControllerDeploymentName = "brupop-controller-deployment"
	// ControllerComponent is the value of v2.ComponentLabel on the controller's objects.
	ControllerComponent = "brupop-controller"
	// ControllerLeaseName is the controller's leader election Lease.
	ControllerLeaseName = "brupop-controller-leader"
)

// settingFlags maps the controller's flags to the environment variables they override.
var settingFlags = map[string]string{
	"--max-concurrent-update":     "MAX_CONCURRENT_UPDATE",
	"--scheduler-cron-expression": "SCHEDULER_CRON_EXPRESSION",
	"--update-window-start":       "UPDATE_WINDOW_START",
	"--update-window-stop":        "UPDATE_WINDOW_STOP",
	"--time-zone":                 "SCHEDULER_TIME_ZONE",
}

// controllerFromDeployment returns the rollout configuration of the controller's Deployment:
// the literal environment values of its container and the flags that override them. Values
// from ConfigMaps or Secrets (valueFrom) are not resolved and are named in Source.
func controllerFromDeployment(dep *appsv1.Deployment) fleetview.Controller {
	ctrl := fleetview.Controller{Source: fmt.Sprintf("Deployment %s/%s", dep.Namespace, dep.Name)}
	cs := dep.Spec.Template.Spec.Containers
	if len(cs) == 0 {
		return ctrl
	}
	c := cs[0]
	for _, x := range cs {
		if hasEnv(x, "MAX_CONCURRENT_UPDATE") {
			c = x
			break
		}
	}
	vars := map[string]string{}
	var unresolved []string
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			if settingNames[e.Name] {
				unresolved = append(unresolved, e.Name)
			}
			continue
		}
		vars[e.Name] = e.Value
	}
	args := append(append([]string{}, c.Command...), c.Args...)
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(args[i], "=")
		v, ok := settingFlags[name]
		if !ok {
			continue
		}
		if !hasValue && i+1 < len(args) {
			i++
			value = args[i]
		}
		vars[v] = value
	}
	ctrl.Environment.MaxConcurrentUpdate = vars["MAX_CONCURRENT_UPDATE"]
	ctrl.Environment.SchedulerCronExpression = vars["SCHEDULER_CRON_EXPRESSION"]
	ctrl.Environment.UpdateWindowStart = vars["UPDATE_WINDOW_START"]
	ctrl.Environment.UpdateWindowStop = vars["UPDATE_WINDOW_STOP"]
	ctrl.TimeZone = vars["SCHEDULER_TIME_ZONE"]
	if len(unresolved) > 0 {
		ctrl.Source += "; not resolved: " + strings.Join(unresolved, ", ")
	}
	return ctrl
}

// settingNames are the environment variables of settingFlags.
var settingNames = func() map[string]bool {
	m := map[string]bool{}
	for _, v := range settingFlags {
		m[v] = true
	}
	return m
}()

func hasEnv(c corev1.Container, name string) bool {
	for _, e := range c.Env {
		if e.Name == name {
			return true
		}
	}
	return false
}

// controllerNode returns the node the controller acts from: the node of the pod holding the
// leader Lease (controller-runtime's identity is "<pod>_<uuid>"), else of the only running pod;
// "" when it cannot tell.
func controllerNode(pods []corev1.Pod, leaseHolder string) string {
	leader, _, _ := strings.Cut(leaseHolder, "_")
	var running []corev1.Pod
	for _, p := range pods {
		if leader != "" && p.Name == leader {
			return p.Spec.NodeName
		}
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			running = append(running, p)
		}
	}
	if len(running) == 1 {
		return running[0].Spec.NodeName
	}
	return ""
}
