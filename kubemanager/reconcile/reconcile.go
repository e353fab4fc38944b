// Package reconcile runs a controller's work: a rate-limited workqueue of
// object keys, a few workers that call the controller's sync function, a
// retry with exponential back-off (5 ms doubling to 5 min, as client-go's
// default) when it fails, and the metrics of it all.
package reconcile

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/client-go/util/workqueue"
)

// Metrics are shared by every Loop of a process.
type Metrics struct {
	latency *prometheus.HistogramVec
	retries *prometheus.CounterVec
	depth   *prometheus.Desc

	mu    sync.Mutex
	loops map[string]*Loop
}

// NewMetrics makes the metrics; register them with Collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "filament_kube_manager_reconcile_seconds",
			Help:    "Time of one reconcile of one object, by controller and result (ok, error).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5 ms .. 16 s
		}, []string{"controller", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "filament_kube_manager_reconcile_retries_total",
			Help: "Reconciles that failed and were queued again with back-off, by controller.",
		}, []string{"controller"}),
		depth: prometheus.NewDesc("filament_kube_manager_queue_depth",
			"Keys waiting in a controller's workqueue.", []string{"controller"}, nil),
		loops: map[string]*Loop{},
	}
}

// Collectors are the metrics to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.latency, m.retries, depthCollector{m}}
}

type depthCollector struct{ m *Metrics }

func (d depthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- d.m.depth }
func (d depthCollector) Collect(ch chan<- prometheus.Metric) {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	for name, l := range d.m.loops {
		ch <- prometheus.MustNewConstMetric(d.m.depth, prometheus.GaugeValue, float64(l.queue.Len()), name)
	}
}

// Sync reconciles the object of key; an error queues the key again later.
type Sync func(ctx context.Context, key string) error

// Loop is one controller's queue and workers.
type Loop struct {
	name    string
	queue   workqueue.TypedRateLimitingInterface[string]
	sync    Sync
	log     *zap.Logger
	metrics *Metrics
}

// New makes a Loop named after its controller (the metrics' label).
func New(name string, sync Sync, m *Metrics, log *zap.Logger) *Loop {
	l := &Loop{
		name:    name,
		queue:   workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		sync:    sync,
		log:     log.With(zap.String("controller", name)),
		metrics: m,
	}
	m.mu.Lock()
	m.loops[name] = l
	m.mu.Unlock()
	return l
}

// Add queues key (once, however often it is added before a worker takes it).
func (l *Loop) Add(key string) { l.queue.Add(key) }

// AddAfter queues key after d.
func (l *Loop) AddAfter(key string, d time.Duration) { l.queue.AddAfter(key, d) }

// Len is the queue's depth.
func (l *Loop) Len() int { return l.queue.Len() }

// Run runs workers until ctx ends, then shuts the queue down and waits for
// them.
func (l *Loop) Run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l.next(ctx) {
			}
		}()
	}
	<-ctx.Done()
	l.queue.ShutDown()
	wg.Wait()
	l.metrics.mu.Lock()
	if l.metrics.loops[l.name] == l {
		delete(l.metrics.loops, l.name)
	}
	l.metrics.mu.Unlock()
}

func (l *Loop) next(ctx context.Context) bool {
	key, quit := l.queue.Get()
	if quit {
		return false
	}
	defer l.queue.Done(key)
	start := time.Now()
	err := l.sync(ctx, key)
	result := "ok"
	if err != nil {
		result = "error"
	}
	l.metrics.latency.WithLabelValues(l.name, result).Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		l.queue.Forget(key)
	case ctx.Err() != nil:
		// Stopping: the next leader starts from the API server's state.
	default:
		l.metrics.retries.WithLabelValues(l.name).Inc()
		l.log.Info("reconcile failed, will retry", zap.String("key", key),
			zap.Int("retries", l.queue.NumRequeues(key)), zap.Error(err))
		l.queue.AddRateLimited(key)
	}
	return true
}
