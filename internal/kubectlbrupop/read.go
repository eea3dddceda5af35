package kubectlbrupop

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
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
	in.Controller = readController(ctx, c, ns)
	if in.Policy != nil && in.Policy.Spec.Monitoring != nil {
		if in.PodsReady, err = podsReady(ctx, c, in.Policy.Spec.Monitoring.PodSelector); err != nil {
			return in, err
		}
	}
	in.Now = o.Clock.Now()
	return in, nil
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

// readController reads the controller's configuration from its Deployment, its pods and its
// leader Lease. Whatever cannot be read (not deployed, no RBAC) falls back to upstream's
// defaults, which Source says.
func readController(ctx context.Context, c client.Client, ns string) fleetview.Controller {
	dep, err := findControllerDeployment(ctx, c, ns)
	if err != nil {
		return fleetview.Controller{Source: "upstream defaults (" + err.Error() + ")"}
	}
	ctrl := controllerFromDeployment(dep)
	sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	if err != nil {
		return ctrl
	}
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return ctrl
	}
	var lease coordinationv1.Lease
	holder := ""
	if c.Get(ctx, client.ObjectKey{Namespace: ns, Name: ControllerLeaseName}, &lease) == nil && lease.Spec.HolderIdentity != nil {
		holder = *lease.Spec.HolderIdentity
	}
	ctrl.NodeName = controllerNode(pods.Items, holder)
	return ctrl
}

// findControllerDeployment returns the controller's Deployment: the one named
// ControllerDeploymentName, or the one labelled as the controller component.
func findControllerDeployment(ctx context.Context, c client.Client, ns string) (*appsv1.Deployment, error) {
	dep := &appsv1.Deployment{}
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: ControllerDeploymentName}, dep)
	if err == nil {
		return dep, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("cannot read Deployment %s/%s: %w", ns, ControllerDeploymentName, err)
	}
	var deps appsv1.DeploymentList
	if err := c.List(ctx, &deps, client.InNamespace(ns), client.MatchingLabels{v2.ComponentLabel: ControllerComponent}); err != nil {
		return nil, fmt.Errorf("cannot list Deployments in %s: %w", ns, err)
	}
	if len(deps.Items) == 0 {
		return nil, errors.New("no controller Deployment in " + ns)
	}
	return &deps.Items[0], nil
}
