package crds_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
)

func validServiceRecord(ns, name string) *v1alpha1.ServiceRecord {
	return &v1alpha1.ServiceRecord{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.ServiceRecordSpec{
			ServiceUID: "5c1b7a52-2f7e-4b8e-a0d4-6d1f0e2c9a10",
			Type:       "ClusterIP",
			ClusterIPs: []string{"10.96.0.10", "fd00:96::a"},
			Ports:      []v1alpha1.ServicePort{{Name: "http", Protocol: "TCP", Port: 80, TargetPort: "8080"}},
			Backends: []v1alpha1.ServiceBackend{
				{IP: "10.244.0.5", Ready: true, Network: "default", Node: "node1", Pod: "web-0",
					Ports: []v1alpha1.BackendPort{{Name: "http", Protocol: "TCP", Port: 8080}}},
				{IP: "192.168.1.9", Ready: false},
			},
		},
	}
}

func validPolicyRecord(ns, name string) *v1alpha1.PolicyRecord {
	return &v1alpha1.PolicyRecord{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.PolicyRecordSpec{
			PolicyUID: "7d2c8b63-3a8f-4c9f-b1e5-7e2a1f3d0b21",
			Types:     []string{"Ingress", "Egress"},
			Targets:   []v1alpha1.PolicyTarget{{Pod: "web-0", Node: "node1", Network: "default", IPs: []string{"10.244.0.5", "fd00:244::5"}}},
			Ingress: []v1alpha1.PolicyRule{{
				Peers: []v1alpha1.PolicyPeer{{CIDR: "10.244.0.7/32"}, {CIDR: "192.168.0.0/16", Except: []string{"192.168.1.0/24"}}},
				Ports: []v1alpha1.PolicyPort{{Protocol: "TCP", Port: "443"}, {Protocol: "UDP", Port: "5000", EndPort: 5010}},
			}},
			Egress: []v1alpha1.PolicyRule{{Peers: []v1alpha1.PolicyPeer{{CIDR: "0.0.0.0/0"}, {CIDR: "::/0"}}}},
		},
	}
}

// ServiceRecords and PolicyRecords: stored and read back unchanged (no
// field pruned), invalid ones refused, columns rendered.
func TestRecordKinds(t *testing.T) {
	ctx := context.Background()
	mustNamespace(t, "records")
	sr := validServiceRecord("records", "web")
	if _, err := cl.ServiceRecords.Create(ctx, sr); err != nil {
		t.Fatal(err)
	}
	gs, err := cl.ServiceRecords.Get(ctx, "records", "web")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gs.Spec, sr.Spec) {
		t.Errorf("ServiceRecord read back\n%+v\nwant\n%+v", gs.Spec, sr.Spec)
	}
	pr := validPolicyRecord("records", "allow")
	if _, err := cl.PolicyRecords.Create(ctx, pr); err != nil {
		t.Fatal(err)
	}
	gp, err := cl.PolicyRecords.Get(ctx, "records", "allow")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gp.Spec, pr.Spec) {
		t.Errorf("PolicyRecord read back\n%+v\nwant\n%+v", gp.Spec, pr.Spec)
	}

	for _, tc := range []struct {
		path string
		want map[string]string
	}{
		{"/apis/filament.dev/v1alpha1/namespaces/records/servicerecords/web", map[string]string{
			"Name": "web", "Type": "ClusterIP", "ClusterIPs": `["10.96.0.10","fd00:96::a"]`,
			"Ports": `[{"name":"http","port":80,"protocol":"TCP","targetPort":"8080"}]`}},
		{"/apis/filament.dev/v1alpha1/namespaces/records/policyrecords/allow", map[string]string{
			"Name": "allow", "Types": `["Ingress","Egress"]`, "Target": "web-0"}},
	} {
		cells := table(t, tc.path)
		for col, want := range tc.want {
			if got, ok := cells[col]; !ok || got != want {
				t.Errorf("%s: column %s = %q (present %v), want %q", tc.path, col, got, ok, want)
			}
		}
	}

	svc := func(f func(*v1alpha1.ServiceRecord)) func() error {
		return func() error {
			o := validServiceRecord("records", "bad")
			f(o)
			_, err := cl.ServiceRecords.Create(ctx, o)
			return err
		}
	}
	pol := func(f func(*v1alpha1.PolicyRecord)) func() error {
		return func() error {
			o := validPolicyRecord("records", "bad")
			f(o)
			_, err := cl.PolicyRecords.Create(ctx, o)
			return err
		}
	}
	for _, tc := range []struct {
		name   string
		create func() error
		want   string
	}{
		{"cluster IP not an address", svc(func(o *v1alpha1.ServiceRecord) { o.Spec.ClusterIPs[0] = "10.96.0.256" }),
			"each of clusterIPs must be an IP address"},
		{"two IPv4 cluster IPs", svc(func(o *v1alpha1.ServiceRecord) { o.Spec.ClusterIPs[1] = "10.96.0.11" }),
			"at most one IPv4 and one IPv6 cluster IP"},
		{"unknown service type", svc(func(o *v1alpha1.ServiceRecord) { o.Spec.Type = "Magic" }), `spec.type: Unsupported value: "Magic"`},
		{"service port 0", svc(func(o *v1alpha1.ServiceRecord) { o.Spec.Ports[0].Port = 0 }),
			"spec.ports[0].port in body should be greater than or equal to 1"},
		{"unknown protocol", svc(func(o *v1alpha1.ServiceRecord) { o.Spec.Ports[0].Protocol = "ICMP" }), `Unsupported value: "ICMP"`},
		{"backend not an address", svc(func(o *v1alpha1.ServiceRecord) { o.Spec.Backends[1].IP = "web-0" }),
			"a backend's ip must be an IP address"},
		{"backend port too large", svc(func(o *v1alpha1.ServiceRecord) { o.Spec.Backends[0].Ports[0].Port = 70000 }),
			"should be less than or equal to 65535"},
		{"no service uid", svc(func(o *v1alpha1.ServiceRecord) { o.Spec.ServiceUID = "" }), "spec.serviceUID"},

		{"unknown policy type", pol(func(o *v1alpha1.PolicyRecord) { o.Spec.Types = []string{"Sideways"} }), `Unsupported value: "Sideways"`},
		{"no policy type", pol(func(o *v1alpha1.PolicyRecord) { o.Spec.Types = nil }), "spec.types: Required value"},
		{"peer not a prefix", pol(func(o *v1alpha1.PolicyRecord) { o.Spec.Ingress[0].Peers[0].CIDR = "10.244.0.7" }),
			"a peer's cidr must be an IPv4 or IPv6 prefix"},
		{"egress peer not a prefix", pol(func(o *v1alpha1.PolicyRecord) { o.Spec.Egress[0].Peers[0].CIDR = "any" }),
			"a peer's cidr must be an IPv4 or IPv6 prefix"},
		{"target not an address", pol(func(o *v1alpha1.PolicyRecord) { o.Spec.Targets[0].IPs[0] = "10.244.0" }),
			"each of a target's ips must be an IP address"},
		{"target without address", pol(func(o *v1alpha1.PolicyRecord) { o.Spec.Targets[0].IPs = nil }), "spec.targets[0].ips: Required value"},
		{"endPort without port", pol(func(o *v1alpha1.PolicyRecord) { o.Spec.Ingress[0].Ports[1].Port = "" }), "endPort needs port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.create()
			if err == nil {
				t.Fatal("accepted, want refused")
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("err %v, want Invalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v\nwant it to say %q", err, tc.want)
			}
		})
	}
}
