// Package incluster reads what a process running in a pod learns from the ServiceAccount
// volume Kubernetes mounts into it.
package incluster
