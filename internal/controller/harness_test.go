package controller

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/fixture"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// cluster is the API server of the Reconcile unit tests: controller-runtime's fake client (reads
// are never stale, so every pass sees the writes of the last), a fake clock at fixture.T0, and
// the Events of every controller process started on it.
type cluster struct {
	t      *testing.T
	c      client.Client
	clock  *clocktesting.FakeClock
	events *events.FakeRecorder
}

func newCluster(t *testing.T, objs ...client.Object) *cluster {
	t.Helper()
	s, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).
		WithStatusSubresource(&v2.BottlerocketShadow{}, &v2.FleetPolicy{}).Build()
	return &cluster{t: t, c: c, clock: clocktesting.NewFakeClock(fixture.T0), events: events.NewFakeRecorder(1000)}
}

// fleet returns the objects of n fixture nodes and their shadows.
func fleet(n int, nodeOpts []fixture.NodeOpt, shadowOpts ...fixture.ShadowOpt) []client.Object {
	nodes, shadows := fixture.Fleet(n, nodeOpts, shadowOpts...)
	var objs []client.Object
	for i := range nodes {
		objs = append(objs, nodes[i], shadows[i])
	}
	return objs
}

// controller starts a controller process: a new Reconciler, with nothing in memory, on node with
// the environment env (MAX_CONCURRENT_UPDATE and the schedule).
func (k *cluster) controller(node string, env rollout.Environment) *Reconciler {
	k.t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		k.t.Fatal(err)
	}
	return NewReconciler(k.c, k.c, k.events, m, Options{Namespace: fixture.Namespace, NodeName: node, Environment: env,
		TimeZone: "UTC", Clock: k.clock})
}

// pass runs one pass of r, failing the test on an error.
func (k *cluster) pass(r *Reconciler) reconcile.Result {
	k.t.Helper()
	res, err := r.Reconcile(context.Background(), reconcile.Request{})
	if err != nil {
		k.t.Fatalf("Reconcile: %v", err)
	}
	return res
}

func (k *cluster) shadows() []v2.BottlerocketShadow {
	k.t.Helper()
	var list v2.BottlerocketShadowList
	if err := k.c.List(context.Background(), &list, client.InNamespace(fixture.Namespace)); err != nil {
		k.t.Fatal(err)
	}
	return list.Items
}

// inFlight returns the nodes whose desired state is not Idle, sorted.
func (k *cluster) inFlight() []string {
	var out []string
	for _, s := range k.shadows() {
		if s.Spec.State != v2.StateIdle {
			n, _ := v2.NodeNameFromShadow(s.Name)
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func (k *cluster) policy() *v2.FleetPolicy {
	k.t.Helper()
	fp := &v2.FleetPolicy{}
	if err := k.c.Get(context.Background(), client.ObjectKey{Namespace: fixture.Namespace, Name: v2.DefaultFleetPolicyName}, fp); err != nil {
		k.t.Fatal(err)
	}
	return fp
}

// editPolicy changes the FleetPolicy's spec as a user would: the generation grows.
func (k *cluster) editPolicy(mutate func(*v2.FleetPolicySpec)) {
	k.t.Helper()
	fp := k.policy()
	mutate(&fp.Spec)
	fp.Generation++
	if err := k.c.Update(context.Background(), fp); err != nil {
		k.t.Fatal(err)
	}
}

// ready returns the FleetPolicy's Ready condition.
func (k *cluster) ready() metav1.Condition {
	k.t.Helper()
	c := meta.FindStatusCondition(k.policy().Status.Conditions, ConditionReady)
	if c == nil {
		k.t.Fatal("FleetPolicy has no Ready condition")
	}
	return *c
}

// agents plays every agent once: each reports the desired state as reached (running
// spec.version once rebooted), as the integration harness's agents do.
func (k *cluster) agents() {
	k.t.Helper()
	for _, s := range k.shadows() {
		st := s.Status
		if st == nil || st.CurrentState == s.Spec.State {
			continue
		}
		prev := st.CurrentState
		st.CurrentState = s.Spec.State
		switch s.Spec.State {
		case v2.StateRebootedIntoUpdate:
			if s.Spec.Version != nil {
				st.CurrentVersion = *s.Spec.Version
			}
		case v2.StateIdle:
			if _, failed := s.Annotations[statemachine.RecordAnnotation]; prev == v2.StateMonitoringUpdate && !failed {
				st.CrashCount, st.StateTransitionFailureTimestamp = 0, nil
			}
		}
		if err := k.c.Status().Update(context.Background(), &s); err != nil {
			k.t.Fatal(err)
		}
	}
}

// drainEvents returns the Events emitted so far with reason, emptying the recorder.
func (k *cluster) drainEvents(reason string) []string {
	var out []string
	for {
		select {
		case e := <-k.events.Events:
			if strings.Contains(e, " "+reason+" ") {
				out = append(out, e)
			}
		default:
			return out
		}
	}
}

// closedWindow is a FleetPolicy schedule that is closed at fixture.T0 (10:00 UTC): 03:00-04:59.
func closedWindow(spec *v2.FleetPolicySpec) {
	spec.Schedule = &v2.FleetPolicySchedule{Cron: "* * 3-4 * * *"}
}

// invalidCron is a schedule typo the CRD cannot catch: five fields instead of six or seven.
func invalidCron(spec *v2.FleetPolicySpec) {
	spec.Schedule = &v2.FleetPolicySchedule{Cron: "0 3 * * *"}
}

// alwaysOpen is upstream's default environment: one node at a time, any time.
var alwaysOpen = rollout.Environment{MaxConcurrentUpdate: "1"}

func mustContain(t *testing.T, what, s, want string) {
	t.Helper()
	if !strings.Contains(s, want) {
		t.Errorf("%s %q does not mention %q", what, s, want)
	}
}
