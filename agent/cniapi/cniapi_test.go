package cniapi

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := func() *Request {
		return &Request{Version: Version, ContainerID: "c", IfName: "eth0", Netns: "/var/run/netns/p", CNINetwork: "net"}
	}
	for _, tc := range []struct {
		name string
		path string
		f    func(*Request)
		code uint // 0: valid
	}{
		{"add", PathAdd, nil, 0},
		{"add wrong version", PathAdd, func(r *Request) { r.Version = "2" }, CodeIncompatibleVersion},
		{"add no container", PathAdd, func(r *Request) { r.ContainerID = "" }, CodeInvalidRequest},
		{"add no ifName", PathAdd, func(r *Request) { r.IfName = "" }, CodeInvalidRequest},
		{"add long ifName", PathAdd, func(r *Request) { r.IfName = "0123456789abcdef" }, CodeInvalidRequest},
		{"add no netns", PathAdd, func(r *Request) { r.Netns = "" }, CodeInvalidRequest},
		{"add bad mode", PathAdd, func(r *Request) { r.Mode = "macvlan" }, CodeInvalidRequest},
		{"add mtu", PathAdd, func(r *Request) { r.MTU = 100 }, CodeInvalidRequest},
		{"add memif 9000", PathAdd, func(r *Request) { r.Mode, r.MTU = ModeMemif, 9000 }, 0},
		{"del without netns", PathDel, func(r *Request) { r.Netns = "" }, 0},
		{"del no ifName", PathDel, func(r *Request) { r.IfName = "" }, CodeInvalidRequest},
		{"check without prev", PathCheck, nil, CodeInvalidRequest},
		{"check", PathCheck, func(r *Request) { r.Prev = &Result{} }, 0},
		{"status empty", PathStatus, func(r *Request) { *r = Request{Version: Version} }, 0},
		{"gc", PathGC, func(r *Request) { r.Valid = []Attachment{{ContainerID: "c", IfName: "eth0"}} }, 0},
		{"gc none valid", PathGC, func(r *Request) { r.Valid = nil }, 0},
		{"gc without network", PathGC, func(r *Request) { r.CNINetwork = "" }, CodeInvalidRequest},
		{"gc half attachment", PathGC, func(r *Request) { r.Valid = []Attachment{{ContainerID: "c"}} }, CodeInvalidRequest},
	} {
		r := ok()
		if tc.f != nil {
			tc.f(r)
		}
		e := r.Validate(tc.path)
		switch {
		case tc.code == 0 && e != nil:
			t.Errorf("%s: refused: %v", tc.name, e)
		case tc.code != 0 && (e == nil || e.Code != tc.code):
			t.Errorf("%s: %v, want code %d", tc.name, e, tc.code)
		}
	}
}

func TestJSON(t *testing.T) {
	r := Result{
		Interfaces: []Interface{{Name: "eth0"}},
		IPs:        []IP{{Interface: 0, Address: netip.MustParsePrefix("10.0.0.5/24")}},
		Routes:     []Route{{Dst: netip.MustParsePrefix("0.0.0.0/0")}},
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"interfaces":[{"name":"eth0"}],"ips":[{"interface":0,"address":"10.0.0.5/24"}],"routes":[{"dst":"0.0.0.0/0"}]}`
	if string(b) != want {
		t.Errorf("\n got %s\nwant %s", b, want)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, r) {
		t.Errorf("round trip %+v %v", back, err)
	}
	b, _ = json.Marshal(&Request{Version: Version, ContainerID: "c"})
	if string(b) != `{"version":"1","containerID":"c"}` {
		t.Errorf("request %s", b)
	}
}

func TestHandler(t *testing.T) {
	var got []string
	h := Handler(func(ctx context.Context, path string, req *Request) *Response {
		got = append(got, path)
		if path == PathAdd {
			return &Response{Result: &Result{Interfaces: []Interface{{Name: req.IfName}}}}
		}
		return nil
	})
	post := func(method, path, body string) (int, Response) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
		var resp Response
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("%s %s: answer is not a Response: %v: %s", method, path, err, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		return rec.Code, resp
	}
	add := `{"version":"1","containerID":"c","ifName":"eth0","netns":"/n"}`
	if code, r := post("POST", PathAdd, add); code != 200 || r.Error != nil || r.Result.Interfaces[0].Name != "eth0" {
		t.Errorf("add: %d %+v", code, r)
	}
	if code, r := post("POST", PathDel, `{"version":"1","containerID":"c","ifName":"eth0"}`); code != 200 || r.Error != nil || r.Result != nil {
		t.Errorf("del: %d %+v", code, r)
	}
	if code, r := post("GET", PathAdd, ""); code != 405 || r.Error == nil {
		t.Errorf("GET: %d %+v", code, r)
	}
	if code, r := post("POST", "/v1/cni/nope", add); code != 404 || r.Error == nil {
		t.Errorf("unknown path: %d %+v", code, r)
	}
	if code, r := post("POST", PathAdd, `{"version":`); code != 200 || r.Error == nil || r.Error.Code != CodeDecodingFailure {
		t.Errorf("bad JSON: %d %+v", code, r)
	}
	if code, r := post("POST", PathAdd, `{"version":"1","containerID":"c"}`); code != 200 || r.Error == nil || r.Error.Code != CodeInvalidRequest {
		t.Errorf("invalid: %d %+v", code, r)
	}
	if !reflect.DeepEqual(got, []string{PathAdd, PathDel}) {
		t.Errorf("served %v", got)
	}
}

func TestClient(t *testing.T) {
	dir, err := os.MkdirTemp("", "cniapi")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	socket := filepath.Join(dir, "cni.sock")

	c := NewClient("unix", socket)
	defer c.Close()
	_, err = c.Do(context.Background(), PathStatus, &Request{Version: Version})
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		t.Errorf("no agent: %v, want a dial error", err)
	}

	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Handler(func(ctx context.Context, path string, req *Request) *Response {
		return &Response{Error: &Error{Code: CodeTryAgainLater, Msg: "later", Details: req.ContainerID}}
	})}
	go srv.Serve(l)
	defer srv.Close()
	resp, err := c.Do(context.Background(), PathDel, &Request{Version: Version, ContainerID: "c", IfName: "eth0"})
	if err != nil || resp.Error == nil || resp.Error.Code != CodeTryAgainLater || resp.Error.Details != "c" {
		t.Errorf("refusal: %+v %v", resp, err)
	}
	if c.Endpoint() != "unix:"+socket {
		t.Errorf("endpoint %s", c.Endpoint())
	}

	// Not a filament agent.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello"))
	}))
	defer other.Close()
	_, err = NewClient("tcp", strings.TrimPrefix(other.URL, "http://")).Do(context.Background(), PathAdd, &Request{Version: Version})
	if !errors.Is(err, ErrBadResponse) {
		t.Errorf("other server: %v", err)
	}
}
