package hostapitest

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// semver is a release version major.minor.patch, the form Bottlerocket versions take.
type semver [3]int

// parseVersion parses "1.26.2" or "v1.26.2".
func parseVersion(s string) (semver, error) {
	parts := strings.Split(strings.TrimPrefix(s, "v"), ".")
	var v semver
	if len(parts) != 3 {
		return v, fmt.Errorf("hostapitest: version %q is not major.minor.patch", s)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || (len(p) > 1 && p[0] == '0') {
			return v, fmt.Errorf("hostapitest: version %q is not major.minor.patch", s)
		}
		v[i] = n
	}
	return v, nil
}

func (v semver) String() string { return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]) }

func (v semver) compare(w semver) int {
	if c := cmp.Compare(v[0], w[0]); c != 0 {
		return c
	}
	if c := cmp.Compare(v[1], w[1]); c != 0 {
		return c
	}
	return cmp.Compare(v[2], w[2])
}

// parseVersions parses and normalizes versions, sorted descending without duplicates.
func parseVersions(in []string) ([]semver, error) {
	out := make([]semver, 0, len(in))
	for _, s := range in {
		v, err := parseVersion(s)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b semver) int { return b.compare(a) })
	return slices.Compact(out), nil
}

// choose is updog's choice (docs/hostapi.md, "Choosing an update") among the descending
// candidates for a host running current with the given version-lock; ok is false when no update
// applies.
func choose(current semver, candidates []semver, lock string) (semver, bool) {
	if len(candidates) == 0 {
		return semver{}, false
	}
	if lock == "latest" {
		highest := candidates[0]
		for _, v := range candidates {
			// A host above the published maximum (a pulled release) moves to the highest.
			if current.compare(v) < 0 || current.compare(highest) > 0 {
				return v, true
			}
		}
		return semver{}, false
	}
	want, err := parseVersion(lock)
	if err != nil || want == current {
		return semver{}, false
	}
	return want, slices.Contains(candidates, want)
}

// validVersionLock reports whether the host accepts s as updates.version-lock.
func validVersionLock(s string) bool {
	if s == "latest" {
		return true
	}
	_, err := parseVersion(s)
	return err == nil
}
