// Package controlplane starts and stops a real Kubernetes control plane for tests and the demo:
// etcd and kube-apiserver (through controller-runtime's envtest, with RBAC on and service-account
// token signing set up so the TokenRequest and TokenReview APIs work) and, when asked,
// kube-controller-manager and kube-scheduler, all built by `make tools`. Everything listens on
// random loopback ports and lives in a temporary directory that Stop removes.
//
// Production code never imports this package.
package controlplane
