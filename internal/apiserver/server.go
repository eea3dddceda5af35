package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
	"github.com/bottlerocket-os/brupop-go/internal/drain"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

// Config is what New needs besides the options.
type Config struct {
	Options Options
	// REST is the identity the server acts with (in a cluster: its ServiceAccount).
	REST *rest.Config
	// Log receives operator logs; requests are logged with the key "node".
	Log logr.Logger
	// Clock, when set, replaces the real clock.
	Clock clock.Clock
	// Registry, when set, receives the metrics instead of a new registry.
	Registry *prometheus.Registry
	// TokenReviewFilter, when set, is the TokenReviewer's Filter (for tests only).
	TokenReviewFilter func(*authenticationv1.TokenReviewStatus)
}

// Server is the Brupop API server.
type Server struct {
	opts     Options
	log      logr.Logger
	clock    clock.Clock
	kube     kubernetes.Interface
	shadows  client.Client
	reviewer *TokenReviewer
	pods     PodNodes // nil: tokens without node extras are refused
	nodes    drain.Nodes
	drainer  *drain.Drainer
	metrics  *metrics
	registry *prometheus.Registry
	certs    *CertificateReloader
}

// New validates the options, loads the serving certificate and builds the server.
func New(cfg Config) (*Server, error) {
	if err := cfg.Options.Validate(); err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg.REST)
	if err != nil {
		return nil, fmt.Errorf("apiserver: kubernetes client: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := v2.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("apiserver: %w", err)
	}
	shadows, err := client.New(cfg.REST, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("apiserver: shadow client: %w", err)
	}
	s := &Server{opts: cfg.Options, log: cfg.Log, clock: cfg.Clock, kube: kube, shadows: shadows, registry: cfg.Registry}
	if s.clock == nil {
		s.clock = clock.RealClock{}
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	s.metrics = newMetrics(s.registry)
	s.reviewer = &TokenReviewer{
		Client: kube, Clock: s.clock, TTL: s.opts.TokenCacheTTL, MaxEntries: s.opts.TokenCacheSize,
		OnLookup: s.metrics.tokenLookup, Filter: cfg.TokenReviewFilter,
	}
	pods := &BoundPods{
		Client: kube, Namespace: s.opts.Namespace, Clock: s.clock, TTL: s.opts.TokenCacheTTL, MaxEntries: s.opts.TokenCacheSize,
		OnStart: func() {
			s.log.Info("An agent token carries no node (kube-apiserver before 1.30, or gate ServiceAccountTokenPodNodeInfo off): authorizing such tokens by their pod, watching the agent pods")
		},
	}
	s.pods = pods
	s.nodes = drain.Nodes{Client: kube, Adopt: s.adoptsUpstreamChanges}
	s.drainer = &drain.Drainer{
		Client: kube, Clock: s.clock, RoundTime: s.opts.DrainPollTime, RetryDelay: s.opts.EvictionRetryDelay, Observer: s.observe,
	}
	s.certs = &CertificateReloader{
		CertFile: s.opts.CertFile(), KeyFile: s.opts.KeyFile(), Clock: s.clock,
		OnReload: func() { s.log.Info("Loaded serving certificate", "file", s.opts.CertFile()) },
		OnError:  func(err error) { s.log.Error(err, "Keeping the previous serving certificate") },
	}
	if err := s.certs.Load(); err != nil {
		return nil, err
	}
	return s, nil
}

// adoptsUpstreamChanges reports whether the node's cordon or load-balancer exclusion without
// Brupop's annotation is Brupop's to undo (statemachine.AdoptsUpstreamChanges on its shadow). A
// node without a shadow adopts nothing.
func (s *Server) adoptsUpstreamChanges(ctx context.Context, node string) (bool, error) {
	brs := &v2.BottlerocketShadow{}
	err := s.shadows.Get(ctx, client.ObjectKey{Namespace: s.opts.Namespace, Name: v2.ShadowName(node)}, brs)
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read the shadow of node %s: %w", node, err)
	}
	adopt := statemachine.AdoptsUpstreamChanges(brs)
	if adopt {
		s.log.Info("Adopting the cordon or load-balancer exclusion upstream's components left on Node", "node", node, "shadow", brs.Name)
	}
	return adopt, nil
}

// Registry is the registry of the server's metrics.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Run listens on the options' port and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	l, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(s.opts.Port)))
	if err != nil {
		return fmt.Errorf("apiserver: listen: %w", err)
	}
	return s.Serve(ctx, l)
}

// Serve serves HTTPS on l until ctx ends, then stops accepting requests, waits up to the
// shutdown timeout for running ones (their drain rounds end with ctx and answer 503, so that the
// agents ask another replica) and returns.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	// Events recorded by the last requests are still sent after ctx ends.
	eventsCtx, endEvents := context.WithCancel(context.WithoutCancel(ctx))
	defer endEvents()
	events, stopEvents, err := startNodeEvents(eventsCtx, s.kube)
	if err != nil {
		return err
	}
	defer stopEvents()
	if b, ok := s.pods.(*BoundPods); ok {
		b.Start(ctx.Done())
	}
	srv := &http.Server{
		Handler:           s.handler(events),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.certs.GetCertificate},
		ReadHeaderTimeout: 10 * time.Second,
		// Bodies are small (a status, a ConversionReview): a client that dribbles one in is cut
		// off. A drain round answers within DrainPollTime; no WriteTimeout, so it is not.
		ReadTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(l, "", "") }()
	s.log.Info("Serving", "address", l.Addr().String())
	select {
	case err = <-errc:
	case <-ctx.Done():
		s.log.Info("Shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
		err = srv.Shutdown(shutdownCtx)
		cancel()
		serveErr := <-errc // http.ErrServerClosed after Shutdown
		_ = serveErr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("apiserver: serve: %w", err)
	}
	return nil
}

// handler routes the endpoints of agentapi.
func (s *Server) handler(events nodeEvents) http.Handler {
	h := &handlers{Server: s, events: events}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+agentapi.PathShadow, h.agent(h.createShadow))
	mux.HandleFunc("PUT "+agentapi.PathShadow, h.agent(h.updateStatus))
	mux.HandleFunc("POST "+agentapi.PathCordonAndDrain, h.agent(h.cordonAndDrain))
	mux.HandleFunc("POST "+agentapi.PathUncordon, h.agent(h.uncordon))
	mux.HandleFunc("POST "+agentapi.PathExcludeFromLB, h.agent(h.excludeFromLB))
	mux.HandleFunc("POST "+agentapi.PathRemoveExclusionFromLB, h.agent(h.removeExclusionFromLB))
	mux.HandleFunc("POST "+agentapi.PathConvert, h.convert)
	mux.HandleFunc("GET "+agentapi.PathPing, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("pong"))
	})
	mux.Handle("GET "+agentapi.PathMetrics, promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	return s.metrics.instrument(s.clock, mux)
}
