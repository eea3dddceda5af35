package apiserver

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
)

// Options configure the server. DefaultOptions gives upstream's deployment defaults.
type Options struct {
	// Port is the HTTPS port (upstream env APISERVER_INTERNAL_PORT).
	Port int
	// TLSDir holds tls.crt and tls.key (any key type Go reads), reloaded when they change.
	TLSDir string
	// Namespace is Brupop's namespace: where shadows live and agents' ServiceAccount is.
	Namespace string
	// DrainTimeout is the deadline of a drain whose request names none (upstream's agents),
	// counted from the node's cordon time; zero (the default) means MaxDrainTimeout, as upstream
	// waits for the drain however long it takes.
	DrainTimeout time.Duration
	// DrainPollTime is the length of one drain round: the longest a cordon-and-drain request
	// evicts before it answers 503 with the pods left. A request without a deadline gets rounds
	// of UpstreamRoundTime.
	DrainPollTime time.Duration
	// MaxDrainTimeout caps how long a node may stay cordoned for a drain, counted from its
	// cordon time: a later deadline an agent asks for is cut to it.
	MaxDrainTimeout time.Duration
	// EvictionRetryDelay is the wait before retrying an eviction a PodDisruptionBudget refused.
	EvictionRetryDelay time.Duration
	// TokenCacheTTL is how long a TokenReview's answer is reused; zero disables the cache.
	TokenCacheTTL time.Duration
	// TokenCacheSize bounds the number of cached TokenReview answers.
	TokenCacheSize int
	// MaxBodyBytes bounds an agent request's body; larger ones are answered 413.
	MaxBodyBytes int64
	// ShutdownTimeout bounds the wait for running requests on shutdown.
	ShutdownTimeout time.Duration
}

// Defaults of Options.
const (
	DefaultDrainTimeout       = 0
	DefaultDrainPollTime      = 5 * time.Minute
	DefaultMaxDrainTimeout    = time.Hour
	DefaultEvictionRetryDelay = 5 * time.Second
	DefaultTokenCacheTTL      = 10 * time.Second
	DefaultTokenCacheSize     = 4096
	DefaultMaxBodyBytes       = 64 << 10
	DefaultShutdownTimeout    = 30 * time.Second
	// UpstreamDrainAttempts is how many times upstream's agent sends one cordon-and-drain
	// request: one try and five retries after any answer but 2xx, then it reports ErrorReset.
	UpstreamDrainAttempts = 6
	// maxConvertBytes bounds a ConversionReview, which may carry a whole list of shadows.
	maxConvertBytes = 32 << 20
)

// DefaultOptions returns the options of an upstream deployment in namespace.
func DefaultOptions(namespace string) Options {
	return Options{
		Port:               agentapi.DefaultInternalPort,
		TLSDir:             agentapi.DefaultTLSDir,
		Namespace:          namespace,
		DrainTimeout:       DefaultDrainTimeout,
		DrainPollTime:      DefaultDrainPollTime,
		MaxDrainTimeout:    DefaultMaxDrainTimeout,
		EvictionRetryDelay: DefaultEvictionRetryDelay,
		TokenCacheTTL:      DefaultTokenCacheTTL,
		TokenCacheSize:     DefaultTokenCacheSize,
		MaxBodyBytes:       DefaultMaxBodyBytes,
		ShutdownTimeout:    DefaultShutdownTimeout,
	}
}

// HeaderlessDrainTimeout is the drain timeout of a request that names no deadline: DrainTimeout,
// or MaxDrainTimeout when DrainTimeout is zero, never more than MaxDrainTimeout.
func (o Options) HeaderlessDrainTimeout() time.Duration {
	if o.DrainTimeout <= 0 || o.DrainTimeout > o.MaxDrainTimeout {
		return o.MaxDrainTimeout
	}
	return o.DrainTimeout
}

// UpstreamRoundTime is the length of a drain round for a request that names no deadline:
// DrainPollTime, or longer so that the UpstreamDrainAttempts requests of upstream's agent last
// until HeaderlessDrainTimeout (docs/architecture.md, "Drains").
func (o Options) UpstreamRoundTime() time.Duration {
	n := time.Duration(UpstreamDrainAttempts)
	return max(o.DrainPollTime, (o.HeaderlessDrainTimeout()+n-1)/n)
}

// CertFile is the serving certificate's path.
func (o Options) CertFile() string { return filepath.Join(o.TLSDir, "tls.crt") }

// KeyFile is the serving key's path.
func (o Options) KeyFile() string { return filepath.Join(o.TLSDir, "tls.key") }

// Validate returns every problem of the options, each saying what to fix.
func (o Options) Validate() error {
	var errs []error
	if o.Port < 0 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d: set --port (or APISERVER_INTERNAL_PORT) to 1-65535, or 0 for any free port", o.Port))
	}
	if o.TLSDir == "" {
		errs = append(errs, errors.New("tls dir is empty: set --tls-dir to the directory of tls.crt and tls.key"))
	}
	for _, msg := range validation.IsDNS1123Label(o.Namespace) {
		errs = append(errs, fmt.Errorf("namespace %q: %s: set --namespace", o.Namespace, msg))
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"--drain-poll-time", o.DrainPollTime}, {"--max-drain-timeout", o.MaxDrainTimeout},
		{"--eviction-retry-delay", o.EvictionRetryDelay}, {"--shutdown-timeout", o.ShutdownTimeout},
	}
	for _, p := range positive {
		if p.d <= 0 {
			errs = append(errs, fmt.Errorf("%s is %s: set a positive duration such as 10s", p.name, p.d))
		}
	}
	if o.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("--drain-timeout is %s: set 0 (--max-drain-timeout) or a positive duration such as 10m", o.DrainTimeout))
	}
	if o.TokenCacheTTL < 0 || o.TokenCacheTTL > time.Minute {
		errs = append(errs, fmt.Errorf("--token-cache-ttl is %s: set 0 (no cache) up to 1m, as a revoked token stays valid that long", o.TokenCacheTTL))
	}
	if o.TokenCacheSize < 0 {
		errs = append(errs, fmt.Errorf("--token-cache-size is %d: set 0 or more", o.TokenCacheSize))
	}
	if o.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("--max-body-bytes is %d: set at least 1024", o.MaxBodyBytes))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("apiserver: invalid options: %w", err)
	}
	return nil
}
