package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"go.uber.org/zap"

	"github.com/filament-net/filament/agent/cniapi"
)

// About is what the plugin prints when run without CNI_COMMAND.
const About = "filament-cni: attaches pods to the Filament vRouter through filament-agent (docs/cni.md)"

// Versions are the CNI versions the plugin speaks. CHECK needs 0.4.0 and
// up, STATUS and GC 1.1.0 (skel enforces both).
var Versions = version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

// CodePluginNotAvailable is CNI's STATUS error "the plugin cannot serve ADD".
const CodePluginNotAvailable = cniapi.CodeNotReady

// Plugin runs CNI commands; Stdout receives results, Stderr the log when
// there is no log file.
type Plugin struct {
	Stdout, Stderr io.Writer
}

// New returns a Plugin on the process's standard output and error.
func New() *Plugin { return &Plugin{Stdout: os.Stdout, Stderr: os.Stderr} }

// Funcs are the plugin's commands for skel.PluginMainFuncs.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, Status: p.Status, GC: p.GC}
}

// call is one invocation's context.
type call struct {
	cmd    string
	cfg    *Config
	log    *zap.Logger
	caller *Caller
	ctx    context.Context
	start  time.Time
	done   func()
}

func (p *Plugin) begin(cmd string, args *skel.CmdArgs) (*call, error) {
	cfg, err := ParseConfig(args.StdinData)
	if err != nil {
		fmt.Fprintf(p.Stderr, "filament-cni %s: %v\n", cmd, err)
		return nil, err
	}
	log, closeLog := NewLogger(cfg.LogFile, cfg.LogLevel, p.Stderr)
	log = log.With(zap.String("cmd", cmd))
	if args.ContainerID != "" {
		log = log.With(zap.String("containerID", args.ContainerID), zap.String("ifName", args.IfName))
	}
	for _, n := range cfg.Notes {
		log.Log(n.Level, "config: "+n.Msg, zap.String("network", cfg.Name))
	}
	network, address := cfg.Endpoint()
	api := cniapi.NewClient(network, address)
	// The budget bounds the whole call; a little more for the runtime's
	// own bookkeeping is not ours to spend.
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Budget()+time.Second)
	c := &call{
		cmd: cmd, cfg: cfg, log: log, ctx: ctx, start: time.Now(),
		caller: &Caller{API: api, Timeout: cfg.PollTimeout, Retries: cfg.PollRetries, Log: log},
	}
	c.done = func() {
		cancel()
		api.Close()
		_ = log.Sync()
		closeLog()
	}
	return c, nil
}

// finish logs the outcome and turns err into a CNI error.
func (c *call) finish(err error) error {
	defer c.done()
	took := zap.Duration("took", time.Since(c.start).Round(time.Microsecond))
	if err == nil {
		c.log.Info(c.cmd+" done", took)
		return nil
	}
	e := toCNIError(err)
	c.log.Error(c.cmd+" failed", took, zap.Uint("code", e.Code), zap.String("msg", e.Msg), zap.String("details", e.Details))
	return e
}

// toCNIError maps the plugin's errors to CNI errors: the agent's refusals
// keep their code; no usable answer in time is 11 (try again later); an
// answer that is not the contract's is 5 (I/O failure).
func toCNIError(err error) *types.Error {
	var te *types.Error
	var ae *cniapi.Error
	var ue *UnreachableError
	switch {
	case errors.As(err, &te):
		return te
	case errors.As(err, &ue):
		msg := "filament-agent did not answer in time"
		if errors.As(ue.Last, &ae) {
			msg = "filament-agent is not ready"
		} else if ue.Gone {
			msg = "filament-agent is not running"
		}
		return types.NewError(cniapi.CodeTryAgainLater, msg, ue.Error())
	case errors.As(err, &ae):
		return types.NewError(ae.Code, "filament-agent: "+ae.Msg, ae.Details)
	case errors.Is(err, cniapi.ErrBadResponse):
		return types.NewError(types.ErrIOFailure, "unexpected answer from the filament-agent endpoint", err.Error())
	default:
		return types.NewError(types.ErrInternal, err.Error(), "")
	}
}

func (p *Plugin) attachmentRequest(c *call, args *skel.CmdArgs) (*cniapi.Request, error) {
	pod, err := ParseCNIArgs(args.Args)
	if err != nil {
		return nil, err
	}
	req := NewRequest(c.cfg, args, pod)
	c.log.Info(c.cmd,
		zap.String("netns", args.Netns), zap.String("podNamespace", pod.Namespace), zap.String("podName", pod.Name), zap.String("podUID", pod.UID),
		zap.String("cniNetwork", req.CNINetwork), zap.String("virtualNetwork", req.Network),
		zap.String("agent", c.caller.API.Endpoint()))
	if c.cfg.MetaPlugin != "" {
		c.log.Debug("meta-plugin set", zap.String("meta-plugin", c.cfg.MetaPlugin),
			zap.String("parent", parentName()), zap.Bool("primary", args.IfName == PrimaryIfName),
			zap.String("args.cni.network", c.cfg.ArgsNetwork))
	}
	return req, nil
}

