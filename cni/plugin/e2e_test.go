package plugin_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filament-net/filament/agent/cniapi"
)

// These tests run the built filament-cni as kubelet does (environment and
// stdin) against a fake agent on a real unix socket (or TCP loopback): a
// contract test of the plugin.

func TestAddResultPerVersion(t *testing.T) {
	for _, v := range []string{"1.1.0", "1.0.0", "0.4.0", "0.3.1", "0.3.0"} {
		t.Run(v, func(t *testing.T) {
			a := startAgent(t, "unix", nil)
			inv := addInvocation(t, netconf(t, v, unixSection(t, a.Socket, map[string]any{"mtu": 1400, "mode": "veth"}), nil))
			o := run(t, inv)
			o.ok(t)

			req := a.only(t, cniapi.PathAdd)
			want := cniapi.Request{
				Version: cniapi.Version, ContainerID: "c0ffee", Netns: inv.Netns, IfName: "eth0",
				PodName: "web-0", PodNamespace: "shop", PodUID: "6f1e4c2a-0000-4000-8000-000000000001",
				ClusterName: "k8s", CNINetwork: "filament-net", Mode: "veth", MTU: 1400,
				TimeoutMillis: req.TimeoutMillis,
			}
			if !reflect.DeepEqual(req, want) {
				t.Errorf("request\n got %+v\nwant %+v", req, want)
			}
			if req.TimeoutMillis <= 0 || req.TimeoutMillis > 200 {
				t.Errorf("timeoutMillis %d, want 1..200 (poll-timeout 200ms)", req.TimeoutMillis)
			}

			var res map[string]any
			if err := json.Unmarshal(o.Stdout, &res); err != nil {
				t.Fatalf("result is not JSON: %v: %s", err, o.Stdout)
			}
			if res["cniVersion"] != v {
				t.Errorf("cniVersion %v, want %s", res["cniVersion"], v)
			}
			ifs := res["interfaces"].([]any)
			if len(ifs) != 1 {
				t.Fatalf("interfaces %v", ifs)
			}
			in := ifs[0].(map[string]any)
			if in["name"] != "eth0" || in["mac"] != "02:fe:00:00:00:05" || in["sandbox"] != inv.Netns {
				t.Errorf("interface %v", in)
			}
			ips := res["ips"].([]any)
			if len(ips) != 2 {
				t.Fatalf("ips %v", ips)
			}
			ip4, ip6 := ips[0].(map[string]any), ips[1].(map[string]any)
			if ip4["address"] != "10.1.0.5/24" || ip4["gateway"] != "10.1.0.1" || ip4["interface"] != 0.0 {
				t.Errorf("ips[0] %v", ip4)
			}
			if ip6["address"] != "fd00:1::5/64" || ip6["gateway"] != "fd00:1::1" {
				t.Errorf("ips[1] %v", ip6)
			}
			routes := res["routes"].([]any)
			if len(routes) != 2 || routes[0].(map[string]any)["dst"] != "0.0.0.0/0" || routes[0].(map[string]any)["gw"] != "10.1.0.1" ||
				routes[1].(map[string]any)["dst"] != "::/0" {
				t.Errorf("routes %v", routes)
			}
			if strings.HasPrefix(v, "0.") {
				// CNI 0.3/0.4: ips carry "version", interfaces no mtu.
				if ip4["version"] != "4" || ip6["version"] != "6" {
					t.Errorf("0.x ips want version 4 and 6: %v %v", ip4, ip6)
				}
				if _, ok := in["mtu"]; ok {
					t.Errorf("0.x interface has mtu: %v", in)
				}
			} else {
				if _, ok := ip4["version"]; ok {
					t.Errorf("1.x ips have no version: %v", ip4)
				}
				if in["mtu"] != 1450.0 {
					t.Errorf("1.x interface mtu %v, want 1450", in["mtu"])
				}
			}
			if _, ok := res["dns"]; ok && !strings.HasPrefix(v, "0.") {
				// (the 0.x result type prints an empty "dns": {}, which
				// those versions allow)
				t.Errorf("empty dns printed: %s", o.Stdout)
			}
		})
	}
}

