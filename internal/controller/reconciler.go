package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/metrics"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// retryStale is when a pass that found the cache behind its own writes, or whose writes were
// refused as stale, runs again if no watch event comes first.
const retryStale = time.Second

// Reconciler makes the fleet-wide decision passes. Create it with NewReconciler; every request
// it gets is treated the same: one pass over the whole fleet.
type Reconciler struct {
	// Client reads from the cache and writes to the API server.
	Client client.Client
	// APIReader reads from the API server, to confirm before deleting.
	APIReader client.Reader
	// Recorder emits the Events.
	Recorder events.EventRecorder
	// Metrics receives the observations of every pass.
	Metrics *metrics.Metrics
	// Clock is the time source of the decisions.
	Clock clock.PassiveClock

	namespace, nodeName, timeZone string
	environment                   rollout.Environment
	// watchPods starts the Pod watch the first time a monitoring selector is configured.
	watchPods func() error

	mu          sync.Mutex
	podsWatched bool
	expected    map[string]written
	ledger      []rollout.VersionLedger
	lastRunEnd  time.Time
	releases    map[string]time.Time // first seen of the offered versions, as in Plan.Releases
	lastGood    *rollout.Settings
	invalidKey  string // the FleetPolicy (UID and generation) last reported invalid
	waits       map[string]rollout.WaitReason
	announced   map[string]bool
}

// NewReconciler returns a reconciler for the fleet configured by o (which must be valid).
func NewReconciler(c client.Client, apiReader client.Reader, rec events.EventRecorder, m *metrics.Metrics, o Options) *Reconciler {
	var clk clock.PassiveClock = clock.RealClock{}
	if o.Clock != nil {
		clk = o.Clock
	}
	return &Reconciler{Client: c, APIReader: apiReader, Recorder: rec, Metrics: m, Clock: clk,
		namespace: o.Namespace, nodeName: o.NodeName, timeZone: o.TimeZone, environment: o.Environment,
		expected: map[string]written{}, waits: map[string]rollout.WaitReason{}, announced: map[string]bool{}}
}

// Reconcile makes one decision pass: read the world from the cache, decide, write the specs,
// store the FleetPolicy status, emit Events, and requeue for the plan's next deadline.
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	w, err := r.readWorld(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	if r.cacheBehind(w) {
		return reconcile.Result{RequeueAfter: retryStale}, nil
	}
	if w.policy == nil {
		w.policy = r.createPolicy(ctx)
	}
	settings, settingsErr := r.settings(ctx, w.policy)
	if err := r.readPods(ctx, w, settings.PodSelector); err != nil {
		return reconcile.Result{}, err
	}
	removed, cleanupErr := r.removeOptedOut(ctx, w)
	now := r.Clock.Now()
	fleet := r.fleet(w, removed)
	resumed := r.loadLedger(ctx, w.policy, now)
	fleet.Ledger, fleet.LastRunEnd, fleet.Releases = r.ledger, r.lastRunEnd, r.releases
	plan := rollout.Decide(fleet, settings.Policy, now)
	done, applyErr := r.applyChanges(ctx, w, plan, settings)
	r.remember(done, plan)
	halts := storedHalts(plan.Halts, r.ledger)
	var statusErr error
	if w.policy != nil {
		st := fleetPolicyStatus(w.policy.Status, statusInput{generation: w.policy.Generation, ledger: r.ledger, halts: halts,
			plan: plan, nodes: len(fleet.Members), lastRunEnd: r.lastRunEnd, releases: r.releases, settingsErr: settingsErr, namespace: r.namespace})
		statusErr = r.writeStatus(ctx, w.policy, st, resumed)
	}
	r.emit(ctx, w, plan, done, halts, statusErr == nil)
	r.observe(w, plan, halts, done, now)
	r.Metrics.Pass(time.Since(start))
	return result(plan, errors.Join(cleanupErr, applyErr, statusErr))
}

