// Package hostapi is the client of the Bottlerocket host API, the HTTP API the host serves on the
// Unix socket /run/api.sock. It reads the running OS and the update status, runs the asynchronous
// update commands (refresh, prepare, activate, deactivate) to completion the way the host expects
// to be polled, reboots the host, and targets a version through the updates.version-lock and
// updates.ignore-waves settings, either committed at once (SetUpdateSettings) or staged in a named
// settings transaction that stays pending until committed (StageUpdateSettings,
// TransactionPending, CommitTransaction).
//
// Errors are typed: errors.Is finds ErrLocked, ErrNotAllowed, ErrNoUpdate, ErrNotStaged,
// ErrUninitialized, ErrUnreachable, ErrMalformed, ErrDeadline and ErrSuperseded; errors.As finds
// *APIError for any unexpected HTTP answer and *CommandFailedError for a command the host ran and
// reported as failed.
//
// The package uses only the standard library, and apimachinery's wait.Backoff for its retries.
// Its test double, a simulated host serving a real
// Unix socket, is package hostapitest.
package hostapi
