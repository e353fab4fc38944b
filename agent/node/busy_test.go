package node

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/filament-net/filament/agent/cniapi"
	"github.com/filament-net/filament/agent/config"
)

// onePort is a PortSource with one Port for every pod; it records what
// ADD reported.
type onePort struct {
	reported []*PortFailure
}

func (p *onePort) Port(*cniapi.Request) (Assigned, bool) {
	return Assigned{Network: "red", IPv4: netip.MustParseAddr("10.10.0.5")}, true
}

func (p *onePort) Programmed(_ *cniapi.Request, f *PortFailure) { p.reported = append(p.reported, f) }

// A retried ADD turned away because another command holds the pod
// interface must not write the Port's Programmed condition: the holder
// reports its own outcome, and a Programmed=True Port would otherwise
// flip to False/NotReady until the next ADD.
func TestBusyAddReportsNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{Node: "n1", StateDir: dir}
	cfg.Fabric.MTU = config.DefaultMTU
	n, err := New(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := n.SetDesired(ctx, []config.Network{{Name: "red", Encap: config.EncapVXLAN}}, nil); err != nil {
		t.Fatal(err)
	}
	src := &onePort{}
	n.SetPortSource(src)
	n.readyMu.Lock()
	n.ready = true
	n.readyMu.Unlock()
	netns := filepath.Join(dir, "netns")
	if err := os.WriteFile(netns, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	req := &cniapi.Request{ContainerID: "c1", IfName: "eth0", Netns: netns, TimeoutMillis: 200}

	// Another command holds the attachment.
	unlock, ok := n.keys.lock(ctx, attachKey{req.ContainerID, req.IfName}, nil)
	if !ok {
		t.Fatal("could not take the attachment's lock")
	}
	onRed := *req
	onRed.Network = "red"
	_, err = n.add(ctx, &onRed, nil)
	resp := n.Add(ctx, req)
	unlock()
	if !errors.Is(err, errBusy) {
		t.Errorf("add while the attachment is held: %v, want errBusy", err)
	}
	// What filament-cni hears is unchanged: try again later, the busy message.
	if resp == nil || resp.Error == nil || resp.Error.Code != cniapi.CodeTryAgainLater || resp.Error.Msg != msgBusy {
		t.Fatalf("ADD while the attachment is held: %+v, want %q", resp, msgBusy)
	}
	if len(src.reported) != 0 {
		t.Fatalf("a busy ADD reported %d outcomes (first %+v), want none", len(src.reported), src.reported[0])
	}

	// Not busy: the outcome is reported (here a failure, no dataplane).
	resp = n.Add(ctx, req)
	if resp == nil || resp.Error == nil {
		t.Fatalf("ADD without a dataplane succeeded: %+v", resp)
	}
	if len(src.reported) != 1 || src.reported[0] == nil {
		t.Fatalf("reported %+v, want one failure", src.reported)
	}
}
