package hostapitest

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
)

// Config describes a simulated host when it starts.
type Config struct {
	// Version is the running OS version, e.g. "1.20.0". Required.
	Version string
	// Variant defaults to "aws-k8s-1.31"; Arch defaults to "x86_64".
	Variant, Arch string
	// Available is the update repository: every version published for this variant and arch.
	// It defaults to Version alone.
	Available []string
	// CommandTime is how long each update command holds the update lock; CommandTimes
	// overrides it per command.
	CommandTime  time.Duration
	CommandTimes map[hostapi.CommandType]time.Duration
	// RebootTime is how long the socket refuses connections during a reboot.
	RebootTime time.Duration
	// Faults are the faults the host starts with.
	Faults Faults
	// OnReboot, if set, is called when a reboot starts and when the host has booted again; a
	// fleet simulator stops the node's agent and marks its Node NotReady, then Ready. It runs
	// on the host's own goroutine, with no lock held; it must not block for long.
	OnReboot func(RebootEvent)
}

// Faults are the failures a simulated host injects. The zero value injects none.
type Faults struct {
	// FailRefresh, FailPrepare and FailActivate, when not empty, make that command run and
	// fail: exit status 1 with this text on stderr.
	FailRefresh, FailPrepare, FailActivate string
	// FailBoot makes every boot into a new partition set fail before it is marked successful,
	// so the host falls back to the old set (automatic rollback).
	FailBoot bool
	// Hang makes every request hang until the fault is cleared or the host closes.
	Hang bool
	// Garbage makes every request answer 200 with a body that is not JSON.
	Garbage bool
	// InternalErrors makes the next InternalErrors requests answer 500 "Update dispatcher
	// failed".
	InternalErrors int
	// RefuseReboot makes reboot answer 500 as when systemd refuses because of an inhibitor.
	RefuseReboot bool
	// DropRebootAnswer makes reboot close the connection without answering, then reboot.
	DropRebootAnswer bool
	// StaleSettings makes refresh and prepare ignore a committed updates.version-lock, as while
	// the host has not yet rendered its new settings to updog's configuration file.
	StaleSettings bool
}

// RebootPhase tells where a reboot is.
type RebootPhase string

// The phases OnReboot reports.
const (
	RebootStarted = RebootPhase("Started")
	RebootBooted  = RebootPhase("Booted")
)

// RebootEvent is what OnReboot receives.
type RebootEvent struct {
	Phase RebootPhase
	// Version is the version running: before the reboot when started, after it when booted.
	Version string
	// RolledBack is set when booted on the old set because the new one failed to boot.
	RolledBack bool
}

// partSet is one A/B partition set and its GPT boot flags (docs/hostapi.md, "A/B partitions and
// boot flags").
type partSet struct {
	version    semver
	priority   int
	triesLeft  int
	successful bool
}

// Host is one simulated host serving the host API on a Unix socket. Its methods are safe for
// concurrent use.
type Host struct {
	socket string
	cfg    Config
	reqMu  sync.Mutex // one request at a time, as the real apiserver's single worker

	mu        sync.Mutex
	sets      [2]partSet
	running   int             // index in sets of the running set
	status    *hostapi.Status // nil until the first update command of a boot
	busy      bool            // an update command holds the lock
	epoch     int             // boots so far; a command of an earlier boot never writes
	lastStamp time.Time
	repo      []semver
	settings  hostapi.UpdateSettings
	txs       map[string]*pending
	faults    Faults
	faultsCh  chan struct{} // closed when faults change
	srv       *http.Server  // nil while rebooting
	ln        net.Listener  // the socket srv serves
	down      chan struct{} // closed when the current boot's server stops
	closed    bool
	done      chan struct{}
	wg        sync.WaitGroup
}

// Start serves a simulated host on socketPath, replacing a stale socket file there, until
// Close.
func Start(socketPath string, cfg Config) (*Host, error) {
	cur, err := parseVersion(cfg.Version)
	if err != nil {
		return nil, err
	}
	if cfg.Available == nil {
		cfg.Available = []string{cfg.Version}
	}
	repo, err := parseVersions(cfg.Available)
	if err != nil {
		return nil, err
	}
	cfg.Available = slices.Clone(cfg.Available)
	cfg.CommandTimes = maps.Clone(cfg.CommandTimes)
	if cfg.Variant == "" {
		cfg.Variant = "aws-k8s-1.31"
	}
	if cfg.Arch == "" {
		cfg.Arch = "x86_64"
	}
	h := &Host{
		socket:   socketPath,
		cfg:      cfg,
		sets:     [2]partSet{{version: cur, priority: 2, successful: true}},
		repo:     repo,
		settings: hostapi.UpdateSettings{VersionLock: "latest"},
		txs:      map[string]*pending{},
		faults:   cfg.Faults,
		faultsCh: make(chan struct{}),
		done:     make(chan struct{}),
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.listenLocked(); err != nil {
		return nil, err
	}
	return h, nil
}

// listenLocked starts this boot's server on the socket.
func (h *Host) listenLocked() error {
	if err := os.Remove(h.socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("hostapitest: remove stale socket: %w", err)
	}
	ln, err := net.Listen("unix", h.socket)
	if err != nil {
		return fmt.Errorf("hostapitest: listen: %w", err)
	}
	// Keep the socket file when the server stops, so that a rebooting host refuses
	// connections instead of vanishing.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	h.ln = ln
	h.srv = &http.Server{Handler: h.routes(), ErrorLog: log.New(io.Discard, "", 0)}
	h.down = make(chan struct{})
	srv := h.srv
	h.goLocked(func() { _ = srv.Serve(ln) })
	return nil
}

// goLocked runs f on a goroutine Close waits for; it runs nothing once the host is closed.
func (h *Host) goLocked(f func()) {
	if h.closed {
		return
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		f()
	}()
}

// Close stops the host, waits for every goroutine it started and removes the socket file.
func (h *Host) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	close(h.done)
	srv := h.stopLocked()
	h.mu.Unlock()
	if srv != nil {
		// Its listener is closed already; the error says only that.
		_ = srv.Close()
	}
	h.wg.Wait()
	if err := os.Remove(h.socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("hostapitest: remove socket: %w", err)
	}
	return nil
}

