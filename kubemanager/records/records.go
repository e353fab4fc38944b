// Package records compiles Services (with their EndpointSlices) and
// NetworkPolicies into the flat records the agents will apply once the
// fast path enforces them (a separate issue): kept in kube-manager's memory
// and served as JSON at /records. They are not custom resources yet: the
// enforcement work decides the shape the agents consume; until then the
// compile step exists, is tested and can be inspected.
package records

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
)

// Keys of the records' workqueue: a prefix and namespace/name.
const (
	ServicePrefix = "svc/"
	PolicyPrefix  = "np/"
)

// Service is a Service's virtual addresses and where they lead.
type Service struct {
	Namespace  string        `json:"namespace"`
	Name       string        `json:"name"`
	Type       string        `json:"type"`
	ClusterIPs []string      `json:"clusterIPs,omitempty"`
	Ports      []ServicePort `json:"ports,omitempty"`
	Endpoints  []Endpoint    `json:"endpoints,omitempty"`
}

// ServicePort is one port of a Service.
type ServicePort struct {
	Name       string `json:"name,omitempty"`
	Protocol   string `json:"protocol"`
	Port       int32  `json:"port"`
	TargetPort string `json:"targetPort,omitempty"`
}

// Endpoint is one backend address (from the Service's EndpointSlices).
type Endpoint struct {
	IP    string           `json:"ip"`
	Ready bool             `json:"ready"`
	Node  string           `json:"node,omitempty"`
	Ports map[string]int32 `json:"ports,omitempty"` // port name -> number
}

// Policy is a NetworkPolicy with its selectors in their string form.
type Policy struct {
	Namespace   string   `json:"namespace"`
	Name        string   `json:"name"`
	PodSelector string   `json:"podSelector"` // "" selects every pod of the namespace
	Types       []string `json:"types"`
	Ingress     []Rule   `json:"ingress,omitempty"`
	Egress      []Rule   `json:"egress,omitempty"`
}

// Rule is one ingress or egress rule: any of Peers (none: any peer), on
// any of Ports (none: every port).
type Rule struct {
	Peers []Peer `json:"peers,omitempty"`
	Ports []Port `json:"ports,omitempty"`
}

// Peer is pods by selectors, or an address block.
type Peer struct {
	PodSelector       *string  `json:"podSelector,omitempty"`
	NamespaceSelector *string  `json:"namespaceSelector,omitempty"` // nil: the policy's namespace
	CIDR              string   `json:"cidr,omitempty"`
	Except            []string `json:"except,omitempty"`
}

// Port is a protocol and a port or range (0: every port).
type Port struct {
	Protocol string `json:"protocol"`
	Port     string `json:"port,omitempty"` // a number or a named port
	EndPort  int32  `json:"endPort,omitempty"`
}

// Store compiles and holds the records.
type Store struct {
	Services       corelisters.ServiceLister
	EndpointSlices discoverylisters.EndpointSliceLister
	Policies       networkinglisters.NetworkPolicyLister

	mu       sync.RWMutex
	services map[string]Service
	policies map[string]Policy
	count    *prometheus.Desc
}

// NewStore makes an empty Store; set the listers before Sync runs.
func NewStore() *Store {
	return &Store{services: map[string]Service{}, policies: map[string]Policy{},
		count: prometheus.NewDesc("filament_kube_manager_records", "Compiled records held, by kind (service, policy).", []string{"kind"}, nil)}
}

// Reset forgets every record (a new term starts from the caches).
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.services, s.policies = map[string]Service{}, map[string]Policy{}
}

// Describe implements prometheus.Collector.
func (s *Store) Describe(ch chan<- *prometheus.Desc) { ch <- s.count }

// Collect implements prometheus.Collector.
func (s *Store) Collect(ch chan<- prometheus.Metric) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ch <- prometheus.MustNewConstMetric(s.count, prometheus.GaugeValue, float64(len(s.services)), "service")
	ch <- prometheus.MustNewConstMetric(s.count, prometheus.GaugeValue, float64(len(s.policies)), "policy")
}

// ServiceKeyOfSlice is the queue key of an EndpointSlice's Service.
func ServiceKeyOfSlice(es *discoveryv1.EndpointSlice) (string, bool) {
	svc := es.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		return "", false
	}
	return ServicePrefix + es.Namespace + "/" + svc, true
}

// Sync compiles the record of key (svc/ns/name or np/ns/name) again.
func (s *Store) Sync(_ context.Context, key string) error {
	switch {
	case strings.HasPrefix(key, ServicePrefix):
		return s.syncService(strings.TrimPrefix(key, ServicePrefix))
	case strings.HasPrefix(key, PolicyPrefix):
		return s.syncPolicy(strings.TrimPrefix(key, PolicyPrefix))
	}
	return nil
}

func (s *Store) syncService(key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	svc, err := s.Services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		s.mu.Lock()
		delete(s.services, key)
		s.mu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("records: service %s: %w", key, err)
	}
	slices, err := s.EndpointSlices.EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name}))
	if err != nil {
		return fmt.Errorf("records: endpointslices of %s: %w", key, err)
	}
	rec := CompileService(svc, slices)
	s.mu.Lock()
	s.services[key] = rec
	s.mu.Unlock()
	return nil
}

