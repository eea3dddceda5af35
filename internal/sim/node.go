package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi/hostapitest"
)

// simNode is one simulated node: its host, its agent, and the goroutine that plays what a
// real node does when the host reboots.
type simNode struct {
	name   string
	host   *hostapitest.Host
	events chan hostapitest.RebootEvent

	cluster *Cluster
	log     logr.Logger
	// cancel ends the node's goroutine (DeleteNode); restart asks it to restart the agent and
	// is closed back when done (RestartAgent).
	cancel  context.CancelFunc
	restart chan chan struct{}

	mu         sync.Mutex
	stopAgent  context.CancelFunc // nil while no agent runs
	agentDone  chan struct{}
	agentStart int // agents started so far
	notReady   bool
	fault      Step // the step the node is told to fail; PublishFix clears it

	// monitorDown is set while a monitor fault keeps the Node NotReady (Rollout's goroutine).
	monitorDown bool
}

// hostConfig is the simulated host of a node: running from, with commands that take the
// options' times (prepare jittered by rnd, a fraction in [0, 1)).
func hostConfig(o *Options, rnd float64) hostapitest.Config {
	prepare := o.PrepareTime + time.Duration(rnd*0.4*float64(o.PrepareTime)) - o.PrepareTime/5
	return hostapitest.Config{
		Version: o.From, Variant: variant, Available: []string{o.From},
		CommandTime: o.PrepareTime / 10,
		CommandTimes: map[hostapi.CommandType]time.Duration{
			hostapi.CommandPrepare: prepare,
		},
		RebootTime: o.RebootTime,
	}
}

// startHost starts the node's simulated host on a socket in dir.
func (n *simNode) startHost(dir string, cfg hostapitest.Config) error {
	cfg.OnReboot = func(ev hostapitest.RebootEvent) {
		// The host's goroutine must not block: the node's own goroutine acts on it.
		select {
		case n.events <- ev:
		default:
			n.log.Info("Dropped a reboot event: the node is too slow", "phase", ev.Phase)
		}
	}
	h, err := hostapitest.Start(filepath.Join(dir, n.name+".sock"), cfg)
	if err != nil {
		return fmt.Errorf("sim: host of %s: %w", n.name, err)
	}
	n.host = h
	return nil
}

// applyFault makes the host fail the node's fault step, as a bad release for it would.
func (n *simNode) applyFault() {
	fault := n.faultStep()
	msg := "simulated failure (--fail " + n.name + ":" + string(fault) + ")"
	f := n.host.Faults()
	switch fault {
	case StepRefresh:
		f.FailRefresh = msg
	case StepPrepare:
		f.FailPrepare = msg
	case StepActivate:
		f.FailActivate = msg
	case StepBoot:
		f.FailBoot = true
	default:
		return // monitor: the node turns NotReady in MonitoringUpdate (see Cluster.observe)
	}
	n.host.SetFaults(f)
}

// faultStep returns the step the node is told to fail, or "".
func (n *simNode) faultStep() Step {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fault
}

// run plays the node until ctx ends: it starts the agent, and on every reboot stops it, keeps
// the Node NotReady while the host is down, then marks it Ready and starts a new agent.
func (n *simNode) run(ctx context.Context) {
	defer n.stop()
	n.start(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case done := <-n.restart:
			n.restartAgent(ctx)
			close(done)
		case ev := <-n.events:
			switch ev.Phase {
			case hostapitest.RebootStarted:
				n.log.V(1).Info("Rebooting", "version", ev.Version)
				n.stop()
				n.setNotReady(ctx, true)
			case hostapitest.RebootBooted:
				n.log.V(1).Info("Booted", "version", ev.Version, "rolledBack", ev.RolledBack)
				n.setOSImage(ctx, ev.Version)
				n.setNotReady(ctx, false)
				n.start(ctx)
			}
		}
	}
}

