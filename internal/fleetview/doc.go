// Package fleetview explains a Brupop fleet to people: the table and summary of
// `kubectl brupop status` and the answer of `kubectl brupop why NODE`.
//
// Every view is a pure function of an Input (the shadows, the Nodes, the FleetPolicy and the
// time) read once by the caller. The views ask rollout.Decide the same question the controller
// asks on its next pass, with the settings it published in the FleetPolicy's status.applied
// (rollout.AppliedSettings), its node from status.controllerNode and the same ledger
// (rollout.LedgerFrom), so what they say a node waits for is what the controller decides. They
// never resolve the spec against an environment: without published settings they say so and
// decide nothing.
// Rendering to text is separate from the views, which also marshal to JSON for scripts.
package fleetview
