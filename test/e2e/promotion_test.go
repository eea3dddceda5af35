//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bottlerocket-os/brupop-go/internal/sim"
)

// TestMaxVersionHoldsNodesBack: the hosts offer 1.21.0 and 1.22.0 and the FleetPolicy caps the
// fleet at 1.21.0: every agent pins its host to 1.21.0, and afterwards the nodes stay there
// although their hosts offer 1.22.0, which `kubectl brupop why` explains.
func TestMaxVersionHoldsNodesBack(t *testing.T) {
	opts := options(4, 2)
	opts.To, opts.AlsoOffer, opts.MaxVersion = "1.21.0", []string{"1.22.0"}, "1.21.0"
	s := newStory(t, opts)
	s.publish()
	s.waitFor("every node Idle on 1.21.0", 3*time.Minute, s.allOn("1.21.0"))
	// After its reboot each agent refreshes with the host's version lock restored: it reports
	// 1.22.0 as its host's newest, and the controller leaves it on 1.21.0.
	s.poll("every shadow reporting 1.22.0 offered", 30*time.Second, func(ctx context.Context) bool {
		for i := range opts.Nodes {
			brs, err := s.shadow(ctx, sim.NodeName(i))
			if err != nil || brs == nil || brs.Status == nil || brs.Status.TargetVersion != "1.22.0" {
				return false
			}
		}
		return true
	})
	held := s.waitFor("the fleet still on 1.21.0, nothing in flight", 10*time.Second, s.allOn("1.21.0"))
	for _, r := range held.Rows {
		if r.Target != "1.21.0" {
			t.Errorf("%s: the table shows target %s, want 1.21.0 (capped by maxVersion)", r.Name, r.Target)
		}
	}
	why := s.kubectlBrupop("why", sim.NodeName(0))
	s.checkInvariants()
	if !strings.Contains(why, "maxVersion 1.21.0 holds it back from 1.22.0") {
		t.Errorf("kubectl brupop why %s does not say maxVersion holds it back:\n%s", sim.NodeName(0), why)
	}
}

// TestZonesAndReleaseSoak: six nodes in three zones, at most one zone at a time and a release
// soak of 5 s: nothing starts before the soak ends, and then the zones update one after the
// other, both nodes of a zone together.
func TestZonesAndReleaseSoak(t *testing.T) {
	const zones, soak = 3, 5 * time.Second
	opts := options(6, 6)
	opts.Zones, opts.ZonesInFlight, opts.ReleaseSoak = zones, 1, soak
	s := newStory(t, opts)
	zoneOf := map[string]string{}
	for i := range opts.Nodes {
		zoneOf[sim.NodeName(i)] = sim.ZoneOf(i, zones)
	}
	var firstStart time.Time
	mostZones := 0
	s.onSample(func(snap sim.Snapshot) {
		live := map[string]bool{}
		for _, r := range snap.Rows {
			if r.InFlight {
				live[zoneOf[r.Name]] = true
			}
		}
		if len(live) > 0 && firstStart.IsZero() {
			firstStart = snap.At
		}
		mostZones = max(mostZones, len(live))
	})
	s.publish()
	published := time.Now()
	s.waitFor("every node Idle on 1.21.0", 4*time.Minute, s.allOn("1.21.0"))
	s.checkInvariants() // stops the observation: the hook's variables are ours from here
	// The soak counts from the controller's first sight of 1.21.0, stored to the second.
	if earliest := published.Add(soak - time.Second); firstStart.Before(earliest) {
		t.Errorf("the first node went in flight %s after the release, before the %s soak", firstStart.Sub(published).Round(time.Millisecond), soak)
	}
	if mostZones != 1 || s.maxLive != 2 {
		t.Errorf("at most %d zones and %d nodes in flight at once; want 1 zone with both its nodes", mostZones, s.maxLive)
	}
}
