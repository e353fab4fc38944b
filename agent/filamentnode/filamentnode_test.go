package filamentnode

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/filament-net/filament/agent/config"
	"github.com/filament-net/filament/deploy/crds"
	"github.com/filament-net/filament/internal/kubetest"
	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
	"github.com/filament-net/filament/kubemanager/crdclient"
)

var env *kubetest.Env

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	var err error
	env, err = kubetest.Start(ctx, kubetest.Options{})
	if err == nil {
		err = crds.Install(ctx, env.Config)
	}
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "filamentnode:", err)
		if env != nil {
			_ = env.Stop()
		}
		os.Exit(1)
	}
	rc := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "filamentnode: stop:", err)
		rc = 1
	}
	os.Exit(rc)
}

func TestSpec(t *testing.T) {
	c := &config.Config{Fabric: config.Fabric{UnderlayIP: netip.MustParseAddr("192.0.2.1")}}
	want := v1alpha1.FilamentNodeSpec{UnderlayIPv4: "192.0.2.1", Encapsulations: []string{"vxlan", "mplsoudp", "mplsogre"}}
	if got := Spec(c); !reflect.DeepEqual(got, want) {
		t.Errorf("IPv4: %+v, want %+v", got, want)
	}
	c.Fabric.UnderlayIPv6 = netip.MustParseAddr("fd00:100::1")
	want.UnderlayIPv6 = "fd00:100::1"
	if got := Spec(c); !reflect.DeepEqual(got, want) {
		t.Errorf("dual stack: %+v, want %+v", got, want)
	}
}

// poll checks cond every 20 ms until it holds or d passes.
func poll(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPublish runs a Publisher against the real API server: it waits for
// its Node, creates the FilamentNode owned by it, puts back a spec edited
// by hand and a FilamentNode deleted by hand, follows a Node recreated
// (a new uid), and leaves other nodes' FilamentNodes alone.
func TestPublish(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kube := kubernetes.NewForConfigOrDie(env.Config)
	crd, err := crdclient.New(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	other := &v1alpha1.FilamentNode{ObjectMeta: metav1.ObjectMeta{Name: "node-b"},
		Spec: v1alpha1.FilamentNodeSpec{UnderlayIPv4: "192.0.2.2", Encapsulations: []string{"vxlan"}}}
	if _, err := crd.FilamentNodes.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	spec := v1alpha1.FilamentNodeSpec{UnderlayIPv4: "192.0.2.1", UnderlayIPv6: "fd00:100::1", Encapsulations: Encapsulations}
	p, err := New(env.Config, "node-a", spec, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	p.retry = 100 * time.Millisecond
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { p.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()

	// No Node yet: nothing written after a few retries (an absence: no
	// condition to poll for).
	time.Sleep(300 * time.Millisecond)
	if w, pub := testutil.ToFloat64(p.writes), testutil.ToFloat64(p.published); w != 0 || pub != 0 {
		t.Errorf("without the Node: writes %v, published %v: want 0 and 0", w, pub)
	}
	if _, err := crd.FilamentNodes.Get(ctx, "", "node-a"); !apierrors.IsNotFound(err) {
		t.Fatalf("FilamentNode node-a before its Node: %v, want NotFound", err)
	}

	node, err := kube.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	published := func(uid string) func() bool {
		return func() bool {
			fn, err := crd.FilamentNodes.Get(ctx, "", "node-a")
			return err == nil && reflect.DeepEqual(fn.Spec, spec) && len(fn.OwnerReferences) == 1 &&
				fn.OwnerReferences[0] == metav1.OwnerReference{APIVersion: "v1", Kind: "Node", Name: "node-a", UID: node.UID} &&
				string(node.UID) == uid && testutil.ToFloat64(p.published) == 1
		}
	}
	poll(t, "FilamentNode node-a published, owned by Node node-a", 10*time.Second, published(string(node.UID)))
	if w := testutil.ToFloat64(p.writes); w != 1 {
		t.Errorf("writes %v after the creation, want 1", w)
	}

	// Edited by hand: put back.
	fn, err := crd.FilamentNodes.Get(ctx, "", "node-a")
	if err != nil {
		t.Fatal(err)
	}
	fn.Spec.UnderlayIPv4 = "192.0.2.99"
	if _, err := crd.FilamentNodes.Update(ctx, fn); err != nil {
		t.Fatal(err)
	}
	poll(t, "the edited FilamentNode put back", 10*time.Second, func() bool {
		return published(string(node.UID))() && testutil.ToFloat64(p.writes) == 2
	})

	// Deleted by hand: made again.
	if err := crd.FilamentNodes.Delete(ctx, "", "node-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the deleted FilamentNode made again", 10*time.Second, func() bool {
		return published(string(node.UID))() && testutil.ToFloat64(p.writes) == 3
	})

	// The Node recreated (no garbage collector here: the FilamentNode
	// stays, owned by the old uid): the next change moves it to the new
	// Node.
	if err := kube.CoreV1().Nodes().Delete(ctx, "node-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if node, err = kube.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	fn, err = crd.FilamentNodes.Get(ctx, "", "node-a")
	if err != nil {
		t.Fatal(err)
	}
	fn.Labels = map[string]string{"touched": "yes"}
	if _, err := crd.FilamentNodes.Update(ctx, fn); err != nil {
		t.Fatal(err)
	}
	poll(t, "the FilamentNode owned by the new Node", 10*time.Second, published(string(node.UID)))
	fn, err = crd.FilamentNodes.Get(ctx, "", "node-a")
	if err != nil || fn.Labels["touched"] != "yes" {
		t.Errorf("the FilamentNode's labels %v (%v): want them kept", fn.Labels, err)
	}

	if b, err := crd.FilamentNodes.Get(ctx, "", "node-b"); err != nil || !reflect.DeepEqual(b.Spec, other.Spec) {
		t.Errorf("FilamentNode node-b: %+v %v: want it untouched", b, err)
	}
}
