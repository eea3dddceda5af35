package agent

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"

	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi/hostapitest"
)

// settingsAgent is the part of an Agent that pins and restores host settings.
func settingsAgent(socket string) *Agent {
	hc := hostapi.New(hostapi.Options{SocketPath: socket, PollInterval: time.Millisecond, RetryBase: time.Millisecond})
	return &Agent{cfg: Config{Host: hc}.withDefaults(), log: logr.Discard()}
}

func TestPinIsRestoredByTheNextAgent(t *testing.T) {
	ctx := context.Background()
	host, err := hostapitest.Start(filepath.Join(t.TempDir(), "api.sock"), hostapitest.Config{
		Version: "1.20.0", Available: []string{"1.20.0", "1.21.0", "1.22.0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Close() })
	original := hostapi.UpdateSettings{VersionLock: "v1.22.0"}
	if err := settingsAgent(host.SocketPath()).cfg.Host.SetUpdateSettings(ctx, original); err != nil {
		t.Fatal(err)
	}

	// An agent pins twice (a retried step) and is killed before restoring.
	killed := settingsAgent(host.SocketPath())
	for range 2 {
		if err := killed.pin(ctx, "1.21.0"); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(hostapi.UpdateSettings{VersionLock: "1.21.0", IgnoreWaves: true}, host.UpdateSettings()); diff != "" {
		t.Errorf("pinned settings (-want +got):\n%s", diff)
	}

	// The next agent restores the settings from before the first pin, once.
	next := settingsAgent(host.SocketPath())
	for range 2 {
		if err := next.restoreSettings(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(original, host.UpdateSettings()); diff != "" {
		t.Errorf("restored settings (-want +got):\n%s", diff)
	}
}
