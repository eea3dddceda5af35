package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	brupopv2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
	"github.com/bottlerocket-os/brupop-go/internal/apiserver"
	"github.com/bottlerocket-os/brupop-go/internal/drain"
)

// workload creates a Deployment of n pods labelled app=name (placed by tmpl) under a PDB.
func workload(t *testing.T, c client.Client, ns, name string, n int32, maxUnavailable int, place func(*corev1.PodSpec)) {
	t.Helper()
	labels := map[string]string{"app": name}
	spec := corev1.PodSpec{
		TerminationGracePeriodSeconds: ptr.To[int64](0),
		Containers:                    []corev1.Container{{Name: name, Image: name}},
		Volumes:                       []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
	}
	place(&spec)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(n),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
	mu := intstr.FromInt(maxUnavailable)
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &mu, Selector: &metav1.LabelSelector{MatchLabels: labels}},
	}
	for _, o := range []client.Object{dep, pdb} {
		if err := c.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
}

// podsByNode counts the live pods labelled app=name on each node.
func podsByNode(ctx context.Context, c client.Client, ns, name string) (map[string]int, error) {
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app": name}); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			out[p.Spec.NodeName]++
		}
	}
	return out, nil
}

func waitPDB(t *testing.T, c client.Client, ns, name string, allowed int32, healthy int32) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		var pdb policyv1.PodDisruptionBudget
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &pdb); err != nil {
			return err
		}
		if pdb.Status.CurrentHealthy != healthy || pdb.Status.DisruptionsAllowed != allowed {
			return fmt.Errorf("PDB %s: %d healthy, %d disruptions allowed", name, pdb.Status.CurrentHealthy, pdb.Status.DisruptionsAllowed)
		}
		return nil
	})
}

func TestAPIServerDrainEvictsAsThePDBAllows(t *testing.T) {
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	ts := startAPIServer(t, ns, func(o *apiserver.Options) { o.DrainPollTime = 2 * time.Second })
	// Replacement pods become Ready 1-2 s after they are created, so the PDB refuses evictions
	// for a while after each one.
	fakeKubelet(t, ts.kube, ns, 2*time.Second)
	pool := map[string]string{"brupop-test/pool": ns}
	a := ts.newAgent(t, readyNode(t, ts.kube, ns+"-a", pool, false))
	workload(t, c, ns, "web", 3, 1, func(s *corev1.PodSpec) { s.NodeSelector = pool })
	eventually(t, 30*time.Second, func() error {
		on, err := podsByNode(ctx, c, ns, "web")
		if err == nil && on[a.Node.Name] != 3 {
			err = fmt.Errorf("web pods per node: %v, want 3 on %s", on, a.Node.Name)
		}
		return err
	})
	waitPDB(t, c, ns, "web", 1, 3)
	b := readyNode(t, ts.kube, ns+"-b", pool, false)

	minRunning := watchRunning(t, c, ns, "web")
	start := time.Now()
	deadline := start.Add(40 * time.Second)
	busy := 0
	for {
		_, err := a.Client.CordonAndDrain(ctx, deadline)
		if errors.Is(err, agentapi.ErrNotDrained) {
			busy++
			continue
		}
		if err != nil {
			t.Fatalf("cordon and drain: %v", err)
		}
		break
	}
	blocked := ts.metricValue(t, "brupop_apiserver_evictions_total", map[string]string{"result": string(drain.EventBlocked)})
	evicted := ts.metricValue(t, "brupop_apiserver_evictions_total", map[string]string{"result": string(drain.EventEvicted)})
	t.Logf("drain of 3 pods under maxUnavailable=1 took %s: %d rounds answered 503 (pods left), %v evictions, %v refused by the PDB",
		time.Since(start).Round(time.Millisecond), busy, evicted, blocked)
	if evicted != 3 || blocked == 0 {
		t.Errorf("evictions %v, refused by the PDB %v; want 3 evictions, some refused", evicted, blocked)
	}
	if least := minRunning(); least < 2 {
		t.Errorf("at one time only %d web pods ran; the PDB allows one of three to be down", least)
	}
	on, err := podsByNode(ctx, c, ns, "web")
	if err != nil {
		t.Fatal(err)
	}
	if on[a.Node.Name] != 0 {
		t.Errorf("web pods per node after the drain: %v, want none on %s", on, a.Node.Name)
	}
	var agents corev1.PodList
	if err := c.List(ctx, &agents, client.InNamespace(ns), client.MatchingFields{"spec.nodeName": a.Node.Name}, client.MatchingLabels{"brupop.bottlerocket.aws/component": "agent"}); err != nil || len(agents.Items) != 1 {
		t.Errorf("agent (DaemonSet) pods left on the drained node: %d, %v; want 1", len(agents.Items), err)
	}
	assertNode(t, c, a.Node.Name, true, true)
	eventually(t, 30*time.Second, func() error {
		on, err := podsByNode(ctx, c, ns, "web")
		if err == nil && on[b.Name] != 3 {
			err = fmt.Errorf("web pods per node: %v, want 3 on %s", on, b.Name)
		}
		return err
	})
	if err := a.Client.Uncordon(ctx); err != nil {
		t.Fatal(err)
	}
	assertNode(t, c, a.Node.Name, false, false)
}

