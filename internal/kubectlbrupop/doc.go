// Package kubectlbrupop is the `kubectl brupop` plugin: a thin shell that reads the fleet
// (shadows, Nodes, and the FleetPolicy whose status holds the settings the controller applies)
// from the cluster once, hands it to package fleetview, and prints the view; and that pauses
// and resumes the rollout by patching the FleetPolicy the way an operator would with plain
// kubectl. It never reads the controller's Deployment, pods or Lease.
//
// NewCommand builds the cobra root; cmd/kubectl-brupop runs it and tests call it with
// arguments and buffers.
package kubectlbrupop
