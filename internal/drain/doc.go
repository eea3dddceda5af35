// Package drain takes a node out of service for an update and puts it back: cordon, exclusion
// from external load balancers, eviction of its pods through the Eviction API (so
// PodDisruptionBudgets are respected) in bounded rounds within a deadline, and uncordon.
//
// It remembers on the Node, in annotations, what Brupop itself changed, and undoes only that: a
// node an administrator cordoned, or labelled out of load balancers, stays so. The cordon time
// is an annotation too, so that a drain's deadline is the same whoever asks; a round keeps
// nothing in memory once it returned.
package drain
