package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	brupopv2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/controller"
	"github.com/bottlerocket-os/brupop-go/internal/controlplane"
	"github.com/bottlerocket-os/brupop-go/internal/fixture"
	"github.com/bottlerocket-os/brupop-go/internal/metrics"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// The fixture's versions: fleet nodes run ctrlOldVersion and are offered ctrlNewVersion.
const (
	ctrlOldVersion = fixture.Old
	ctrlNewVersion = fixture.New
)

var setLoggerOnce sync.Once

// requestCounter counts the API requests of a client, watches excluded.
type requestCounter struct{ n atomic.Int64 }

func (rc *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.Query().Get("watch") != "true" {
			rc.n.Add(1)
		}
		return rt.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// controllerIdentity installs the generated ClusterRole, binds it to the controller's
// ServiceAccount in ns, and returns a configuration authenticated as that ServiceAccount only.
func controllerIdentity(t *testing.T, c client.Client, ns string, counter *requestCounter) *rest.Config {
	t.Helper()
	return controllerIdentityOn(t, cluster, c, ns, counter)
}

// controllerIdentityOn is controllerIdentity on the control plane cp, of which c is an
// administrator's client.
func controllerIdentityOn(t *testing.T, cp *controlplane.ControlPlane, c client.Client, ns string, counter *requestCounter) *rest.Config {
	t.Helper()
	ctx := context.Background()
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "controller", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(raw, &role); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &role); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "brupop-controller-service-account"}}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "brupop-controller-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: ns}},
	}
	for _, o := range []client.Object{sa, binding} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), binding) })
	cs := kubernetes.NewForConfigOrDie(cp.Config)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(cp.Config)
	cfg.BearerToken = tr.Status.Token
	cfg.QPS, cfg.Burst = 200, 400
	if counter != nil {
		cfg.Wrap(counter.wrap)
	}
	return cfg
}

// runningController is a controller process running in the test.
type runningController struct {
	once   sync.Once
	cancel context.CancelFunc
	done   chan error
	// reg holds the metrics when the controller has a registry of its own.
	reg *prometheus.Registry
}

// testOptions are the controller options of a test in ns.
func testOptions(ns, maxConcurrent string) controller.Options {
	return controller.Options{
		Namespace: ns, NodeName: "controller-node-" + ns, TimeZone: "UTC",
		Environment: rollout.Environment{MaxConcurrentUpdate: maxConcurrent},
		MetricsAddr: "0", HealthAddr: "0", LeaderElect: true, LeaderElectionID: controller.DefaultLeaderElectionID,
		LogFormat: "json", LogFilter: "error",
	}
}

// startController runs a controller with cfg's identity until stop or the end of the test, with
// its metrics in a registry of its own.
func startController(t *testing.T, cfg *rest.Config, o controller.Options) *runningController {
	t.Helper()
	reg := prometheus.NewRegistry()
	rc := startControllerWith(t, cfg, o, reg)
	rc.reg = reg
	return rc
}

