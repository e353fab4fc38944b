package node

import (
	"context"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/filament-net/filament/agent/cniapi"
	"github.com/filament-net/filament/agent/config"
)

// Kubernetes mode: a VirtualNetwork deleted gives its VRF id back once no
// pod uses it, and the next network takes the lowest free id; an id a pod
// still uses is kept (also for a network of that name coming back). The
// state file keeps what is held across a restart.
func TestVRFReleased(t *testing.T) {
	dir := t.TempDir()
	n, err := New(&config.Config{Node: "n1", StateDir: dir}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	set := func(names ...string) map[string]uint32 {
		t.Helper()
		var nets []config.Network
		for _, nm := range names {
			nets = append(nets, config.Network{Name: nm})
		}
		if err := n.SetDesired(ctx, nets, nil); err != nil {
			t.Fatal(err)
		}
		got := map[string]uint32{}
		for _, nw := range nets {
			got[nw.Name] = nw.VRF
		}
		return got
	}
	if got := set("a", "b", "c"); got["a"] != 1 || got["b"] != 2 || got["c"] != 3 {
		t.Fatalf("VRFs %v, want a 1, b 2, c 3", got)
	}
	// b deleted: its id is free for the next network.
	set("a", "c")
	if _, held := n.st.NetVRFs["b"]; held {
		t.Errorf("b's VRF still held after its network was deleted: %v", n.st.NetVRFs)
	}
	if got := set("a", "c", "d"); got["d"] != 2 {
		t.Errorf("d got VRF %d, want b's released 2", got["d"])
	}
	// c deleted while a pod is attached to it: kept until the pod goes.
	n.st.Attachments = append(n.st.Attachments, &Attachment{ContainerID: "x", IfName: "eth0", Network: "c", VRF: 3})
	set("a", "d")
	if got := set("a", "d", "e"); got["e"] != 4 || n.st.NetVRFs["c"] != 3 {
		t.Errorf("e got VRF %d (want 4: c's 3 is in use), held %v", got["e"], n.st.NetVRFs)
	}
	if got := set("a", "d", "e", "c"); got["c"] != 3 {
		t.Errorf("c back while its pod is attached: VRF %d, want its 3", got["c"])
	}
	n.st.Attachments = nil // the pod's DEL
	set("a", "d", "e")
	if _, held := n.st.NetVRFs["c"]; held {
		t.Errorf("c's VRF held after its last pod went: %v", n.st.NetVRFs)
	}

	// A restart reads the ids back.
	again, err := New(&config.Config{Node: "n1", StateDir: dir}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if v := again.st.NetVRFs; len(v) != 3 || v["a"] != 1 || v["d"] != 2 || v["e"] != 4 {
		t.Errorf("after a restart: %v, want a 1, d 2, e 4", v)
	}
}

// A failed ADD's CNI error becomes the Programmed=False reason.
func TestPortFailure(t *testing.T) {
	if f := portFailure(&cniapi.Response{}); f != nil {
		t.Errorf("success: %+v, want nil", f)
	}
	for _, tc := range []struct {
		resp   *cniapi.Response
		reason string
	}{
		{cniErr(cniapi.CodeInvalidConfig, msgUnknownNetwork, nil), ReasonNetworkUnknown},
		{cniErr(cniapi.CodeInvalidConfig, "mtu too large", nil), ReasonInvalidConfig},
		{cniErr(cniapi.CodeIOFailure, "cannot make the pod's interface", nil), ReasonAttachFailed},
		{cniErr(cniapi.CodeDataplane, "the dataplane refused the pod's port", nil), ReasonDataplaneRefused},
		{cniErr(cniapi.CodeTryAgainLater, "the dataplane is unreachable", nil), ReasonNotReady},
		{cniErr(cniapi.CodeNoAddress, "the Port has no address of its network", nil), ReasonAddress},
		{cniErr(cniapi.CodeInvalidEnvironment, "pod netns not found", nil), ReasonNetnsNotFound},
		{cniErr(cniapi.CodeInvalidRequest, "invalid interface name", nil), ReasonInvalidRequest},
	} {
		f := portFailure(tc.resp)
		if f == nil || f.Reason != tc.reason || f.Message != tc.resp.Error.Msg {
			t.Errorf("%s: %+v, want reason %s", tc.resp.Error.Msg, f, tc.reason)
		}
	}
	f := portFailure(cniErr(cniapi.CodeDataplane, "the dataplane refused", errTest("no room")))
	if f.Message != "the dataplane refused: no room" {
		t.Errorf("message %q, want the details after the summary", f.Message)
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }
