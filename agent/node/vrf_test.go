package node

import (
	"context"
	"errors"
	"net/netip"
	"strings"
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

// A failed ADD's CNI error becomes the Programmed=False reason: by its
// kind where one is set (an unknown network), else by its CNI code.
func TestPortFailure(t *testing.T) {
	if f := portFailure(nil); f != nil {
		t.Errorf("success: %+v, want nil", f)
	}
	n, err := New(&config.Config{Node: "n1", StateDir: t.TempDir()}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	_, unknown := n.add(context.Background(), &cniapi.Request{ContainerID: "c1", IfName: "eth0", Network: "ghost"}, nil)
	if !errors.Is(unknown, errUnknownNetwork) {
		t.Fatalf("ADD on a network the node does not have: %v, want errUnknownNetwork", unknown)
	}
	if e := response(nil, unknown).Error; e.Code != cniapi.CodeInvalidConfig || e.Msg != "unknown network" ||
		e.Details != `network "ghost" is not in the agent's configuration` {
		t.Errorf("unknown network as filament-cni hears it: %+v", e)
	}
	for _, tc := range []struct {
		err    *cmdError
		reason string
	}{
		{unknown.(*cmdError), ReasonNetworkUnknown},
		{&cmdError{code: cniapi.CodeInvalidRequest, msg: "attachment exists with another address", kind: errAddressChanged}, ReasonAddressChanged},
		// The message alone does not make it one: the kind does.
		{failed(cniapi.CodeInvalidConfig, msgUnknownNetwork, nil), ReasonInvalidConfig},
		{failed(cniapi.CodeInvalidConfig, "mtu too large", nil), ReasonInvalidConfig},
		{failed(cniapi.CodeIOFailure, "cannot make the pod's interface", nil), ReasonAttachFailed},
		{failed(cniapi.CodeDataplane, "the dataplane refused the pod's port", nil), ReasonDataplaneRefused},
		{failed(cniapi.CodeTryAgainLater, "the dataplane is unreachable", nil), ReasonNotReady},
		{failed(cniapi.CodeNoAddress, "the Port has no address of its network", nil), ReasonAddress},
		{failed(cniapi.CodeInvalidEnvironment, "pod netns not found", nil), ReasonNetnsNotFound},
		{failed(cniapi.CodeInvalidRequest, "invalid interface name", nil), ReasonInvalidRequest},
	} {
		msg := tc.err.msg
		if tc.err.details != nil {
			msg += ": " + tc.err.details.Error()
		}
		if f := portFailure(tc.err); f == nil || f.Reason != tc.reason || f.Message != msg {
			t.Errorf("%s: %+v, want reason %s, message %q", tc.err.msg, f, tc.reason, msg)
		}
	}
	f := portFailure(failed(cniapi.CodeDataplane, "the dataplane refused", errTest("no room")))
	if f.Message != "the dataplane refused: no room" {
		t.Errorf("message %q, want the details after the summary", f.Message)
	}
}

// Kubernetes mode: a repeated ADD whose Port gives other addresses than
// the attachment has is refused (errAddressChanged), naming both; the
// same ones, or an IPv6 address the attachment does not have yet (its
// network became dual stack), are not a change.
func TestSamePortAddresses(t *testing.T) {
	ip := netip.MustParseAddr
	nw := &config.Network{Name: "red", Subnet: netip.MustParsePrefix("10.30.0.0/16"),
		Subnet6: netip.MustParsePrefix("fd00:30::/64")}
	a := &Attachment{ContainerID: "c1", IfName: "eth0", Address: netip.MustParsePrefix("10.30.1.5/16"),
		Address6: netip.MustParsePrefix("fd00:30::5/64")}
	for _, tc := range []struct {
		name  string
		a     *Attachment
		given Assigned
		want  string // "": the same
	}{
		{"same", a, Assigned{IPv4: ip("10.30.1.5"), IPv6: ip("fd00:30::5")}, ""},
		{"IPv4 changed", a, Assigned{IPv4: ip("10.30.1.9"), IPv6: ip("fd00:30::5")},
			"(c1, eth0) is attached with 10.30.1.5 and fd00:30::5, its Port now gives 10.30.1.9 and fd00:30::5"},
		{"IPv6 changed", a, Assigned{IPv4: ip("10.30.1.5"), IPv6: ip("fd00:30::9")},
			"(c1, eth0) is attached with 10.30.1.5 and fd00:30::5, its Port now gives 10.30.1.5 and fd00:30::9"},
		{"IPv6 gone", a, Assigned{IPv4: ip("10.30.1.5")},
			"(c1, eth0) is attached with 10.30.1.5 and fd00:30::5, its Port now gives 10.30.1.5:"},
		{"no IPv6 yet", &Attachment{ContainerID: "c1", IfName: "eth0", Address: a.Address},
			Assigned{IPv4: ip("10.30.1.5"), IPv6: ip("fd00:30::5")}, ""},
	} {
		err := samePortAddresses(tc.a, nw, &tc.given)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want no error", tc.name, err)
		case tc.want != "" && (!errors.Is(err, errAddressChanged) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want errAddressChanged with %q", tc.name, err, tc.want)
		case tc.want != "":
			if e := response(nil, err).Error; e.Code != cniapi.CodeInvalidRequest || e.Msg != "attachment exists with another address" {
				t.Errorf("%s: filament-cni hears %+v", tc.name, e)
			}
		}
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }
