package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Deep copies, written by hand: every slice is copied; the rest of each
// type is values. deepcopy_test.go checks that a copy shares no memory
// with its original.

// copySlice copies a slice of values; nil stays nil, empty stays empty.
func copySlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}

// DeepCopyInto copies s into out.
func (s *VirtualNetworkSpec) DeepCopyInto(out *VirtualNetworkSpec) {
	*out = *s
	out.Subnets = copySlice(s.Subnets)
}

// DeepCopyInto copies v into out.
func (v *VirtualNetwork) DeepCopyInto(out *VirtualNetwork) {
	*out = *v
	v.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	v.Spec.DeepCopyInto(&out.Spec)
}

// DeepCopy returns a copy of v.
func (v *VirtualNetwork) DeepCopy() *VirtualNetwork {
	if v == nil {
		return nil
	}
	out := new(VirtualNetwork)
	v.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (v *VirtualNetwork) DeepCopyObject() runtime.Object { return v.DeepCopy() }

// DeepCopyObject implements runtime.Object.
func (l *VirtualNetworkList) DeepCopyObject() runtime.Object {
	if l == nil {
		return nil
	}
	out := &VirtualNetworkList{TypeMeta: l.TypeMeta}
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	if l.Items != nil {
		out.Items = make([]VirtualNetwork, len(l.Items))
		for i := range l.Items {
			l.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
	return out
}

// DeepCopyInto copies s into out.
func (s *PortSpec) DeepCopyInto(out *PortSpec) {
	*out = *s
	out.IPs = copySlice(s.IPs)
}

// DeepCopyInto copies s into out.
func (s *PortStatus) DeepCopyInto(out *PortStatus) {
	*out = *s
	if s.Conditions != nil {
		out.Conditions = make([]metav1.Condition, len(s.Conditions))
		for i := range s.Conditions {
			s.Conditions[i].DeepCopyInto(&out.Conditions[i])
		}
	}
}

// DeepCopyInto copies p into out.
func (p *Port) DeepCopyInto(out *Port) {
	*out = *p
	p.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	p.Spec.DeepCopyInto(&out.Spec)
	p.Status.DeepCopyInto(&out.Status)
}

// DeepCopy returns a copy of p.
func (p *Port) DeepCopy() *Port {
	if p == nil {
		return nil
	}
	out := new(Port)
	p.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (p *Port) DeepCopyObject() runtime.Object { return p.DeepCopy() }

// DeepCopyObject implements runtime.Object.
func (l *PortList) DeepCopyObject() runtime.Object {
	if l == nil {
		return nil
	}
	out := &PortList{TypeMeta: l.TypeMeta}
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	if l.Items != nil {
		out.Items = make([]Port, len(l.Items))
		for i := range l.Items {
			l.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
	return out
}

// DeepCopyInto copies s into out.
func (s *FilamentNodeSpec) DeepCopyInto(out *FilamentNodeSpec) {
	*out = *s
	out.Encapsulations = copySlice(s.Encapsulations)
}

// DeepCopyInto copies n into out.
func (n *FilamentNode) DeepCopyInto(out *FilamentNode) {
	*out = *n
	n.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	n.Spec.DeepCopyInto(&out.Spec)
}

// DeepCopy returns a copy of n.
func (n *FilamentNode) DeepCopy() *FilamentNode {
	if n == nil {
		return nil
	}
	out := new(FilamentNode)
	n.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (n *FilamentNode) DeepCopyObject() runtime.Object { return n.DeepCopy() }

// DeepCopyObject implements runtime.Object.
func (l *FilamentNodeList) DeepCopyObject() runtime.Object {
	if l == nil {
		return nil
	}
	out := &FilamentNodeList{TypeMeta: l.TypeMeta}
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	if l.Items != nil {
		out.Items = make([]FilamentNode, len(l.Items))
		for i := range l.Items {
			l.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
	return out
}

// DeepCopyInto copies s into out.
func (s *ServiceRecordSpec) DeepCopyInto(out *ServiceRecordSpec) {
	*out = *s
	out.ClusterIPs = copySlice(s.ClusterIPs)
	out.Ports = copySlice(s.Ports)
	if s.Backends != nil {
		out.Backends = make([]ServiceBackend, len(s.Backends))
		for i, b := range s.Backends {
			out.Backends[i] = b
			out.Backends[i].Ports = copySlice(b.Ports)
		}
	}
}

// DeepCopyInto copies r into out.
func (r *ServiceRecord) DeepCopyInto(out *ServiceRecord) {
	*out = *r
	r.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	r.Spec.DeepCopyInto(&out.Spec)
}

// DeepCopy returns a copy of r.
func (r *ServiceRecord) DeepCopy() *ServiceRecord {
	if r == nil {
		return nil
	}
	out := new(ServiceRecord)
	r.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (r *ServiceRecord) DeepCopyObject() runtime.Object { return r.DeepCopy() }

// DeepCopyObject implements runtime.Object.
func (l *ServiceRecordList) DeepCopyObject() runtime.Object {
	if l == nil {
		return nil
	}
	out := &ServiceRecordList{TypeMeta: l.TypeMeta}
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	if l.Items != nil {
		out.Items = make([]ServiceRecord, len(l.Items))
		for i := range l.Items {
			l.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
	return out
}

// copyRules copies policy rules and their peers' exceptions.
func copyRules(rs []PolicyRule) []PolicyRule {
	if rs == nil {
		return nil
	}
	out := make([]PolicyRule, len(rs))
	for i, r := range rs {
		out[i].Ports = copySlice(r.Ports)
		if r.Peers != nil {
			out[i].Peers = make([]PolicyPeer, len(r.Peers))
			for j, p := range r.Peers {
				out[i].Peers[j] = PolicyPeer{CIDR: p.CIDR, Except: copySlice(p.Except)}
			}
		}
	}
	return out
}

// DeepCopyInto copies s into out.
func (s *PolicyRecordSpec) DeepCopyInto(out *PolicyRecordSpec) {
	*out = *s
	out.Types = copySlice(s.Types)
	if s.Targets != nil {
		out.Targets = make([]PolicyTarget, len(s.Targets))
		for i, t := range s.Targets {
			out.Targets[i] = t
			out.Targets[i].IPs = copySlice(t.IPs)
		}
	}
	out.Ingress = copyRules(s.Ingress)
	out.Egress = copyRules(s.Egress)
}

// DeepCopyInto copies r into out.
func (r *PolicyRecord) DeepCopyInto(out *PolicyRecord) {
	*out = *r
	r.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	r.Spec.DeepCopyInto(&out.Spec)
}

// DeepCopy returns a copy of r.
func (r *PolicyRecord) DeepCopy() *PolicyRecord {
	if r == nil {
		return nil
	}
	out := new(PolicyRecord)
	r.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (r *PolicyRecord) DeepCopyObject() runtime.Object { return r.DeepCopy() }

// DeepCopyObject implements runtime.Object.
func (l *PolicyRecordList) DeepCopyObject() runtime.Object {
	if l == nil {
		return nil
	}
	out := &PolicyRecordList{TypeMeta: l.TypeMeta}
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	if l.Items != nil {
		out.Items = make([]PolicyRecord, len(l.Items))
		for i := range l.Items {
			l.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
	return out
}
