package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/filament-net/filament/internal/kubetest"
)

var (
	env *kubetest.Env
	bin string // the built filament-kube-manager
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "filament-kube-manager-test")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "filament-kube-manager")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	env, err = kubetest.Start(ctx, kubetest.Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	rc := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop:", err)
		rc = 1
	}
	os.RemoveAll(dir)
	os.Exit(rc)
}

func TestHelp(t *testing.T) {
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	for _, f := range []string{"-kubeconfig", "-lease-duration", "-retry-period", "-listen"} {
		if !strings.Contains(string(out), f) {
			t.Errorf("--help does not mention %s:\n%s", f, out)
		}
	}
}

// Election timing for the test: a failover bound of seconds, not 20 s.
const (
	leaseDuration = 4 * time.Second
	renewDeadline = 3 * time.Second
	retryPeriod   = 500 * time.Millisecond
)

type replica struct {
	id     string
	cmd    *exec.Cmd
	listen string
	done   chan error
	log    *os.File
}

func startReplica(t *testing.T, kubeconfig, id string) *replica {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	logf, err := os.Create(filepath.Join(t.TempDir(), id+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--kubeconfig", kubeconfig, "--identity", id, "--listen", addr,
		"--lease-duration", leaseDuration.String(), "--renew-deadline", renewDeadline.String(),
		"--retry-period", retryPeriod.String())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &replica{id: id, cmd: cmd, listen: addr, done: make(chan error, 1), log: logf}
	go func() { r.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill() // by its PID; a no-op once it has exited
		<-r.done
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("--- %s's log:\n%s", id, b)
		}
		logf.Close()
	})
	return r
}

// get returns the body of one of the replica's endpoints.
func (r *replica) get(path string) (int, string, error) {
	resp, err := http.Get("http://" + r.listen + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func (r *replica) leaderMetric() string {
	_, body, err := r.get("/metrics")
	if err != nil {
		return "unreachable: " + err.Error()
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "filament_kube_manager_leader ") {
			return strings.TrimPrefix(line, "filament_kube_manager_leader ")
		}
	}
	return "absent"
}

// holder polls the Lease until its holder is want (any of the replicas if
// want is ""), returning the holder and when it was seen.
func holder(t *testing.T, cs kubernetes.Interface, want string, timeout time.Duration, ids ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		l, err := cs.CoordinationV1().Leases("filament-system").Get(context.Background(), "filament-kube-manager", metav1.GetOptions{})
		if err == nil && l.Spec.HolderIdentity != nil {
			last = *l.Spec.HolderIdentity
			if last == want || (want == "" && contains(ids, last)) {
				return last
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("lease holder %q, want %q within %v", last, want, timeout)
	return ""
}

// The kube-manager's ServiceAccount may only read and write Leases in its
// namespace: leader election needs no more.
func kubeconfigFor(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	sa, err := env.ServiceAccountConfig(ctx, "filament-system", "kube-manager")
	if err != nil {
		t.Fatal(err)
	}
	admin := kubernetes.NewForConfigOrDie(env.Config)
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: "filament-system", Name: "kube-manager-leader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{coordv1.GroupName}, Resources: []string{"leases"},
			Verbs: []string{"get", "create", "update"}}},
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: "filament-system", Name: "kube-manager-leader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "filament-system", Name: "kube-manager"}},
	}
	if _, err := admin.RbacV1().Roles("filament-system").Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().RoleBindings("filament-system").Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: sa.Host, CertificateAuthorityData: sa.CAData}
	kc.AuthInfos["kube-manager"] = &clientcmdapi.AuthInfo{Token: sa.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "kube-manager"}
	kc.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFailover(t *testing.T) {
	kubeconfig := kubeconfigFor(t)
	cs := kubernetes.NewForConfigOrDie(env.Config)
	a, b := startReplica(t, kubeconfig, "km-a"), startReplica(t, kubeconfig, "km-b")
	byID := map[string]*replica{a.id: a, b.id: b}

	first := holder(t, cs, "", 30*time.Second, a.id, b.id)
	lead := byID[first]
	other := a
	if lead == a {
		other = b
	}
	pollMetric(t, lead, "1")
	pollMetric(t, other, "0")
	for _, r := range []*replica{a, b} {
		if code, body, err := r.get("/healthz"); err != nil || code != http.StatusOK {
			t.Errorf("%s /healthz: %d %q %v", r.id, code, body, err)
		}
	}

	// SIGTERM: the leader releases the Lease and exits 0; the other takes
	// over at its next retry (within 2.2 periods, +1 s for scheduling):
	// sooner than an unreleased Lease could expire (leaseDuration - retryPeriod).
	start := time.Now()
	lead.cmd.Process.Signal(syscall.SIGTERM)
	holder(t, cs, other.id, 22*retryPeriod/10+time.Second, a.id, b.id)
	released := time.Since(start)
	select {
	case err := <-lead.done:
		if err != nil {
			t.Errorf("%s after SIGTERM: %v, want exit 0", lead.id, err)
		}
		lead.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not exit after SIGTERM", lead.id)
	}
	pollMetric(t, other, "1")
	t.Logf("SIGTERM: %s took over after %v (lease %v, retry %v)", other.id, released.Round(time.Millisecond), leaseDuration, retryPeriod)

	// SIGKILL: nobody releases the Lease; a new replica waits, then takes
	// over once the Lease expires. client-go retries with a jitter of up to
	// 1.2 periods and counts expiry from when it saw the last renewal: the
	// bound is leaseDuration + 4.4 retry periods.
	c := startReplica(t, kubeconfig, "km-c")
	pollMetric(t, c, "0")
	start = time.Now()
	other.cmd.Process.Signal(syscall.SIGKILL)
	bound := leaseDuration + 44*retryPeriod/10
	holder(t, cs, c.id, bound+time.Second, c.id) // +1 s: scheduling on a busy 2-core machine
	killed := time.Since(start)
	t.Logf("SIGKILL: %s took over after %v (bound %v)", c.id, killed.Round(time.Millisecond), bound)
	if killed < leaseDuration-retryPeriod {
		t.Errorf("failover after SIGKILL took %v: the Lease (%v) was not honoured", killed, leaseDuration)
	}
	pollMetric(t, c, "1")
}

func pollMetric(t *testing.T, r *replica, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := r.leaderMetric()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: filament_kube_manager_leader %s, want %s", r.id, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