// assertNode checks a node's cordon and Brupop's mark of it.
func assertNode(t *testing.T, c client.Client, name string, unschedulable, markedOurs bool) {
	t.Helper()
	var node corev1.Node
	if err := c.Get(context.Background(), client.ObjectKey{Name: name}, &node); err != nil {
		t.Fatal(err)
	}
	_, ours := node.Annotations[drain.AnnotationCordoned]
	if node.Spec.Unschedulable != unschedulable || ours != markedOurs {
		t.Errorf("node %s: unschedulable %v, cordoned-by-brupop %v; want %v, %v", name, node.Spec.Unschedulable, ours, unschedulable, markedOurs)
	}
}

// TestAPIServerDrainRoundsEndAtTheDeadline drains a node whose one pod a PDB protects: each round
// answers 503 naming the pod, the round at the deadline and every request after it get the
// verdict naming it, from any server, which keeps nothing between requests.
func TestAPIServerDrainRoundsEndAtTheDeadline(t *testing.T) {
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	ts := startAPIServer(t, ns, func(o *apiserver.Options) { o.DrainPollTime = time.Second })
	fakeKubelet(t, ts.kube, ns, 0)
	a := ts.newAgent(t, readyNode(t, ts.kube, ns+"-c", nil, false))
	workload(t, c, ns, "db", 1, 0, func(s *corev1.PodSpec) { s.NodeName = a.Node.Name })
	waitPDB(t, c, ns, "db", 0, 1)

	start := time.Now()
	deadline := start.Add(4 * time.Second).Truncate(time.Second)
	held, err := a.Client.CordonAndDrain(ctx, deadline)
	if !errors.Is(err, agentapi.ErrNotDrained) || !strings.Contains(err.Error(), "pods left") || !strings.Contains(err.Error(), "blocked by a PodDisruptionBudget: ["+ns+"/db-") {
		t.Fatalf("first round = %v; want 503 naming the pod the PDB blocks", err)
	}
	if took := time.Since(start); took > 3*time.Second || !held.Equal(deadline) {
		t.Errorf("a round of 1s answered after %s, holding the drain to %s; want about 1s, the asked %s", took, held, deadline)
	}
	cordonTime := assertCordonTime(t, c, a.Node.Name, "")
	rounds := 1
	for ; errors.Is(err, agentapi.ErrNotDrained); rounds++ {
		_, err = a.Client.CordonAndDrain(ctx, deadline)
	}
	verdict := assertVerdict(t, err, ns+"/db-")
	t.Logf("drain blocked by a PDB: %d rounds, verdict after %s: %s", rounds, time.Since(start).Round(time.Millisecond), verdict)
	if time.Now().Before(deadline) {
		t.Errorf("verdict before the deadline %s", deadline)
	}
	// An agent that missed that answer asks again, here or on a server that never saw this
	// node (a second replica, or this one restarted): the same verdict, from the cluster.
	other := ts.replica(t, nil)
	for _, client := range []*agentapi.Client{a.Client, a.clientOf(other)} {
		if _, err := client.CordonAndDrain(ctx, deadline); assertVerdict(t, err, ns+"/db-") != verdict {
			t.Errorf("asking %s again after the deadline: %q; want the same verdict %q", client.BaseURL, err, verdict)
		}
	}
	eventually(t, 10*time.Second, func() error {
		ev, err := nodeEvent(ctx, c, a.Node, apiserver.EventDrainFailed)
		switch {
		case err != nil:
			return err
		case ev.Type != corev1.EventTypeWarning || ev.ReportingController != apiserver.ReportingController || !strings.Contains(ev.Note, ns+"/db-"):
			return fmt.Errorf("%s Event %s from %s: %q; want a Warning naming the blocked pod", ev.Reason, ev.Type, ev.ReportingController, ev.Note)
		}
		return nil
	})
	if on, _ := podsByNode(ctx, c, ns, "db"); on[a.Node.Name] != 1 {
		t.Errorf("db pods per node: %v, want 1 still on %s", on, a.Node.Name)
	}
	assertNode(t, c, a.Node.Name, true, true)
	assertCordonTime(t, c, a.Node.Name, cordonTime)
	if err := a.Client.Uncordon(ctx); err != nil {
		t.Fatal(err)
	}
	assertNode(t, c, a.Node.Name, false, false)
	assertCordonTime(t, c, a.Node.Name, "none")
}

