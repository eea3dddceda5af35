package drain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	kdrain "k8s.io/kubectl/pkg/drain"
	"k8s.io/utils/clock"
)

// ErrDeadlineExceeded is returned by Drain when pods are still on the node at the deadline.
var ErrDeadlineExceeded = errors.New("drain: deadline passed")

// Defaults of Drainer.
const (
	DefaultRetryDelay   = 5 * time.Second
	DefaultPollInterval = time.Second
	DefaultConcurrency  = 5
	// maxRetryDelay caps the backoff of evictions that fail for another reason than a PDB.
	maxRetryDelay = time.Minute
)

// EventKind says what happened to a pod during a drain.
type EventKind string

// The kinds of Event.
const (
	// EventListed: the pods to evict were listed; Event.PodsLeft says how many.
	EventListed EventKind = "Listed"
	// EventEvicted: the Eviction API accepted the eviction of Event.Pod.
	EventEvicted EventKind = "Evicted"
	// EventBlocked: a PodDisruptionBudget does not allow the eviction yet; it is retried.
	EventBlocked EventKind = "BlockedByPDB"
	// EventRetry: the eviction failed with Event.Err and is retried.
	EventRetry EventKind = "Retry"
	// EventGone: Event.Pod no longer runs on the node.
	EventGone EventKind = "Gone"
)

// Event reports progress of a drain to an Observer.
type Event struct {
	Kind EventKind
	Node string
	// Pod is namespace/name of the pod concerned; empty for EventListed.
	Pod string
	// PodsLeft counts the pods still to be evicted or waited for.
	PodsLeft int
	// Err is the error of an EventRetry.
	Err error
}

// Drainer evicts the pods of a node. The zero value of every field but Client is usable.
type Drainer struct {
	// Client lists and evicts pods and reads DaemonSets.
	Client kubernetes.Interface
	// Clock times retries and polls.
	Clock clock.Clock
	// RetryDelay is the wait before retrying a refused eviction; zero means DefaultRetryDelay.
	RetryDelay time.Duration
	// PollInterval is how often an evicted pod is checked for being gone; zero means
	// DefaultPollInterval.
	PollInterval time.Duration
	// Concurrency bounds parallel evictions; zero means DefaultConcurrency.
	Concurrency int
	// Observer, when set, is called (from several goroutines) with each step of progress.
	Observer func(Event)
}

// Drain evicts every pod of the node except DaemonSet pods, mirror pods and finished pods, and
// waits until they are gone. It respects PodDisruptionBudgets by using the Eviction API and
// retrying refused evictions until deadline, when it stops with an error wrapping
// ErrDeadlineExceeded that counts the pods left. Drain does not cordon the node.
func (d *Drainer) Drain(ctx context.Context, node string, deadline time.Time) error {
	ctx, cancel := context.WithTimeoutCause(ctx, deadline.Sub(d.clock().Now()), ErrDeadlineExceeded)
	defer cancel()
	pods, err := d.podsToEvict(ctx, node)
	if err != nil {
		return fmt.Errorf("drain: node %s: %w", node, err)
	}
	left := &podsLeft{n: len(pods), blocked: map[string]bool{}}
	d.observe(Event{Kind: EventListed, Node: node, PodsLeft: len(pods)})
	sem := make(chan struct{}, d.concurrency())
	var wg sync.WaitGroup
	errs := make([]error, len(pods))
	for i := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				errs[i] = context.Cause(ctx)
				return
			}
			errs[i] = d.evict(ctx, node, &pods[i], left)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		if errors.Is(context.Cause(ctx), ErrDeadlineExceeded) && ctx.Err() != nil {
			n, blocked := left.snapshot()
			return fmt.Errorf("%w at %s for node %s with %d pods left (blocked by a PodDisruptionBudget: %v)",
				ErrDeadlineExceeded, deadline.UTC().Format(time.RFC3339), node, n, blocked)
		}
		return fmt.Errorf("drain: node %s: %w", node, err)
	}
	return nil
}

// Verdict says, after deadline, how a drain of node ended, from the state of the cluster rather
// than from memory: nil when the node is cordoned and has no pod left to evict (drained in time,
// perhaps by another API-server replica), ErrDeadlineExceeded naming the pods left otherwise.
func (d *Drainer) Verdict(ctx context.Context, node string, deadline time.Time) error {
	at := deadline.UTC().Format(time.RFC3339)
	n, err := d.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("drain: node %s: deadline passed at %s and the node could not be read: %w", node, at, err)
	}
	if !n.Spec.Unschedulable {
		return fmt.Errorf("%w at %s for node %s, which is not cordoned", ErrDeadlineExceeded, at, node)
	}
	pods, err := d.podsToEvict(ctx, node)
	if err != nil {
		return fmt.Errorf("drain: node %s: deadline passed at %s: %w", node, at, err)
	}
	if len(pods) == 0 {
		return nil
	}
	names := make([]string, len(pods))
	for i := range pods {
		names[i] = pods[i].Namespace + "/" + pods[i].Name
	}
	return fmt.Errorf("%w at %s for node %s with %d pods left: %v", ErrDeadlineExceeded, at, node, len(pods), names)
}

// podsToEvict lists the node's pods and filters them with kubectl's drain filters: DaemonSet
// and mirror pods are skipped, emptyDir and unreplicated pods are evicted; finished pods and
// pods of deleted DaemonSets are skipped too.
func (d *Drainer) podsToEvict(ctx context.Context, node string) ([]corev1.Pod, error) {
	h := d.helper(ctx)
	list, errs := h.GetPodsForDeletion(node)
	if len(errs) > 0 {
		return nil, fmt.Errorf("list pods: %w", errors.Join(errs...))
	}
	return list.Pods(), nil
}

