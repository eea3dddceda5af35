// Package v2 holds the stored version of the BottlerocketShadow API (group
// brupop.bottlerocket.aws), exactly as upstream Brupop v1.4.0 defines it. It is the conversion hub:
// package v1 converts to and from it. It also holds FleetPolicy, which upstream does not have: how
// the controller rolls updates out, and the status of halted versions.
//
// +kubebuilder:object:generate=true
// +groupName=brupop.bottlerocket.aws
package v2
