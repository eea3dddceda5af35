package hostapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// VersionLockLatest is the version-lock value that follows the newest release.
const VersionLockLatest = "latest"

// UpdateSettings are the two settings that choose the version a refresh offers:
// settings.updates.version-lock and settings.updates.ignore-waves.
type UpdateSettings struct {
	// VersionLock is "latest" or a version, with or without a leading "v".
	VersionLock string `json:"version-lock"`
	// IgnoreWaves makes the host take a release before its wave reaches it.
	IgnoreWaves bool `json:"ignore-waves"`
}

type updatesDoc struct {
	Updates struct {
		VersionLock *string `json:"version-lock"`
		IgnoreWaves *bool   `json:"ignore-waves"`
	} `json:"updates"`
}

// UpdateSettings reads the stored update settings. A setting the host leaves out reads as its
// default: "latest" and false.
func (c *Client) UpdateSettings(ctx context.Context) (UpdateSettings, error) {
	q := url.Values{"keys": {"settings.updates.version-lock,settings.updates.ignore-waves"}}
	res, err := c.do(ctx, http.MethodGet, "/settings?"+q.Encode(), nil)
	if err != nil {
		return UpdateSettings{}, err
	}
	var doc updatesDoc
	if err := json.Unmarshal(res.body, &doc); err != nil {
		return UpdateSettings{}, fmt.Errorf("%w: settings: %w", ErrMalformed, err)
	}
	s := UpdateSettings{VersionLock: VersionLockLatest}
	if v := doc.Updates.VersionLock; v != nil {
		s.VersionLock = *v
	}
	if v := doc.Updates.IgnoreWaves; v != nil {
		s.IgnoreWaves = *v
	}
	return s, nil
}

// SetUpdateSettings stores s in a transaction of its own and commits and applies it, so that it
// never commits anyone else's pending changes. The next refresh chooses by the new settings.
// The host rejects a malformed VersionLock with 400, returned as an *APIError.
func (c *Client) SetUpdateSettings(ctx context.Context, s UpdateSettings) error {
	tx, err := txName()
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]UpdateSettings{"updates": s})
	if err != nil {
		return fmt.Errorf("hostapi: encode settings: %w", err)
	}
	q := txQuery(tx)
	if _, err := c.do(ctx, http.MethodPatch, "/settings"+q, body); err != nil {
		return fmt.Errorf("hostapi: set update settings: %w", err)
	}
	if _, err := c.do(ctx, http.MethodPost, "/tx/commit_and_apply"+q, nil); err != nil {
		// Best effort: leave no pending transaction behind.
		_, _ = c.do(context.WithoutCancel(ctx), http.MethodDelete, "/tx"+q, nil)
		return fmt.Errorf("hostapi: commit update settings: %w", err)
	}
	return nil
}

// txName returns a fresh transaction name, as apiclient does for `set`.
func txName() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("hostapi: transaction name: %w", err)
	}
	return "brupop-" + hex.EncodeToString(b), nil
}

// StageUpdateSettings adds s to the settings transaction tx without committing it. The host keeps
// the change pending, and reads of the settings return the committed values, until
// CommitTransaction(tx); other transactions, including SetUpdateSettings's, never commit it.
func (c *Client) StageUpdateSettings(ctx context.Context, tx string, s UpdateSettings) error {
	if tx == "" {
		return errors.New("hostapi: stage update settings: empty transaction name")
	}
	body, err := json.Marshal(map[string]UpdateSettings{"updates": s})
	if err != nil {
		return fmt.Errorf("hostapi: encode settings: %w", err)
	}
	if _, err := c.do(ctx, http.MethodPatch, "/settings"+txQuery(tx), body); err != nil {
		return fmt.Errorf("hostapi: stage update settings in transaction %s: %w", tx, err)
	}
	return nil
}

// TransactionPending reports whether the settings transaction tx holds changes not yet committed.
func (c *Client) TransactionPending(ctx context.Context, tx string) (bool, error) {
	if tx == "" {
		return false, errors.New("hostapi: read transaction: empty transaction name")
	}
	res, err := c.do(ctx, http.MethodGet, "/tx"+txQuery(tx), nil)
	if err != nil {
		return false, fmt.Errorf("hostapi: read transaction %s: %w", tx, err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(res.body, &doc); err != nil {
		return false, fmt.Errorf("%w: transaction %s: %w", ErrMalformed, tx, err)
	}
	// Hosts answer the pending settings either bare or under a "settings" key.
	if inner, ok := doc["settings"]; ok && len(doc) == 1 {
		doc = nil
		if err := json.Unmarshal(inner, &doc); err != nil {
			return false, fmt.Errorf("%w: transaction %s: %w", ErrMalformed, tx, err)
		}
	}
	return len(doc) > 0, nil
}

// CommitTransaction commits and applies the settings transaction tx. A transaction with nothing
// pending, which the host answers 422, is no error, so that committing is idempotent.
func (c *Client) CommitTransaction(ctx context.Context, tx string) error {
	if tx == "" {
		return errors.New("hostapi: commit transaction: empty transaction name")
	}
	_, err := c.do(ctx, http.MethodPost, "/tx/commit_and_apply"+txQuery(tx), nil)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusUnprocessableEntity {
		return nil
	}
	if err != nil {
		return fmt.Errorf("hostapi: commit transaction %s: %w", tx, err)
	}
	return nil
}

// txQuery is the query naming transaction tx.
func txQuery(tx string) string { return "?" + url.Values{"tx": {tx}}.Encode() }
