package e2e

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/filament-net/filament/internal/testnet"
)

// TestLibcni drives a real node through libcni, the library container
// runtimes use: ADD, CHECK with the cached result, STATUS, GC with the
// runtime's valid attachments (libcni DELs the stale one first), DEL.
func TestLibcni(t *testing.T) {
	tn := testnet.New(t)
	nodeNS, other := tn.NS("n1"), tn.NS("x")
	tn.Veth(tn.Name("f1"), nodeNS, tn.Name("f1x"), other)
	n := startNode(t, tn, 1, nodeNS, tn.Name("f1"), "vxlan", nil)
	c := dial(t, n)

	conf := []byte(`{"cniVersion": "1.1.0", "name": "filament-net", "plugins": [{"type": "filament-cni",
		"filament": {"socket": "` + n.cniSock + `", "log-file": "` + filepath.Join(n.dir, "cni.log") + `"}}]}`)
	list, err := libcni.ConfListFromBytes(conf)
	if err != nil {
		t.Fatal(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir([]string{binDir}, t.TempDir(), nil)
	ctx := context.Background()
	rts := map[string]*libcni.RuntimeConf{}
	ips := map[string]netip.Addr{}
	pods := map[string]pod{}
	for _, name := range []string{"p1", "p2"} {
		ns := tn.NS(name)
		rt := &libcni.RuntimeConf{ContainerID: "sandbox-" + name, NetNS: "/var/run/netns/" + ns, IfName: "eth0",
			Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", name}}}
		r, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			t.Fatal(err)
		}
		res, err := current.NewResultFromResult(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.IPs) != 1 || res.Interfaces[0].Mtu != 1450 || res.IPs[0].Gateway.String() != "10.20.0.1" {
			t.Fatalf("result %+v", res)
		}
		a, _ := netip.AddrFromSlice(res.IPs[0].Address.IP.To4())
		rts[name], ips[name] = rt, a
		pods[name] = pod{ns: ns, ip: a}
	}
	ping(t, tn, pods["p1"], ips["p2"])
	for _, rt := range rts {
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			t.Fatal(err)
		}
	}
	if err := cni.GetStatusNetworkList(ctx, list); err != nil {
		t.Fatal(err)
	}
	// The runtime knows only p1: p2 goes.
	if err := cni.GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: "sandbox-p1", IfName: "eth0"}}}); err != nil {
		t.Fatal(err)
	}
	s := dump(t, c)
	if hasRoute(s, 1, ips["p2"].String()+"/32") || !hasRoute(s, 1, ips["p1"].String()+"/32") || len(podPorts(s)) != 1 {
		t.Errorf("after GC: %v %v", s.Routes, podPorts(s))
	}
	ping(t, tn, pods["p1"], netip.MustParseAddr("10.20.0.1"))
	if err := cni.DelNetworkList(ctx, list, rts["p1"]); err != nil {
		t.Fatal(err)
	}
	if s := dump(t, c); len(podPorts(s)) != 0 || hasRoute(s, 1, ips["p1"].String()+"/32") {
		t.Errorf("after DEL: %v %v", s.Routes, podPorts(s))
	}
}
