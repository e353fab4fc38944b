package cniapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// MaxBodyBytes bounds a Request or a Response body.
const MaxBodyBytes = 1 << 20

// Paths lists every command path.
var Paths = []string{PathAdd, PathDel, PathCheck, PathStatus, PathGC}

// ServeFunc answers one validated Request. A nil Response means success
// with no result (DEL, STATUS, GC).
type ServeFunc func(ctx context.Context, path string, req *Request) *Response

// Handler serves the CNI API over HTTP: it takes POSTs on Paths, decodes the
// Request, checks it with Validate and hands it to serve. Every answer,
// refusals included, is a Response with Content-Type application/json.
func Handler(serve ServeFunc) http.Handler {
	known := make(map[string]bool, len(Paths))
	for _, p := range Paths {
		known[p] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse := func(status int, e *Error) {
			writeResponse(w, status, &Response{Error: e})
		}
		if !known[r.URL.Path] {
			refuse(http.StatusNotFound, &Error{Code: CodeInvalidRequest, Msg: "unknown path", Details: r.URL.Path})
			return
		}
		if r.Method != http.MethodPost {
			refuse(http.StatusMethodNotAllowed, &Error{Code: CodeInvalidRequest, Msg: "method not allowed", Details: r.Method + " " + r.URL.Path + ": want POST"})
			return
		}
		var req Request
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err := dec.Decode(&req); err != nil {
			refuse(http.StatusOK, &Error{Code: CodeDecodingFailure, Msg: "cannot decode request", Details: err.Error()})
			return
		}
		if e := req.Validate(r.URL.Path); e != nil {
			refuse(http.StatusOK, e)
			return
		}
		resp := serve(r.Context(), r.URL.Path, &req)
		if resp == nil {
			resp = &Response{}
		}
		writeResponse(w, http.StatusOK, resp)
	})
}

func writeResponse(w http.ResponseWriter, status int, resp *Response) {
	b, err := json.Marshal(resp)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(&Response{Error: &Error{Code: CodeInvalidRequest, Msg: "cannot encode response", Details: err.Error()}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// Client makes one request per Do to the agent, on a unix socket or TCP.
// It does not retry: retrying is the caller's policy.
type Client struct {
	network, address string
	http             *http.Client
}

// NewClient returns a client of the agent at address: a socket path for
// network "unix", host:port for "tcp".
func NewClient(network, address string) *Client {
	d := &net.Dialer{}
	tr := &http.Transport{
		Proxy: nil, // never through an HTTP proxy, even for a TCP loopback address
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, address)
		},
		DisableKeepAlives:  true,
		DisableCompression: true,
	}
	return &Client{network: network, address: address, http: &http.Client{Transport: tr}}
}

// Endpoint names the agent's address for messages: unix:/run/... or
// tcp:127.0.0.1:9091.
func (c *Client) Endpoint() string { return c.network + ":" + c.address }

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// ErrBadResponse marks an answer that is not a Response: whatever answered
// is not a filament agent speaking this contract.
var ErrBadResponse = errors.New("not a CNI API response")

// Do posts req to path and decodes the Response. Transport errors come back
// as they are (dial errors are *net.OpError with Op "dial"; an expired ctx
// wraps context.DeadlineExceeded); an answer that is not a Response wraps
// ErrBadResponse. An agent's refusal is a Response with Error, not an error.
func (c *Client) Do(ctx context.Context, path string, req *Request) (*Response, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	host := "filament-agent"
	if c.network == "tcp" {
		host = c.address
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+host+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hresp, err := c.http.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer hresp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(hresp.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, err
	}
	var resp Response
	if len(b) > MaxBodyBytes {
		return nil, fmt.Errorf("%w: HTTP %d, body over %d bytes", ErrBadResponse, hresp.StatusCode, MaxBodyBytes)
	}
	if !strings.HasPrefix(hresp.Header.Get("Content-Type"), "application/json") {
		return nil, fmt.Errorf("%w: HTTP %d, Content-Type %q: %s", ErrBadResponse, hresp.StatusCode, hresp.Header.Get("Content-Type"), snippet(b))
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		return nil, fmt.Errorf("%w: HTTP %d: %v: %s", ErrBadResponse, hresp.StatusCode, err, snippet(b))
	}
	if hresp.StatusCode != http.StatusOK && resp.Error == nil {
		return nil, fmt.Errorf("%w: HTTP %d without an error: %s", ErrBadResponse, hresp.StatusCode, snippet(b))
	}
	return &resp, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return fmt.Sprintf("%q", s)
}