// CompileService flattens a Service and its EndpointSlices.
func CompileService(svc *corev1.Service, slices []*discoveryv1.EndpointSlice) Service {
	rec := Service{Namespace: svc.Namespace, Name: svc.Name, Type: string(svc.Spec.Type)}
	for _, ip := range svc.Spec.ClusterIPs {
		if ip != corev1.ClusterIPNone {
			rec.ClusterIPs = append(rec.ClusterIPs, ip)
		}
	}
	for _, p := range svc.Spec.Ports {
		rec.Ports = append(rec.Ports, ServicePort{Name: p.Name, Protocol: string(p.Protocol), Port: p.Port, TargetPort: p.TargetPort.String()})
	}
	for _, es := range slices {
		ports := map[string]int32{}
		for _, p := range es.Ports {
			if p.Port != nil {
				n := ""
				if p.Name != nil {
					n = *p.Name
				}
				ports[n] = *p.Port
			}
		}
		for _, ep := range es.Endpoints {
			ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			node := ""
			if ep.NodeName != nil {
				node = *ep.NodeName
			}
			for _, a := range ep.Addresses {
				rec.Endpoints = append(rec.Endpoints, Endpoint{IP: a, Ready: ready, Node: node, Ports: ports})
			}
		}
	}
	sort.Slice(rec.Endpoints, func(i, j int) bool { return rec.Endpoints[i].IP < rec.Endpoints[j].IP })
	return rec
}

func (s *Store) syncPolicy(key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	np, err := s.Policies.NetworkPolicies(ns).Get(name)
	if apierrors.IsNotFound(err) {
		s.mu.Lock()
		delete(s.policies, key)
		s.mu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("records: networkpolicy %s: %w", key, err)
	}
	rec, err := CompilePolicy(np)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.policies[key] = rec
	s.mu.Unlock()
	return nil
}

// CompilePolicy flattens a NetworkPolicy; selectors become their canonical
// string form (labels.Selector.String()).
func CompilePolicy(np *networkingv1.NetworkPolicy) (Policy, error) {
	sel, err := selector(&np.Spec.PodSelector)
	if err != nil {
		return Policy{}, fmt.Errorf("records: networkpolicy %s/%s: %w", np.Namespace, np.Name, err)
	}
	rec := Policy{Namespace: np.Namespace, Name: np.Name, PodSelector: sel}
	types := np.Spec.PolicyTypes
	if len(types) == 0 { // the API's default
		types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(np.Spec.Egress) > 0 {
			types = append(types, networkingv1.PolicyTypeEgress)
		}
	}
	for _, t := range types {
		rec.Types = append(rec.Types, string(t))
	}
	for _, r := range np.Spec.Ingress {
		rule, err := compileRule(r.From, r.Ports)
		if err != nil {
			return Policy{}, fmt.Errorf("records: networkpolicy %s/%s: %w", np.Namespace, np.Name, err)
		}
		rec.Ingress = append(rec.Ingress, rule)
	}
	for _, r := range np.Spec.Egress {
		rule, err := compileRule(r.To, r.Ports)
		if err != nil {
			return Policy{}, fmt.Errorf("records: networkpolicy %s/%s: %w", np.Namespace, np.Name, err)
		}
		rec.Egress = append(rec.Egress, rule)
	}
	return rec, nil
}

func compileRule(peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) (Rule, error) {
	var r Rule
	for _, p := range peers {
		var out Peer
		if p.IPBlock != nil {
			out.CIDR, out.Except = p.IPBlock.CIDR, p.IPBlock.Except
		}
		if p.PodSelector != nil {
			s, err := selector(p.PodSelector)
			if err != nil {
				return r, err
			}
			out.PodSelector = &s
		}
		if p.NamespaceSelector != nil {
			s, err := selector(p.NamespaceSelector)
			if err != nil {
				return r, err
			}
			out.NamespaceSelector = &s
		}
		r.Peers = append(r.Peers, out)
	}
	for _, p := range ports {
		out := Port{Protocol: string(corev1.ProtocolTCP)}
		if p.Protocol != nil {
			out.Protocol = string(*p.Protocol)
		}
		if p.Port != nil {
			out.Port = p.Port.String()
		}
		if p.EndPort != nil {
			out.EndPort = *p.EndPort
		}
		r.Ports = append(r.Ports, out)
	}
	return r, nil
}

func selector(ls *metav1.LabelSelector) (string, error) {
	s, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return "", err
	}
	return s.String(), nil
}

// Snapshot is every record, sorted by namespace/name.
type Snapshot struct {
	Services []Service `json:"services"`
	Policies []Policy  `json:"policies"`
}

// Snapshot copies the records out.
func (s *Store) Snapshot() Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := Snapshot{Services: []Service{}, Policies: []Policy{}}
	for _, v := range s.services {
		out.Services = append(out.Services, v)
	}
	for _, v := range s.policies {
		out.Policies = append(out.Policies, v)
	}
	sort.Slice(out.Services, func(i, j int) bool {
		return out.Services[i].Namespace+"/"+out.Services[i].Name < out.Services[j].Namespace+"/"+out.Services[j].Name
	})
	sort.Slice(out.Policies, func(i, j int) bool {
		return out.Policies[i].Namespace+"/"+out.Policies[i].Name < out.Policies[j].Namespace+"/"+out.Policies[j].Name
	})
	return out
}

// ServeHTTP serves the Snapshot as JSON.
func (s *Store) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.Snapshot())
}