// restartAgent stops the running agent and starts a new one, as a crash and the kubelet's
// restart would; while the host reboots no agent runs and nothing happens.
func (n *simNode) restartAgent(ctx context.Context) {
	n.mu.Lock()
	up := n.stopAgent != nil
	n.mu.Unlock()
	if !up {
		return
	}
	n.log.Info("Restarting the agent")
	n.stop()
	n.start(ctx)
}

// start runs a new agent for the node, if the cluster has agents.
func (n *simNode) start(ctx context.Context) {
	c := n.cluster
	if c.components.Agent == nil {
		return
	}
	run, err := n.newAgent(ctx)
	if err != nil {
		n.log.Error(err, "Cannot start the agent")
		return
	}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	n.mu.Lock()
	n.stopAgent, n.agentDone = cancel, done
	n.agentStart++
	n.mu.Unlock()
	go func() {
		defer close(done)
		if err := run(actx); err != nil {
			n.log.Error(err, "Agent stopped")
		}
	}()
}

// newAgent builds an agent with fresh tokens bound to the node's agent pod.
func (n *simNode) newAgent(ctx context.Context) (RunFunc, error) {
	c := n.cluster
	pod, err := c.agentPod(ctx, n.name)
	if err != nil {
		return nil, err
	}
	kubeToken, err := requestToken(ctx, c.kube, agentapi.AgentServiceAccount, "", pod)
	if err != nil {
		return nil, err
	}
	serverToken, err := requestToken(ctx, c.kube, agentapi.AgentServiceAccount, agentapi.TokenAudience, pod)
	if err != nil {
		return nil, err
	}
	tokenPath := filepath.Join(c.dir, "tokens", n.name)
	if err := writeToken(tokenPath, serverToken); err != nil {
		return nil, err
	}
	return c.components.Agent(AgentEnv{
		NodeName: n.name, Namespace: Namespace, Kube: asToken(c.admin, kubeToken),
		ServerURL: c.serverURL, CAPath: c.ca.caPath, TokenPath: tokenPath,
		HostSocket: n.host.SocketPath(), RefreshInterval: agentRefresh,
		Log: n.log.WithName("agent"),
	})
}

// agentRefresh is how often agents look for updates in the simulation.
const agentRefresh = 2 * time.Second

// stop stops the node's agent, if one runs, and waits for it.
func (n *simNode) stop() {
	n.mu.Lock()
	cancel, done := n.stopAgent, n.agentDone
	n.stopAgent, n.agentDone = nil, nil
	n.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// setNotReady adds or removes kwok's node-not-ready label: the Node's "kubelet" reports
// Ready=False while it is present.
func (n *simNode) setNotReady(ctx context.Context, notReady bool) {
	n.mu.Lock()
	if n.notReady == notReady {
		n.mu.Unlock()
		return
	}
	n.notReady = notReady
	n.mu.Unlock()
	var value any // null removes the label
	if notReady {
		value = "true"
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{kwokNotReadyLabel: value}}})
	if err := patchNode(ctx, n.cluster.kube, n.name, patch, ""); err != nil {
		n.log.Error(err, "Cannot change the Node's readiness", "notReady", notReady)
	}
}

// setOSImage reports the running version in the Node's osImage, as the kubelet does.
func (n *simNode) setOSImage(ctx context.Context, version string) {
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{"nodeInfo": map[string]any{"osImage": osImage(version)}}})
	if err := patchNode(ctx, n.cluster.kube, n.name, patch, "status"); err != nil {
		n.log.Error(err, "Cannot report the OS image", "version", version)
	}
}

func patchNode(ctx context.Context, kube kubernetes.Interface, name string, patch []byte, subresource string) error {
	var sub []string
	if subresource != "" {
		sub = []string{subresource}
	}
	if _, err := kube.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, sub...); err != nil {
		return fmt.Errorf("sim: patch node %s: %w", name, err)
	}
	return nil
}

// nodeReady reports whether the Node's Ready condition is True.
func nodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
