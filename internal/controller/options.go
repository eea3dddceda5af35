package controller

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/incluster"
	"github.com/bottlerocket-os/brupop-go/internal/logging"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
)

// DefaultLeaderElectionID is the name of the Lease the replicas of the controller compete for.
const DefaultLeaderElectionID = "brupop-controller-leader"

// Options configure the controller process: upstream's environment variables, and flags that
// override them or that upstream lacks. Build it with ParseOptions.
type Options struct {
	// Namespace holds the shadows, the FleetPolicy, the Lease and namespaced Events. ParseOptions
	// takes --namespace, else POD_NAMESPACE, else the namespace in NamespaceFile, else
	// brupop-bottlerocket-aws.
	Namespace string
	// NamespaceFile is the ServiceAccount's namespace file (incluster.NamespaceFile) ParseOptions
	// reads the namespace from when neither --namespace nor POD_NAMESPACE gives it.
	NamespaceFile string
	// NodeName is MY_NODE_NAME, the node the controller runs on; it updates last.
	NodeName string
	// Environment holds MAX_CONCURRENT_UPDATE, SCHEDULER_CRON_EXPRESSION and the deprecated
	// UPDATE_WINDOW_START/STOP, the defaults of the FleetPolicy.
	Environment rollout.Environment
	// TimeZone is the IANA time zone of the environment's schedule (upstream: always UTC); a
	// FleetPolicy's schedule.timeZone overrides it.
	TimeZone string
	// MetricsAddr is where /metrics is served ("0" disables it).
	MetricsAddr string
	// HealthAddr is where /healthz and /readyz are served ("0" disables them).
	HealthAddr string
	// LeaderElect turns leader election on; LeaderElectionID names its Lease.
	LeaderElect      bool
	LeaderElectionID string
	// LogFormat is LOGGING_FORMATTER: full, compact, pretty (text) or json.
	LogFormat string
	// LogANSI is LOGGING_ANSI_ENABLED. slog's handlers write no colours; it is accepted for
	// compatibility.
	LogANSI bool
	// LogFilter is TRACING_FILTER_DIRECTIVE, such as info or info,controller=debug; its most
	// verbose level (trace, debug, info, warn, error or off) applies, as package logging reads it.
	LogFilter string
	// Clock is the time source of the decisions; nil means the real clock. Only tests and the
	// simulation set it (no flag does).
	Clock clock.PassiveClock
	// CRDPollInterval is how often, with jitter, the controller asks whether the API server
	// serves FleetPolicies while it does not; zero means DefaultCRDPollInterval. No flag sets it.
	CRDPollInterval time.Duration
	// Log is the manager's logger; the zero value means controller-runtime's (ctrl.SetLogger).
	// No flag sets it.
	Log logr.Logger
}

// ParseOptions reads the flags in args (without the program name) with the environment, read
// through getenv, as their defaults, and validates the result.
func ParseOptions(args []string, getenv func(string) string) (Options, error) {
	var o Options
	var ansi string
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	defineFlags(fs, &o, &ansi, getenv)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			var usage strings.Builder
			fs.SetOutput(&usage)
			fs.PrintDefaults()
			return Options{}, fmt.Errorf("usage of the controller (flags override the environment):\n%s", usage.String())
		}
		return Options{}, fmt.Errorf("controller: %w", err)
	}
	if fs.NArg() > 0 {
		return Options{}, fmt.Errorf("controller: unexpected arguments %q", fs.Args())
	}
	namespaceSet := false
	fs.Visit(func(f *flag.Flag) { namespaceSet = namespaceSet || f.Name == "namespace" })
	if !namespaceSet {
		o.Namespace = resolveNamespace(getenv, o.NamespaceFile)
	}
	var errs []error
	b, err := strconv.ParseBool(ansi)
	if err != nil {
		errs = append(errs, fmt.Errorf("controller: LOGGING_ANSI_ENABLED %q: want true or false", ansi))
	}
	o.LogANSI = b
	if err := o.Validate(); err != nil {
		errs = append(errs, err)
	}
	return o, errors.Join(errs...)
}

// Validate reports every value that would stop the controller, saying what to fix.
func (o Options) Validate() error {
	var errs []error
	if o.Namespace == "" {
		errs = append(errs, errors.New("controller: --namespace must not be empty"))
	}
	if o.NodeName == "" {
		errs = append(errs, errors.New("controller: MY_NODE_NAME is required: set it to the node the controller runs on (fieldRef spec.nodeName)"))
	}
	if _, err := time.LoadLocation(o.TimeZone); err != nil {
		errs = append(errs, fmt.Errorf("controller: time zone %q: want an IANA name such as UTC or Europe/Paris: %w", o.TimeZone, err))
	} else if _, err := Settings(nil, o.Environment, o.TimeZone); err != nil {
		errs = append(errs, err)
	}
	if o.LeaderElect && o.LeaderElectionID == "" {
		errs = append(errs, errors.New("controller: --leader-election-id must not be empty when --leader-elect is on"))
	}
	if err := o.Logging().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("controller: %w", err))
	}
	return errors.Join(errs...)
}

