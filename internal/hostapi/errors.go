package hostapi

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. An *APIError unwraps to the sentinel its status code means on its endpoint.
var (
	// ErrLocked means an update command is running: 423 on the status or on an update action.
	ErrLocked = errors.New("hostapi: update lock held")
	// ErrNotAllowed means the update state does not allow the command: 409.
	ErrNotAllowed = errors.New("hostapi: update action not allowed in this update state")
	// ErrNoUpdate means prepare found no chosen update: 404 on prepare.
	ErrNoUpdate = errors.New("hostapi: no chosen update")
	// ErrNotStaged means no image is staged: 404 on activate or deactivate.
	ErrNotStaged = errors.New("hostapi: no update image staged")
	// ErrUninitialized means no update command ran since boot: 404 on the status. It is a state
	// of the host, not a failure; refresh initializes the status.
	ErrUninitialized = errors.New("hostapi: update status uninitialized")
	// ErrUnreachable means the request could not be exchanged with the host API: the socket is
	// missing or refuses connections, or the connection broke or timed out.
	ErrUnreachable = errors.New("hostapi: host API unreachable")
	// ErrMalformed means the host answered a document the client cannot decode.
	ErrMalformed = errors.New("hostapi: malformed answer")
	// ErrDeadline means an update command did not report a result before its deadline.
	ErrDeadline = errors.New("hostapi: command deadline exceeded")
	// ErrSuperseded means another command finished after the one requested, so the requested
	// command's result was overwritten before the client could read it.
	ErrSuperseded = errors.New("hostapi: command result overwritten by another command")
)

// APIError is an answer whose status code the call did not expect. It unwraps to the sentinel
// the code means on that endpoint (ErrLocked, ErrNotAllowed, ErrNoUpdate, ErrNotStaged or
// ErrUninitialized), or to nothing.
type APIError struct {
	// Method and Path are the request's.
	Method, Path string
	// StatusCode is the HTTP status code the host answered.
	StatusCode int
	// Body is the host's plain-text error message.
	Body string
	kind error
}

// Error returns the request, the status code and the host's message.
func (e *APIError) Error() string {
	return fmt.Sprintf("hostapi: %s %s: status %d: %s", e.Method, e.Path, e.StatusCode, strings.TrimSpace(e.Body))
}

// Unwrap returns the sentinel the status code means, or nil.
func (e *APIError) Unwrap() error { return e.kind }

// CommandFailedError is an update command the host ran and reported as failed in
// most_recent_command. The update state did not advance (a failed refresh drops Available to
// Idle).
type CommandFailedError struct {
	// Command is the command that failed.
	Command CommandType
	// Status is the reported cmd_status, usually CommandFailed.
	Status CommandStatus
	// ExitStatus is updog's exit code or killing signal; -1 when the host did not say.
	ExitStatus int
	// Stderr is updog's whole standard error.
	Stderr string
	// State is the update state after the failure.
	State UpdateState
}

// Error returns the command, its exit status and the last line of its stderr.
func (e *CommandFailedError) Error() string {
	msg := fmt.Sprintf("hostapi: %s finished with status %q (exit %d) in state %s", e.Command, e.Status, e.ExitStatus, e.State)
	if last := lastLine(e.Stderr); last != "" {
		msg += ": " + last
	}
	return msg
}

// lastLine returns the last non-empty line of s, where updog puts the reason of a failure.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// commandFailed builds the error for a finished command whose status is not Success.
func commandFailed(st Status) *CommandFailedError {
	r := st.MostRecentCommand
	e := &CommandFailedError{Command: r.Type, Status: r.Status, ExitStatus: -1, State: st.State}
	if r.ExitStatus != nil {
		e.ExitStatus = *r.ExitStatus
	}
	if r.Stderr != nil {
		e.Stderr = *r.Stderr
	}
	return e
}
