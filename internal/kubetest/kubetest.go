// Package kubetest runs a real etcd and kube-apiserver on loopback for tests:
// free ports, a temporary directory, self-signed serving certificates, a
// static token file with an admin token (and any users a test names), RBAC
// authorization, and ServiceAccount tokens through the TokenRequest API.
//
// The binaries come from scripts/testenv.sh (built once per machine from the
// Go module proxy, docs/kubernetes.md). There is no kube-controller-manager:
// no EndpointSlices, no namespace finalisation, no garbage collection.
//
// A test package starts one Env in TestMain and shares it between its tests.
// StopAPIServer and StartAPIServer take the API server away and bring it
// back (etcd keeps running) for tests of what its clients do meanwhile.
// Both processes run in their own process groups, killed by group id on Stop,
// and die with the test binary (Pdeathsig) if it is killed by -timeout.
package kubetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
)

// BinDirEnv names the directory holding kube-apiserver and etcd; make test
// sets it from scripts/testenv.sh. Unset, Start runs that script itself.
const BinDirEnv = "FILAMENT_TESTENV_BIN"

// AdminUser is the name of the admin token's user, in group system:masters.
const AdminUser = "filament-admin"

// User is a static token user known to the API server from its start.
type User struct {
	Name   string
	Groups []string
}

// Options tune Start; the zero value is fine.
type Options struct {
	BinDir string // kube-apiserver and etcd; default: $FILAMENT_TESTENV_BIN or scripts/testenv.sh
	Users  []User // extra static token users (authenticated, no RBAC rights unless a test grants them)
	// APIServerArgs are appended to kube-apiserver's flags ("--name=value").
	APIServerArgs []string

	freePorts func(n int) ([]int, error) // tests: ports taken between choice and use
}

// Env is a running etcd and kube-apiserver.
type Env struct {
	// Config is the admin's client configuration (system:masters).
	Config *rest.Config
	// Dir holds the data, certificates, token file and logs; removed by Stop.
	Dir string

	etcd, apiserver *process          // apiserver is nil while stopped (StopAPIServer)
	tokens          map[string]string // user -> token
	// How kube-apiserver was started, for StartAPIServer.
	apiserverBin, apiserverLog string
	apiserverArgs              []string
}

// Start starts etcd and kube-apiserver and waits, polling /readyz, until the
// API server is ready or ctx ends. The caller must call Stop.
func Start(ctx context.Context, opts Options) (*Env, error) {
	binDir := opts.BinDir
	if binDir == "" {
		var err error
		if binDir, err = FindBinaries(ctx); err != nil {
			return nil, err
		}
	}
	// The free ports are free only until another process takes one: start
	// again on new ones if a process could not bind.
	for attempt := 1; ; attempt++ {
		dir, err := os.MkdirTemp("", "filament-kubetest-")
		if err != nil {
			return nil, fmt.Errorf("kubetest: %w", err)
		}
		e := &Env{Dir: dir, tokens: map[string]string{}}
		err = e.start(ctx, binDir, opts)
		if err == nil {
			return e, nil
		}
		e.Stop()
		if !errors.Is(err, errAddrInUse) || attempt == 3 {
			return nil, err
		}
	}
}

// errAddrInUse marks a start that failed because a port was taken.
var errAddrInUse = errors.New("address already in use")

