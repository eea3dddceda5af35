package controller

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/fixture"
)

// fleetPolicyCRD is the FleetPolicy CRD of a fake API server: until installed, every request
// about a FleetPolicy fails as controller-runtime's RESTMapper fails it for a kind the API
// server does not serve.
type fleetPolicyCRD struct {
	installed atomic.Bool
	// requests counts the FleetPolicy requests by verb, served or not.
	mu       sync.Mutex
	requests map[string]int
}

func (crd *fleetPolicyCRD) check(verb string, obj any) error {
	if _, ok := obj.(*v2.FleetPolicy); !ok {
		return nil
	}
	crd.mu.Lock()
	defer crd.mu.Unlock()
	crd.requests[verb]++
	if crd.installed.Load() {
		return nil
	}
	return &meta.NoKindMatchError{GroupKind: v2.GroupVersion.WithKind("FleetPolicy").GroupKind(), SearchedVersions: []string{v2.GroupVersion.Version}}
}

func (crd *fleetPolicyCRD) count(verb string) int {
	crd.mu.Lock()
	defer crd.mu.Unlock()
	return crd.requests[verb]
}

// newClusterWithoutCRD is newCluster on an API server without the FleetPolicy CRD.
func newClusterWithoutCRD(t *testing.T, objs ...client.Object) (*cluster, *fleetPolicyCRD) {
	t.Helper()
	s, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	crd := &fleetPolicyCRD{requests: map[string]int{}}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).
		WithStatusSubresource(&v2.BottlerocketShadow{}, &v2.FleetPolicy{}).
		WithInterceptorFuncs(interceptor.Funcs{
			Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
				if err := crd.check("get", obj); err != nil {
					return err
				}
				return c.Get(ctx, key, obj, opts...)
			},
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				if err := crd.check("create", obj); err != nil {
					return err
				}
				return c.Create(ctx, obj, opts...)
			},
			Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
				if err := crd.check("patch", obj); err != nil {
					return err
				}
				return c.Patch(ctx, obj, patch, opts...)
			},
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
				if err := crd.check("patch/"+sub, obj); err != nil {
					return err
				}
				return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
			},
		}).Build()
	return &cluster{t: t, c: c, clock: clocktesting.NewFakeClock(fixture.T0), events: events.NewFakeRecorder(1000)}, crd
}

// logLines records the messages of a logger.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, args)
	}, funcr.Options{})
}

// count returns the number of lines that contain text.
func (l *logLines) count(text string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, text) {
			n++
		}
	}
	return n
}

const (
	logCRDMissing   = "The FleetPolicy CRD is not installed"
	logCRDInstalled = "The FleetPolicy CRD is installed"
)

// passCtx runs one pass of r with ctx, failing the test on an error.
func (k *cluster) passCtx(ctx context.Context, r *Reconciler) {
	k.t.Helper()
	if _, err := r.Reconcile(ctx, reconcile.Request{}); err != nil {
		k.t.Fatalf("Reconcile: %v", err)
	}
}

