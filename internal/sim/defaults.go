package sim

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/bottlerocket-os/brupop-go/internal/agent"
	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
	"github.com/bottlerocket-os/brupop-go/internal/apiserver"
	"github.com/bottlerocket-os/brupop-go/internal/controller"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
)

// controllerNode is the node the simulated controller says it runs on: none of the fleet's, so
// no node is held back to update last.
const controllerNode = "brupop-sim-control-plane"

// DefaultComponents returns Brupop's real components, wired for the simulated cluster with the
// short timings of a simulation.
func DefaultComponents() *Components {
	return &Components{APIServer: realAPIServer, Controller: realController, Agent: realAgent}
}

// setRuntimeLogger gives controller-runtime (the controller's manager, the agent's cache) a
// logger once, so that it never complains that none was set.
var setRuntimeLogger sync.Once

func realAPIServer(env APIServerEnv) (RunFunc, error) {
	opts := apiserver.DefaultOptions(env.Namespace)
	opts.TLSDir = env.TLSDir
	opts.EvictionRetryDelay = time.Second
	opts.DrainPollTime = 5 * time.Second
	opts.ShutdownTimeout = 5 * time.Second
	s, err := apiserver.New(apiserver.Config{Options: opts, REST: env.REST, Log: env.Log, Registry: prometheus.NewRegistry()})
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	return func(ctx context.Context) error { return s.Serve(ctx, env.Listener) }, nil
}

func realController(env ControllerEnv) (RunFunc, error) {
	setRuntimeLogger.Do(func() { crlog.SetLogger(env.Log) })
	o := controller.Options{
		Namespace: env.Namespace, NodeName: controllerNode,
		Environment: rollout.Environment{MaxConcurrentUpdate: env.MaxConcurrentUpdate},
		TimeZone:    "UTC", MetricsAddr: "0", HealthAddr: "0",
		LogFormat: "json", LogFilter: "info",
	}
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	mgr, err := controller.NewManager(env.REST, o, prometheus.NewRegistry())
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	return func(ctx context.Context) error { return mgr.Start(logr.NewContext(ctx, env.Log)) }, nil
}

func realAgent(env AgentEnv) (RunFunc, error) {
	setRuntimeLogger.Do(func() { crlog.SetLogger(env.Log) })
	watch, err := agent.WatchCluster(env.Kube, env.NodeName, env.Namespace)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	a, err := agent.New(agent.Config{
		NodeName: env.NodeName, Namespace: env.Namespace, Watch: watch,
		Server: &agentapi.Client{BaseURL: env.ServerURL, NodeName: env.NodeName, TokenPath: env.TokenPath, CAPath: env.CAPath},
		Host: hostapi.New(hostapi.Options{
			SocketPath: env.HostSocket, PollInterval: 100 * time.Millisecond,
			RetryBase: 100 * time.Millisecond, RetryMax: 2 * time.Second,
		}),
		DrainTimeout: 2 * time.Minute, RefreshInterval: env.RefreshInterval, Resync: 10 * time.Second,
		RebootTimeout: time.Minute, PollInterval: 200 * time.Millisecond,
		RetryBase: 250 * time.Millisecond, RetryMax: 5 * time.Second,
		Log: env.Log,
	})
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	return a.Run, nil
}
