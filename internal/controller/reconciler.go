package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
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
	// policyKind follows whether the API server serves FleetPolicies, and starts their watch.
	policyKind *policyKind

	// The controller's state lives in the FleetPolicy's status: the failure ledger, the
	// releases, the end of the last run and the applied settings. A pass reads it from the
	// cache and stores it back. In memory is only what the cache or the API server cannot
	// hold yet, and what only this process knows:
	mu          sync.Mutex
	podsWatched bool
	// expected are the shadows this process wrote that the cache has not caught up with.
	expected map[string]written
	// policyWritten is the FleetPolicy this process last wrote, until the cache has it.
	policyWritten *policyWrite
	// unsaved is the status a pass computed but could not store (the write failed, the
	// FleetPolicy could not be created, or the FleetPolicy CRD is not installed); the next pass
	// starts from it and the stored status.
	unsaved *v2.FleetPolicyStatus
	// waits are the wait reasons already announced by an Event, so that each wait is announced
	// once (a new process announces each current wait once more).
	waits map[string]rollout.WaitReason
}

// NewReconciler returns a reconciler for the fleet configured by o (which must be valid).
func NewReconciler(c client.Client, apiReader client.Reader, rec events.EventRecorder, m *metrics.Metrics, o Options) *Reconciler {
	var clk clock.PassiveClock = clock.RealClock{}
	if o.Clock != nil {
		clk = o.Clock
	}
	return &Reconciler{Client: c, APIReader: apiReader, Recorder: rec, Metrics: m, Clock: clk,
		namespace: o.Namespace, nodeName: o.NodeName, timeZone: o.TimeZone, environment: o.Environment,
		policyKind: newPolicyKind(o.CRDPollInterval), expected: map[string]written{}, waits: map[string]rollout.WaitReason{}}
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
	if w.policy == nil && w.policyServed {
		w.policy = r.createPolicy(ctx)
	}
	settings, applied, settingsErr := r.settings(ctx, w.policy)
	if err := r.readPods(ctx, w, settings.PodSelector); err != nil {
		return reconcile.Result{}, err
	}
	removed, cleanupErr := r.removeOptedOut(ctx, w)
	now := r.Clock.Now()
	fleet := r.fleet(w, removed)
	base := r.baseStatus(w.policy)
	resumed := r.resume(ctx, w.policy, &base, now)
	ledger, lastRunEnd := rollout.LedgerFrom(&base)
	fleet.Ledger, fleet.LastRunEnd, fleet.Releases = ledger, lastRunEnd, rollout.ReleasesFrom(&base)
	plan := rollout.Decide(fleet, settings.Policy, now)
	done, applyErr := r.applyChanges(ctx, w, plan, settings)
	ledger = recordFailures(ledger, done)
	halts := storedHalts(plan.Halts, ledger)
	st := fleetPolicyStatus(base, statusInput{generation: policyGeneration(w.policy), ledger: ledger, halts: halts,
		plan: plan, nodes: len(fleet.Members), lastRunEnd: plan.LastRunEnd, releases: plan.Releases, applied: applied,
		controllerNode: r.nodeName, settingsErr: settingsErr, namespace: r.namespace})
	statusErr := r.storeStatus(ctx, w.policy, st, resumed)
	r.emit(ctx, w, plan, done, newHalts(base, halts), statusErr == nil)
	r.observe(w, plan, halts, done, now)
	r.Metrics.Pass(time.Since(start))
	return result(plan, errors.Join(cleanupErr, applyErr, statusErr))
}

// baseStatus is the status a pass starts from: the stored one, with what earlier passes could
// not store added (failures, releases and the run's end are unions; the rest is recomputed).
func (r *Reconciler) baseStatus(fp *v2.FleetPolicy) v2.FleetPolicyStatus {
	var stored v2.FleetPolicyStatus
	if fp != nil {
		stored = *fp.Status.DeepCopy()
	}
	if r.unsaved == nil {
		return stored
	}
	return mergeStatus(stored, *r.unsaved)
}

// storeStatus stores st in the FleetPolicy (when there is one) and acknowledges a resume. A
// status it could not store is kept for the next pass.
func (r *Reconciler) storeStatus(ctx context.Context, fp *v2.FleetPolicy, st v2.FleetPolicyStatus, resumed bool) error {
	if fp == nil {
		r.unsaved = &st
		return nil
	}
	if err := r.writeStatus(ctx, fp, st, resumed); err != nil {
		r.unsaved = &st
		return err
	}
	r.unsaved = nil
	return nil
}

