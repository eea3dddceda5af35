package hostapi_test

// The host-API contract, written once: every TestContract* runs against a fresh simulated host,
// or against the real Bottlerocket host whose socket BRUPOP_HOST_API_SOCKET names. On a real host
// the steps that need the simulator's controls (faults, the repository) skip, and the steps that
// reboot skip unless BRUPOP_HOST_API_ALLOW_REBOOT=1.

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi/hostapitest"
)

const (
	envSocket      = "BRUPOP_HOST_API_SOCKET"
	envAllowReboot = "BRUPOP_HOST_API_ALLOW_REBOOT"
)

// target is the host one contract test runs against.
type target struct {
	t      *testing.T
	socket string
	c      *hostapi.Client
	sim    *hostapitest.Host // nil on a real host
	real   bool

	mu     sync.Mutex
	events []hostapitest.RebootEvent
}

// newTarget starts a simulated host with cfg (millisecond command and reboot times unless cfg
// sets them), or connects to the real host. Simulated targets run in parallel.
func newTarget(t *testing.T, cfg hostapitest.Config) *target {
	t.Helper()
	if path := os.Getenv(envSocket); path != "" {
		opts := hostapi.Options{SocketPath: path, PollInterval: 500 * time.Millisecond, RetryMax: 10 * time.Second}
		return &target{t: t, socket: path, c: hostapi.New(opts), real: true}
	}
	t.Parallel()
	tg := &target{t: t, socket: socketPath(t)}
	if cfg.CommandTime == 0 {
		cfg.CommandTime = 20 * time.Millisecond
	}
	if cfg.RebootTime == 0 {
		cfg.RebootTime = 30 * time.Millisecond
	}
	cfg.OnReboot = func(ev hostapitest.RebootEvent) {
		tg.mu.Lock()
		defer tg.mu.Unlock()
		tg.events = append(tg.events, ev)
	}
	h, err := hostapitest.Start(tg.socket, cfg)
	if err != nil {
		t.Fatalf("start simulated host: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("close simulated host: %v", err)
		}
	})
	tg.sim = h
	tg.c = hostapi.New(fastOptions(hostapi.Options{SocketPath: tg.socket}))
	return tg
}

// needSim skips on a real host: the step needs the simulator's controls.
func (tg *target) needSim(why string) {
	tg.t.Helper()
	if tg.sim == nil {
		tg.t.Skip("needs the simulator: " + why)
	}
}

// needReboot skips on a real host unless rebooting it was allowed.
func (tg *target) needReboot() {
	tg.t.Helper()
	if tg.real && os.Getenv(envAllowReboot) != "1" {
		tg.t.Skip("reboots the host: set " + envAllowReboot + "=1 to allow")
	}
}

func (tg *target) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	tg.t.Cleanup(cancel)
	return ctx
}

