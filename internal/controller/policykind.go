package controller

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/event"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// DefaultCRDPollInterval is how often, plus up to half as much again at random, the controller
// asks the API server whether it serves FleetPolicies while it does not.
const DefaultCRDPollInterval = 30 * time.Second

// kindState is what the controller knows of the FleetPolicy kind.
type kindState int

const (
	// kindUnknown: not asked yet. The first pass reads the FleetPolicy, which tells.
	kindUnknown kindState = iota
	// kindAbsent: the API server does not serve FleetPolicies (the CRD is not installed). Passes
	// run on the environment's settings with the ledger in memory, and a poller waits for the
	// kind to appear.
	kindAbsent
	// kindServed: FleetPolicies are served and watched.
	kindServed
)

// policyKind follows whether the API server serves FleetPolicies. A controller installed
// without the FleetPolicy CRD (upstream's CRD chart has none) runs without it and picks it up
// when it appears (docs/install.md).
type policyKind struct {
	mu     sync.Mutex
	state  kindState
	warned bool
	// discover asks the API server whether it serves FleetPolicies; nil when nothing polls.
	discover func(context.Context) (bool, error)
	// watch starts the FleetPolicy watch; nil when nothing watches (unit tests).
	watch func() error
	// appeared asks for a pass once the kind is served, to create the FleetPolicy and store the
	// state kept in memory until then.
	appeared chan event.GenericEvent
	// interval is the base interval of the discovery polls.
	interval time.Duration
}

func newPolicyKind(interval time.Duration) *policyKind {
	if interval <= 0 {
		interval = DefaultCRDPollInterval
	}
	return &policyKind{appeared: make(chan event.GenericEvent, 1), interval: interval}
}

// absent reports whether the API server is known not to serve FleetPolicies.
func (k *policyKind) absent() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.state == kindAbsent
}

// served reports whether the API server is known to serve FleetPolicies.
func (k *policyKind) served() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.state == kindServed
}

// markAbsent records that FleetPolicies are not served, unless they were found served before
// (a CRD deleted under a running controller is not followed). The first time, it says so.
func (r *Reconciler) markAbsent(ctx context.Context) {
	k := r.policyKind
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.state != kindUnknown {
		return
	}
	k.state = kindAbsent
	if k.warned {
		return
	}
	k.warned = true
	r.log(ctx).Info("The FleetPolicy CRD is not installed: the controller runs on the environment's settings and keeps the failure ledger and the halts in memory until the CRD appears",
		"warning", "halted rollouts and the failure ledger do not survive a restart or a failover; install the FleetPolicy CRD to keep them",
		"fleetPolicy", klog.KRef(r.namespace, v2.DefaultFleetPolicyName))
}

// markServed records that FleetPolicies are served and starts watching them. When they were
// absent before, it asks for a pass.
func (r *Reconciler) markServed(ctx context.Context) error {
	k := r.policyKind
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.state == kindServed {
		return nil
	}
	if k.watch != nil {
		if err := k.watch(); err != nil {
			return err
		}
	}
	wasAbsent := k.state == kindAbsent
	k.state = kindServed
	if wasAbsent {
		r.log(ctx).Info("The FleetPolicy CRD is installed: the controller reads the FleetPolicy and keeps its state in its status",
			"fleetPolicy", klog.KRef(r.namespace, v2.DefaultFleetPolicyName))
		select {
		case k.appeared <- event.GenericEvent{Object: &v2.FleetPolicy{}}:
		default: // a pass is already asked for
		}
	}
	return nil
}

// discoverPolicyKind asks the API server once whether it serves FleetPolicies, records the
// answer, and returns it.
func (r *Reconciler) discoverPolicyKind(ctx context.Context) (bool, error) {
	k := r.policyKind
	k.mu.Lock()
	served, discover := k.state == kindServed, k.discover
	k.mu.Unlock()
	if served || discover == nil {
		return served, nil
	}
	ok, err := discover(ctx)
	switch {
	case err != nil:
		return false, err
	case !ok:
		r.markAbsent(ctx)
		return false, nil
	}
	return true, r.markServed(ctx)
}

// pollPolicyKind asks the API server whether it serves FleetPolicies, at once and then at
// jittered intervals, until it does or ctx ends. It is a runnable of the manager, run by the
// leader only, as the passes are.
func (r *Reconciler) pollPolicyKind(ctx context.Context) error {
	if r.policyKind.discover == nil {
		return nil
	}
	for {
		served, err := r.discoverPolicyKind(ctx)
		if served && err == nil {
			return nil
		}
		if err != nil {
			r.log(ctx).Error(err, "Could not tell whether the API server serves FleetPolicies; asking again later")
		}
		t := time.NewTimer(wait.Jitter(r.policyKind.interval, 0.5))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
