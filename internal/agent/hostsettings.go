package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
)

// RestoreTransaction is the host settings transaction that holds, pending, the update settings
// the agent replaced to pin a version. Committing it restores them; an agent commits it after
// preparing the update and, in case a previous agent was killed before that, when it starts.
const RestoreTransaction = "brupop-agent-restore"

// settingsTx stages and commits named host settings transactions. Package hostapi only commits
// at once (SetUpdateSettings); this is the part of the host API it does not cover yet.
type settingsTx struct {
	http    *http.Client
	timeout time.Duration
}

func newSettingsTx(socket string, timeout time.Duration) *settingsTx {
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}
	return &settingsTx{http: &http.Client{Transport: tr}, timeout: timeout}
}

// do sends one request and returns the status code and body.
func (s *settingsTx) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://localhost"+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("host settings: %s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: host settings: %s %s: %w", hostapi.ErrUnreachable, method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("host settings: %s %s: read answer: %w", method, path, err)
	}
	return resp.StatusCode, data, nil
}

func txQuery(tx string) string { return "?" + url.Values{"tx": {tx}}.Encode() }

// pending reports whether transaction tx has pending changes.
func (s *settingsTx) pending(ctx context.Context, tx string) (bool, error) {
	code, body, err := s.do(ctx, http.MethodGet, "/tx"+txQuery(tx), nil)
	if err != nil {
		return false, err
	}
	if code != http.StatusOK {
		return false, fmt.Errorf("host settings: read transaction %s: status %d: %s", tx, code, bytes.TrimSpace(body))
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return false, fmt.Errorf("%w: transaction %s: %w", hostapi.ErrMalformed, tx, err)
	}
	return len(doc) > 0, nil
}

// stage adds the update settings u to transaction tx without committing it.
func (s *settingsTx) stage(ctx context.Context, tx string, u hostapi.UpdateSettings) error {
	body, err := json.Marshal(map[string]hostapi.UpdateSettings{"updates": u})
	if err != nil {
		return fmt.Errorf("host settings: encode: %w", err)
	}
	code, resp, err := s.do(ctx, http.MethodPatch, "/settings"+txQuery(tx), body)
	if err != nil {
		return err
	}
	if code != http.StatusNoContent && code != http.StatusOK {
		return fmt.Errorf("host settings: stage in transaction %s: status %d: %s", tx, code, bytes.TrimSpace(resp))
	}
	return nil
}

// commit commits and applies transaction tx; a transaction with nothing pending is no error.
func (s *settingsTx) commit(ctx context.Context, tx string) error {
	code, resp, err := s.do(ctx, http.MethodPost, "/tx/commit_and_apply"+txQuery(tx), nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK && code != http.StatusNoContent && code != http.StatusUnprocessableEntity {
		return fmt.Errorf("host settings: commit transaction %s: status %d: %s", tx, code, bytes.TrimSpace(resp))
	}
	return nil
}
