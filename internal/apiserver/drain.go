package apiserver

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"

	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
	"github.com/bottlerocket-os/brupop-go/internal/drain"
)

// cordonAndDrain cordons the caller's node and runs one bounded round of its drain, keeping
// nothing once it answered (docs/architecture.md, "Drains"): 200 when the node is drained; 503
// naming the pods left when the round ended first, to be asked again; past the deadline, the
// cluster's verdict: 200, or 500 naming the pods left. Every answer of a round carries the
// deadline in agentapi.HeaderDrainDeadline. A request without a deadline (upstream's agent) is
// held to Options.HeaderlessDrainTimeout, in rounds of Options.UpstreamRoundTime.
func (h *handlers) cordonAndDrain(w http.ResponseWriter, r *http.Request, c Caller, log logr.Logger) {
	var requested time.Time
	if v := r.Header.Get(agentapi.HeaderDrainDeadline); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			h.refuse(w, log, http.StatusBadRequest, fmt.Sprintf("%s %q is not an RFC 3339 time", agentapi.HeaderDrainDeadline, v))
			return
		}
		requested = t
	}
	now := h.clock.Now()
	deadline, length := requested, time.Duration(0)
	if requested.IsZero() {
		// Upstream's agent: it sends no deadline, waits as long as the drain takes and asks
		// UpstreamDrainAttempts times in all; its rounds are long enough for those to last until
		// the deadline.
		length = h.opts.UpstreamRoundTime()
	}
	// A request past its own deadline only asks how the drain ended: the node is not cordoned
	// again for it.
	if requested.IsZero() || now.Before(requested) {
		cordon, err := h.nodes.Cordon(r.Context(), c.NodeName, now)
		if err != nil {
			h.events.record(c.NodeName, c.NodeUID, corev1.EventTypeWarning, EventDrainFailed, "Cordon", err.Error())
			h.apiError(w, log, "cordon", err)
			return
		}
		deadline = drainDeadline(cordon.Since, requested, h.opts.HeaderlessDrainTimeout(), h.opts.MaxDrainTimeout)
		if cordon.Started {
			h.drainStarted(c, log, cordon, deadline)
		}
		if !requested.IsZero() && deadline.Before(requested) {
			log.V(1).Info("Capped the requested drain deadline", "requested", requested, "deadline", deadline, "cordonedAt", cordon.Since)
		}
	}
	w.Header().Set(agentapi.HeaderDrainDeadline, deadline.UTC().Format(time.RFC3339))
	h.answerRound(w, r, c, log, h.drainer.RoundOf(r.Context(), c.NodeName, deadline, length))
}

// drainDeadline is the deadline of a drain whose cordon began at since: the requested deadline
// (zero: since+def), never later than since+maxTimeout. Counted from the cordon time on the Node,
// the cap holds whichever replica a request reaches.
func drainDeadline(since, requested time.Time, def, maxTimeout time.Duration) time.Time {
	deadline := requested
	if deadline.IsZero() {
		deadline = since.Add(def)
	}
	if limit := since.Add(maxTimeout); deadline.After(limit) {
		return limit
	}
	return deadline
}

// drainStarted logs and records the start of a drain: the request that cordoned the node.
func (h *handlers) drainStarted(c Caller, log logr.Logger, cordon drain.Cordon, deadline time.Time) {
	at := deadline.UTC().Format(time.RFC3339)
	log.Info("Cordoned Node", "cordonedByBrupop", cordon.Ours, "adopted", cordon.Adopted, "deadline", at)
	if cordon.Ours {
		h.events.record(c.NodeName, c.NodeUID, corev1.EventTypeNormal, EventCordoned, "Cordon", "Cordoned Node for a Bottlerocket update")
	}
	h.events.record(c.NodeName, c.NodeUID, corev1.EventTypeNormal, EventDrainStarted, "Drain", "Evicting pods for a Bottlerocket update, until "+at)
}

// answerRound answers the outcome err of a drain round. A round the client or the server's
// shutdown cancelled never answers 200 unless the node is drained.
func (h *handlers) answerRound(w http.ResponseWriter, r *http.Request, c Caller, log logr.Logger, err error) {
	switch {
	case err == nil:
		log.Info("Drained Node")
		h.metrics.drains.WithLabelValues("succeeded").Inc()
		h.events.record(c.NodeName, c.NodeUID, corev1.EventTypeNormal, EventDrained, "Drain", "Evicted every pod to evict")
		w.WriteHeader(http.StatusOK)
	case errors.Is(err, drain.ErrPodsLeft) && !errors.Is(err, drain.ErrDeadlineExceeded):
		log.Info("Drain round ended with pods left", "reason", err.Error())
		w.Header().Set("Retry-After", "1")
		h.reply(w, http.StatusServiceUnavailable, err.Error())
	case r.Context().Err() != nil:
		// The client left, or this server is shutting down.
		log.V(1).Info("Drain round stopped before the node was drained", "reason", err.Error())
		w.Header().Set("Retry-After", "1")
		h.reply(w, http.StatusServiceUnavailable, "drain round stopped before the node was drained, ask again")
	default:
		log.Info("Drain failed", "reason", err.Error())
		h.metrics.drains.WithLabelValues("failed").Inc()
		h.events.record(c.NodeName, c.NodeUID, corev1.EventTypeWarning, EventDrainFailed, "Drain", err.Error())
		h.reply(w, http.StatusInternalServerError, err.Error())
	}
}

// observe logs drain progress and counts evictions.
func (s *Server) observe(e drain.Event) {
	s.metrics.drainEvent(e)
	log := s.log.WithValues("node", e.Node, "podsLeft", e.PodsLeft)
	switch e.Kind {
	case drain.EventListed:
		log.Info("Draining Node")
	case drain.EventEvicted:
		log.Info("Evicted Pod", "pod", e.Pod)
	case drain.EventBlocked:
		log.Info("Eviction blocked by a PodDisruptionBudget, will retry", "pod", e.Pod)
	case drain.EventRetry:
		log.Info("Eviction failed, will retry", "pod", e.Pod, "reason", e.Err.Error())
	case drain.EventGone:
		log.V(1).Info("Pod gone", "pod", e.Pod)
	}
}
