// Package e2e holds the end-to-end stories: each runs a simulated cluster (package sim: the real
// control plane, kwok nodes, simulated Bottlerocket hosts and Brupop's real agent, API server
// and controller) in-process, drives a rollout through what users live through (a blocked
// drain, a bad release, crashes, an update window, a node that goes away, the FleetPolicy's
// promotion controls), and checks, continuously while it runs, the invariants users care about: never more nodes in flight than
// allowed, no node unschedulable that is not being updated, no PodDisruptionBudget below its
// required healthy pods, and at the end every node Idle on the expected version and
// schedulable.
//
// The stories build with the tag e2e: `make e2e` runs them.
package e2e
