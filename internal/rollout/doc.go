// Package rollout makes one fleet-wide decision pass: given every shadow of the fleet, facts
// about their Nodes, the policy and the time, Decide returns the Plan of spec changes to write
// and why each other node waits.
//
// The rules: nodes in flight always progress (package statemachine decides how), even outside the
// window, while paused or when their version is halted; new nodes start only inside the window,
// when not paused, when their target version is not halted, and while fewer than the allowed
// number are in flight, filling every free slot in one pass in upstream's order (lowest
// crash_count first, the controller's own node last) with ties broken by name. Release failures
// count against the failure budget of their target version; when it is spent the version halts
// until an operator resumes it (VersionLedger.ResumedAt). Decide is pure: the caller reads the
// world, calls it once, writes the Plan, and requeues after Plan.RequeueAfter.
package rollout
