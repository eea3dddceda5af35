package sim

import (
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
)

// Names of the objects the simulation creates.
const (
	// Namespace is Brupop's namespace in the simulated cluster.
	Namespace = v2.DefaultNamespace
	// WorkloadNamespace holds the demo workloads that drains evict.
	WorkloadNamespace = "demo"
	// AgentDaemonSet gives every node an agent pod for its agent's tokens to be bound to.
	AgentDaemonSet = "brupop-agent"
	// APIServerServiceAccount and ControllerServiceAccount are the identities of the API
	// server and the controller; agents use agentapi.AgentServiceAccount.
	APIServerServiceAccount  = "brupop-apiserver-service-account"
	ControllerServiceAccount = "brupop-controller-service-account"
	// workloadLabel marks every demo workload pod.
	workloadLabel = "app.kubernetes.io/part-of"
	workloadValue = "demo"
	// podReadyDelay is how long a demo pod takes to become Ready, so a PDB really holds a
	// drain back while a replacement starts.
	podReadyDelay = "1s"
	// monitoringDeadline is how long past the monitoring period a node may take to be healthy.
	monitoringDeadline = 10 * time.Second
	// variant is the Bottlerocket variant of every simulated host.
	variant = "aws-k8s-1.31"
)

// osImage is the Node's osImage for a Bottlerocket version, as a real node reports it.
func osImage(version string) string {
	return fmt.Sprintf("Bottlerocket OS %s (%s)", version, variant)
}

// nodeObject is a kwok-managed Node opted in to Brupop, with a distinct InternalIP, in zone
// (unlabelled when empty).
func nodeObject(i int, version, zone string) *corev1.Node {
	name := NodeName(i)
	res := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods: resource.MustParse("110"),
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Annotations: map[string]string{
				kwokNodeAnnotation: "fake", "node.alpha.kubernetes.io/ttl": "0",
				// NotReady as soon as a reboot starts, not 1-2 s later.
				kwokNotReadyDelay: "100ms", kwokNotReadyJitter: "100ms", kwokNotReadyReason: "Rebooting",
			},
			Labels: map[string]string{
				"type": "kwok", kwokManagedLabel: "true",
				corev1.LabelArchStable: "amd64", corev1.LabelOSStable: "linux", corev1.LabelHostname: name,
				v2.NodeOptInLabel: v2.NodeOptInValue,
			},
		},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: kwokTaintKey, Value: "fake", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)},
				{Type: corev1.NodeHostName, Address: name},
			},
			Allocatable: res, Capacity: res,
			NodeInfo: corev1.NodeSystemInfo{
				Architecture: "amd64", OperatingSystem: "linux", OSImage: osImage(version), KubeletVersion: "v1.37.2",
			},
		},
	}
	if zone != "" {
		n.Labels[corev1.LabelTopologyZone] = zone
	}
	return n
}

// kwokToleration lets a pod run on kwok's tainted nodes.
var kwokToleration = corev1.Toleration{Key: kwokTaintKey, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}

// agentDaemonSet runs one agent pod on every opted-in node. kwok runs no containers: the pods
// exist so that each agent's tokens are bound to a pod on its node and drains skip them as
// they skip a real agent.
func agentDaemonSet() *appsv1.DaemonSet {
	labels := map[string]string{v2.ComponentLabel: agentapi.AgentComponent}
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: AgentDaemonSet, Namespace: Namespace, Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName:           agentapi.AgentServiceAccount,
					AutomountServiceAccountToken: ptr.To(false),
					NodeSelector:                 map[string]string{v2.NodeOptInLabel: v2.NodeOptInValue},
					Tolerations:                  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					Containers:                   []corev1.Container{{Name: "agent", Image: "brupop-agent:sim"}},
				},
			},
		},
	}
}

// workloadPod is the pod template of the demo workloads: spread over the nodes, tolerating
// kwok's taint, Ready podReadyDelay after it starts.
func workloadPod(app string) corev1.PodTemplateSpec {
	labels := map[string]string{"app": app, workloadLabel: workloadValue}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{kwokPodReadyDelay: podReadyDelay}},
		Spec: corev1.PodSpec{
			NodeSelector:                  map[string]string{"type": "kwok"},
			Tolerations:                   []corev1.Toleration{kwokToleration},
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			AutomountServiceAccountToken:  ptr.To(false),
			Containers:                    []corev1.Container{{Name: app, Image: app + ":sim"}},
			TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
				MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.ScheduleAnyway,
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
			}},
		},
	}
}

// workloads are a Deployment of about one pod per node, a StatefulSet of three and a PDB over
// the Deployment that allows one disruption at a time.
func workloads(nodes int) (*appsv1.Deployment, *appsv1.StatefulSet, *policyv1.PodDisruptionBudget) {
	web := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: WorkloadNamespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(max(nodes, 2))),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: workloadPod("web"),
		},
	}
	db := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: WorkloadNamespace},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr.To(int32(min(nodes, 3))),
			ServiceName:         "db",
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template:            workloadPod("db"),
		},
	}
	// The PDB covers the Deployment only. The disruption controller remembers evicted pods by
	// name for two minutes (its DeletionTimeout) unless its next sync finds the name gone; a
	// StatefulSet pod recreated under the same name before that sync counts as disrupted for
	// the whole two minutes, and a PDB over it would stall every drain in the meantime.
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: WorkloadNamespace},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(1)),
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		},
	}
	return web, db, pdb
}

// fleetPolicy is the FleetPolicy of the options.
func fleetPolicy(o *Options) *v2.FleetPolicy {
	fp := &v2.FleetPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: v2.DefaultFleetPolicyName, Namespace: Namespace},
		Spec: v2.FleetPolicySpec{
			MaxConcurrentUpdates: strconv.Itoa(o.MaxConcurrent),
			Monitoring: &v2.FleetPolicyMonitoring{
				Period: &metav1.Duration{Duration: o.MonitoringPeriod},
				// A node unhealthy after its reboot fails in seconds, not the default 5 minutes.
				Deadline: &metav1.Duration{Duration: monitoringDeadline},
			},
		},
	}
	if o.Cron != "" {
		fp.Spec.Schedule = &v2.FleetPolicySchedule{Cron: o.Cron}
	}
	fp.Spec.MaxVersion = o.MaxVersion
	if o.ReleaseSoak > 0 {
		fp.Spec.ReleaseSoak = &metav1.Duration{Duration: o.ReleaseSoak}
	}
	if o.ZonesInFlight > 0 {
		fp.Spec.Zones = &v2.FleetPolicyZones{MaxInFlight: int32(o.ZonesInFlight)}
	}
	return fp
}
