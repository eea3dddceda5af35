package statemachine

import (
	corev1 "k8s.io/api/core/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// OptedIn reports whether a Node carries Brupop's opt-in label with the one value that opts in.
func OptedIn(n *corev1.Node) bool {
	return n != nil && n.Labels[v2.NodeOptInLabel] == v2.NodeOptInValue
}

// FactsOf returns what monitoring knows of a Node: its Ready condition and since when, and whether
// every monitored pod on it is Ready (podsReady maps node names to false where one is not; a node
// missing from it has none that is not), and whether Brupop cordoned it. A nil Node (gone) is
// Missing and not Ready.
func FactsOf(n *corev1.Node, podsReady map[string]bool) NodeFacts {
	f := NodeFacts{PodsReady: true}
	if n == nil {
		f.Missing = true
		return f
	}
	if n.Spec.Unschedulable {
		_, f.Cordoned = n.Annotations[v2.CordonedAnnotation]
	}
	if ready, ok := podsReady[n.Name]; ok {
		f.PodsReady = ready
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			f.Ready = c.Status == corev1.ConditionTrue
			f.ReadySince = c.LastTransitionTime.Time
		}
	}
	return f
}

// PodsReadyByNode maps each node that runs a monitored pod that is not Ready to false. Pods not
// bound to a node, finished or being deleted do not count.
func PodsReadyByNode(pods []corev1.Pod) map[string]bool {
	ready := map[string]bool{}
	for i := range pods {
		p := &pods[i]
		if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.DeletionTimestamp != nil {
			continue
		}
		if !PodReady(p) {
			ready[p.Spec.NodeName] = false
		}
	}
	return ready
}

// PodReady reports whether a pod's Ready condition is True.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