// raw sends one request and returns the status code and body, for checking the wire format.
func (tg *target) raw(method, path, body string) (int, string) {
	tg.t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", tg.socket)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequest(method, "http://localhost"+path, strings.NewReader(body))
	if err != nil {
		tg.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		tg.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// expect checks a raw answer.
func (tg *target) expect(method, path string, wantCode int, wantBody string) {
	tg.t.Helper()
	code, body := tg.raw(method, path, "")
	if code != wantCode || (wantBody != "" && body != wantBody) {
		tg.t.Errorf("%s %s = %d %q, want %d %q", method, path, code, body, wantCode, wantBody)
	}
}

// status reads the status, failing the test on an error.
func (tg *target) status() hostapi.Status {
	tg.t.Helper()
	st, err := tg.c.Status(tg.ctx())
	if err != nil {
		tg.t.Fatalf("Status: %v", err)
	}
	return st
}

// run runs one command and fails the test unless it succeeds.
func (tg *target) run(cmd hostapi.CommandType) hostapi.Status {
	tg.t.Helper()
	st, err := tg.c.Run(tg.ctx(), cmd)
	if err != nil {
		tg.t.Fatalf("%s: %v", cmd, err)
	}
	return st
}

// osVersion returns the running version.
func (tg *target) osVersion() string {
	tg.t.Helper()
	info, err := tg.c.OS(tg.ctx())
	if err != nil {
		tg.t.Fatalf("OS: %v", err)
	}
	return info.VersionID
}

// waitBooted polls GET /os, through the reboot, until the host answers again, and returns the
// version it runs.
func (tg *target) waitBooted() string {
	tg.t.Helper()
	limit := 5 * time.Second
	if tg.real {
		limit = 15 * time.Minute
	}
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		info, err := tg.c.OS(ctx)
		cancel()
		if err == nil && (tg.sim == nil || !tg.sim.Rebooting()) {
			return info.VersionID
		}
		if time.Now().After(deadline) {
			tg.t.Fatalf("host not back after %s: %v", limit, err)
		}
		<-time.After(5 * time.Millisecond)
	}
}

// updateToReady refreshes, prepares and activates, checking each step, and returns the version
// chosen. On a real host it skips when no update is offered.
func (tg *target) updateToReady() string {
	tg.t.Helper()
	st := tg.run(hostapi.CommandRefresh)
	want := st.ChosenVersion()
	if want == "" {
		tg.t.Skipf("no update offered (available %v)", st.AvailableUpdates)
	}
	st = tg.run(hostapi.CommandPrepare)
	if st.State != hostapi.StateStaged || st.StagedVersion() != want {
		tg.t.Fatalf("after prepare: state %s staged %q, want Staged %q", st.State, st.StagedVersion(), want)
	}
	if st.StagingPartition.NextToBoot || !st.ActivePartition.NextToBoot {
		tg.t.Errorf("after prepare the active set must still boot next: %+v %+v", st.ActivePartition, st.StagingPartition)
	}
	st = tg.run(hostapi.CommandActivate)
	if st.State != hostapi.StateReady || !st.StagingPartition.NextToBoot || st.ActivePartition.NextToBoot {
		tg.t.Fatalf("after activate: state %s, staging %+v, active %+v; want Ready with the staged set next", st.State, st.StagingPartition, st.ActivePartition)
	}
	return want
}

// rebootEvents returns the OnReboot events seen so far.
func (tg *target) rebootEvents() []hostapitest.RebootEvent {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return slices.Clone(tg.events)
}

const (
	bodyUninitialized = "Update status is uninitialized, refresh-updates to initialize it"
	bodyNotAllowed    = "Update action not allowed according to update state"
	bodyLockHeld      = "Update lock held"
	bodyStatusLocked  = "Unable to obtain shared lock for reading update status: Resource temporarily unavailable (os error 11)"
)

func TestContractUninitializedUntilFirstCommand(t *testing.T) {
	tg := newTarget(t, hostapitest.Config{Version: "1.20.0"})
	if code, _ := tg.raw("GET", "/updates/status", ""); code != http.StatusNotFound {
		t.Skipf("the status exists already (%d): needs a freshly booted host", code)
	}
	tg.expect("GET", "/updates/status", 404, bodyUninitialized)
	version := tg.osVersion()
	// A rejected command still initializes the status, and leaves no command result.
	tg.expect("POST", "/actions/prepare-update", 409, bodyNotAllowed)
	st := tg.status()
	if st.State != hostapi.StateIdle || len(st.AvailableUpdates) != 0 || st.ChosenUpdate != nil || st.MostRecentCommand != nil {
		t.Errorf("freshly initialized status = %+v, want Idle with nothing available and no command", st)
	}
	if st.ActivePartition == nil || st.ActivePartition.Image.Version != version || !st.ActivePartition.NextToBoot {
		t.Errorf("active partition = %+v, want %s booting next", st.ActivePartition, version)
	}
}

func TestContractRefresh(t *testing.T) {
	tg := newTarget(t, hostapitest.Config{Version: "1.20.0", Available: []string{"1.19.0", "1.21.0", "1.20.0"}})
	first := tg.run(hostapi.CommandRefresh)
	st := tg.run(hostapi.CommandRefresh)
	if r := st.MostRecentCommand; r.Type != hostapi.CommandRefresh || r.Status != hostapi.CommandSuccess {
		t.Errorf("most recent command = %+v, want a successful refresh", r)
	}
	if _, err := time.Parse(time.RFC3339Nano, st.LastTimestamp()); err != nil || st.LastTimestamp() == first.LastTimestamp() {
		t.Errorf("timestamps %q then %q: want fresh RFC 3339 ones", first.LastTimestamp(), st.LastTimestamp())
	}
	if !slices.IsSortedFunc(st.AvailableUpdates, func(a, b string) int { return compareVersions(b, a) }) {
		t.Errorf("available_updates %v not sorted newest first", st.AvailableUpdates)
	}
	if got, want := st.ActivePartition.Image.Version, tg.osVersion(); got != want {
		t.Errorf("active partition %s, /os %s", got, want)
	}
	if (st.State == hostapi.StateAvailable) != (st.ChosenUpdate != nil) && st.State != hostapi.StateStaged && st.State != hostapi.StateReady {
		t.Errorf("state %s with chosen update %+v", st.State, st.ChosenUpdate)
	}
	if tg.sim != nil {
		want := []string{"1.21.0", "1.20.0", "1.19.0"}
		if st.State != hostapi.StateAvailable || st.ChosenVersion() != "1.21.0" || !slices.Equal(st.AvailableUpdates, want) {
			t.Errorf("got %s choosing %q of %v, want Available choosing 1.21.0 of %v", st.State, st.ChosenVersion(), st.AvailableUpdates, want)
		}
	}
}

func TestContractRefusedCommands(t *testing.T) {
	tg := newTarget(t, hostapitest.Config{Version: "1.20.0"})
	if st := tg.run(hostapi.CommandRefresh); st.State != hostapi.StateIdle {
		t.Skipf("state %s after refresh: needs a host with no update", st.State)
	}
	before := tg.status().LastTimestamp()
	for _, path := range []string{"/actions/prepare-update", "/actions/activate-update", "/actions/deactivate-update"} {
		tg.expect("POST", path, 409, bodyNotAllowed)
	}
	_, err := tg.c.Prepare(tg.ctx())
	var apiErr *hostapi.APIError
	if !errors.Is(err, hostapi.ErrNotAllowed) || !errors.As(err, &apiErr) || apiErr.Body != bodyNotAllowed {
		t.Errorf("Prepare in Idle: %v, want ErrNotAllowed with the host's message", err)
	}
	if st := tg.status(); st.State != hostapi.StateIdle || st.LastTimestamp() != before {
		t.Errorf("after refused commands: %s, last command at %s; want Idle, untouched %s", st.State, st.LastTimestamp(), before)
	}
}

func TestContractLockedWhileCommandRuns(t *testing.T) {
	tg := newTarget(t, hostapitest.Config{Version: "1.20.0", Available: []string{"1.21.0"},
		CommandTimes: map[hostapi.CommandType]time.Duration{hostapi.CommandPrepare: 300 * time.Millisecond}})
	if st := tg.run(hostapi.CommandRefresh); st.State != hostapi.StateAvailable {
		t.Skipf("state %s after refresh: needs an update to prepare", st.State)
	}
	tg.expect("POST", "/actions/prepare-update", 204, "")
	tg.expect("GET", "/updates/status", 423, bodyStatusLocked)
	tg.expect("POST", "/actions/refresh-updates", 423, bodyLockHeld)
	tg.expect("POST", "/actions/prepare-update", 423, bodyLockHeld)
	tg.expect("GET", "/os", 200, "")
	deadline := time.Now().Add(30 * time.Minute)
	for {
		code, _ := tg.raw("GET", "/updates/status", "")
		if code == 200 {
			break
		}
		if code != 423 || time.Now().After(deadline) {
			t.Fatalf("status while prepare runs: %d, want 423 then 200", code)
		}
		<-time.After(5 * time.Millisecond)
	}
	if st := tg.status(); st.State != hostapi.StateStaged || st.MostRecentCommand.Type != hostapi.CommandPrepare {
		t.Errorf("after prepare: %s after %s, want Staged after prepare", st.State, st.MostRecentCommand.Type)
	}
}

func TestContractUpdateAndReboot(t *testing.T) {
	tg := newTarget(t, hostapitest.Config{Version: "1.20.0", Available: []string{"1.20.0", "1.21.0"}})
	tg.needReboot()
	from := tg.osVersion()
	want := tg.updateToReady()
	if err := tg.c.Reboot(tg.ctx()); err != nil {
		t.Fatalf("Reboot: %v", err)
	}
	if got := tg.waitBooted(); got != want {
		t.Fatalf("booted %s, want %s", got, want)
	}
	if _, err := tg.c.Status(tg.ctx()); !errors.Is(err, hostapi.ErrUninitialized) {
		t.Errorf("status after boot: %v, want uninitialized", err)
	}
	st := tg.run(hostapi.CommandRefresh)
	if st.ActivePartition.Image.Version != want || st.StagingPartition != nil {
		t.Errorf("after boot: active %+v staging %+v, want %s active and nothing staged", st.ActivePartition.Image, st.StagingPartition, want)
	}
	if tg.sim != nil {
		wantEvents := []hostapitest.RebootEvent{{Phase: hostapitest.RebootStarted, Version: from}, {Phase: hostapitest.RebootBooted, Version: want}}
		if got := tg.rebootEvents(); !slices.Equal(got, wantEvents) {
			t.Errorf("reboot events %+v, want %+v", got, wantEvents)
		}
		if st.State != hostapi.StateIdle {
			t.Errorf("state after boot and refresh: %s, want Idle", st.State)
		}
	}
}

func TestContractDeactivate(t *testing.T) {
	tg := newTarget(t, hostapitest.Config{Version: "1.20.0", Available: []string{"1.21.0"}})
	from := tg.osVersion()
	tg.updateToReady()
	st := tg.run(hostapi.CommandDeactivate)
	if st.State != hostapi.StateStaged || st.StagingPartition.NextToBoot || !st.ActivePartition.NextToBoot {
		t.Fatalf("after deactivate: %s, staging %+v, active %+v; want Staged with the active set next", st.State, st.StagingPartition, st.ActivePartition)
	}
	if _, err := tg.c.Deactivate(tg.ctx()); !errors.Is(err, hostapi.ErrNotAllowed) {
		t.Errorf("second deactivate: %v, want ErrNotAllowed", err)
	}
	// The staged image stays valid: activate works again.
	if st := tg.run(hostapi.CommandActivate); st.State != hostapi.StateReady {
		t.Errorf("activate after deactivate: %s, want Ready", st.State)
	}
	tg.run(hostapi.CommandDeactivate)
	if tg.sim == nil {
		return
	}
	tg.sim.Reboot()
	if got := tg.waitBooted(); got != from {
		t.Errorf("deactivated host booted %s, want %s", got, from)
	}
}

func TestContractVersionLockToOlder(t *testing.T) {
	tg := newTarget(t, hostapitest.Config{Version: "1.21.0", Available: []string{"1.20.0", "1.21.0"}})
	tg.needReboot()
	ctx := tg.ctx()
	orig, err := tg.c.UpdateSettings(ctx)
	if err != nil {
		t.Fatalf("UpdateSettings: %v", err)
	}
	if tg.sim != nil && orig != (hostapi.UpdateSettings{VersionLock: "latest"}) {
		t.Errorf("default settings %+v, want latest without ignoring waves", orig)
	}
	current := tg.osVersion()
	st := tg.run(hostapi.CommandRefresh)
	older := ""
	for _, v := range st.AvailableUpdates {
		if compareVersions(v, current) < 0 {
			older = v
			break
		}
	}
	if older == "" {
		t.Skipf("no version older than %s in %v", current, st.AvailableUpdates)
	}
	t.Cleanup(func() {
		if err := tg.c.SetUpdateSettings(context.Background(), orig); err != nil {
			t.Errorf("restore settings: %v", err)
		}
	})
	lock := hostapi.UpdateSettings{VersionLock: "v" + older, IgnoreWaves: true}
	if err := tg.c.SetUpdateSettings(ctx, lock); err != nil {
		t.Fatalf("SetUpdateSettings: %v", err)
	}
	if got, err := tg.c.UpdateSettings(ctx); err != nil || got != lock {
		t.Errorf("settings read back %+v, %v; want %+v", got, err, lock)
	}
	if got := tg.updateToReady(); got != older {
		t.Fatalf("chose %s under version-lock %s", got, lock.VersionLock)
	}
	if err := tg.c.Reboot(ctx); err != nil {
		t.Fatalf("Reboot: %v", err)
	}
	if got := tg.waitBooted(); got != older {
		t.Errorf("booted %s, want %s", got, older)
	}
}

func TestContractSettingsTransaction(t *testing.T) {
	tg := newTarget(t, hostapitest.Config{Version: "1.20.0"})
	tg.expect("POST", "/tx/commit_and_apply?tx=brupop-contract-empty", 422, "Tried to commit with no pending changes")
	if code, _ := tg.raw("PATCH", "/settings?tx=brupop-contract-bad", `{"updates":{"version-lock":"not a version"}}`); code != 400 {
		t.Errorf("PATCH of an invalid version-lock: %d, want 400", code)
	}
	tg.raw("DELETE", "/tx?tx=brupop-contract-bad", "")
	err := tg.c.SetUpdateSettings(tg.ctx(), hostapi.UpdateSettings{VersionLock: "one-point-twenty"})
	var apiErr *hostapi.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
		t.Errorf("SetUpdateSettings with a bad lock: %v, want an APIError 400", err)
	}
	code, body := tg.raw("GET", "/settings?keys=settings.updates.version-lock,settings.updates.ignore-waves", "")
	if code != 200 || !strings.Contains(body, `"version-lock":`) || strings.Contains(body, `"settings"`) {
		t.Errorf("GET /settings?keys=… = %d %s, want the two update settings without a settings key", code, body)
	}
}