func TestAddAgentDown(t *testing.T) {
	for _, tc := range []struct{ name, socket string }{
		{"no socket", filepath.Join(shortDir(t), "missing.sock")},
		{"stale socket", staleSocket(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := run(t, addInvocation(t, netconf(t, "1.1.0", unixSection(t, tc.socket, nil), nil)))
			e := o.err(t)
			if e.Code != cniapi.CodeTryAgainLater {
				t.Errorf("code %d, want %d: %+v", e.Code, cniapi.CodeTryAgainLater, e)
			}
			contains(t, "details", e.Details, "unix:"+tc.socket, "unreachable", "3 attempt(s)", "budget 600ms")
			contains(t, "msg", e.Msg, "not running")
			// Attempts at 0, 200 and 400 ms, each failing at once: about
			// 400 ms, and never more than 600 ms (plus process start).
			if o.Took < 400*time.Millisecond || o.Took > 1500*time.Millisecond {
				t.Errorf("ADD took %s, want 400ms..600ms (+ process start)", o.Took)
			}
		})
	}
}

func TestAddAgentHangs(t *testing.T) {
	// The agent accepts and never answers in time: every attempt times out
	// at poll-timeout, three of them: 600 ms.
	release := make(chan struct{})
	defer close(release)
	a := startAgent(t, "unix", func(n int, path string, req *cniapi.Request) *cniapi.Response {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		return nil
	})
	o := run(t, addInvocation(t, netconf(t, "1.1.0", unixSection(t, a.Socket, nil), nil)))
	e := o.err(t)
	if e.Code != cniapi.CodeTryAgainLater {
		t.Errorf("code %d: %+v", e.Code, e)
	}
	contains(t, "details", e.Details, "3 attempt(s)", "deadline exceeded")
	contains(t, "msg", e.Msg, "did not answer in time")
	if o.Took < 600*time.Millisecond || o.Took > 1800*time.Millisecond {
		t.Errorf("ADD took %s, want about 600ms", o.Took)
	}
	if n := len(a.requests()); n != 3 {
		t.Errorf("agent saw %d requests, want 3", n)
	}
}

func TestAddTryAgainLaterThenSuccess(t *testing.T) {
	a := startAgent(t, "unix", func(n int, path string, req *cniapi.Request) *cniapi.Response {
		if n <= 2 {
			return &cniapi.Response{Error: &cniapi.Error{Code: cniapi.CodeTryAgainLater, Msg: "pod port not known yet"}}
		}
		return nil
	})
	o := run(t, addInvocation(t, netconf(t, "1.1.0", unixSection(t, a.Socket, map[string]any{"poll-retries": 5}), nil)))
	o.ok(t)
	rs := a.requests()
	if len(rs) != 3 {
		t.Fatalf("agent saw %d requests, want 3", len(rs))
	}
	for _, r := range rs {
		if r.Req.ContainerID != "c0ffee" || r.Path != cniapi.PathAdd {
			t.Errorf("request %+v", r)
		}
	}
	// The third attempt starts when the second's slot ends: 400 ms.
	if o.Took < 400*time.Millisecond || o.Took > 1500*time.Millisecond {
		t.Errorf("ADD took %s, want about 400ms", o.Took)
	}
	var res struct{ IPs []struct{ Address string } }
	json.Unmarshal(o.Stdout, &res)
	if len(res.IPs) == 0 || res.IPs[0].Address != "10.1.0.5/24" {
		t.Errorf("result %s", o.Stdout)
	}
}

