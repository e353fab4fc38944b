package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
	"github.com/filament-net/filament/kubemanager/crdclient"
	"github.com/filament-net/filament/kubemanager/ipam"
)

// The leader SIGKILLed in the middle of 500 allocations (no release, no
// clean stop: a claim may be written without its Port, a Port without its
// status); the next replica takes over and finishes: 500 Ports, no address
// twice, no claim without its Port.
func TestKillMidway(t *testing.T) {
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(env.Config)
	crd, err := crdclient.New(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := kubeconfigFor(t)
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-k"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "killmid"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	first := startReplica(t, kubeconfig, "km-k1")
	holder(t, cs, first.id, 30*time.Second, first.id)

	const n = 500
	var wg sync.WaitGroup
	next := make(chan int)
	errs := make(chan error, n)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				_, err := cs.CoreV1().Pods("killmid").Create(ctx, &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("k-%d", i)},
					Spec:       corev1.PodSpec{NodeName: "node-k", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
				}, metav1.CreateOptions{})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	go func() {
		for i := range n {
			next <- i
		}
		close(next)
	}()
	ports := func() []v1alpha1.Port {
		l, err := crd.Ports.List(ctx, "killmid", metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return l.Items
	}
	deadline := time.Now().Add(time.Minute)
	for len(ports()) < 150 {
		if time.Now().After(deadline) {
			t.Fatalf("%d ports after a minute", len(ports()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	first.cmd.Process.Signal(syscall.SIGKILL)
	mid := len(ports())
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	second := startReplica(t, kubeconfig, "km-k2")
	holder(t, cs, second.id, leaseDuration+44*retryPeriod/10+time.Second, second.id)
	var list []v1alpha1.Port
	deadline = time.Now().Add(2 * time.Minute)
	for {
		list = ports()
		done := 0
		for i := range list {
			if meta.IsStatusConditionTrue(list[i].Status.Conditions, v1alpha1.ConditionAllocated) {
				done++
			}
		}
		if done == n && len(list) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d ports, %d allocated, want %d", len(list), done, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("SIGKILL with %d of %d ports made; %s finished them", mid, n, second.id)

	seen := map[string]string{}
	uids := map[string]bool{}
	for _, p := range list {
		uids[p.Spec.Pod.UID] = true
		for _, ip := range p.Spec.IPs {
			if o, dup := seen[ip]; dup {
				t.Errorf("%s on %s and %s", ip, o, p.Name)
			}
			seen[ip] = p.Name
		}
	}
	// Claims: exactly one per pod (the default network is IPv4 only here),
	// each the address its Port carries.
	cms, err := cs.CoreV1().ConfigMaps("filament-system").List(ctx, metav1.ListOptions{LabelSelector: ipam.LabelNetwork + "=default"})
	if err != nil {
		t.Fatal(err)
	}
	perUID := map[string]int{}
	for _, cm := range cms.Items {
		for _, owner := range cm.Data {
			if !strings.HasPrefix(owner, "killmid/") {
				continue
			}
			uid := owner[strings.LastIndex(owner, "/")+1:]
			perUID[uid]++
			if !uids[uid] {
				t.Errorf("claim of %s, which has no Port", owner)
			}
		}
	}
	for uid := range uids {
		if perUID[uid] != 1 {
			t.Errorf("pod %s holds %d claims, want 1", uid, perUID[uid])
		}
	}
}