func policyGeneration(fp *v2.FleetPolicy) int64 {
	if fp == nil {
		return 0
	}
	return fp.Generation
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

// settings resolves the FleetPolicy against the environment, and returns the settings to apply
// with what status.applied must say. It fails closed: a policy that does not resolve leaves the
// settings stored in status.applied in force (applied by this process or another one); with
// none stored, nothing starts. Either way the error is reported in status and an Event.
func (r *Reconciler) settings(ctx context.Context, fp *v2.FleetPolicy) (rollout.Settings, *v2.FleetPolicyApplied, error) {
	s, err := Settings(fp, r.environment, r.timeZone)
	var prev *v2.FleetPolicyApplied
	if fp != nil {
		prev = fp.Status.Applied
	} else if r.unsaved != nil {
		prev = r.unsaved.Applied
	}
	if err == nil {
		return s, appliedFrom(s, policyGeneration(fp), prev, r.Clock.Now()), nil
	}
	if prev != nil {
		stored, storedErr := rollout.FromApplied(prev)
		if storedErr == nil {
			err = fmt.Errorf("%w; the controller keeps applying the settings of generation %d (status.applied)", err, prev.Generation)
			return stored, prev, r.reportInvalid(ctx, fp, err)
		}
		err = errors.Join(err, fmt.Errorf("the applied settings stored in status do not resolve: %w", storedErr))
	}
	// Nothing valid to fall back to: the environment's deadlines and monitoring carry the nodes
	// in flight through, and no node starts.
	var envErr error
	s, envErr = Settings(nil, r.environment, r.timeZone)
	if envErr != nil {
		s = rollout.Settings{Policy: rollout.DefaultPolicy()}
	}
	s.Policy.Unresolved = true
	err = fmt.Errorf("%w; no valid policy was ever applied, so no update starts until it is fixed", err)
	return s, nil, r.reportInvalid(ctx, fp, err)
}

// reportInvalid logs err and records it in an Event on fp, once per generation, and returns it.
func (r *Reconciler) reportInvalid(ctx context.Context, fp *v2.FleetPolicy, err error) error {
	if fp != nil && !invalidReported(fp) {
		r.log(ctx).Error(err, "Invalid FleetPolicy", "fleetPolicy", klog.KObj(fp), "generation", fp.Generation)
		r.Recorder.Eventf(fp, nil, corev1.EventTypeWarning, EventInvalidPolicy, "ApplyPolicy", "%s", err)
	}
	return err
}

// invalidReported reports whether the stored status already says that this generation of fp is
// invalid: each invalid generation is logged and announced once, by whichever replica leads.
func invalidReported(fp *v2.FleetPolicy) bool {
	c := meta.FindStatusCondition(fp.Status.Conditions, ConditionReady)
	return c != nil && c.Status == metav1.ConditionFalse && c.Reason == reasonInvalidPolicy && c.ObservedGeneration == fp.Generation
}

// appliedFrom returns what status.applied says of the valid settings s of generation; the time
// is kept while the resolved spec stays the same.
func appliedFrom(s rollout.Settings, generation int64, prev *v2.FleetPolicyApplied, now time.Time) *v2.FleetPolicyApplied {
	a := &v2.FleetPolicyApplied{Generation: generation, Time: metav1.NewTime(now.Truncate(time.Second)), Spec: s.Resolved()}
	if prev != nil && equality.Semantic.DeepEqual(prev.Spec, a.Spec) {
		a.Time = prev.Time
	}
	return a
}

// resume applies the FleetPolicy's resume request to the ledger of base. It reports whether
// the FleetPolicy asked for one (the annotation is then removed once the status is stored).
func (r *Reconciler) resume(ctx context.Context, fp *v2.FleetPolicy, base *v2.FleetPolicyStatus, now time.Time) bool {
	if fp == nil {
		return false
	}
	version, ok := fp.Annotations[v2.ResumeAnnotation]
	if !ok {
		return false
	}
	if version != "" {
		at := metav1.NewTime(now.Truncate(time.Second))
		i := slices.IndexFunc(base.Versions, func(v v2.FleetPolicyVersionStatus) bool { return v.Version == version })
		if i < 0 {
			base.Versions = append(base.Versions, v2.FleetPolicyVersionStatus{Version: version})
			i = len(base.Versions) - 1
		}
		// A version resumed and halted again is announced again.
		base.Versions[i].ResumedAt, base.Versions[i].Halted = &at, false
		r.log(ctx).Info("Resumed rollout", "version", version)
	}
	return true
}

// recordFailures adds the release failures whose spec was written to the ledger.
func recordFailures(ledger []rollout.VersionLedger, done []applied) []rollout.VersionLedger {
	for _, a := range done {
		if f := a.Failure; f != nil && f.Class == statemachine.ClassRelease {
			ledger = recordFailure(ledger, rollout.NodeFailure{Node: a.Node, Failure: *f})
		}
	}
	return ledger
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
