package hostapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Refresh asks the host to look for updates and waits for the result: the returned status lists
// available_updates and chosen_update (nil when no update applies). See Run.
func (c *Client) Refresh(ctx context.Context) (Status, error) { return c.Run(ctx, CommandRefresh) }

// Prepare downloads chosen_update into the inactive partition set and waits until it is Staged.
// Check StagedVersion before activating. See Run.
func (c *Client) Prepare(ctx context.Context) (Status, error) { return c.Run(ctx, CommandPrepare) }

// Activate makes the staged set boot next and waits until the host is Ready. See Run.
func (c *Client) Activate(ctx context.Context) (Status, error) { return c.Run(ctx, CommandActivate) }

// Deactivate undoes Activate before the reboot and waits until the host is Staged again. See Run.
func (c *Client) Deactivate(ctx context.Context) (Status, error) {
	return c.Run(ctx, CommandDeactivate)
}

// Run starts the update command cmd and waits for its result, the way the host must be polled:
// it remembers the last command's timestamp, posts the command, takes 423 as "still running",
// and finishes when most_recent_command has type cmd and a new timestamp. It returns the final
// status and:
//   - a *CommandFailedError when the host ran the command and reported a failure;
//   - an error wrapping ErrNotAllowed, ErrNoUpdate or ErrNotStaged, with the status re-read,
//     when the host refused the command in its state (never retried);
//   - an error wrapping ErrDeadline when the command's deadline passed first;
//   - an error wrapping ErrUninitialized when the status vanished while waiting (a reboot);
//   - an error wrapping ErrSuperseded when another command overwrote the result;
//   - the last error when MaxErrors requests in a row failed, or ctx's error.
func (c *Client) Run(ctx context.Context, cmd CommandType) (Status, error) {
	w := &waiter{c: c, cmd: cmd, limit: c.deadline(cmd), backoff: c.opts.backoff()}
	w.deadline = c.opts.Clock.Now().Add(w.limit)
	base, err := w.readStatus(ctx)
	if err != nil {
		return Status{}, err
	}
	st, done, err := w.start(ctx, base.LastTimestamp())
	if err == nil && !done {
		st, err = w.poll(ctx, st.LastTimestamp())
	}
	if err == nil && st.MostRecentCommand.Status != CommandSuccess {
		err = commandFailed(st)
	}
	return st, err
}

func (c *Client) deadline(cmd CommandType) time.Duration {
	d := c.opts.Deadlines
	switch cmd {
	case CommandRefresh:
		return d.Refresh
	case CommandPrepare:
		return d.Prepare
	case CommandActivate:
		return d.Activate
	}
	return d.Deactivate
}

// waiter runs one command: its deadline and its count of failed requests in a row.
type waiter struct {
	c        *Client
	cmd      CommandType
	limit    time.Duration
	deadline time.Time
	backoff  wait.Backoff
	errs     int   // failed requests in a row, 423 excepted
	last     error // the most recent failure
}

// readStatus reads the status, backing off while a command runs or the request fails. A status
// that does not exist yet reads as the zero Status: no previous command.
func (w *waiter) readStatus(ctx context.Context) (Status, error) {
	for {
		st, err := w.c.Status(ctx)
		switch {
		case err == nil:
			w.errs = 0
			return st, nil
		case errors.Is(err, ErrUninitialized):
			return Status{}, nil
		}
		if err := w.retry(ctx, err); err != nil {
			return Status{}, err
		}
	}
}

// start posts the command until the host accepts it. since is the timestamp of the last command
// before this one; a status showing this command with a newer timestamp means an earlier post
// whose answer was lost did start it, and start returns that status with done set.
func (w *waiter) start(ctx context.Context, since string) (st Status, done bool, err error) {
	path := commandPath(w.cmd)
	for {
		_, err := w.c.do(ctx, http.MethodPost, path, nil)
		switch {
		case err == nil:
			return Status{MostRecentCommand: &CommandResult{Timestamp: since}}, false, nil
		case errors.Is(err, ErrNotAllowed), errors.Is(err, ErrNoUpdate), errors.Is(err, ErrNotStaged):
			// The state decides, not a retry: return what the host says it is.
			st, rerr := w.c.Status(ctx)
			if rerr != nil {
				return Status{}, false, fmt.Errorf("hostapi: %s refused: %w", w.cmd, err)
			}
			return st, false, fmt.Errorf("hostapi: %s refused in state %s: %w", w.cmd, st.State, err)
		}
		if err := w.retry(ctx, err); err != nil {
			return Status{}, false, err
		}
		st, err = w.readStatus(ctx)
		if err != nil {
			return Status{}, false, err
		}
		if r := st.MostRecentCommand; r != nil && r.Timestamp != since {
			if r.Type == w.cmd {
				return st, true, nil
			}
			since = r.Timestamp
		}
	}
}

// poll reads the status until the command started after since reports its result.
func (w *waiter) poll(ctx context.Context, since string) (Status, error) {
	for {
		if err := w.pause(ctx, w.c.opts.PollInterval); err != nil {
			return Status{}, err
		}
		st, err := w.c.Status(ctx)
		switch {
		case err == nil:
			w.errs = 0
			r := st.MostRecentCommand
			if r == nil || r.Timestamp == since {
				// The command died without writing (OOM, reboot): only the deadline ends this.
				continue
			}
			if r.Type != w.cmd {
				return st, fmt.Errorf("hostapi: %s: %s finished after it: %w", w.cmd, r.Type, ErrSuperseded)
			}
			return st, nil
		case errors.Is(err, ErrLocked):
			continue
		case errors.Is(err, ErrUninitialized):
			return Status{}, fmt.Errorf("hostapi: %s: status lost while waiting, the host rebooted: %w", w.cmd, err)
		}
		if err := w.retry(ctx, err); err != nil {
			return Status{}, err
		}
	}
}

// retry decides after a failed request: it returns err when it is final (ctx done, too many
// failures in a row), and otherwise backs off and returns nil. 423 is not a failure.
func (w *waiter) retry(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("hostapi: %s: %w", w.cmd, ctx.Err())
	}
	w.last = err
	if !errors.Is(err, ErrLocked) {
		w.errs++
		if w.errs >= w.c.opts.MaxErrors {
			return fmt.Errorf("hostapi: %s: %d failed requests in a row: %w", w.cmd, w.errs, err)
		}
	}
	return w.pause(ctx, w.backoff.Step())
}

// pause waits d, or until the deadline, ctx's end or the deadline already passed.
func (w *waiter) pause(ctx context.Context, d time.Duration) error {
	left := w.deadline.Sub(w.c.opts.Clock.Now())
	if left <= 0 {
		err := fmt.Errorf("hostapi: %s: no result within %s: %w", w.cmd, w.limit, ErrDeadline)
		if w.last != nil {
			err = fmt.Errorf("%w (last failure: %w)", err, w.last)
		}
		return err
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("hostapi: %s: %w", w.cmd, ctx.Err())
	case <-w.c.opts.Clock.After(min(d, left)):
		return nil
	}
}
