package e2e

// Traffic endpoints run inside pods: the test binary re-executed under
// `ip netns exec` with helperEnv set (TestMain hands over to helperMain),
// so the tests need no iperf3 or nc. Each prints "ready" once listening,
// then one line per event; the test reads them (helper.line).

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const helperEnv = "FILAMENT_E2E_HELPER"

// helperMain runs one endpoint (os.Args[1:]) and returns the exit code.
func helperMain() int {
	var err error
	a := os.Args[1:]
	switch {
	case len(a) == 2 && a[0] == "tcp-recv":
		err = tcpRecv(a[1])
	case len(a) == 4 && a[0] == "tcp-send":
		err = tcpSend(a[1], a[2], a[3])
	case len(a) == 2 && a[0] == "udp-recv":
		err = udpRecv(a[1])
	case len(a) == 3 && a[0] == "udp-send":
		err = udpSend(a[1], a[2])
	case len(a) == 3 && a[0] == "tcp-to-unix":
		err = tcpToUnix(a[1], a[2])
	default:
		err = fmt.Errorf("usage: tcp-recv ADDR | tcp-send ADDR BYTES SEED | udp-recv ADDR | udp-send ADDR INTERVAL (got %q)", a)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

// tcpToUnix forwards each connection to addr to the unix socket path:
// the API server on the host's loopback, reached from a node's netns
// (kube_test.go). It runs until killed; killing it cuts every connection.
func tcpToUnix(addr, path string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			u, err := net.Dial("unix", path)
			if err != nil {
				c.Close()
				return
			}
			splice(c, u)
		}()
	}
}

// splice copies both ways until either side ends, then closes both.
func splice(a, b net.Conn) {
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(a, b); done <- struct{}{} }()
	go func() { _, _ = io.Copy(b, a); done <- struct{}{} }()
	<-done
	a.Close()
	b.Close()
}

// tcpRecv accepts one connection, reads it to the end and prints
// "bytes=N sha256=H".
func tcpRecv(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println("ready")
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil {
		return fmt.Errorf("after %d bytes: %w", n, err)
	}
	fmt.Printf("bytes=%d sha256=%x\n", n, h.Sum(nil))
	return nil
}

// tcpSend sends size pseudo-random bytes (seeded) and prints
// "bytes=N sha256=H" of what it sent.
func tcpSend(addr, size, seed string) error {
	total, err := strconv.ParseInt(size, 10, 64)
	if err != nil {
		return err
	}
	s, err := strconv.ParseUint(seed, 10, 64)
	if err != nil {
		return err
	}
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	r := rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var sent int64
	for sent < total {
		b := buf[:min(int64(len(buf)), total-sent)]
		for i := 0; i+8 <= len(b); i += 8 {
			binary.LittleEndian.PutUint64(b[i:], r.Uint64())
		}
		h.Write(b)
		if _, err := c.Write(b); err != nil {
			return fmt.Errorf("after %d bytes: %w", sent, err)
		}
		sent += int64(len(b))
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	// Wait for the receiver to close: everything was delivered.
	_, _ = io.Copy(io.Discard, c)
	fmt.Printf("bytes=%d sha256=%x\n", sent, h.Sum(nil))
	return nil
}

// udpRecv counts datagrams by sequence number; it prints "got N" every 100
// and, at the sender's "end S", "done sent=S got=G dup=D" and exits.
func udpRecv(addr string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	defer pc.Close()
	fmt.Println("ready")
	seen := map[uint64]bool{}
	dup := 0
	buf := make([]byte, 2048)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		if n >= 4 && string(buf[:4]) == "end " {
			fmt.Printf("done sent=%s got=%d dup=%d\n", strings.TrimSpace(string(buf[4:n])), len(seen), dup)
			return nil
		}
		if n < 8 {
			continue
		}
		seq := binary.BigEndian.Uint64(buf[:8])
		if seen[seq] {
			dup++
			continue
		}
		seen[seq] = true
		if len(seen)%100 == 0 {
			fmt.Printf("got %d\n", len(seen))
		}
	}
}

// udpSend sends a numbered datagram every interval until its stdin
// closes, then "end <count>" a few times.
func udpSend(addr, interval string) error {
	every, err := time.ParseDuration(interval)
	if err != nil {
		return err
	}
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stop) }()
	t := time.NewTicker(every)
	defer t.Stop()
	buf := make([]byte, 64)
	var seq uint64
	for {
		select {
		case <-stop:
			for range 5 { // the end marker may meet the same fate as any datagram
				_, _ = fmt.Fprintf(c, "end %d", seq)
				time.Sleep(20 * time.Millisecond) // spacing between copies, not synchronisation
			}
			fmt.Printf("sent %d\n", seq)
			return nil
		case <-t.C:
		}
		binary.BigEndian.PutUint64(buf, seq)
		if _, err := c.Write(buf); err != nil {
			// ECONNREFUSED from an ICMP error of an earlier datagram: keep
			// counting, the receiver's tally decides.
			if !errors.Is(err, syscall.ECONNREFUSED) {
				return err
			}
		}
		seq++
	}
}

// helper is one endpoint running in a pod.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan struct{}
	err   error // after done
	mu    sync.Mutex
	errb  strings.Builder
}

// runHelper starts an endpoint in netns ns and waits for its "ready".
func runHelper(t *testing.T, ns string, args ...string) *helper {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, self}, args...)...)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	h := &helper{cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{})}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if h.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &lockedWriter{h}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		h.err = cmd.Wait()
		close(h.lines)
		close(h.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-h.done
	})
	if args[0] != "tcp-send" && args[0] != "udp-send" {
		if l := h.line(t, 10*time.Second); l != "ready" {
			t.Fatalf("%v in %s: %q, want ready", args, ns, l)
		}
	}
	return h
}

type lockedWriter struct{ h *helper }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	return w.h.errb.Write(p)
}

func (h *helper) stderr() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.errb.String()
}

// line is the helper's next line of output, within d.
func (h *helper) line(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-h.lines:
		if !ok {
			<-h.done
			t.Fatalf("helper %v ended (%v): %s", h.cmd.Args[4:], h.err, h.stderr())
		}
		return l
	case <-time.After(d):
		t.Fatalf("helper %v: no output in %v", h.cmd.Args[4:], d)
	}
	return ""
}

// result is the helper's line starting with prefix, skipping the others.
func (h *helper) result(t *testing.T, prefix string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if l := h.line(t, time.Until(deadline)); strings.HasPrefix(l, prefix) {
			return l
		}
	}
}