// startControllerWith is startController with the metrics registered in reg.
func startControllerWith(t *testing.T, cfg *rest.Config, o controller.Options, reg prometheus.Registerer) *runningController {
	t.Helper()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	setLoggerOnce.Do(func() { ctrllog.SetLogger(o.Logger(os.Stderr)) })
	mgr, err := controller.NewManager(cfg, o, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rc := &runningController{cancel: cancel, done: make(chan error, 1)}
	go func() { rc.done <- mgr.Start(ctx) }()
	t.Cleanup(func() { rc.stop(t) })
	return rc
}

// stop stops the controller and waits for it to end.
func (rc *runningController) stop(t *testing.T) {
	t.Helper()
	rc.once.Do(func() {
		rc.cancel()
		select {
		case err := <-rc.done:
			if err != nil {
				t.Errorf("controller ended with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("controller did not stop within 30s")
		}
	})
}

// passes returns the number of decision passes the controller made.
func (rc *runningController) passes(t *testing.T) float64 {
	t.Helper()
	mfs, err := rc.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == metrics.PassesName {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// gauge returns a gauge's value for one label value.
func (rc *runningController) gauge(t *testing.T, name, labelValue string) float64 {
	t.Helper()
	mfs, err := rc.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == labelValue {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// newFleetNode creates fixture.Pair(name) in ns: an opted-in, Ready Node and its shadow, Idle on
// ctrlOldVersion and offered ctrlNewVersion. The Node is deleted when the test ends.
func newFleetNode(t *testing.T, c client.Client, ns, name string) {
	t.Helper()
	ctx := context.Background()
	node, brs := fixture.Pair(name)
	if err := c.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), node) })
	setNodeReady(t, c, name, true)
	heartbeat(t, c, name)
	brs.Namespace = ns
	brs.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: name, UID: node.UID}}
	status := brs.Status // Create ignores it: the status is a subresource
	if err := c.Create(ctx, brs); err != nil {
		t.Fatal(err)
	}
	brs.Status = status
	if err := c.Status().Update(ctx, brs); err != nil {
		t.Fatal(err)
	}
}

// newFleet creates n fleet nodes of ns and returns their names: the fixture's (fixture.NodeName)
// after the namespace, as Nodes are cluster-scoped.
func newFleet(t *testing.T, c client.Client, ns string, n int) []string {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = ns + "-" + fixture.NodeName(i)
		newFleetNode(t, c, ns, names[i])
	}
	return names
}

// setNodeReady sets the Ready condition of a Node, as its kubelet would.
func setNodeReady(t *testing.T, c client.Client, name string, ready bool) {
	t.Helper()
	eventually(t, 10*time.Second, func() error { return nodeReady(context.Background(), c, name, ready) })
}

// nodeReady sets the Ready condition of a Node once.
func nodeReady(ctx context.Context, c client.Client, name string, ready bool) error {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	var n corev1.Node
	if err := c.Get(ctx, client.ObjectKey{Name: name}, &n); err != nil {
		return err
	}
	now := metav1.Now()
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status, Reason: "Test",
		LastHeartbeatTime: now, LastTransitionTime: now}}
	return c.Status().Update(ctx, &n)
}

// agentAction says what a simulated agent does with a desired state it has not reached.
type agentAction func(brs *brupopv2.BottlerocketShadow) (respond bool)

// runAgents simulates the agents of the namespace until the test ends: every 50 ms each agent
// whose spec differs from its status reports the desired state as reached (running spec.version
// from RebootedIntoUpdate on), unless act says not to respond.
func runAgents(t *testing.T, c client.Client, ns string, act agentAction) {
	t.Helper()
	everyTick(t, 50*time.Millisecond, func(ctx context.Context) {
		var list brupopv2.BottlerocketShadowList
		if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return
		}
		for i := range list.Items {
			agentStep(ctx, c, &list.Items[i], act)
		}
	})
}

func agentStep(ctx context.Context, c client.Client, brs *brupopv2.BottlerocketShadow, act agentAction) {
	st := brs.Status
	if st == nil || st.CurrentState == brs.Spec.State || (act != nil && !act(brs)) {
		return
	}
	prev := st.CurrentState
	st.CurrentState = brs.Spec.State
	switch brs.Spec.State {
	case brupopv2.StateRebootedIntoUpdate:
		if brs.Spec.Version != nil {
			st.CurrentVersion = *brs.Spec.Version
		}
	case brupopv2.StateIdle:
		if _, failed := brs.Annotations[statemachine.RecordAnnotation]; prev == brupopv2.StateMonitoringUpdate && !failed {
			st.CrashCount, st.StateTransitionFailureTimestamp = 0, nil
		}
	}
	_ = c.Status().Update(ctx, brs) // a conflict is retried on the next tick
}

