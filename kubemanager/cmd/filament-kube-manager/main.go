// filament-kube-manager is Filament's cluster-wide controller: it takes
// part in leader election on a Lease (two replicas, one leads), serves
// /healthz and /metrics, and while it leads runs the controllers
// (kubemanager/manager) that turn Namespaces, Pods, Nodes, Services,
// EndpointSlices and NetworkPolicies into VirtualNetworks, Ports with
// addresses, ServiceRecords and PolicyRecords.
//
// SIGTERM or SIGINT: release the Lease (the other replica takes over within
// one retry period) and exit 0. Losing the Lease while running: exit 1, so
// that the restarted process starts from the API server's state.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/filament-net/filament/internal/logging"
	"github.com/filament-net/filament/kubemanager/apimetrics"
	"github.com/filament-net/filament/kubemanager/crdclient"
	"github.com/filament-net/filament/kubemanager/leader"
	"github.com/filament-net/filament/kubemanager/manager"
	"github.com/filament-net/filament/kubemanager/netconfig"
)

const usage = `Usage: filament-kube-manager [--kubeconfig FILE] [flags]

Filament's cluster-wide controller. Run two replicas: they elect a leader
on a Lease (--lease-namespace/--lease-name), and the leader turns
Namespaces, Pods, Nodes, Services, EndpointSlices and NetworkPolicies into
filament.dev objects: a VirtualNetwork for the cluster's pod network and
one per namespace annotated filament.dev/isolated: "true"; a Port with
addresses (IPAM kept in ConfigMaps, so a restarted replica continues where
it stopped) for every scheduled pod not on the host network; ServiceRecords
and PolicyRecords. /healthz and /metrics on --listen. SIGTERM releases the
Lease and exits 0. docs/kubernetes.md has the objects and the RBAC it needs.

Flags:
`

func main() {
	os.Exit(run())
}

func run() int {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig `file`; empty: the pod's service account (in-cluster)")
	listen := flag.String("listen", ":9465", "host:port of /healthz and /metrics")
	level := flag.String("log-level", "info", "debug, info, warn or error")
	var lc leader.Config
	host, _ := os.Hostname()
	flag.StringVar(&lc.Namespace, "lease-namespace", "filament-system", "namespace of the leader election Lease")
	flag.StringVar(&lc.Name, "lease-name", "filament-kube-manager", "name of the leader election Lease")
	flag.StringVar(&lc.Identity, "identity", host, "this replica's name in the Lease (unique: the pod's name)")
	flag.DurationVar(&lc.LeaseDuration, "lease-duration", 15*time.Second, "how long a Lease not renewed keeps the other replicas waiting")
	flag.DurationVar(&lc.RenewDeadline, "renew-deadline", 10*time.Second, "how long the leader tries to renew before it gives up leading")
	flag.DurationVar(&lc.RetryPeriod, "retry-period", 2*time.Second, "how often replicas try to acquire or renew the Lease")
	var netCfg netconfig.Config
	netCfg.RegisterFlags(flag.CommandLine)
	mc := manager.Config{Net: &netCfg}
	flag.StringVar(&mc.IPAMNamespace, "ipam-namespace", "", "namespace of the address blocks (ConfigMaps); empty: --lease-namespace")
	flag.IntVar(&mc.Workers, "workers", 32, "workers making Ports (API writes in flight; their address claims are committed in groups, one block update for all claims waiting)")
	flag.DurationVar(&mc.Resync, "resync", 10*time.Minute, "how often every cached object is reconciled again")
	flag.DurationVar(&mc.SweepPeriod, "sweep-period", time.Minute, "how often address claims without a Port are looked for")
	qps := flag.Float64("kube-api-qps", 500, "requests per second to the API server: about 2.2 per new pod (client-go's default, 5, makes 1,000 pods' Ports take minutes)")
	burst := flag.Int("kube-api-burst", 1000, "burst of requests to the API server above --kube-api-qps")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), usage)
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := netCfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "filament-kube-manager: %v\n", err)
		return 2
	}
	if mc.IPAMNamespace == "" {
		mc.IPAMNamespace = lc.Namespace
	}

	log, err := logging.New(*level)
	if err != nil {
		fmt.Fprintf(os.Stderr, "filament-kube-manager: %v\n", err)
		var lerr *logging.ErrLevel
		if errors.As(err, &lerr) {
			return 2
		}
		return 1
	}
	defer func() { _ = log.Sync() }()
	log = log.With(zap.String("identity", lc.Identity))

	var cfg *rest.Config
	if *kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", *kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		log.Error("no API server configuration", zap.String("kubeconfig", *kubeconfig), zap.Error(err))
		return 2
	}
	// Writes carry the replica's name (the API server's managedFields
	// manager): which replica wrote an object can be told afterwards.
	cfg.UserAgent = "filament-kube-manager@" + lc.Identity
	cfg.QPS, cfg.Burst = float32(*qps), *burst
	api := apimetrics.New()
	api.Register()
	// Built-in kinds (Pods, ConfigMaps, Leases, ...) in protobuf, as
	// kube-controller-manager does: cheaper than JSON for the API server to
	// encode, its CPU being what bounds Ports at scale. Filament's kinds
	// have no protobuf form: crdclient speaks JSON on its own copy.
	coreCfg := rest.CopyConfig(cfg)
	coreCfg.ContentType = "application/vnd.kubernetes.protobuf"
	coreCfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cs, err := kubernetes.NewForConfig(coreCfg)
	if err != nil {
		log.Error("cannot make a client", zap.Error(err))
		return 1
	}
	el, err := leader.New(lc, cs, log)
	if err != nil {
		log.Error("bad leader election flags", zap.Error(err))
		return 2
	}
	crd, err := crdclient.New(cfg)
	if err != nil {
		log.Error("cannot make a client", zap.Error(err))
		return 1
	}
	mgr, err := manager.New(mc, cs, crd, log)
	if err != nil {
		log.Error("bad flags", zap.Error(err))
		return 2
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(el.Collectors()...)
	reg.MustRegister(mgr.Collectors()...)
	reg.MustRegister(api.Collectors()...)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := el.Healthz(r); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("cannot serve /healthz and /metrics", zap.String("listen", *listen), zap.Error(err))
		return 1
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	log.Info("serving /healthz and /metrics", zap.String("listen", ln.Addr().String()))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err = el.Run(ctx, func(ctx context.Context) {
		if err := mgr.Run(ctx); err != nil {
			log.Error("controllers stopped", zap.Error(err))
		}
	})
	if errors.Is(err, leader.ErrLost) {
		log.Error("lost the lease: exiting so that a fresh start takes over")
		return 1
	}
	if err != nil {
		log.Error("leader election failed", zap.Error(err))
		return 1
	}
	log.Info("stopped, the lease released")
	return 0
}