// TestAPIServerDrainCapHoldsOnAnyReplica: --max-drain-timeout counts from the cordon time on the
// Node, so a replica that never drained the node cuts a longer deadline an agent asks for, and
// past the cap answers the verdict instead of another round.
func TestAPIServerDrainCapHoldsOnAnyReplica(t *testing.T) {
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	capped := func(o *apiserver.Options) { o.DrainPollTime, o.MaxDrainTimeout = time.Second, 3*time.Second }
	first := startAPIServer(t, ns, capped)
	fakeKubelet(t, first.kube, ns, 0)
	a := first.newAgent(t, readyNode(t, first.kube, ns+"-m", nil, false))
	workload(t, c, ns, "db", 1, 0, func(s *corev1.PodSpec) { s.NodeName = a.Node.Name })
	waitPDB(t, c, ns, "db", 0, 1)

	asked := time.Now().Add(time.Hour)
	if _, err := a.Client.CordonAndDrain(ctx, asked); !errors.Is(err, agentapi.ErrNotDrained) {
		t.Fatalf("first round = %v; want 503 with the pod left", err)
	}
	cordonTime := assertCordonTime(t, c, a.Node.Name, "")
	since, err := time.Parse(time.RFC3339, cordonTime)
	if err != nil {
		t.Fatal(err)
	}
	first.Stop() // the replica that cordoned the node goes away
	second := first.replica(t, capped)
	client := a.clientOf(second)
	var held time.Time
	for err = agentapi.ErrNotDrained; errors.Is(err, agentapi.ErrNotDrained); {
		held, err = client.CordonAndDrain(ctx, asked)
	}
	assertVerdict(t, err, ns+"/db-")
	if want := since.Add(3 * time.Second); !held.Equal(want) {
		t.Errorf("the second replica held the drain to %s; want the cordon time plus the cap, %s", held, want)
	}
	if time.Now().Before(since.Add(3*time.Second)) || time.Since(since) > 20*time.Second {
		t.Errorf("verdict %s after the cordon; want soon after the 3s cap", time.Since(since).Round(time.Millisecond))
	}
	assertCordonTime(t, c, a.Node.Name, cordonTime)
}

// assertVerdict checks that err is the verdict of a drain past its deadline naming pod (a
// prefix) and returns its message.
func assertVerdict(t *testing.T, err error, pod string) string {
	t.Helper()
	var se *agentapi.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusInternalServerError || !strings.Contains(se.Message, "deadline passed") || !strings.Contains(se.Message, pod) {
		t.Fatalf("drain past its deadline = %v; want 500 naming the deadline and %s", err, pod)
	}
	return se.Message
}

