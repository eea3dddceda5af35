package hostapitest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
)

func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hsim")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "api.sock")
}

func start(t *testing.T, cfg Config) *Host {
	t.Helper()
	h, err := Start(socketPath(t), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func client(h *Host) *hostapi.Client {
	return hostapi.New(hostapi.Options{SocketPath: h.SocketPath(), PollInterval: 2 * time.Millisecond,
		RetryBase: time.Millisecond, RetryMax: 10 * time.Millisecond})
}

// eventually polls cond every few milliseconds until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		<-time.After(5 * time.Millisecond)
	}
}

// update drives one host through refresh, prepare, activate and reboot with the client.
func update(ctx context.Context, c *hostapi.Client) error {
	for _, cmd := range []hostapi.CommandType{hostapi.CommandRefresh, hostapi.CommandPrepare, hostapi.CommandActivate} {
		if _, err := c.Run(ctx, cmd); err != nil {
			return err
		}
	}
	return c.Reboot(ctx)
}

func TestCloseEndsEveryGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	long := Config{Version: "1.20.0", Available: []string{"1.21.0"}, CommandTime: time.Hour, RebootTime: time.Hour}
	busy, err := Start(socketPath(t), long)
	if err != nil {
		t.Fatal(err)
	}
	rebooting, err := Start(socketPath(t), long)
	if err != nil {
		t.Fatal(err)
	}
	hung, err := Start(socketPath(t), Config{Version: "1.20.0", Faults: Faults{Hang: true}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The refresh holds the lock for an hour: stop waiting for it after it started.
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	if _, err := client(busy).Run(short, hostapi.CommandRefresh); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("refresh of an hour: %v, want it still running", err)
	}
	rebooting.Reboot()
	hungDone := make(chan error, 1)
	go func() { _, err := client(hung).OS(ctx); hungDone <- err }()
	eventually(t, "the hung request arrives", func() bool { return runtime.NumGoroutine() > before+6 })
	for _, h := range []*Host{busy, rebooting, hung} {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if err := <-hungDone; err == nil {
		t.Error("the hung request succeeded after Close")
	}
	eventually(t, fmt.Sprintf("goroutines are back to %d", before), func() bool { return runtime.NumGoroutine() <= before })
}

func TestSocketRefusesConnectionsWhileRebooting(t *testing.T) {
	h := start(t, Config{Version: "1.20.0", RebootTime: time.Hour})
	h.Reboot()
	eventually(t, "the host is down", h.Rebooting)
	_, err := net.Dial("unix", h.SocketPath())
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial while rebooting: %v, want connection refused", err)
	}
}

func TestFleetInOneProcess(t *testing.T) {
	const n = 24
	var mu sync.Mutex
	booted := map[string]int{}
	hosts := make([]*Host, n)
	for i := range hosts {
		hosts[i] = start(t, Config{
			Version: "1.20.0", Available: []string{"1.20.0", "1.21.0"},
			CommandTime: 5 * time.Millisecond, RebootTime: 10 * time.Millisecond,
			OnReboot: func(ev RebootEvent) {
				if ev.Phase == RebootBooted {
					mu.Lock()
					booted[ev.Version]++
					mu.Unlock()
				}
			},
		})
	}
	hosts[3].SetFaults(Faults{FailBoot: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errs := make(chan error, n)
	for _, h := range hosts {
		go func() { errs <- update(ctx, client(h)) }()
	}
	for range hosts {
		if err := <-errs; err != nil {
			t.Errorf("update: %v", err)
		}
	}
	eventually(t, "every host booted", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return booted["1.20.0"]+booted["1.21.0"] == n
	})
	for i, h := range hosts {
		want := "1.21.0"
		if i == 3 {
			want = "1.20.0"
		}
		if got := h.Version(); got != want || h.Boots() != 1 {
			t.Errorf("host %d runs %s after %d boots, want %s after 1", i, got, h.Boots(), want)
		}
	}
}

func TestStartRejectsBadVersions(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
	}{
		{"no version", Config{}},
		{"not semver", Config{Version: "1.20"}},
		{"bad repository", Config{Version: "1.20.0", Available: []string{"latest"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if h, err := Start(socketPath(t), tc.cfg); err == nil {
				h.Close()
				t.Error("Start succeeded")
			}
		})
	}
}

func TestChoose(t *testing.T) {
	repo := []string{"1.19.0", "1.20.0", "1.21.0"}
	cases := []struct {
		name    string
		current string
		repo    []string
		lock    string
		want    string // "" for no update
	}{
		{"latest takes the highest newer", "1.19.0", repo, "latest", "1.21.0"},
		{"latest on the highest has none", "1.21.0", repo, "latest", ""},
		{"a host above a pulled release goes to the highest", "1.22.0", repo, "latest", "1.21.0"},
		{"a pinned older version is a downgrade", "1.21.0", repo, "v1.19.0", "1.19.0"},
		{"a pin without v works", "1.21.0", repo, "1.20.0", "1.20.0"},
		{"a pin on the running version has none", "1.20.0", repo, "1.20.0", ""},
		{"a pin missing from the repository has none", "1.20.0", repo, "1.30.0", ""},
		{"an empty repository has none", "1.20.0", nil, "latest", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cur, _ := parseVersion(tc.current)
			cands, err := parseVersions(tc.repo)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := choose(cur, cands, tc.lock)
			if gotS := map[bool]string{true: got.String(), false: ""}[ok]; gotS != tc.want {
				t.Errorf("choose(%s, %v, %s) = %q, want %q", tc.current, tc.repo, tc.lock, gotS, tc.want)
			}
		})
	}
}