func (e *Env) start(ctx context.Context, binDir string, opts Options) error {
	if opts.freePorts == nil {
		opts.freePorts = freePorts
	}
	ports, err := opts.freePorts(3)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, securePort := ports[0], ports[1], ports[2]
	for _, d := range []string{"etcd", "certs"} {
		if err := os.Mkdir(filepath.Join(e.Dir, d), 0o700); err != nil {
			return fmt.Errorf("kubetest: %w", err)
		}
	}
	tokenFile, err := e.writeTokens(opts.Users)
	if err != nil {
		return err
	}
	saKey, saPub, err := e.writeServiceAccountKey()
	if err != nil {
		return err
	}

	clientURL := fmt.Sprintf("http://127.0.0.1:%d", etcdClient)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)
	e.etcd, err = startProcess(filepath.Join(binDir, "etcd"), filepath.Join(e.Dir, "etcd.log"),
		"--name=kubetest", "--data-dir="+filepath.Join(e.Dir, "etcd"),
		"--listen-client-urls="+clientURL, "--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL,
		"--unsafe-no-fsync", // a test's data need not survive a power cut
		"--log-level=warn")
	if err != nil {
		return err
	}

	certDir := filepath.Join(e.Dir, "certs")
	args := []string{
		"--etcd-servers=" + clientURL,
		// Both needed where loopback may be the only interface (a test's
		// network namespace): no default route to pick an address from.
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--secure-port=" + strconv.Itoa(securePort),
		"--cert-dir=" + certDir,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + saPub,
		"--service-account-signing-key-file=" + saKey,
		"--token-auth-file=" + tokenFile,
		"--authorization-mode=RBAC",
		// Its admission wants token Secrets a controller would make.
		"--disable-admission-plugins=ServiceAccount",
	}
	args = append(args, opts.APIServerArgs...)
	e.apiserverBin, e.apiserverLog = filepath.Join(binDir, "kube-apiserver"), filepath.Join(e.Dir, "kube-apiserver.log")
	e.apiserverArgs = args
	e.apiserver, err = startProcess(e.apiserverBin, e.apiserverLog, args...)
	if err != nil {
		return err
	}

	// The serving certificate is written to certDir before the port opens;
	// trusting it (it carries its CA) spares the clients InsecureSkipVerify.
	crt := filepath.Join(certDir, "apiserver.crt")
	if err := e.poll(ctx, "a serving certificate in "+certDir, func() (bool, error) {
		_, err := os.Stat(crt)
		return err == nil, nil
	}); err != nil {
		return err
	}
	caData, err := os.ReadFile(crt)
	if err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	e.Config = &rest.Config{
		Host:            fmt.Sprintf("https://127.0.0.1:%d", securePort),
		BearerToken:     e.tokens[AdminUser],
		TLSClientConfig: rest.TLSClientConfig{CAData: caData},
		QPS:             -1, // no client-side throttling in tests
	}
	return e.waitReady(ctx)
}

// waitReady polls /readyz until it answers 200.
func (e *Env) waitReady(ctx context.Context) error {
	tr, err := rest.TransportFor(e.Config)
	if err != nil {
		return fmt.Errorf("kubetest: transport: %w", err)
	}
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	var last string
	err = e.poll(ctx, "kube-apiserver /readyz", func() (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.Config.Host+"/readyz", nil)
		if err != nil {
			return false, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			last = resp.Status
			return false, nil
		}
		return true, nil
	})
	if err != nil && last != "" {
		return fmt.Errorf("%w (last answer: %s)", err, last)
	}
	return err
}