// Settings resolves the FleetPolicy fp (nil when absent) against the environment, evaluating a
// schedule that names no time zone in timeZone.
func Settings(fp *v2.FleetPolicy, env rollout.Environment, timeZone string) (rollout.Settings, error) {
	if timeZone != "" && timeZone != "UTC" && (fp == nil || fp.Spec.Schedule == nil || fp.Spec.Schedule.TimeZone == "") {
		withZone := &v2.FleetPolicy{}
		if fp != nil {
			withZone = fp.DeepCopy()
		}
		if withZone.Spec.Schedule == nil {
			withZone.Spec.Schedule = &v2.FleetPolicySchedule{}
		}
		withZone.Spec.Schedule.TimeZone = timeZone
		fp = withZone
	}
	return rollout.SettingsFrom(fp, env)
}

// Logging returns the logging options of o, for logging.New.
func (o Options) Logging() logging.Options {
	return logging.Options{Format: o.LogFormat, Filter: o.LogFilter, ANSI: o.LogANSI}
}

// Logger returns the logger the options ask for, writing to w, built by logging.New. The options
// must be valid; with invalid ones it returns a logger that discards everything.
func (o Options) Logger(w io.Writer) logr.Logger {
	log, _ := logging.New(w, o.Logging()) // Validate rejected bad options
	return log
}

// resolveNamespace is the namespace when no --namespace flag gives it: POD_NAMESPACE (our chart
// sets it), else the ServiceAccount's namespace file (upstream's controller reads its namespace
// from there, docs/install.md), else Brupop's default namespace.
func resolveNamespace(getenv func(string) string, namespaceFile string) string {
	if ns := getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return incluster.Namespace(namespaceFile, v2.DefaultNamespace)
}

// defineFlags defines the flags of o in fs, with the environment read through getenv as their
// defaults.
func defineFlags(fs *flag.FlagSet, o *Options, ansi *string, getenv func(string) string) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	metricsAddr := ":8080"
	if strings.Contains(getenv("KUBERNETES_SERVICE_HOST"), ":") {
		metricsAddr = "[::]:8080"
	}
	fs.StringVar(&o.Namespace, "namespace", "", "namespace of the shadows, the FleetPolicy and the Lease (default: env POD_NAMESPACE, else the namespace in --namespace-file, else "+v2.DefaultNamespace+")")
	fs.StringVar(&o.NamespaceFile, "namespace-file", incluster.NamespaceFile, "the ServiceAccount's namespace file, read when neither --namespace nor POD_NAMESPACE is set")
	fs.StringVar(&o.NodeName, "node-name", getenv("MY_NODE_NAME"), "node the controller runs on; it updates last (env MY_NODE_NAME, required)")
	fs.StringVar(&o.Environment.MaxConcurrentUpdate, "max-concurrent-update", getenv("MAX_CONCURRENT_UPDATE"), "nodes updating at once: a number, unlimited or N% (env MAX_CONCURRENT_UPDATE, required)")
	fs.StringVar(&o.Environment.SchedulerCronExpression, "scheduler-cron-expression", getenv("SCHEDULER_CRON_EXPRESSION"), "when updates may start, 6 or 7 cron fields with seconds (env SCHEDULER_CRON_EXPRESSION)")
	fs.StringVar(&o.Environment.UpdateWindowStart, "update-window-start", getenv("UPDATE_WINDOW_START"), "deprecated H:M:S (env UPDATE_WINDOW_START)")
	fs.StringVar(&o.Environment.UpdateWindowStop, "update-window-stop", getenv("UPDATE_WINDOW_STOP"), "deprecated H:M:S (env UPDATE_WINDOW_STOP)")
	fs.StringVar(&o.TimeZone, "time-zone", env("SCHEDULER_TIME_ZONE", "UTC"), "IANA time zone of the schedule (env SCHEDULER_TIME_ZONE)")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", metricsAddr, "address of /metrics, 0 to disable")
	fs.StringVar(&o.HealthAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz, 0 to disable")
	fs.BoolVar(&o.LeaderElect, "leader-elect", true, "elect a leader on a Lease so that only one replica acts")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", DefaultLeaderElectionID, "name of the leader election Lease")
	fs.StringVar(&o.LogFormat, "logging-formatter", env("LOGGING_FORMATTER", "pretty"), "full, compact, pretty or json (env LOGGING_FORMATTER)")
	fs.StringVar(ansi, "logging-ansi-enabled", env("LOGGING_ANSI_ENABLED", "false"), "true or false (env LOGGING_ANSI_ENABLED)")
	fs.StringVar(&o.LogFilter, "tracing-filter-directive", env("TRACING_FILTER_DIRECTIVE", "info"), "log level such as info or debug (env TRACING_FILTER_DIRECTIVE)")
}
