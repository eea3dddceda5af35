package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// +kubebuilder:rbac:groups=brupop.bottlerocket.aws,resources=bottlerocketshadows,verbs=get;list;watch;patch;delete
// +kubebuilder:rbac:groups=brupop.bottlerocket.aws,resources=fleetpolicies,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=brupop.bottlerocket.aws,resources=fleetpolicies/status,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update

// ControllerName names the controller in logs, metrics and Events.
const ControllerName = "brupop-controller"

// NewScheme returns a scheme with the built-in kinds and Brupop's v2 API.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v2.AddToScheme} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("controller: scheme: %w", err)
		}
	}
	return s, nil
}

// NewManager returns a manager running the fleet reconciler for o (which must be valid), with
// its metrics registered with reg. The metrics server serves controller-runtime's registry:
// pass sigs.k8s.io/controller-runtime/pkg/metrics.Registry as reg to serve them there.
func NewManager(cfg *rest.Config, o Options, reg prometheus.Registerer) (manager.Manager, error) {
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	own := map[string]cache.Config{o.Namespace: {}}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		Logger: o.Log,
		Cache: cache.Options{
			// The FleetPolicy is cached in the controller's namespace through DefaultNamespaces:
			// a ByObject entry would need its CRD when the manager is created (docs/install.md,
			// without the FleetPolicy CRD).
			DefaultNamespaces: own,
			ByObject: map[client.Object]cache.ByObject{
				&v2.BottlerocketShadow{}: {Namespaces: own},
				&corev1.Pod{}:            {Namespaces: map[string]cache.Config{cache.AllNamespaces: {}}, Transform: trimPod},
			},
			DefaultTransform: cache.TransformStripManagedFields(),
		},
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:        o.HealthAddr,
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              o.LeaderElectionID,
		LeaderElectionNamespace:       o.Namespace,
		LeaderElectionReleaseOnCancel: true,
		// One controller per process, but tests run several managers in one.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, fmt.Errorf("controller: create manager: %w", err)
	}
	m, err := NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	r := NewReconciler(mgr.GetClient(), mgr.GetAPIReader(), mgr.GetEventRecorder(ControllerName), m, o)
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, fmt.Errorf("controller: health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("caches", cachesSynced(mgr.GetCache())); err != nil {
		return nil, fmt.Errorf("controller: readiness check: %w", err)
	}
	return mgr, nil
}

// SetupWithManager registers the reconciler with mgr. Every watched change maps to the same
// request, the FleetPolicy's name, so passes never run concurrently.
func (r *Reconciler) SetupWithManager(mgr manager.Manager) error {
	key := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: r.namespace, Name: v2.DefaultFleetPolicyName}}
	toKey := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{key}
	})
	c, err := ctrl.NewControllerManagedBy(mgr).Named("fleet").
		Watches(&v2.BottlerocketShadow{}, toKey).
		Watches(&corev1.Node{}, toKey, builder.WithPredicates(predicate.Funcs{UpdateFunc: nodeChanged})).
		WatchesRawSource(source.Channel(r.policyKind.appeared, toKey)).
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Build(r)
	if err != nil {
		return fmt.Errorf("controller: build: %w", err)
	}
	// The FleetPolicy watch starts once the API server is known to serve FleetPolicies: the
	// source of a kind it does not serve never syncs, and the manager would stop when the cache
	// sync timeout ends (docs/install.md, without the FleetPolicy CRD). pollPolicyKind, or the
	// first pass, finds out.
	r.policyKind.watch = func() error {
		return c.Watch(namedSource{source.Kind[client.Object](mgr.GetCache(), &v2.FleetPolicy{}, toKey, predicate.NewPredicateFuncs(func(o client.Object) bool {
			return o.GetName() == v2.DefaultFleetPolicyName
		}))})
	}
	r.policyKind.discover = func(context.Context) (bool, error) {
		return served(mgr.GetRESTMapper(), mgr.GetScheme(), &v2.FleetPolicy{})
	}
	logger := mgr.GetLogger().WithValues("controller", "fleet")
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		return r.pollPolicyKind(log.IntoContext(ctx, logger))
	})); err != nil {
		return fmt.Errorf("controller: FleetPolicy discovery: %w", err)
	}
	r.watchPods = func() error {
		return c.Watch(source.Kind(mgr.GetCache(), &corev1.Pod{}, handler.TypedEnqueueRequestsFromMapFunc(
			func(context.Context, *corev1.Pod) []reconcile.Request { return []reconcile.Request{key} }),
			predicate.TypedFuncs[*corev1.Pod]{UpdateFunc: podChanged}))
	}
	return nil
}

// namedSource names a watch source in the JSON log format: a controller already running logs
// the source each Watch call starts, and json.Marshal cannot encode controller-runtime's Kind.
type namedSource struct{ source.SyncingSource }

// MarshalJSON encodes the source as its name.
func (s namedSource) MarshalJSON() ([]byte, error) { return json.Marshal(fmt.Sprint(s.SyncingSource)) }

// served reports whether the API server serves the kind of obj, asking discovery when the
// RESTMapper does not know it yet (controller-runtime's mapper asks again on every miss).
func served(mapper meta.RESTMapper, scheme *runtime.Scheme, obj runtime.Object) (bool, error) {
	gvk, err := apiutil.GVKForObject(obj, scheme)
	if err != nil {
		return false, err
	}
	_, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		return false, nil
	}
	return err == nil, err
}

// ensurePodWatch starts watching Pods the first time a monitoring pod selector is set.
func (r *Reconciler) ensurePodWatch() error {
	if r.podsWatched || r.watchPods == nil {
		return nil
	}
	if err := r.watchPods(); err != nil {
		return fmt.Errorf("watch Pods: %w", err)
	}
	r.podsWatched = true
	return nil
}

// nodeChanged passes Node updates that matter to a decision: the opt-in label, readiness and
// Brupop's cordon (statemachine.FactsOf).
func nodeChanged(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*corev1.Node)
	n, ok2 := e.ObjectNew.(*corev1.Node)
	if !ok1 || !ok2 {
		return true
	}
	return statemachine.OptedIn(o) != statemachine.OptedIn(n) || statemachine.FactsOf(o, nil) != statemachine.FactsOf(n, nil)
}

// podChanged passes Pod updates that change its readiness or its node.
func podChanged(e event.TypedUpdateEvent[*corev1.Pod]) bool {
	return statemachine.PodReady(e.ObjectOld) != statemachine.PodReady(e.ObjectNew) || e.ObjectOld.Spec.NodeName != e.ObjectNew.Spec.NodeName ||
		e.ObjectOld.Status.Phase != e.ObjectNew.Status.Phase
}

// trimPod keeps only what the monitoring reads of a Pod, to keep the cache small.
func trimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
			Labels: p.Labels, DeletionTimestamp: p.DeletionTimestamp},
		Spec:   corev1.PodSpec{NodeName: p.Spec.NodeName},
		Status: corev1.PodStatus{Phase: p.Status.Phase, Conditions: p.Status.Conditions},
	}, nil
}

// cachesSynced is a readiness check: ready once the informers have synced.
func cachesSynced(c cache.Cache) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !c.WaitForCacheSync(ctx) {
			return fmt.Errorf("controller: caches not synced")
		}
		return nil
	}
}
