package sim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
)

// upTimeout bounds the wait for nodes and workloads after the control plane is up.
const upTimeout = 2 * time.Minute

// poll calls check every interval until it returns true or an error, ctx ends or timeout
// passes; the error then says what check last reported.
func poll(ctx context.Context, interval, timeout time.Duration, check func(context.Context) (bool, string, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, why, err := check(ctx)
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", ctx.Err(), why)
		case <-tick.C:
		}
	}
}

// waitUp waits until every node is Ready with a Running agent pod, the workloads are Ready
// and their PDB allows a disruption.
func (c *Cluster) waitUp(ctx context.Context) error {
	err := poll(ctx, 250*time.Millisecond, upTimeout, func(ctx context.Context) (bool, string, error) {
		if err := c.kwok.exited(); err != nil {
			return false, "", err
		}
		return c.upState(ctx)
	})
	if err != nil {
		return fmt.Errorf("sim: cluster did not come up: %w", err)
	}
	return nil
}

// upState says whether the cluster is up, and if not, what it waits for.
func (c *Cluster) upState(ctx context.Context) (bool, string, error) {
	var nodes corev1.NodeList
	if err := c.client.List(ctx, &nodes); err != nil {
		return false, err.Error(), nil
	}
	ready := 0
	for i := range nodes.Items {
		if nodeReady(&nodes.Items[i]) {
			ready++
		}
	}
	if ready < c.Options.Nodes {
		return false, fmt.Sprintf("%d of %d nodes Ready", ready, c.Options.Nodes), nil
	}
	var pods corev1.PodList
	if err := c.client.List(ctx, &pods, client.InNamespace(Namespace)); err != nil {
		return false, err.Error(), nil
	}
	running := 0
	for i := range pods.Items {
		if pods.Items[i].Status.Phase == corev1.PodRunning && pods.Items[i].Spec.NodeName != "" {
			running++
		}
	}
	if running < c.Options.Nodes {
		return false, fmt.Sprintf("%d of %d agent pods Running", running, c.Options.Nodes), nil
	}
	return c.workloadsUp(ctx)
}

// workloadsUp says whether the demo workloads are Ready and their PDB allows a disruption.
func (c *Cluster) workloadsUp(ctx context.Context) (bool, string, error) {
	var web appsv1.Deployment
	var db appsv1.StatefulSet
	var pdb policyv1.PodDisruptionBudget
	for name, obj := range map[string]client.Object{"web": &web, "db": &db, "demo": &pdb} {
		if err := c.client.Get(ctx, client.ObjectKey{Namespace: WorkloadNamespace, Name: name}, obj); err != nil {
			return false, err.Error(), nil
		}
	}
	switch {
	case web.Status.ReadyReplicas < *web.Spec.Replicas:
		return false, fmt.Sprintf("deployment web: %d of %d Ready", web.Status.ReadyReplicas, *web.Spec.Replicas), nil
	case db.Status.ReadyReplicas < *db.Spec.Replicas:
		return false, fmt.Sprintf("statefulset db: %d of %d Ready", db.Status.ReadyReplicas, *db.Spec.Replicas), nil
	case pdb.Status.DisruptionsAllowed < 1:
		return false, "PDB demo allows no disruption yet", nil
	}
	return true, "", nil
}

// agentPod returns the agent DaemonSet's pod on node.
func (c *Cluster) agentPod(ctx context.Context, node string) (*corev1.Pod, error) {
	var pods corev1.PodList
	sel := labels.SelectorFromSet(labels.Set{v2.ComponentLabel: agentapi.AgentComponent})
	if err := c.client.List(ctx, &pods, client.InNamespace(Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("sim: list agent pods: %w", err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Spec.NodeName == node && p.DeletionTimestamp == nil {
			return p, nil
		}
	}
	return nil, fmt.Errorf("sim: no agent pod on node %s", node)
}

// startComponents starts the API server, the controller and one agent per node, each on its
// own goroutine that ends with ctx.
func (c *Cluster) startComponents(ctx context.Context) error {
	c.runCtx = ctx
	if err := c.startAPIServer(ctx); err != nil {
		return err
	}
	if err := c.startController(ctx); err != nil {
		return err
	}
	for _, n := range c.nodes {
		nctx, cancel := context.WithCancel(ctx)
		n.cancel = cancel
		c.wg.Go(func() { n.run(nctx) })
	}
	return nil
}

// startAPIServer starts the API server, if the cluster has one, and waits until it answers.
func (c *Cluster) startAPIServer(ctx context.Context) error {
	f := c.components.APIServer
	if f == nil {
		return nil
	}
	cfg, err := serviceAccountConfig(ctx, c.admin, c.kube, APIServerServiceAccount)
	if err != nil {
		return err
	}
	run, err := f(APIServerEnv{REST: cfg, Namespace: Namespace, TLSDir: c.dir + "/tls", Listener: c.listener, Log: c.log.WithName("apiserver")})
	if err != nil {
		return fmt.Errorf("sim: API server: %w", err)
	}
	c.apiServer = c.goRun(ctx, "API server", run)
	return c.waitServer(ctx)
}

// startController starts the controller, if the cluster has one.
func (c *Cluster) startController(ctx context.Context) error {
	f := c.components.Controller
	if f == nil {
		return nil
	}
	cfg, err := serviceAccountConfig(ctx, c.admin, c.kube, ControllerServiceAccount)
	if err != nil {
		return err
	}
	run, err := f(ControllerEnv{
		REST: cfg, Namespace: Namespace, MaxConcurrentUpdate: strconv.Itoa(c.Options.MaxConcurrent),
		Log: c.log.WithName("controller"),
	})
	if err != nil {
		return fmt.Errorf("sim: controller: %w", err)
	}
	c.controller = c.goRun(ctx, "controller", run)
	return nil
}

// running is a component running on its own goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// stop stops the component and waits until it returned.
func (r *running) stop() {
	r.cancel()
	<-r.done
}

// goRun runs a component on a goroutine Stop waits for; the component also stops with the
// returned handle.
func (c *Cluster) goRun(ctx context.Context, what string, run RunFunc) *running {
	ctx, cancel := context.WithCancel(ctx)
	r := &running{cancel: cancel, done: make(chan struct{})}
	c.wg.Go(func() {
		defer close(r.done)
		if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			c.log.Error(err, "Component stopped", "component", what)
		}
	})
	return r
}

// waitServer waits until the API server answers its ping over TLS with the simulation's CA.
func (c *Cluster) waitServer(ctx context.Context) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.ca.pemCA)
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	err := poll(ctx, 100*time.Millisecond, 30*time.Second, func(ctx context.Context) (bool, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.serverURL+agentapi.PathPing, nil)
		if err != nil {
			return false, "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false, err.Error(), nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status, nil
	})
	if err != nil {
		return fmt.Errorf("sim: API server did not answer: %w", err)
	}
	return nil
}
