package integration

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	brupopv2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/apiserver"
	"github.com/bottlerocket-os/brupop-go/internal/drain"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi/hostapitest"
)

// upstreamLeft is a node as upstream's components leave it when they are replaced: the Node
// cordoned or excluded from load balancers without Brupop's annotations, and the shadow's spec
// and status.
type upstreamLeft struct {
	name             string
	cordoned, exclud bool
	spec, status     brupopv2.State
	// host is the simulated host's version; staged activates agentNewVersion on it.
	host   string
	staged bool
}

// switchNode starts, in e's namespace and on its API server, the Node, host and shadow of u, and
// returns the node's environment (its agent not started).
func (e *agentEnv) switchNode(t *testing.T, u upstreamLeft) *agentEnv {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{brupopv2.NodeOptInLabel: brupopv2.NodeOptInValue}
	if u.exclud {
		labels[brupopv2.ExcludeFromLBLabel] = "True"
	}
	id := e.ts.newAgent(t, readyNode(t, e.ts.kube, e.ns+"-"+u.name, labels, u.cordoned))
	heartbeat(t, e.c, id.Node.Name)
	n := &agentEnv{c: e.c, ns: e.ns, ts: e.ts, node: id.Node, tokenPath: id.Client.TokenPath, caPath: e.caPath, lbWait: e.lbWait}
	host, err := hostapitest.Start(filepath.Join(t.TempDir(), "api.sock"), hostapitest.Config{
		Version: u.host, Available: []string{agentOldVersion, agentNewVersion}, CommandTime: 10 * time.Millisecond, RebootTime: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Close() })
	n.host, n.hc = host, newHostClient(host.SocketPath())
	if u.staged {
		for _, step := range []func(context.Context) error{
			func(ctx context.Context) error { _, err := n.hc.Refresh(ctx); return err },
			func(ctx context.Context) error { _, err := n.hc.Prepare(ctx); return err },
			func(ctx context.Context) error { _, err := n.hc.Activate(ctx); return err },
		} {
			if err := step(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The shadow as upstream's controller and agent wrote it: no annotation of ours.
	brs := &brupopv2.BottlerocketShadow{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: brupopv2.ShadowName(id.Node.Name),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: id.Node.Name, UID: id.Node.UID}}},
		Spec: brupopv2.BottlerocketShadowSpec{State: u.spec, StateTransitionTimestamp: &metav1.Time{Time: time.Now()}},
	}
	if u.spec != brupopv2.StateIdle {
		brs.Spec.Version = ptr.To(agentNewVersion)
	}
	if err := e.c.Create(ctx, brs); err != nil {
		t.Fatal(err)
	}
	current := agentOldVersion
	if u.status == brupopv2.StateRebootedIntoUpdate {
		current = agentNewVersion
	}
	brs.Status = &brupopv2.BottlerocketShadowStatus{CurrentVersion: current, TargetVersion: agentNewVersion, CurrentState: u.status}
	if err := e.c.Status().Update(ctx, brs); err != nil {
		t.Fatal(err)
	}
	return n
}

// nodeIs checks the Node's cordon and load-balancer exclusion.
func (e *agentEnv) nodeIs(cordoned, excluded bool) error {
	var n corev1.Node
	if err := e.c.Get(context.Background(), client.ObjectKeyFromObject(e.node), &n); err != nil {
		return err
	}
	_, labelled := n.Labels[brupopv2.ExcludeFromLBLabel]
	if n.Spec.Unschedulable != cordoned || labelled != excluded {
		return fmt.Errorf("node %s: unschedulable %v, excluded %v; want %v, %v (annotations %v)", n.Name, n.Spec.Unschedulable, labelled, cordoned, excluded, n.Annotations)
	}
	if _, timed := n.Annotations[drain.AnnotationCordonTime]; timed {
		return fmt.Errorf("node %s still has its cordon time", n.Name)
	}
	return nil
}

// TestSwitchFromUpstreamMidUpdate: upstream's components are replaced by ours in the middle of a
// rollout. One node is being drained (cordoned and excluded by upstream, its update activated),
// one has rebooted into the update but not reported it (still cordoned and excluded), and one
// is Idle, cordoned by an administrator. Our API server, agents and controller take over: the
// rollout finishes with every node Idle on the new version, the two upstream left released,
// and the administrator's cordon kept.
func TestSwitchFromUpstreamMidUpdate(t *testing.T) {
	t.Parallel()
	start := time.Now()
	e := newAgentEnv(t, hostapitest.Config{Version: agentOldVersion}, func(o *apiserver.Options) { o.MaxDrainTimeout = 30 * time.Second })
	e.lbWait = 50 * time.Millisecond
	fleetPolicy(t, e.c, e.ns, nil)
	draining := e.switchNode(t, upstreamLeft{name: "draining", cordoned: true, exclud: true,
		spec: brupopv2.StateRebootedIntoUpdate, status: brupopv2.StateStagedAndPerformedUpdate, host: agentOldVersion, staged: true})
	rebooted := e.switchNode(t, upstreamLeft{name: "rebooted", cordoned: true, exclud: true,
		spec: brupopv2.StateRebootedIntoUpdate, status: brupopv2.StateStagedAndPerformedUpdate, host: agentNewVersion})
	admin := e.switchNode(t, upstreamLeft{name: "admin", cordoned: true,
		spec: brupopv2.StateIdle, status: brupopv2.StateIdle, host: agentOldVersion})
	nodes := []*agentEnv{draining, rebooted, admin}

	for _, n := range nodes {
		n.startAgent(t)
	}
	startController(t, controllerIdentity(t, e.c, e.ns, nil), testOptions(e.ns, "unlimited"))

	eventually(t, 30*time.Second, func() error {
		var errs []error
		for _, n := range nodes {
			brs, err := n.shadow()
			switch {
			case err != nil:
				errs = append(errs, err)
			case brs.Status == nil || brs.Spec.State != brupopv2.StateIdle || brs.Status.CurrentState != brupopv2.StateIdle ||
				brs.Status.CurrentVersion != agentNewVersion || n.host.Version() != agentNewVersion:
				errs = append(errs, fmt.Errorf("%s: spec %s, status %+v, host %s; want Idle on %s", brs.Name, brs.Spec.State, brs.Status, n.host.Version(), agentNewVersion))
			}
		}
		return errors.Join(errs...)
	})
	for _, n := range []*agentEnv{draining, rebooted} {
		if err := n.nodeIs(false, false); err != nil {
			t.Errorf("a node upstream left mid-update: %v", err)
		}
		n.checkNodeRestored(t)
	}
	if err := admin.nodeIs(true, false); err != nil {
		t.Errorf("the administrator's node: %v", err)
	}
	if draining.host.Boots() != 1 || rebooted.host.Boots() != 0 || admin.host.Boots() != 1 {
		t.Errorf("boots: draining %d, rebooted %d, admin %d; want 1, 0 (it had rebooted under upstream), 1",
			draining.host.Boots(), rebooted.host.Boots(), admin.host.Boots())
	}
	t.Logf("rollout taken over and finished in %s", time.Since(start).Round(time.Millisecond))
}