// TestWithoutTheFleetPolicyCRD: on an API server without the FleetPolicy CRD the controller runs
// on the environment's settings, keeps the ledger and the halt in memory, never tries to create
// the FleetPolicy, and says so once. Once the CRD is installed it creates the FleetPolicy and
// stores there what it kept in memory.
func TestWithoutTheFleetPolicyCRD(t *testing.T) {
	objs := fleet(3, nil, fixture.Updating(v2.StateMonitoringUpdate, -time.Hour, v2.StateMonitoringUpdate))
	// node-0 never became healthy after its reboot: a release failure halts the version (the
	// environment's failure budget is 1).
	objs[0] = fixture.Node(fixture.NodeName(0), fixture.NotReady())
	objs = append(objs, fixture.Node("node-new"), fixture.Shadow("node-new"))
	k, crd := newClusterWithoutCRD(t, objs...)
	var logs logLines
	ctx := log.IntoContext(context.Background(), logs.logger())
	r := k.controller("ctl", alwaysOpen)
	for range 3 {
		k.passCtx(ctx, r)
		k.agents()
		k.clock.Step(time.Second)
	}
	if n := logs.count(logCRDMissing); n != 1 {
		t.Errorf("%d warnings that the CRD is missing, want 1: %q", n, logs.lines)
	}
	mustContain(t, "warning", strings.Join(logs.lines, "\n"), "do not survive a restart")
	if n := crd.count("create"); n != 0 {
		t.Errorf("%d FleetPolicy creations attempted without the CRD, want none", n)
	}
	if n := crd.count("get"); n != 1 {
		t.Errorf("%d FleetPolicy reads, want 1: the first pass learns the CRD is missing", n)
	}
	halts := k.drainEvents(EventRolloutHalted)
	if len(halts) == 0 {
		t.Fatal("no RolloutHalted Event")
	}
	for _, e := range halts {
		mustContain(t, "RolloutHalted Event", e, "the FleetPolicy CRD is not installed")
	}
	if got := k.inFlight(); slices.Contains(got, "node-new") {
		t.Errorf("node-new started on the halted version: in flight %v", got)
	}

	// The CRD is installed: the poller finds it and asks for a pass, which creates the
	// FleetPolicy with the halt and the settings applied so far.
	crd.installed.Store(true)
	r.policyKind.discover = func(context.Context) (bool, error) { return true, nil }
	watches := 0
	r.policyKind.watch = func() error { watches++; return nil }
	if served, err := r.discoverPolicyKind(ctx); !served || err != nil {
		t.Fatalf("discoverPolicyKind = %v, %v; want served", served, err)
	}
	select {
	case <-r.policyKind.appeared:
	default:
		t.Fatal("the CRD appeared but no pass was asked for")
	}
	k.passCtx(ctx, r)
	k.passCtx(ctx, r)
	st := k.policy().Status
	i := slices.IndexFunc(st.Versions, func(v v2.FleetPolicyVersionStatus) bool { return v.Version == fixture.New })
	if i < 0 || !st.Versions[i].Halted || len(st.Versions[i].Failures) != 1 || st.Versions[i].Failures[0].Node != fixture.NodeName(0) {
		t.Errorf("stored versions %+v, want %s halted after node-0's failure", st.Versions, fixture.New)
	}
	if st.Applied == nil || st.Applied.Spec.MaxConcurrentUpdates != "1" {
		t.Errorf("status.applied = %+v, want the environment's settings", st.Applied)
	}
	if watches != 1 || logs.count(logCRDInstalled) != 1 || logs.count(logCRDMissing) != 1 {
		t.Errorf("%d watches started, %d logs of the installed CRD, %d of the missing one; want 1 each", watches,
			logs.count(logCRDInstalled), logs.count(logCRDMissing))
	}
	if evs := k.drainEvents(EventRolloutHalted); len(evs) != 0 {
		t.Errorf("the halt was announced again once stored: %q", evs)
	}
	if r.unsaved != nil {
		t.Errorf("state still unsaved once the FleetPolicy exists: %+v", r.unsaved)
	}
}

// TestTheFleetPolicyWatchStartsOnce: with the CRD installed the first pass starts the
// FleetPolicy watch, and no pass starts another.
func TestTheFleetPolicyWatchStartsOnce(t *testing.T) {
	k := newCluster(t, fleet(2, nil)...)
	r := k.controller("ctl", alwaysOpen)
	watches := 0
	r.policyKind.watch = func() error { watches++; return nil }
	for range 3 {
		k.pass(r)
	}
	if watches != 1 {
		t.Errorf("%d FleetPolicy watches started, want 1", watches)
	}
	if k.policy().Status.Applied == nil {
		t.Error("the FleetPolicy was not created with the applied settings")
	}
}

// TestPollPolicyKind: the poller asks until the API server serves FleetPolicies, warns once,
// retries after an error, and returns once they are served.
func TestPollPolicyKind(t *testing.T) {
	k := newCluster(t)
	o := Options{Namespace: fixture.Namespace, NodeName: "ctl", Environment: alwaysOpen, TimeZone: "UTC", Clock: k.clock,
		CRDPollInterval: time.Millisecond}
	r := NewReconciler(k.c, k.c, k.events, nil, o)
	answers := []error{nil, errors.New("discovery unavailable"), nil, nil}
	asked := 0
	r.policyKind.discover = func(context.Context) (bool, error) {
		asked++
		if asked > len(answers) {
			return true, nil
		}
		return false, answers[asked-1]
	}
	var logs logLines
	ctx, cancel := context.WithTimeout(log.IntoContext(context.Background(), logs.logger()), 10*time.Second)
	defer cancel()
	if err := r.pollPolicyKind(ctx); err != nil || ctx.Err() != nil {
		t.Fatalf("pollPolicyKind: %v (context: %v)", err, ctx.Err())
	}
	if asked != len(answers)+1 || !r.policyKind.served() {
		t.Errorf("asked %d times, served %v; want %d, true", asked, r.policyKind.served(), len(answers)+1)
	}
	if logs.count(logCRDMissing) != 1 || logs.count("discovery unavailable") != 1 || logs.count(logCRDInstalled) != 1 {
		t.Errorf("logs %q, want one warning, one error and one line when the CRD appears", logs.lines)
	}
}
