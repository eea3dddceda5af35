package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// Event reasons, on the shadow and on its Node (and on the FleetPolicy for halts and an invalid
// policy).
const (
	EventUpdateStarted    = "UpdateStarted"
	EventUpdateCompleted  = "UpdateCompleted"
	EventUpdateFailed     = "UpdateFailed"
	EventUpdateTimedOut   = "UpdateTimedOut"
	EventWaitingForWindow = "WaitingForWindow"
	EventUpdatePaused     = "UpdatePaused"
	EventRolloutHalted    = "RolloutHalted"
	EventInvalidPolicy    = "InvalidPolicy"
	EventReleaseSoaking   = "ReleaseSoaking"
)

// waitEvents are the wait reasons announced by an Event, once per wait.
var waitEvents = map[rollout.WaitReason]string{
	rollout.WaitWindowClosed: EventWaitingForWindow,
	rollout.WaitPaused:       EventUpdatePaused,
	rollout.WaitSoaking:      EventReleaseSoaking,
}

// emit logs the written changes and emits the Events a person wants to see. New halts are
// announced once the status that records them is stored.
func (r *Reconciler) emit(ctx context.Context, w *world, plan rollout.Plan, done []applied, halts []rollout.Halt, statusStored bool) {
	logger := r.log(ctx)
	for _, a := range done {
		d := a.Decision
		logger.Info("Changed desired state", "shadow", a.Shadow, "node", a.Node, "fromState", a.before.Spec.State,
			"toState", d.Spec.State, "targetVersion", deref(d.Spec.Version), "reason", d.Outcome)
		node := w.nodes[a.Node]
		switch {
		case d.Start:
			r.event(a.after, node, corev1.EventTypeNormal, EventUpdateStarted, "StartUpdate",
				fmt.Sprintf("Started the update to %s (%d of %s nodes in flight)", deref(d.Spec.Version), plan.InFlight, limitString(plan.Limit)))
		case d.Outcome == statemachine.OutcomeComplete:
			r.event(a.after, node, corev1.EventTypeNormal, EventUpdateCompleted, "CompleteUpdate", d.Message)
		case d.Outcome == statemachine.OutcomeTimedOut:
			r.event(a.after, node, corev1.EventTypeWarning, EventUpdateTimedOut, "FailUpdate", d.Message)
		case d.Outcome == statemachine.OutcomeFailed:
			r.event(a.after, node, corev1.EventTypeWarning, EventUpdateFailed, "FailUpdate", d.Message)
		}
	}
	r.emitWaits(w, plan)
	if statusStored {
		r.emitHalts(w, halts)
	}
}

// emitWaits announces a node waiting for the window, the pause or the release soak to end, once
// per wait.
func (r *Reconciler) emitWaits(w *world, plan rollout.Plan) {
	waiting := make(map[string]bool, len(plan.Waiting))
	for _, wt := range plan.Waiting {
		waiting[wt.Node] = true
		if r.waits[wt.Node] == wt.Reason {
			continue
		}
		r.waits[wt.Node] = wt.Reason
		reason, ok := waitEvents[wt.Reason]
		if !ok {
			continue
		}
		msg := fmt.Sprintf("The update to %s waits: the rollout is paused (spec.paused of FleetPolicy %s)", wt.Version, v2.DefaultFleetPolicyName)
		switch wt.Reason {
		case rollout.WaitSoaking:
			msg = fmt.Sprintf("The update to %s waits for the release soak (releaseSoak of FleetPolicy %s) to end at %s",
				wt.Version, v2.DefaultFleetPolicyName, wt.Until.UTC().Format("2006-01-02T15:04:05Z"))
		case rollout.WaitWindowClosed:
			msg = fmt.Sprintf("The update to %s waits for the update window", wt.Version)
			if !wt.Until.IsZero() {
				msg += ", which opens at " + wt.Until.UTC().Format("2006-01-02T15:04:05Z")
			}
		}
		if s := w.shadow(v2.ShadowName(wt.Node)); s != nil {
			r.event(s, w.nodes[wt.Node], corev1.EventTypeNormal, reason, "WaitForUpdate", msg)
		}
	}
	for node := range r.waits {
		if !waiting[node] {
			delete(r.waits, node)
		}
	}
}

// emitHalts announces each newly halted version on the FleetPolicy and on the failed nodes.
func (r *Reconciler) emitHalts(w *world, halts []rollout.Halt) {
	for _, h := range halts {
		msg := haltMessage(h, r.namespace)
		switch {
		case w.policy != nil:
			r.Recorder.Eventf(w.policy, nil, corev1.EventTypeWarning, EventRolloutHalted, "HaltRollout", "%s", msg)
		case !w.policyServed:
			msg += " (the FleetPolicy CRD is not installed: the halt lives only in this controller's memory, and a restart forgets it; install the CRD to keep it)"
		default:
			msg += fmt.Sprintf(" (FleetPolicy %s in %s could not be created: until it exists the halt lives only in this controller's memory)", v2.DefaultFleetPolicyName, r.namespace)
		}
		for _, n := range h.Nodes {
			if s := w.shadow(v2.ShadowName(n)); s != nil {
				r.event(s, w.nodes[n], corev1.EventTypeWarning, EventRolloutHalted, "HaltRollout", msg)
			}
		}
	}
}

// event emits an Event on the shadow and, when it exists, on its Node.
func (r *Reconciler) event(s *v2.BottlerocketShadow, node *corev1.Node, eventType, reason, action, msg string) {
	var related runtime.Object
	if node != nil {
		related = node
	}
	r.Recorder.Eventf(s, related, eventType, reason, action, "%s", msg)
	if node != nil {
		r.Recorder.Eventf(node, s, eventType, reason, action, "%s", msg)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
