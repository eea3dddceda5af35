package rollout

import (
	"fmt"
	"testing"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2024, 5, 6, 10, 0, 0, 0, time.UTC)

const (
	vOld   = "1.19.0"
	vNew   = "1.20.0"
	vOther = "1.21.0"

	idle   = v2.StateIdle
	staged = v2.StateStagedAndPerformedUpdate
	reboot = v2.StateRebootedIntoUpdate
	mon    = v2.StateMonitoringUpdate
	errRst = v2.StateErrorReset
)

type memberOpt func(*Member)

// member returns an opted-in, Ready node that runs vOld, wants vNew and is Idle.
func member(node string, opts ...memberOpt) Member {
	m := Member{
		Shadow: &v2.BottlerocketShadow{
			ObjectMeta: metav1.ObjectMeta{Name: v2.ShadowName(node)},
			Spec:       v2.BottlerocketShadowSpec{State: idle},
			Status:     &v2.BottlerocketShadowStatus{CurrentState: idle, CurrentVersion: vOld, TargetVersion: vNew},
		},
		Node:    statemachine.NodeFacts{Ready: true, ReadySince: t0.Add(-time.Hour), PodsReady: true},
		OptedIn: true,
	}
	for _, o := range opts {
		o(&m)
	}
	return m
}

// inState puts the node mid-update: spec state set at t0+at towards vNew, status reported.
func inState(spec v2.State, at time.Duration, status v2.State) memberOpt {
	return func(m *Member) {
		v := vNew
		m.Shadow.Spec = v2.BottlerocketShadowSpec{State: spec, StateTransitionTimestamp: mt(t0.Add(at)), Version: &v}
		m.Shadow.Status.CurrentState = status
		if status == reboot || status == mon {
			m.Shadow.Status.CurrentVersion = vNew
		}
	}
}

func crashes(n uint32, at time.Duration, reason string) memberOpt {
	return func(m *Member) {
		m.Shadow.Status.CrashCount = n
		m.Shadow.Status.StateTransitionFailureTimestamp = mt(t0.Add(at))
		m.Shadow.Status.FailureReason = reason
	}
}

// recorded sets the controller's failure Record: count failures, the last at t0+at.
func recorded(count int32, at time.Duration) memberOpt {
	return func(m *Member) {
		r := statemachine.Record{Count: count, At: t0.Add(at), Reason: statemachine.ReasonMonitoringFailed}
		m.Shadow.Annotations = map[string]string{statemachine.RecordAnnotation: r.String()}
	}
}

func target(v string) memberOpt { return func(m *Member) { m.Shadow.Status.TargetVersion = v } }

func upToDate() memberOpt { return target(vOld) }

func notReady() memberOpt { return func(m *Member) { m.Node.Ready = false } }

// cordoned marks the Node as cordoned by Brupop.
func cordoned() memberOpt { return func(m *Member) { m.Node.Cordoned = true } }

// nodeGone marks the Node as deleted, as statemachine.FactsOf sees a missing Node.
func nodeGone() memberOpt {
	return func(m *Member) { m.Node = statemachine.NodeFacts{PodsReady: true, Missing: true} }
}

func optedOut() memberOpt { return func(m *Member) { m.OptedIn = false } }

func mt(t time.Time) *metav1.Time { x := metav1.NewTime(t); return &x }

// zoneLabel is the label the tests' Zones read.
const zoneLabel = v2.DefaultZoneLabel

// inZone puts the node in zone.
func inZone(zone string) memberOpt {
	return func(m *Member) { m.NodeLabels = map[string]string{zoneLabel: zone} }
}

// idleFleet returns n idle nodes n01..nNN wanting vNew.
func idleFleet(n int) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = member(fmt.Sprintf("n%02d", i+1))
	}
	return ms
}

func releaseFailure(node, version string, at time.Time) NodeFailure {
	return NodeFailure{Node: node, Failure: statemachine.Failure{Reason: statemachine.ReasonBootRolledBack, Class: statemachine.ClassRelease, Version: version, At: at}}
}

// TestFixtures checks that the builders make what their comments promise, which every table
// above relies on.
func TestFixtures(t *testing.T) {
	m := member("a")
	if !m.OptedIn || !m.Node.Ready || m.Shadow.Spec.State != idle || m.Shadow.Status.CurrentVersion != vOld || m.Shadow.Status.TargetVersion != vNew {
		t.Errorf("member() = %+v / %+v, want an opted-in, Ready, Idle node on %s wanting %s", m, m.Shadow.Status, vOld, vNew)
	}
	if d := statemachine.Next(m.Shadow, m.Node, statemachine.DefaultConfig(), t0); !d.Start {
		t.Errorf("the default member does not start: %s", d.Message)
	}
	if m := member("b", upToDate()); m.Shadow.Status.TargetVersion != m.Shadow.Status.CurrentVersion {
		t.Errorf("upToDate() leaves %s -> %s", m.Shadow.Status.CurrentVersion, m.Shadow.Status.TargetVersion)
	}
	if names := idleFleet(3); len(names) != 3 || names[2].Shadow.Name != v2.ShadowName("n03") {
		t.Errorf("idleFleet(3) = %d members, last %s", len(names), names[len(names)-1].Shadow.Name)
	}
}
