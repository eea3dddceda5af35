package apiserver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"

	"github.com/bottlerocket-os/brupop-go/internal/drain"
)

// verdictTimeout bounds the reads that decide how a drain ended once its deadline passed.
const verdictTimeout = 30 * time.Second

// drainJob is the drain of one node, running in the background.
type drainJob struct {
	deadline time.Time
	done     chan struct{}
	err      error // set before done is closed
	cancel   context.CancelFunc
}

// drains runs at most one drain per node. A drain outlives the request that started it, so
// that agents retry and join it instead of starting over; it ends with its deadline, with
// stop, or with the server's context.
type drains struct {
	base    context.Context
	clock   clock.PassiveClock
	nodes   drain.Nodes
	drainer *drain.Drainer
	metrics *metrics
	log     logr.Logger
	events  nodeEvents

	mu   sync.Mutex
	jobs map[string]*drainJob
	wg   sync.WaitGroup
}

// start returns the node's running drain, or starts one that ends at deadline (past it, the
// new drain only says how the last one ended: see run). uid is the Node's, for its Events.
func (d *drains) start(node, uid string, deadline time.Time) (job *drainJob, joined bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if j, ok := d.jobs[node]; ok {
		return j, true
	}
	ctx, cancel := context.WithCancel(d.base)
	j := &drainJob{deadline: deadline, done: make(chan struct{}), cancel: cancel}
	d.jobs[node] = j
	d.wg.Add(1)
	d.metrics.drainsActive.Inc()
	go func() {
		defer d.wg.Done()
		defer cancel()
		j.err = d.run(ctx, node, uid, deadline)
		d.metrics.drainsActive.Dec()
		result := "succeeded"
		if j.err != nil {
			result = "failed"
		}
		d.metrics.drains.WithLabelValues(result).Inc()
		d.mu.Lock()
		if d.jobs[node] == j {
			delete(d.jobs, node)
		}
		d.mu.Unlock()
		close(j.done)
	}()
	return j, false
}

// run cordons the node and drains it, recording Events on the Node. On failure the node stays
// cordoned: the agent reports the failure and asks for the uncordon, which undoes only Brupop's
// cordon.
func (d *drains) run(ctx context.Context, node, uid string, deadline time.Time) error {
	log := d.log.WithValues("node", node)
	at := deadline.UTC().Format(time.RFC3339)
	failed := func(err error) error {
		d.events.record(node, uid, corev1.EventTypeWarning, EventDrainFailed, "Drain", err.Error())
		return err
	}
	if !d.clock.Now().Before(deadline) {
		// Too late to drain, not to say how the drain ended: a request after the deadline (an
		// agent that missed the answer, or asks another replica) gets the cluster's verdict.
		vctx, cancel := context.WithTimeout(ctx, verdictTimeout)
		defer cancel()
		if err := d.drainer.Verdict(vctx, node, deadline); err != nil {
			return failed(err)
		}
		log.Info("Node drained before its deadline", "deadline", at)
		return nil
	}
	ours, err := d.nodes.Cordon(ctx, node)
	if err != nil {
		log.Error(err, "Cordon failed")
		return failed(err)
	}
	log.Info("Cordoned Node", "cordonedByBrupop", ours, "deadline", at)
	if ours {
		d.events.record(node, uid, corev1.EventTypeNormal, EventCordoned, "Cordon", "Cordoned Node for a Bottlerocket update")
	}
	d.events.record(node, uid, corev1.EventTypeNormal, EventDrainStarted, "Drain", "Evicting pods for a Bottlerocket update, until "+at)
	if err := d.drainer.Drain(ctx, node, deadline); err != nil {
		log.Error(err, "Drain failed")
		return failed(err)
	}
	log.Info("Drained Node")
	d.events.record(node, uid, corev1.EventTypeNormal, EventDrained, "Drain", "Evicted every pod to evict")
	return nil
}

// stop cancels the node's running drain, if any, and waits until it ended.
func (d *drains) stop(ctx context.Context, node string) error {
	d.mu.Lock()
	j, ok := d.jobs[node]
	d.mu.Unlock()
	if !ok {
		return nil
	}
	j.cancel()
	select {
	case <-j.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the drain of node %s to stop: %w", node, ctx.Err())
	}
}

// wait blocks until every drain goroutine has ended (after the base context was cancelled).
func (d *drains) wait() { d.wg.Wait() }

// observe logs drain progress and counts evictions.
func (d *drains) observe(e drain.Event) {
	d.metrics.drainEvent(e)
	log := d.log.WithValues("node", e.Node, "podsLeft", e.PodsLeft)
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
