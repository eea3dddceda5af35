package drain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
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

// ErrDeadlineExceeded is wrapped by the error of Round and Verdict when a drain's deadline passed
// with pods still on the node: the drain failed.
var ErrDeadlineExceeded = errors.New("drain: deadline passed")

// ErrPodsLeft is wrapped by the error of Round when the round ended with pods still on the node.
var ErrPodsLeft = errors.New("drain: pods left")

// ErrUncordoned stops a drain round whose node became schedulable again.
var ErrUncordoned = errors.New("drain: the node was uncordoned during the drain")

// errRoundOver ends a round whose time is up.
var errRoundOver = errors.New("drain: round over")

// Defaults of Drainer.
const (
	DefaultRetryDelay   = 5 * time.Second
	DefaultPollInterval = time.Second
	DefaultConcurrency  = 5
	DefaultRoundTime    = time.Minute
	// maxRetryDelay caps the backoff of evictions that fail for another reason than a PDB.
	maxRetryDelay = time.Minute
)

// PodsLeftError names the pods still on a node when a drain round ended. It wraps ErrPodsLeft,
// and also ErrDeadlineExceeded when Deadline is set: the drain's deadline ended it.
type PodsLeftError struct {
	// Node is the node drained.
	Node string
	// Pods are the pods still to evict or to wait for, as namespace/name, sorted.
	Pods []string
	// Blocked are those of Pods a PodDisruptionBudget refused to evict at their last try, sorted;
	// nil when unknown.
	Blocked []string
	// Deadline is the drain's deadline when it has passed; zero when the drain may go on.
	Deadline time.Time
}

func (e *PodsLeftError) Error() string {
	var b strings.Builder
	if e.Deadline.IsZero() {
		fmt.Fprintf(&b, "drain: node %s has %d pods left: %v", e.Node, len(e.Pods), e.Pods)
	} else {
		fmt.Fprintf(&b, "%v at %s for node %s with %d pods left: %v", ErrDeadlineExceeded, e.Deadline.UTC().Format(time.RFC3339), e.Node, len(e.Pods), e.Pods)
	}
	if len(e.Blocked) > 0 {
		fmt.Fprintf(&b, " (blocked by a PodDisruptionBudget: %v)", e.Blocked)
	}
	return b.String()
}

// Is makes errors.Is find ErrPodsLeft, and ErrDeadlineExceeded once the deadline passed.
func (e *PodsLeftError) Is(target error) bool {
	return target == ErrPodsLeft || (target == ErrDeadlineExceeded && !e.Deadline.IsZero())
}

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

// Drainer evicts the pods of a node, one bounded round at a time. It keeps nothing between
// rounds: each one starts from the pods on the node. The zero value of every field but Client is
// usable.
type Drainer struct {
	// Client lists and evicts pods and reads Nodes and DaemonSets.
	Client kubernetes.Interface
	// Clock times retries, polls and rounds.
	Clock clock.Clock
	// RoundTime bounds one round; zero means DefaultRoundTime.
	RoundTime time.Duration
	// RetryDelay is the wait before retrying a refused eviction; zero means DefaultRetryDelay.
	RetryDelay time.Duration
	// PollInterval is how often an evicted pod is checked for being gone, and the node for being
	// still cordoned; zero means DefaultPollInterval.
	PollInterval time.Duration
	// Concurrency bounds parallel evictions; zero means DefaultConcurrency.
	Concurrency int
	// Observer, when set, is called (from several goroutines) with each step of progress.
	Observer func(Event)
}

// Round runs one round of the drain of node: it evicts every pod of the node except DaemonSet
// pods, mirror pods and finished pods, and waits until they are gone, for at most RoundTime and
// never past deadline. It respects PodDisruptionBudgets by using the Eviction API and retrying
// refused evictions. It returns:
//   - nil when no pod to evict is left: the node is drained;
//   - a *PodsLeftError when RoundTime ended the round first;
//   - the Verdict when deadline ended the round, or at once when called past deadline;
//   - an error wrapping ErrUncordoned when the node became schedulable during the round;
//   - ctx's cause when ctx ended, or the error that stopped the round.
//
// Round does not cordon the node.
func (d *Drainer) Round(ctx context.Context, node string, deadline time.Time) error {
	return d.RoundOf(ctx, node, deadline, 0)
}

