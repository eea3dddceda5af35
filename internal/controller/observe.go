package controller

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/metrics"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
)

// NewMetrics returns the controller's metrics registered with reg, every state and wait reason
// exported as 0 from the start.
func NewMetrics(reg prometheus.Registerer) (*metrics.Metrics, error) {
	states := make([]string, 0, len(v2.States))
	for _, s := range v2.States {
		states = append(states, string(s))
	}
	reasons := []string{}
	for _, w := range rollout.WaitReasons {
		reasons = append(reasons, string(w))
	}
	return metrics.New(reg, states, reasons)
}

// observe updates the metrics from a pass.
func (r *Reconciler) observe(w *world, plan rollout.Plan, halts []rollout.Halt, done []applied, now time.Time) {
	s := metrics.Snapshot{States: map[string]int{}, Versions: map[string]int{}, Waiting: map[string]int{}, Halted: len(halts)}
	for i := range w.shadows {
		if st := w.shadows[i].Status; st != nil {
			s.States[string(st.CurrentState)]++
			s.Versions[st.CurrentVersion]++
		}
	}
	for _, wt := range plan.Waiting {
		s.Waiting[string(wt.Reason)]++
	}
	r.Metrics.Observe(s)
	for _, a := range done {
		from, to := a.before.Spec.State, a.after.Spec.State
		if from != to {
			var spent time.Duration
			if t := a.before.Spec.StateTransitionTimestamp; t != nil {
				spent = now.Sub(t.Time)
			}
			r.Metrics.Transition(string(from), string(to), spent)
		}
		if f := a.Failure; f != nil {
			r.Metrics.Failure(f.Reason, string(f.Class))
		}
	}
}
