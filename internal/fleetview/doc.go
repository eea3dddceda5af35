// Package fleetview explains a Brupop fleet to people: the table and summary of
// `kubectl brupop status` and the answer of `kubectl brupop why NODE`.
//
// Every view is a pure function of an Input (the shadows, the Nodes, the FleetPolicy, the
// controller's configuration and the time) read once by the caller. The views ask
// rollout.Decide the same question the controller asks on its next pass, with the same
// settings (rollout.SettingsFrom over the controller's environment) and the same ledger
// (rollout.LedgerFrom), so what they say a node waits for is what the controller decides.
// Rendering to text is separate from the views, which also marshal to JSON for scripts.
package fleetview
