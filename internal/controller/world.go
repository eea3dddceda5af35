package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// world is everything one pass reads, from the cache, once.
type world struct {
	// policy is the FleetPolicy, nil when there is none.
	policy *v2.FleetPolicy
	// policyServed is false when the API server does not serve FleetPolicies (the CRD is not
	// installed): the state lives in memory and no FleetPolicy can be created.
	policyServed bool
	// shadows are the shadows of the namespace; byName indexes them.
	shadows []v2.BottlerocketShadow
	byName  map[string]*v2.BottlerocketShadow
	// nodes are all Nodes by name.
	nodes map[string]*corev1.Node
	// podsReady is false for the nodes where a selected pod is not Ready; absent means true.
	podsReady map[string]bool
}

// readWorld reads the FleetPolicy, the shadows and the Nodes from the cache.
func (r *Reconciler) readWorld(ctx context.Context) (*world, error) {
	w := &world{}
	if err := r.readPolicy(ctx, w); err != nil {
		return nil, err
	}
	var shadows v2.BottlerocketShadowList
	if err := r.Client.List(ctx, &shadows, client.InNamespace(r.namespace)); err != nil {
		return nil, fmt.Errorf("list shadows: %w", err)
	}
	w.shadows = shadows.Items
	w.byName = make(map[string]*v2.BottlerocketShadow, len(w.shadows))
	for i := range w.shadows {
		w.byName[w.shadows[i].Name] = &w.shadows[i]
	}
	var nodes corev1.NodeList
	if err := r.Client.List(ctx, &nodes); err != nil {
		return nil, fmt.Errorf("list Nodes: %w", err)
	}
	w.nodes = make(map[string]*corev1.Node, len(nodes.Items))
	for i := range nodes.Items {
		w.nodes[nodes.Items[i].Name] = &nodes.Items[i]
	}
	return w, nil
}

// readPolicy reads the FleetPolicy into w. Without the FleetPolicy CRD there is none, as when
// it is missing, and w.policyServed is false: the pass must not try to create one.
func (r *Reconciler) readPolicy(ctx context.Context, w *world) error {
	if r.policyKind.absent() {
		return nil // pollPolicyKind tells when the CRD appears
	}
	fp := &v2.FleetPolicy{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: r.namespace, Name: v2.DefaultFleetPolicyName}, fp)
	switch {
	case meta.IsNoMatchError(err):
		r.markAbsent(ctx)
		return nil
	case err == nil:
		w.policy = fp
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("get FleetPolicy %s/%s: %w", r.namespace, v2.DefaultFleetPolicyName, err)
	}
	if err := r.markServed(ctx); err != nil {
		return fmt.Errorf("watch FleetPolicies: %w", err)
	}
	w.policyServed = true
	return nil
}

// readPods fills w.podsReady from the pods the monitoring selector selects, in every namespace.
func (r *Reconciler) readPods(ctx context.Context, w *world, sel *metav1.LabelSelector) error {
	if sel == nil {
		return nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return fmt.Errorf("monitoring pod selector: %w", err)
	}
	if s.Empty() || s.String() == labels.Nothing().String() {
		return nil
	}
	if err := r.ensurePodWatch(); err != nil {
		return err
	}
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.MatchingLabelsSelector{Selector: s}); err != nil {
		return fmt.Errorf("list monitored pods: %w", err)
	}
	w.podsReady = statemachine.PodsReadyByNode(pods.Items)
	return nil
}

// fleet builds the input of rollout.Decide from the world, leaving out the shadows in skip.
func (r *Reconciler) fleet(w *world, skip map[string]bool) rollout.Fleet {
	f := rollout.Fleet{ControllerNode: r.nodeName, Members: make([]rollout.Member, 0, len(w.shadows))}
	for i := range w.shadows {
		s := &w.shadows[i]
		if skip[s.Name] || s.DeletionTimestamp != nil {
			continue
		}
		node, _ := v2.NodeNameFromShadow(s.Name)
		f.Members = append(f.Members, rollout.MemberOf(s, w.nodes[node], w.podsReady))
	}
	return f
}

// shadow returns the shadow named name, nil when there is none.
func (w *world) shadow(name string) *v2.BottlerocketShadow { return w.byName[name] }
