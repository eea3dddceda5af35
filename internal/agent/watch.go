package agent

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// Watch is all the agent reads of the cluster: its own Node and shadow, as watches last saw
// them. WatchCluster makes the one of a real cluster; a test can give any other.
type Watch interface {
	// Get reads the Node (key.Name) or the shadow (key.Namespace and key.Name) into obj as last
	// seen; an object not seen is a NotFound error.
	Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error
	// Run watches until ctx ends and then returns nil, or returns an error when the watches
	// cannot start or sync. It calls synced once, when Get first answers from the whole view,
	// and changed after every change to the Node or the shadow: with the object after an
	// update, with nil after an add or a delete. Neither callback may block.
	Run(ctx context.Context, changed func(client.Object), synced func()) error
}

// WatchCluster returns the Watch of node's Node and of its shadow in namespace: a cache of
// field-selected watches through the API server at kube, which Run starts.
func WatchCluster(kube *rest.Config, node, namespace string) (Watch, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("agent: scheme: %w", err)
	}
	if err := v2.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("agent: scheme: %w", err)
	}
	byName := func(name string) fields.Selector { return fields.OneTermEqualSelector("metadata.name", name) }
	c, err := cache.New(kube, cache.Options{
		Scheme: scheme,
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Node{}: {Field: byName(node)},
			&v2.BottlerocketShadow{}: {
				Namespaces: map[string]cache.Config{namespace: {}},
				Field:      byName(v2.ShadowName(node)),
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("agent: watch cache: %w", err)
	}
	return clusterWatch{c}, nil
}

// clusterWatch is a controller-runtime cache of the Node and the shadow.
type clusterWatch struct{ cache.Cache }

func (w clusterWatch) Run(ctx context.Context, changed func(client.Object), synced func()) error {
	h := toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { changed(nil) },
		UpdateFunc: func(_, obj any) {
			o, _ := obj.(client.Object)
			changed(o)
		},
		DeleteFunc: func(any) { changed(nil) },
	}
	for _, obj := range []client.Object{&corev1.Node{}, &v2.BottlerocketShadow{}} {
		inf, err := w.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("agent: informer for %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			return fmt.Errorf("agent: watch %T: %w", obj, err)
		}
	}
	startCtx, stop := context.WithCancel(ctx)
	defer stop()
	started := make(chan error, 1)
	go func() { started <- w.Start(startCtx) }()
	if !w.WaitForCacheSync(startCtx) {
		stop()
		err := <-started
		if ctx.Err() != nil {
			return nil
		}
		return errors.Join(errors.New("agent: watch cache did not sync"), err)
	}
	synced()
	return <-started
}
