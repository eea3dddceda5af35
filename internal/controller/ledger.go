package controller

import (
	"slices"
	"strings"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
)

// The ledger of release failures lives in the FleetPolicy's status. A pass adds the failures
// whose spec it wrote and stores the status; one it could not store is merged into the next
// pass's (mergeStatus). Times are kept to the second, as metav1.Time stores them, so that a
// failure read back from status equals the one written.

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

// recordFailure returns the ledger with f added to its version.
func recordFailure(ledger []rollout.VersionLedger, f rollout.NodeFailure) []rollout.VersionLedger {
	return mergeLedgers(ledger, []rollout.VersionLedger{{Version: f.Version, Failures: []rollout.NodeFailure{f}}})
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

// mergeStatus returns the stored status with what an unsaved one adds: its failures, halts and
// resumes, its releases (the earlier first sight wins), its later run end, and its applied
// settings when none are stored. Conditions and counts are the stored ones (a pass recomputes
// them).
func mergeStatus(stored, unsaved v2.FleetPolicyStatus) v2.FleetPolicyStatus {
	out := *stored.DeepCopy()
	for _, u := range unsaved.Versions {
		i := slices.IndexFunc(out.Versions, func(v v2.FleetPolicyVersionStatus) bool { return v.Version == u.Version })
		if i < 0 {
			out.Versions = append(out.Versions, *u.DeepCopy())
			continue
		}
		v := &out.Versions[i]
		for _, f := range u.Failures {
			if !slices.ContainsFunc(v.Failures, func(g v2.FleetPolicyNodeFailure) bool { return g.Node == f.Node && g.Time.Equal(&f.Time) }) {
				v.Failures = append(v.Failures, f)
			}
		}
		slices.SortStableFunc(v.Failures, func(x, y v2.FleetPolicyNodeFailure) int { return x.Time.Compare(y.Time.Time) })
		if u.ResumedAt != nil && (v.ResumedAt == nil || u.ResumedAt.After(v.ResumedAt.Time)) {
			v.ResumedAt = u.ResumedAt.DeepCopy()
		}
		if u.Halted && !v.Halted {
			v.Halted, v.HaltedSince, v.Reason = true, u.HaltedSince.DeepCopy(), u.Reason
		}
	}
	slices.SortFunc(out.Versions, func(x, y v2.FleetPolicyVersionStatus) int { return strings.Compare(x.Version, y.Version) })
	for _, u := range unsaved.Releases {
		i := slices.IndexFunc(out.Releases, func(r v2.FleetPolicyRelease) bool { return r.Version == u.Version })
		switch {
		case i < 0:
			out.Releases = append(out.Releases, u)
		case u.FirstSeen.Before(&out.Releases[i].FirstSeen):
			out.Releases[i].FirstSeen = u.FirstSeen
		}
	}
	slices.SortFunc(out.Releases, func(x, y v2.FleetPolicyRelease) int { return strings.Compare(x.Version, y.Version) })
	if u := unsaved.LastRunEnd; u != nil && (out.LastRunEnd == nil || u.After(out.LastRunEnd.Time)) {
		out.LastRunEnd = u.DeepCopy()
	}
	if out.Applied == nil {
		out.Applied = unsaved.Applied.DeepCopy()
	}
	return out
}

// newHalts returns the halts that base does not already record as halted: each halt is
// announced once, by whichever replica stores it.
func newHalts(base v2.FleetPolicyStatus, halts []rollout.Halt) []rollout.Halt {
	var out []rollout.Halt
	for _, h := range halts {
		if !slices.ContainsFunc(base.Versions, func(v v2.FleetPolicyVersionStatus) bool { return v.Version == h.Version && v.Halted }) {
			out = append(out, h)
		}
	}
	return out
}
