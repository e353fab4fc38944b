// Package plugin is filament-cni, the CNI plugin kubelet (or a meta plugin
// such as Multus) runs: it parses the network configuration, turns each CNI
// command into a cniapi.Request for the node's filament-agent, and turns the
// agent's answer into a CNI result of the version the runtime asked for.
// It keeps no state of its own; see docs/cni.md.
package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"go.uber.org/zap/zapcore"

	"github.com/filament-net/filament/agent/cniapi"
)

// Sections of the network configuration that hold the plugin's keys.
// "contrail" is read for configurations migrated from Tungsten Fabric's
// contrail-k8s-cni; when both are present "filament" wins.
const (
	SectionFilament = "filament"
	SectionContrail = "contrail"
)

// Defaults. Poll timeout x retries is how long ADD waits for the agent and
// the pod's port: 5 s x 15, Tungsten Fabric's defaults (75 s, under
// kubelet's 2 minute runtime request timeout).
const (
	DefaultClusterName = "k8s"
	DefaultVRouterPort = 9091
	DefaultPollTimeout = 5 * time.Second
	DefaultPollRetries = 15
	DefaultLogFile     = "/var/log/filament/cni.log"
	DefaultLogLevel    = zapcore.InfoLevel
	MinMTU, MaxMTU     = 576, 9600
	maxPollRetries     = 1000
)

// KnownMetaPlugins are the meta plugins whose delegate invocations Filament
// knows (docs/cni.md); another meta-plugin value is accepted and logged.
var KnownMetaPlugins = []string{"multus"}

// Config is one invocation's network configuration.
type Config struct {
	types.PluginConf

	// Section is the key the plugin's settings came from: "filament",
	// "contrail", or "" when there is neither (all defaults).
	Section string

	ClusterName string
	MetaPlugin  string
	// The agent: a unix socket (Socket) or HTTP on VRouterIP:VRouterPort.
	Socket      string
	VRouterIP   netip.Addr
	VRouterPort int
	ConfigDir   string
	PollTimeout time.Duration
	PollRetries int
	LogFile     string // "": standard error
	LogLevel    zapcore.Level
	Mode        string
	MTU         int

	// ArgsNetwork is args.cni.network (CNI's "args" convention; Multus puts
	// a network selection element's "cni-args" there): the virtual network
	// the runtime or the meta plugin asks for.
	ArgsNetwork string
	// Valid is cni.dev/valid-attachments (GC).
	Valid []types.GCAttachment

	// Notes are things worth a log line once the logger is up (unknown
	// keys, both sections present, compatibility mappings).
	Notes []Note
}

// Note is a log line about the configuration.
type Note struct {
	Level zapcore.Level
	Msg   string
}

func (c *Config) note(l zapcore.Level, format string, a ...any) {
	c.Notes = append(c.Notes, Note{l, fmt.Sprintf(format, a...)})
}

// Endpoint is how to reach the agent: ("unix", path) or ("tcp", ip:port).
func (c *Config) Endpoint() (network, address string) {
	if c.VRouterIP.IsValid() {
		return "tcp", netip.AddrPortFrom(c.VRouterIP, uint16(c.VRouterPort)).String()
	}
	return "unix", c.Socket
}

// Budget is the longest a command waits for the agent: poll-timeout x
// poll-retries.
func (c *Config) Budget() time.Duration { return c.PollTimeout * time.Duration(c.PollRetries) }

// configError is a CNI "invalid network configuration" error (code 7)
// naming the key at fault.
func configError(key, format string, a ...any) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, "invalid filament-cni configuration",
		key+": "+fmt.Sprintf(format, a...))
}

// ParseConfig parses and checks the network configuration from stdin.
// Every problem is a *types.Error with code 7 (ErrInvalidNetworkConfig)
// whose details start with the key at fault; unknown keys are allowed, as
// CNI requires, and noted.
func ParseConfig(stdin []byte) (*Config, error) {
	c := &Config{
		ClusterName: DefaultClusterName,
		Socket:      cniapi.DefaultSocket,
		PollTimeout: DefaultPollTimeout,
		PollRetries: DefaultPollRetries,
		LogFile:     DefaultLogFile,
		LogLevel:    DefaultLogLevel,
	}
	if err := json.Unmarshal(stdin, &c.PluginConf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "cannot decode the network configuration", err.Error())
	}
	var top struct {
		Filament json.RawMessage `json:"filament"`
		Contrail json.RawMessage `json:"contrail"`
		Args     json.RawMessage `json:"args"`
		Valid    json.RawMessage `json:"cni.dev/valid-attachments"`
		ValidOld json.RawMessage `json:"cni.dev/attachments"` // the spec's first spelling; libcni sends both
	}
	if err := json.Unmarshal(stdin, &top); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "cannot decode the network configuration", err.Error())
	}
	raw := top.Filament
	c.Section = SectionFilament
	switch {
	case isNull(top.Filament) && isNull(top.Contrail):
		c.Section, raw = "", nil
	case isNull(top.Filament):
		c.Section, raw = SectionContrail, top.Contrail
	case !isNull(top.Contrail):
		c.note(zapcore.WarnLevel, `both "filament" and "contrail" sections are present: using "filament", ignoring "contrail"`)
	}
	if raw != nil {
		if err := c.parseSection(raw); err != nil {
			return nil, err
		}
	}
	if err := c.parseArgs(top.Args); err != nil {
		return nil, err
	}
	valid := top.Valid
	if isNull(valid) {
		valid = top.ValidOld
	}
	if !isNull(valid) {
		if err := json.Unmarshal(valid, &c.Valid); err != nil {
			return nil, configError("cni.dev/valid-attachments", "want a list of {containerID, ifname}: %v", err)
		}
	}
	return c, nil
}

