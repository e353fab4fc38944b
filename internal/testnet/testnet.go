// Package testnet builds throw-away network topologies for tests: network
// namespaces as pods and nodes, veth pairs as cables. Everything it creates
// is removed in t.Cleanup, and every name carries a per-test prefix so that
// concurrent test binaries never collide.
package testnet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Net is one test's topology.
type Net struct {
	t      testing.TB
	prefix string
}

// New checks the test can build namespaces (root, iproute2) and returns a
// topology whose names start with a random 4-hex-digit prefix.
func New(t testing.TB) *Net {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("testnet: network namespaces need root (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("testnet: iproute2 missing: run make deps")
	}
	b := make([]byte, 2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return &Net{t: t, prefix: "ft" + hex.EncodeToString(b)}
}

// Name returns a kernel-safe name (<= 15 bytes) unique to this topology.
func (n *Net) Name(s string) string {
	name := n.prefix + s
	if len(name) > 15 {
		n.t.Fatalf("testnet: name %q longer than 15 bytes", name)
	}
	return name
}

// NS creates a namespace with loopback up.
func (n *Net) NS(s string) string {
	n.t.Helper()
	ns := n.Name(s)
	n.Must("ip", "netns", "add", ns)
	n.t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	n.MustIn(ns, "ip", "link", "set", "lo", "up")
	return ns
}

// Veth creates a veth pair a<->b, moves each end into its namespace ("" for
// the test's own) and sets both up. IPv6 is disabled on both ends so that
// router solicitations do not show up as traffic.
func (n *Net) Veth(a, nsA, b, nsB string) {
	n.t.Helper()
	n.Must("ip", "link", "add", a, "type", "veth", "peer", "name", b)
	n.t.Cleanup(func() { _ = exec.Command("ip", "link", "del", a).Run() })
	for _, e := range []struct{ dev, ns string }{{a, nsA}, {b, nsB}} {
		if e.ns != "" {
			n.Must("ip", "link", "set", e.dev, "netns", e.ns)
		}
		_ = n.In(e.ns, "sysctl", "-qw", "net.ipv6.conf."+e.dev+".disable_ipv6=1")
		n.MustIn(e.ns, "ip", "link", "set", e.dev, "up")
	}
}

// Must runs a command in the test's namespace and fails the test on error.
func (n *Net) Must(args ...string) string {
	n.t.Helper()
	return n.MustIn("", args...)
}

// MustIn runs a command in namespace ns ("" = the test's own).
func (n *Net) MustIn(ns string, args ...string) string {
	n.t.Helper()
	out, err := n.run(ns, args...)
	if err != nil {
		n.t.Fatalf("testnet: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// In runs a command in namespace ns and returns its error.
func (n *Net) In(ns string, args ...string) error {
	_, err := n.run(ns, args...)
	return err
}

// Output runs a command in namespace ns and returns combined output and error.
func (n *Net) Output(ns string, args ...string) (string, error) {
	return n.run(ns, args...)
}

func (n *Net) run(ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
