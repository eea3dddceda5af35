package hostapi_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
)

const (
	getStatus   = "GET /updates/status"
	postPrepare = "POST /actions/prepare-update"
	postReboot  = "POST /actions/reboot"
	t0          = "2024-11-05T17:05:40.118203771Z"
	t1          = "2024-11-05T17:07:02.904417213Z"
)

var locked = answer{423, "Unable to obtain shared lock for reading update status: Resource temporarily unavailable (os error 11)"}

func TestRun(t *testing.T) {
	cases := []struct {
		name      string
		answers   map[string][]answer
		wantState hostapi.UpdateState
		wantErr   error // matched with errors.Is; nil means success
		wantCode  int   // status code of the *APIError, when one is expected
		wantExit  int   // exit status of the *CommandFailedError, when one is expected
	}{{
		name: "waits through 423 and an unchanged timestamp for the new result",
		answers: map[string][]answer{
			getStatus: {{200, statusDoc("Available", "refresh", "Success", t0)}, locked, locked,
				{200, statusDoc("Staged", "prepare", "Success", t1)}},
			postPrepare: {{204, ""}},
		},
		wantState: hostapi.StateStaged,
	}, {
		name: "uninitialized status counts as no previous command",
		answers: map[string][]answer{
			getStatus:   {{404, "Update status is uninitialized, refresh-updates to initialize it"}, {200, statusDoc("Staged", "prepare", "Success", t1)}},
			postPrepare: {{204, ""}},
		},
		wantState: hostapi.StateStaged,
	}, {
		name: "retries a locked post",
		answers: map[string][]answer{
			getStatus:   {{200, statusDoc("Available", "refresh", "Success", t0)}, {200, statusDoc("Available", "refresh", "Success", t0)}, {200, statusDoc("Available", "refresh", "Success", t0)}, {200, statusDoc("Staged", "prepare", "Success", t1)}},
			postPrepare: {{423, "Update lock held"}, {423, "Update lock held"}, {204, ""}},
		},
		wantState: hostapi.StateStaged,
	}, {
		name: "a failed command is a CommandFailedError and the state stays",
		answers: map[string][]answer{
			getStatus:   {{200, statusDoc("Available", "refresh", "Success", t0)}, {200, statusDoc("Available", "prepare", "Failed", t1)}},
			postPrepare: {{204, ""}},
		},
		wantState: hostapi.StateAvailable,
		wantExit:  1,
	}, {
		name: "409 re-reads the state and is not retried",
		answers: map[string][]answer{
			getStatus:   {{200, statusDoc("Ready", "activate", "Success", t0)}},
			postPrepare: {{409, "Update action not allowed according to update state"}, {204, ""}},
		},
		wantState: hostapi.StateReady,
		wantErr:   hostapi.ErrNotAllowed,
		wantCode:  409,
	}, {
		name: "404 on prepare means no chosen update",
		answers: map[string][]answer{
			getStatus:   {{200, statusDoc("Staged", "refresh", "Success", t0)}},
			postPrepare: {{404, "Previously chosen Update no longer exists"}},
		},
		wantState: hostapi.StateStaged,
		wantErr:   hostapi.ErrNoUpdate,
		wantCode:  404,
	}, {
		name: "status lost while waiting means the host rebooted",
		answers: map[string][]answer{
			getStatus:   {{200, statusDoc("Available", "refresh", "Success", t0)}, locked, {404, "Update status is uninitialized, refresh-updates to initialize it"}},
			postPrepare: {{204, ""}},
		},
		wantErr: hostapi.ErrUninitialized,
	}, {
		name: "another command finishing first supersedes the result",
		answers: map[string][]answer{
			getStatus:   {{200, statusDoc("Available", "refresh", "Success", t0)}, {200, statusDoc("Available", "refresh", "Success", t1)}},
			postPrepare: {{204, ""}},
		},
		wantState: hostapi.StateAvailable,
		wantErr:   hostapi.ErrSuperseded,
	}, {
		name: "too many failed requests in a row end the command",
		answers: map[string][]answer{
			getStatus:   {{200, statusDoc("Available", "refresh", "Success", t0)}, {500, "Update dispatcher failed"}},
			postPrepare: {{204, ""}},
		},
		wantCode: 500,
	}, {
		name: "a lock that is never released ends at the deadline",
		answers: map[string][]answer{
			getStatus:   {{200, statusDoc("Available", "refresh", "Success", t0)}, locked},
			postPrepare: {{204, ""}},
		},
		wantErr: hostapi.ErrDeadline,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := &jumpClock{now: time.Unix(1e9, 0)}
			c := fakeHost(t, tc.answers, hostapi.Options{Clock: clock, Deadlines: hostapi.Deadlines{Prepare: 100 * time.Millisecond}})
			st, err := c.Prepare(context.Background())
			checkRunError(t, err, tc.wantErr, tc.wantCode, tc.wantExit)
			if st.State != tc.wantState {
				t.Errorf("state = %q, want %q", st.State, tc.wantState)
			}
		})
	}
}

func checkRunError(t *testing.T, err, wantErr error, wantCode, wantExit int) {
	t.Helper()
	if wantErr == nil && wantCode == 0 && wantExit == 0 {
		if err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatal("Prepare succeeded, want an error")
	}
	if wantErr != nil && !errors.Is(err, wantErr) {
		t.Errorf("error %v is not %v", err, wantErr)
	}
	var apiErr *hostapi.APIError
	if wantCode != 0 && (!errors.As(err, &apiErr) || apiErr.StatusCode != wantCode) {
		t.Errorf("error %v: want an APIError with status %d", err, wantCode)
	}
	var failed *hostapi.CommandFailedError
	if wantExit != 0 {
		if !errors.As(err, &failed) {
			t.Fatalf("error %v: want a CommandFailedError", err)
		}
		if failed.ExitStatus != wantExit || !strings.Contains(failed.Stderr, "Metadata error: boom") {
			t.Errorf("CommandFailedError = %+v, want exit %d and updog's stderr", failed, wantExit)
		}
	}
}

