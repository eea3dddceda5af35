package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
)

// maxSteps bounds the steps of one pass; an update needs at most four in a row.
const maxSteps = 8

// cacheWait bounds the wait for the watch to show the agent's own writes.
const cacheWait = 30 * time.Second

// pass reads the world, runs steps until Decide has nothing left, and reports the status. An
// error means nothing was reported and the pass should be retried.
func (a *Agent) pass(ctx context.Context) error {
	a.lastSpec = nil
	var node corev1.Node
	if err := a.cache.Get(ctx, client.ObjectKey{Name: a.cfg.NodeName}, &node); err != nil {
		return fmt.Errorf("read Node %s: %w", a.cfg.NodeName, err)
	}
	a.cfg.Server.NodeUID = string(node.UID)
	if !a.restored {
		if err := a.restoreSettings(ctx); err != nil {
			return err
		}
		a.restored = true
	}
	brs, err := a.shadow(ctx)
	if err != nil {
		return err
	}
	a.lastSpec = &brs.Spec
	passCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	a.setPass(&brs.Spec, cancel)
	defer a.setPass(nil, nil)
	// The spec may have changed between the read and setPass.
	if err := a.shadowUnchanged(ctx, brs); err != nil {
		return err
	}
	return a.steps(passCtx, brs)
}

// steps runs Decide's steps on brs until one reports or fails.
func (a *Agent) steps(ctx context.Context, brs *v2.BottlerocketShadow) error {
	for range maxSteps {
		host, err := a.observeHost(ctx)
		if err != nil {
			return err
		}
		o := Observation{Spec: brs.Spec, Status: brs.Status, Host: host}
		d := Decide(o)
		log := a.log.WithValues("shadow", brs.Name, "toState", brs.Spec.State, "fromState", currentState(brs.Status),
			"version", host.Running, "targetVersion", deref(brs.Spec.Version))
		if d.Step != StepNone || d.Failure != nil {
			log.Info(d.Message, "step", d.Step)
		} else {
			log.V(1).Info(d.Message)
		}
		if d.Failure != nil {
			return a.reportFailure(ctx, brs, host, d.Failure)
		}
		if d.Step != StepNone {
			if err := a.run(ctx, d.Step, brs, o); err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("%s: %w", d.Step, context.Cause(ctx))
				}
				log.Error(err, "Step failed", "step", d.Step)
				return a.reportFailure(ctx, brs, host, asFailure(d.Step, err))
			}
		}
		if d.Done() {
			state := d.Report
			if state == "" {
				state = currentState(brs.Status)
			}
			if state == "" {
				state = v2.StateIdle
			}
			// Re-read the host: the step may have changed its versions.
			if d.Step != StepNone {
				if host, err = a.observeHost(ctx); err != nil {
					return err
				}
			}
			return a.report(ctx, brs, ReachedStatus(brs, state, host.Running, a.target(brs.Status, host.Running)))
		}
	}
	return fmt.Errorf("agent: no stable decision after %d steps", maxSteps)
}

// shadow returns the node's shadow, creating it through the API server when missing.
func (a *Agent) shadow(ctx context.Context) (*v2.BottlerocketShadow, error) {
	key := client.ObjectKey{Namespace: a.cfg.Namespace, Name: v2.ShadowName(a.cfg.NodeName)}
	var brs v2.BottlerocketShadow
	err := a.cache.Get(ctx, key, &brs)
	if err == nil {
		return &brs, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("read shadow %s: %w", key.Name, err)
	}
	a.log.Info("Creating shadow", "shadow", key.Name)
	if err := a.callServer(ctx, "create shadow", func(ctx context.Context) error {
		_, err := a.cfg.Server.CreateShadow(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	err = a.waitCache(ctx, func() bool { return a.cache.Get(ctx, key, &brs) == nil })
	if err != nil {
		return nil, fmt.Errorf("created shadow %s did not show up: %w", key.Name, err)
	}
	return &brs, nil
}

// shadowUnchanged fails with errSpecChanged when the cached shadow's spec is no longer brs's.
func (a *Agent) shadowUnchanged(ctx context.Context, brs *v2.BottlerocketShadow) error {
	var now v2.BottlerocketShadow
	if err := a.cache.Get(ctx, client.ObjectKeyFromObject(brs), &now); err != nil {
		return fmt.Errorf("read shadow %s: %w", brs.Name, err)
	}
	if now.ResourceVersion != brs.ResourceVersion {
		return errSpecChanged
	}
	return nil
}

// observeHost reads the running version and the update state, refreshing the host's updates
// when RefreshInterval passed or the running version changed.
func (a *Agent) observeHost(ctx context.Context) (HostView, error) {
	os, err := a.cfg.Host.OS(ctx)
	if err != nil {
		return HostView{}, fmt.Errorf("read host OS: %w", err)
	}
	v := HostView{Running: os.VersionID}
	now := a.cfg.Clock.Now()
	if a.refreshedFor != v.Running || now.Sub(a.refreshedAt) >= a.cfg.RefreshInterval {
		st, err := a.cfg.Host.Refresh(ctx)
		if err != nil {
			// As upstream: keep the last target; the host is asked again next time.
			a.log.Error(err, "Refreshing host updates failed")
		} else {
			a.noteRefresh(st, v.Running)
		}
	}
	st, err := a.cfg.Host.Status(ctx)
	switch {
	case errors.Is(err, hostapi.ErrUninitialized):
		return v, nil
	case err != nil:
		return HostView{}, fmt.Errorf("read host update status: %w", err)
	}
	v.State, v.Staged = st.State, st.StagedVersion()
	return v, nil
}

// noteRefresh remembers the choice of a successful refresh on a host running running.
func (a *Agent) noteRefresh(st hostapi.Status, running string) {
	a.refreshedAt, a.refreshedFor, a.chosen = a.cfg.Clock.Now(), running, st.ChosenVersion()
}

// target is the target_version to report: from the last refresh of this version, else the one
// reported before, else the running version.
func (a *Agent) target(prev *v2.BottlerocketShadowStatus, running string) string {
	switch {
	case a.refreshedFor == running && !a.refreshedAt.IsZero():
		return TargetVersion(a.chosen, running)
	case prev != nil && prev.TargetVersion != "":
		return prev.TargetVersion
	}
	return running
}

// reportFailure reports f as ErrorReset.
func (a *Agent) reportFailure(ctx context.Context, brs *v2.BottlerocketShadow, host HostView, f *Failure) error {
	a.log.Info("Reporting failure", "shadow", brs.Name, "reason", f.Reason, "message", f.Message)
	// Report even if the pass was cancelled: the failure happened.
	ctx = context.WithoutCancel(ctx)
	return a.report(ctx, brs, FailedStatus(brs.Status, f, host.Running, a.target(brs.Status, host.Running), a.cfg.Clock.Now()))
}

// report writes status when it differs from the shadow's and waits until the watch shows it, so
// that the next pass decides on it.
func (a *Agent) report(ctx context.Context, brs *v2.BottlerocketShadow, status *v2.BottlerocketShadowStatus) error {
	if sameStatus(brs.Status, status) {
		return nil
	}
	if err := a.callServer(ctx, "update status", func(ctx context.Context) error {
		return a.cfg.Server.UpdateStatus(ctx, status)
	}); err != nil {
		return err
	}
	a.log.Info("Reported status", "shadow", brs.Name, "fromState", currentState(brs.Status), "toState", status.CurrentState,
		"version", status.CurrentVersion, "targetVersion", status.TargetVersion, "crashCount", status.CrashCount)
	key := client.ObjectKeyFromObject(brs)
	err := a.waitCache(ctx, func() bool {
		var now v2.BottlerocketShadow
		return a.cache.Get(ctx, key, &now) == nil && sameStatus(now.Status, status)
	})
	if err != nil {
		return fmt.Errorf("reported status of %s did not show up: %w", brs.Name, err)
	}
	return nil
}

// waitCache waits until cond holds, checking on every watch event, for at most cacheWait.
func (a *Agent) waitCache(ctx context.Context, cond func() bool) error {
	t := a.cfg.Clock.NewTimer(cacheWait)
	defer t.Stop()
	for {
		changed := a.changedCh()
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C():
			return fmt.Errorf("not within %s", cacheWait)
		case <-changed:
		}
	}
}
