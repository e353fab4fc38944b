package crds_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"

	"github.com/filament-net/filament/deploy/crds"
	"github.com/filament-net/filament/internal/kubetest"
	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
	"github.com/filament-net/filament/kubemanager/crdclient"
)

// One API server for the package, the CRDs installed once.
var (
	env *kubetest.Env
	cl  *crdclient.Client
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	var err error
	if env, err = kubetest.Start(ctx, kubetest.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, "crds:", err)
		os.Exit(1)
	}
	ready := time.Since(start)
	if err = crds.Install(ctx, env.Config); err == nil {
		cl, err = crdclient.New(env.Config)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crds:", err)
		fmt.Fprint(os.Stderr, env.Logs(30))
		env.Stop()
		os.Exit(1)
	}
	fmt.Printf("crds: API server ready in %v, CRDs established %v later\n",
		ready.Round(time.Millisecond), (time.Since(start) - ready).Round(time.Millisecond))
	rc := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "crds: stop:", err)
		rc = 1
	}
	os.Exit(rc)
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

func TestEstablished(t *testing.T) {
	ms, err := crds.Manifests()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 5 {
		t.Errorf("%d manifests, want 5 (VirtualNetwork, Port, FilamentNode, ServiceRecord, PolicyRecord)", len(ms))
	}
	dc := dynamic.NewForConfigOrDie(env.Config)
	for file, m := range ms {
		u, err := dc.Resource(crdGVR).Get(context.Background(), m.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if ok, why := crds.Established(u); !ok {
			t.Errorf("%s: not established (%s)", file, why)
		}
	}
	// Installing again is a no-op apply, not an error.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := crds.Install(ctx, env.Config); err != nil {
		t.Errorf("second install: %v", err)
	}
}

func validNetwork(name string) *v1alpha1.VirtualNetwork {
	return &v1alpha1.VirtualNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.VirtualNetworkSpec{
			Subnets: []v1alpha1.Subnet{
				{CIDR: "10.10.0.0/16", Gateway: "10.10.0.1"},
				{CIDR: "fd00:10::/64", Gateway: "fd00:10::1"},
			},
			VNI:           100,
			Label:         200,
			Encapsulation: v1alpha1.EncapVXLAN,
			Isolation:     v1alpha1.IsolationShared,
		},
	}
}

func validPort(ns, name, node string) *v1alpha1.Port {
	return &v1alpha1.Port{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.PortSpec{
			Pod:       v1alpha1.PodRef{Namespace: ns, Name: "pod-" + name, UID: "0b5e4f0c-8a53-4b7e-9d57-1c0b7f0c2a11"},
			Node:      node,
			Network:   "red",
			Interface: "eth0",
			IPs:       []string{"10.10.0.5", "fd00:10::5"},
			MAC:       "02:fe:0a:0a:00:05",
			Mode:      v1alpha1.ModeVeth,
			VNI:       100,
			Label:     200,
		},
	}
}

func validNode(name string) *v1alpha1.FilamentNode {
	return &v1alpha1.FilamentNode{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.FilamentNodeSpec{
			UnderlayIPv4:   "192.168.100.1",
			UnderlayIPv6:   "fd00:100::1",
			Encapsulations: []string{v1alpha1.EncapVXLAN, v1alpha1.EncapMPLSoUDP},
		},
	}
}

