package fleetview

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/fixture"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
)

var t0 = time.Date(2024, 5, 6, 10, 0, 0, 0, time.UTC)

const (
	vOld = "1.19.0"
	vNew = "1.20.0"
	ns   = v2.DefaultNamespace
)

// world is a test Input and the controller that publishes its settings in the FleetPolicy's
// status.
type world struct {
	Input
	// env is the controller's environment the test controller resolves the spec against.
	env rollout.Environment
	// controllerNode is what the controller writes in status.controllerNode.
	controllerNode string
	// unpublished leaves the FleetPolicy's status as the options made it.
	unpublished bool
	// before is the spec of the generation before the FleetPolicy's, which the controller
	// applied; notSeen says the controller has not acted on the latest generation yet.
	before  *v2.FleetPolicySpec
	notSeen bool
}

// inputOpt changes a test world.
type inputOpt func(*world)

// fleet returns an Input at t0 with the given nodes, whose FleetPolicy's status holds what a
// controller with MAX_CONCURRENT_UPDATE=1 publishes; the FleetPolicy is created empty when no
// option makes it, as the controller does.
func fleet(opts ...inputOpt) Input {
	w := &world{Input: Input{Namespace: ns, Now: t0}, env: rollout.Environment{MaxConcurrentUpdate: "1"}}
	for _, o := range opts {
		o(w)
	}
	if !w.unpublished {
		w.publish()
	}
	return w.Input
}

// publish writes the status the controller writes after a pass: the resolved spec in
// status.applied, or, for a spec that does not resolve, Ready=False and the settings it keeps.
func (w *world) publish() {
	if w.Policy == nil {
		policy(v2.FleetPolicySpec{})(w)
	}
	fp := w.Policy
	st := &fp.Status
	st.ControllerNode = w.controllerNode
	resolve := func(spec v2.FleetPolicySpec, generation int64) (*v2.FleetPolicyApplied, error) {
		s, err := rollout.SettingsFrom(&v2.FleetPolicy{Spec: spec}, w.env)
		if err != nil {
			return nil, err
		}
		return &v2.FleetPolicyApplied{Generation: generation, Time: metav1.NewTime(t0.Add(-time.Hour)), Spec: s.Resolved()}, nil
	}
	if w.before != nil {
		fp.Generation = 2
		st.Applied, _ = resolve(*w.before, 1)
	}
	st.ObservedGeneration = fp.Generation
	if w.notSeen {
		st.ObservedGeneration = fp.Generation - 1
		return
	}
	applied, err := resolve(fp.Spec, fp.Generation)
	if err == nil {
		st.Applied = applied
		return
	}
	keep := "no valid policy was ever applied, so no update starts until it is fixed"
	if st.Applied != nil {
		keep = fmt.Sprintf("the controller keeps applying the settings of generation %d (status.applied)", st.Applied.Generation)
	}
	st.Conditions = append(st.Conditions, metav1.Condition{Type: conditionReady, Status: metav1.ConditionFalse,
		Reason: "InvalidPolicy", Message: err.Error() + "; " + keep, ObservedGeneration: fp.Generation})
}

// unpublished leaves status.applied out: the controller never ran, or is older than it.
func unpublished() inputOpt { return func(w *world) { w.unpublished = true } }

// before says the controller applied spec at the FleetPolicy's previous generation.
func before(spec v2.FleetPolicySpec) inputOpt { return func(w *world) { w.before = &spec } }

// notSeen says the controller has not acted on the FleetPolicy's latest generation yet.
func notSeen() inputOpt { return func(w *world) { w.notSeen = true } }

type nodeOpt func(*corev1.Node, *v2.BottlerocketShadow)

// node adds an opted-in, Ready Node and its Idle shadow running vOld that wants vNew.
func node(name string, opts ...nodeOpt) inputOpt {
	return func(in *world) {
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
func failed(count uint32, at time.Duration, reason string) nodeOpt {
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
	return func(in *world) { in.Policy = fixture.Policy(func(s *v2.FleetPolicySpec) { *s = spec }) }
}

// halted records a release failure of node on version at t0+at in the FleetPolicy's ledger.
func halted(version, node string, at time.Duration) inputOpt {
	return func(in *world) {
		if in.Policy == nil {
			policy(v2.FleetPolicySpec{})(in)
		}
		in.Policy.Status.Versions = append(in.Policy.Status.Versions, v2.FleetPolicyVersionStatus{Version: version, Halted: true,
			Failures: []v2.FleetPolicyNodeFailure{{Node: node, Reason: "BootRolledBack", Time: metav1.NewTime(t0.Add(at))}}})
	}
}

// releaseSeen records in the FleetPolicy's status that version was first offered at t0+at.
func releaseSeen(version string, at time.Duration) inputOpt {
	return func(in *world) {
		if in.Policy == nil {
			policy(v2.FleetPolicySpec{})(in)
		}
		in.Policy.Status.Releases = append(in.Policy.Status.Releases, v2.FleetPolicyRelease{Version: version, FirstSeen: metav1.NewTime(t0.Add(at))})
	}
}

// env sets the environment the controller resolves the spec against.
func env(maxConcurrent, cron string) inputOpt {
	return func(w *world) {
		w.env.MaxConcurrentUpdate, w.env.SchedulerCronExpression = maxConcurrent, cron
	}
}

// controllerOn says the controller runs on node (status.controllerNode).
func controllerOn(node string) inputOpt { return func(w *world) { w.controllerNode = node } }

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