func isNull(m json.RawMessage) bool {
	t := bytes.TrimSpace(m)
	return len(t) == 0 || string(t) == "null"
}

// parseSection reads the keys of the "filament" (or "contrail") object.
func (c *Config) parseSection(raw json.RawMessage) error {
	sec := c.Section
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return configError(sec, "want an object: %v", err)
	}
	key := func(k string) string { return sec + "." + k }
	get := func(k string) (json.RawMessage, bool) {
		v, ok := keys[k]
		delete(keys, k)
		if ok && isNull(v) {
			return nil, false
		}
		return v, ok
	}
	str := func(k string, dst *string) error {
		v, ok := get(k)
		if !ok {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return configError(key(k), "want a string, got %s", v)
		}
		return nil
	}

	if err := str("cluster-name", &c.ClusterName); err != nil {
		return err
	}
	if c.ClusterName == "" {
		return configError(key("cluster-name"), "empty (omit it for %q)", DefaultClusterName)
	}
	if err := str("meta-plugin", &c.MetaPlugin); err != nil {
		return err
	}
	if err := str("config-dir", &c.ConfigDir); err != nil {
		return err
	}
	if c.ConfigDir != "" && !filepath.IsAbs(c.ConfigDir) {
		return configError(key("config-dir"), "%q is not an absolute path", c.ConfigDir)
	}
	if err := str("log-file", &c.LogFile); err != nil {
		return err
	}
	if c.LogFile != "" && !filepath.IsAbs(c.LogFile) {
		return configError(key("log-file"), "%q is not an absolute path (\"\" logs to standard error)", c.LogFile)
	}

	// The agent's address: socket, or vrouter-ip[:vrouter-port].
	socket, hasSocket := get("socket")
	ip, hasIP := get("vrouter-ip")
	port, hasPort := get("vrouter-port")
	if hasSocket && hasIP {
		return configError(key("socket"), "set either socket or vrouter-ip (and vrouter-port), not both")
	}
	if hasSocket {
		if err := json.Unmarshal(socket, &c.Socket); err != nil {
			return configError(key("socket"), "want a string, got %s", socket)
		}
		if c.Socket == "" {
			return configError(key("socket"), "empty: name the agent's socket, or omit socket for %s, or set vrouter-ip", cniapi.DefaultSocket)
		}
		if !filepath.IsAbs(c.Socket) {
			return configError(key("socket"), "%q is not an absolute path", c.Socket)
		}
	}
	if hasPort && !hasIP {
		return configError(key("vrouter-port"), "set without vrouter-ip")
	}
	if hasIP {
		var s string
		if err := json.Unmarshal(ip, &s); err != nil {
			return configError(key("vrouter-ip"), "want a string, got %s", ip)
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return configError(key("vrouter-ip"), "%q is not an IP address (want a loopback address such as 127.0.0.1)", s)
		}
		if !a.Unmap().IsLoopback() {
			return configError(key("vrouter-ip"), "%s is not a loopback address: the agent's CNI API is served on loopback only", s)
		}
		c.VRouterIP = a.Unmap()
		c.VRouterPort = DefaultVRouterPort
		if hasPort {
			n, err := intValue(port)
			if err != nil || n < 1 || n > 65535 {
				return configError(key("vrouter-port"), "want a port 1..65535, got %s", port)
			}
			c.VRouterPort = n
		}
		c.Socket = ""
	}

	if v, ok := get("poll-timeout"); ok {
		d, err := durationValue(v)
		if err != nil {
			return configError(key("poll-timeout"), "%v", err)
		}
		if d <= 0 {
			return configError(key("poll-timeout"), "must be above zero, got %s", v)
		}
		c.PollTimeout = d
	}
	if v, ok := get("poll-retries"); ok {
		n, err := intValue(v)
		if err != nil {
			return configError(key("poll-retries"), "want a whole number, got %s", v)
		}
		if n < 1 || n > maxPollRetries {
			return configError(key("poll-retries"), "want 1..%d, got %d", maxPollRetries, n)
		}
		c.PollRetries = n
	}
	if c.Budget() > time.Hour {
		return configError(key("poll-timeout"), "poll-timeout x poll-retries is %s, over an hour", c.Budget())
	}
	if v, ok := get("log-level"); ok {
		l, err := levelValue(v)
		if err != nil {
			return configError(key("log-level"), "%v", err)
		}
		c.LogLevel = l
	}
	if v, ok := get("mode"); ok {
		if err := json.Unmarshal(v, &c.Mode); err != nil {
			return configError(key("mode"), "want a string, got %s", v)
		}
		switch c.Mode {
		case cniapi.ModeVeth, cniapi.ModeTap, cniapi.ModeVhostUser, cniapi.ModeMemif:
		case "k8s":
			if sec != SectionContrail {
				return configError(key("mode"), "%q: want %s, %s, %s or %s", c.Mode, cniapi.ModeVeth, cniapi.ModeTap, cniapi.ModeVhostUser, cniapi.ModeMemif)
			}
			// Tungsten Fabric's "mode" is the orchestrator (k8s or
			// mesos); k8s is the only one there is here.
			c.note(zapcore.InfoLevel, `contrail.mode "k8s" is Tungsten Fabric's orchestrator mode: using the default attach mode (veth)`)
			c.Mode = ""
		default:
			return configError(key("mode"), "%q: want %s, %s, %s or %s", c.Mode, cniapi.ModeVeth, cniapi.ModeTap, cniapi.ModeVhostUser, cniapi.ModeMemif)
		}
	}
	if v, ok := get("mtu"); ok {
		n, err := intValue(v)
		if err != nil {
			return configError(key("mtu"), "want a whole number, got %s", v)
		}
		if n != 0 && (n < MinMTU || n > MaxMTU) {
			return configError(key("mtu"), "%d out of range: want %d..%d, or 0 for the network's", n, MinMTU, MaxMTU)
		}
		c.MTU = n
	}
	if c.MetaPlugin != "" && !slices.Contains(KnownMetaPlugins, c.MetaPlugin) {
		c.note(zapcore.InfoLevel, "meta-plugin %q is not one Filament knows (%s): taking its invocations as Multus's", c.MetaPlugin, strings.Join(KnownMetaPlugins, ", "))
	}
	if c.ConfigDir != "" {
		c.note(zapcore.DebugLevel, "config-dir %s: accepted for compatibility and unused (the agent keeps the attachments' state)", c.ConfigDir)
	}
	unknown := make([]string, 0, len(keys))
	for k := range keys {
		unknown = append(unknown, k)
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		c.note(zapcore.WarnLevel, "ignoring unknown key %s", key(k))
	}
	return nil
}

