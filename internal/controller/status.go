package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
)

// Condition types and reasons of the FleetPolicy status.
const (
	// ConditionReady is True when the FleetPolicy is valid and applied.
	ConditionReady = "Ready"
	// ConditionHalted is True when the rollout of a version is halted.
	ConditionHalted = "Halted"

	reasonApplied       = "Applied"
	reasonInvalidPolicy = "InvalidPolicy"
	reasonHalted        = "FailureBudgetSpent"
	reasonNotHalted     = "NoVersionHalted"
)

// statusInput is what the FleetPolicy status is computed from.
type statusInput struct {
	generation int64
	ledger     []rollout.VersionLedger
	halts      []rollout.Halt
	plan       rollout.Plan
	nodes      int
	lastRunEnd time.Time
	releases   map[string]time.Time
	// applied is what status.applied says (nil: nothing valid was ever applied).
	applied        *v2.FleetPolicyApplied
	controllerNode string
	settingsErr    error
	namespace      string
}

// fleetPolicyStatus returns the status to store, starting from prev so that the conditions keep
// their transition times.
func fleetPolicyStatus(prev v2.FleetPolicyStatus, in statusInput) v2.FleetPolicyStatus {
	st := v2.FleetPolicyStatus{ObservedGeneration: in.generation, Conditions: slices.Clone(prev.Conditions),
		Applied: in.applied.DeepCopy(), ControllerNode: in.controllerNode}
	for _, l := range in.ledger {
		v := v2.FleetPolicyVersionStatus{Version: l.Version}
		if !l.ResumedAt.IsZero() {
			v.ResumedAt = ptrTime(l.ResumedAt)
		}
		for _, f := range l.Failures {
			v.Failures = append(v.Failures, v2.FleetPolicyNodeFailure{Node: f.Node, Reason: f.Reason, Message: f.Message, Time: metav1.NewTime(f.At)})
		}
		if i := slices.IndexFunc(in.halts, func(h rollout.Halt) bool { return h.Version == l.Version }); i >= 0 {
			h := in.halts[i]
			v.Halted, v.HaltedSince, v.Reason = true, ptrTime(h.Since.Truncate(time.Second)), h.Reason
		}
		st.Versions = append(st.Versions, v)
	}
	st.Counts = v2.FleetPolicyCounts{Nodes: int32(in.nodes), InFlight: int32(in.plan.InFlight),
		Waiting: int32(len(in.plan.Waiting)), Halted: int32(len(in.halts))}
	if !in.lastRunEnd.IsZero() {
		st.LastRunEnd = ptrTime(in.lastRunEnd.Truncate(time.Second))
	}
	for _, v := range slices.Sorted(maps.Keys(in.releases)) {
		st.Releases = append(st.Releases, v2.FleetPolicyRelease{Version: v, FirstSeen: metav1.NewTime(in.releases[v].Truncate(time.Second))})
	}
	ready := metav1.Condition{Type: ConditionReady, Status: metav1.ConditionTrue, Reason: reasonApplied,
		Message: fmt.Sprintf("At most %s of %d nodes in flight", limitString(in.plan.Limit), in.nodes), ObservedGeneration: in.generation}
	if in.settingsErr != nil {
		ready.Status, ready.Reason = metav1.ConditionFalse, reasonInvalidPolicy
		ready.Message = in.settingsErr.Error()
	}
	meta.SetStatusCondition(&st.Conditions, ready)
	halted := metav1.Condition{Type: ConditionHalted, Status: metav1.ConditionFalse, Reason: reasonNotHalted,
		Message: "No version is halted", ObservedGeneration: in.generation}
	if len(in.halts) > 0 {
		msgs := make([]string, 0, len(in.halts))
		for _, h := range in.halts {
			msgs = append(msgs, haltMessage(h, in.namespace))
		}
		halted.Status, halted.Reason, halted.Message = metav1.ConditionTrue, reasonHalted, strings.Join(msgs, "\n")
	}
	meta.SetStatusCondition(&st.Conditions, halted)
	return st
}

// haltMessage says which version halted, why, and how to resume it.
func haltMessage(h rollout.Halt, namespace string) string {
	return fmt.Sprintf("Rollout of %s halted after failures on %s: %s. Resume it with: %s",
		h.Version, strings.Join(h.Nodes, ", "), h.Reason, ResumeCommand(namespace, h.Version))
}

// ResumeCommand is the kubectl command that resumes the halted rollout of version.
func ResumeCommand(namespace, version string) string {
	return fmt.Sprintf("kubectl annotate bfp %s -n %s %s=%s --overwrite", v2.DefaultFleetPolicyName, namespace, v2.ResumeAnnotation, version)
}

func limitString(limit int) string {
	if limit == int(^uint(0)>>1) {
		return "all"
	}
	return fmt.Sprint(limit)
}

func ptrTime(t time.Time) *metav1.Time {
	m := metav1.NewTime(t)
	return &m
}

// writeStatus stores st in the FleetPolicy's status when it changed, and then acknowledges a
// resume by removing the annotation. It returns the stored policy.
func (r *Reconciler) writeStatus(ctx context.Context, fp *v2.FleetPolicy, st v2.FleetPolicyStatus, resumed bool) error {
	// Compare with what was read; metav1.Time round-trips to the second, like st.
	if !equality.Semantic.DeepEqual(fp.Status, st) {
		// The controller is the only writer of status and st is computed from the union of its
		// memory and the stored status: the patch replaces the whole status, with no lock.
		body, err := replaceStatusPatch(fp.Status, st)
		if err != nil {
			return fmt.Errorf("encode FleetPolicy status: %w", err)
		}
		updated := fp.DeepCopy()
		if err := r.Client.Status().Patch(ctx, updated, client.RawPatch(types.MergePatchType, body), fieldOwner); err != nil {
			return fmt.Errorf("patch FleetPolicy status: %w", err)
		}
		fp = updated
		r.expectPolicy(fp)
	}
	if !resumed {
		return nil
	}
	acked := fp.DeepCopy()
	delete(acked.Annotations, v2.ResumeAnnotation)
	// The lock keeps a resume of another version, set meanwhile, from being removed unseen.
	if err := r.Client.Patch(ctx, acked, client.MergeFromWithOptions(fp, client.MergeFromWithOptimisticLock{}), fieldOwner); err != nil {
		return fmt.Errorf("remove the resume annotation of the FleetPolicy: %w", staleOr(err))
	}
	r.expectPolicy(acked)
	return nil
}

// replaceStatusPatch returns the JSON merge patch that replaces the status prev with st: st's
// fields, and null for every field of prev that st leaves out (an emptied list such as releases
// is omitted from st's JSON, and a merge patch keeps what it does not mention).
func replaceStatusPatch(prev, st v2.FleetPolicyStatus) ([]byte, error) {
	fields := func(s v2.FleetPolicyStatus) (map[string]any, error) {
		b, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		return m, json.Unmarshal(b, &m)
	}
	before, err := fields(prev)
	if err != nil {
		return nil, err
	}
	after, err := fields(st)
	if err != nil {
		return nil, err
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			after[k] = nil
		}
	}
	return json.Marshal(map[string]any{"status": after})
}
