// Command apiserver is Brupop's API server: the only path by which node agents write to the
// cluster, each for its own node, and the conversion webhook of BottlerocketShadow.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"k8s.io/client-go/tools/clientcmd"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/apiserver"
	"github.com/bottlerocket-os/brupop-go/internal/logging"
)

// namespaceFile holds the pod's namespace when it runs in a cluster.
const namespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

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
	o := options{server: apiserver.DefaultOptions(defaultNamespace())}
	var errs []error
	if v, ok := os.LookupEnv("APISERVER_INTERNAL_PORT"); ok {
		port, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("APISERVER_INTERNAL_PORT %q is not a port number", v))
		}
		o.server.Port = port
	}
	var err error
	if o.logging, err = logging.FromEnv(); err != nil {
		errs = append(errs, err)
	}
	fs := flag.NewFlagSet("apiserver", flag.ContinueOnError)
	s := &o.server
	fs.IntVar(&s.Port, "port", s.Port, "HTTPS port (env APISERVER_INTERNAL_PORT)")
	fs.StringVar(&s.TLSDir, "tls-dir", s.TLSDir, "directory of tls.crt and tls.key, reloaded when they change")
	fs.StringVar(&s.Namespace, "namespace", s.Namespace, "Brupop's namespace (shadows, agent ServiceAccount)")
	fs.DurationVar(&s.DrainTimeout, "drain-timeout", s.DrainTimeout, "deadline of a drain whose request names none")
	fs.DurationVar(&s.DrainPollTime, "drain-poll-time", s.DrainPollTime, "longest wait of one cordon-and-drain request before a 503 while the drain goes on")
	fs.DurationVar(&s.EvictionRetryDelay, "eviction-retry-delay", s.EvictionRetryDelay, "wait before retrying an eviction a PodDisruptionBudget refused")
	fs.DurationVar(&s.TokenCacheTTL, "token-cache-ttl", s.TokenCacheTTL, "how long a TokenReview answer is reused (0: never)")
	fs.IntVar(&s.TokenCacheSize, "token-cache-size", s.TokenCacheSize, "most TokenReview answers cached")
	fs.Int64Var(&s.MaxBodyBytes, "max-body-bytes", s.MaxBodyBytes, "largest agent request body")
	fs.DurationVar(&s.ShutdownTimeout, "shutdown-timeout", s.ShutdownTimeout, "longest wait for running requests on SIGTERM")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means the in-cluster configuration")
	fs.StringVar(&o.logging.Format, "log-format", o.logging.Format, "full, compact, pretty or json (env LOGGING_FORMATTER)")
	fs.StringVar(&o.logging.Filter, "log-level", o.logging.Filter, "error, warn, info, debug or trace (env TRACING_FILTER_DIRECTIVE)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	errs = append(errs, o.logging.Validate(), o.server.Validate())
	return o, errors.Join(errs...)
}

func defaultNamespace() string {
	if raw, err := os.ReadFile(namespaceFile); err == nil {
		if ns := strings.TrimSpace(string(raw)); ns != "" {
			return ns
		}
	}
	return v2.DefaultNamespace
}
