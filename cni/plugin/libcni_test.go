package plugin_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/filament-net/filament/agent/cniapi"
)

// TestLibcni drives the plugin through libcni, the library container
// runtimes use: ADD, CHECK with the cached prevResult, STATUS, GC with the
// runtime's valid attachments, DEL.
func TestLibcni(t *testing.T) {
	a := startAgent(t, "unix", nil)
	list, err := libcni.ConfListFromBytes(mustJSON(t, map[string]any{
		"cniVersion": "1.1.0",
		"name":       "filament-net",
		"plugins":    []any{map[string]any{"type": "filament-cni", "filament": unixSection(t, a.Socket, nil)}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir([]string{pluginDir}, t.TempDir(), nil)
	ctx := context.Background()
	rt := &libcni.RuntimeConf{
		ContainerID: "sandbox-1", NetNS: podNetns(t), IfName: "eth0",
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "shop"}, {"K8S_POD_NAME", "web-0"}, {"K8S_POD_UID", "uid-1"}},
	}

	r, err := cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		t.Fatal(err)
	}
	res, err := current.NewResultFromResult(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.IPs) != 2 || res.IPs[0].Address.String() != "10.1.0.5/24" || res.Interfaces[0].Mtu != 1450 {
		t.Errorf("result %+v", res)
	}

	if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
		t.Fatal(err)
	}
	if err := cni.GetStatusNetworkList(ctx, list); err != nil {
		t.Fatal(err)
	}
	// The runtime knows only sandbox-2 now: libcni DELs the cached
	// sandbox-1 attachment, then passes the valid list to the plugin.
	if err := cni.GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: "sandbox-2", IfName: "eth0"}}}); err != nil {
		t.Fatal(err)
	}
	if err := cni.DelNetworkList(ctx, list, rt); err != nil {
		t.Fatal(err)
	}

	rs := a.requests()
	if want := []string{cniapi.PathAdd, cniapi.PathCheck, cniapi.PathStatus, cniapi.PathDel, cniapi.PathGC, cniapi.PathDel}; !reflect.DeepEqual(paths(rs), want) {
		t.Fatalf("agent saw %v, want %v", paths(rs), want)
	}
	add := rs[0].Req
	if add.ContainerID != "sandbox-1" || add.PodUID != "uid-1" || add.PodName != "web-0" || add.CNINetwork != "filament-net" {
		t.Errorf("ADD %+v", add)
	}
	if !reflect.DeepEqual(rs[1].Req.Prev, agentResult(&add)) {
		t.Errorf("CHECK prevResult %+v", rs[1].Req.Prev)
	}
	if gc := rs[4].Req; !reflect.DeepEqual(gc.Valid, []cniapi.Attachment{{ContainerID: "sandbox-2", IfName: "eth0"}}) || gc.CNINetwork != "filament-net" {
		t.Errorf("GC %+v", gc)
	}
	if del := rs[3].Req; del.ContainerID != "sandbox-1" || del.IfName != "eth0" {
		t.Errorf("DEL %+v", del)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
