package agent

// Failure reasons the agent writes at the start of status.failure_reason, "<Reason>: <message>".
// They are the agent's copy of the reason constants of package statemachine, which classifies
// BootRolledBack and VersionMismatch as the release's fault and the others as operational.
const (
	// ReasonBootRolledBack: after the reboot the host runs its previous version because the new
	// one failed to boot.
	ReasonBootRolledBack = "BootRolledBack"
	// ReasonVersionMismatch: the host runs a version other than spec.version where it should run
	// spec.version.
	ReasonVersionMismatch = "VersionMismatch"
	// ReasonDrainTimeout: the drain did not finish by its deadline.
	ReasonDrainTimeout = "DrainTimeout"
	// ReasonHostAPIError: a host-API action (refresh, prepare, activate, deactivate, reboot)
	// failed, or the host is in no state to perform the desired transition.
	ReasonHostAPIError = "HostAPIError"
	// ReasonAgentError: any other failure, such as the API server refusing a cordon.
	ReasonAgentError = "AgentError"
)

// formatFailureReason returns the failure_reason value for reason and message.
func formatFailureReason(reason, message string) string {
	if message == "" {
		return reason
	}
	return reason + ": " + message
}
