package agent

import (
	"context"
	"errors"
	"math"
	"reflect"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
)

// Config is what an Agent needs. Zero durations take the defaults of Options.
type Config struct {
	// NodeName is the agent's node; Namespace holds its shadow.
	NodeName, Namespace string
	// Watch is the agent's view of its Node and shadow, e.g. WatchCluster's; Run runs it.
	Watch Watch
	// Server is the client of the Brupop API server; the agent sets its NodeUID.
	Server *agentapi.Client
	// Host is the client of the host API.
	Host *hostapi.Client
	// ExcludeFromLBWait, when positive, turns on load-balancer exclusion before a drain and is
	// the wait after it.
	ExcludeFromLBWait time.Duration
	// DrainTimeout, RefreshInterval, Resync and RebootTimeout are as in Options.
	DrainTimeout, RefreshInterval, Resync, RebootTimeout time.Duration
	// PollInterval is the pause between host reads while waiting for the reboot; default 1s.
	PollInterval time.Duration
	// RetryBase and RetryMax shape the jittered backoff after a failed pass or API-server
	// call; defaults 1s and 1m.
	RetryBase, RetryMax time.Duration
	// Clock drives every wait; default the real clock.
	Clock clock.WithTicker
	// Log receives the agent's log; default the logger of Run's context.
	Log logr.Logger
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.DrainTimeout, defaultDrain)
	def(&c.RefreshInterval, defaultRefresh)
	def(&c.Resync, defaultResync)
	def(&c.RebootTimeout, defaultRebootWait)
	def(&c.PollInterval, time.Second)
	def(&c.RetryBase, time.Second)
	def(&c.RetryMax, time.Minute)
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	return c
}

// Agent drives one node's updates. Run it once.
type Agent struct {
	cfg   Config
	log   logr.Logger
	cache Watch // cfg.Watch

	mu         sync.Mutex
	changed    chan struct{}              // closed and replaced when a watched object changes
	passSpec   *v2.BottlerocketShadowSpec // the spec the running pass acts on
	cancelPass context.CancelCauseFunc

	// Owned by Run's goroutine.
	restored     bool      // the restore transaction was committed since start
	refreshedAt  time.Time // last successful refresh
	refreshedFor string    // running version at that refresh
	chosen       string    // chosen_update of that refresh
	// lastSpec is the spec the last pass read, nil when it failed before reading one.
	lastSpec *v2.BottlerocketShadowSpec
}

// errSpecChanged cancels a pass whose shadow spec changed under it.
var errSpecChanged = errors.New("agent: shadow spec changed")

// New returns an Agent for cfg.
func New(cfg Config) (*Agent, error) {
	cfg = cfg.withDefaults()
	switch {
	case cfg.NodeName == "" || cfg.Namespace == "":
		return nil, errors.New("agent: node name and namespace are required")
	case cfg.Watch == nil || cfg.Server == nil || cfg.Host == nil:
		return nil, errors.New("agent: Watch, Server and Host are required")
	}
	return &Agent{cfg: cfg, cache: cfg.Watch, changed: make(chan struct{})}, nil
}

// Run runs the Watch and drives the updates until ctx ends; it returns nil then, or an error
// when the Watch cannot start.
func (a *Agent) Run(ctx context.Context) error {
	a.log = a.cfg.Log
	if a.log.GetSink() == nil {
		a.log = logr.FromContextOrDiscard(ctx)
	}
	a.log = a.log.WithValues("node", a.cfg.NodeName)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	synced, stopped := make(chan struct{}), make(chan error, 1)
	go func() { stopped <- a.cache.Run(ctx, a.notify, func() { close(synced) }) }()
	select {
	case <-synced:
	case err := <-stopped:
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("agent: the watch ended before it synced")
		}
		return err
	}
	wg.Go(func() {
		if err := <-stopped; err != nil {
			a.log.Error(err, "Watch stopped")
		}
	})
	a.log.Info("Started agent", "shadow", v2.ShadowName(a.cfg.NodeName))
	a.loop(ctx)
	return nil
}

// notify wakes whoever waits for a change and cancels the running pass if obj is the shadow
// with a spec other than the one the pass acts on.
func (a *Agent) notify(obj client.Object) {
	a.mu.Lock()
	defer a.mu.Unlock()
	close(a.changed)
	a.changed = make(chan struct{})
	brs, ok := obj.(*v2.BottlerocketShadow)
	if ok && a.passSpec != nil && !reflect.DeepEqual(*a.passSpec, brs.Spec) {
		a.cancelPass(errSpecChanged)
	}
}

// changedCh returns the channel closed at the next change.
func (a *Agent) changedCh() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.changed
}

// setPass records the spec of the running pass and how to cancel it; nil clears it.
func (a *Agent) setPass(spec *v2.BottlerocketShadowSpec, cancel context.CancelCauseFunc) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.passSpec, a.cancelPass = spec, cancel
}

// loop runs passes on changes, after failures with backoff and on the jittered resync.
func (a *Agent) loop(ctx context.Context) {
	backoff := a.backoff()
	for ctx.Err() == nil {
		changed := a.changedCh()
		err := a.pass(ctx)
		pause := wait.Jitter(a.cfg.Resync, 0.2)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errSpecChanged):
			a.log.Info("Shadow spec changed; deciding again")
			continue
		case err != nil:
			pause = backoff.Step()
			a.log.Error(err, "Pass failed; retrying", "after", pause)
		default:
			backoff = a.backoff()
		}
		if err == nil {
			a.waitChange(ctx, changed, pause)
		} else {
			// A failed pass retries after its backoff, or sooner when the controller changes
			// the shadow's spec (e.g. back to Idle); other changes do not end the backoff, so
			// that a flapping watch cannot turn it into a busy loop.
			a.waitSpecChange(ctx, a.lastSpec, pause)
		}
	}
}

// waitSpecChange waits until the cached shadow's spec differs from spec, d passes or ctx ends.
// With spec nil it waits d or for ctx.
func (a *Agent) waitSpecChange(ctx context.Context, spec *v2.BottlerocketShadowSpec, d time.Duration) {
	t := a.cfg.Clock.NewTimer(d)
	defer t.Stop()
	key := client.ObjectKey{Namespace: a.cfg.Namespace, Name: v2.ShadowName(a.cfg.NodeName)}
	for {
		changed := a.changedCh()
		if spec != nil {
			var brs v2.BottlerocketShadow
			if err := a.cache.Get(ctx, key, &brs); err == nil && !reflect.DeepEqual(*spec, brs.Spec) {
				a.log.Info("Shadow spec changed; ending the backoff")
				return
			}
		} else {
			changed = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-t.C():
			return
		}
	}
}

// waitChange waits for changed to close, d to pass or ctx to end.
func (a *Agent) waitChange(ctx context.Context, changed <-chan struct{}, d time.Duration) {
	t := a.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-changed:
	case <-t.C():
	}
}

// sleep waits d or until ctx ends, whose error it returns.
func (a *Agent) sleep(ctx context.Context, d time.Duration) error {
	t := a.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C():
		return nil
	}
}

// backoff is the retry policy after a failed pass or API-server call: attempt n waits between
// half and all of min(RetryBase*2^n, RetryMax).
func (a *Agent) backoff() wait.Backoff {
	return wait.Backoff{Duration: a.cfg.RetryBase / 2, Factor: 2, Jitter: 1, Steps: math.MaxInt32, Cap: a.cfg.RetryMax / 2}
}
