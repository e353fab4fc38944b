package kubetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// env is the package's one API server, shared by its tests.
var env *Env

// helperEnv makes the test binary a child that starts an Env, prints its
// processes' ids and waits to be killed (TestDiesWithTestBinary).
const helperEnv = "KUBETEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	start := time.Now()
	var err error
	env, err = Start(ctx, Options{Users: []User{{Name: "alice", Groups: []string{"filament-testers"}}}})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubetest:", err)
		os.Exit(1)
	}
	fmt.Printf("kubetest: etcd and kube-apiserver ready in %v\n", time.Since(start).Round(time.Millisecond))
	rc := m.Run()
	pids := []int{env.apiserver.cmd.Process.Pid, env.etcd.cmd.Process.Pid}
	dir := env.Dir
	stopStart := time.Now()
	err = env.Stop()
	fmt.Printf("kubetest: stopped in %v\n", time.Since(stopStart).Round(time.Millisecond))
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubetest: stop:", err)
		rc = 1
	}
	// Stop must leave nothing behind: no process, no directory.
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			fmt.Fprintf(os.Stderr, "kubetest: process %d still there after Stop (kill 0: %v)\n", pid, err)
			rc = 1
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		fmt.Fprintf(os.Stderr, "kubetest: %s still there after Stop (%v)\n", dir, err)
		rc = 1
	}
	os.Exit(rc)
}

func clientset(t *testing.T, cfg *rest.Config) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func whoami(t *testing.T, cfg *rest.Config) authnv1.UserInfo {
	t.Helper()
	r, err := clientset(t, cfg).AuthenticationV1().SelfSubjectReviews().Create(context.Background(),
		&authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("self subject review: %v", err)
	}
	return r.Status.UserInfo
}

func TestVersionStamped(t *testing.T) {
	v, err := clientset(t, env.Config).Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != "v1.37.2" || v.Major != "1" || v.Minor != "37" {
		t.Errorf("server version %s (major %q minor %q), want v1.37.2", v.GitVersion, v.Major, v.Minor)
	}
}

func TestAdmin(t *testing.T) {
	u := whoami(t, env.Config)
	if u.Username != AdminUser || !contains(u.Groups, "system:masters") {
		t.Errorf("admin token is %s %v, want %s in system:masters", u.Username, u.Groups, AdminUser)
	}
}

// A static user has no rights until RBAC grants them: the API server
// authorizes with RBAC, not AlwaysAllow.
func TestStaticUserRBAC(t *testing.T) {
	ctx := context.Background()
	cfg, err := env.UserConfig("alice")
	if err != nil {
		t.Fatal(err)
	}
	if u := whoami(t, cfg); u.Username != "alice" || !contains(u.Groups, "filament-testers") {
		t.Fatalf("alice's token is %s %v", u.Username, u.Groups)
	}
	alice := clientset(t, cfg)
	if _, err := alice.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("alice lists namespaces before any grant: err %v, want Forbidden", err)
	}
	admin := clientset(t, env.Config)
	// A role of its own: the aggregated ones (view, edit) stay empty without
	// kube-controller-manager's aggregation controller.
	cr := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "kubetest-pod-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}},
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "kubetest-pod-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name},
		Subjects:   []rbacv1.Subject{{Kind: "Group", APIGroup: rbacv1.GroupName, Name: "filament-testers"}},
	}
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, cr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// RBAC's authorizer reads bindings through an informer: poll.
	pollUntil(t, 10*time.Second, "alice may list pods", func() error {
		_, err := alice.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		return err
	})
	if err := alice.CoreV1().Pods("default").Delete(ctx, "any", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("alice deletes a pod with get and list only: err %v, want Forbidden", err)
	}
	if _, err := env.UserConfig("bob"); err == nil {
		t.Error("UserConfig of an unknown user succeeded")
	}
}

func TestServiceAccountToken(t *testing.T) {
	ctx := context.Background()
	cfg, err := env.ServiceAccountConfig(ctx, "kubetest", "robot")
	if err != nil {
		t.Fatal(err)
	}
	u := whoami(t, cfg)
	if u.Username != "system:serviceaccount:kubetest:robot" || !contains(u.Groups, "system:serviceaccounts:kubetest") {
		t.Errorf("service account token is %s %v", u.Username, u.Groups)
	}
	if _, err := clientset(t, cfg).CoreV1().Secrets("kubetest").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("a service account without a role lists secrets: err %v, want Forbidden", err)
	}
	// A second call reuses the account and mints a new token.
	if _, err := env.ServiceAccountConfig(ctx, "kubetest", "robot"); err != nil {
		t.Errorf("second token: %v", err)
	}
}

