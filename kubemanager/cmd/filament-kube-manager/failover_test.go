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

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/filament-net/filament/deploy/crds"
	"github.com/filament-net/filament/internal/kubetest"
	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
	"github.com/filament-net/filament/kubemanager/crdclient"
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
	if err == nil {
		err = crds.Install(ctx, env.Config)
	}
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

// A bad network flag: exit 2 before anything else, the flag named.
func TestBadFlag(t *testing.T) {
	for _, args := range [][]string{
		{"--pod-subnet-v4", "10.244.0.1/16"},
		{"--pod-vni", "0"},
		{"--isolated-pool-v4", "10.244.0.0/20"},
	} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("%v: %v, want exit 2", args, err)
		}
		if !strings.Contains(string(out), args[0]) {
			t.Errorf("%v: output does not name %s: %s", args, args[0], out)
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

// The kube-manager runs with its ServiceAccount's token and exactly the
// rights of deploy/kube-manager/rbac.yaml.
func kubeconfigFor(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	admin := kubernetes.NewForConfigOrDie(env.Config)
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "filament-system"}},
		metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	applyRBAC(t, admin)
	sa, err := env.ServiceAccountConfig(ctx, "filament-system", "kube-manager")
	if err != nil {
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
	// Only the leader runs the controllers and writes.
	ctx := context.Background()
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-f"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "failover"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p1, managers := podPort(t, "fo-1")
	wroteOnly(t, "fo-1's Port", managers, lead.id)
	if other.reconciled() {
		t.Errorf("%s, not leading, reconciled", other.id)
	}
	if !lead.reconciled() {
		t.Errorf("%s, leading, shows no reconcile", lead.id)
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
	p2, managers := podPort(t, "fo-2")
	wroteOnly(t, "fo-2's Port", managers, other.id)
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
	p3, managers := podPort(t, "fo-3")
	wroteOnly(t, "fo-3's Port", managers, c.id)
	seen := map[string]string{}
	for _, p := range []*v1alpha1.Port{p1, p2, p3} {
		for _, ip := range p.Spec.IPs {
			if o, dup := seen[ip]; dup {
				t.Errorf("%s on %s and %s", ip, o, p.Name)
			}
			seen[ip] = p.Name
		}
	}
}

// applyRBAC creates the objects of deploy/kube-manager/rbac.yaml.
func applyRBAC(t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	b, err := os.ReadFile("../../../deploy/kube-manager/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var kind struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &kind); err != nil {
			t.Fatal(err)
		}
		switch kind.Kind {
		case "ClusterRole":
			var o rbacv1.ClusterRole
			mustYAML(t, doc, &o)
			_, err = cs.RbacV1().ClusterRoles().Create(ctx, &o, metav1.CreateOptions{})
		case "ClusterRoleBinding":
			var o rbacv1.ClusterRoleBinding
			mustYAML(t, doc, &o)
			_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, &o, metav1.CreateOptions{})
		case "Role":
			var o rbacv1.Role
			mustYAML(t, doc, &o)
			_, err = cs.RbacV1().Roles(o.Namespace).Create(ctx, &o, metav1.CreateOptions{})
		case "RoleBinding":
			var o rbacv1.RoleBinding
			mustYAML(t, doc, &o)
			_, err = cs.RbacV1().RoleBindings(o.Namespace).Create(ctx, &o, metav1.CreateOptions{})
		default:
			t.Fatalf("rbac.yaml: unexpected kind %q", kind.Kind)
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
}

func mustYAML(t *testing.T, doc string, into any) {
	t.Helper()
	if err := yaml.Unmarshal([]byte(doc), into); err != nil {
		t.Fatal(err)
	}
}

// podPort creates a pod on node-f and waits for its Port to be Allocated,
// returning the managers (replicas) that wrote it.
func podPort(t *testing.T, name string) (*v1alpha1.Port, []string) {
	t.Helper()
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(env.Config)
	pod, err := cs.CoreV1().Pods("failover").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "failover", Name: name},
		Spec:       corev1.PodSpec{NodeName: "node-f", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	crd, err := crdclient.New(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := crd.Ports.Get(ctx, "failover", name+"-eth0")
		if err == nil && p.Spec.Pod.UID == string(pod.UID) && meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionAllocated) {
			var managers []string
			for _, mf := range p.ManagedFields {
				managers = append(managers, mf.Manager)
			}
			return p, managers
		}
		if time.Now().After(deadline) {
			t.Fatalf("no allocated Port for pod %s: %v", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wroteOnly fails unless every manager is the replica id.
func wroteOnly(t *testing.T, what string, managers []string, id string) {
	t.Helper()
	if len(managers) == 0 {
		t.Errorf("%s: no managedFields", what)
	}
	for _, m := range managers {
		if m != "filament-kube-manager@"+id {
			t.Errorf("%s written by %q, want only the leader %s", what, m, id)
		}
	}
}

// reconciled tells whether a replica has run any reconcile.
func (r *replica) reconciled() bool {
	_, body, _ := r.get("/metrics")
	return strings.Contains(body, "filament_kube_manager_reconcile_seconds_count")
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
