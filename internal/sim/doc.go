// Package sim runs a simulated Brupop cluster in one process: the real control plane (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, from package controlplane), kwok
// simulating the Nodes and their pods, one simulated Bottlerocket host (package hostapitest) per
// Node, and Brupop's three components (one agent per node, the API server, the controller), each
// authenticating as its own ServiceAccount with tokens from the TokenRequest API and talking over
// TLS with a CA the simulation creates.
//
// Start brings a cluster up and returns once every Node is Ready, its workloads Running and its
// hosts answering; Cluster.Publish releases a new version to every host; Cluster.Rollout
// observes the rollout with an Observer, which checks the invariants users care about
// continuously, and returns a Summary. The end-to-end stories drive the cluster themselves
// with the hooks of control.go (restart a component, delete a node, publish a fix, move the
// controller's clock). A reboot
// of a simulated host stops that node's agent, marks the Node NotReady (kwok's node-not-ready
// stage) for the reboot time, boots the host, marks the Node Ready and starts a new agent, as a
// real node would.
//
// The demo (`brupop-sim cluster`, `make demo`) and the end-to-end stories use this package;
// production code never imports it.
package sim
