package node

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/filament-net/filament/agent/cniapi"
	"github.com/filament-net/filament/agent/config"
)

// In Kubernetes mode the networks have no pod block (kube-manager's IPAM
// gives the addresses): a scrape reports their attachments and no
// capacity, where it used to panic and take the agent down (found by
// agent/e2e TestKubeAPIServerOutage).
func TestMetricsKubernetesNetwork(t *testing.T) {
	cfg, err := config.Parse([]byte("node: node1\nmode: kubernetes\nstate_dir: " + t.TempDir() +
		"\nfabric: {underlay_ip: 192.168.100.1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	nw := config.Network{Name: "default", VNI: 44, Encap: config.EncapVXLAN,
		Subnet: netip.MustParsePrefix("10.44.0.0/16"), Gateway: netip.MustParseAddr("10.44.0.1")}
	if err := n.SetDesired(context.Background(), []config.Network{nw}, nil); err != nil {
		t.Fatal(err)
	}
	want := `# HELP filament_agent_attachments Pod interfaces attached, by network.
# TYPE filament_agent_attachments gauge
filament_agent_attachments{network="default"} 0
`
	if err := testutil.CollectAndCompare(n, strings.NewReader(want), "filament_agent_attachments", "filament_agent_ipam_capacity"); err != nil {
		t.Error(err)
	}
}

// latePort is a PortSource whose one Port appears when arrive is closed.
type latePort struct{ arrive chan struct{} }

func (p *latePort) Port(*cniapi.Request) (Assigned, bool) {
	select {
	case <-p.arrive:
		return Assigned{Network: "red", IPv4: netip.MustParseAddr("10.10.0.5")}, true
	default:
		return Assigned{}, false
	}
}

func (p *latePort) Programmed(*cniapi.Request, *PortFailure) {}

// An ADD waiting for its pod's Port shows in
// filament_agent_adds_waiting_for_port while it waits, and only then.
func TestPortWaitsGauge(t *testing.T) {
	n, err := New(&config.Config{Node: "n1", StateDir: t.TempDir()}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	src := &latePort{arrive: make(chan struct{})}
	n.SetPortSource(src)
	waiting := func(v int) error {
		return testutil.CollectAndCompare(n, strings.NewReader(fmt.Sprintf(`# HELP filament_agent_adds_waiting_for_port Kubernetes mode: ADDs now waiting for their pod's Port to reach the agent's cache.
# TYPE filament_agent_adds_waiting_for_port gauge
filament_agent_adds_waiting_for_port %d
`, v)), "filament_agent_adds_waiting_for_port")
	}
	if err := waiting(0); err != nil {
		t.Fatalf("before any ADD: %v", err)
	}
	done := make(chan *cniapi.Response, 1)
	go func() {
		done <- n.Add(context.Background(), &cniapi.Request{ContainerID: "c1", IfName: "eth0", TimeoutMillis: 60_000})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for err := waiting(1); err != nil; err = waiting(1) {
		if time.Now().After(deadline) {
			t.Fatalf("the ADD never showed as waiting for its Port: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(src.arrive)
	// Past the wait (then refused: the node has no network red).
	if r := <-done; r.Error == nil || r.Error.Msg != msgUnknownNetwork {
		t.Fatalf("ADD after its Port came: %+v, want it past the wait to the network check", r)
	}
	if err := waiting(0); err != nil {
		t.Errorf("after the ADD: %v", err)
	}
}