// Every field set is stored and read back unchanged: a field of the Go
// types missing from a schema would be pruned by the API server.
func TestValidRoundTrip(t *testing.T) {
	ctx := context.Background()
	vn := validNetwork("roundtrip")
	got, err := cl.VirtualNetworks.Create(ctx, vn)
	if err != nil {
		t.Fatal(err)
	}
	if got, err = cl.VirtualNetworks.Get(ctx, "", vn.Name); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Spec, vn.Spec) {
		t.Errorf("VirtualNetwork read back\n%+v\nwant\n%+v", got.Spec, vn.Spec)
	}
	isolated := validNetwork("isolated")
	isolated.Spec.VNI, isolated.Spec.Label = 101, 201
	isolated.Spec.Isolation, isolated.Spec.Namespace = v1alpha1.IsolationNamespace, "team-a"
	if _, err := cl.VirtualNetworks.Create(ctx, isolated); err != nil {
		t.Errorf("isolated network: %v", err)
	}

	mustNamespace(t, "roundtrip")
	p := validPort("roundtrip", "p1", "node1")
	if _, err := cl.Ports.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	gp, err := cl.Ports.Get(ctx, "roundtrip", "p1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gp.Spec, p.Spec) {
		t.Errorf("Port read back\n%+v\nwant\n%+v", gp.Spec, p.Spec)
	}
	// Status goes through its subresource only.
	gp.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionAllocated, Status: metav1.ConditionTrue,
		Reason: "Allocated", Message: "10.10.0.5 from red", LastTransitionTime: metav1.Now()}}
	if _, err := cl.Ports.Update(ctx, gp); err != nil {
		t.Fatal(err)
	}
	if gp, err = cl.Ports.Get(ctx, "roundtrip", "p1"); err != nil || len(gp.Status.Conditions) != 0 {
		t.Fatalf("Update wrote status (%v, err %v): want it ignored", gp.Status, err)
	}
	cond := metav1.Condition{Type: v1alpha1.ConditionAllocated, Status: metav1.ConditionTrue,
		Reason: "Allocated", Message: "10.10.0.5 from red", LastTransitionTime: metav1.Now()}
	gp.Status.Conditions = []metav1.Condition{cond}
	if _, err := cl.Ports.UpdateStatus(ctx, gp); err != nil {
		t.Fatal(err)
	}
	gp, err = cl.Ports.Get(ctx, "roundtrip", "p1")
	if err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(gp.Status.Conditions, v1alpha1.ConditionAllocated); c == nil ||
		c.Status != metav1.ConditionTrue || c.Message != cond.Message {
		t.Errorf("Allocated condition read back: %+v", gp.Status.Conditions)
	}

	n := validNode("node-roundtrip")
	if _, err := cl.FilamentNodes.Create(ctx, n); err != nil {
		t.Fatal(err)
	}
	gn, err := cl.FilamentNodes.Get(ctx, "", n.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gn.Spec, n.Spec) {
		t.Errorf("FilamentNode read back\n%+v\nwant\n%+v", gn.Spec, n.Spec)
	}
	if err := cl.FilamentNodes.Delete(ctx, "", n.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.FilamentNodes.Get(ctx, "", n.Name); !apierrors.IsNotFound(err) {
		t.Errorf("after delete: err %v, want NotFound", err)
	}
	if _, err := cl.FilamentNodes.Get(ctx, "default", n.Name); err == nil {
		t.Error("a namespace given for a cluster-scoped kind is accepted")
	}
}

