package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
)

// serverAttempts bounds the tries of one API-server call, as upstream's five retries.
const serverAttempts = 6

// run runs step for observation o.
func (a *Agent) run(ctx context.Context, step Step, o Observation) error {
	want := deref(o.Spec.Version)
	switch step {
	case StepStage:
		return a.stage(ctx, want, o.Host.Running)
	case StepActivate:
		return a.hostCommand(ctx, "activate", a.cfg.Host.Activate)
	case StepDeactivate:
		return a.hostCommand(ctx, "deactivate", a.cfg.Host.Deactivate)
	case StepDrainAndReboot:
		return a.drainAndReboot(ctx, o)
	case StepRecover:
		return a.recover(ctx)
	}
	return fmt.Errorf("agent: unknown step %q", step)
}

func (a *Agent) hostCommand(ctx context.Context, what string, cmd func(context.Context) (hostapi.Status, error)) error {
	if _, err := cmd(ctx); err != nil {
		return fmt.Errorf("%s the update: %w", what, err)
	}
	return nil
}

// stage makes the host offer want, prepares it and checks that it is what got staged. When the
// host chooses another version it pins updates.version-lock to want for the refresh and the
// prepare, keeping the previous settings in RestoreTransaction, committed right after.
func (a *Agent) stage(ctx context.Context, want, running string) error {
	st, err := a.cfg.Host.Refresh(ctx)
	if err != nil {
		return fmt.Errorf("refresh updates: %w", err)
	}
	if st.ChosenVersion() != want {
		a.log.Info("Pinning the host's update version", "version", want, "chosen", st.ChosenVersion())
		if err := a.pin(ctx, want); err != nil {
			return err
		}
		// Restore even when ctx ends: the pinned lock must not outlive this step.
		defer func() { _ = a.restoreSettings(context.WithoutCancel(ctx)) }()
		if st, err = a.cfg.Host.Refresh(ctx); err != nil {
			return fmt.Errorf("refresh updates with version %s pinned: %w", want, err)
		}
		if st.ChosenVersion() != want {
			return &Failure{Reason: ReasonHostAPIError, Message: fmt.Sprintf(
				"the host does not offer %s even with updates.version-lock pinned (it chose %q)", want, st.ChosenVersion())}
		}
	}
	a.noteRefresh(st, running)
	st, err = a.cfg.Host.Prepare(ctx)
	if err != nil {
		return fmt.Errorf("prepare the update to %s: %w", want, err)
	}
	if err := a.restoreSettings(ctx); err != nil {
		return err
	}
	if got := st.StagedVersion(); got != want {
		return &Failure{Reason: ReasonHostAPIError, Message: fmt.Sprintf("the host staged %q instead of %s", got, want)}
	}
	return nil
}

// pin sets updates.version-lock to want (and ignore-waves, since the controller chose the
// version), first saving the current settings in RestoreTransaction unless a pin is already
// pending restoration there.
func (a *Agent) pin(ctx context.Context, want string) error {
	pending, err := a.tx.pending(ctx, RestoreTransaction)
	if err != nil {
		return fmt.Errorf("pin version %s: %w", want, err)
	}
	if !pending {
		prev, err := a.cfg.Host.UpdateSettings(ctx)
		if err != nil {
			return fmt.Errorf("pin version %s: %w", want, err)
		}
		if err := a.tx.stage(ctx, RestoreTransaction, prev); err != nil {
			return fmt.Errorf("pin version %s: save settings: %w", want, err)
		}
	}
	if err := a.cfg.Host.SetUpdateSettings(ctx, hostapi.UpdateSettings{VersionLock: want, IgnoreWaves: true}); err != nil {
		return fmt.Errorf("pin version %s: %w", want, err)
	}
	return nil
}

// restoreSettings commits RestoreTransaction if anything is pending in it.
func (a *Agent) restoreSettings(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	pending, err := a.tx.pending(ctx, RestoreTransaction)
	if err != nil {
		return fmt.Errorf("restore update settings: %w", err)
	}
	if !pending {
		return nil
	}
	if err := a.tx.commit(ctx, RestoreTransaction); err != nil {
		return fmt.Errorf("restore update settings: %w", err)
	}
	a.log.Info("Restored the host's update settings")
	return nil
}

// drainAndReboot takes the node out of load balancers (when configured), cordons and drains it
// through the API server, and reboots the host into the activated update.
func (a *Agent) drainAndReboot(ctx context.Context, o Observation) error {
	if a.cfg.ExcludeFromLBWait > 0 {
		if err := a.callServer(ctx, "exclude from load balancers", a.cfg.Server.ExcludeFromLB); err != nil {
			return err
		}
		a.log.Info("Excluded Node from load balancers; waiting", "wait", a.cfg.ExcludeFromLBWait)
		if err := a.sleep(ctx, a.cfg.ExcludeFromLBWait); err != nil {
			return err
		}
	}
	if err := a.drain(ctx, a.drainDeadline(o)); err != nil {
		return err
	}
	want := deref(o.Spec.Version)
	st, err := a.cfg.Host.Status(ctx)
	if err != nil {
		return &Failure{Reason: ReasonHostAPIError, Message: fmt.Sprintf("read host update status before the reboot: %v", err)}
	}
	if st.State != hostapi.StateReady || st.StagedVersion() != want {
		return &Failure{Reason: ReasonHostAPIError, Message: fmt.Sprintf(
			"the host is not ready to boot %s before the reboot: update state %s, staged %q", want, st.State, st.StagedVersion())}
	}
	a.log.Info("Rebooting host", "version", want)
	if err := a.cfg.Host.Reboot(ctx); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return &Failure{Reason: ReasonHostAPIError, Message: fmt.Sprintf("reboot: %v", err)}
	}
	return a.waitRebooted(ctx, want)
}