func TestAddTryAgainLaterExhausted(t *testing.T) {
	a := startAgent(t, "unix", func(n int, path string, req *cniapi.Request) *cniapi.Response {
		return &cniapi.Response{Error: &cniapi.Error{Code: cniapi.CodeTryAgainLater, Msg: "pod port not known yet"}}
	})
	o := run(t, addInvocation(t, netconf(t, "1.1.0", unixSection(t, a.Socket, nil), nil)))
	e := o.err(t)
	if e.Code != cniapi.CodeTryAgainLater {
		t.Errorf("code %d", e.Code)
	}
	contains(t, "details", e.Details, "still not ready", "pod port not known yet", "3 attempt(s)")
	contains(t, "msg", e.Msg, "not ready")
	if n := len(a.requests()); n != 3 {
		t.Errorf("agent saw %d requests, want 3", n)
	}
}

func TestAddAgentRefuses(t *testing.T) {
	a := startAgent(t, "unix", func(n int, path string, req *cniapi.Request) *cniapi.Response {
		return &cniapi.Response{Error: &cniapi.Error{Code: cniapi.CodeNoAddress, Msg: "address block exhausted", Details: "network blue: 10.9.0.0/30"}}
	})
	o := run(t, addInvocation(t, netconf(t, "1.0.0", unixSection(t, a.Socket, nil), nil)))
	e := o.err(t)
	if e.Code != cniapi.CodeNoAddress || !strings.Contains(e.Msg, "address block exhausted") || e.Details != "network blue: 10.9.0.0/30" {
		t.Errorf("error %+v", e)
	}
	if n := len(a.requests()); n != 1 {
		t.Errorf("agent saw %d requests, want 1 (a refusal is not retried)", n)
	}
}

func TestAddBadResult(t *testing.T) {
	a := startAgent(t, "unix", func(n int, path string, req *cniapi.Request) *cniapi.Response {
		r := agentResult(req)
		r.IPs[0].Interface = 3
		return &cniapi.Response{Result: r}
	})
	e := run(t, addInvocation(t, netconf(t, "1.1.0", unixSection(t, a.Socket, nil), nil))).err(t)
	if e.Code != 999 || !strings.Contains(e.Details, "interface 3 out of range") {
		t.Errorf("error %+v", e)
	}
}

func TestDel(t *testing.T) {
	t.Run("agent gone", func(t *testing.T) {
		for _, socket := range []string{filepath.Join(shortDir(t), "missing.sock"), staleSocket(t)} {
			// A long budget: DEL must not spend it when no agent runs.
			sec := unixSection(t, socket, map[string]any{"poll-timeout": 2, "poll-retries": 5})
			inv := addInvocation(t, netconf(t, "1.1.0", sec, nil))
			inv.Command = "DEL"
			o := run(t, inv)
			o.ok(t)
			if o.Took > time.Second {
				t.Errorf("DEL with no agent took %s", o.Took)
			}
			log, _ := os.ReadFile(sec["log-file"].(string))
			contains(t, "log", string(log), "no agent is running")
		}
	})
	t.Run("netns gone", func(t *testing.T) {
		a := startAgent(t, "unix", nil)
		inv := addInvocation(t, netconf(t, "1.1.0", unixSection(t, a.Socket, nil), nil))
		inv.Command, inv.Netns = "DEL", filepath.Join(t.TempDir(), "gone")
		run(t, inv).ok(t)
		req := a.only(t, cniapi.PathDel)
		if req.Netns != "" || req.ContainerID != "c0ffee" || req.IfName != "eth0" || req.PodUID == "" {
			t.Errorf("request %+v", req)
		}
	})
	t.Run("no netns", func(t *testing.T) {
		a := startAgent(t, "unix", nil)
		inv := addInvocation(t, netconf(t, "1.1.0", unixSection(t, a.Socket, nil), nil))
		inv.Command, inv.Netns = "DEL", ""
		run(t, inv).ok(t)
		if req := a.only(t, cniapi.PathDel); req.Netns != "" {
			t.Errorf("request %+v", req)
		}
	})
	t.Run("netns still there", func(t *testing.T) {
		a := startAgent(t, "unix", nil)
		inv := addInvocation(t, netconf(t, "0.3.1", unixSection(t, a.Socket, nil), nil))
		inv.Command = "DEL"
		run(t, inv).ok(t)
		if req := a.only(t, cniapi.PathDel); req.Netns != inv.Netns {
			t.Errorf("request %+v", req)
		}
	})
	t.Run("unknown attachment", func(t *testing.T) {
		a := startAgent(t, "unix", func(n int, path string, req *cniapi.Request) *cniapi.Response {
			return &cniapi.Response{Error: &cniapi.Error{Code: cniapi.CodeUnknownContainer, Msg: "no such attachment"}}
		})
		inv := addInvocation(t, netconf(t, "1.1.0", unixSection(t, a.Socket, nil), nil))
		inv.Command = "DEL"
		run(t, inv).ok(t)
		run(t, inv).ok(t) // and again: DEL is idempotent
	})
	t.Run("agent refuses", func(t *testing.T) {
		a := startAgent(t, "unix", func(n int, path string, req *cniapi.Request) *cniapi.Response {
			return &cniapi.Response{Error: &cniapi.Error{Code: cniapi.CodeDataplane, Msg: "dataplane unreachable"}}
		})
		inv := addInvocation(t, netconf(t, "1.1.0", unixSection(t, a.Socket, nil), nil))
		inv.Command = "DEL"
		if e := run(t, inv).err(t); e.Code != cniapi.CodeDataplane {
			t.Errorf("error %+v", e)
		}
	})
}

