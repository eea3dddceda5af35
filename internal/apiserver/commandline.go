package apiserver

import (
	"errors"
	"flag"
	"fmt"
	"strconv"

	"github.com/bottlerocket-os/brupop-go/internal/logging"
)

// EnvInternalPort is upstream's variable for the port the API server listens on.
const EnvInternalPort = "APISERVER_INTERNAL_PORT"

// CommandLine is the whole configuration of the apiserver command.
type CommandLine struct {
	// Server configures the server.
	Server Options
	// Kubeconfig is a kubeconfig file; empty means the in-cluster configuration.
	Kubeconfig string
	// Logging are upstream's logging settings.
	Logging logging.Options
}

// ParseCommandLine reads the flags in args (without the program name), with upstream's
// environment variables, read through getenv, as their defaults and namespace as the default
// namespace, and validates the result. The error lists every problem.
func ParseCommandLine(args []string, getenv func(string) string, namespace string) (CommandLine, error) {
	c := CommandLine{Server: DefaultOptions(namespace)}
	var errs []error
	if v := getenv(EnvInternalPort); v != "" {
		port, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q is not a port number", EnvInternalPort, v))
		}
		c.Server.Port = port
	}
	var err error
	if c.Logging, err = logging.FromGetenv(getenv); err != nil {
		errs = append(errs, err)
	}
	fs := flag.NewFlagSet("apiserver", flag.ContinueOnError)
	s := &c.Server
	fs.IntVar(&s.Port, "port", s.Port, "HTTPS port (env "+EnvInternalPort+")")
	fs.StringVar(&s.TLSDir, "tls-dir", s.TLSDir, "directory of tls.crt and tls.key, reloaded when they change")
	fs.StringVar(&s.Namespace, "namespace", s.Namespace, "Brupop's namespace (shadows, agent ServiceAccount)")
	fs.DurationVar(&s.DrainTimeout, "drain-timeout", s.DrainTimeout, "deadline of a drain whose request names none (upstream agents), counted from the node's cordon; 0: --max-drain-timeout")
	fs.DurationVar(&s.DrainPollTime, "drain-poll-time", s.DrainPollTime, "length of one drain round: the longest a cordon-and-drain request evicts before it answers 503 with the pods left (for a request without a deadline, at least the drain timeout / 6)")
	fs.DurationVar(&s.MaxDrainTimeout, "max-drain-timeout", s.MaxDrainTimeout, "longest a node may stay cordoned for a drain, on any replica (caps the deadline an agent asks for)")
	fs.DurationVar(&s.EvictionRetryDelay, "eviction-retry-delay", s.EvictionRetryDelay, "wait before retrying an eviction a PodDisruptionBudget refused")
	fs.DurationVar(&s.TokenCacheTTL, "token-cache-ttl", s.TokenCacheTTL, "how long a TokenReview answer is reused (0: never)")
	fs.IntVar(&s.TokenCacheSize, "token-cache-size", s.TokenCacheSize, "most TokenReview answers cached")
	fs.Int64Var(&s.MaxBodyBytes, "max-body-bytes", s.MaxBodyBytes, "largest agent request body")
	fs.DurationVar(&s.ShutdownTimeout, "shutdown-timeout", s.ShutdownTimeout, "longest wait for running requests on SIGTERM")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", "", "kubeconfig file; empty means the in-cluster configuration")
	fs.StringVar(&c.Logging.Format, "log-format", c.Logging.Format, "full, compact, pretty or json (env LOGGING_FORMATTER)")
	fs.StringVar(&c.Logging.Filter, "log-level", c.Logging.Filter, "tracing filter such as info or info,apiserver=debug; its most verbose level applies, what maps to no level is ignored with a warning (env TRACING_FILTER_DIRECTIVE)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	errs = append(errs, c.Logging.Validate(), c.Server.Validate())
	return c, errors.Join(errs...)
}
