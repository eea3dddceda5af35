// Package v1 holds the served, not stored, first version of the BottlerocketShadow API. It
// converts to and from the hub, package v2, with upstream's state mappings.
//
// +kubebuilder:object:generate=true
// +groupName=brupop.bottlerocket.aws
package v1