// attachments is an agent that keeps attachments keyed as the contract
// says, by (containerID, ifName): the rule that keeps a late DEL of a pod's
// old sandbox from removing its new sandbox's attachment.
type attachments struct {
	mu sync.Mutex
	m  map[cniapi.Attachment]string // -> pod UID
}

func (s *attachments) handle(n int, path string, req *cniapi.Request) *cniapi.Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := cniapi.Attachment{ContainerID: req.ContainerID, IfName: req.IfName}
	switch path {
	case cniapi.PathAdd:
		s.m[k] = req.PodUID
	case cniapi.PathDel:
		delete(s.m, k)
	}
	return nil
}

func TestDelNeverRemovesNewerSandbox(t *testing.T) {
	s := &attachments{m: map[cniapi.Attachment]string{}}
	a := startAgent(t, "unix", s.handle)
	conf := netconf(t, "1.1.0", unixSection(t, a.Socket, nil), nil)
	old := addInvocation(t, conf)
	old.ContainerID = "sandbox-old"
	run(t, old).ok(t)
	// The pod's sandbox is recreated (same pod, same name, same UID) before
	// kubelet's DEL of the old one arrives.
	newer := addInvocation(t, conf)
	newer.ContainerID = "sandbox-new"
	run(t, newer).ok(t)
	old.Command = "DEL"
	run(t, old).ok(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[cniapi.Attachment{ContainerID: "sandbox-new", IfName: "eth0"}]; !ok || len(s.m) != 1 {
		t.Errorf("attachments after the old sandbox's DEL: %v", s.m)
	}
}

func TestCheck(t *testing.T) {
	for _, v := range []string{"1.1.0", "0.4.0"} {
		t.Run(v, func(t *testing.T) {
			a := startAgent(t, "unix", nil)
			sec := unixSection(t, a.Socket, nil)
			add := addInvocation(t, netconf(t, v, sec, nil))
			o := run(t, add)
			o.ok(t)
			var prev map[string]any
			json.Unmarshal(o.Stdout, &prev)

			check := add
			check.Command = "CHECK"
			check.Stdin = netconf(t, v, sec, map[string]any{"prevResult": prev})
			run(t, check).ok(t)
			rs := a.requests()
			if len(rs) != 2 || rs[1].Path != cniapi.PathCheck {
				t.Fatalf("agent saw %v", paths(rs))
			}
			want := agentResult(&rs[0].Req)
			if v == "0.4.0" {
				want.Interfaces[0].MTU = 0 // a 0.4.0 result has no interface MTU
			}
			if got := rs[1].Req.Prev; !reflect.DeepEqual(got, want) {
				t.Errorf("prevResult sent to the agent\n got %+v\nwant %+v", got, want)
			}
		})
	}
	t.Run("agent says no", func(t *testing.T) {
		a := startAgent(t, "unix", func(n int, path string, req *cniapi.Request) *cniapi.Response {
			return &cniapi.Response{Error: &cniapi.Error{Code: cniapi.CodeUnknownContainer, Msg: "no such attachment"}}
		})
		add := addInvocation(t, nil)
		add.Command = "CHECK"
		add.Stdin = netconf(t, "1.1.0", unixSection(t, a.Socket, nil), map[string]any{"prevResult": map[string]any{
			"cniVersion": "1.1.0", "interfaces": []any{map[string]any{"name": "eth0"}},
			"ips": []any{map[string]any{"interface": 0, "address": "10.1.0.5/24"}},
		}})
		if e := run(t, add).err(t); e.Code != cniapi.CodeUnknownContainer {
			t.Errorf("error %+v", e)
		}
	})
	t.Run("no prevResult", func(t *testing.T) {
		a := startAgent(t, "unix", nil)
		add := addInvocation(t, netconf(t, "1.1.0", unixSection(t, a.Socket, nil), nil))
		add.Command = "CHECK"
		e := run(t, add).err(t)
		if e.Code != 7 || !strings.Contains(e.Details, "prevResult") {
			t.Errorf("error %+v", e)
		}
	})
	t.Run("0.3.1 has no CHECK", func(t *testing.T) {
		a := startAgent(t, "unix", nil)
		add := addInvocation(t, netconf(t, "0.3.1", unixSection(t, a.Socket, nil), nil))
		add.Command = "CHECK"
		if e := run(t, add).err(t); e.Code != 1 {
			t.Errorf("error %+v", e)
		}
		if n := len(a.requests()); n != 0 {
			t.Errorf("agent saw %d requests", n)
		}
	})
}

func TestStatus(t *testing.T) {
	status := func(socket string) outcome {
		return run(t, invocation{Command: "STATUS", Stdin: netconf(t, "1.1.0", unixSection(t, socket, nil), nil)})
	}
	t.Run("ok", func(t *testing.T) {
		a := startAgent(t, "unix", nil)
		status(a.Socket).ok(t)
		req := a.only(t, cniapi.PathStatus)
		if req.CNINetwork != "filament-net" || req.ContainerID != "" {
			t.Errorf("request %+v", req)
		}
	})
	t.Run("agent down", func(t *testing.T) {
		socket := filepath.Join(shortDir(t), "missing.sock")
		o := status(socket)
		e := o.err(t)
		if e.Code != 50 || !strings.Contains(e.Msg, "not available") || !strings.Contains(e.Details, socket) {
			t.Errorf("error %+v", e)
		}
		if o.Took > time.Second {
			t.Errorf("STATUS took %s: one attempt, no waiting", o.Took)
		}
	})
	t.Run("agent not ready", func(t *testing.T) {
		a := startAgent(t, "unix", func(n int, path string, req *cniapi.Request) *cniapi.Response {
			return &cniapi.Response{Error: &cniapi.Error{Code: cniapi.CodeTryAgainLater, Msg: "resynchronising with the dataplane"}}
		})
		e := status(a.Socket).err(t)
		if e.Code != 50 || !strings.Contains(e.Details, "resynchronising") {
			t.Errorf("error %+v", e)
		}
	})
	t.Run("agent degraded", func(t *testing.T) {
		a := startAgent(t, "unix", func(n int, path string, req *cniapi.Request) *cniapi.Response {
			return &cniapi.Response{Error: &cniapi.Error{Code: 51, Msg: "dataplane down"}}
		})
		if e := status(a.Socket).err(t); e.Code != 51 {
			t.Errorf("error %+v", e)
		}
	})
	t.Run("1.0.0 has no STATUS", func(t *testing.T) {
		a := startAgent(t, "unix", nil)
		o := run(t, invocation{Command: "STATUS", Stdin: netconf(t, "1.0.0", unixSection(t, a.Socket, nil), nil)})
		if e := o.err(t); e.Code != 1 {
			t.Errorf("error %+v", e)
		}
	})
}

func TestGC(t *testing.T) {
	a := startAgent(t, "unix", nil)
	valid := []map[string]string{{"containerID": "c1", "ifname": "eth0"}, {"containerID": "c2", "ifname": "net1"}}
	conf := netconf(t, "1.1.0", unixSection(t, a.Socket, nil), map[string]any{"cni.dev/valid-attachments": valid})
	run(t, invocation{Command: "GC", Stdin: conf}).ok(t)
	req := a.only(t, cniapi.PathGC)
	want := []cniapi.Attachment{{ContainerID: "c1", IfName: "eth0"}, {ContainerID: "c2", IfName: "net1"}}
	if !reflect.DeepEqual(req.Valid, want) || req.CNINetwork != "filament-net" {
		t.Errorf("request %+v", req)
	}

	// None valid: the agent is told so (an empty list, not a missing one).
	b := startAgent(t, "unix", nil)
	conf = netconf(t, "1.1.0", unixSection(t, b.Socket, nil), map[string]any{"cni.dev/valid-attachments": []any{}})
	run(t, invocation{Command: "GC", Stdin: conf}).ok(t)
	if req := b.only(t, cniapi.PathGC); len(req.Valid) != 0 || req.CNINetwork != "filament-net" {
		t.Errorf("request %+v", req)
	}

	// The agent down: GC fails (the runtime tries again later).
	conf = netconf(t, "1.1.0", unixSection(t, filepath.Join(shortDir(t), "missing.sock"), map[string]any{"poll-retries": 1}), nil)
	if e := run(t, invocation{Command: "GC", Stdin: conf}).err(t); e.Code != cniapi.CodeTryAgainLater {
		t.Errorf("error %+v", e)
	}
}

func TestVersion(t *testing.T) {
	o := run(t, invocation{Command: "VERSION"})
	o.ok(t)
	var v struct {
		CNIVersion        string   `json:"cniVersion"`
		SupportedVersions []string `json:"supportedVersions"`
	}
	if err := json.Unmarshal(o.Stdout, &v); err != nil {
		t.Fatal(err)
	}
	want := []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}
	if v.CNIVersion != "1.1.0" || !reflect.DeepEqual(v.SupportedVersions, want) {
		t.Errorf("VERSION %s", o.Stdout)
	}
	// An older version than we speak is refused.
	a := startAgent(t, "unix", nil)
	e := run(t, addInvocation(t, netconf(t, "0.2.0", unixSection(t, a.Socket, nil), nil))).err(t)
	if e.Code != 1 {
		t.Errorf("0.2.0: %+v", e)
	}
}

