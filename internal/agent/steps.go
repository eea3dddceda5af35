package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// serverAttempts bounds the tries of one API-server call, as upstream's five retries.
const serverAttempts = 6

// pinRenderWait is how long the agent waits before refreshing a second time when the host did
// not choose the version it pinned: the settings render can lag the commit by a second or two.
const pinRenderWait = 2 * time.Second

// run runs step for observation o of shadow brs.
func (a *Agent) run(ctx context.Context, step Step, brs *v2.BottlerocketShadow, o Observation) error {
	want := deref(o.Spec.Version)
	switch step {
	case StepStage:
		return a.stage(ctx, want, o.Host.Running)
	case StepActivate:
		return a.hostCommand(ctx, "activate", a.cfg.Host.Activate)
	case StepDeactivate:
		return a.hostCommand(ctx, "deactivate", a.cfg.Host.Deactivate)
	case StepDrainAndReboot:
		return a.drainAndReboot(ctx, o, a.drainDeadline(brs))
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
		// The settings render may lag the commit by a moment (docs/hostapi.md, "Settings render
		// lag"): a first refresh that does not choose the pinned version gets a second one.
		for attempt := 0; attempt < 2 && st.ChosenVersion() != want; attempt++ {
			if attempt > 0 {
				if err := a.sleep(ctx, pinRenderWait); err != nil {
					return err
				}
			}
			if st, err = a.cfg.Host.Refresh(ctx); err != nil {
				return fmt.Errorf("refresh updates with version %s pinned: %w", want, err)
			}
		}
		if st.ChosenVersion() != want {
			// Listed but not chosen: the host still applies its old settings (a slow render),
			// which is the node's trouble, not the release's; missing from the list, the
			// version does not exist for this host (pulled, or a cap naming none).
			if slices.Contains(st.AvailableUpdates, want) {
				return &Failure{Reason: statemachine.ReasonHostAPIError, Message: fmt.Sprintf(
					"the host lists %s but did not choose it with updates.version-lock pinned (it chose %q)", want, st.ChosenVersion())}
			}
			return &Failure{Reason: statemachine.ReasonVersionNotOffered, Message: fmt.Sprintf(
				"the host does not offer %s even with updates.version-lock pinned (it chose %q; available %v)", want, st.ChosenVersion(), st.AvailableUpdates)}
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
		return &Failure{Reason: statemachine.ReasonHostAPIError, Message: fmt.Sprintf("the host staged %q instead of %s", got, want)}
	}
	return nil
}

// drainAndReboot takes the node out of load balancers (when configured), cordons and drains it
// through the API server until deadline, and reboots the host into the activated update.
func (a *Agent) drainAndReboot(ctx context.Context, o Observation, deadline time.Time) error {
	if a.cfg.ExcludeFromLBWait > 0 {
		if err := a.callServer(ctx, "exclude from load balancers", a.cfg.Server.ExcludeFromLB); err != nil {
			return err
		}
		a.log.Info("Excluded Node from load balancers; waiting", "wait", a.cfg.ExcludeFromLBWait)
		if err := a.sleep(ctx, a.cfg.ExcludeFromLBWait); err != nil {
			return err
		}
	}
	if err := a.drain(ctx, deadline); err != nil {
		return err
	}
	want := deref(o.Spec.Version)
	st, err := a.cfg.Host.Status(ctx)
	if err != nil {
		return &Failure{Reason: statemachine.ReasonHostAPIError, Message: fmt.Sprintf("read host update status before the reboot: %v", err)}
	}
	if st.State != hostapi.StateReady || st.StagedVersion() != want {
		return &Failure{Reason: statemachine.ReasonHostAPIError, Message: fmt.Sprintf(
			"the host is not ready to boot %s before the reboot: update state %s, staged %q", want, st.State, st.StagedVersion())}
	}
	a.log.Info("Rebooting host", "version", want)
	if err := a.cfg.Host.Reboot(ctx); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return &Failure{Reason: statemachine.ReasonHostAPIError, Message: fmt.Sprintf("reboot: %v", err)}
	}
	return a.waitRebooted(ctx, want)
}

// drainDeadline is the deadline of the drain for brs: the controller's drain timeout, or the
// agent's own, counted from the spec's transition so that a restarted agent keeps it.
func (a *Agent) drainDeadline(brs *v2.BottlerocketShadow) time.Time {
	timeout, err := DrainTimeout(brs.Annotations, a.cfg.DrainTimeout)
	if err != nil {
		a.log.Error(err, "Ignoring the controller's drain timeout", "shadow", brs.Name)
	}
	return DrainDeadline(brs.Spec, a.cfg.Clock.Now(), a.cfg.ExcludeFromLBWait, timeout)
}

// drain cordons and drains the node through the API server, which runs one bounded round of
// evictions per request: it asks again until the node is drained or the deadline passed, and
// then reports the server's verdict, naming the pods left, as a DrainTimeout failure. The
// deadline is the earlier of the agent's and the one the server holds the drain to.
func (a *Agent) drain(ctx context.Context, deadline time.Time) error {
	a.log.Info("Cordoning and draining Node", "deadline", deadline)
	backoff := a.backoff()
	verdictAsked := false
	for {
		held, err := a.cfg.Server.CordonAndDrain(ctx, deadline)
		if err == nil {
			a.log.Info("Drained Node")
			return nil
		}
		if !held.IsZero() && held.Before(deadline) {
			a.log.Info("The API server holds the drain to an earlier deadline", "deadline", held)
			deadline = held
		}
		now := a.cfg.Clock.Now()
		switch {
		case ctx.Err() != nil:
			return context.Cause(ctx)
		case !now.Before(deadline) && errors.Is(err, agentapi.ErrNotDrained) && !verdictAsked:
			// The last round ended just before the deadline (or the server's deadline, sent to
			// the second, is a little earlier than ours): a request past it gets the verdict.
			verdictAsked = true
			continue
		case !now.Before(deadline):
			return &Failure{Reason: statemachine.ReasonDrainTimeout, Message: fmt.Sprintf("the drain did not finish by %s: %v", deadline.UTC().Format(time.RFC3339), err)}
		case !retriable(err):
			return err
		}
		// A round that ended with pods left is asked again soon; failures (a replica going
		// away, kube-apiserver in trouble) back off further each time.
		if errors.Is(err, agentapi.ErrNotDrained) {
			backoff = a.backoff()
		}
		pause := min(backoff.Step(), deadline.Sub(now))
		a.log.V(1).Info("Node not drained yet; asking again", "after", pause, "reason", err.Error())
		if err := a.sleep(ctx, pause); err != nil {
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
			return &Failure{Reason: statemachine.ReasonHostAPIError, Message: fmt.Sprintf("the host did not reboot within %s of the request", a.cfg.RebootTimeout)}
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
	backoff := a.backoff()
	for attempt := 1; ; attempt++ {
		err := call(ctx)
		if err == nil || !retriable(err) || attempt >= serverAttempts || ctx.Err() != nil {
			return err
		}
		pause := backoff.Step()
		a.log.V(1).Info("API server call failed; retrying", "call", what, "after", pause, "reason", err.Error())
		if err := a.sleep(ctx, pause); err != nil {
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
	reason := statemachine.ReasonAgentError
	switch step {
	case StepStage, StepActivate, StepDeactivate:
		reason = statemachine.ReasonHostAPIError
	}
	return &Failure{Reason: reason, Message: err.Error()}
}
