package rollout

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// halt computes the halted versions from the ledger and the release failures of this pass.
func (p *pass) halt() {
	budget := max(p.policy.FailureBudget, 1)
	type key struct {
		node string
		at   time.Time
	}
	counted := map[string][]NodeFailure{}
	seen := map[key]bool{}
	resumed := map[string]time.Time{}
	add := func(f NodeFailure) {
		k := key{f.Node, f.At.UTC()}
		if f.Class != statemachine.ClassRelease || !f.At.After(resumed[f.Version]) || seen[k] {
			return
		}
		seen[k] = true
		counted[f.Version] = append(counted[f.Version], f)
	}
	for _, l := range p.fleet.Ledger {
		resumed[l.Version] = l.ResumedAt
	}
	for _, l := range p.fleet.Ledger {
		for _, f := range l.Failures {
			f.Version = l.Version
			add(f)
		}
	}
	for _, f := range p.plan.Failures {
		add(f)
	}
	p.halted = map[string]bool{}
	for version, fs := range counted {
		if len(fs) >= budget {
			p.halted[version] = true
			p.plan.Halts = append(p.plan.Halts, newHalt(version, fs, budget))
		}
	}
	slices.SortFunc(p.plan.Halts, func(a, b Halt) int { return strings.Compare(a.Version, b.Version) })
}

func newHalt(version string, fs []NodeFailure, budget int) Halt {
	slices.SortStableFunc(fs, func(a, b NodeFailure) int { return a.At.Compare(b.At) })
	h := Halt{Version: version, Since: fs[budget-1].At}
	parts := make([]string, 0, len(fs))
	for _, f := range fs {
		h.Nodes = append(h.Nodes, f.Node)
		parts = append(parts, fmt.Sprintf("%s: %s", f.Node, statemachine.FormatFailureReason(f.Reason, f.Message)))
	}
	h.Reason = fmt.Sprintf("%d release failures (budget %d): %s", len(fs), budget, strings.Join(parts, "; "))
	return h
}