func TestBadConfigs(t *testing.T) {
	a := startAgent(t, "unix", nil)
	for _, tc := range []struct {
		name    string
		section map[string]any
		key     string
	}{
		{"bad mode", map[string]any{"mode": "macvlan"}, "filament.mode"},
		{"mtu too big", map[string]any{"mtu": 65000}, "filament.mtu"},
		{"zero poll-timeout", map[string]any{"poll-timeout": 0}, "filament.poll-timeout"},
		{"non-loopback vrouter-ip", map[string]any{"socket": nil, "vrouter-ip": "10.0.0.1", "vrouter-port": 9091}, "filament.vrouter-ip"},
		{"empty socket", map[string]any{"socket": ""}, "filament.socket"},
		{"bad log-level", map[string]any{"log-level": "loud"}, "filament.log-level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sec := unixSection(t, a.Socket, nil)
			for k, v := range tc.section {
				if v == nil {
					delete(sec, k)
				} else {
					sec[k] = v
				}
			}
			for _, cmd := range []string{"ADD", "DEL"} {
				inv := addInvocation(t, netconf(t, "1.1.0", sec, nil))
				inv.Command = cmd
				e := run(t, inv).err(t)
				if e.Code != 7 || !strings.HasPrefix(e.Details, tc.key+":") {
					t.Errorf("%s: error %+v, want code 7 naming %s", cmd, e, tc.key)
				}
			}
		})
	}
	if n := len(a.requests()); n != 0 {
		t.Errorf("agent saw %d requests for bad configs", n)
	}
}

