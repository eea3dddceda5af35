package kubectlbrupop

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/fleetview"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// readInput reads, once, everything the views need.
func (o *Options) readInput(ctx context.Context) (fleetview.Input, error) {
	c, err := o.client()
	if err != nil {
		return fleetview.Input{}, err
	}
	ns := o.namespace()
	in := fleetview.Input{Namespace: ns}
	var shadows v2.BottlerocketShadowList
	if err := c.List(ctx, &shadows, client.InNamespace(ns)); err != nil {
		return in, fmt.Errorf("kubectl-brupop: list shadows in %s: %w", ns, err)
	}
	in.Shadows = shadows.Items
	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes); err != nil {
		return in, fmt.Errorf("kubectl-brupop: list Nodes: %w", err)
	}
	in.Nodes = nodes.Items
	if in.Policy, err = getPolicy(ctx, c, ns); err != nil {
		return in, err
	}
	// The settings, the controller's node and the pods the monitoring selects all come from
	// what the controller published in the FleetPolicy's status: never from its Deployment.
	if sel := monitoredPods(in.Policy); sel != nil {
		if in.PodsReady, err = podsReady(ctx, c, sel); err != nil {
			return in, err
		}
	}
	in.Now = o.Clock.Now()
	return in, nil
}

// monitoredPods returns the pod selector of the monitoring the controller applies
// (status.applied), nil when it publishes none.
func monitoredPods(fp *v2.FleetPolicy) *metav1.LabelSelector {
	if fp == nil || fp.Status.Applied == nil || fp.Status.Applied.Spec.Monitoring == nil {
		return nil
	}
	return fp.Status.Applied.Spec.Monitoring.PodSelector
}

// podsReady returns, as the controller computes it, false for the nodes where a pod the
// monitoring selects (in any namespace) is not Ready; nil when nothing is selected.
func podsReady(ctx context.Context, c client.Client, sel *metav1.LabelSelector) (map[string]bool, error) {
	if sel == nil {
		return nil, nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, fmt.Errorf("kubectl-brupop: FleetPolicy monitoring.podSelector: %w", err)
	}
	if s.Empty() || s.String() == labels.Nothing().String() {
		return nil, nil
	}
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.MatchingLabelsSelector{Selector: s}); err != nil {
		return nil, fmt.Errorf("kubectl-brupop: list monitored pods: %w", err)
	}
	return statemachine.PodsReadyByNode(pods.Items), nil
}

// getPolicy returns the FleetPolicy "default" of ns, nil when there is none.
func getPolicy(ctx context.Context, c client.Client, ns string) (*v2.FleetPolicy, error) {
	fp := &v2.FleetPolicy{}
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: v2.DefaultFleetPolicyName}, fp)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("kubectl-brupop: get FleetPolicy %s/%s: %w", ns, v2.DefaultFleetPolicyName, err)
	}
	return fp, nil
}
