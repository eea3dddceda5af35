package agent

import (
	"fmt"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// Step is one action the agent takes on the host or through the API server.
type Step string

// The steps of an update, each idempotent: running one again after an interruption is safe.
const (
	// StepNone does nothing.
	StepNone Step = ""
	// StepStage makes the host offer spec.version (pinning updates.version-lock when it offers
	// another version), prepares it and restores the previous settings.
	StepStage Step = "Stage"
	// StepActivate marks the staged update to boot next.
	StepActivate Step = "Activate"
	// StepDeactivate cancels an activated update that was not booted.
	StepDeactivate Step = "Deactivate"
	// StepDrainAndReboot excludes the node from load balancers (when configured), cordons and
	// drains it through the API server and reboots the host into the activated update.
	StepDrainAndReboot Step = "DrainAndReboot"
	// StepRecover undoes, through the API server, the cordon and load-balancer exclusion Brupop
	// made.
	StepRecover Step = "Recover"
)

// HostView is what the agent knows of the host in one pass.
type HostView struct {
	// Running is the version the host runs, version_id of GET /os.
	Running string
	// State is the update state; empty while the status is uninitialized (no update command
	// ran since boot).
	State hostapi.UpdateState
	// Staged is the version in the staging partition set; empty when none was prepared in
	// this boot.
	Staged string
}

// Observation is everything Decide needs: the shadow and the host.
type Observation struct {
	// Spec is the shadow's desired state.
	Spec v2.BottlerocketShadowSpec
	// Status is the shadow's reported status; nil when the agent never reported.
	Status *v2.BottlerocketShadowStatus
	// Host is the host's running version and update state.
	Host HostView
}

// Failure is a failed transition: the agent reports ErrorReset with this reason.
type Failure struct {
	// Reason is one of the failure reasons of package statemachine, such as
	// statemachine.ReasonDrainTimeout.
	Reason string
	// Message says, for people, what went wrong.
	Message string
}

// Error returns the failure_reason text.
func (f *Failure) Error() string { return statemachine.FormatFailureReason(f.Reason, f.Message) }

// Decision is the next thing to do.
type Decision struct {
	// Step is the action to run now; StepNone for none.
	Step Step
	// Report, when set, is the state to report once Step succeeded; the pass then ends.
	Report v2.State
	// Failure, when set, is reported as ErrorReset instead of doing anything.
	Failure *Failure
	// Message explains the decision, for the log.
	Message string
}

// Done reports whether the decision ends the pass: nothing to run, or something to report.
func (d Decision) Done() bool { return d.Step == StepNone || d.Report != "" || d.Failure != nil }

// Decide returns the next step towards the shadow's spec, following upstream's agent
// (docs/upstream.md, "Agent protocol") with its gaps closed: an activated update that the
// controller abandoned is deactivated, and a host that came back from its reboot on the wrong
// version is a failure with its reason instead of a blind retry.
func Decide(o Observation) Decision {
	spec := o.Spec
	cur := currentState(o.Status)
	switch {
	case spec.State == v2.StateIdle:
		return decideIdle(o, cur)
	case spec.State == v2.StateErrorReset:
		return Decision{Message: "spec.state ErrorReset is never desired; waiting for the controller"}
	case cur == spec.State:
		return Decision{Message: "At desired state"}
	case cur == v2.StateErrorReset:
		return Decision{Message: "Waiting for the controller to reset the spec after the failure"}
	case deref(spec.Version) == "":
		return fail(statemachine.ReasonAgentError, fmt.Sprintf("spec.state is %s but spec.version is empty", spec.State))
	}
	switch spec.State {
	case v2.StateStagedAndPerformedUpdate:
		return decideStage(o)
	case v2.StateRebootedIntoUpdate:
		return decideReboot(o, cur)
	case v2.StateMonitoringUpdate:
		return decideMonitor(o)
	}
	return Decision{Message: fmt.Sprintf("Unknown spec.state %q; waiting for the controller", spec.State)}
}

// decideIdle ends whatever attempt was in progress: an activated update is deactivated so that
// no later reboot boots it, and what Brupop did to the Node is undone.
func decideIdle(o Observation, cur v2.State) Decision {
	h := o.Host
	switch {
	case h.State == hostapi.StateReady && h.Staged != "" && h.Staged != h.Running:
		return Decision{Step: StepDeactivate, Message: fmt.Sprintf("Deactivating the abandoned update to %s", h.Staged)}
	case cur == v2.StateIdle:
		return Decision{Message: "At desired state"}
	case cur == "":
		return Decision{Report: v2.StateIdle, Message: "Reporting the first status"}
	}
	return Decision{Step: StepRecover, Report: v2.StateIdle, Message: fmt.Sprintf("Recovering from %s", cur)}
}

func decideStage(o Observation) Decision {
	want, h := deref(o.Spec.Version), o.Host
	switch {
	case h.Running == want:
		return Decision{Report: v2.StateStagedAndPerformedUpdate, Message: "The host already runs the version"}
	case h.State == hostapi.StateReady && h.Staged == want:
		return Decision{Report: v2.StateStagedAndPerformedUpdate, Message: "The update is already activated"}
	case h.State == hostapi.StateReady:
		return Decision{Step: StepDeactivate, Message: fmt.Sprintf("Deactivating the update to %s, not the one wanted", h.Staged)}
	case h.State == hostapi.StateStaged && h.Staged == want:
		return Decision{Step: StepActivate, Message: "Activating the staged update"}
	}
	return Decision{Step: StepStage, Message: "Preparing the update"}
}

func decideReboot(o Observation, cur v2.State) Decision {
	want, h := deref(o.Spec.Version), o.Host
	switch {
	case h.Running == want:
		return Decision{Step: StepRecover, Report: v2.StateRebootedIntoUpdate, Message: "The host runs the update"}
	case h.State == hostapi.StateReady && h.Staged == want:
		return Decision{Step: StepDrainAndReboot, Message: "Draining and rebooting into the update"}
	case h.State == hostapi.StateStaged && h.Staged == want:
		// Deactivated by someone since it was reported activated; activate it again.
		return Decision{Step: StepActivate, Message: "Activating the staged update again"}
	case cur == v2.StateStagedAndPerformedUpdate && h.Staged == "":
		// The staging partition is recorded only in the boot that prepared it: the host
		// rebooted since, and not into the update.
		if prev := o.Status.CurrentVersion; h.Running == prev {
			return fail(statemachine.ReasonBootRolledBack, fmt.Sprintf("the host booted back into %s after its reboot into %s: the new version failed to boot", prev, want))
		}
		return fail(statemachine.ReasonVersionMismatch, fmt.Sprintf("the host runs %s after its reboot into %s", h.Running, want))
	}
	return fail(statemachine.ReasonHostAPIError, fmt.Sprintf("the host cannot reboot into %s: update state %q, staged version %q", want, h.State, h.Staged))
}

func decideMonitor(o Observation) Decision {
	want, h := deref(o.Spec.Version), o.Host
	if h.Running != want {
		return fail(statemachine.ReasonVersionMismatch, fmt.Sprintf("the host runs %s while monitoring the update to %s", h.Running, want))
	}
	return Decision{Step: StepRecover, Report: v2.StateMonitoringUpdate, Message: "Monitoring the update"}
}

func fail(reason, msg string) Decision {
	return Decision{Failure: &Failure{Reason: reason, Message: msg}, Message: "Failed: " + msg}
}

// currentState returns status.current_state, or "" without a status.
func currentState(s *v2.BottlerocketShadowStatus) v2.State {
	if s == nil {
		return ""
	}
	return s.CurrentState
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