// drainDeadline counts the drain timeout (the controller's when it set one on the shadow, else
// the agent's) from the spec's transition, so that a restarted agent keeps the same deadline.
func (a *Agent) drainDeadline(o Observation) time.Time {
	start := a.cfg.Clock.Now()
	if ts := o.Spec.StateTransitionTimestamp; ts != nil && ts.Time.Before(start) {
		start = ts.Time
	}
	timeout := a.cfg.DrainTimeout
	if o.DrainTimeout > 0 {
		timeout = o.DrainTimeout
	}
	return start.Add(a.cfg.ExcludeFromLBWait + timeout)
}

// drain cordons and drains the node through the API server until the drain finishes or its
// deadline passes.
func (a *Agent) drain(ctx context.Context, deadline time.Time) error {
	a.log.Info("Cordoning and draining Node", "deadline", deadline)
	failures := 0
	for {
		err := a.cfg.Server.CordonAndDrain(ctx, deadline)
		if err == nil {
			a.log.Info("Drained Node")
			return nil
		}
		now := a.cfg.Clock.Now()
		switch {
		case ctx.Err() != nil:
			return context.Cause(ctx)
		case !now.Before(deadline):
			return &Failure{Reason: ReasonDrainTimeout, Message: fmt.Sprintf("the drain did not finish by %s: %v", deadline.UTC().Format(time.RFC3339), err)}
		case !errors.Is(err, agentapi.ErrDrainInProgress) && !retriable(err):
			return err
		}
		// The server holds each request while it drains, so "in progress" is asked again
		// soon; other failures (a replica going away, a failed drain) back off.
		if errors.Is(err, agentapi.ErrDrainInProgress) {
			failures = 0
		} else {
			failures++
		}
		a.log.V(1).Info("Drain not finished", "reason", err.Error())
		wait := min(hostapi.Backoff(failures, a.cfg.RetryBase, a.cfg.RetryMax, rand.Float64()), deadline.Sub(now))
		if err := a.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// waitRebooted waits until the host shows it went down: its API unreachable or its update status
// no longer the activated update (a reboot forgets it).
func (a *Agent) waitRebooted(ctx context.Context, want string) error {
	deadline := a.cfg.Clock.Now().Add(a.cfg.RebootTimeout)
	for {
		st, err := a.cfg.Host.Status(ctx)
		stillUp := errors.Is(err, hostapi.ErrLocked) ||
			err == nil && st.State == hostapi.StateReady && st.StagedVersion() == want
		if !stillUp {
			a.log.Info("Host is rebooting")
			return nil
		}
		if !a.cfg.Clock.Now().Before(deadline) {
			return &Failure{Reason: ReasonHostAPIError, Message: fmt.Sprintf("the host did not reboot within %s of the request", a.cfg.RebootTimeout)}
		}
		if err := a.sleep(ctx, a.cfg.PollInterval); err != nil {
			return err
		}
	}
}

// recover undoes, through the API server, the load-balancer exclusion (when configured) and the
// cordon; the server undoes only what Brupop did.
func (a *Agent) recover(ctx context.Context) error {
	if a.cfg.ExcludeFromLBWait > 0 {
		if err := a.callServer(ctx, "remove exclusion from load balancers", a.cfg.Server.RemoveExclusionFromLB); err != nil {
			return err
		}
	}
	return a.callServer(ctx, "uncordon", a.cfg.Server.Uncordon)
}

// callServer calls the API server, retrying transport errors and 5xx answers with jittered
// backoff.
func (a *Agent) callServer(ctx context.Context, what string, call func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		err := call(ctx)
		if err == nil || !retriable(err) || attempt+1 >= serverAttempts || ctx.Err() != nil {
			return err
		}
		wait := hostapi.Backoff(attempt, a.cfg.RetryBase, a.cfg.RetryMax, rand.Float64())
		a.log.V(1).Info("API server call failed; retrying", "call", what, "after", wait, "reason", err.Error())
		if err := a.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// retriable reports whether an API-server error may pass on a retry: no answer, or a 5xx.
func retriable(err error) bool {
	var se *agentapi.StatusError
	if errors.As(err, &se) {
		return se.Code >= http.StatusInternalServerError || se.Code == http.StatusTooManyRequests
	}
	return true
}

// asFailure turns the error of step into the failure to report.
func asFailure(step Step, err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	reason := ReasonAgentError
	switch step {
	case StepStage, StepActivate, StepDeactivate:
		reason = ReasonHostAPIError
	}
	return &Failure{Reason: reason, Message: err.Error()}
}