func TestTCP(t *testing.T) {
	a := startAgent(t, "tcp", nil)
	port := a.Addr[strings.LastIndex(a.Addr, ":")+1:]
	sec := map[string]any{"vrouter-ip": "127.0.0.1", "vrouter-port": port, "poll-timeout": "200ms", "poll-retries": 3,
		"log-file": filepath.Join(t.TempDir(), "cni.log")}
	inv := addInvocation(t, netconf(t, "1.1.0", nil, map[string]any{"contrail": sec}))
	o := run(t, inv)
	o.ok(t)
	if req := a.only(t, cniapi.PathAdd); req.ContainerID != "c0ffee" {
		t.Errorf("request %+v", req)
	}
	inv.Command = "DEL"
	run(t, inv).ok(t)

	// Nobody on the port: ADD fails in its budget, DEL succeeds at once.
	sec["vrouter-port"] = freePort(t)
	inv = addInvocation(t, netconf(t, "1.1.0", nil, map[string]any{"contrail": sec}))
	o = run(t, inv)
	e := o.err(t)
	contains(t, "details", e.Details, fmt.Sprintf("tcp:127.0.0.1:%d", sec["vrouter-port"]), "connection refused")
	if o.Took > 1500*time.Millisecond {
		t.Errorf("ADD took %s", o.Took)
	}
	inv.Command = "DEL"
	run(t, inv).ok(t)
}

