package main

import (
	"context"
	"fmt"
	"os"
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
