package agentapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// ErrNotDrained is wrapped by the error of CordonAndDrain when the server answered 503: its drain
// round ended, or stopped, with pods still on the node before the deadline. Ask again.
var ErrNotDrained = errors.New("agentapi: node not drained yet")

// StatusError is a non-2xx answer of the API server.
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// Message is the server's one-line reason.
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("agentapi: server answered %d: %s", e.Code, e.Message)
}

// Client calls the API server on behalf of one node's agent. Its methods are safe for concurrent
// use; set the fields before the first call and do not change them during calls.
type Client struct {
	// BaseURL is the server's https URL, e.g. https://brupop-apiserver.ns.svc.cluster.local:443.
	BaseURL string
	// NodeName and NodeUID identify the agent's node.
	NodeName, NodeUID string
	// TokenPath is re-read on every request, as the kubelet rotates the token.
	TokenPath string
	// CAPath is the CA bundle the server's certificate must chain to; re-read when it changes.
	CAPath string
	// Timeout bounds one request; zero means 30 s. Drains use DrainRequestTimeout.
	Timeout time.Duration
	// DrainRequestTimeout bounds one cordon-and-drain request, which runs one drain round on the
	// server (5 minutes at most by default); zero means 6 minutes.
	DrainRequestTimeout time.Duration
	// HTTPClient, when set, is used as is (tests); otherwise one is built from CAPath.
	HTTPClient *http.Client

	mu     sync.Mutex   // guards ca and client
	ca     []byte       // the CA bundle client trusts
	client *http.Client // built from ca
}

// CreateShadow asks the server to create the node's shadow and returns it.
func (c *Client) CreateShadow(ctx context.Context) (*v2.BottlerocketShadow, error) {
	body := CreateShadowRequest{NodeSelector: NodeSelector{NodeName: c.NodeName, NodeUID: c.NodeUID}}
	var out v2.BottlerocketShadow
	if _, err := c.do(ctx, http.MethodPost, PathShadow, body, &out, nil); err != nil {
		return nil, fmt.Errorf("create shadow: %w", err)
	}
	return &out, nil
}

// UpdateStatus replaces the node's shadow status.
func (c *Client) UpdateStatus(ctx context.Context, status *v2.BottlerocketShadowStatus) error {
	if _, err := c.do(ctx, http.MethodPut, PathShadow, status, nil, nil); err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}

// CordonAndDrain asks the server to cordon the node and run one round of its drain, which ends at
// deadline at the latest (zero: the server's default). It returns the deadline the server holds
// the drain to, the requested one or earlier (zero when the server did not say), and:
//   - nil when the node is drained;
//   - an error wrapping ErrNotDrained when the round ended first: ask again;
//   - past that deadline, the server's verdict: nil (drained in time) or a *StatusError naming the
//     pods left;
//   - any other failure.
func (c *Client) CordonAndDrain(ctx context.Context, deadline time.Time) (time.Time, error) {
	h := http.Header{}
	if !deadline.IsZero() {
		h.Set(HeaderDrainDeadline, deadline.UTC().Format(time.RFC3339))
	}
	answer, err := c.do(ctx, http.MethodPost, PathCordonAndDrain, nil, nil, h)
	var held time.Time
	if v := answer.Get(HeaderDrainDeadline); v != "" {
		if t, perr := time.Parse(time.RFC3339, v); perr == nil {
			held = t
		}
	}
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusServiceUnavailable {
		return held, fmt.Errorf("cordon and drain: %w: %s", ErrNotDrained, se.Message)
	}
	if err != nil {
		return held, fmt.Errorf("cordon and drain: %w", err)
	}
	return held, nil
}

// Uncordon makes the node schedulable again, if Brupop cordoned it.
func (c *Client) Uncordon(ctx context.Context) error {
	return c.post(ctx, PathUncordon, "uncordon")
}

// ExcludeFromLB labels the node out of external load balancers.
func (c *Client) ExcludeFromLB(ctx context.Context) error {
	return c.post(ctx, PathExcludeFromLB, "exclude from load balancers")
}

// RemoveExclusionFromLB removes the label ExcludeFromLB added.
func (c *Client) RemoveExclusionFromLB(ctx context.Context) error {
	return c.post(ctx, PathRemoveExclusionFromLB, "remove exclusion from load balancers")
}

func (c *Client) post(ctx context.Context, path, what string) error {
	if _, err := c.do(ctx, http.MethodPost, path, nil, nil, nil); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// do sends one request and returns the answer's headers (nil when there was no answer).
func (c *Client) do(ctx context.Context, method, path string, in, out any, extra http.Header) (http.Header, error) {
	hc, err := c.httpClient()
	if err != nil {
		return nil, err
	}
	token, err := os.ReadFile(c.TokenPath)
	if err != nil {
		return nil, fmt.Errorf("agentapi: read token: %w", err)
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	if path == PathCordonAndDrain {
		timeout = c.DrainRequestTimeout
		if timeout == 0 {
			timeout = 6 * time.Minute
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("agentapi: encode: %w", err)
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, body)
	if err != nil {
		return nil, fmt.Errorf("agentapi: %w", err)
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	req.Header.Set(HeaderNodeName, c.NodeName)
	req.Header.Set(HeaderNodeUID, c.NodeUID)
	req.Header.Set(HeaderToken, strings.TrimSpace(string(token)))
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("agentapi: %s %s: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("agentapi: read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return resp.Header, &StatusError{Code: resp.StatusCode, Message: strings.TrimSpace(string(raw))}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.Header, fmt.Errorf("agentapi: decode answer: %w", err)
		}
	}
	return resp.Header, nil
}

// httpClient returns the HTTP client, rebuilt when the CA file changed.
func (c *Client) httpClient() (*http.Client, error) {
	if c.HTTPClient != nil {
		return c.HTTPClient, nil
	}
	ca, err := os.ReadFile(c.CAPath)
	if err != nil {
		return nil, fmt.Errorf("agentapi: read CA: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil && bytes.Equal(ca, c.ca) {
		return c.client, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("agentapi: no certificate in %s", c.CAPath)
	}
	if c.client != nil {
		// Connections verified with the previous CA are not reused.
		c.client.CloseIdleConnections()
	}
	c.ca = ca
	c.client = &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
	}}
	return c.client, nil
}
