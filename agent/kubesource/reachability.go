package kubesource

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// reachability is the API server as the agent sees it: reachable or not,
// logged and exported when that changes.
//
// Its RoundTripper makes a GET (the informers' lists and watches) that
// gets no answer from the API server (unreached) wait and dial again
// every retry,
// instead of handing the error to client-go's reflectors: they back off
// up to 30 to 60 s, and they log a refused watch only at verbosity 4. So
// after an outage of half a minute the agent would resync up to a minute
// after the API server is back, having said nothing meanwhile (found by
// agent/e2e TestKubeAPIServerOutage). Other methods fail at once: their
// callers retry (the Port status writer every second).
type reachability struct {
	log   *zap.Logger
	retry time.Duration

	mu        sync.Mutex
	downSince time.Time // zero while reachable

	up      prometheus.Gauge
	outages prometheus.Counter
}

func newReachability(log *zap.Logger, retry time.Duration) *reachability {
	return &reachability{log: log, retry: retry,
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "filament_agent_apiserver_up",
			Help: "1 while the agent's last request reached the API server, 0 while it cannot connect to it"}),
		outages: prometheus.NewCounter(prometheus.CounterOpts{Name: "filament_agent_apiserver_outages_total",
			Help: "times the agent lost its connection to the API server (the dataplane keeps its last state meanwhile)"}),
	}
}

// wrap is a transport.WrapperFunc for the API server client's config.
func (r *reachability) wrap(next http.RoundTripper) http.RoundTripper {
	return &reachTripper{r: r, next: next}
}

type reachTripper struct {
	r    *reachability
	next http.RoundTripper
}

func (t *reachTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	for {
		resp, err := t.next.RoundTrip(req)
		if err == nil && proxyGatewayError(resp) {
			// A proxy in front of the API server answered for it.
			t.r.unreachable(fmt.Errorf("%s from a proxy in front of the API server: %w", resp.Status, errProxyGateway))
			if req.Method != http.MethodGet {
				return resp, nil // its caller retries
			}
			resp.Body.Close()
		} else if err == nil {
			t.r.reachable()
			return resp, nil
		} else if !unreached(err) {
			return nil, err // the server was reached, or the request is not ours to repeat
		} else {
			t.r.unreachable(err)
			if req.Method != http.MethodGet {
				return nil, err
			}
		}
		timer := time.NewTimer(t.r.retry)
		select {
		case <-req.Context().Done():
			timer.Stop()
			return nil, fmt.Errorf("API server unreachable: %w", req.Context().Err())
		case <-timer.C:
		}
	}
}

// dialFailed: no connection to the API server could be made (refused,
// unreachable, timed out), so the request never reached it.
func dialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// errProxyGateway marks a gateway error a proxy answered with (logged).
var errProxyGateway = errors.New("proxy gateway error")

// unreached: the request got no answer from the API server. Besides a
// failed dial, a TCP proxy or load balancer in front of it (a node-local
// haproxy or nginx, kube-vip) accepts the connection and then closes or
// resets it while no API server is behind (EOF or a reset before any
// response, in the TLS handshake or after the request), or answers an
// HTTP proxy's 502/503/504 itself.
func unreached(err error) bool {
	return dialFailed(err) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// proxyGatewayError: a response an HTTP proxy makes when it has no API
// server to pass the request to. The API server's own errors are JSON
// Status objects; a proxy's are not.
func proxyGatewayError(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		ct := resp.Header.Get("Content-Type")
		return ct != "application/json" && ct != "application/vnd.kubernetes.protobuf"
	}
	return false
}

func (r *reachability) reachable() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.up.Set(1)
	if r.downSince.IsZero() {
		return
	}
	r.log.Info("API server reachable again: the watches resume and the resync applies what changed",
		zap.Duration("unreachable_for", time.Since(r.downSince)))
	r.downSince = time.Time{}
}

func (r *reachability) unreachable(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.up.Set(0)
	if !r.downSince.IsZero() {
		return
	}
	r.downSince = time.Now()
	r.outages.Inc()
	r.log.Warn("API server unreachable: the dataplane keeps its last state; retrying",
		zap.Duration("every", r.retry), zap.Error(err))
}

// collectors are the reachability's metrics.
func (r *reachability) collectors() []prometheus.Collector {
	return []prometheus.Collector{r.up, r.outages}
}
