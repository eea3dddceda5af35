package agent

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
	"github.com/bottlerocket-os/brupop-go/internal/incluster"
	"github.com/bottlerocket-os/brupop-go/internal/logging"
)

// The upstream environment variables the agent reads.
const (
	EnvNodeName       = "MY_NODE_NAME"
	EnvServicePort    = "APISERVER_SERVICE_PORT"
	EnvExcludeLBWait  = "EXCLUDE_FROM_LB_WAIT_TIME_IN_SEC"
	EnvLogFormat      = logging.EnvFormatter
	EnvLogANSI        = logging.EnvANSI
	EnvTracingFilter  = logging.EnvFilter
	defaultDomain     = "cluster.local"
	defaultCAFile     = agentapi.DefaultTLSDir + "/ca.crt"
	defaultDrain      = 10 * time.Minute
	defaultRefresh    = 120 * time.Second
	defaultResync     = 60 * time.Second
	defaultRebootWait = 3 * time.Minute
)

// Options is the agent's whole configuration, from flags with the upstream environment variables
// as defaults. Call Validate before using it.
type Options struct {
	// NodeName is the agent's node (MY_NODE_NAME). Required.
	NodeName string
	// Namespace holds the shadows and the API server's Service; default the pod's namespace.
	Namespace string
	// ClusterDomain is the cluster's DNS domain, for the default ServerURL.
	ClusterDomain string
	// ServicePort is the API server Service's port (APISERVER_SERVICE_PORT).
	ServicePort int
	// ServerURL is the API server; default https://brupop-apiserver.<ns>.svc.<domain>:<port>.
	ServerURL string
	// CAFile is the CA bundle the API server's certificate chains to.
	CAFile string
	// TokenFile is the projected service-account token sent to the API server.
	TokenFile string
	// HostSocket is the Bottlerocket host API's Unix socket.
	HostSocket string
	// Kubeconfig, when set, is used instead of the in-cluster configuration.
	Kubeconfig string
	// ExcludeFromLBWait is how long to wait after excluding the node from load balancers before
	// draining it; zero disables the exclusion (EXCLUDE_FROM_LB_WAIT_TIME_IN_SEC).
	ExcludeFromLBWait time.Duration
	// DrainTimeout bounds a drain, counted from the spec's transition to RebootedIntoUpdate,
	// when the controller set no v2.DrainTimeoutAnnotation on the shadow.
	DrainTimeout time.Duration
	// RefreshInterval is the least time between two refreshes of the host's updates.
	RefreshInterval time.Duration
	// Resync is the period of passes when nothing changes (jittered).
	Resync time.Duration
	// RebootTimeout bounds the wait for the host to go down after a reboot request.
	RebootTimeout time.Duration
	// LogFormat is full, compact, pretty or json (LOGGING_FORMATTER), as package logging takes it.
	LogFormat string
	// LogANSI is accepted for compatibility (LOGGING_ANSI_ENABLED); slog writes no colors.
	LogANSI bool
	// LogFilter is a tracing filter directive such as "info" or "info,agent=debug"
	// (TRACING_FILTER_DIRECTIVE); its most verbose level applies, and what maps to no level is
	// ignored with a warning (logging.ParseFilter).
	LogFilter string
	// Warnings are the environment values DefaultOptions ignored instead of failing, as upstream;
	// Logger logs them.
	Warnings []logging.Warning
}

// Logging returns the logging options of o, for logging.New.
func (o *Options) Logging() logging.Options {
	return logging.Options{Format: o.LogFormat, Filter: o.LogFilter, ANSI: o.LogANSI}
}

// Logger returns the agent's logger, writing to w, after logging on it every warning: those of
// the logging filter and o.Warnings. The options must be valid.
func (o *Options) Logger(w io.Writer) (logr.Logger, error) {
	return logging.New(w, o.Logging(), o.Warnings...)
}

// DefaultOptions returns the defaults, taking the upstream environment variables from getenv.
func DefaultOptions(getenv func(string) string) (Options, error) {
	logDefaults := logging.Defaults()
	o := Options{
		NodeName:        getenv(EnvNodeName),
		Namespace:       defaultNamespace(),
		ClusterDomain:   defaultDomain,
		ServicePort:     agentapi.DefaultServicePort,
		CAFile:          defaultCAFile,
		TokenFile:       agentapi.DefaultTokenPath,
		HostSocket:      hostapi.DefaultSocketPath,
		DrainTimeout:    defaultDrain,
		RefreshInterval: defaultRefresh,
		Resync:          defaultResync,
		RebootTimeout:   defaultRebootWait,
		LogFormat:       logDefaults.Format,
		LogFilter:       logDefaults.Filter,
	}
	var errs []error
	if v := getenv(EnvServicePort); v != "" {
		p, err := strconv.Atoi(v)
		errs = append(errs, envErr(EnvServicePort, v, err))
		o.ServicePort = p
	}
	if v := getenv(EnvExcludeLBWait); v != "" {
		o.ExcludeFromLBWait, o.Warnings = lbWait(v, o.Warnings)
	}
	if v := getenv(EnvLogANSI); v != "" {
		b, err := strconv.ParseBool(v)
		errs = append(errs, envErr(EnvLogANSI, v, err))
		o.LogANSI = b
	}
	if v := getenv(EnvLogFormat); v != "" {
		o.LogFormat = v
	}
	if v := getenv(EnvTracingFilter); v != "" {
		o.LogFilter = v
	}
	return o, errors.Join(errs...)
}