func TestDeadlineUsesTheClock(t *testing.T) {
	clock := &jumpClock{now: time.Unix(1e9, 0)}
	start := clock.Now()
	c := fakeHost(t, map[string][]answer{
		getStatus:   {{200, statusDoc("Available", "refresh", "Success", t0)}, locked},
		postPrepare: {{204, ""}},
	}, hostapi.Options{Clock: clock, PollInterval: time.Minute, Deadlines: hostapi.Deadlines{Prepare: 20 * time.Minute}})
	_, err := c.Prepare(context.Background())
	if !errors.Is(err, hostapi.ErrDeadline) {
		t.Fatalf("Prepare: %v, want ErrDeadline", err)
	}
	if got := clock.Now().Sub(start); got != 20*time.Minute {
		t.Errorf("gave up after %s of clock time, want the 20m deadline", got)
	}
}

func TestStatusErrors(t *testing.T) {
	cases := []struct {
		name    string
		answer  answer
		wantErr error
	}{
		{"423 is ErrLocked", locked, hostapi.ErrLocked},
		{"404 is ErrUninitialized", answer{404, "Update status is uninitialized, refresh-updates to initialize it"}, hostapi.ErrUninitialized},
		{"a body that is not JSON is ErrMalformed", answer{200, "<html>"}, hostapi.ErrMalformed},
		{"null is ErrMalformed", answer{200, "null"}, hostapi.ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeHost(t, map[string][]answer{getStatus: {tc.answer}}, hostapi.Options{})
			_, err := c.Status(context.Background())
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Status: %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestServerErrorKeepsTheHostMessage(t *testing.T) {
	c := fakeHost(t, map[string][]answer{getStatus: {{500, "Update dispatcher failed"}}}, hostapi.Options{})
	_, err := c.Status(context.Background())
	var apiErr *hostapi.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 500 || apiErr.Body != "Update dispatcher failed" {
		t.Fatalf("Status: %v, want an APIError 500 with the host's message", err)
	}
	for _, sentinel := range []error{hostapi.ErrLocked, hostapi.ErrNotAllowed, hostapi.ErrUninitialized} {
		if errors.Is(err, sentinel) {
			t.Errorf("500 matches %v", sentinel)
		}
	}
}

func TestRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	c := serve(t, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}), hostapi.Options{RequestTimeout: 50 * time.Millisecond})
	_, err := c.OS(context.Background())
	if !errors.Is(err, hostapi.ErrUnreachable) {
		t.Fatalf("OS on a hung host: %v, want ErrUnreachable", err)
	}
}

func TestReboot(t *testing.T) {
	cases := []struct {
		name    string
		handler http.HandlerFunc
		wantErr bool
	}{{
		name:    "204 means rebooting",
		handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) },
	}, {
		name:    "a connection dropped after the request means rebooting",
		handler: func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) },
	}, {
		name: "500 from systemd is an error",
		handler: func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "Failed to reboot, exit code: 1, stderr: inhibited", 500)
		},
		wantErr: true,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := serve(t, tc.handler, hostapi.Options{})
			if err := c.Reboot(context.Background()); (err != nil) != tc.wantErr {
				t.Errorf("Reboot: %v, want error %t", err, tc.wantErr)
			}
		})
	}
}

func TestRebootWithoutSocketIsAnError(t *testing.T) {
	c := hostapi.New(hostapi.Options{SocketPath: socketPath(t)})
	err := c.Reboot(context.Background())
	var opErr *net.OpError
	if !errors.Is(err, hostapi.ErrUnreachable) || !errors.As(err, &opErr) {
		t.Fatalf("Reboot with no socket: %v, want ErrUnreachable wrapping the dial error", err)
	}
}

func TestTransactionPendingDocuments(t *testing.T) {
	cases := []struct {
		name    string
		answer  answer
		want    bool
		wantErr error
	}{
		{"empty", answer{200, `{}`}, false, nil},
		{"pending", answer{200, `{"updates":{"version-lock":"v1.20.0"}}`}, true, nil},
		{"empty under settings", answer{200, `{"settings":{}}`}, false, nil},
		{"pending under settings", answer{200, `{"settings":{"updates":{"ignore-waves":true}}}`}, true, nil},
		{"not JSON", answer{200, `<html>`}, false, hostapi.ErrMalformed},
		{"locked", locked, false, hostapi.ErrLocked},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeHost(t, map[string][]answer{"GET /tx": {tc.answer}}, hostapi.Options{})
			got, err := c.TransactionPending(context.Background(), "brupop-x")
			if got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("TransactionPending = %v, %v; want %v, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestCommitTransactionErrors(t *testing.T) {
	cases := []struct {
		name   string
		answer answer
		ok     bool
	}{
		{"committed", answer{200, `["settings.updates.version-lock"]`}, true},
		{"nothing pending", answer{422, "Tried to commit with no pending changes"}, true},
		{"server error", answer{500, "datastore failed"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeHost(t, map[string][]answer{"POST /tx/commit_and_apply": {tc.answer}}, hostapi.Options{})
			if err := c.CommitTransaction(context.Background(), "brupop-x"); (err == nil) != tc.ok {
				t.Errorf("CommitTransaction = %v, want success %v", err, tc.ok)
			}
		})
	}
	if err := fakeHost(t, nil, hostapi.Options{}).CommitTransaction(context.Background(), ""); err == nil {
		t.Error("CommitTransaction of the unnamed transaction succeeded; it must name one")
	}
}
