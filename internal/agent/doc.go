// Package agent is the node agent of Brupop: it turns its own node's BottlerocketShadow spec into
// host actions and reports what it reached in the shadow's status.
//
// One pass reads the world (the shadow and Node from its Watch, in a cluster WatchCluster's
// field-selected watch cache; the host's running version and update status), asks Decide, a
// pure function, for the one next step, runs that step with the host API (package hostapi) or
// the Brupop API server (package agentapi), and repeats until Decide has nothing left to do;
// then it reports the status, computed by pure functions, when it changed. Passes run when the shadow or the Node change, after a failed pass
// with jittered backoff, and on a slow jittered resync.
//
// The agent keeps no state of its own: everything it decides comes from the shadow and the host,
// so an agent killed at any moment is replaced by one that continues where it stopped. The one
// piece of host state it creates, a pinned updates.version-lock, is undone by a pending named
// host transaction that the next agent commits before its first pass.
//
// Failures of a transition are reported as upstream does (current_state ErrorReset, crash_count
// + 1, state_transition_failure_timestamp) plus failure_reason "<Reason>: <message>"
// (statemachine.FormatFailureReason), with the reasons of package statemachine, which the
// controller classifies.
package agent
