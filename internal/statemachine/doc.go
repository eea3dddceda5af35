// Package statemachine decides the next spec of one BottlerocketShadow: upstream Brupop's
// determine_next_node_spec (docs/upstream.md, "Next state") plus what upstream lacks: a deadline
// for every state, a real monitoring step, and failures classified as the release's fault or an
// operational one.
//
// Next is a pure function of the shadow, facts about its Node, a Config and the time. It never
// decides whether a node may start an update now (window, pause, halt, concurrency): it reports
// a Decision with Start set, and package rollout gates it.
//
// The agent reports its failures in status (current_state ErrorReset, crash_count+1,
// state_transition_failure_timestamp, failure_reason). failure_reason is
// "<Reason>: <message>" with a Reason constant of this package (FormatFailureReason), so both
// sides agree on which failures count against a release. Failures the controller detects itself
// (a state deadline, failed monitoring) cannot go into status, which the agent owns; they are
// remembered on the shadow in the RecordAnnotation annotation, and count towards the backoff
// like crash_count does.
package statemachine
