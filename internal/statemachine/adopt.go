package statemachine

import (
	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// StartedAnnotation is set by the controller on a shadow when it starts the node's update, and
// kept from then on: an update in progress without it was started by upstream's controller.
const StartedAnnotation = "brupop.bottlerocket.aws/update-started-by-brupop"

// AdoptsUpstreamChanges reports whether a cordon or load-balancer exclusion that a Node carries
// without Brupop's annotations is taken as Brupop's own, to be undone at the end of the update:
// the node is in the middle of an update upstream's controller started (no StartedAnnotation),
// its spec.state or status.current_state being StagedAndPerformedUpdate or RebootedIntoUpdate.
// Upstream's agent cordons and excludes the node in its RebootedIntoUpdate step, while the status
// still reads StagedAndPerformedUpdate, and undoes both before it reports RebootedIntoUpdate;
// either field is taken, so that every moment of that step counts. A node Idle on both sides, or
// whose update Brupop started, keeps a cordon someone else made (docs/install.md, "Switching from
// upstream").
func AdoptsUpstreamChanges(brs *v2.BottlerocketShadow) bool {
	if brs == nil {
		return false
	}
	if _, ours := brs.Annotations[StartedAnnotation]; ours {
		return false
	}
	mid := func(s v2.State) bool {
		return s == v2.StateStagedAndPerformedUpdate || s == v2.StateRebootedIntoUpdate
	}
	return mid(brs.Spec.State) || brs.Status != nil && mid(brs.Status.CurrentState)
}
