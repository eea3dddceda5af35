// Package hostapitest simulates one Bottlerocket host behind a real host API server on a real
// Unix socket, for tests, the demo fleet and `brupop-sim host`. It reproduces the contract of the
// real API: the Idle/Available/Staged/Ready update state machine with its exact status codes and
// plain-text error bodies, one request at a time, the update lock held for a whole command,
// A/B partition sets with boot flags, an update repository and the version-lock setting, the
// status lost on reboot, and reboots that take the socket away and come back on the staged
// version, or on the old one when the boot fails. Faults and the repository change while the
// host runs.
//
// Many hosts may run in one process; Close ends every goroutine a host started.
package hostapitest
