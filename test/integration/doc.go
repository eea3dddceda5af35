// Package integration holds the tests that run against a real control plane (etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler built by `make tools`). One control
// plane serves the whole package; each test works in its own namespace.
package integration
