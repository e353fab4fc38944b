package e2e

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary, re-executed in a namespace with tcpHelperEnv set, is
// one end of a TCP connection: "serve:<addr>" accepts one connection, reads
// until EOF and answers the SHA-256 of what it read; "dial:<addr>" sends
// tcpPayload random bytes, reads the answer and says "ok <bytes>" if the
// hashes match.
const (
	tcpHelperEnv = "FILAMENT_E2E_TCP"
	tcpPayload   = 256 << 10 // many full-sized segments
)

func tcpHelper(spec string) int {
	role, addr, _ := strings.Cut(spec, ":")
	var err error
	switch role {
	case "serve":
		err = tcpServe(addr)
	case "dial":
		err = tcpDial(addr)
	default:
		err = fmt.Errorf("%s=%q: want serve:<addr> or dial:<addr>", tcpHelperEnv, spec)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcp helper:", err)
		return 1
	}
	return 0
}

func tcpServe(addr string) error {
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println("listening")
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(60 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	h := sha256.New()
	if _, err := io.Copy(h, c); err != nil {
		return err
	}
	_, err = fmt.Fprintf(c, "%x\n", h.Sum(nil))
	return err
}

func tcpDial(addr string) error {
	var c net.Conn
	var err error
	for deadline := time.Now().Add(15 * time.Second); ; {
		c, err = net.DialTimeout("tcp4", addr, 3*time.Second)
		// refused: the server is not listening yet
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // an interval between connection attempts
	}
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	b := make([]byte, tcpPayload)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	if _, err := c.Write(b); err != nil {
		return err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	if got := strings.TrimSpace(line); got != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("the server read other bytes: sha256 %s, sent %x", got, sum)
	}
	fmt.Printf("ok %d\n", len(b))
	return nil
}

// tcpCheck connects from namespace fromNS to a server in toNS on addr
// (ip:port) and sends tcpPayload bytes, which the server must read exactly.
func tcpCheck(t *testing.T, fromNS, toNS, addr string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	srv := start(t, filepath.Join(t.TempDir(), "tcp-server.log"), "ip", "netns", "exec", toNS,
		"env", tcpHelperEnv+"=serve:"+addr, exe)
	out, err := exec.Command("ip", "netns", "exec", fromNS, "env", tcpHelperEnv+"=dial:"+addr, exe).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != fmt.Sprintf("ok %d", tcpPayload) {
		t.Fatalf("TCP %s -> %s (%s): %v: %s", fromNS, toNS, addr, err, out)
	}
	select {
	case <-srv.done:
		if srv.err != nil {
			t.Errorf("TCP server in %s: %v", toNS, srv.err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("TCP server in %s did not finish", toNS)
	}
}