// compareVersions compares two major.minor.patch versions.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range min(len(pa), len(pb)) {
		if c := compareNumbers(pa[i], pb[i]); c != 0 {
			return c
		}
	}
	return len(pa) - len(pb)
}

func compareNumbers(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

func TestContractPendingTransactionWaitsForCommit(t *testing.T) {
	tg := newTarget(t, hostapitest.Config{Version: "1.20.0"})
	ctx := tg.ctx()
	const tx = "brupop-contract-pending"
	tg.raw("DELETE", "/tx?tx="+tx, "") // a leftover of an interrupted run
	orig, err := tg.c.UpdateSettings(ctx)
	if err != nil {
		t.Fatalf("UpdateSettings: %v", err)
	}
	t.Cleanup(func() {
		tg.raw("DELETE", "/tx?tx="+tx, "")
		if err := tg.c.SetUpdateSettings(context.Background(), orig); err != nil {
			t.Errorf("restore settings: %v", err)
		}
	})
	pending := func(want bool, when string) {
		t.Helper()
		if got, err := tg.c.TransactionPending(ctx, tx); err != nil || got != want {
			t.Errorf("TransactionPending %s = %v, %v; want %v", when, got, err, want)
		}
	}
	settings := func(want hostapi.UpdateSettings, when string) {
		t.Helper()
		if got, err := tg.c.UpdateSettings(ctx); err != nil || got != want {
			t.Errorf("UpdateSettings %s = %+v, %v; want %+v", when, got, err, want)
		}
	}
	pending(false, "before staging")
	staged := hostapi.UpdateSettings{VersionLock: "v" + tg.osVersion(), IgnoreWaves: !orig.IgnoreWaves}
	if err := tg.c.StageUpdateSettings(ctx, tx, staged); err != nil {
		t.Fatalf("StageUpdateSettings: %v", err)
	}
	pending(true, "after staging")
	settings(orig, "while staged")

	// Settings committed in another transaction leave the staged ones pending.
	if err := tg.c.SetUpdateSettings(ctx, orig); err != nil {
		t.Fatalf("SetUpdateSettings: %v", err)
	}
	pending(true, "after another transaction's commit")

	if err := tg.c.CommitTransaction(ctx, tx); err != nil {
		t.Fatalf("CommitTransaction: %v", err)
	}
	pending(false, "after the commit")
	settings(staged, "after the commit")
	if err := tg.c.CommitTransaction(ctx, tx); err != nil {
		t.Errorf("CommitTransaction with nothing pending: %v, want nil", err)
	}
	if err := tg.c.StageUpdateSettings(ctx, tx, hostapi.UpdateSettings{VersionLock: "not a version"}); !isStatus(err, 400) {
		t.Errorf("StageUpdateSettings of a bad lock: %v, want an APIError 400", err)
	}
}

// isStatus reports whether err is an *hostapi.APIError with code.
func isStatus(err error, code int) bool {
	var apiErr *hostapi.APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode == code
}
