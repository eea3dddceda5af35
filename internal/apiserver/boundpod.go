package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
)

// PodNodes tells which node the pod a token is bound to runs on. Authorize asks it for tokens
// whose TokenReview carries no node extras.
type PodNodes interface {
	// NodeOf returns the name and UID of the node that the pod podName of UID podUID runs on,
	// or a refusal when that pod is gone, has another UID, or is not Running on a node; err is
	// for failures to find out.
	NodeOf(ctx context.Context, podName, podUID string) (nodeName, nodeUID string, refusal *Refusal, err error)
}

// BoundPods is the PodNodes of the API server. kube-apiserver puts the node of a pod-bound token
// into its TokenReview only from 1.30 on (gate ServiceAccountTokenPodNodeInfo); before that only
// the pod's name and UID are there, and BoundPods looks the pod up.
//
// The pods come from an informer started at the first lookup, so that clusters whose tokens
// carry the node (the fast path) never pay for it. It watches the pods of Namespace that run
// as the agent ServiceAccount only (a field selector, which kube-apiserver filters on): those
// are the only pods whose tokens Authorize accepts, a few per node, rather than every pod of the
// cluster. A pod the cache does not show as the token's, Running on a node, is read once more
// from kube-apiserver before the request is refused, so that the cache's lag (a pod just
// started) refuses nobody; refusals are never cached. Node UIDs, which the pod does not carry,
// are read with a GET and cached, positive answers only, for TTL (the token cache's).
type BoundPods struct {
	// Client reads pods and nodes.
	Client kubernetes.Interface
	// Namespace is where the agent pods run.
	Namespace string
	// Clock expires the node cache.
	Clock clock.PassiveClock
	// TTL bounds how long a node's UID is reused; zero disables the cache.
	TTL time.Duration
	// MaxEntries bounds the node cache.
	MaxEntries int
	// OnStart, when set, is called when the pod informer starts.
	OnStart func()

	mu     sync.Mutex
	stop   <-chan struct{}
	lister corelisters.PodNamespaceLister
	synced cache.InformerSynced
	nodes  map[string]cachedNode
}

type cachedNode struct {
	uid     string
	expires time.Time
}

// Start lets the first lookup start the pod informer, which runs until stop is closed.
func (b *BoundPods) Start(stop <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stop = stop
}

// NodeOf implements PodNodes.
func (b *BoundPods) NodeOf(ctx context.Context, podName, podUID string) (string, string, *Refusal, error) {
	var refusal *Refusal
	if l := b.podLister(); l != nil {
		if pod, err := l.Get(podName); err == nil {
			refusal = checkBoundPod(pod, podName, podUID)
			if refusal == nil {
				return b.nodeUID(ctx, pod.Spec.NodeName)
			}
		}
	}
	pod, err := b.Client.CoreV1().Pods(b.Namespace).Get(ctx, podName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", "", &Refusal{http.StatusForbidden, fmt.Sprintf("pod %s of the token is gone", podName)}, nil
	}
	if err != nil {
		return "", "", nil, fmt.Errorf("apiserver: read pod %s: %w", podName, err)
	}
	if refusal = checkBoundPod(pod, podName, podUID); refusal != nil {
		return "", "", refusal, nil
	}
	return b.nodeUID(ctx, pod.Spec.NodeName)
}

// checkBoundPod refuses a pod that is not the token's (another UID: recreated under the same
// name) or not Running on a node.
func checkBoundPod(pod *corev1.Pod, name, uid string) *Refusal {
	switch {
	case string(pod.UID) != uid:
		return &Refusal{http.StatusForbidden, fmt.Sprintf("pod %s is now UID %s, the token is bound to UID %s", name, pod.UID, uid)}
	case pod.Spec.ServiceAccountName != agentapi.AgentServiceAccount:
		return &Refusal{http.StatusForbidden, fmt.Sprintf("pod %s runs as %s, not as %s", name, pod.Spec.ServiceAccountName, agentapi.AgentServiceAccount)}
	case pod.Spec.NodeName == "":
		return &Refusal{http.StatusForbidden, fmt.Sprintf("pod %s is not on a node", name)}
	case pod.Status.Phase != corev1.PodRunning:
		return &Refusal{http.StatusForbidden, fmt.Sprintf("pod %s on node %s is %s, not Running", name, pod.Spec.NodeName, pod.Status.Phase)}
	}
	return nil
}

// podLister returns the informer's lister, starting the informer at the first call after
// Start; nil before Start.
func (b *BoundPods) podLister() corelisters.PodNamespaceLister {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lister != nil || b.stop == nil {
		return b.lister
	}
	factory := informers.NewSharedInformerFactoryWithOptions(b.Client, 0,
		informers.WithNamespace(b.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.serviceAccountName", agentapi.AgentServiceAccount).String()
		}))
	pods := factory.Core().V1().Pods()
	b.lister = pods.Lister().Pods(b.Namespace)
	b.synced = pods.Informer().HasSynced // also registers it, so that Start runs it
	factory.Start(b.stop)
	if b.OnStart != nil {
		b.OnStart()
	}
	return b.lister
}

// nodeUID returns node's name and UID, from the cache or kube-apiserver.
func (b *BoundPods) nodeUID(ctx context.Context, node string) (string, string, *Refusal, error) {
	now := b.clock().Now()
	b.mu.Lock()
	e, ok := b.nodes[node]
	b.mu.Unlock()
	if ok && now.Before(e.expires) {
		return node, e.uid, nil, nil
	}
	n, err := b.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", "", &Refusal{http.StatusForbidden, fmt.Sprintf("node %s of the token's pod is gone", node)}, nil
	}
	if err != nil {
		return "", "", nil, fmt.Errorf("apiserver: read node %s: %w", node, err)
	}
	b.storeNode(node, string(n.UID), now)
	return node, string(n.UID), nil, nil
}

func (b *BoundPods) storeNode(node, uid string, now time.Time) {
	if b.TTL <= 0 || b.MaxEntries <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.nodes == nil {
		b.nodes = map[string]cachedNode{}
	}
	// Full: drop arbitrary entries (map order is random); they are at most TTL old.
	for k := range b.nodes {
		if len(b.nodes) < b.MaxEntries {
			break
		}
		delete(b.nodes, k)
	}
	b.nodes[node] = cachedNode{uid: uid, expires: now.Add(b.TTL)}
}

func (b *BoundPods) clock() clock.PassiveClock {
	if b.Clock == nil {
		return clock.RealClock{}
	}
	return b.Clock
}
