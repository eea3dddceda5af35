package drain

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// Annotations by which Brupop remembers on a Node what it changed there.
const (
	// AnnotationCordoned is set when Brupop cordoned the node; Uncordon only uncordons such nodes.
	// It is v2.CordonedAnnotation.
	AnnotationCordoned = v2.CordonedAnnotation
	// AnnotationCordonTime is when the drain's cordon began (RFC 3339); drain deadlines count
	// from it. It is v2.CordonTimeAnnotation.
	AnnotationCordonTime = v2.CordonTimeAnnotation
	// AnnotationLBExcluded is set when Brupop added v2.ExcludeFromLBLabel; RemoveExclusionFromLB
	// only removes the label from such nodes.
	AnnotationLBExcluded = "brupop.bottlerocket.aws/lb-excluded-by-brupop"
	// ExcludeFromLBValue is the value of v2.ExcludeFromLBLabel, as upstream writes it.
	ExcludeFromLBValue = "True"
)

// Nodes changes Node objects on Brupop's behalf.
type Nodes struct {
	// Client reads and patches Nodes.
	Client kubernetes.Interface
	// Adopt, when set, reports whether a cordon or v2.ExcludeFromLBLabel the node carries
	// without Brupop's annotation is to be taken as Brupop's own: left by upstream's components
	// in the middle of an update (docs/install.md, "Switching from upstream"). It is asked only
	// when the node carries one. Nil adopts nothing.
	Adopt func(ctx context.Context, node string) (bool, error)
}

// adopter asks n.Adopt at most once per call of a Nodes method.
type adopter struct {
	n     Nodes
	name  string
	asked bool
	yes   bool
	err   error
}

func (a *adopter) adopt(ctx context.Context) (bool, error) {
	if a.n.Adopt == nil {
		return false, nil
	}
	if !a.asked {
		a.asked = true
		a.yes, a.err = a.n.Adopt(ctx, a.name)
	}
	return a.yes, a.err
}

// unowned reports whether node carries a cordon (lb false) or v2.ExcludeFromLBLabel (lb true)
// without Brupop's annotation for it.
func unowned(node *corev1.Node, lb bool) bool {
	if lb {
		_, labelled := node.Labels[v2.ExcludeFromLBLabel]
		_, ours := node.Annotations[AnnotationLBExcluded]
		return labelled && !ours
	}
	_, ours := node.Annotations[AnnotationCordoned]
	return node.Spec.Unschedulable && !ours
}

// Cordon is what Nodes.Cordon found or did.
type Cordon struct {
	// Ours reports that Brupop cordoned the node, now or earlier; false when an administrator
	// had cordoned it, and Uncordon will leave it cordoned.
	Ours bool
	// Started reports that this call began the cordon of a drain: it cordoned the node, or found
	// it cordoned without a cordon time and started counting.
	Started bool
	// Since is the cordon time, from AnnotationCordonTime: what a drain's deadline counts from.
	Since time.Time
	// Adopted reports that this call took a cordon or load-balancer exclusion that Brupop's
	// annotations did not mark as Brupop's own (Nodes.Adopt).
	Adopted bool
}

// Cordon marks the node unschedulable and returns its cordon time, setting AnnotationCordonTime
// to now when the node was schedulable, or is cordoned without a valid cordon time. A node that
// someone uncordoned since is cordoned anew, with a new cordon time. A cordon or load-balancer
// exclusion without Brupop's annotation that Adopt adopts is marked as Brupop's, to be undone at
// the end of the update.
func (n Nodes) Cordon(ctx context.Context, name string, now time.Time) (Cordon, error) {
	var c Cordon
	stamp := now.UTC().Format(time.RFC3339)
	a := &adopter{n: n, name: name}
	err := n.change(ctx, name, "cordon", func(node *corev1.Node) (map[string]any, error) {
		annotations := map[string]any{}
		c = Cordon{}
		if unowned(node, false) || unowned(node, true) {
			adopt, err := a.adopt(ctx)
			if err != nil {
				return nil, err
			}
			if adopt && unowned(node, false) {
				annotations[AnnotationCordoned] = "true"
				c.Adopted = true
			}
			if adopt && unowned(node, true) {
				annotations[AnnotationLBExcluded] = "true"
				c.Adopted = true
			}
		}
		_, ours := node.Annotations[AnnotationCordoned]
		c.Ours = ours || c.Adopted && node.Spec.Unschedulable
		switch since, err := time.Parse(time.RFC3339, node.Annotations[AnnotationCordonTime]); {
		case !node.Spec.Unschedulable:
			c = Cordon{Ours: true, Started: true, Since: now, Adopted: c.Adopted}
			annotations[AnnotationCordoned], annotations[AnnotationCordonTime] = "true", stamp
			return map[string]any{
				"metadata": map[string]any{"annotations": annotations},
				"spec":     map[string]any{"unschedulable": true},
			}, nil
		case err == nil:
			c.Since = since
		default:
			c.Started, c.Since = true, now
			annotations[AnnotationCordonTime] = stamp
		}
		if len(annotations) == 0 {
			return nil, nil
		}
		return map[string]any{"metadata": map[string]any{"annotations": annotations}}, nil
	})
	return c, err
}

