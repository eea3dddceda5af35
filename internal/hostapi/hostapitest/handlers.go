package hostapitest

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
)

// routes is the host API of one boot.
func (h *Host) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /updates/status", h.getStatus)
	for _, cmd := range []hostapi.CommandType{
		hostapi.CommandRefresh, hostapi.CommandPrepare, hostapi.CommandActivate, hostapi.CommandDeactivate,
	} {
		path := "/actions/" + string(cmd) + "-update"
		if cmd == hostapi.CommandRefresh {
			path = "/actions/refresh-updates"
		}
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, _ *http.Request) {
			writeReply(w, h.startCommand(cmd))
		})
	}
	mux.HandleFunc("POST /actions/reboot", h.postReboot)
	mux.HandleFunc("GET /os", h.getOS)
	mux.HandleFunc("GET /settings", h.getSettings)
	mux.HandleFunc("PATCH /settings", h.patchSettings)
	mux.HandleFunc("PATCH /settings/keypair", h.patchKeypair)
	mux.HandleFunc("POST /tx/commit_and_apply", h.commitAndApply)
	mux.HandleFunc("GET /tx", h.getTx)
	mux.HandleFunc("DELETE /tx", h.deleteTx)
	return h.serialize(mux)
}

// serialize answers one request at a time, as the real apiserver's single worker does, and
// injects the request faults.
func (h *Host) serialize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			panic(http.ErrAbortHandler)
		}
		h.wg.Add(1)
		down := h.down
		h.mu.Unlock()
		defer h.wg.Done()

		h.reqMu.Lock()
		defer h.reqMu.Unlock()
		select {
		case <-down:
			// The host went down while this request queued: the connection just breaks.
			panic(http.ErrAbortHandler)
		default:
		}
		if h.injectFault(w, r, down) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// injectFault answers r as the faults in force say, and reports whether it did.
func (h *Host) injectFault(w http.ResponseWriter, r *http.Request, down chan struct{}) bool {
	for {
		h.mu.Lock()
		f, changed := h.faults, h.faultsCh
		if f.InternalErrors > 0 && !f.Hang {
			h.faults.InternalErrors--
		}
		h.mu.Unlock()
		switch {
		case f.Hang:
			select {
			case <-changed:
				continue
			case <-r.Context().Done():
			case <-down:
			case <-h.done:
			}
			panic(http.ErrAbortHandler)
		case f.InternalErrors > 0:
			writeReply(w, reply{http.StatusInternalServerError, msgDispatcher})
		case f.Garbage:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("\x00<html>Service Unavailable{\"update_state\":"))
		default:
			return false
		}
		return true
	}
}

// writeReply writes a plain-text error or an empty 204.
func writeReply(w http.ResponseWriter, r reply) {
	if r.code == http.StatusNoContent {
		w.WriteHeader(r.code)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(r.code)
	_, _ = w.Write([]byte(r.body))
}

// writeJSON writes v as compact JSON with 200.
func writeJSON(w http.ResponseWriter, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeReply(w, reply{http.StatusInternalServerError, err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(data)
}

func (h *Host) getStatus(w http.ResponseWriter, _ *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.busy:
		writeReply(w, reply{http.StatusLocked, msgStatusLocked})
	case h.status == nil:
		writeReply(w, reply{http.StatusNotFound, msgUninitialized})
	default:
		writeJSON(w, h.status)
	}
}

// postReboot answers 204 and then goes down, whatever the update state or lock.
func (h *Host) postReboot(w http.ResponseWriter, _ *http.Request) {
	f := h.Faults()
	if f.RefuseReboot {
		writeReply(w, reply{http.StatusInternalServerError,
			"Failed to reboot, exit code: 1, stderr: Operation inhibited by \"kubelet\" (PID 1234 \"kubelet\", user root), reason is \"Kubelet needs time to handle node shutdown\"."})
		return
	}
	if !f.DropRebootAnswer {
		w.WriteHeader(http.StatusNoContent)
		// The answer must leave before the server closes the connection.
		w.(http.Flusher).Flush()
	}
	h.Reboot()
	if f.DropRebootAnswer {
		panic(http.ErrAbortHandler)
	}
}

func (h *Host) getOS(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	v := h.sets[h.running].version.String()
	h.mu.Unlock()
	info := hostapi.OSInfo{
		PrettyName: "Bottlerocket OS " + v + " (" + h.cfg.Variant + ")",
		VariantID:  h.cfg.Variant,
		VersionID:  v,
		BuildID:    buildID(v),
		Arch:       h.cfg.Arch,
	}
	if !r.URL.Query().Has("prefix") {
		writeJSON(w, info)
		return
	}
	prefix := r.URL.Query().Get("prefix")
	if prefix == "" {
		writeReply(w, reply{http.StatusBadRequest, "Input error: Empty prefix"})
		return
	}
	all := map[string]string{
		"pretty_name": info.PrettyName, "variant_id": info.VariantID, "version_id": info.VersionID,
		"build_id": info.BuildID, "arch": info.Arch,
	}
	out := map[string]string{}
	for k, v := range all {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	writeJSON(w, out)
}
