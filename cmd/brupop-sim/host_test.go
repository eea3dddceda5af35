package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
)

func TestParseHostFlags(t *testing.T) {
	cases := []struct {
		name          string
		args          []string
		wantErr       bool
		wantAvailable []string
		wantReboot    time.Duration
	}{
		{name: "issue example", args: []string{"--socket", "/tmp/h.sock", "--version", "1.20.0", "--available", "1.20.0,1.21.0"},
			wantAvailable: []string{"1.20.0", "1.21.0"}, wantReboot: 2 * time.Second},
		{name: "all flags", args: []string{"--socket", "s", "--version", "1.20.0", "--command-time", "5ms", "--reboot-time", "1s", "--variant", "aws-k8s-1.30", "--arch", "aarch64"},
			wantReboot: time.Second},
		{name: "socket required", args: []string{"--version", "1.20.0"}, wantErr: true},
		{name: "version required", args: []string{"--socket", "s"}, wantErr: true},
		{name: "unknown arch", args: []string{"--socket", "s", "--version", "1.20.0", "--arch", "arm"}, wantErr: true},
		{name: "negative time", args: []string{"--socket", "s", "--version", "1.20.0", "--reboot-time", "-1s"}, wantErr: true},
		{name: "stray argument", args: []string{"--socket", "s", "--version", "1.20.0", "now"}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, cfg, err := parseHostFlags(tc.args, io.Discard)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseHostFlags: %v, want error %t", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if !slices.Equal(cfg.Available, tc.wantAvailable) || cfg.RebootTime != tc.wantReboot {
				t.Errorf("available %v reboot %s, want %v %s", cfg.Available, cfg.RebootTime, tc.wantAvailable, tc.wantReboot)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the host's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func TestHostServesUntilCancelled(t *testing.T) {
	dir, err := os.MkdirTemp("", "bsim")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	socket := filepath.Join(dir, "api.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var out syncBuffer
	go func() {
		done <- run(ctx, []string{"host", "--socket", socket, "--version", "1.20.0", "--available", "1.20.0,1.21.0", "--command-time", "1ms"}, &out, io.Discard)
	}()
	c := hostapi.New(hostapi.Options{SocketPath: socket, PollInterval: time.Millisecond})
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := c.OS(ctx)
		if err == nil {
			if info.VersionID != "1.20.0" {
				t.Errorf("version %s, want 1.20.0", info.VersionID)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("host never came up: %v", err)
		}
		<-time.After(5 * time.Millisecond)
	}
	if st, err := c.Refresh(ctx); err != nil || st.ChosenVersion() != "1.21.0" {
		t.Errorf("Refresh: %s, %v; want 1.21.0 chosen", st.ChosenVersion(), err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if _, err := os.Stat(socket); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

func TestUnknownSubcommand(t *testing.T) {
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"fleet"}, io.Discard, &stderr); code != 2 || !bytes.Contains(stderr.Bytes(), []byte("host")) {
		t.Errorf("exit %d, stderr %q; want 2 and a usage listing host", code, stderr.String())
	}
}