// Uncordon makes the node schedulable again if Brupop cordoned it, or if Adopt adopts a cordon
// without Brupop's annotation, and otherwise leaves it as it is; either way it removes the cordon
// time. It reports whether it uncordoned the node.
func (n Nodes) Uncordon(ctx context.Context, name string) (bool, error) {
	done := false
	a := &adopter{n: n, name: name}
	err := n.change(ctx, name, "uncordon", func(node *corev1.Node) (map[string]any, error) {
		done = false
		_, ours := node.Annotations[AnnotationCordoned]
		_, timed := node.Annotations[AnnotationCordonTime]
		if unowned(node, false) {
			adopt, err := a.adopt(ctx)
			if err != nil {
				return nil, err
			}
			ours = adopt
		}
		switch {
		case ours:
			done = node.Spec.Unschedulable
			return map[string]any{
				"metadata": map[string]any{"annotations": map[string]any{AnnotationCordoned: nil, AnnotationCordonTime: nil}},
				"spec":     map[string]any{"unschedulable": false},
			}, nil
		case timed:
			return map[string]any{"metadata": map[string]any{"annotations": map[string]any{AnnotationCordonTime: nil}}}, nil
		}
		return nil, nil
	})
	return done, err
}

// ExcludeFromLB adds v2.ExcludeFromLBLabel to the node, unless it is there already; a label
// without Brupop's annotation that Adopt adopts is marked as Brupop's.
func (n Nodes) ExcludeFromLB(ctx context.Context, name string) error {
	a := &adopter{n: n, name: name}
	return n.change(ctx, name, "exclude from load balancers", func(node *corev1.Node) (map[string]any, error) {
		if _, ok := node.Labels[v2.ExcludeFromLBLabel]; ok {
			if !unowned(node, true) {
				return nil, nil
			}
			if adopt, err := a.adopt(ctx); err != nil || !adopt {
				return nil, err
			}
			return map[string]any{"metadata": map[string]any{"annotations": map[string]any{AnnotationLBExcluded: "true"}}}, nil
		}
		return map[string]any{"metadata": map[string]any{
			"labels":      map[string]any{v2.ExcludeFromLBLabel: ExcludeFromLBValue},
			"annotations": map[string]any{AnnotationLBExcluded: "true"},
		}}, nil
	})
}

// RemoveExclusionFromLB removes v2.ExcludeFromLBLabel if ExcludeFromLB added it, or if Adopt
// adopts it.
func (n Nodes) RemoveExclusionFromLB(ctx context.Context, name string) error {
	a := &adopter{n: n, name: name}
	return n.change(ctx, name, "remove exclusion from load balancers", func(node *corev1.Node) (map[string]any, error) {
		if _, ok := node.Annotations[AnnotationLBExcluded]; !ok {
			if !unowned(node, true) {
				return nil, nil
			}
			if adopt, err := a.adopt(ctx); err != nil || !adopt {
				return nil, err
			}
		}
		return map[string]any{"metadata": map[string]any{
			"labels":      map[string]any{v2.ExcludeFromLBLabel: nil},
			"annotations": map[string]any{AnnotationLBExcluded: nil},
		}}, nil
	})
}

// change reads the node, asks decide for a merge patch (nil: nothing to do) and applies it with
// the read resourceVersion as precondition, retrying on conflicts so that the decision is always
// made on the node as it is.
func (n Nodes) change(ctx context.Context, name, what string, decide func(*corev1.Node) (map[string]any, error)) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := n.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		patch, err := decide(node)
		if patch == nil || err != nil {
			return err
		}
		meta, _ := patch["metadata"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
			patch["metadata"] = meta
		}
		meta["resourceVersion"] = node.ResourceVersion
		raw, err := json.Marshal(patch)
		if err != nil {
			return err
		}
		_, err = n.Client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, raw, metav1.PatchOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("drain: %s node %s: %w", what, name, err)
	}
	return nil
}
