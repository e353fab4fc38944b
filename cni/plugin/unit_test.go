package plugin_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types040 "github.com/containernetworking/cni/pkg/types/040"
	"go.uber.org/zap"

	"github.com/filament-net/filament/agent/cniapi"
	"github.com/filament-net/filament/cni/plugin"
)

func TestParseCNIArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want plugin.PodArgs
		bad  bool
	}{
		{"", plugin.PodArgs{}, false},
		{"IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_INFRA_CONTAINER_ID=x;K8S_POD_UID=u", plugin.PodArgs{Name: "p", Namespace: "ns", UID: "u"}, false},
		{"K8S_POD_NAME=p;Other=x", plugin.PodArgs{Name: "p"}, false}, // unknown keys ignored without IgnoreUnknown
		{"K8S_POD_NAME=a=b;", plugin.PodArgs{Name: "a=b"}, false},
		{"K8S_POD_NAME", plugin.PodArgs{}, true},
	} {
		got, err := plugin.ParseCNIArgs(tc.in)
		var e *types.Error
		switch {
		case tc.bad && (!errors.As(err, &e) || e.Code != types.ErrInvalidEnvironmentVariables):
			t.Errorf("%q: error %v, want code 4", tc.in, err)
		case !tc.bad && (err != nil || got != tc.want):
			t.Errorf("%q: %+v %v, want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestNewRequest(t *testing.T) {
	c, err := plugin.ParseConfig(conf(`{"filament": {"cluster-name": "c1", "mode": "memif", "mtu": 1500, "meta-plugin": "multus"}}`))
	if err != nil {
		t.Fatal(err)
	}
	args := &skel.CmdArgs{ContainerID: "cid", Netns: "/var/run/netns/x", IfName: "net1"}
	got := plugin.NewRequest(c, args, plugin.PodArgs{Name: "p", Namespace: "ns", UID: "u"})
	want := &cniapi.Request{Version: cniapi.Version, ContainerID: "cid", Netns: "/var/run/netns/x", IfName: "net1",
		PodName: "p", PodNamespace: "ns", PodUID: "u", ClusterName: "c1", CNINetwork: "net", Network: "net", Mode: "memif", MTU: 1500}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("\n got %+v\nwant %+v", got, want)
	}
	if e := got.Validate(cniapi.PathAdd); e != nil {
		t.Errorf("request refused by the contract: %v", e)
	}
}

func TestResultRoundTrip(t *testing.T) {
	in := &cniapi.Result{
		Interfaces: []cniapi.Interface{
			{Name: "eth0", MAC: "02:00:00:00:00:01", MTU: 1450, Sandbox: "/var/run/netns/p"},
			{Name: "vhu0", SocketPath: "/run/filament/vhost/p.sock"},
		},
		IPs: []cniapi.IP{
			{Interface: 0, Address: netip.MustParsePrefix("10.0.0.5/24"), Gateway: netip.MustParseAddr("10.0.0.1")},
			{Interface: 1, Address: netip.MustParsePrefix("fd00::5/64")},
		},
		Routes: []cniapi.Route{{Dst: netip.MustParsePrefix("10.96.0.0/12"), GW: netip.MustParseAddr("10.0.0.1")}},
	}
	res, err := plugin.ToCNIResult(in)
	if err != nil {
		t.Fatal(err)
	}
	if res.IPs[0].Address.String() != "10.0.0.5/24" || len(res.IPs[0].Address.IP) != 4 {
		t.Errorf("address %v (%d bytes)", res.IPs[0].Address, len(res.IPs[0].Address.IP))
	}
	back, err := plugin.FromCNIResult(res)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, in) {
		t.Errorf("round trip\n got %+v\nwant %+v", back, in)
	}
	// Through 0.4.0 and back: what 0.4.0 cannot carry is lost, the rest kept.
	r040, err := res.GetAsVersion("0.4.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r040.(*types040.Result); !ok {
		t.Fatalf("%T", r040)
	}
	back, err = plugin.FromCNIResult(r040)
	if err != nil {
		t.Fatal(err)
	}
	if back.Interfaces[0].MTU != 0 || back.Interfaces[1].SocketPath != "" || back.IPs[1].Address != in.IPs[1].Address {
		t.Errorf("from 0.4.0: %+v", back)
	}
	// An IP tied to no interface (another plugin of the chain changed it).
	res.IPs[1].Interface = nil
	if back, _ = plugin.FromCNIResult(res); back.IPs[1].Interface != -1 {
		t.Errorf("interface %d, want -1", back.IPs[1].Interface)
	}
}

func TestToCNIResultRefuses(t *testing.T) {
	good := func() *cniapi.Result {
		return &cniapi.Result{Interfaces: []cniapi.Interface{{Name: "eth0"}},
			IPs: []cniapi.IP{{Interface: 0, Address: netip.MustParsePrefix("10.0.0.5/24")}}}
	}
	for name, f := range map[string]func(*cniapi.Result){
		"interface without name": func(r *cniapi.Result) { r.Interfaces[0].Name = "" },
		"ip without address":     func(r *cniapi.Result) { r.IPs[0].Address = netip.Prefix{} },
		"ip on no interface":     func(r *cniapi.Result) { r.IPs[0].Interface = 1 },
		"ip on -2":               func(r *cniapi.Result) { r.IPs[0].Interface = -2 },
		"route without dst":      func(r *cniapi.Result) { r.Routes = []cniapi.Route{{}} },
	} {
		r := good()
		f(r)
		if _, err := plugin.ToCNIResult(r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := plugin.ToCNIResult(good()); err != nil {
		t.Error(err)
	}
	if _, err := plugin.ToCNIResult(nil); err == nil {
		t.Error("nil accepted")
	}
}

func caller(network, address string, timeout time.Duration, retries int) *plugin.Caller {
	return &plugin.Caller{API: cniapi.NewClient(network, address), Timeout: timeout, Retries: retries, Log: zap.NewNop()}
}

func TestCallerGone(t *testing.T) {
	socket := filepath.Join(shortDir(t), "none.sock")
	c := caller("unix", socket, 100*time.Millisecond, 5)
	req := &cniapi.Request{Version: cniapi.Version, ContainerID: "c", IfName: "eth0"}

	start := time.Now()
	slow := caller("unix", socket, time.Second, 5)
	_, err := slow.Call(context.Background(), cniapi.PathDel, req, plugin.CallOptions{StopWhenGone: true})
	var ue *plugin.UnreachableError
	if !errors.As(err, &ue) || !ue.Gone || ue.Attempts != 1 || time.Since(start) > 500*time.Millisecond {
		t.Errorf("StopWhenGone: %v (%+v) after %s", err, ue, time.Since(start))
	}

	start = time.Now()
	_, err = c.Call(context.Background(), cniapi.PathAdd, req, plugin.CallOptions{})
	took := time.Since(start)
	if !errors.As(err, &ue) || !ue.Gone || ue.Attempts != 5 {
		t.Errorf("ADD: %v", err)
	}
	if took < 400*time.Millisecond || took > 900*time.Millisecond {
		t.Errorf("5 attempts 100ms apart took %s", took)
	}

	// The caller's context ends the call early.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = c.Call(ctx, cniapi.PathAdd, req, plugin.CallOptions{})
	if !errors.As(err, &ue) || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 300*time.Millisecond {
		t.Errorf("context: %v after %s", err, time.Since(start))
	}
}

func TestCallerBadResponse(t *testing.T) {
	// Something that is not the agent on the port: no retry, a clear error.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "404 page not found", http.StatusNotFound)
	})}
	go srv.Serve(l)
	defer srv.Close()
	c := caller("tcp", l.Addr().String(), 100*time.Millisecond, 3)
	_, err = c.Call(context.Background(), cniapi.PathAdd, &cniapi.Request{Version: cniapi.Version}, plugin.CallOptions{})
	if !errors.Is(err, cniapi.ErrBadResponse) || !strings.Contains(err.Error(), "HTTP 404") || n.Load() != 1 {
		t.Errorf("error %v after %d requests", err, n.Load())
	}
}

// A dual-stack attachment's result (both addresses on eth0, a default
// route per family) prints as the runtime's version with both IPs and
// their gateways: 1.1.0, and 0.3.1 with each IP's version.
func TestDualStackResult(t *testing.T) {
	in := &cniapi.Result{
		Interfaces: []cniapi.Interface{{Name: "eth0", MAC: "02:00:0a:14:01:02", MTU: 1450, Sandbox: "/var/run/netns/p"}},
		IPs: []cniapi.IP{
			{Interface: 0, Address: netip.MustParsePrefix("10.20.1.2/16"), Gateway: netip.MustParseAddr("10.20.0.1")},
			{Interface: 0, Address: netip.MustParsePrefix("fd00:20::1:2/64"), Gateway: netip.MustParseAddr("fd00:20::1")},
		},
		Routes: []cniapi.Route{
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), GW: netip.MustParseAddr("10.20.0.1")},
			{Dst: netip.MustParsePrefix("::/0"), GW: netip.MustParseAddr("fd00:20::1")},
		},
	}
	res, err := plugin.ToCNIResult(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ version, want string }{
		{"1.1.0", `"ips":[{"address":"10.20.1.2/16","gateway":"10.20.0.1","interface":0},` +
			`{"address":"fd00:20::1:2/64","gateway":"fd00:20::1","interface":0}],` +
			`"routes":[{"dst":"0.0.0.0/0","gw":"10.20.0.1"},{"dst":"::/0","gw":"fd00:20::1"}]`},
		{"0.3.1", `"ips":[{"version":"4","interface":0,"address":"10.20.1.2/16","gateway":"10.20.0.1"},` +
			`{"version":"6","interface":0,"address":"fd00:20::1:2/64","gateway":"fd00:20::1"}]`},
	} {
		var b strings.Builder
		if err := plugin.PrintResult(&b, res, tc.version); err != nil {
			t.Fatal(err)
		}
		compact := strings.Join(strings.Fields(b.String()), "")
		if !strings.Contains(compact, tc.want) {
			t.Errorf("%s result:\n%s\nwant it to contain %s", tc.version, compact, tc.want)
		}
	}
	back, err := plugin.FromCNIResult(res)
	if err != nil || !reflect.DeepEqual(back, in) {
		t.Errorf("round trip: %v\n got %+v\nwant %+v", err, back, in)
	}
}
