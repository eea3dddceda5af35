package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/controlplane"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi/hostapitest"
)

// Cluster is a running simulated cluster. Stop it when done.
type Cluster struct {
	// ControlPlane is the real control plane; its KubeconfigPath and KubectlPath let people in.
	ControlPlane *controlplane.ControlPlane
	// Options are the validated options the cluster runs with.
	Options Options

	admin      *rest.Config
	kube       kubernetes.Interface
	client     client.Client
	dir        string
	ca         *authority
	serverURL  string
	listener   net.Listener
	kwok       *kwokProcess
	components *Components
	nodes      []*simNode
	log        logr.Logger

	// runCtx is the context the components run with; apiServer and controller are the running
	// API server and controller (nil when the cluster has none), replaced by their restarts.
	runCtx     context.Context
	apiServer  *running
	controller *running

	mu      sync.Mutex
	target  string          // the version the rollout goes to: Options.To, or PublishFix's
	deleted map[string]bool // nodes DeleteNode deleted

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

// Start brings up a cluster of opts.Nodes nodes and returns once the nodes are Ready, their
// workloads Running, their hosts answering and the components started. On error, whatever had
// started is stopped again.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	c = &Cluster{Options: opts, components: opts.Components, log: opts.Log,
		target: opts.To, deleted: map[string]bool{}}
	if c.components == nil {
		c.components = DefaultComponents()
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Stop())
			c = nil
		}
	}()
	if c.dir, err = os.MkdirTemp("", "brupop-sim-"); err != nil {
		return c, fmt.Errorf("sim: %w", err)
	}
	for _, sub := range []string{"hosts", "tokens", "tls"} {
		if err := os.Mkdir(filepath.Join(c.dir, sub), 0o700); err != nil {
			return c, fmt.Errorf("sim: %w", err)
		}
	}
	if err := c.startControlPlane(ctx); err != nil {
		return c, err
	}
	if err := c.install(ctx); err != nil {
		return c, err
	}
	if err := c.waitUp(ctx); err != nil {
		return c, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	if err := c.startHosts(); err != nil {
		return c, err
	}
	return c, c.startComponents(runCtx)
}

// startControlPlane starts the control plane with the CRDs of config/, then kwok.
func (c *Cluster) startControlPlane(ctx context.Context) error {
	cfgDir, err := configDir()
	if err != nil {
		return err
	}
	// The control plane's output is not redirected: envtest would send etcd's and
	// kube-apiserver's to this process's stdout and stderr, through the live table.
	cp, err := controlplane.Start(ctx, controlplane.Options{
		ToolsDir: c.Options.ToolsDir, ControllerManager: true, Scheduler: true,
		CRDDirs: []string{filepath.Join(cfgDir, "crd")},
	})
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	c.ControlPlane = cp
	c.admin = rest.CopyConfig(cp.Config)
	c.admin.QPS, c.admin.Burst = 200, 400
	if c.kube, err = kubernetes.NewForConfig(c.admin); err != nil {
		return fmt.Errorf("sim: kubernetes client: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fmt.Errorf("sim: scheme: %w", err)
	}
	if err := v2.AddToScheme(scheme); err != nil {
		return fmt.Errorf("sim: scheme: %w", err)
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return fmt.Errorf("sim: scheme: %w", err)
	}
	if c.client, err = client.New(c.admin, client.Options{Scheme: scheme}); err != nil {
		return fmt.Errorf("sim: client: %w", err)
	}
	c.kwok, err = startKwok(cp.ToolsDir, cp.KubeconfigPath, c.dir, c.Options.ProcessOutput)
	return err
}

// install creates Brupop's namespace, RBAC, TLS, the Nodes, the agent DaemonSet, the demo
// workloads and the FleetPolicy.
func (c *Cluster) install(ctx context.Context) error {
	cfgDir, err := configDir()
	if err != nil {
		return err
	}
	for _, ns := range []string{Namespace, WorkloadNamespace} {
		if err := create(ctx, c.client, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}
	if err := installRBAC(ctx, c.client, cfgDir); err != nil {
		return err
	}
	if err := c.setUpTLS(ctx, cfgDir); err != nil {
		return err
	}
	for i := range c.Options.Nodes {
		if err := create(ctx, c.client, nodeObject(i, c.Options.From, ZoneOf(i, c.Options.Zones))); err != nil {
			return err
		}
	}
	web, db, pdb := workloads(c.Options.Nodes)
	for _, obj := range []client.Object{agentDaemonSet(), web, db, pdb, fleetPolicy(&c.Options)} {
		if err := create(ctx, c.client, obj); err != nil {
			return err
		}
	}
	return nil
}

// setUpTLS creates the CA and the API server's serving certificate, reserves its port and
// points the CRD's conversion webhook at it.
func (c *Cluster) setUpTLS(ctx context.Context, cfgDir string) error {
	var err error
	if c.ca, err = newAuthority(c.dir); err != nil {
		return err
	}
	svc := "brupop-apiserver." + Namespace + ".svc"
	if err := c.ca.issueServing(filepath.Join(c.dir, "tls"), svc, svc+".cluster.local"); err != nil {
		return err
	}
	if c.listener, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return fmt.Errorf("sim: listen for the API server: %w", err)
	}
	c.serverURL = "https://" + c.listener.Addr().String()
	return pointConversionWebhook(ctx, c.client, cfgDir, c.serverURL+"/crdconvert", c.ca.pemCA)
}

// startHosts starts one simulated host per node; prepare times are jittered by the seed.
func (c *Cluster) startHosts() error {
	rnd := rand.New(rand.NewPCG(uint64(c.Options.Seed), 0x5eed)) //nolint:gosec // a simulation's jitter
	for i := range c.Options.Nodes {
		name := NodeName(i)
		n := &simNode{
			name: name, fault: c.Options.faultOf(name), cluster: c,
			events: make(chan hostapitest.RebootEvent, 8), restart: make(chan chan struct{}),
			log: c.log.WithValues("node", name),
		}
		if err := n.startHost(filepath.Join(c.dir, "hosts"), hostConfig(&c.Options, rnd.Float64())); err != nil {
			return err
		}
		c.nodes = append(c.nodes, n)
	}
	return nil
}

// Publish releases the target version to every host's update repository and arms the faults.
func (c *Cluster) Publish() error {
	for _, n := range c.nodes {
		n.applyFault()
		if err := n.host.Publish(append([]string{c.Options.To}, c.Options.AlsoOffer...)...); err != nil {
			return fmt.Errorf("sim: publish %s to %s: %w", c.Options.To, n.name, err)
		}
	}
	return nil
}

// Dir is the cluster's temporary directory (sockets, tokens, TLS, kwok's configuration).
func (c *Cluster) Dir() string { return c.dir }

// Stop stops the components, the hosts, kwok and the control plane, and removes the temporary
// files. It is safe to call more than once.
func (c *Cluster) Stop() error {
	c.once.Do(func() {
		var errs []error
		if c.cancel != nil {
			c.cancel()
		}
		c.wg.Wait()
		if c.listener != nil {
			_ = c.listener.Close() // closed already when the API server ran
		}
		for _, n := range c.nodes {
			errs = append(errs, n.host.Close())
		}
		errs = append(errs, c.kwok.stop())
		if c.ControlPlane != nil {
			errs = append(errs, c.ControlPlane.Stop())
		}
		if c.dir != "" {
			errs = append(errs, os.RemoveAll(c.dir))
		}
		c.err = errors.Join(errs...)
	})
	return c.err
}