// RoundOf is Round with a round of at most length instead of RoundTime (zero or less: RoundTime).
func (d *Drainer) RoundOf(ctx context.Context, node string, deadline time.Time, length time.Duration) error {
	now := d.clock().Now()
	if !now.Before(deadline) {
		return d.Verdict(ctx, node, deadline)
	}
	if length <= 0 {
		length = d.roundTime()
	}
	final := false
	if left := deadline.Sub(now); left <= length {
		length, final = left, true
	}
	timed, stopTimer := context.WithTimeoutCause(ctx, length, errRoundOver)
	defer stopTimer()
	rctx, stop := context.WithCancelCause(timed)
	defer stop(nil)
	// Listed with ctx: a round begun just before the deadline still knows the pods it left.
	pods, err := d.podsToEvict(ctx, node)
	if err != nil {
		return fmt.Errorf("drain: node %s: %w", node, err)
	}
	left := newPodsLeft(pods)
	d.observe(Event{Kind: EventListed, Node: node, PodsLeft: len(pods)})
	var wg sync.WaitGroup
	wg.Go(func() { d.guardCordon(rctx, node, stop) })
	errs := d.evictAll(rctx, node, pods, left)
	stop(nil)
	wg.Wait()
	switch cause := context.Cause(rctx); {
	case errs == nil:
		return nil
	case errors.Is(cause, errRoundOver) && final:
		// The deadline ended the round: answer as every request past it is answered.
		return d.Verdict(ctx, node, deadline)
	case errors.Is(cause, errRoundOver):
		return left.error(node)
	case errors.Is(cause, ErrUncordoned), errors.Is(errs, ErrUncordoned):
		return fmt.Errorf("drain: node %s: %w", node, ErrUncordoned)
	case ctx.Err() != nil:
		return fmt.Errorf("drain: node %s: %w", node, context.Cause(ctx))
	}
	return fmt.Errorf("drain: node %s: %w", node, errs)
}

// evictAll evicts pods, at most Concurrency at once, and returns their errors joined.
func (d *Drainer) evictAll(ctx context.Context, node string, pods []corev1.Pod, left *podsLeft) error {
	sem := make(chan struct{}, d.concurrency())
	var wg sync.WaitGroup
	errs := make([]error, len(pods))
	for i := range pods {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				errs[i] = context.Cause(ctx)
				return
			}
			errs[i] = d.evict(ctx, node, &pods[i], left)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// guardCordon ends the round with ErrUncordoned once the node is schedulable again (the agent's
// uncordon, served by any replica, or an administrator's), so that no round goes on emptying a
// node the scheduler fills again. It returns when ctx ends.
func (d *Drainer) guardCordon(ctx context.Context, node string, stop context.CancelCauseFunc) {
	for {
		if err := d.wait(ctx, d.pollInterval()); err != nil {
			return
		}
		if err := d.stillCordoned(ctx, node); err != nil {
			stop(err)
			return
		}
	}
}

// Verdict says, after deadline, how a drain of node ended, from the state of the cluster rather
// than from memory: nil when the node is cordoned and has no pod left to evict (drained in time,
// perhaps by another API-server replica), a *PodsLeftError wrapping ErrDeadlineExceeded naming
// the pods left otherwise.
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
	e := newPodsLeft(pods).error(node)
	e.Deadline = deadline
	return e
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
	backoff := wait.Backoff{Duration: d.retryDelay(), Factor: 2, Jitter: 0.5, Steps: math.MaxInt32, Cap: maxRetryDelay}
	for {
		// Another API-server replica may have uncordoned the node (the agent's uncordon went
		// there): stop evicting from a node that is schedulable again.
		if err := d.stillCordoned(ctx, node); err != nil {
			return fmt.Errorf("evict pod %s: %w", key, err)
		}
		err := d.evictOnce(ctx, pod)
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

// evictCallTimeout bounds one eviction request.
const evictCallTimeout = 30 * time.Second

// evictOnce asks the Eviction API to evict pod. The request is not cancelled by the end of the
// round that sends it (only bounded by evictCallTimeout): an eviction kube-apiserver accepted
// while its answer was cut off would go unrecorded, neither counted nor waited for.
func (d *Drainer) evictOnce(ctx context.Context, pod *corev1.Pod) error {
	call, cancel := context.WithTimeout(context.WithoutCancel(ctx), evictCallTimeout)
	defer cancel()
	return d.helper(call).EvictPod(*pod, policyv1.SchemeGroupVersion)
}

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

func (d *Drainer) roundTime() time.Duration {
	if d.RoundTime <= 0 {
		return DefaultRoundTime
	}
	return d.RoundTime
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

// podsLeft tracks the pods of one round not yet gone, and those a PDB blocks.
type podsLeft struct {
	mu      sync.Mutex
	left    map[string]bool
	blocked map[string]bool
}

func newPodsLeft(pods []corev1.Pod) *podsLeft {
	p := &podsLeft{left: make(map[string]bool, len(pods)), blocked: map[string]bool{}}
	for i := range pods {
		p.left[pods[i].Namespace+"/"+pods[i].Name] = true
	}
	return p
}

func (p *podsLeft) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.left)
}

func (p *podsLeft) done(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.left, key)
	delete(p.blocked, key)
	return len(p.left)
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

// error names the pods left and the blocked ones.
func (p *podsLeft) error(node string) *PodsLeftError {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := &PodsLeftError{Node: node, Pods: slices.Sorted(maps.Keys(p.left))}
	if len(p.blocked) > 0 {
		e.Blocked = slices.Sorted(maps.Keys(p.blocked))
	}
	return e
}
