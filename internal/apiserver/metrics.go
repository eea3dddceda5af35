package apiserver

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/utils/clock"

	"github.com/bottlerocket-os/brupop-go/internal/drain"
)

// metrics are the API server's Prometheus collectors.
type metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	tokenReviews *prometheus.CounterVec
	drains       *prometheus.CounterVec
	evictions    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "brupop_apiserver_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"path", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "brupop_apiserver_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 9),
		}, []string{"path"}),
		tokenReviews: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "brupop_apiserver_token_reviews_total",
			Help: "Agent token reviews, by source: cache (reused answer) or api (a TokenReview was created).",
		}, []string{"source"}),
		drains: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "brupop_apiserver_drains_total",
			Help: "Cordon-and-drain answers that end a drain, by result: succeeded (drained), failed (deadline passed with pods left, or an error).",
		}, []string{"result"}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "brupop_apiserver_evictions_total",
			Help: "Eviction attempts, by result: Evicted, BlockedByPDB, Retry.",
		}, []string{"result"}),
	}
	reg.MustRegister(m.requests, m.duration, m.tokenReviews, m.drains, m.evictions,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) tokenLookup(hit bool) {
	if hit {
		m.tokenReviews.WithLabelValues("cache").Inc()
		return
	}
	m.tokenReviews.WithLabelValues("api").Inc()
}

func (m *metrics) drainEvent(e drain.Event) {
	switch e.Kind {
	case drain.EventEvicted, drain.EventBlocked, drain.EventRetry:
		m.evictions.WithLabelValues(string(e.Kind)).Inc()
	}
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// instrument counts and times every request by the mux pattern that served it.
func (m *metrics) instrument(clk clock.PassiveClock, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := clk.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		path := r.Pattern // set by the ServeMux on this request
		if path == "" {
			path = "unmatched"
		}
		m.requests.WithLabelValues(path, strconv.Itoa(rec.code)).Inc()
		m.duration.WithLabelValues(path).Observe(clk.Since(start).Seconds())
	})
}
