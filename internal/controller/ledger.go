package controller

import (
	"slices"
	"strings"
	"time"

	"github.com/bottlerocket-os/brupop-go/internal/rollout"
)

// The ledger of release failures lives in two places: in memory, written as soon as a failure's
// spec is stored, and in the FleetPolicy's status, which survives restarts but is read from a
// cache that may lag behind. A pass uses their union. Times are kept to the second, as
// metav1.Time stores them, so that a failure read back from status equals the one remembered.

// mergeLedgers returns the union of a and b: per version, failures deduplicated by node and time
// and the later ResumedAt. Versions and failures are sorted.
func mergeLedgers(a, b []rollout.VersionLedger) []rollout.VersionLedger {
	var out []rollout.VersionLedger
	for _, l := range slices.Concat(a, b) {
		i := slices.IndexFunc(out, func(o rollout.VersionLedger) bool { return o.Version == l.Version })
		if i < 0 {
			out = append(out, rollout.VersionLedger{Version: l.Version})
			i = len(out) - 1
		}
		v := &out[i]
		if l.ResumedAt.After(v.ResumedAt) {
			v.ResumedAt = l.ResumedAt.Truncate(time.Second)
		}
		for _, f := range l.Failures {
			v.Failures = addUnique(v.Failures, f)
		}
	}
	slices.SortFunc(out, func(x, y rollout.VersionLedger) int { return strings.Compare(x.Version, y.Version) })
	return out
}

// earliest returns the union of a and b, keeping each version's earlier first-seen time.
func earliest(a, b map[string]time.Time) map[string]time.Time {
	out := make(map[string]time.Time, len(a)+len(b))
	for _, m := range []map[string]time.Time{a, b} {
		for v, t := range m {
			if prev, ok := out[v]; !ok || t.Before(prev) {
				out[v] = t
			}
		}
	}
	return out
}

// recordFailure returns the ledger with f added to its version.
func recordFailure(ledger []rollout.VersionLedger, f rollout.NodeFailure) []rollout.VersionLedger {
	return mergeLedgers(ledger, []rollout.VersionLedger{{Version: f.Version, Failures: []rollout.NodeFailure{f}}})
}

// resume returns the ledger with version resumed at at: its failures until then stop counting.
func resume(ledger []rollout.VersionLedger, version string, at time.Time) []rollout.VersionLedger {
	return mergeLedgers(ledger, []rollout.VersionLedger{{Version: version, ResumedAt: at}})
}

func addUnique(fs []rollout.NodeFailure, f rollout.NodeFailure) []rollout.NodeFailure {
	f.At = f.At.Truncate(time.Second)
	for _, g := range fs {
		if g.Node == f.Node && g.At.Equal(f.At) {
			return fs
		}
	}
	fs = append(fs, f)
	slices.SortStableFunc(fs, func(x, y rollout.NodeFailure) int {
		return x.At.Compare(y.At)
	})
	return fs
}

// storedHalts keeps the halts whose failures are all in the ledger: a halt caused by a failure
// whose spec could not be written is not reported (the next pass finds the failure again).
func storedHalts(halts []rollout.Halt, ledger []rollout.VersionLedger) []rollout.Halt {
	var out []rollout.Halt
	for _, h := range halts {
		i := slices.IndexFunc(ledger, func(l rollout.VersionLedger) bool { return l.Version == h.Version })
		if i < 0 {
			continue
		}
		all := true
		for _, n := range h.Nodes {
			all = all && slices.ContainsFunc(ledger[i].Failures, func(f rollout.NodeFailure) bool { return f.Node == n })
		}
		if all {
			out = append(out, h)
		}
	}
	return out
}
