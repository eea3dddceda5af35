package main

import (
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/bottlerocket-os/brupop-go/internal/controller"
	"github.com/bottlerocket-os/brupop-go/internal/logging"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		writeTerminationLog(err)
		os.Exit(1)
	}
}

func run(args []string) error {
	o, err := controller.ParseOptions(args, os.Getenv)
	if err != nil {
		return err
	}
	logger, err := logging.New(os.Stderr, o.Logging())
	if err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	ctrl.SetLogger(logger)
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("controller: Kubernetes client configuration: %w", err)
	}
	mgr, err := controller.NewManager(cfg, o, ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	ctx := ctrl.SetupSignalHandler()
	logger.Info("Starting controller", "namespace", o.Namespace, "node", o.NodeName, "maxConcurrentUpdate", o.Environment.MaxConcurrentUpdate)
	if s, err := controller.Settings(nil, o.Environment, o.TimeZone); err == nil {
		for _, w := range s.Warnings {
			logger.Info("Configuration warning", "warning", w)
		}
	}
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	return nil
}

// writeTerminationLog writes the fatal error where Kubernetes shows it (TERMINATION_LOG, as
// upstream), ignoring failures: the error is on stderr already.
func writeTerminationLog(err error) {
	path := os.Getenv("TERMINATION_LOG")
	if path == "" {
		path = "/dev/termination-log"
	}
	_ = os.WriteFile(path, []byte(err.Error()), 0o644)
}
