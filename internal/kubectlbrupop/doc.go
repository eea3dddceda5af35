// Package kubectlbrupop is the `kubectl brupop` plugin: a thin shell that reads the fleet
// (shadows, Nodes, the FleetPolicy and the controller's configuration) from the cluster once,
// hands it to package fleetview, and prints the view; and that pauses and resumes the rollout by
// patching the FleetPolicy the way an operator would with plain kubectl.
//
// NewCommand builds the cobra root; cmd/kubectl-brupop runs it and tests call it with
// arguments and buffers.
package kubectlbrupop