func (d *Drainer) helper(ctx context.Context) *kdrain.Helper {
	return &kdrain.Helper{
		Ctx:                 ctx,
		Client:              d.Client,
		Force:               true, // evict unreplicated pods, as upstream does
		GracePeriodSeconds:  -1,   // each pod's own grace period
		IgnoreAllDaemonSets: true,
		DeleteEmptyDirData:  true,
		AdditionalFilters:   []kdrain.PodFilter{skipFinished, skipDaemonSetPods},
		Out:                 io.Discard,
		ErrOut:              io.Discard,
	}
}

func skipFinished(pod corev1.Pod) kdrain.PodDeleteStatus {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return kdrain.MakePodDeleteStatusSkip()
	}
	return kdrain.MakePodDeleteStatusOkay()
}

// skipDaemonSetPods also skips pods whose DaemonSet was deleted, which kubectl's Force evicts.
func skipDaemonSetPods(pod corev1.Pod) kdrain.PodDeleteStatus {
	if ref := metav1.GetControllerOf(&pod); ref != nil && ref.Kind == "DaemonSet" {
		return kdrain.MakePodDeleteStatusSkip()
	}
	return kdrain.MakePodDeleteStatusOkay()
}

// evict evicts one pod, retrying refusals, and waits until it is gone.
func (d *Drainer) evict(ctx context.Context, node string, pod *corev1.Pod, left *podsLeft) error {
	key := pod.Namespace + "/" + pod.Name
	h := d.helper(ctx)
	backoff := wait.Backoff{Duration: d.retryDelay(), Factor: 2, Jitter: 0.5, Steps: math.MaxInt32, Cap: maxRetryDelay}
	for {
		// Another API-server replica may have uncordoned the node (the agent's uncordon went
		// there): stop evicting from a node that is schedulable again.
		if err := d.stillCordoned(ctx, node); err != nil {
			return fmt.Errorf("evict pod %s: %w", key, err)
		}
		err := h.EvictPod(*pod, policyv1.SchemeGroupVersion)
		delay := wait.Jitter(d.retryDelay(), 0.2)
		switch {
		case err == nil:
			left.unblock(key)
			d.observe(Event{Kind: EventEvicted, Node: node, Pod: key, PodsLeft: left.count()})
			return d.waitGone(ctx, node, pod, left)
		case apierrors.IsNotFound(err):
			d.observe(Event{Kind: EventGone, Node: node, Pod: key, PodsLeft: left.done(key)})
			return nil
		case apierrors.IsTooManyRequests(err):
			left.block(key)
			d.observe(Event{Kind: EventBlocked, Node: node, Pod: key, PodsLeft: left.count(), Err: err})
		case apierrors.IsForbidden(err) && !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
			return fmt.Errorf("evict pod %s: %w", key, err)
		default:
			// Not a PDB answer: back off exponentially (with jitter, capped at a minute) so a
			// struggling kube-apiserver is not hammered by every drain at once.
			delay = backoff.Step()
			d.observe(Event{Kind: EventRetry, Node: node, Pod: key, PodsLeft: left.count(), Err: err})
		}
		if err := d.wait(ctx, delay); err != nil {
			return fmt.Errorf("evict pod %s: %w", key, err)
		}
	}
}

// ErrUncordoned stops a drain whose node became schedulable again.
var ErrUncordoned = errors.New("drain: the node was uncordoned during the drain")

// stillCordoned returns ErrUncordoned when the node is schedulable again. A failed read is not
// a reason to stop: the eviction that follows fails or succeeds on its own.
func (d *Drainer) stillCordoned(ctx context.Context, node string) error {
	n, err := d.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err == nil && !n.Spec.Unschedulable {
		return ErrUncordoned
	}
	return nil
}

// waitGone polls until the pod is deleted or replaced by one of the same name.
func (d *Drainer) waitGone(ctx context.Context, node string, pod *corev1.Pod, left *podsLeft) error {
	key := pod.Namespace + "/" + pod.Name
	for {
		cur, err := d.Client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && cur.UID != pod.UID) {
			d.observe(Event{Kind: EventGone, Node: node, Pod: key, PodsLeft: left.done(key)})
			return nil
		}
		if err := d.wait(ctx, d.pollInterval()); err != nil {
			return fmt.Errorf("wait for pod %s to terminate: %w", key, err)
		}
	}
}

func (d *Drainer) wait(ctx context.Context, delay time.Duration) error {
	t := d.clock().NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C():
		return nil
	}
}

func (d *Drainer) observe(e Event) {
	if d.Observer != nil {
		d.Observer(e)
	}
}

func (d *Drainer) clock() clock.Clock {
	if d.Clock == nil {
		return clock.RealClock{}
	}
	return d.Clock
}

func (d *Drainer) retryDelay() time.Duration {
	if d.RetryDelay <= 0 {
		return DefaultRetryDelay
	}
	return d.RetryDelay
}

func (d *Drainer) pollInterval() time.Duration {
	if d.PollInterval <= 0 {
		return DefaultPollInterval
	}
	return d.PollInterval
}

func (d *Drainer) concurrency() int {
	if d.Concurrency <= 0 {
		return DefaultConcurrency
	}
	return d.Concurrency
}

// podsLeft counts the pods of one drain not yet gone, and those a PDB blocks.
type podsLeft struct {
	mu      sync.Mutex
	n       int
	blocked map[string]bool
}

func (p *podsLeft) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *podsLeft) done(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n--
	delete(p.blocked, key)
	return p.n
}

func (p *podsLeft) block(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked[key] = true
}

func (p *podsLeft) unblock(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.blocked, key)
}

func (p *podsLeft) snapshot() (int, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]string, 0, len(p.blocked))
	for k := range p.blocked {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return p.n, keys
}