// fleetWatch follows the shadows of a namespace through a watch and records the most nodes
// ever in flight (upstream's active set) and how often each node started.
type fleetWatch struct {
	mu          sync.Mutex
	shadows     map[string]*brupopv2.BottlerocketShadow
	maxInFlight int
	starts      map[string]int
}

func watchFleet(t *testing.T, ns string) *fleetWatch {
	t.Helper()
	wc, err := client.NewWithWatch(cluster.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(context.Background(), &brupopv2.BottlerocketShadowList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	fw := &fleetWatch{shadows: map[string]*brupopv2.BottlerocketShadow{}, starts: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if brs, ok := ev.Object.(*brupopv2.BottlerocketShadow); ok {
				fw.observe(ev.Type, brs)
			}
		}
	}()
	t.Cleanup(func() { w.Stop(); <-done })
	return fw
}

func (fw *fleetWatch) observe(typ watch.EventType, brs *brupopv2.BottlerocketShadow) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	prev := fw.shadows[brs.Name]
	if typ == watch.Deleted {
		delete(fw.shadows, brs.Name)
		return
	}
	if brs.Spec.State == brupopv2.StateStagedAndPerformedUpdate && (prev == nil || prev.Spec.State != brupopv2.StateStagedAndPerformedUpdate) {
		fw.starts[brs.Name]++
	}
	fw.shadows[brs.Name] = brs
	n := 0
	for _, s := range fw.shadows {
		if s.Status != nil && (s.Status.CurrentState != brupopv2.StateIdle || s.Spec.State != brupopv2.StateIdle) {
			n++
		}
	}
	fw.maxInFlight = max(fw.maxInFlight, n)
}

// snapshot returns the most nodes seen in flight and the starts per shadow.
func (fw *fleetWatch) snapshot() (int, map[string]int) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	starts := make(map[string]int, len(fw.starts))
	for k, v := range fw.starts {
		starts[k] = v
	}
	return fw.maxInFlight, starts
}

// allUpdated waits until every shadow of ns runs ctrlNewVersion and is Idle.
func allUpdated(t *testing.T, c client.Client, ns string, want int, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, func() error {
		var list brupopv2.BottlerocketShadowList
		if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		done := 0
		for _, s := range list.Items {
			if s.Status != nil && s.Status.CurrentVersion == ctrlNewVersion && s.Status.CurrentState == brupopv2.StateIdle && s.Spec.State == brupopv2.StateIdle {
				done++
			}
		}
		if done != want {
			return fmt.Errorf("%d of %d nodes updated", done, want)
		}
		return nil
	})
}

// events returns the Events of ns with the given reason about the named object.
func events(t *testing.T, c client.Client, ns, name, reason string) []eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	if err := c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

// hasEvent waits for an Event with reason about name whose note contains text.
func hasEvent(t *testing.T, c client.Client, ns, name, reason, text string) {
	t.Helper()
	eventually(t, 15*time.Second, func() error {
		for _, e := range events(t, c, ns, name, reason) {
			if strings.Contains(e.Note, text) {
				return nil
			}
		}
		return errors.New("no " + reason + " Event on " + name + " containing " + text)
	})
}

// heartbeat renews the node's Lease every 2 s until the test ends, as its kubelet would, so the
// node lifecycle controller does not mark it NotReady.
func heartbeat(t *testing.T, c client.Client, node string) {
	t.Helper()
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: corev1.NamespaceNodeLease, Name: node},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(node), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: ptr.To(metav1.NewMicroTime(time.Now()))}}
	if err := c.Create(context.Background(), lease); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), lease) })
	everyTick(t, 2*time.Second, func(ctx context.Context) {
		patch := client.MergeFrom(lease.DeepCopy())
		lease.Spec.RenewTime = ptr.To(metav1.NewMicroTime(time.Now()))
		_ = c.Patch(ctx, lease, patch) // a missed renewal is made up by the next
	})
}
