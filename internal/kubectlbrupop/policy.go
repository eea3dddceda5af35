package kubectlbrupop

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/fleetview"
)

// fieldManager names the plugin in the FleetPolicy's managed fields.
const fieldManager = "kubectl-brupop"

var semver = regexp.MustCompile(v2.SemverPattern)

// PolicyChange is what pause or resume did to the FleetPolicy.
type PolicyChange struct {
	// Policy is "<namespace>/default".
	Policy string `json:"policy"`
	// Created says the FleetPolicy did not exist and was created.
	Created bool `json:"created"`
	// Changes say what changed, one per field; empty when nothing had to.
	Changes []string `json:"changes"`
	// Notes are warnings for people.
	Notes []string `json:"notes,omitempty"`
	// Commands are the plain kubectl commands that do the same.
	Commands []string `json:"commands"`
}

// desired is what pause or resume asks of the FleetPolicy.
type desired struct {
	paused bool
	// resume is the halted version to resume, "" for none.
	resume string
}

// planChange returns the JSON merge patch that brings fp to d (nil when nothing changes), the
// changes it makes, and the equivalent kubectl commands. fp must exist.
func planChange(fp *v2.FleetPolicy, d desired) ([]byte, PolicyChange) {
	ch := PolicyChange{Policy: fp.Namespace + "/" + fp.Name}
	patch := map[string]any{}
	if fp.Spec.Paused != d.paused {
		ch.Changes = append(ch.Changes, fmt.Sprintf("spec.paused: %t -> %t", fp.Spec.Paused, d.paused))
		var v any // null removes the field, as kubectl's merge patch does
		if d.paused {
			v = true
		}
		patch["spec"] = map[string]any{"paused": v}
		ch.Commands = append(ch.Commands, fmt.Sprintf(`kubectl patch bfp %s -n %s --type merge -p '{"spec":{"paused":%s}}'`,
			fp.Name, fp.Namespace, map[bool]string{true: "true", false: "null"}[d.paused]))
	}
	if d.resume != "" {
		prev, had := fp.Annotations[v2.ResumeAnnotation]
		if !had || prev != d.resume {
			ch.Changes = append(ch.Changes, fmt.Sprintf("metadata.annotations[%s]: %q -> %q", v2.ResumeAnnotation, prev, d.resume))
			patch["metadata"] = map[string]any{"annotations": map[string]string{v2.ResumeAnnotation: d.resume}}
		} else {
			ch.Notes = append(ch.Notes, fmt.Sprintf("The resume of %s is already requested; the controller has not acknowledged it yet.", d.resume))
		}
		ch.Commands = append(ch.Commands, fleetview.ResumeAnnotateCommand(fp.Namespace, d.resume))
		if note := haltNote(fp, d.resume); note != "" {
			ch.Notes = append(ch.Notes, note)
		}
	}
	if len(patch) == 0 {
		return nil, ch
	}
	b, _ := json.Marshal(patch) // maps of strings and bools always marshal
	return b, ch
}