// assertCordonTime checks the node's cordon time: want "" for any, "none" for absent, or the
// exact value; it returns the value.
func assertCordonTime(t *testing.T, c client.Client, name, want string) string {
	t.Helper()
	var node corev1.Node
	if err := c.Get(context.Background(), client.ObjectKey{Name: name}, &node); err != nil {
		t.Fatal(err)
	}
	got, ok := node.Annotations[drain.AnnotationCordonTime]
	switch {
	case want == "none" && ok:
		t.Errorf("node %s has cordon time %q, want none", name, got)
	case want == "" && !ok:
		t.Errorf("node %s has no cordon time", name)
	case want != "" && want != "none" && got != want:
		t.Errorf("node %s has cordon time %q, want %q", name, got, want)
	}
	return got
}

func TestAPIServerLeavesAnAdministratorsCordonAndLabel(t *testing.T) {
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	ts := startAPIServer(t, ns, nil)
	admin := ts.newAgent(t, readyNode(t, ts.kube, ns+"-d", map[string]string{brupopv2.ExcludeFromLBLabel: "True"}, true))
	plain := ts.newAgent(t, readyNode(t, ts.kube, ns+"-e", nil, false))

	for _, a := range []*agentIdentity{admin, plain} {
		for name, step := range map[string]func(context.Context) error{
			"exclude from LB": a.Client.ExcludeFromLB,
			"cordon and drain": func(ctx context.Context) error {
				_, err := a.Client.CordonAndDrain(ctx, time.Time{})
				return err
			},
		} {
			if err := step(ctx); err != nil {
				t.Fatalf("%s %s: %v", name, a.Node.Name, err)
			}
		}
	}
	assertLB(t, c, plain.Node.Name, true)
	assertNode(t, c, plain.Node.Name, true, true)
	assertNode(t, c, admin.Node.Name, true, false)
	for _, a := range []*agentIdentity{admin, plain} {
		if err := a.Client.Uncordon(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a.Client.RemoveExclusionFromLB(ctx); err != nil {
			t.Fatal(err)
		}
	}
	assertNode(t, c, admin.Node.Name, true, false)
	assertLB(t, c, admin.Node.Name, true)
	assertNode(t, c, plain.Node.Name, false, false)
	assertLB(t, c, plain.Node.Name, false)
}

func assertLB(t *testing.T, c client.Client, name string, excluded bool) {
	t.Helper()
	var node corev1.Node
	if err := c.Get(context.Background(), client.ObjectKey{Name: name}, &node); err != nil {
		t.Fatal(err)
	}
	if got := node.Labels[brupopv2.ExcludeFromLBLabel] == drain.ExcludeFromLBValue; got != excluded {
		t.Errorf("node %s: excluded from load balancers %v, want %v (labels %v)", name, got, excluded, node.Labels)
	}
}

// watchRunning samples the number of running pods labelled app=name until the returned function
// is called, which returns the least number seen.
func watchRunning(t *testing.T, c client.Client, ns, name string) func() int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	least := make(chan int, 1)
	go func() {
		low := int(^uint(0) >> 1)
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			if on, err := podsByNode(ctx, c, ns, name); err == nil {
				n := 0
				for _, k := range on {
					n += k
				}
				low = min(low, n)
			}
			select {
			case <-ctx.Done():
				least <- low
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	var result int
	stop := func() int {
		once.Do(func() { cancel(); result = <-least })
		return result
	}
	t.Cleanup(func() { stop() })
	return stop
}

// nodeEvent returns the Event with reason recorded on node.
func nodeEvent(ctx context.Context, c client.Client, node *corev1.Node, reason string) (*eventsv1.Event, error) {
	var list eventsv1.EventList
	if err := c.List(ctx, &list, client.InNamespace(metav1.NamespaceDefault)); err != nil {
		return nil, err
	}
	for i, ev := range list.Items {
		if ev.Regarding.Kind == "Node" && ev.Regarding.Name == node.Name && ev.Regarding.UID == node.UID && ev.Reason == reason {
			return &list.Items[i], nil
		}
	}
	return nil, fmt.Errorf("no %s Event on Node %s among %d Events", reason, node.Name, len(list.Items))
}

// TestAPIServerShutdownMidDrainIsNotSuccess stops the server (as SIGTERM does) while a PDB holds a
// drain round: the waiting agent must hear "not drained", never a 200 that would let it reboot a
// node whose pods still run.
func TestAPIServerShutdownMidDrainIsNotSuccess(t *testing.T) {
	ctx := context.Background()
	d := startBlockedDrain(t, "s")
	c, ns, ts, a, result := d.c, d.ns, d.ts, d.agent, d.result
	ts.Stop()
	err := <-result
	if err == nil {
		t.Fatal("the drain answered success although the server stopped with its pods still on the node")
	}
	if !errors.Is(err, agentapi.ErrNotDrained) {
		var se *agentapi.StatusError
		if !errors.As(err, &se) && !strings.Contains(err.Error(), "connection") {
			t.Fatalf("drain = %v; want not drained (503) or a refused connection", err)
		}
	}
	if on, _ := podsByNode(ctx, c, ns, "db"); on[a.Node.Name] != 1 {
		t.Errorf("db pods per node: %v, want 1 still on %s", on, a.Node.Name)
	}
}

// TestAPIServerDrainStopsWhenTheNodeIsUncordoned uncordons the node behind the drain's back, as an
// uncordon served by another API-server replica does: the drain stops evicting instead of
// emptying a node the scheduler fills again, and the waiting agent is not told it succeeded.
func TestAPIServerDrainStopsWhenTheNodeIsUncordoned(t *testing.T) {
	ctx := context.Background()
	d := startBlockedDrain(t, "u")
	c, ns, ts, a, result := d.c, d.ns, d.ts, d.agent, d.result
	if _, err := ts.kube.CoreV1().Nodes().Patch(ctx, a.Node.Name, types.MergePatchType,
		[]byte(`{"spec":{"unschedulable":false}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-result:
		var se *agentapi.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusInternalServerError || !strings.Contains(se.Message, "uncordoned") {
			t.Fatalf("drain of an uncordoned node = %v; want 500 saying it was uncordoned", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the drain went on for 30 s after the node was uncordoned")
	}
	if on, _ := podsByNode(ctx, c, ns, "db"); on[a.Node.Name] != 1 {
		t.Errorf("db pods per node: %v, want 1 still on %s", on, a.Node.Name)
	}
}

// blockedDrain is a drain that a PodDisruptionBudget holds: the node is cordoned, its one "db"
// pod may not be evicted, and result receives the agent's CordonAndDrain answer.
type blockedDrain struct {
	c      client.Client
	ns     string
	ts     *testServer
	agent  *agentIdentity
	result chan error
}

// startBlockedDrain starts such a drain (deadline and round one minute) and returns once the
// node is cordoned.
func startBlockedDrain(t *testing.T, nodeSuffix string) blockedDrain {
	t.Helper()
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	ts := startAPIServer(t, ns, func(o *apiserver.Options) { o.DrainPollTime = time.Minute })
	fakeKubelet(t, ts.kube, ns, 0)
	a := ts.newAgent(t, readyNode(t, ts.kube, ns+"-"+nodeSuffix, nil, false))
	workload(t, c, ns, "db", 1, 0, func(s *corev1.PodSpec) { s.NodeName = a.Node.Name })
	waitPDB(t, c, ns, "db", 0, 1)
	result := make(chan error, 1)
	go func() {
		_, err := a.Client.CordonAndDrain(ctx, time.Now().Add(time.Minute))
		result <- err
	}()
	eventually(t, 10*time.Second, func() error {
		var n corev1.Node
		if err := c.Get(ctx, client.ObjectKey{Name: a.Node.Name}, &n); err != nil {
			return err
		}
		if !n.Spec.Unschedulable {
			return errors.New("not cordoned yet")
		}
		return nil
	})
	return blockedDrain{c: c, ns: ns, ts: ts, agent: a, result: result}
}
