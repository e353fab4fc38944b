package kubesource

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/client-go/tools/cache"

	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
)

// Records are the ServiceRecords and PolicyRecords in the agent's caches
// (kube-manager's compiled Services and NetworkPolicies), and how many of
// this node's pod interfaces the policies select. The agent holds them so
// that the fast path's Service and policy stages, when they exist, are
// programmed from them; until then nothing in the dataplane changes.
type Records struct {
	Services     []*v1alpha1.ServiceRecord
	Policies     []*v1alpha1.PolicyRecord
	LocalTargets int
}

// Records copies the records out of the caches.
func (s *Source) Records() Records {
	var r Records
	for _, o := range s.services.GetStore().List() {
		r.Services = append(r.Services, o.(*v1alpha1.ServiceRecord))
	}
	for _, o := range s.policies.GetStore().List() {
		p := o.(*v1alpha1.PolicyRecord)
		r.Policies = append(r.Policies, p)
		for _, t := range p.Spec.Targets {
			if t.Node == s.node {
				r.LocalTargets++
			}
		}
	}
	return r
}

// Describe implements prometheus.Collector.
func (s *Source) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.recordsDesc
	ch <- s.localTargetsDesc
}

// Collect implements prometheus.Collector: the records' counts.
func (s *Source) Collect(ch chan<- prometheus.Metric) {
	r := s.Records()
	ch <- prometheus.MustNewConstMetric(s.recordsDesc, prometheus.GaugeValue, float64(len(r.Services)), "service")
	ch <- prometheus.MustNewConstMetric(s.recordsDesc, prometheus.GaugeValue, float64(len(r.Policies)), "policy")
	ch <- prometheus.MustNewConstMetric(s.localTargetsDesc, prometheus.GaugeValue, float64(r.LocalTargets))
}

// logRecords logs the records' counts once their caches are filled (Info)
// and after changes (Debug, a burst coalesced over a second).
func (s *Source) logRecords(ctx context.Context) {
	if !cache.WaitForCacheSync(ctx.Done(), s.services.HasSynced, s.policies.HasSynced) {
		return
	}
	r := s.Records()
	s.log.Info("service and policy records held (not enforced yet)", zap.Int("services", len(r.Services)),
		zap.Int("policies", len(r.Policies)), zap.Int("localTargets", r.LocalTargets))
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.recordsKick:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		r := s.Records()
		s.log.Debug("service and policy records changed (not enforced yet)", zap.Int("services", len(r.Services)),
			zap.Int("policies", len(r.Policies)), zap.Int("localTargets", r.LocalTargets))
	}
}