// createPolicy creates the default FleetPolicy, with an empty spec (the environment's defaults),
// so that the failure ledger and the halts it keeps in status survive a restart or a failover.
// It returns the stored policy, or nil when it could not be created or read (this pass then
// keeps the ledger in memory and the next one tries again).
func (r *Reconciler) createPolicy(ctx context.Context) *v2.FleetPolicy {
	fp := &v2.FleetPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: r.namespace, Name: v2.DefaultFleetPolicyName}}
	err := r.Client.Create(ctx, fp, fieldOwner)
	if apierrors.IsAlreadyExists(err) {
		// The cache has not seen it yet: read it live, with its status.
		err = r.APIReader.Get(ctx, client.ObjectKeyFromObject(fp), fp)
	}
	if err != nil {
		r.log(ctx).Error(err, "Could not create the FleetPolicy; the failure ledger lives in memory until it exists",
			"fleetPolicy", klog.KObj(fp))
		return nil
	}
	r.log(ctx).Info("Created FleetPolicy with the environment's defaults", "fleetPolicy", klog.KObj(fp))
	return fp
}

// invalidKey identifies one version of a FleetPolicy: a deleted and recreated one is another.
func invalidKey(fp *v2.FleetPolicy) string {
	return fmt.Sprintf("%s/%d", fp.UID, fp.Generation)
}

// settings resolves the FleetPolicy; an invalid one leaves the last valid settings (or the
// environment's) in force and is reported in the status.
func (r *Reconciler) settings(ctx context.Context, fp *v2.FleetPolicy) (rollout.Settings, error) {
	s, err := Settings(fp, r.environment, r.timeZone)
	if err == nil {
		r.lastGood, r.invalidKey = &s, ""
		return s, nil
	}
	// Said once per policy object and generation: every pass meets the same error until it is
	// fixed.
	if fp == nil || invalidKey(fp) != r.invalidKey {
		r.log(ctx).Error(err, "Invalid FleetPolicy, keeping the last valid settings")
		if fp != nil {
			r.invalidKey = invalidKey(fp)
			r.Recorder.Eventf(fp, nil, corev1.EventTypeWarning, EventInvalidPolicy, "ApplyPolicy",
				"%s; the controller keeps the last valid settings", err)
		}
	}
	if r.lastGood != nil {
		return *r.lastGood, err
	}
	env, envErr := Settings(nil, r.environment, r.timeZone)
	return env, errors.Join(err, envErr)
}

// loadLedger merges the stored ledger into memory and applies a resume request. It reports
// whether the FleetPolicy asked for a resume.
func (r *Reconciler) loadLedger(ctx context.Context, fp *v2.FleetPolicy, now time.Time) bool {
	stored, lastRunEnd := rollout.LedgerFrom(fp)
	r.ledger = mergeLedgers(r.ledger, stored)
	r.releases = earliest(r.releases, rollout.ReleasesFrom(fp))
	if lastRunEnd.After(r.lastRunEnd) {
		r.lastRunEnd = lastRunEnd
	}
	if fp == nil {
		return false
	}
	version, ok := fp.Annotations[v2.ResumeAnnotation]
	if !ok {
		return false
	}
	if version != "" {
		r.ledger = resume(r.ledger, version, now)
		delete(r.announced, version)
		r.log(ctx).Info("Resumed rollout", "version", version)
	}
	return true
}

// remember adds the release failures whose spec was written to the ledger and keeps the end of
// the Oneshot run.
func (r *Reconciler) remember(done []applied, plan rollout.Plan) {
	for _, a := range done {
		if f := a.Failure; f != nil && f.Class == statemachine.ClassRelease {
			r.ledger = recordFailure(r.ledger, rollout.NodeFailure{Node: a.Node, Failure: *f})
		}
	}
	r.lastRunEnd = plan.LastRunEnd
	r.releases = plan.Releases
}

// result turns the plan and the errors of a pass into the reconcile result: refused stale
// writes are retried shortly without an error, other errors back off.
func result(plan rollout.Plan, err error) (reconcile.Result, error) {
	res := reconcile.Result{RequeueAfter: plan.RequeueAfter}
	if err == nil {
		return res, nil
	}
	if onlyStale(err) {
		if res.RequeueAfter == 0 || res.RequeueAfter > retryStale {
			res.RequeueAfter = retryStale
		}
		return res, nil
	}
	return res, err
}

// onlyStale reports whether every error joined in err is errConflict.
func onlyStale(err error) bool {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			if !onlyStale(e) {
				return false
			}
		}
		return true
	}
	return errors.Is(err, errConflict)
}

func (r *Reconciler) log(ctx context.Context) logr.Logger {
	return log.FromContext(ctx)
}
