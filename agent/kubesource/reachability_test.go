package kubesource

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
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