// parentName is the name of the process that ran us (for the log: under
// Multus it is multus, or multus-daemon in its thick mode).
func parentName() string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", os.Getppid()))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// Add asks the agent to attach the pod and prints the result.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	c, err := p.begin("ADD", args)
	if err != nil {
		return err
	}
	return c.finish(func() error {
		req, err := p.attachmentRequest(c, args)
		if err != nil {
			return err
		}
		resp, err := c.caller.Call(c.ctx, cniapi.PathAdd, req, CallOptions{})
		if err != nil {
			return err
		}
		if resp.Result == nil {
			return types.NewError(types.ErrInternal, "filament-agent answered ADD without a result", "")
		}
		res, err := ToCNIResult(resp.Result)
		if err != nil {
			return types.NewError(types.ErrInternal, "filament-agent answered ADD with a bad result", err.Error())
		}
		for _, ip := range resp.Result.IPs {
			c.log.Info("address", zap.Stringer("address", ip.Address), zap.Stringer("gateway", ip.Gateway))
		}
		return PrintResult(p.Stdout, res, c.cfg.CNIVersion)
	}())
}

// Del asks the agent to detach. It succeeds when no agent runs (the agent
// reconciles when it starts) and when the agent does not know the
// attachment; the netns is left out when it is gone.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	c, err := p.begin("DEL", args)
	if err != nil {
		return err
	}
	return c.finish(func() error {
		req, err := p.attachmentRequest(c, args)
		if err != nil {
			return err
		}
		if req.Netns != "" {
			if _, err := os.Stat(req.Netns); errors.Is(err, fs.ErrNotExist) {
				c.log.Info("netns is gone: deleting without it", zap.String("netns", req.Netns))
				req.Netns = ""
			}
		}
		_, err = c.caller.Call(c.ctx, cniapi.PathDel, req, CallOptions{StopWhenGone: true})
		var ue *UnreachableError
		var ae *cniapi.Error
		switch {
		case errors.As(err, &ue) && ue.Gone:
			c.log.Warn("no agent is running: nothing to delete now, the agent reconciles when it starts", zap.Error(ue.Last))
			return nil
		case errors.As(err, &ae) && ae.Code == cniapi.CodeUnknownContainer:
			c.log.Info("the agent does not know this attachment: nothing to delete", zap.String("msg", ae.Error()))
			return nil
		}
		return err
	}())
}

// Check asks the agent whether the attachment is still as ADD made it.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	c, err := p.begin("CHECK", args)
	if err != nil {
		return err
	}
	return c.finish(func() error {
		req, err := p.attachmentRequest(c, args)
		if err != nil {
			return err
		}
		if c.cfg.RawPrevResult == nil {
			return configError("prevResult", "missing: CHECK needs the result of ADD")
		}
		if err := version.ParsePrevResult(&c.cfg.PluginConf); err != nil {
			return types.NewError(types.ErrDecodingFailure, "cannot decode prevResult", err.Error())
		}
		if req.Prev, err = FromCNIResult(c.cfg.PrevResult); err != nil {
			return types.NewError(types.ErrDecodingFailure, "cannot convert prevResult", err.Error())
		}
		_, err = c.caller.Call(c.ctx, cniapi.PathCheck, req, CallOptions{})
		return err
	}())
}

// Status asks the agent whether it can serve ADD: one attempt of at most
// poll-timeout; no agent (or one that asks to try again later) is CNI
// error 50, "plugin not available".
func (p *Plugin) Status(args *skel.CmdArgs) error {
	c, err := p.begin("STATUS", args)
	if err != nil {
		return err
	}
	return c.finish(func() error {
		req := NewRequest(c.cfg, nil, PodArgs{})
		_, err := c.caller.Call(c.ctx, cniapi.PathStatus, req, CallOptions{Attempts: 1})
		var ue *UnreachableError
		var ae *cniapi.Error
		switch {
		case errors.As(err, &ue):
			var last *cniapi.Error
			if errors.As(ue.Last, &last) {
				return types.NewError(CodePluginNotAvailable, "filament-agent is not ready", last.Error())
			}
			return types.NewError(CodePluginNotAvailable, "filament-agent is not available", ue.Error())
		case errors.As(err, &ae) && ae.Code == cniapi.CodeTryAgainLater:
			return types.NewError(CodePluginNotAvailable, "filament-agent is not ready", ae.Error())
		}
		return err
	}())
}

// GC passes the runtime's valid attachments of this network to the agent,
// which removes the others it made for this network.
func (p *Plugin) GC(args *skel.CmdArgs) error {
	c, err := p.begin("GC", args)
	if err != nil {
		return err
	}
	return c.finish(func() error {
		req := NewRequest(c.cfg, nil, PodArgs{})
		req.Valid = make([]cniapi.Attachment, 0, len(c.cfg.Valid))
		for _, a := range c.cfg.Valid {
			req.Valid = append(req.Valid, cniapi.Attachment{ContainerID: a.ContainerID, IfName: a.IfName})
		}
		c.log.Info("GC", zap.String("cniNetwork", req.CNINetwork), zap.Int("valid", len(req.Valid)),
			zap.String("agent", c.caller.API.Endpoint()))
		_, err := c.caller.Call(c.ctx, cniapi.PathGC, req, CallOptions{})
		return err
	}())
}
