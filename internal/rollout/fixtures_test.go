package rollout

import (
	"testing"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/fixture"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// The fixture's time and versions, under the tables' short names: durations are offsets from
// t0; nodes run vOld and are offered vNew; vOther is another release.
var t0 = fixture.T0

const (
	vOld   = fixture.Old
	vNew   = fixture.New
	vOther = fixture.Fix

	idle   = v2.StateIdle
	staged = v2.StateStagedAndPerformedUpdate
	reboot = v2.StateRebootedIntoUpdate
	mon    = v2.StateMonitoringUpdate
	errRst = v2.StateErrorReset
)

// member returns the member of fixture.Pair(node, opts...): by default an opted-in, Ready node
// that runs vOld, is offered vNew and is Idle.
func member(node string, opts ...fixture.Option) Member {
	n, s := fixture.Pair(node, opts...)
	return MemberOf(s, n, nil)
}

// nodeless returns the member of a shadow whose Node was deleted.
func nodeless(node string, opts ...fixture.ShadowOpt) Member {
	return MemberOf(fixture.Shadow(node, opts...), nil, nil)
}

// idleFleet returns the members of fixture.Fleet(n): idle nodes node-0 ... offered vNew.
func idleFleet(n int) []Member {
	nodes, shadows := fixture.Fleet(n, nil)
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = MemberOf(shadows[i], nodes[i], nil)
	}
	return ms
}

// recorded sets the controller's failure Record: count failures, the last at t0+at.
func recorded(count int32, at time.Duration) fixture.ShadowOpt {
	r := statemachine.Record{Count: count, At: t0.Add(at), Reason: statemachine.ReasonMonitoringFailed}
	return fixture.Annotate(statemachine.RecordAnnotation, r.String())
}

func releaseFailure(node, version string, at time.Time) NodeFailure {
	return NodeFailure{Node: node, Failure: statemachine.Failure{Reason: statemachine.ReasonBootRolledBack, Class: statemachine.ClassRelease, Version: version, At: at}}
}

// TestFixtures checks that the adapters make what their comments promise, which every table
// relies on.
func TestFixtures(t *testing.T) {
	m := member("a")
	if !m.OptedIn || !m.Node.Ready || m.Shadow.Spec.State != idle || m.Shadow.Status.CurrentVersion != vOld || m.Shadow.Status.TargetVersion != vNew {
		t.Errorf("member() = %+v / %+v, want an opted-in, Ready, Idle node on %s offered %s", m, m.Shadow.Status, vOld, vNew)
	}
	if d := statemachine.Next(m.Shadow, m.Node, statemachine.DefaultConfig(), t0); !d.Start {
		t.Errorf("the default member does not start: %s", d.Message)
	}
	if m := member("b", fixture.Cordoned(true), fixture.Zone("z")); !m.Node.Cordoned || m.NodeLabels[v2.DefaultZoneLabel] != "z" {
		t.Errorf("member(Cordoned, Zone) = %+v", m)
	}
	if m := nodeless("c"); !m.Node.Missing || m.OptedIn || m.Shadow.Name != v2.ShadowName("c") {
		t.Errorf("nodeless() = %+v, want a shadow whose Node is missing", m)
	}
	if ms := idleFleet(3); len(ms) != 3 || ms[2].Shadow.Name != v2.ShadowName("node-2") || !ms[2].OptedIn {
		t.Errorf("idleFleet(3) = %d members, last %s", len(ms), ms[len(ms)-1].Shadow.Name)
	}
	if r := statemachine.RecordFromAnnotations(member("d", recorded(2, -time.Hour)).Shadow.Annotations); r.Count != 2 || !r.At.Equal(t0.Add(-time.Hour)) {
		t.Errorf("recorded(2, -1h) = %+v", r)
	}
}
