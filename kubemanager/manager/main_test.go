package manager

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/filament-net/filament/deploy/crds"
	"github.com/filament-net/filament/internal/kubetest"
	"github.com/filament-net/filament/kubemanager/crdclient"
	"github.com/filament-net/filament/kubemanager/netconfig"
)

// One API server for the package; tests use their own namespaces.
var (
	env  *kubetest.Env
	kube kubernetes.Interface
	crd  *crdclient.Client
)

const systemNS = "filament-system"

func TestMain(m *testing.M) {
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	var err error
	env, err = kubetest.Start(ctx, kubetest.Options{})
	if err == nil {
		err = crds.Install(ctx, env.Config)
	}
	if err == nil {
		kube = kubernetes.NewForConfigOrDie(env.Config)
		crd, err = crdclient.New(env.Config)
	}
	if err == nil {
		_, err = kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNS}}, metav1.CreateOptions{})
	}
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		if env != nil {
			fmt.Fprintln(os.Stderr, env.Logs(30))
			env.Stop()
		}
		os.Exit(1)
	}
	rc := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop:", err)
		rc = 1
	}
	os.Exit(rc)
}

// testNet is the network configuration of every test: dual stack, and
// isolated namespaces get /29s (5 pod addresses) so that a test can fill one.
func testNet(t *testing.T) *netconfig.Config {
	t.Helper()
	fs := flag.NewFlagSet("net", flag.ContinueOnError)
	var c netconfig.Config
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--pod-subnet-v6", "fd00:244::/64", "--isolated-pool-v4", "10.128.0.0/16",
		"--isolated-prefix-v4", "29"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return &c
}

// running is a Manager run in this process, stopped by stop.
type running struct {
	m    *Manager
	stop func()
}

func startManager(t *testing.T, name string, sweep time.Duration) *running {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)).Named(name)
	m, err := New(Config{Net: testNet(t), IPAMNamespace: systemNS, Workers: 8, Resync: 10 * time.Minute, SweepPeriod: sweep},
		kube, crd, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	r := &running{m: m}
	var stopped bool
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop", name)
		}
	}
	t.Cleanup(r.stop)
	return r
}