// parseArgs reads args.cni.network; the rest of "args" is not the plugin's.
func (c *Config) parseArgs(raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	var args struct {
		CNI map[string]json.RawMessage `json:"cni"`
	}
	if err := json.Unmarshal(raw, &args); err != nil {
		return configError("args", "want an object with an object \"cni\": %v", err)
	}
	if v, ok := args.CNI["network"]; ok && !isNull(v) {
		if err := json.Unmarshal(v, &c.ArgsNetwork); err != nil {
			return configError("args.cni.network", "want a string, got %s", v)
		}
	}
	return nil
}

// intValue reads a JSON whole number, or a string holding one (configs
// written by templates often quote numbers).
func intValue(v json.RawMessage) (int, error) {
	var f float64
	if err := json.Unmarshal(v, &f); err == nil {
		if f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
			return 0, fmt.Errorf("not a whole number")
		}
		return int(f), nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return 0, fmt.Errorf("not a number")
	}
	return strconv.Atoi(strings.TrimSpace(s))
}

// durationValue reads seconds as a JSON number (Tungsten Fabric's unit; a
// fraction is allowed: 0.2), or a string: a number of seconds or a Go
// duration ("200ms", "5s").
func durationValue(v json.RawMessage) (time.Duration, error) {
	var f float64
	if err := json.Unmarshal(v, &f); err == nil {
		return secs(f)
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return 0, fmt.Errorf("want seconds (a number) or a duration string such as \"200ms\", got %s", v)
	}
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return secs(f)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want seconds (a number) or a duration string such as \"200ms\", got %q", s)
	}
	return d, nil
}

func secs(f float64) (time.Duration, error) {
	if math.IsNaN(f) || f > float64(24*time.Hour/time.Second) {
		return 0, fmt.Errorf("%v seconds is out of range", f)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// levelValue reads a level name (debug, info, warn/warning, error), or a
// syslog severity as a number or numeric string (Tungsten Fabric's
// configurations carry "4"): 0-3 error, 4 warn, 5-6 info, 7 and up debug.
func levelValue(v json.RawMessage) (zapcore.Level, error) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		var n float64
		if err := json.Unmarshal(v, &n); err != nil {
			return 0, fmt.Errorf("want debug, info, warn or error, got %s", v)
		}
		s = strconv.FormatFloat(n, 'f', -1, 64)
	}
	switch t := strings.ToLower(strings.TrimSpace(s)); t {
	case "debug":
		return zapcore.DebugLevel, nil
	case "info":
		return zapcore.InfoLevel, nil
	case "warn", "warning":
		return zapcore.WarnLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	default:
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("want debug, info, warn or error (or a syslog severity 0-7), got %q", s)
		}
		switch {
		case n <= 3:
			return zapcore.ErrorLevel, nil
		case n == 4:
			return zapcore.WarnLevel, nil
		case n <= 6:
			return zapcore.InfoLevel, nil
		default:
			return zapcore.DebugLevel, nil
		}
	}
}
