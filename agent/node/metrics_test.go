package node

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

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
