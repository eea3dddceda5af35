package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bottlerocket-os/brupop-go/internal/agent"
	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}

func run() error {
	opts, err := agent.DefaultOptions(os.Getenv)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	opts.BindFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	log, err := opts.Logger(os.Stderr)
	if err != nil {
		return err
	}
	kube, err := kubeConfig(opts.Kubeconfig)
	if err != nil {
		return err
	}
	watch, err := agent.WatchCluster(kube, opts.NodeName, opts.Namespace)
	if err != nil {
		return err
	}
	a, err := agent.New(agent.Config{
		NodeName:  opts.NodeName,
		Namespace: opts.Namespace,
		Watch:     watch,
		Server: &agentapi.Client{
			BaseURL: opts.URL(), NodeName: opts.NodeName, TokenPath: opts.TokenFile, CAPath: opts.CAFile,
		},
		Host:              hostapi.New(hostapi.Options{SocketPath: opts.HostSocket}),
		ExcludeFromLBWait: opts.ExcludeFromLBWait,
		DrainTimeout:      opts.DrainTimeout,
		RefreshInterval:   opts.RefreshInterval,
		Resync:            opts.Resync,
		RebootTimeout:     opts.RebootTimeout,
		Log:               log,
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return a.Run(ctx)
}

// kubeConfig is the in-cluster configuration, or the kubeconfig file when one is given.
func kubeConfig(path string) (*rest.Config, error) {
	if path == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster configuration (use --kubeconfig outside a pod): %w", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return cfg, nil
}