// StopAPIServer kills kube-apiserver (SIGKILL to its process group) and
// leaves etcd running: every client loses the API server at once, its
// connections cut and new ones refused, until StartAPIServer. Not SIGTERM:
// its graceful shutdown keeps serving open connections (watches, HTTP/2)
// for up to 10 s under load, so the clients would not all lose it at once.
func (e *Env) StopAPIServer(ctx context.Context) error {
	if e.apiserver == nil {
		return errors.New("kubetest: kube-apiserver is not running")
	}
	p := e.apiserver
	e.apiserver = nil
	return p.stop(ctx, 0)
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, as it was
// first started: the same port, flags, serving certificate (it reuses the
// one in its --cert-dir), token file and ServiceAccount keys, so clients
// made before work unchanged; its log is appended to. It waits, polling
// /readyz, until the API server is ready or ctx ends.
func (e *Env) StartAPIServer(ctx context.Context) error {
	if e.apiserver != nil {
		return errors.New("kubetest: kube-apiserver is already running")
	}
	p, err := startProcess(e.apiserverBin, e.apiserverLog, e.apiserverArgs...)
	if err != nil {
		return err
	}
	e.apiserver = p
	// The port was free only while nobody took it: a failure to bind shows
	// in the error as the process's exit with its log.
	return e.waitReady(ctx)
}

// poll calls cond every 50 ms until it is true, it fails, ctx ends or one of
// the processes exits (with its log's tail in the error).
func (e *Env) poll(ctx context.Context, what string, cond func() (bool, error)) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("kubetest: waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		for _, p := range []*process{e.etcd, e.apiserver} {
			if p != nil && p.exited() {
				log := p.logTail(20)
				err := fmt.Errorf("kubetest: waiting for %s: %s exited: %v; log:\n%s", what, p.name, p.err, log)
				if strings.Contains(log, errAddrInUse.Error()) {
					err = fmt.Errorf("%w: %w", errAddrInUse, err)
				}
				return err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kubetest: waiting for %s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// PIDs are the process ids of etcd and kube-apiserver, by name: for a
// benchmark's account of the CPU each used.
func (e *Env) PIDs() map[string]int {
	out := map[string]int{}
	for _, p := range []*process{e.etcd, e.apiserver} {
		if p != nil {
			out[p.name] = p.cmd.Process.Pid
		}
	}
	return out
}

// Stop stops kube-apiserver and etcd (SIGTERM to each process group, SIGKILL
// after 10 s) and removes Dir. It is safe to call more than once.
func (e *Env) Stop() error {
	var errs []error
	for _, p := range []*process{e.apiserver, e.etcd} {
		if p != nil {
			errs = append(errs, p.stop(context.Background(), 10*time.Second))
		}
	}
	e.apiserver, e.etcd = nil, nil
	if e.Dir != "" {
		errs = append(errs, os.RemoveAll(e.Dir))
	}
	return errors.Join(errs...)
}

// Logs returns the last n lines of each process's log, for a failing test.
func (e *Env) Logs(n int) string {
	var b strings.Builder
	for _, p := range []*process{e.etcd, e.apiserver} {
		if p != nil {
			fmt.Fprintf(&b, "--- %s\n%s\n", p.name, p.logTail(n))
		}
	}
	return b.String()
}

// UserConfig returns a client configuration for a static user given in
// Options.Users (or AdminUser).
func (e *Env) UserConfig(name string) (*rest.Config, error) {
	tok, ok := e.tokens[name]
	if !ok {
		return nil, fmt.Errorf("kubetest: no static user %q", name)
	}
	c := rest.CopyConfig(e.Config)
	c.BearerToken = tok
	return c, nil
}

// writeTokens writes the static token file: the admin and opts' users.
func (e *Env) writeTokens(users []User) (string, error) {
	all := append([]User{{Name: AdminUser, Groups: []string{"system:masters"}}}, users...)
	var b bytes.Buffer
	for i, u := range all {
		if _, dup := e.tokens[u.Name]; dup || u.Name == "" {
			return "", fmt.Errorf("kubetest: user %q: empty or given twice", u.Name)
		}
		tok, err := randomToken()
		if err != nil {
			return "", err
		}
		e.tokens[u.Name] = tok
		// token,user,uid,"group1,group2"
		fmt.Fprintf(&b, "%s,%s,%d,%q\n", tok, u.Name, i+1, strings.Join(u.Groups, ","))
	}
	path := filepath.Join(e.Dir, "tokens.csv")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		return "", fmt.Errorf("kubetest: %w", err)
	}
	return path, nil
}

// writeServiceAccountKey writes the key that signs ServiceAccount tokens
// (ECDSA P-256: an RSA key takes long to make on a busy machine).
func (e *Env) writeServiceAccountKey() (keyPath, pubPath string, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("kubetest: service account key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return "", "", fmt.Errorf("kubetest: service account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return "", "", fmt.Errorf("kubetest: service account key: %w", err)
	}
	keyPath, pubPath = filepath.Join(e.Dir, "sa.key"), filepath.Join(e.Dir, "sa.pub")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", fmt.Errorf("kubetest: %w", err)
	}
	if err := os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		return "", "", fmt.Errorf("kubetest: %w", err)
	}
	return keyPath, pubPath, nil
}

func randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("kubetest: token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("kubetest: free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// FindBinaries runs scripts/testenv.sh (found above the working directory)
// unless BinDirEnv is set, and returns the directory it prints.
func FindBinaries(ctx context.Context) (string, error) {
	if d := os.Getenv(BinDirEnv); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("kubetest: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		script := filepath.Join(d, "scripts", "testenv.sh")
		if _, err := os.Stat(script); err == nil {
			var out bytes.Buffer
			cmd := exec.CommandContext(ctx, script)
			cmd.Stdout, cmd.Stderr = &out, os.Stderr
			if err := cmd.Run(); err != nil {
				return "", fmt.Errorf("kubetest: %s: %w", script, err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			return lines[len(lines)-1], nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("kubetest: no scripts/testenv.sh above %s and %s unset", wd, BinDirEnv)
		}
	}
}

// process is a child in its own process group with its output in a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // valid once done is closed
}

// startProcess starts bin with its output appended to logPath (a process
// started again keeps its earlier log).
func startProcess(bin, logPath string, args ...string) (*process, error) {
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	defer log.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // Stop kills the group by its id
		Pdeathsig: syscall.SIGKILL, // and so does the kernel if the test binary dies
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("kubetest: start %s: %w", bin, err)
	}
	p := &process{name: filepath.Base(bin), cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace or
// when ctx ends; SIGKILL at once if grace is 0.
func (p *process) stop(ctx context.Context, grace time.Duration) error {
	pgid := p.cmd.Process.Pid
	if p.exited() {
		syscall.Kill(-pgid, syscall.SIGKILL) // anything it left in its group
		return nil
	}
	sig := syscall.SIGTERM
	if grace == 0 {
		sig = syscall.SIGKILL
	}
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kubetest: stop %s: %w", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(grace):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	case <-ctx.Done():
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	return nil
}

func (p *process) logTail(n int) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
