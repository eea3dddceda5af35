//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/sim"
)

// pinUnevictable runs a pod named name on node with a PodDisruptionBudget that allows no
// eviction, so that no drain of node can finish while the budget exists, and waits until the
// budget protects the pod. It returns the budget.
func (s *story) pinUnevictable(name, node string) *policyv1.PodDisruptionBudget {
	s.t.Helper()
	ctx := s.t.Context()
	cl := s.c.Client()
	labels := map[string]string{"app": name}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: sim.WorkloadNamespace, Labels: labels},
		Spec: corev1.PodSpec{
			NodeSelector:                  map[string]string{corev1.LabelHostname: node},
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			AutomountServiceAccountToken:  ptr.To(false),
			Containers:                    []corev1.Container{{Name: name, Image: name + ":sim"}},
		},
	}
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: sim.WorkloadNamespace},
		Spec: policyv1.PodDisruptionBudgetSpec{
			// minAvailable, not maxUnavailable 0: a bare pod has no scale to count from.
			MinAvailable: ptr.To(intstr.FromInt32(1)),
			Selector:     &metav1.LabelSelector{MatchLabels: labels},
		},
	}
	for _, obj := range []client.Object{pod, pdb} {
		if err := cl.Create(ctx, obj); err != nil {
			s.t.Fatalf("create %s: %v", obj.GetName(), err)
		}
	}
	s.poll("the pinned pod "+name+" protected by its PDB", time.Minute, func(ctx context.Context) bool {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(pdb), pdb); err != nil {
			return false
		}
		return pdb.Status.ObservedGeneration == pdb.Generation && pdb.Status.CurrentHealthy == 1 && pdb.Status.DesiredHealthy == 1
	})
	s.note("pinned pod %s to %s with a PDB allowing no eviction", name, node)
	return pdb
}

// patchFleetPolicy merge-patches the FleetPolicy's spec with spec.
func (s *story) patchFleetPolicy(spec map[string]any) {
	s.t.Helper()
	data, err := json.Marshal(map[string]any{"spec": spec})
	if err != nil {
		s.t.Fatal(err)
	}
	fp := &v2.FleetPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: sim.Namespace, Name: v2.DefaultFleetPolicyName}}
	if err := s.c.Client().Patch(s.t.Context(), fp, client.RawPatch(client.Merge.Type(), data)); err != nil {
		s.t.Fatalf("patch the FleetPolicy: %v", err)
	}
	s.note("FleetPolicy spec patched: %s", data)
}

// fleetPolicy returns the FleetPolicy as it is now.
func (s *story) fleetPolicy() *v2.FleetPolicy {
	s.t.Helper()
	var fp v2.FleetPolicy
	if err := s.c.Client().Get(s.t.Context(), client.ObjectKey{Namespace: sim.Namespace, Name: v2.DefaultFleetPolicyName}, &fp); err != nil {
		s.t.Fatal(err)
	}
	return &fp
}

// shadow returns the shadow of node, or nil when it does not exist.
func (s *story) shadow(ctx context.Context, node string) (*v2.BottlerocketShadow, error) {
	var brs v2.BottlerocketShadow
	err := s.c.Client().Get(ctx, client.ObjectKey{Namespace: sim.Namespace, Name: v2.ShadowName(node)}, &brs)
	if client.IgnoreNotFound(err) != nil {
		return nil, err
	}
	if err != nil {
		return nil, nil //nolint:nilnil // absent is not an error here
	}
	return &brs, nil
}

// poll calls cond every 100 ms until it returns true; after timeout the story fails.
func (s *story) poll(what string, timeout time.Duration, cond func(context.Context) bool) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.t.Context(), timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond(ctx) {
		select {
		case <-ctx.Done():
			s.t.Fatalf("waited %s for %s", timeout, what)
		case <-tick.C:
		}
	}
}
