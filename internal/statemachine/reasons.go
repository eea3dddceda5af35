package statemachine

import "strings"

// Class says whose fault a failure is.
type Class string

const (
	// ClassOperational failures (a drain deadline, a host-API error, a state timeout) are the
	// node's or the cluster's problem: the node retries after upstream's exponential backoff.
	ClassOperational Class = "Operational"
	// ClassRelease failures (the boot rolled back, the wrong version after the reboot, failed
	// monitoring) point at the release: they count against the failure budget of its version.
	ClassRelease Class = "Release"
)

// Failure reasons. The agent writes the ones it detects into status.failure_reason with
// FormatFailureReason; the controller uses the others for failures it detects itself.
const (
	// ReasonBootRolledBack (agent, release): after the reboot the host runs its previous version
	// because the new one failed to boot.
	ReasonBootRolledBack = "BootRolledBack"
	// ReasonVersionMismatch (agent or controller, release): after the reboot the host runs a
	// version other than spec.version.
	ReasonVersionMismatch = "VersionMismatch"
	// ReasonMonitoringFailed (controller, release): the Node, or the selected pods on it, were not
	// Ready for the whole monitoring period before its deadline.
	ReasonMonitoringFailed = "MonitoringFailed"
	// ReasonRebootNotReady (controller, release): the RebootedIntoUpdate deadline passed while
	// the Node was not Ready, so the node most likely did not come back from the new version.
	ReasonRebootNotReady = "RebootNotReady"
	// ReasonVersionNotOffered (agent, release): the host does not offer the version the
	// controller asked for, even with updates.version-lock pinned to it, and does not list it
	// among its available updates: a release that was pulled, or a FleetPolicy maxVersion that
	// names no published version. It counts against
	// that version's budget, so a bad cap halts after one node instead of failing the whole
	// fleet into backoff, and fixing the cap lets the nodes start at once.
	ReasonVersionNotOffered = "VersionNotOffered"
	// ReasonDrainTimeout (agent, operational): the drain did not finish by its deadline, usually
	// because of a PodDisruptionBudget.
	ReasonDrainTimeout = "DrainTimeout"
	// ReasonHostAPIError (agent, operational): a host-API action (prepare, activate, reboot)
	// failed.
	ReasonHostAPIError = "HostAPIError"
	// ReasonAgentError (operational) is any failure the agent reported without a known reason,
	// as upstream's agent always does.
	ReasonAgentError = "AgentError"
	// ReasonStateTimeout (controller, operational): the agent did not reach the desired state by
	// its deadline.
	ReasonStateTimeout = "StateTimeout"
)

var releaseReasons = map[string]bool{
	ReasonBootRolledBack:    true,
	ReasonVersionMismatch:   true,
	ReasonMonitoringFailed:  true,
	ReasonRebootNotReady:    true,
	ReasonVersionNotOffered: true,
}

// Classify returns the class of a failure reason: ClassRelease for the release reasons of this
// package, ClassOperational for anything else, including unknown and empty reasons.
func Classify(reason string) Class {
	if releaseReasons[reason] {
		return ClassRelease
	}
	return ClassOperational
}

// FormatFailureReason returns the status.failure_reason value "<reason>: <message>" (or just the
// reason when message is empty).
func FormatFailureReason(reason, message string) string {
	if message == "" {
		return reason
	}
	return reason + ": " + message
}

// ParseFailureReason splits a status.failure_reason into its reason and message. A value without
// a leading reason word (such as upstream's agent never writing one) gives ReasonAgentError and
// the whole value as the message.
func ParseFailureReason(s string) (reason, message string) {
	head, rest, found := strings.Cut(s, ":")
	if head == "" || strings.ContainsAny(head, " \t") {
		return ReasonAgentError, s
	}
	if !found {
		return head, ""
	}
	return head, strings.TrimSpace(rest)
}
