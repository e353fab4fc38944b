package records

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/tools/cache"
)

// Counter is filament_kube_manager_records{kind}: the records in the
// current term's caches (none between terms).
type Counter struct {
	desc     *prometheus.Desc
	mu       sync.Mutex
	services cache.Store
	policies cache.Store
}

// NewCounter makes a Counter that counts nothing until Watch.
func NewCounter() *Counter {
	return &Counter{desc: prometheus.NewDesc("filament_kube_manager_records",
		"ServiceRecords and PolicyRecords held, by kind (service, policy).", []string{"kind"}, nil)}
}

// Watch counts the records of these stores (nil, nil: none).
func (c *Counter) Watch(services, policies cache.Store) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.services, c.policies = services, policies
}

// Describe implements prometheus.Collector.
func (c *Counter) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *Counter) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for kind, s := range map[string]cache.Store{"service": c.services, "policy": c.policies} {
		n := 0
		if s != nil {
			n = len(s.ListKeys())
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), kind)
	}
}
