package controller

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// fieldOwner names the controller as the manager of the fields it writes.
var fieldOwner = client.FieldOwner("brupop-controller")

// errConflict marks writes refused because the cache was stale; the pass is retried.
var errConflict = errors.New("controller: stale read")

// staleOr returns errConflict for a write refused by the optimistic lock, err otherwise.
func staleOr(err error) error {
	if apierrors.IsConflict(err) {
		return errConflict
	}
	return err
}

// applied is a Change whose spec was written, with the shadow before and after.
type applied struct {
	rollout.Change
	before, after *v2.BottlerocketShadow
}

// applyChanges writes the spec of every change. A change whose shadow is gone is skipped; the
// others are attempted even after an error. It returns the changes that were written.
func (r *Reconciler) applyChanges(ctx context.Context, w *world, plan rollout.Plan, s rollout.Settings) ([]applied, error) {
	var done []applied
	var errs []error
	for _, c := range plan.Changes {
		before := w.shadow(c.Shadow)
		if before == nil {
			continue
		}
		after := patchedShadow(before, c.Decision, s.DrainTimeout)
		err := r.Client.Patch(ctx, after, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}), fieldOwner)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("patch shadow %s: %w", c.Shadow, staleOr(err)))
			continue
		}
		r.expect(after)
		done = append(done, applied{Change: c, before: before, after: after})
	}
	return done, errors.Join(errs...)
}

// patchedShadow returns the shadow with the decision's spec and annotations applied. A node that
// starts gets statemachine.StartedAnnotation, kept from then on (a reset spec does not end the
// agent's recovery, and a node this controller updated is never upstream's again), and the
// effective drain deadline in DrainTimeoutAnnotation (removed when the API server's default
// applies).
func patchedShadow(before *v2.BottlerocketShadow, d statemachine.Decision, drainTimeout time.Duration) *v2.BottlerocketShadow {
	after := before.DeepCopy()
	after.Spec = *d.Spec.DeepCopy()
	set := func(k, v string) {
		if after.Annotations == nil {
			after.Annotations = map[string]string{}
		}
		after.Annotations[k] = v
	}
	if d.Record != nil {
		set(statemachine.RecordAnnotation, d.Record.String())
	}
	if d.ClearRecord {
		delete(after.Annotations, statemachine.RecordAnnotation)
	}
	if d.Start {
		set(statemachine.StartedAnnotation, "true")
		if drainTimeout > 0 {
			set(v2.DrainTimeoutAnnotation, drainTimeout.String())
		} else {
			delete(after.Annotations, v2.DrainTimeoutAnnotation)
		}
	}
	return after
}

// expect remembers the generation of a shadow just written: no pass decides until the cache
// has it, so a stale cache never counts fewer nodes in flight than there are.
func (r *Reconciler) expect(s *v2.BottlerocketShadow) {
	r.expected[s.Name] = written{uid: s.UID, generation: s.Generation}
}

// written identifies a shadow write: a shadow recreated under the same name is another object.
type written struct {
	uid        types.UID
	generation int64
}

// expectPolicy remembers the FleetPolicy just written: no pass decides from an older status,
// which would lack the failures, releases and settings this one stored.
func (r *Reconciler) expectPolicy(fp *v2.FleetPolicy) {
	rv, err := strconv.ParseUint(fp.ResourceVersion, 10, 64)
	if err != nil {
		// Not a number: the cache's progress cannot be compared; do not wait for it.
		r.policyWritten = nil
		return
	}
	r.policyWritten = &policyWrite{uid: fp.UID, resourceVersion: rv, at: r.Clock.Now()}
}

// policyWaitLimit bounds how long passes wait for the cache to show the FleetPolicy last
// written. A watch delivers a write within seconds; a cache that never does (etcd restored from
// a backup, whose revisions are lower than the ones remembered) must not stall the controller.
const policyWaitLimit = 30 * time.Second

// policyWrite identifies a FleetPolicy write by the object and the resource version written,
// and says when it was written.
type policyWrite struct {
	uid             types.UID
	resourceVersion uint64
	at              time.Time
}

// policyBehind reports whether the cache holds an older FleetPolicy than the one last written.
// Resource versions are compared as numbers: kube-apiserver's are etcd revisions, which only
// grow (a newer object, written by anyone, has a larger one).
func (r *Reconciler) policyBehind(w *world) bool {
	pw := r.policyWritten
	if pw == nil {
		return false
	}
	if fp := w.policy; fp != nil && fp.UID == pw.uid {
		if rv, err := strconv.ParseUint(fp.ResourceVersion, 10, 64); err == nil && rv < pw.resourceVersion &&
			r.Clock.Since(pw.at) < policyWaitLimit {
			return true
		}
	}
	r.policyWritten = nil
	return false
}

// cacheBehind reports whether the cache has not yet seen a shadow or the FleetPolicy this
// controller wrote, and forgets the writes it has seen.
func (r *Reconciler) cacheBehind(w *world) bool {
	behind := r.policyBehind(w)
	if len(r.expected) == 0 {
		return behind
	}
	for name, wr := range r.expected {
		if s := w.shadow(name); s != nil && s.UID == wr.uid && s.Generation < wr.generation {
			behind = true
			continue
		}
		delete(r.expected, name)
	}
	return behind
}

// removeOptedOut deletes the shadows of Nodes that lost the opt-in label, after confirming the
// label is gone with a live read (the cache may lag behind a label just added). Shadows of
// deleted Nodes are left to the garbage collector (owner references). It returns the shadows
// removed.
func (r *Reconciler) removeOptedOut(ctx context.Context, w *world) (map[string]bool, error) {
	removed := map[string]bool{}
	var errs []error
	for i := range w.shadows {
		s := &w.shadows[i]
		node, ok := v2.NodeNameFromShadow(s.Name)
		n, exists := w.nodes[node]
		if !ok || !exists || statemachine.OptedIn(n) || s.DeletionTimestamp != nil {
			continue
		}
		var live corev1.Node
		if err := r.APIReader.Get(ctx, client.ObjectKey{Name: node}, &live); err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("get Node %s: %w", node, err))
			}
			continue
		}
		if statemachine.OptedIn(&live) {
			continue
		}
		err := r.Client.Delete(ctx, s, client.Preconditions{UID: &s.UID})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			errs = append(errs, fmt.Errorf("delete shadow %s of Node %s without the opt-in label: %w", s.Name, node, err))
			continue
		}
		removed[s.Name] = true
		r.log(ctx).Info("Deleted shadow of a Node without the opt-in label", "shadow", s.Name, "node", node)
	}
	return removed, errors.Join(errs...)
}
