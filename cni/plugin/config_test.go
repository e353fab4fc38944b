package plugin_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"go.uber.org/zap/zapcore"

	"github.com/filament-net/filament/agent/cniapi"
	"github.com/filament-net/filament/cni/plugin"
)

func TestParseConfig(t *testing.T) {
	type want struct {
		section, network, address, cluster, meta, mode string
		mtu                                            int
		timeout                                        time.Duration
		retries                                        int
		level                                          zapcore.Level
		logFile                                        string
		notes                                          []string
	}
	def := want{
		section: "filament", network: "unix", address: cniapi.DefaultSocket, cluster: "k8s",
		timeout: 5 * time.Second, retries: 15, level: zapcore.InfoLevel, logFile: plugin.DefaultLogFile,
	}
	with := func(f func(*want)) want { w := def; f(&w); return w }
	for _, tc := range []struct {
		name string
		conf string
		want want
	}{
		{"no section: defaults", `{}`, with(func(w *want) { w.section = "" })},
		{"empty section: defaults", `{"filament": {}}`, def},
		{"null section: defaults", `{"filament": null}`, with(func(w *want) { w.section = "" })},
		{"socket", `{"filament": {"socket": "/run/x/cni.sock"}}`, with(func(w *want) { w.address = "/run/x/cni.sock" })},
		{"vrouter-ip and port", `{"filament": {"vrouter-ip": "127.0.0.1", "vrouter-port": 9092}}`,
			with(func(w *want) { w.network, w.address = "tcp", "127.0.0.1:9092" })},
		{"vrouter-ip, default port", `{"filament": {"vrouter-ip": "127.0.0.2"}}`,
			with(func(w *want) { w.network, w.address = "tcp", "127.0.0.2:9091" })},
		{"IPv6 loopback, quoted port", `{"filament": {"vrouter-ip": "::1", "vrouter-port": "9091"}}`,
			with(func(w *want) { w.network, w.address = "tcp", "[::1]:9091" })},
		{"Tungsten Fabric's contrail section", `{"contrail": {
			"cluster-name": "prod", "meta-plugin": "multus", "vrouter-ip": "127.0.0.1", "vrouter-port": 9091,
			"config-dir": "/var/lib/contrail/ports/vm", "poll-timeout": 5, "poll-retries": 15,
			"log-file": "/var/log/contrail/cni/opencontrail.log", "log-level": "4", "mode": "k8s", "vif-type": "veth"}}`,
			with(func(w *want) {
				w.section, w.network, w.address, w.cluster, w.meta = "contrail", "tcp", "127.0.0.1:9091", "prod", "multus"
				w.level, w.logFile = zapcore.WarnLevel, "/var/log/contrail/cni/opencontrail.log"
				w.notes = []string{`orchestrator mode`, "config-dir /var/lib/contrail/ports/vm", "unknown key contrail.vif-type"}
			})},
		{"both sections: filament wins", `{"filament": {"mtu": 1400}, "contrail": {"mtu": "nonsense"}}`,
			with(func(w *want) { w.mtu = 1400; w.notes = []string{`using "filament", ignoring "contrail"`} })},
		{"filament keys", `{"filament": {"mode": "vhost-user", "mtu": 9000, "poll-timeout": "250ms", "poll-retries": 4, "log-level": "DEBUG", "log-file": ""}}`,
			with(func(w *want) {
				w.mode, w.mtu, w.timeout, w.retries, w.level, w.logFile = "vhost-user", 9000, 250*time.Millisecond, 4, zapcore.DebugLevel, ""
			})},
		{"fractional seconds", `{"filament": {"poll-timeout": 0.2}}`, with(func(w *want) { w.timeout = 200 * time.Millisecond })},
		{"seconds as a string", `{"filament": {"poll-timeout": "3"}}`, with(func(w *want) { w.timeout = 3 * time.Second })},
		{"mtu 0: the network's", `{"filament": {"mtu": 0}}`, def},
		{"syslog 7 is debug", `{"filament": {"log-level": 7}}`, with(func(w *want) { w.level = zapcore.DebugLevel })},
		{"warning", `{"filament": {"log-level": "warning"}}`, with(func(w *want) { w.level = zapcore.WarnLevel })},
		{"unknown meta-plugin", `{"filament": {"meta-plugin": "genie"}}`,
			with(func(w *want) { w.meta = "genie"; w.notes = []string{`meta-plugin "genie" is not one Filament knows`} })},
		{"unknown top-level keys", `{"ipam": {}, "runtimeConfig": {"mac": "x"}, "whatever": 1, "filament": {}}`, def},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := plugin.ParseConfig(conf(tc.conf))
			if err != nil {
				t.Fatal(err)
			}
			network, address := c.Endpoint()
			got := want{
				section: c.Section, network: network, address: address, cluster: c.ClusterName, meta: c.MetaPlugin,
				mode: c.Mode, mtu: c.MTU, timeout: c.PollTimeout, retries: c.PollRetries, level: c.LogLevel, logFile: c.LogFile,
			}
			w := tc.want
			w.notes = nil
			if !reflect.DeepEqual(got, w) {
				t.Errorf("\n got %+v\nwant %+v", got, w)
			}
			var notes []string
			for _, n := range c.Notes {
				notes = append(notes, n.Msg)
			}
			all := strings.Join(notes, "\n")
			if len(notes) != len(tc.want.notes) {
				t.Errorf("notes:\n%s\nwant %d", all, len(tc.want.notes))
			}
			for _, n := range tc.want.notes {
				if !strings.Contains(all, n) {
					t.Errorf("notes:\n%s\nwant one with %q", all, n)
				}
			}
		})
	}
}

