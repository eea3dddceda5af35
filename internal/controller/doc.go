// Package controller is Brupop's fleet controller: one reconciler that, on any change of a
// shadow, a Node, the FleetPolicy or (with a monitoring pod selector) a selected Pod, reads the
// world once from the informer cache, asks rollout.Decide which shadows move, writes only the
// shadows' spec (merge patches with an optimistic lock), records the outcome in the
// FleetPolicy's status, emits Events, and requeues for the next deadline or window opening.
//
// Every event maps to the same reconcile key, so two workers never both decide that "one more
// node may go". The reconciler remembers the generation of every shadow it wrote and does not
// decide again until the cache has seen those writes, so a stale cache never starts more nodes
// than allowed. Release failures are appended to the FleetPolicy's version ledger only after
// the spec that records them was written. When the FleetPolicy is missing the reconciler creates
// it with an empty spec (the environment's defaults), so that the ledger survives a restart or a
// failover; an operator resumes a halted version with the
// v2.ResumeAnnotation annotation, which the reconciler turns into status.versions[].resumedAt and
// removes.
//
// Options holds the process configuration (upstream's environment variables and flags) and
// NewManager builds the controller-runtime manager: caches, leader election on a Lease, health
// and readiness probes, and the metrics server.
package controller
