// Command apiserver is Brupop's API server: the only path by which node agents write to the
// cluster, each for its own node, and the conversion webhook of BottlerocketShadow.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/client-go/tools/clientcmd"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/apiserver"
	"github.com/bottlerocket-os/brupop-go/internal/incluster"
	"github.com/bottlerocket-os/brupop-go/internal/logging"
)

// options are the command's flags; environment variables of upstream give the defaults.
type options struct {
	server     apiserver.Options
	kubeconfig string
	logging    logging.Options
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "apiserver:", err)
		_ = os.WriteFile("/dev/termination-log", []byte(err.Error()), 0o644)
		os.Exit(1)
	}
}

func run(args []string) error {
	opts, err := parse(args)
	if err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, opts.logging)
	if err != nil {
		return err
	}
	rest, err := clientcmd.BuildConfigFromFlags("", opts.kubeconfig)
	if err != nil {
		return fmt.Errorf("kubernetes client configuration: %w", err)
	}
	srv, err := apiserver.New(apiserver.Config{Options: opts.server, REST: rest, Log: log})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return srv.Run(ctx)
}

// parse reads flags with environment fallbacks and validates the result.
func parse(args []string) (options, error) {
	c, err := apiserver.ParseCommandLine(args, os.Getenv, incluster.Namespace(incluster.NamespaceFile, v2.DefaultNamespace))
	return options{server: c.Server, kubeconfig: c.Kubeconfig, logging: c.Logging}, err
}
