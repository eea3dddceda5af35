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

// The fixture's time and versions, under the tables' short names: t0 is when the view is built;
// nodes run vOld and are offered vNew.
var t0 = fixture.T0

const (
	vOld = fixture.Old
	vNew = fixture.New
	ns   = fixture.Namespace
)

// The fixture's options, under the names the tables use.
var (
	updating = fixture.Updating // mid-update: the controller wants spec since t0+at, the agent reports status
	upToDate = fixture.UpToDate
	failed   = fixture.Crashed // count agent failures, the last at t0+at for reason
	zone     = fixture.Zone
	noStatus = fixture.NoStatus
	noLabel  = fixture.OptedOut
	notReady = fixture.NotReady
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

// node adds fixture.Pair(name, opts...): by default an opted-in, Ready Node and its Idle shadow
// running vOld that is offered vNew.
func node(name string, opts ...fixture.Option) inputOpt {
	return func(w *world) {
		n, s := fixture.Pair(name, opts...)
		w.Nodes = append(w.Nodes, *n)
		if s.Name != "" {
			w.Shadows = append(w.Shadows, *s)
		}
	}
}

// noShadow leaves the node without a shadow.
func noShadow() fixture.ShadowOpt { return func(s *v2.BottlerocketShadow) { s.Name = "" } }

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
			Failures: []v2.FleetPolicyNodeFailure{{Node: node, Reason: "BootRolledBack", Time: *fixture.Time(at)}}})
	}
}

// releaseSeen records in the FleetPolicy's status that version was first offered at t0+at.
func releaseSeen(version string, at time.Duration) inputOpt {
	return func(in *world) {
		if in.Policy == nil {
			policy(v2.FleetPolicySpec{})(in)
		}
		in.Policy.Status.Releases = append(in.Policy.Status.Releases, v2.FleetPolicyRelease{Version: version, FirstSeen: *fixture.Time(at)})
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

// TestFixtures checks that the adapters make what their comments promise, which every table
// relies on.
func TestFixtures(t *testing.T) {
	in := fleet(node("n1"), node("n2", upToDate(), notReady()), node("n3", noShadow()), halted(vNew, "n9", -time.Hour))
	if len(in.Nodes) != 3 || len(in.Shadows) != 2 || in.Policy == nil || len(in.Policy.Status.Versions) != 1 {
		t.Fatalf("fleet() = %d Nodes, %d shadows, policy %v", len(in.Nodes), len(in.Shadows), in.Policy)
	}
	n, s := in.Nodes[0], in.Shadows[0]
	if n.Labels[v2.NodeOptInLabel] != v2.NodeOptInValue || n.Status.Conditions[0].Status != corev1.ConditionTrue ||
		s.Name != v2.ShadowName("n1") || s.Status.CurrentVersion != vOld || s.Status.TargetVersion != vNew {
		t.Errorf("node() = %+v / %+v, want an opted-in Ready Node and an Idle shadow on %s offered %s", n, s, vOld, vNew)
	}
	if st := in.Shadows[1].Status; st.CurrentVersion != vNew || in.Nodes[1].Status.Conditions[0].Status != corev1.ConditionFalse {
		t.Errorf("upToDate()/notReady() = %+v, %v", st, in.Nodes[1].Status.Conditions)
	}
	if f := in.Policy.Status.Versions[0].Failures[0]; !f.Time.Equal(&metav1.Time{Time: t0.Add(-time.Hour)}) {
		t.Errorf("halted() failure at %s, want t0-1h", f.Time)
	}
}