// stopLocked detaches this boot's server and returns it for closing outside the lock.
func (h *Host) stopLocked() *http.Server {
	srv := h.srv
	if srv != nil {
		// Serve may not have taken the listener yet: close it here so that the socket
		// refuses connections from now on.
		_ = h.ln.Close()
		h.srv = nil
		close(h.down)
	}
	return srv
}

// SocketPath returns the socket the host serves.
func (h *Host) SocketPath() string { return h.socket }

// Version returns the running version.
func (h *Host) Version() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sets[h.running].version.String()
}

// Rebooting reports whether the host is down for a reboot.
func (h *Host) Rebooting() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.srv == nil && !h.closed
}

// Boots returns how many times the host rebooted since Start.
func (h *Host) Boots() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.epoch
}

// Faults returns the faults in force.
func (h *Host) Faults() Faults {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.faults
}

// SetFaults replaces the faults in force; a request hanging on Hang resumes when it is cleared.
func (h *Host) SetFaults(f Faults) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = f
	close(h.faultsCh)
	h.faultsCh = make(chan struct{})
}

// Publish adds versions to the update repository, as a new release does.
func (h *Host) Publish(versions ...string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	all := make([]string, 0, len(h.repo)+len(versions))
	for _, v := range h.repo {
		all = append(all, v.String())
	}
	return h.setRepoLocked(append(all, versions...))
}

// SetRepository replaces the update repository, e.g. to pull a release.
func (h *Host) SetRepository(versions ...string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.setRepoLocked(versions)
}

func (h *Host) setRepoLocked(versions []string) error {
	repo, err := parseVersions(versions)
	if err != nil {
		return err
	}
	h.repo = repo
	return nil
}

// UpdateSettings returns the committed version-lock and ignore-waves settings.
func (h *Host) UpdateSettings() hostapi.UpdateSettings {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.settings
}

// Reboot reboots the host now, as a power cycle or an operator would, whatever its state.
func (h *Host) Reboot() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rebootLocked()
}

// rebootLocked takes the socket away, forgets the status and kills a running command, then
// boots again after the reboot time on a goroutine.
func (h *Host) rebootLocked() {
	srv := h.stopLocked()
	if srv == nil {
		return // already rebooting, or closed
	}
	// Closing never waits for handlers, so it is safe under the lock.
	_ = srv.Close()
	from := h.sets[h.running].version.String()
	h.epoch++
	h.status, h.busy = nil, false
	h.goLocked(func() {
		h.notify(RebootEvent{Phase: RebootStarted, Version: from})
		t := time.NewTimer(h.cfg.RebootTime)
		defer t.Stop()
		select {
		case <-h.done:
			return
		case <-t.C:
		}
		if ev, ok := h.boot(); ok {
			h.notify(ev)
		}
	})
}

// boot picks the set to boot as GRUB does, marks it successful and serves the socket again.
func (h *Host) boot() (RebootEvent, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return RebootEvent{}, false
	}
	i := h.grubNext(true)
	rolledBack := false
	if !h.sets[i].successful && h.faults.FailBoot {
		// The new set never reaches mark-successful-boot; its one try is spent, so the
		// next boot takes the old set.
		i = h.grubNext(true)
		rolledBack = true
	}
	h.sets[i].successful = true
	h.running = i
	if err := h.listenLocked(); err != nil {
		// The socket path became unusable (its directory went away): stay down.
		return RebootEvent{}, false
	}
	return RebootEvent{Phase: RebootBooted, Version: h.sets[i].version.String(), RolledBack: rolledBack}, true
}

// grubNext returns the set GRUB's gptprio.next boots: the highest priority among the sets with
// tries left or a successful boot. When spend is set, it uses up one try as GRUB does.
func (h *Host) grubNext(spend bool) int {
	best := -1
	for i, s := range h.sets {
		if (s.triesLeft > 0 || s.successful) && (best < 0 || s.priority > h.sets[best].priority) {
			best = i
		}
	}
	if best < 0 {
		best = h.running
	}
	if spend && h.sets[best].triesLeft > 0 {
		h.sets[best].triesLeft--
	}
	return best
}

func (h *Host) notify(ev RebootEvent) {
	if h.cfg.OnReboot != nil {
		h.cfg.OnReboot(ev)
	}
}

// buildID is a stable fake build id for a version.
func buildID(v string) string {
	f := fnv.New32a()
	_, _ = f.Write([]byte(v))
	return fmt.Sprintf("%08x", f.Sum32())
}