// If the test binary is killed (go test -timeout sends SIGQUIT, a user
// SIGKILL), etcd and kube-apiserver must die with it. The helper's first
// try is also given a secure port that this test holds: Start must try
// again on other ports.
func TestDiesWithTestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second API server")
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+strconv.Itoa(busyPort), BinDirEnv+"="+os.Getenv(BinDirEnv))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	// "READY dir host attempts apiserver-pid etcd-pid"
	f := strings.Fields(line)
	if len(f) != 6 || f[0] != "READY" {
		t.Fatalf("helper said %q", line)
	}
	defer os.RemoveAll(f[1]) // its Stop never runs
	if f[2] == fmt.Sprintf("https://127.0.0.1:%d", busyPort) || f[3] != "2" {
		t.Errorf("helper's API server at %s after %s port choices; want 2, the first with the busy port %d", f[2], f[3], busyPort)
	}
	var pids []int
	for _, s := range f[4:] {
		pid, _ := strconv.Atoi(s)
		pids = append(pids, pid)
		if err := syscall.Kill(pid, 0); err != nil {
			t.Fatalf("process %d not running before the kill: %v", pid, err)
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	pollUntil(t, 10*time.Second, "etcd and kube-apiserver gone", func() error {
		for _, pid := range pids {
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("process %d still there", pid)
			}
		}
		return nil
	})
}

func helperMain() int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	busy, _ := strconv.Atoi(os.Getenv(helperEnv))
	choices := 0
	e, err := Start(ctx, Options{freePorts: func(n int) ([]int, error) {
		choices++
		ports, err := freePorts(n)
		if choices == 1 && err == nil {
			ports[2] = busy // the secure port
		}
		return ports, err
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	fmt.Printf("READY %s %s %d %d %d\n", e.Dir, e.Config.Host, choices, e.apiserver.cmd.Process.Pid, e.etcd.cmd.Process.Pid)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig // the test sends SIGKILL instead: only Pdeathsig cleans up
	e.Stop()
	return 1
}

func pollUntil(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
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

// TestRestartAPIServer: stopped, the API server refuses connections (etcd
// keeps running); started again, the clients made before work unchanged
// (same address, certificate and tokens) and find what was written before.
func TestRestartAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts the API server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := clientset(t, env.Config)
	aliceCfg, err := env.UserConfig("alice")
	if err != nil {
		t.Fatal(err)
	}
	alice := clientset(t, aliceCfg)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "before-restart"},
		Data: map[string]string{"k": "v"}}
	if _, err := admin.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.CoreV1().ConfigMaps("default").Delete(context.Background(), cm.Name, metav1.DeleteOptions{})
	})
	pid := env.apiserver.cmd.Process.Pid
	logBefore, err := os.ReadFile(env.apiserverLog)
	if err != nil {
		t.Fatal(err)
	}

	stopped := time.Now()
	if err := env.StopAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("kube-apiserver stopped in %v", time.Since(stopped).Round(time.Millisecond))
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kube-apiserver %d still there after StopAPIServer (kill 0: %v)", pid, err)
	}
	if _, err := admin.CoreV1().ConfigMaps("default").Get(ctx, cm.Name, metav1.GetOptions{}); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Get with the API server stopped: %v, want connection refused", err)
	}
	if err := env.StopAPIServer(ctx); err == nil {
		t.Error("StopAPIServer twice: no error")
	}

	started := time.Now()
	if err := env.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("kube-apiserver ready again in %v", time.Since(started).Round(time.Millisecond))
	if err := env.StartAPIServer(ctx); err == nil {
		t.Error("StartAPIServer while running: no error")
	}
	got, err := admin.CoreV1().ConfigMaps("default").Get(ctx, cm.Name, metav1.GetOptions{})
	if err != nil || got.Data["k"] != "v" {
		t.Fatalf("ConfigMap written before the restart: %v %v", got, err)
	}
	// A static token user is still known, with the same rights (none here).
	if _, err := alice.CoreV1().ConfigMaps("default").Get(ctx, cm.Name, metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("alice after the restart: %v, want forbidden (authenticated, no rights)", err)
	}
	logAfter, err := os.ReadFile(env.apiserverLog)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(logAfter, logBefore) || len(logAfter) == len(logBefore) {
		t.Errorf("kube-apiserver's log not appended to: %d bytes before, %d after", len(logBefore), len(logAfter))
	}
}