// lbWait parses EXCLUDE_FROM_LB_WAIT_TIME_IN_SEC, whole seconds. As upstream, a value that is
// not one turns the exclusion off instead of stopping the agent; it is added to warnings.
func lbWait(v string, warnings []logging.Warning) (time.Duration, []logging.Warning) {
	n, err := strconv.ParseUint(strings.TrimPrefix(v, "+"), 10, 32)
	if err != nil {
		return 0, append(warnings, logging.Warning{Setting: EnvExcludeLBWait, Value: v, Ignored: v,
			Reason: "not a whole number of seconds (0 to 4294967295): load-balancer exclusion is off"})
	}
	return time.Duration(n) * time.Second, warnings
}

func envErr(name, value string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("environment variable %s=%q: %w", name, value, err)
}

// defaultNamespace is the pod's namespace, or Brupop's default outside a pod.
func defaultNamespace() string {
	return incluster.Namespace(incluster.NamespaceFile, v2.DefaultNamespace)
}

// BindFlags registers a flag for every option, with o's values as defaults.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.NodeName, "node-name", o.NodeName, "name of this node (env "+EnvNodeName+")")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "namespace of the shadows and the API server")
	fs.StringVar(&o.ClusterDomain, "cluster-domain", o.ClusterDomain, "DNS domain of the cluster, for the default API server URL")
	fs.IntVar(&o.ServicePort, "apiserver-port", o.ServicePort, "port of the API server Service (env "+EnvServicePort+")")
	fs.StringVar(&o.ServerURL, "apiserver-url", o.ServerURL, "URL of the API server (default https://"+agentapi.ServiceName+".<namespace>.svc.<cluster-domain>:<apiserver-port>)")
	fs.StringVar(&o.CAFile, "ca-file", o.CAFile, "CA bundle of the API server's certificate")
	fs.StringVar(&o.TokenFile, "token-file", o.TokenFile, "service-account token sent to the API server")
	fs.StringVar(&o.HostSocket, "host-socket", o.HostSocket, "Unix socket of the Bottlerocket host API")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig file (default: in-cluster configuration)")
	fs.DurationVar(&o.ExcludeFromLBWait, "exclude-from-lb-wait", o.ExcludeFromLBWait, "wait after excluding the node from load balancers; 0 disables the exclusion (env "+EnvExcludeLBWait+", seconds)")
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", o.DrainTimeout, "deadline of a drain, counted from the spec's transition, when the controller's shadow annotation "+v2.DrainTimeoutAnnotation+" sets none")
	fs.DurationVar(&o.RefreshInterval, "refresh-interval", o.RefreshInterval, "least time between two checks for host updates")
	fs.DurationVar(&o.Resync, "resync", o.Resync, "period of passes when nothing changes")
	fs.DurationVar(&o.RebootTimeout, "reboot-timeout", o.RebootTimeout, "how long the host may take to go down after a reboot request")
	fs.StringVar(&o.LogFormat, "log-format", o.LogFormat, "log format: full, compact, pretty or json (env "+EnvLogFormat+")")
	fs.StringVar(&o.LogFilter, "log-level", o.LogFilter, "log filter directive, e.g. info or info,agent=debug; its most verbose level applies, what maps to no level is ignored with a warning (env "+EnvTracingFilter+")")
}

// URL returns the API server URL: ServerURL, or the one built from the Service name, the
// namespace, the cluster domain and the port.
func (o *Options) URL() string {
	if o.ServerURL != "" {
		return o.ServerURL
	}
	return fmt.Sprintf("https://%s.%s.svc.%s:%d", agentapi.ServiceName, o.Namespace, o.ClusterDomain, o.ServicePort)
}

// Validate checks every option and returns all problems, each saying what to fix.
func (o *Options) Validate() error {
	var errs []error
	check := func(bad bool, format string, args ...any) {
		if bad {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(o.NodeName == "", "node name is empty: set %s or --node-name", EnvNodeName)
	check(o.Namespace == "", "namespace is empty: set --namespace")
	check(o.ServerURL == "" && o.ClusterDomain == "", "cluster domain is empty: set --cluster-domain or --apiserver-url")
	check(o.ServicePort < 1 || o.ServicePort > 65535, "API server port %d is not in 1-65535: fix %s or --apiserver-port", o.ServicePort, EnvServicePort)
	if u, err := url.Parse(o.URL()); err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, fmt.Errorf("API server URL %q is not an https URL: fix --apiserver-url", o.URL()))
	}
	check(o.CAFile == "", "CA file is empty: set --ca-file")
	check(o.TokenFile == "", "token file is empty: set --token-file")
	check(o.HostSocket == "", "host socket is empty: set --host-socket")
	check(o.ExcludeFromLBWait < 0, "load-balancer wait %s is negative: fix %s", o.ExcludeFromLBWait, EnvExcludeLBWait)
	check(o.DrainTimeout <= 0, "drain timeout %s must be positive: fix --drain-timeout", o.DrainTimeout)
	check(o.RefreshInterval <= 0, "refresh interval %s must be positive: fix --refresh-interval", o.RefreshInterval)
	check(o.Resync <= 0, "resync %s must be positive: fix --resync", o.Resync)
	check(o.RebootTimeout <= 0, "reboot timeout %s must be positive: fix --reboot-timeout", o.RebootTimeout)
	if err := o.Logging().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w (or the flags --log-format and --log-level)", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("agent options: %w", err)
	}
	return nil
}
