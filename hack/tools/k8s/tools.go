// Package k8s pins the Kubernetes control-plane commands that hack/tools/install.sh builds; its
// go.mod maps every staging repository of k8s.io/kubernetes to the published version.
package k8s