// haltNote warns when version is not halted in the FleetPolicy's status.
func haltNote(fp *v2.FleetPolicy, version string) string {
	var halted []string
	for _, v := range fp.Status.Versions {
		if v.Halted {
			if v.Version == version {
				return ""
			}
			halted = append(halted, v.Version)
		}
	}
	return fmt.Sprintf("%s is not halted (halted: %s); the controller records the resume anyway.", version, orNone(halted))
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// apply brings the FleetPolicy of ns to d, creating it when absent.
func apply(ctx context.Context, c client.Client, ns string, d desired) (PolicyChange, error) {
	fp, err := getPolicy(ctx, c, ns)
	if err != nil {
		return PolicyChange{}, err
	}
	if fp == nil {
		return create(ctx, c, ns, d)
	}
	patch, ch := planChange(fp, d)
	if patch == nil {
		return ch, nil
	}
	if err := c.Patch(ctx, fp, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(fieldManager)); err != nil {
		return ch, fmt.Errorf("kubectl-brupop: patch FleetPolicy %s: %w", ch.Policy, err)
	}
	return ch, nil
}

// create creates the FleetPolicy with d and the defaults for everything else. When it appears
// meanwhile, apply patches it instead.
func create(ctx context.Context, c client.Client, ns string, d desired) (PolicyChange, error) {
	fp := &v2.FleetPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v2.DefaultFleetPolicyName},
		Spec: v2.FleetPolicySpec{Paused: d.paused}}
	if d.resume != "" {
		fp.Annotations = map[string]string{v2.ResumeAnnotation: d.resume}
	}
	ch := PolicyChange{Policy: ns + "/" + fp.Name, Created: true}
	if !d.paused && d.resume == "" {
		ch.Notes = []string{"There is no FleetPolicy, so the rollout is not paused; nothing to do."}
		return ch, nil
	}
	err := c.Create(ctx, fp, client.FieldOwner(fieldManager))
	if apierrors.IsAlreadyExists(err) {
		return apply(ctx, c, ns, d)
	}
	if err != nil {
		return ch, fmt.Errorf("kubectl-brupop: create FleetPolicy %s: %w", ch.Policy, err)
	}
	_, planned := planChange(&v2.FleetPolicy{ObjectMeta: fp.ObjectMeta}, d)
	ch.Changes, ch.Notes = planned.Changes, planned.Notes
	manifest, _ := json.Marshal(map[string]any{"apiVersion": v2.GroupVersion.String(), "kind": "FleetPolicy",
		"metadata": map[string]any{"name": fp.Name, "namespace": ns}, "spec": map[string]any{"paused": d.paused}})
	ch.Commands = []string{fmt.Sprintf("kubectl create -f - <<'EOF'\n%s\nEOF", manifest)}
	if d.resume != "" {
		ch.Commands = append(ch.Commands, fleetview.ResumeAnnotateCommand(ns, d.resume))
	}
	return ch, nil
}

// writeChange prints what changed and the kubectl commands that do the same.
func writeChange(w io.Writer, ch PolicyChange) error {
	var b strings.Builder
	switch {
	case ch.Created && len(ch.Changes) > 0:
		fmt.Fprintf(&b, "FleetPolicy %s created\n", ch.Policy)
	case len(ch.Changes) > 0:
		fmt.Fprintf(&b, "FleetPolicy %s patched\n", ch.Policy)
	case len(ch.Notes) == 0:
		fmt.Fprintf(&b, "FleetPolicy %s unchanged: already as asked\n", ch.Policy)
	}
	for _, c := range ch.Changes {
		fmt.Fprintf(&b, "  %s\n", c)
	}
	for _, n := range ch.Notes {
		fmt.Fprintf(&b, "%s\n", n)
	}
	if len(ch.Commands) > 0 {
		b.WriteString("Equivalent kubectl:\n")
		for _, c := range ch.Commands {
			fmt.Fprintf(&b, "  %s\n", c)
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("kubectl-brupop: write the change: %w", err)
	}
	return nil
}

func newPauseCommand(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "pause",
		Short: "Stop new updates from starting (updates in flight finish)",
		Long:  "pause sets spec.paused of the FleetPolicy, creating it with the defaults when there is none.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.runChange(cmd.Context(), desired{paused: true})
		},
	}
}

func newResumeCommand(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "resume [VERSION]",
		Short: "Let new updates start again, and resume a halted version",
		Long: "resume clears spec.paused of the FleetPolicy. With VERSION it also asks the controller to resume the\n" +
			"rollout of that halted version (annotation " + v2.ResumeAnnotation + "): its release failures so far stop\n" +
			"counting against the failure budget.",
		Example: "  kubectl brupop resume\n  kubectl brupop resume 1.21.0",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d := desired{}
			if len(args) == 1 {
				if !semver.MatchString(args[0]) {
					return fmt.Errorf("kubectl-brupop: version %q: want a Bottlerocket version such as 1.21.0", args[0])
				}
				d.resume = args[0]
			}
			return o.runChange(cmd.Context(), d)
		},
	}
}

// runChange applies d to the FleetPolicy and reports what changed.
func (o *Options) runChange(parent context.Context, d desired) error {
	if err := o.validate(); err != nil {
		return err
	}
	ctx, cancel := o.context(parent)
	defer cancel()
	c, err := o.client()
	if err != nil {
		return err
	}
	ch, err := apply(ctx, c, o.namespace(), d)
	if err != nil {
		return err
	}
	if o.Output == "json" {
		return writeJSON(o.Streams.Out, ch)
	}
	return writeChange(o.Streams.Out, ch)
}
