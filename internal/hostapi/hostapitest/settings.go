package hostapitest

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

const (
	keyVersionLock = "settings.updates.version-lock"
	keyIgnoreWaves = "settings.updates.ignore-waves"
)

// pending are the settings a transaction has changed but not committed.
type pending struct {
	versionLock *string
	ignoreWaves *bool
}

// txName is the transaction a request names, "default" when it names none.
func txName(r *http.Request) string {
	if tx := r.URL.Query().Get("tx"); tx != "" {
		return tx
	}
	return "default"
}

// flatLocked returns the update settings by full key, with the three this simulator does not model.
func (h *Host) flatLocked() map[string]any {
	return map[string]any{
		keyVersionLock:                       h.settings.VersionLock,
		keyIgnoreWaves:                       h.settings.IgnoreWaves,
		"settings.updates.seed":              1024,
		"settings.updates.metadata-base-url": "https://updates.bottlerocket.aws/2020-07-07/" + h.cfg.Variant + "/" + h.cfg.Arch + "/",
		"settings.updates.targets-base-url":  "https://updates.bottlerocket.aws/targets/",
	}
}

// nest turns full keys into the document the API returns, without the top-level "settings".
func nest(flat map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range flat {
		parts := strings.Split(strings.TrimPrefix(k, "settings."), ".")
		m := out
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = v
	}
	return out
}

func (h *Host) getSettings(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	h.mu.Lock()
	flat := h.flatLocked()
	h.mu.Unlock()
	var keep func(string) bool
	switch {
	case q.Has("keys"):
		keys := strings.Split(q.Get("keys"), ",")
		keep = func(k string) bool { return slices.Contains(keys, k) }
	case q.Has("prefix"):
		prefix := q.Get("prefix")
		if !strings.HasPrefix(prefix, "settings.") && prefix != "settings" {
			prefix = "settings." + prefix
		}
		keep = func(k string) bool { return strings.HasPrefix(k, prefix) }
	default:
		keep = func(string) bool { return true }
	}
	if (q.Has("keys") && q.Get("keys") == "") || (q.Has("prefix") && q.Get("prefix") == "") {
		writeReply(w, reply{http.StatusBadRequest, "Input error: Empty input"})
		return
	}
	for k := range flat {
		if !keep(k) {
			delete(flat, k)
		}
	}
	writeJSON(w, nest(flat))
}

// patchSettings is PATCH /settings?tx=NAME with a JSON settings document.
func (h *Host) patchSettings(w http.ResponseWriter, r *http.Request) {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		writeReply(w, reply{http.StatusBadRequest, "Content type error"})
		return
	}
	var doc struct {
		Updates struct {
			VersionLock *string `json:"version-lock"`
			IgnoreWaves *bool   `json:"ignore-waves"`
		} `json:"updates"`
	}
	if err := json.NewDecoder(r.Body).Decode(&doc); err != nil {
		writeReply(w, reply{http.StatusBadRequest, "Json deserialize error: " + err.Error()})
		return
	}
	writeReply(w, h.stage(txName(r), pending{doc.Updates.VersionLock, doc.Updates.IgnoreWaves}))
}

// patchKeypair is PATCH /settings/keypair?tx=NAME with "key=value" pairs, as apiclient set uses.
func (h *Host) patchKeypair(w http.ResponseWriter, r *http.Request) {
	var doc struct {
		Pairs []string `json:"request_payload"`
	}
	if err := json.NewDecoder(r.Body).Decode(&doc); err != nil {
		writeReply(w, reply{http.StatusBadRequest, "Json deserialize error: " + err.Error()})
		return
	}
	var p pending
	for _, pair := range doc.Pairs {
		k, v, ok := strings.Cut(pair, "=")
		k = "settings." + strings.TrimPrefix(k, "settings.")
		switch {
		case ok && k == keyVersionLock:
			p.versionLock = &v
		case ok && k == keyIgnoreWaves:
			b, err := strconv.ParseBool(v)
			if err != nil {
				writeReply(w, reply{http.StatusBadRequest, fmt.Sprintf("Invalid value for %s: %q", k, v)})
				return
			}
			p.ignoreWaves = &b
		default:
			writeReply(w, reply{http.StatusBadRequest, fmt.Sprintf("Unsupported key pair %q", pair)})
			return
		}
	}
	writeReply(w, h.stage(txName(r), p))
}

// stage validates p and adds it to transaction tx.
func (h *Host) stage(tx string, p pending) reply {
	if p.versionLock != nil && !validVersionLock(*p.versionLock) {
		return reply{http.StatusBadRequest, fmt.Sprintf("Invalid version-lock %q: expected \"latest\" or a version", *p.versionLock)}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := h.txs[tx]
	if cur == nil {
		cur = &pending{}
		h.txs[tx] = cur
	}
	if p.versionLock != nil {
		cur.versionLock = p.versionLock
	}
	if p.ignoreWaves != nil {
		cur.ignoreWaves = p.ignoreWaves
	}
	return reply{http.StatusNoContent, ""}
}

// commitAndApply commits a transaction; the simulator applies it at once.
func (h *Host) commitAndApply(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	tx := txName(r)
	p := h.txs[tx]
	delete(h.txs, tx)
	keys := []string{}
	if p != nil && p.versionLock != nil {
		h.settings.VersionLock = *p.versionLock
		keys = append(keys, keyVersionLock)
	}
	if p != nil && p.ignoreWaves != nil {
		h.settings.IgnoreWaves = *p.ignoreWaves
		keys = append(keys, keyIgnoreWaves)
	}
	if len(keys) == 0 {
		writeReply(w, reply{http.StatusUnprocessableEntity, "Tried to commit with no pending changes"})
		return
	}
	writeJSON(w, keys)
}

// pendingDoc renders a transaction's pending settings.
func pendingDoc(p *pending) map[string]any {
	flat := map[string]any{}
	if p != nil && p.versionLock != nil {
		flat[keyVersionLock] = *p.versionLock
	}
	if p != nil && p.ignoreWaves != nil {
		flat[keyIgnoreWaves] = *p.ignoreWaves
	}
	return nest(flat)
}

func (h *Host) getTx(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	writeJSON(w, pendingDoc(h.txs[txName(r)]))
}

func (h *Host) deleteTx(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	tx := txName(r)
	doc := pendingDoc(h.txs[tx])
	delete(h.txs, tx)
	writeJSON(w, doc)
}
