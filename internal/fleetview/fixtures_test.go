package fleetview

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

var t0 = time.Date(2024, 5, 6, 10, 0, 0, 0, time.UTC)

const (
	vOld = "1.19.0"
	vNew = "1.20.0"
	ns   = v2.DefaultNamespace
)

// inputOpt changes a test Input.
type inputOpt func(*Input)

// fleet returns an Input at t0 with upstream's defaults and the given nodes.
func fleet(opts ...inputOpt) Input {
	in := Input{Namespace: ns, Now: t0, Controller: Controller{Source: "test"}}
	for _, o := range opts {
		o(&in)
	}
	return in
}

type nodeOpt func(*corev1.Node, *v2.BottlerocketShadow)

// node adds an opted-in, Ready Node and its Idle shadow running vOld that wants vNew.
func node(name string, opts ...nodeOpt) inputOpt {
	return func(in *Input) {
		n := corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v2.NodeOptInLabel: v2.NodeOptInValue}},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
				LastTransitionTime: metav1.NewTime(t0.Add(-time.Hour))}}},
		}
		s := v2.BottlerocketShadow{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v2.ShadowName(name)},
			Spec:       v2.BottlerocketShadowSpec{State: v2.StateIdle},
			Status:     &v2.BottlerocketShadowStatus{CurrentState: v2.StateIdle, CurrentVersion: vOld, TargetVersion: vNew},
		}
		for _, o := range opts {
			o(&n, &s)
		}
		if n.Name != "" {
			in.Nodes = append(in.Nodes, n)
		}
		if s.Name != "" {
			in.Shadows = append(in.Shadows, s)
		}
	}
}

// updating puts the node mid-update: the controller wants spec since t0+at, the agent reports status.
func updating(spec v2.State, at time.Duration, status v2.State) nodeOpt {
	return func(_ *corev1.Node, s *v2.BottlerocketShadow) {
		v := vNew
		s.Spec = v2.BottlerocketShadowSpec{State: spec, StateTransitionTimestamp: mt(t0.Add(at)), Version: &v}
		s.Status.CurrentState = status
		if status == v2.StateRebootedIntoUpdate || status == v2.StateMonitoringUpdate {
			s.Status.CurrentVersion = vNew
		}
	}
}

func upToDate() nodeOpt {
	return func(_ *corev1.Node, s *v2.BottlerocketShadow) {
		s.Status.CurrentVersion, s.Status.TargetVersion = vNew, vNew
	}
}

// failed records count agent failures, the last at t0+at for reason.
func failed(count int32, at time.Duration, reason string) nodeOpt {
	return func(_ *corev1.Node, s *v2.BottlerocketShadow) {
		s.Status.CrashCount, s.Status.StateTransitionFailureTimestamp, s.Status.FailureReason = count, mt(t0.Add(at)), reason
	}
}

// zone puts the Node in zone.
func zone(z string) nodeOpt {
	return func(n *corev1.Node, _ *v2.BottlerocketShadow) { n.Labels[v2.DefaultZoneLabel] = z }
}

func noStatus() nodeOpt { return func(_ *corev1.Node, s *v2.BottlerocketShadow) { s.Status = nil } }

func noLabel() nodeOpt { return func(n *corev1.Node, _ *v2.BottlerocketShadow) { n.Labels = nil } }

func noShadow() nodeOpt { return func(_ *corev1.Node, s *v2.BottlerocketShadow) { s.Name = "" } }

func notReady() nodeOpt {
	return func(n *corev1.Node, _ *v2.BottlerocketShadow) { n.Status.Conditions[0].Status = corev1.ConditionFalse }
}

// policy sets the FleetPolicy's spec.
func policy(spec v2.FleetPolicySpec) inputOpt {
	return func(in *Input) {
		in.Policy = &v2.FleetPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v2.DefaultFleetPolicyName}, Spec: spec}
	}
}

// halted records a release failure of node on version at t0+at in the FleetPolicy's ledger.
func halted(version, node string, at time.Duration) inputOpt {
	return func(in *Input) {
		if in.Policy == nil {
			policy(v2.FleetPolicySpec{})(in)
		}
		in.Policy.Status.Versions = append(in.Policy.Status.Versions, v2.FleetPolicyVersionStatus{Version: version, Halted: true,
			Failures: []v2.FleetPolicyNodeFailure{{Node: node, Reason: "BootRolledBack", Time: metav1.NewTime(t0.Add(at))}}})
	}
}

// releaseSeen records in the FleetPolicy's status that version was first offered at t0+at.
func releaseSeen(version string, at time.Duration) inputOpt {
	return func(in *Input) {
		if in.Policy == nil {
			policy(v2.FleetPolicySpec{})(in)
		}
		in.Policy.Status.Releases = append(in.Policy.Status.Releases, v2.FleetPolicyRelease{Version: version, FirstSeen: metav1.NewTime(t0.Add(at))})
	}
}

func env(maxConcurrent, cron string) inputOpt {
	return func(in *Input) {
		in.Controller.Environment.MaxConcurrentUpdate, in.Controller.Environment.SchedulerCronExpression = maxConcurrent, cron
	}
}

func controllerOn(node string) inputOpt { return func(in *Input) { in.Controller.NodeName = node } }

func mt(t time.Time) *metav1.Time { x := metav1.NewTime(t); return &x }

// TestFixtures checks that the builders make what their comments promise, which every table
// relies on.
func TestFixtures(t *testing.T) {
	in := fleet(node("n1"), node("n2", upToDate(), notReady()), halted(vNew, "n9", -time.Hour))
	if len(in.Nodes) != 2 || len(in.Shadows) != 2 || in.Policy == nil || len(in.Policy.Status.Versions) != 1 {
		t.Fatalf("fleet() = %d Nodes, %d shadows, policy %v", len(in.Nodes), len(in.Shadows), in.Policy)
	}
	n, s := in.Nodes[0], in.Shadows[0]
	if n.Labels[v2.NodeOptInLabel] != v2.NodeOptInValue || n.Status.Conditions[0].Status != corev1.ConditionTrue ||
		s.Name != v2.ShadowName("n1") || s.Status.CurrentVersion != vOld || s.Status.TargetVersion != vNew {
		t.Errorf("node() = %+v / %+v, want an opted-in Ready Node and an Idle shadow on %s wanting %s", n, s, vOld, vNew)
	}
	if st := in.Shadows[1].Status; st.CurrentVersion != vNew || in.Nodes[1].Status.Conditions[0].Status != corev1.ConditionFalse {
		t.Errorf("upToDate()/notReady() = %+v, %v", st, in.Nodes[1].Status.Conditions)
	}
}
