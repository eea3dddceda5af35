//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/klog/v2"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/kubectlbrupop"
	"github.com/bottlerocket-os/brupop-go/internal/sim"
)

// sampleEvery is how often a story observes its fleet and checks the invariants.
const sampleEvery = 250 * time.Millisecond

// logDirEnv names a directory where each story writes its components' logs; unset, they are
// discarded and only the rollout's log lines are shown when a story fails.
const logDirEnv = "BRUPOP_E2E_LOG_DIR"

// story is one end-to-end story on its own simulated cluster, observed continuously from its
// start to its end by one goroutine.
type story struct {
	t     *testing.T
	c     *sim.Cluster
	start time.Time

	mu      sync.Mutex
	last    sim.Snapshot
	seq     int           // samples taken
	out     *bytes.Buffer // the rollout as sim's log view prints it
	view    sim.View
	hooks   []func(sim.Snapshot)
	maxLive int // most nodes in flight at once

	obs    *sim.Observer
	cancel context.CancelFunc
	done   chan struct{}
}

// options are the stories' defaults: n nodes at concurrency conc with second-scale host
// timings.
func options(n, conc int) sim.Options {
	o := sim.DefaultOptions()
	o.Nodes, o.MaxConcurrent = n, conc
	o.PrepareTime, o.RebootTime, o.MonitoringPeriod = 500*time.Millisecond, time.Second, time.Second
	return o
}

// newStory starts a cluster for opts and starts observing it; both stop when the test ends.
func newStory(t *testing.T, opts sim.Options) *story {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a control plane, kwok and a simulated fleet")
	}
	opts.Log = storyLogger(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	began := time.Now()
	c, err := sim.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start the simulated cluster: %v", err)
	}
	t.Logf("cluster of %d nodes up in %.1fs", opts.Nodes, time.Since(began).Seconds())
	s := &story{t: t, c: c, start: time.Now(), out: &bytes.Buffer{}, done: make(chan struct{}), obs: c.NewObserver(time.Now())}
	s.view = sim.NewLogView(s.out, c.Options)
	octx, ocancel := context.WithCancel(context.Background())
	s.cancel = ocancel
	go s.observe(octx)
	t.Cleanup(func() {
		s.stopObserving()
		if t.Failed() {
			t.Logf("the rollout as observed:\n%s", s.output())
		}
		if dir := os.Getenv(logDirEnv); dir != "" {
			path := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".rollout")
			if err := os.WriteFile(path, []byte(s.output()), 0o600); err != nil {
				t.Errorf("write the rollout: %v", err)
			}
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop the cluster: %v", err)
		}
	})
	return s
}

// TestMain silences client-go's own logging once: it is global, and the stories' clusters
// stop in the background of later stories.
func TestMain(m *testing.M) {
	klog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

// storyLogger writes the components' logs to a file under $BRUPOP_E2E_LOG_DIR, or discards them.
func storyLogger(t *testing.T) logr.Logger {
	dir := os.Getenv(logDirEnv)
	if dir == "" {
		return logr.Discard()
	}
	f, err := os.Create(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".log"))
	if err != nil {
		t.Fatalf("log file: %v", err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return logr.FromSlogHandler(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// observe samples the fleet until ctx ends.
func (s *story) observe(ctx context.Context) {
	defer close(s.done)
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for {
		snap, err := s.obs.Sample(ctx, time.Now())
		s.mu.Lock()
		if err == nil {
			s.last, s.seq = snap, s.seq+1
			s.maxLive = max(s.maxLive, snap.InFlight)
			s.view.Update(snap, snap.At.Sub(s.start))
			for _, h := range s.hooks {
				h(snap)
			}
		} else if ctx.Err() == nil {
			fmt.Fprintf(s.out, "observe: %v\n", err)
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// onSample calls h with every later snapshot, on the observing goroutine.
func (s *story) onSample(h func(sim.Snapshot)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = append(s.hooks, h)
}

func (s *story) stopObserving() {
	s.cancel()
	<-s.done
}

func (s *story) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// note adds a line to the rollout's log, for the story's actions to show among its states.
func (s *story) note(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.out, "%6.1fs >>> %s\n", time.Since(s.start).Seconds(), fmt.Sprintf(format, args...))
}

// publish releases the options' target version to every host.
func (s *story) publish() {
	s.t.Helper()
	if err := s.c.Publish(); err != nil {
		s.t.Fatal(err)
	}
	s.note("published %s", s.c.Options.To)
}

// waitFor waits until a snapshot taken after the call satisfies cond, and returns it; after
// timeout the story fails, saying what it waited for.
func (s *story) waitFor(what string, timeout time.Duration, cond func(sim.Snapshot) bool) sim.Snapshot {
	s.t.Helper()
	s.mu.Lock()
	from := s.seq
	s.mu.Unlock()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(sampleEvery / 5)
	defer tick.Stop()
	for {
		s.mu.Lock()
		snap, seq := s.last, s.seq
		s.mu.Unlock()
		if seq > from && cond(snap) {
			return snap
		}
		select {
		case <-deadline.C:
			s.t.Fatalf("waited %s for %s", timeout, what)
		case <-s.t.Context().Done():
			s.t.Fatalf("waiting for %s: %v", what, s.t.Context().Err())
		case <-tick.C:
		}
	}
}

// checkInvariants fails the story for every running invariant that broke so far. It stops
// the observation: call it once, at the end.
func (s *story) checkInvariants() {
	s.t.Helper()
	s.stopObserving()
	for _, inv := range s.obs.Invariants() {
		if !inv.Held {
			s.t.Errorf("invariant broken: %s:\n  %s", inv.Name, strings.Join(inv.Breaches, "\n  "))
		}
	}
	s.t.Logf("rollout took %.1fs after the release; at most %d nodes in flight", time.Since(s.start).Seconds(), s.maxLive)
}

// kubectlBrupop runs `kubectl brupop args...` in-process against the cluster and returns its
// output.
func (s *story) kubectlBrupop(args ...string) string {
	s.t.Helper()
	var out bytes.Buffer
	cmd := kubectlbrupop.NewCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
	cmd.SetArgs(append([]string{"--kubeconfig", s.c.ControlPlane.KubeconfigPath}, args...))
	if err := cmd.ExecuteContext(s.t.Context()); err != nil {
		s.t.Fatalf("kubectl brupop %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	s.note("kubectl brupop %s", strings.Join(args, " "))
	return out.String()
}

// allOn returns a condition: every node of the fleet but the deleted ones Idle on version,
// schedulable and not in flight, except those in except.
func (s *story) allOn(version string, except ...string) func(sim.Snapshot) bool {
	return func(snap sim.Snapshot) bool {
		if len(snap.Rows) != s.c.Options.Nodes-s.c.Deleted() {
			return false
		}
		for _, r := range snap.Rows {
			if slices.Contains(except, r.Name) {
				continue
			}
			if r.InFlight || r.State != v2.StateIdle || r.Desired != v2.StateIdle || r.Version != version || r.Unschedulable || !r.Ready {
				return false
			}
		}
		return true
	}
}

// row returns the row of node in snap.
func row(snap sim.Snapshot, node string) (sim.NodeRow, bool) {
	for _, r := range snap.Rows {
		if r.Name == node {
			return r, true
		}
	}
	return sim.NodeRow{}, false
}
