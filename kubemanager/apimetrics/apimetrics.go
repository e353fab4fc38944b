// Package apimetrics exports client-go's view of kube-manager's API
// requests as Prometheus metrics: the latency of each request by verb and
// resource, and the time requests waited for the client's rate limiter
// (--kube-api-qps). With the reconcile metrics they tell whether Ports are
// slow because the API server answers slowly or because kube-manager sends
// too little at once.
package apimetrics

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/tools/metrics"
)

// Metrics are the collectors client-go feeds once Register has run.
type Metrics struct {
	latency *prometheus.HistogramVec
	limiter prometheus.Histogram
}

// New makes the metrics; Register hands them to client-go.
func New() *Metrics {
	return &Metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "filament_kube_manager_api_request_seconds",
			Help:    "Latency of kube-manager's API server requests as client-go sees them, by verb and resource (status: the subresource).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms .. 16 s
		}, []string{"verb", "resource"}),
		limiter: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "filament_kube_manager_api_rate_limiter_seconds",
			Help:    "Time requests waited for the client's rate limiter (--kube-api-qps, --kube-api-burst).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
}

// Collectors are the metrics to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.latency, m.limiter}
}

// Register makes client-go report to m. client-go keeps one set of
// adapters per process and takes only the first Register.
func (m *Metrics) Register() {
	metrics.Register(metrics.RegisterOpts{
		RequestLatency:     latencyAdapter{m.latency},
		RateLimiterLatency: limiterAdapter{m.limiter},
	})
}

type latencyAdapter struct{ h *prometheus.HistogramVec }

func (a latencyAdapter) Observe(_ context.Context, verb string, u url.URL, d time.Duration) {
	a.h.WithLabelValues(verb, Resource(u.Path)).Observe(d.Seconds())
}

type limiterAdapter struct{ h prometheus.Histogram }

func (a limiterAdapter) Observe(_ context.Context, _ string, _ url.URL, d time.Duration) {
	a.h.Observe(d.Seconds())
}

// Resource names the resource of an API path, "ports/status" for a
// subresource: a bounded label, unlike the path with its object names.
func Resource(path string) string {
	s := strings.Split(strings.Trim(path, "/"), "/")
	// /api/v1/... or /apis/<group>/<version>/...
	switch {
	case len(s) >= 2 && s[0] == "api":
		s = s[2:]
	case len(s) >= 3 && s[0] == "apis":
		s = s[3:]
	default:
		return "other"
	}
	if len(s) >= 3 && s[0] == "namespaces" {
		s = s[2:] // namespaces/<ns>/<resource>...
	}
	switch len(s) {
	case 0:
		return "other"
	case 1, 2:
		return s[0] // a list or one object (a namespace itself included)
	default:
		return s[0] + "/" + s[2]
	}
}