func TestDefaults(t *testing.T) {
	ctx := context.Background()
	vn := validNetwork("defaults")
	vn.Spec.VNI, vn.Spec.Label = 102, 0
	vn.Spec.Encapsulation, vn.Spec.Isolation = "", ""
	got, err := cl.VirtualNetworks.Create(ctx, vn)
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Encapsulation != v1alpha1.EncapVXLAN || got.Spec.Isolation != v1alpha1.IsolationShared {
		t.Errorf("defaults: encapsulation %q isolation %q, want vxlan Shared", got.Spec.Encapsulation, got.Spec.Isolation)
	}
	mustNamespace(t, "defaults")
	p := validPort("defaults", "p1", "node1")
	p.Spec.Interface, p.Spec.Mode = "", ""
	gp, err := cl.Ports.Create(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if gp.Spec.Interface != "eth0" || gp.Spec.Mode != v1alpha1.ModeVeth {
		t.Errorf("defaults: interface %q mode %q, want eth0 veth", gp.Spec.Interface, gp.Spec.Mode)
	}
}

// Each case breaks one valid object; the API server must refuse it with
// the schema's message.
func TestInvalidRefused(t *testing.T) {
	ctx := context.Background()
	mustNamespace(t, "invalid")
	vn := func(f func(*v1alpha1.VirtualNetwork)) func() error {
		return func() error {
			o := validNetwork("bad")
			f(o)
			_, err := cl.VirtualNetworks.Create(ctx, o)
			return err
		}
	}
	port := func(f func(*v1alpha1.Port)) func() error {
		return func() error {
			o := validPort("invalid", "bad", "node1")
			f(o)
			_, err := cl.Ports.Create(ctx, o)
			return err
		}
	}
	node := func(f func(*v1alpha1.FilamentNode)) func() error {
		return func() error {
			o := validNode("bad")
			f(o)
			_, err := cl.FilamentNodes.Create(ctx, o)
			return err
		}
	}
	for _, tc := range []struct {
		name   string
		create func() error
		want   string
	}{
		{"subnet not a prefix", vn(func(o *v1alpha1.VirtualNetwork) { o.Spec.Subnets[0].CIDR = "10.10.0.0" }),
			"cidr must be an IPv4 or IPv6 prefix"},
		{"subnet /33", vn(func(o *v1alpha1.VirtualNetwork) { o.Spec.Subnets[0].CIDR = "10.10.0.0/33" }),
			"cidr must be an IPv4 or IPv6 prefix"},
		{"subnet host bits", vn(func(o *v1alpha1.VirtualNetwork) { o.Spec.Subnets[0].CIDR = "10.10.0.1/16" }),
			"cidr must not have host bits set"},
		{"subnet too small", vn(func(o *v1alpha1.VirtualNetwork) {
			o.Spec.Subnets[0] = v1alpha1.Subnet{CIDR: "10.10.0.0/31"}
		}), "cidr is too small"},
		{"two IPv4 subnets", vn(func(o *v1alpha1.VirtualNetwork) { o.Spec.Subnets[1] = v1alpha1.Subnet{CIDR: "10.11.0.0/16"} }),
			"at most one IPv4 and one IPv6 subnet"},
		{"no subnet", vn(func(o *v1alpha1.VirtualNetwork) { o.Spec.Subnets = nil }), "spec.subnets: Required value"},
		{"gateway outside", vn(func(o *v1alpha1.VirtualNetwork) { o.Spec.Subnets[0].Gateway = "10.11.0.1" }),
			"gateway must be inside cidr"},
		{"gateway not an address", vn(func(o *v1alpha1.VirtualNetwork) { o.Spec.Subnets[0].Gateway = "10.10.0.256" }),
			"gateway must be an IP address"},
		{"VNI out of range", vn(func(o *v1alpha1.VirtualNetwork) { o.Spec.VNI = 1 << 24 }),
			"spec.vni: Invalid value: 16777216: spec.vni in body should be less than or equal to 16777215"},
		{"vxlan without VNI", vn(func(o *v1alpha1.VirtualNetwork) { o.Spec.VNI = 0 }),
			"vni is required with encapsulation vxlan"},
		{"label reserved", vn(func(o *v1alpha1.VirtualNetwork) { o.Spec.Label = 15 }),
			"spec.label in body should be greater than or equal to 16"},
		{"label out of range", vn(func(o *v1alpha1.VirtualNetwork) { o.Spec.Label = 1 << 20 }),
			"spec.label in body should be less than or equal to 1048575"},
		{"mplsoudp without label", vn(func(o *v1alpha1.VirtualNetwork) { o.Spec.Encapsulation, o.Spec.Label = v1alpha1.EncapMPLSoUDP, 0 }),
			"label is required with encapsulation mplsoudp or mplsogre"},
		{"unknown encapsulation", vn(func(o *v1alpha1.VirtualNetwork) { o.Spec.Encapsulation = "geneve" }),
			`spec.encapsulation: Unsupported value: "geneve"`},
		{"isolated without namespace", vn(func(o *v1alpha1.VirtualNetwork) { o.Spec.Isolation = v1alpha1.IsolationNamespace }),
			"namespace is required with isolation Namespace"},
		{"shared with namespace", vn(func(o *v1alpha1.VirtualNetwork) { o.Spec.Namespace = "team-a" }),
			"namespace is required with isolation Namespace and refused otherwise"},

		{"MAC multicast", port(func(o *v1alpha1.Port) { o.Spec.MAC = "01:00:5e:00:00:01" }), `spec.mac in body should match`},
		{"MAC short", port(func(o *v1alpha1.Port) { o.Spec.MAC = "02:00:00:00:00" }), `spec.mac in body should match`},
		{"MAC upper case", port(func(o *v1alpha1.Port) { o.Spec.MAC = "02:FE:0A:0A:00:05" }), `spec.mac in body should match`},
		{"MAC dashes", port(func(o *v1alpha1.Port) { o.Spec.MAC = "02-fe-0a-0a-00-05" }), `spec.mac in body should match`},
		{"MAC zero", port(func(o *v1alpha1.Port) { o.Spec.MAC = "00:00:00:00:00:00" }), "mac must not be all zeros"},
		{"IP not an address", port(func(o *v1alpha1.Port) { o.Spec.IPs[0] = "10.10.0.300" }), "each of ips must be an IP address"},
		{"two IPv4 addresses", port(func(o *v1alpha1.Port) { o.Spec.IPs[1] = "10.10.0.6" }), "at most one IPv4 and one IPv6 address"},
		{"port VNI out of range", port(func(o *v1alpha1.Port) { o.Spec.VNI = 1 << 24 }),
			"spec.vni in body should be less than or equal to 16777215"},
		{"unknown mode", port(func(o *v1alpha1.Port) { o.Spec.Mode = "macvlan" }), `spec.mode: Unsupported value: "macvlan"`},
		{"no node", port(func(o *v1alpha1.Port) { o.Spec.Node = "" }), "spec.node in body should be at least 1 chars long"},

		{"underlay IPv4 of the wrong family", node(func(o *v1alpha1.FilamentNode) { o.Spec.UnderlayIPv4 = "fd00::1" }),
			"underlayIPv4 must be an IPv4 address"},
		{"no underlay address", node(func(o *v1alpha1.FilamentNode) { o.Spec.UnderlayIPv4, o.Spec.UnderlayIPv6 = "", "" }),
			"an underlay address is required"},
		{"unknown node encapsulation", node(func(o *v1alpha1.FilamentNode) { o.Spec.Encapsulations = []string{"gre"} }),
			`Unsupported value: "gre"`},
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

func TestImmutable(t *testing.T) {
	ctx := context.Background()
	vn := validNetwork("immutable")
	vn.Spec.VNI, vn.Spec.Label = 103, 203
	got, err := cl.VirtualNetworks.Create(ctx, vn)
	if err != nil {
		t.Fatal(err)
	}
	got.Spec.VNI = 104
	if _, err := cl.VirtualNetworks.Update(ctx, got); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "vni is immutable") {
		t.Errorf("VNI change: err %v, want Invalid: vni is immutable", err)
	}
	mustNamespace(t, "immutable")
	p, err := cl.Ports.Create(ctx, validPort("immutable", "p1", "node1"))
	if err != nil {
		t.Fatal(err)
	}
	p.Spec.Network = "blue"
	if _, err := cl.Ports.Update(ctx, p); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "pod and network are immutable") {
		t.Errorf("network change: err %v, want Invalid: pod and network are immutable", err)
	}
}

// An agent lists and watches its own node's Ports by field selector.
func TestPortsByNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mustNamespace(t, "bynode")
	sel := metav1.ListOptions{FieldSelector: "spec.node=node-b"}
	w, err := cl.Ports.Watch(ctx, "", sel)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for _, p := range []*v1alpha1.Port{validPort("bynode", "a1", "node-a"), validPort("bynode", "b1", "node-b")} {
		if _, err := cl.Ports.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	l, err := cl.Ports.List(ctx, "", sel)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 1 || l.Items[0].Name != "b1" {
		t.Errorf("spec.node=node-b lists %d ports %v, want b1 only", len(l.Items), names(l.Items))
	}
	select {
	case ev := <-w.ResultChan():
		p, ok := ev.Object.(*v1alpha1.Port)
		if ev.Type != watch.Added || !ok || p.Name != "b1" || p.Spec.IPs[0] != "10.10.0.5" {
			t.Errorf("first event %s %#v, want ADDED of Port b1", ev.Type, ev.Object)
		}
	case <-ctx.Done():
		t.Fatal("no watch event")
	}
}

// The API server renders the printer columns (kubectl get asks for a Table).
func TestPrinterColumns(t *testing.T) {
	ctx := context.Background()
	mustNamespace(t, "columns")
	p := validPort("columns", "p1", "node1")
	got, err := cl.Ports.Create(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	got.Status.Conditions = []metav1.Condition{
		{Type: v1alpha1.ConditionAllocated, Status: metav1.ConditionTrue, Reason: "Allocated", LastTransitionTime: metav1.Now()},
		{Type: v1alpha1.ConditionProgrammed, Status: metav1.ConditionFalse, Reason: "Pending", LastTransitionTime: metav1.Now()},
	}
	if _, err := cl.Ports.UpdateStatus(ctx, got); err != nil {
		t.Fatal(err)
	}
	vn := validNetwork("columns")
	vn.Spec.VNI, vn.Spec.Label = 105, 205
	if _, err := cl.VirtualNetworks.Create(ctx, vn); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.FilamentNodes.Create(ctx, validNode("columns")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want map[string]string // column -> cell
	}{
		{"/apis/filament.dev/v1alpha1/namespaces/columns/ports/p1", map[string]string{
			"Name": "p1", "Pod": "pod-p1", "Network": "red", "IPs": `["10.10.0.5","fd00:10::5"]`, "Node": "node1",
			"Allocated": "True", "Programmed": "False", "MAC": "02:fe:0a:0a:00:05", "Mode": "veth"}},
		{"/apis/filament.dev/v1alpha1/virtualnetworks/columns", map[string]string{
			"Name": "columns", "Subnet": "10.10.0.0/16", "Subnet2": "fd00:10::/64", "Encap": "vxlan", "VNI": "105", "Label": "205",
			"Isolation": "Shared"}},
		{"/apis/filament.dev/v1alpha1/filamentnodes/columns", map[string]string{
			"Name": "columns", "IPv4": "192.168.100.1", "IPv6": "fd00:100::1", "Encapsulations": `["vxlan","mplsoudp"]`}},
	} {
		cells := table(t, tc.path)
		for col, want := range tc.want {
			if got, ok := cells[col]; !ok || got != want {
				t.Errorf("%s: column %s = %q (present %v), want %q", tc.path, col, got, ok, want)
			}
		}
		if _, ok := cells["Age"]; !ok {
			t.Errorf("%s: no Age column", tc.path)
		}
	}
}

// table GETs path as a meta.k8s.io Table and returns its one row by column.
func table(t *testing.T, path string) map[string]string {
	t.Helper()
	rc, err := restClient()
	if err != nil {
		t.Fatal(err)
	}
	b, err := rc.Get().AbsPath(path).SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		Do(context.Background()).Raw()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var tab metav1.Table
	if err := json.Unmarshal(b, &tab); err != nil {
		t.Fatal(err)
	}
	if len(tab.Rows) != 1 || len(tab.Rows[0].Cells) != len(tab.ColumnDefinitions) {
		t.Fatalf("%s: %d rows, want 1 with a cell per column: %s", path, len(tab.Rows), b)
	}
	out := map[string]string{}
	for i, c := range tab.ColumnDefinitions {
		out[c.Name] = fmt.Sprint(tab.Rows[0].Cells[i])
	}
	return out
}

func mustNamespace(t *testing.T, name string) {
	t.Helper()
	dc := dynamic.NewForConfigOrDie(env.Config)
	ns := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}}
	_, err := dc.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).
		Create(context.Background(), ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func names(ps []v1alpha1.Port) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	return out
}
