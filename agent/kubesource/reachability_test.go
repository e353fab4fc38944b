package kubesource

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// refusing fails its first n round trips as a refused dial does, then
// answers 200.
type refusing struct{ n, calls int }

func (r *refusing) RoundTrip(*http.Request) (*http.Response, error) {
	r.calls++
	if r.calls <= r.n {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	}
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader(""))}, nil
}

func TestReachability(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	r := newReachability(zap.New(core), 10*time.Millisecond)
	inner := &refusing{n: 3}
	rt := r.wrap(inner)

	// A GET waits through the refusals: one outage, logged once, then back.
	req, _ := http.NewRequest(http.MethodGet, "https://apiserver/apis", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK || inner.calls != 4 {
		t.Fatalf("GET through 3 refusals: %v %v after %d calls, want 200 after 4", resp, err, inner.calls)
	}
	resp.Body.Close()
	if up, n := testutil.ToFloat64(r.up), testutil.ToFloat64(r.outages); up != 1 || n != 1 {
		t.Errorf("after the outage: up %v, outages %v; want 1, 1", up, n)
	}
	if u, b := logs.FilterMessageSnippet("API server unreachable").Len(), logs.FilterMessageSnippet("API server reachable again").Len(); u != 1 || b != 1 {
		t.Errorf("logged unreachable %d and back %d times, want once each: %v", u, b, logs.All())
	}

	// Anything else fails at once (its caller retries), and so does a
	// GET whose context ends while it waits.
	inner.n, inner.calls = 100, 0
	req, _ = http.NewRequest(http.MethodPut, "https://apiserver/apis", nil)
	if _, err := rt.RoundTrip(req); err == nil || inner.calls != 1 {
		t.Errorf("PUT with the server refusing: %v after %d calls, want the error after 1", err, inner.calls)
	}
	if up, n := testutil.ToFloat64(r.up), testutil.ToFloat64(r.outages); up != 0 || n != 2 {
		t.Errorf("during the second outage: up %v, outages %v; want 0, 2", up, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, "https://apiserver/apis", nil)
	if _, err := rt.RoundTrip(req); err == nil || inner.calls < 3 {
		t.Errorf("GET until its context ended: %v after %d calls, want the error after several", err, inner.calls)
	}

	// An error from a server that was reached is not an outage.
	if dialFailed(errors.New("http2: response body closed")) || !dialFailed(&net.OpError{Op: "dial"}) {
		t.Error("dialFailed: want true only for a dial error")
	}
}

// closingListener accepts and at once closes its first n connections, as
// a TCP proxy with no API server behind does, then hands the rest on.
type closingListener struct {
	net.Listener
	n int
}

func (l *closingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.n == 0 {
			return c, err
		}
		l.n--
		c.Close()
	}
}

// A proxy in front of a stopped API server: connections accepted then
// closed, and a 503 page of its own. A GET waits through both; a PUT gets
// the proxy's answer at once; the API server's own 503 (JSON) is an
// answer, not an outage.
func TestReachabilityThroughProxy(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	r := newReachability(zap.New(core), 10*time.Millisecond)
	proxyDown := 2
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case req.URL.Path == "/apiserver-503":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
		case proxyDown > 0:
			proxyDown--
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	srv.Listener = &closingListener{Listener: srv.Listener, n: 3}
	srv.Start()
	defer srv.Close()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	rt := r.wrap(tr)

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/apis", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET through 3 closed connections and 2 proxy 503s: %v %v, want 200", resp, err)
	}
	resp.Body.Close()
	if proxyDown != 0 {
		t.Errorf("the GET was answered before the proxy's 503s ended (%d left)", proxyDown)
	}
	if up, n := testutil.ToFloat64(r.up), testutil.ToFloat64(r.outages); up != 1 || n != 1 {
		t.Errorf("after the outage: up %v, outages %v; want 1, 1", up, n)
	}
	if u := logs.FilterMessageSnippet("API server unreachable").Len(); u != 1 {
		t.Errorf("logged unreachable %d times, want once: %v", u, logs.All())
	}

	proxyDown = 1
	req, _ = http.NewRequest(http.MethodPut, srv.URL+"/apis", nil)
	resp, err = rt.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("PUT with the proxy answering 503: %v %v, want its 503 at once", resp, err)
	}
	resp.Body.Close()
	if up := testutil.ToFloat64(r.up); up != 0 {
		t.Errorf("after the proxy's 503: up %v, want 0", up)
	}

	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/apiserver-503", nil)
	resp, err = rt.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("GET answered by the API server's own 503: %v %v, want that 503", resp, err)
	}
	resp.Body.Close()
	if up := testutil.ToFloat64(r.up); up != 1 {
		t.Errorf("after the API server's own answer: up %v, want 1", up)
	}
}
