// Package metrics holds the controller's Prometheus collectors: upstream Brupop's gauges
// brupop_hosts_state{state} and brupop_hosts_version{bottlerocket_version}, with the same names
// and labels, plus what upstream lacks: state transitions, failures by reason, time spent in
// each state, halted rollouts, nodes waiting and why, and decision passes.
//
// Gauges with a label are set for every label value ever seen: a value that disappears from the
// fleet is set to 0, not removed, as upstream does since its fix #511.
package metrics
