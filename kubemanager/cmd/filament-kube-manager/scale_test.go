package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
	"github.com/filament-net/filament/kubemanager/crdclient"
)

// TestScale is a figure, not a gate (docs/benchmarks/kubemanager.md): the
// time from the first of N Pod objects created to all their Ports
// allocated, and kube-manager's resident memory then. It runs only with
// FILAMENT_BENCH_KUBEMANAGER_PODS=N set.
func TestScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("FILAMENT_BENCH_KUBEMANAGER_PODS"))
	if n <= 0 {
		t.Skip("FILAMENT_BENCH_KUBEMANAGER_PODS unset")
	}
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(env.Config)
	crd, err := crdclient.New(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := kubeconfigFor(t)
	r := startReplica(t, kubeconfig, "km-scale")
	holder(t, cs, r.id, 30*time.Second, r.id)
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-s"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "scale"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	baseline := rss(t, r)
	pids := env.PIDs()
	pids["filament-kube-manager"] = r.cmd.Process.Pid
	pids["test"] = os.Getpid()
	cpu0, metrics0 := cpuSeconds(t, pids), scrape(t, r)

	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				_, err := cs.CoreV1().Pods("scale").Create(ctx, &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s-%d", i)},
					Spec:       corev1.PodSpec{NodeName: "node-s", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
				}, metav1.CreateOptions{})
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	created := time.Since(start)
	var done int
	deadline := time.Now().Add(10 * time.Minute)
	for {
		l, err := crd.Ports.List(ctx, "scale", metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			t.Fatal(err)
		}
		done = 0
		seen := map[string]bool{}
		for i := range l.Items {
			if meta.IsStatusConditionTrue(l.Items[i].Status.Conditions, v1alpha1.ConditionAllocated) {
				done++
				for _, ip := range l.Items[i].Spec.IPs {
					if seen[ip] {
						t.Fatalf("address %s twice", ip)
					}
					seen[ip] = true
				}
			}
		}
		if done == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d ports allocated after 10 min", done, n)
		}
		// Each list decodes every Port: polled each second so as not to
		// take the CPU the API server and kube-manager need.
		time.Sleep(time.Second)
	}
	all := time.Since(start)
	t.Logf("%d pods: created in %v, all Ports allocated %v after the first create; kube-manager resident %d MB (%d MB before the pods)",
		n, created.Round(time.Millisecond), all.Round(100*time.Millisecond), rss(t, r)>>20, baseline>>20)
	report(t, r.log.Name(), all, cpu0, cpuSeconds(t, pids), metrics0, scrape(t, r))
}

// report logs where the time went: each process's CPU (of the machine's
// cores), kube-manager's API requests by verb and resource (count, mean
// latency as client-go saw it), the time they waited for the client rate
// limiter, and the ports workers' busy time.
func report(t *testing.T, logPath string, wall time.Duration, cpu0, cpu1 map[string]float64, m0, m1 map[string]float64) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "CPU seconds in %.1f s of wall time (%d cores):", wall.Seconds(), runtime.NumCPU())
	names := slices.Sorted(maps.Keys(cpu1))
	for _, name := range names {
		fmt.Fprintf(&b, " %s %.1f", name, cpu1[name]-cpu0[name])
	}
	fmt.Fprintf(&b, "\nkube-manager requests:")
	for _, k := range slices.Sorted(maps.Keys(m1)) {
		labels, ok := strings.CutPrefix(k, "filament_kube_manager_api_request_seconds_count")
		if !ok {
			continue
		}
		c := m1[k] - m0[k]
		if c == 0 {
			continue
		}
		sum := m1["filament_kube_manager_api_request_seconds_sum"+labels] - m0["filament_kube_manager_api_request_seconds_sum"+labels]
		fmt.Fprintf(&b, "\n  %s: %.0f, mean %.1f ms", labels, c, 1000*sum/c)
	}
	lc := m1["filament_kube_manager_api_rate_limiter_seconds_count"] - m0["filament_kube_manager_api_rate_limiter_seconds_count"]
	ls := m1["filament_kube_manager_api_rate_limiter_seconds_sum"] - m0["filament_kube_manager_api_rate_limiter_seconds_sum"]
	if lc > 0 {
		fmt.Fprintf(&b, "\nrate limiter: %.0f waits, mean %.2f ms", lc, 1000*ls/lc)
	}
	for _, res := range []string{"ok", "error"} {
		k := `filament_kube_manager_reconcile_seconds_%s{controller="ports",result="` + res + `"}`
		c := m1[fmt.Sprintf(k, "count")] - m0[fmt.Sprintf(k, "count")]
		sum := m1[fmt.Sprintf(k, "sum")] - m0[fmt.Sprintf(k, "sum")]
		if c > 0 {
			fmt.Fprintf(&b, "\nports reconciles %s: %.0f, mean %.1f ms, %.1f worker-seconds (%.1f workers busy on average)",
				res, c, 1000*sum/c, sum, sum/wall.Seconds())
		}
	}
	// The first few retries' reasons, from kube-manager's log.
	if log, err := os.ReadFile(logPath); err == nil {
		var retries []string
		for _, line := range strings.Split(string(log), "\n") {
			if strings.Contains(line, "will retry") {
				retries = append(retries, line)
			}
		}
		fmt.Fprintf(&b, "\n%d retries logged", len(retries))
		for _, line := range retries[:min(3, len(retries))] {
			fmt.Fprintf(&b, "\n  %s", line)
		}
	}
	t.Log(b.String())
}

// scrape reads the replica's /metrics samples (name with labels -> value).
func scrape(t *testing.T, r *replica) map[string]float64 {
	t.Helper()
	_, body, err := r.get("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// cpuSeconds reads each process's user and system CPU time from
// /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s).
func cpuSeconds(t *testing.T, pids map[string]int) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for name, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// The command (field 2) may hold spaces: count from its ')'.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		utime, _ := strconv.ParseFloat(f[11], 64)
		stime, _ := strconv.ParseFloat(f[12], 64)
		out[name] = (utime + stime) / 100
	}
	return out
}

// rss reads process_resident_memory_bytes from the replica's /metrics.
func rss(t *testing.T, r *replica) int64 {
	t.Helper()
	_, body, err := r.get("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, "process_resident_memory_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int64(f)
		}
	}
	t.Fatal("no process_resident_memory_bytes")
	return 0
}
