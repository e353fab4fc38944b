// Package cniserver serves the CNI API (agent/cniapi) on a unix socket,
// mode 0600, and hands each command to the node.
package cniserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"go.uber.org/zap"

	"github.com/filament-net/filament/agent/cniapi"
)

// Backend does the commands (node.Node).
type Backend interface {
	Add(context.Context, *cniapi.Request) *cniapi.Response
	Del(context.Context, *cniapi.Request) *cniapi.Response
	Check(context.Context, *cniapi.Request) *cniapi.Response
	Status(context.Context, *cniapi.Request) *cniapi.Response
	GC(context.Context, *cniapi.Request) *cniapi.Response
}

var (
	requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "filament_agent_cni_requests_total",
		Help: "CNI API commands answered, by command and CNI error code (0: success).",
	}, []string{"command", "code"})
	durations = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "filament_agent_cni_request_duration_seconds",
		Help:    "Time to answer a CNI API command, by command.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"command"})
)

// Collectors are the server's metrics, for the agent's registry.
func Collectors() []prometheus.Collector { return []prometheus.Collector{requests, durations} }

// CommandTimeout bounds one command's work.
const CommandTimeout = 2 * time.Minute

// Server is the CNI API server.
type Server struct {
	http *http.Server
	ln   net.Listener
}

// Listen creates the socket (0600; its directory 0700 if missing; a stale
// socket file is replaced).
func Listen(socket string, b Backend, log *zap.Logger) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(socket), 0o700); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(socket); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", socket)
		}
		if c, err := net.Dial("unix", socket); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another agent is serving on it", socket)
		}
		_ = os.Remove(socket)
	}
	old := umask(0o177)
	ln, err := net.Listen("unix", socket)
	umask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(socket, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	serve := func(ctx context.Context, path string, req *cniapi.Request) *cniapi.Response {
		// A command, once started, runs to its end even if the plugin
		// gives up (it retries, and the command is idempotent): it is
		// not cancelled with the request, which would leave it half
		// done, but bounded. Waiting to start is bounded by the
		// request's timeoutMillis (the node answers "try again later").
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CommandTimeout)
		defer cancel()
		start := time.Now()
		var resp *cniapi.Response
		switch path {
		case cniapi.PathAdd:
			resp = b.Add(ctx, req)
		case cniapi.PathDel:
			resp = b.Del(ctx, req)
		case cniapi.PathCheck:
			resp = b.Check(ctx, req)
		case cniapi.PathStatus:
			resp = b.Status(ctx, req)
		case cniapi.PathGC:
			resp = b.GC(ctx, req)
		}
		cmd := path[strings.LastIndex(path, "/")+1:]
		code := "0"
		if resp != nil && resp.Error != nil {
			code = strconv.FormatUint(uint64(resp.Error.Code), 10)
		}
		requests.WithLabelValues(cmd, code).Inc()
		durations.WithLabelValues(cmd).Observe(time.Since(start).Seconds())
		fields := []zap.Field{zap.String("path", path), zap.String("containerID", req.ContainerID),
			zap.String("ifName", req.IfName), zap.Duration("took", time.Since(start))}
		if resp != nil && resp.Error != nil {
			log.Info("CNI command refused", append(fields, zap.Uint("code", resp.Error.Code), zap.String("error", resp.Error.Error()))...)
		} else {
			log.Debug("CNI command done", fields...)
		}
		return resp
	}
	s := &Server{ln: ln, http: &http.Server{Handler: cniapi.Handler(serve), ReadHeaderTimeout: 10 * time.Second}}
	return s, nil
}

// Serve serves until Shutdown.
func (s *Server) Serve() error {
	err := s.http.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, waits for the commands in flight (bounded by
// ctx) and removes the socket.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	return err
}