// conf wraps the keys of a test into a network configuration.
func conf(body string) []byte {
	body = strings.TrimSpace(body)
	head := `{"cniVersion": "1.1.0", "name": "net", "type": "filament-cni"`
	if body == "{}" {
		return []byte(head + "}")
	}
	return []byte(head + ", " + body[1:])
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, conf, key, msg string
	}{
		{"section not an object", `{"filament": "yes"}`, "filament", "want an object"},
		{"empty socket", `{"filament": {"socket": ""}}`, "filament.socket", "empty"},
		{"relative socket", `{"filament": {"socket": "cni.sock"}}`, "filament.socket", "not an absolute path"},
		{"socket not a string", `{"filament": {"socket": 5}}`, "filament.socket", "want a string"},
		{"socket and vrouter-ip", `{"filament": {"socket": "/run/a.sock", "vrouter-ip": "127.0.0.1"}}`, "filament.socket", "not both"},
		{"port without ip", `{"filament": {"vrouter-port": 9091}}`, "filament.vrouter-port", "without vrouter-ip"},
		{"non-loopback ip", `{"filament": {"vrouter-ip": "192.168.1.1"}}`, "filament.vrouter-ip", "not a loopback"},
		{"unspecified ip", `{"filament": {"vrouter-ip": "0.0.0.0"}}`, "filament.vrouter-ip", "not a loopback"},
		{"hostname", `{"filament": {"vrouter-ip": "localhost"}}`, "filament.vrouter-ip", "not an IP address"},
		{"empty ip", `{"contrail": {"vrouter-ip": ""}}`, "contrail.vrouter-ip", "not an IP address"},
		{"port 0", `{"filament": {"vrouter-ip": "127.0.0.1", "vrouter-port": 0}}`, "filament.vrouter-port", "1..65535"},
		{"port too big", `{"filament": {"vrouter-ip": "127.0.0.1", "vrouter-port": 70000}}`, "filament.vrouter-port", "1..65535"},
		{"port fraction", `{"filament": {"vrouter-ip": "127.0.0.1", "vrouter-port": 90.5}}`, "filament.vrouter-port", "1..65535"},
		{"poll-timeout 0", `{"filament": {"poll-timeout": 0}}`, "filament.poll-timeout", "above zero"},
		{"poll-timeout negative", `{"filament": {"poll-timeout": -1}}`, "filament.poll-timeout", "above zero"},
		{"poll-timeout 0s", `{"filament": {"poll-timeout": "0s"}}`, "filament.poll-timeout", "above zero"},
		{"poll-timeout word", `{"filament": {"poll-timeout": "soon"}}`, "filament.poll-timeout", "duration"},
		{"poll-timeout bool", `{"filament": {"poll-timeout": true}}`, "filament.poll-timeout", "duration"},
		{"poll-retries 0", `{"filament": {"poll-retries": 0}}`, "filament.poll-retries", "1..1000"},
		{"poll-retries fraction", `{"filament": {"poll-retries": 1.5}}`, "filament.poll-retries", "whole number"},
		{"budget over an hour", `{"filament": {"poll-timeout": 60, "poll-retries": 61}}`, "filament.poll-timeout", "over an hour"},
		{"bad mode", `{"filament": {"mode": "macvlan"}}`, "filament.mode", `"macvlan"`},
		{"TF's k8s mode under filament", `{"filament": {"mode": "k8s"}}`, "filament.mode", `"k8s"`},
		{"TF's mesos mode", `{"contrail": {"mode": "mesos"}}`, "contrail.mode", `"mesos"`},
		{"mtu too small", `{"filament": {"mtu": 500}}`, "filament.mtu", "576..9600"},
		{"mtu too big", `{"filament": {"mtu": 9601}}`, "filament.mtu", "576..9600"},
		{"mtu negative", `{"filament": {"mtu": -1}}`, "filament.mtu", "576..9600"},
		{"mtu string", `{"filament": {"mtu": "big"}}`, "filament.mtu", "whole number"},
		{"log-level", `{"filament": {"log-level": "verbose"}}`, "filament.log-level", "debug, info, warn or error"},
		{"log-level negative", `{"filament": {"log-level": -2}}`, "filament.log-level", "debug, info, warn or error"},
		{"relative log-file", `{"filament": {"log-file": "cni.log"}}`, "filament.log-file", "absolute"},
		{"relative config-dir", `{"contrail": {"config-dir": "ports"}}`, "contrail.config-dir", "absolute"},
		{"empty cluster-name", `{"filament": {"cluster-name": ""}}`, "filament.cluster-name", "empty"},
		{"cluster-name number", `{"filament": {"cluster-name": 1}}`, "filament.cluster-name", "want a string"},
		{"meta-plugin number", `{"filament": {"meta-plugin": 1}}`, "filament.meta-plugin", "want a string"},
		{"args not an object", `{"args": [1]}`, "args", "want an object"},
		{"args.cni.network number", `{"args": {"cni": {"network": 5}}}`, "args.cni.network", "want a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plugin.ParseConfig(conf(tc.conf))
			var e *types.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v, want a *types.Error", err)
			}
			if e.Code != types.ErrInvalidNetworkConfig || !strings.HasPrefix(e.Details, tc.key+":") || !strings.Contains(e.Details, tc.msg) {
				t.Errorf("error code %d details %q, want code 7 with %q: ...%s...", e.Code, e.Details, tc.key, tc.msg)
			}
		})
	}
	if _, err := plugin.ParseConfig([]byte(`{"name": `)); err == nil {
		t.Error("truncated JSON accepted")
	}
	// CNI's own keys of the wrong type are a decoding failure (code 6).
	_, err := plugin.ParseConfig(conf(`{"cni.dev/valid-attachments": {"containerID": "x"}}`))
	var e *types.Error
	if !errors.As(err, &e) || e.Code != types.ErrDecodingFailure || !strings.Contains(e.Details, "cni.dev/valid-attachments") {
		t.Errorf("valid-attachments not a list: %v", err)
	}
}

func TestConfigInvocationKeys(t *testing.T) {
	c, err := plugin.ParseConfig(conf(`{"args": {"cni": {"network": "blue", "ips": ["10.0.0.1/24"]}, "other": 1},
		"cni.dev/attachments": [{"containerID": "old", "ifname": "eth0"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.ArgsNetwork != "blue" {
		t.Errorf("args.cni.network %q", c.ArgsNetwork)
	}
	// The spec's first spelling is read when the right one is absent ...
	if len(c.Valid) != 1 || c.Valid[0] != (types.GCAttachment{ContainerID: "old", IfName: "eth0"}) {
		t.Errorf("valid %+v", c.Valid)
	}
	// ... and loses to it when both are present (libcni sends both).
	c, err = plugin.ParseConfig(conf(`{"cni.dev/attachments": [{"containerID": "old", "ifname": "eth0"}],
		"cni.dev/valid-attachments": [{"containerID": "new", "ifname": "eth0"}, {"containerID": "new", "ifname": "net1"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Valid) != 2 || c.Valid[0].ContainerID != "new" {
		t.Errorf("valid %+v", c.Valid)
	}
	if c.Budget() != 75*time.Second {
		t.Errorf("default budget %s", c.Budget())
	}
}