func TestLogFile(t *testing.T) {
	a := startAgent(t, "unix", nil)
	sec := unixSection(t, a.Socket, map[string]any{"log-level": "info", "config-dir": "/var/lib/contrail/ports/vm", "vif-type": "veth"})
	run(t, addInvocation(t, netconf(t, "1.1.0", sec, nil))).ok(t)
	b, err := os.ReadFile(sec["log-file"].(string))
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	contains(t, "log", log, "ADD done", `"containerID": "c0ffee"`, "10.1.0.5/24", "ignoring unknown key filament.vif-type")
	if strings.Contains(log, "DEBUG") || strings.Contains(log, "config-dir") {
		t.Errorf("info log has debug lines:\n%s", log)
	}

	// An unwritable log file does not fail the command.
	sec["log-file"] = "/proc/filament-cni.log"
	o := run(t, addInvocation(t, netconf(t, "1.1.0", sec, nil)))
	o.ok(t)
	contains(t, "stderr", string(o.Stderr), "cannot open the log file")
}

func TestMetaPlugin(t *testing.T) {
	a := startAgent(t, "unix", nil)
	for _, tc := range []struct {
		name, meta, ifName string
		args               map[string]any
		want               string
	}{
		{"primary, no meta-plugin", "", "eth0", nil, ""},
		{"no meta-plugin, other interface", "", "net1", nil, ""},
		{"multus primary", "multus", "eth0", nil, ""},
		{"multus secondary", "multus", "net1", nil, "filament-net"},
		{"multus cni-args", "multus", "net2", map[string]any{"cni": map[string]any{"network": "blue"}}, "blue"},
		{"cni-args without meta-plugin", "", "eth0", map[string]any{"cni": map[string]any{"network": "blue"}}, "blue"},
		{"unknown meta plugin", "genie", "net1", nil, "filament-net"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			extra := map[string]any{}
			if tc.args != nil {
				extra["args"] = tc.args
			}
			inv := addInvocation(t, netconf(t, "1.1.0", unixSection(t, a.Socket, map[string]any{"meta-plugin": tc.meta}), extra))
			inv.IfName = tc.ifName
			run(t, inv).ok(t)
			rs := a.requests()
			req := rs[len(rs)-1].Req
			if req.Network != tc.want || req.IfName != tc.ifName {
				t.Errorf("network %q ifName %q, want %q %q", req.Network, req.IfName, tc.want, tc.ifName)
			}
		})
	}
}
