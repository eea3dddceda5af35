package hostapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// DefaultSocketPath is where Bottlerocket serves its API.
const DefaultSocketPath = "/run/api.sock"

// maxBody bounds what the client reads of any answer; real documents are a few hundred bytes.
const maxBody = 1 << 20

// Clock is the time source of a Client. k8s.io/utils/clock.RealClock and its testing FakeClock
// satisfy it.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Deadlines bounds how long each update command may take, from its first request to its result.
type Deadlines struct {
	Refresh, Prepare, Activate, Deactivate time.Duration
}

// Options configures a Client. A zero field takes the default given on it.
type Options struct {
	// SocketPath is the host API's Unix socket; default DefaultSocketPath.
	SocketPath string
	// RequestTimeout bounds every single request; default 10s.
	RequestTimeout time.Duration
	// PollInterval is the pause between status reads while a command runs; default 1s.
	PollInterval time.Duration
	// RetryBase and RetryMax shape the jittered exponential backoff after a failed request:
	// attempt n waits between half and all of min(RetryBase*2^n, RetryMax); defaults 1s and 30s.
	RetryBase, RetryMax time.Duration
	// MaxErrors is how many failed requests in a row (423 excepted) end a command; default 5.
	MaxErrors int
	// Deadlines per command; defaults refresh 2m, prepare 30m, activate and deactivate 1m.
	Deadlines Deadlines
	// Clock drives waits and deadlines; default the real clock.
	Clock Clock
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.SocketPath == "" {
		o.SocketPath = DefaultSocketPath
	}
	def(&o.RequestTimeout, 10*time.Second)
	def(&o.PollInterval, time.Second)
	def(&o.RetryBase, time.Second)
	def(&o.RetryMax, 30*time.Second)
	def(&o.Deadlines.Refresh, 2*time.Minute)
	def(&o.Deadlines.Prepare, 30*time.Minute)
	def(&o.Deadlines.Activate, time.Minute)
	def(&o.Deadlines.Deactivate, time.Minute)
	if o.MaxErrors <= 0 {
		o.MaxErrors = 5
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	return o
}

// backoff is the retry policy of one command: attempt n waits between half and all of
// min(RetryBase*2^n, RetryMax), so that hosts retrying together spread out.
func (o Options) backoff() wait.Backoff {
	return wait.Backoff{Duration: o.RetryBase / 2, Factor: 2, Jitter: 1, Steps: math.MaxInt32, Cap: o.RetryMax / 2}
}

// Client talks to one host API. It is safe for concurrent use, but the host runs one update
// command at a time: concurrent commands wait for each other through the update lock.
type Client struct {
	opts Options
	http *http.Client
}

// New returns a Client for the socket in opts.
func New(opts Options) *Client {
	opts = opts.withDefaults()
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", opts.SocketPath)
		},
		// A fresh connection per request: a kept-alive connection the host closed while
		// rebooting would make a written request look lost.
		DisableKeepAlives: true,
	}
	return &Client{opts: opts, http: &http.Client{Transport: tr}}
}

// SocketPath returns the socket the client talks to.
func (c *Client) SocketPath() string { return c.opts.SocketPath }

// result is one HTTP exchange.
type result struct {
	code  int
	body  []byte
	wrote bool // the whole request reached the host
}

// do sends one request with the request timeout. A transport failure wraps ErrUnreachable; a
// status other than 200 or 204 is an *APIError.
func (c *Client) do(ctx context.Context, method, path string, body []byte) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) { wrote.Store(i.Err == nil) },
	})
	req, err := http.NewRequestWithContext(ctx, method, "http://localhost"+path, bytes.NewReader(body))
	if err != nil {
		return result{}, fmt.Errorf("hostapi: %s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return result{wrote: wrote.Load()}, fmt.Errorf("%w: %s %s: %w", ErrUnreachable, method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	res := result{code: resp.StatusCode, body: data, wrote: true}
	if err != nil {
		return res, fmt.Errorf("%w: %s %s: read answer: %w", ErrUnreachable, method, path, err)
	}
	if res.code != http.StatusOK && res.code != http.StatusNoContent {
		return res, &APIError{Method: method, Path: path, StatusCode: res.code, Body: string(data), kind: kindOf(path, res.code)}
	}
	return res, nil
}

// kindOf maps a status code to the sentinel it means on path (docs/hostapi.md, "Error bodies").
func kindOf(path string, code int) error {
	switch code {
	case http.StatusLocked:
		return ErrLocked
	case http.StatusConflict:
		return ErrNotAllowed
	case http.StatusNotFound:
		switch path {
		case pathStatus:
			return ErrUninitialized
		case commandPath(CommandPrepare):
			return ErrNoUpdate
		case commandPath(CommandActivate), commandPath(CommandDeactivate):
			return ErrNotStaged
		}
	}
	return nil
}

const (
	pathOS     = "/os"
	pathStatus = "/updates/status"
	pathReboot = "/actions/reboot"
)

// commandPath is the action endpoint of an update command.
func commandPath(cmd CommandType) string {
	if cmd == CommandRefresh {
		return "/actions/refresh-updates"
	}
	return "/actions/" + string(cmd) + "-update"
}

// OS returns the running OS. It works before the update status exists.
func (c *Client) OS(ctx context.Context) (OSInfo, error) {
	res, err := c.do(ctx, http.MethodGet, pathOS, nil)
	if err != nil {
		return OSInfo{}, err
	}
	return DecodeOS(res.body)
}

// Status reads the update status once. It fails with ErrLocked while a command runs and with
// ErrUninitialized when no command ran since boot.
func (c *Client) Status(ctx context.Context) (Status, error) {
	res, err := c.do(ctx, http.MethodGet, pathStatus, nil)
	if err != nil {
		return Status{}, err
	}
	return DecodeStatus(res.body)
}

// Reboot asks the host to reboot now, whatever its update state: check that the state is Ready
// first. It returns nil once the reboot is under way, including when the connection dropped
// after the request was written, which is how a host going down often answers. It is never
// retried, so that one call reboots at most once.
func (c *Client) Reboot(ctx context.Context) error {
	res, err := c.do(ctx, http.MethodPost, pathReboot, nil)
	switch {
	case err == nil, res.code == http.StatusNoContent:
		return nil
	case res.code == 0 && res.wrote && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded):
		// EOF or reset after the request left: the host is going down.
		return nil
	}
	return err
}
