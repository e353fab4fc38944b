// filament-agent is Filament's per-node daemon. It reads one YAML file
// (agent/config, docs/agent.md), programs the node's networks and peers
// into filament-dataplane, and serves the CNI API that filament-cni calls
// to attach pods. In standalone mode the networks, peers and pod addresses
// are the file's; in Kubernetes mode (--mode kubernetes) they come from
// the API server's VirtualNetworks, FilamentNodes and Ports
// (agent/kubesource), and the agent publishes its own node's FilamentNode
// (agent/filamentnode).
//
// SIGTERM or SIGINT: remove the CNI configuration it published
// (agent/cniconf; left for the next agent with --cni-conf-keep-on-exit),
// stop serving and exit 0, deleting nothing from the dataplane (pods keep
// forwarding; the next agent resyncs).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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
	"k8s.io/client-go/tools/clientcmd"

	"github.com/filament-net/filament/agent/cniconf"
	"github.com/filament-net/filament/agent/cniserver"
	"github.com/filament-net/filament/agent/config"
	"github.com/filament-net/filament/agent/dpmetrics"
	"github.com/filament-net/filament/agent/filamentnode"
	"github.com/filament-net/filament/agent/kubesource"
	"github.com/filament-net/filament/agent/node"
	"github.com/filament-net/filament/internal/logging"
)

const agentUsage = `Usage: filament-agent [--config FILE] [--mode standalone|kubernetes] [flags]

Filament's per-node agent. It programs the node's networks, peers and host
port into filament-dataplane (over its API socket, sockets.dataplane) and
serves the CNI API that filament-cni calls to attach pods (sockets.cni).
Standalone mode: networks, peers and pod addresses come from the file.
Kubernetes mode: from the API server's VirtualNetworks, FilamentNodes and
Ports (kube-manager allocates the addresses); the agent writes each Port's
Programmed condition.

It resyncs the dataplane whenever either side restarts (what it wants is
applied, what it owns and no longer wants is swept); pods keep forwarding
while it is down. SIGTERM: remove the CNI configuration, stop serving, exit
0, deleting nothing from the dataplane. /metrics, /healthz and /readyz on
metrics.listen. The configuration file is documented in docs/agent.md.

Flags:
`

func main() {
	os.Exit(run())
}

func run() int {
	cfgPath := flag.String("config", "/etc/filament/agent.yaml", "the node's configuration `file` (docs/agent.md)")
	level := flag.String("log-level", "info", "debug, info, warn or error")
	check := flag.Bool("check", false, "validate the configuration and exit")
	watch := flag.Duration("watch", time.Second, "how often to check the dataplane while it answers (resync after it restarts); while it does not, every 50ms to 500ms")
	mode := flag.String("mode", "", "standalone or kubernetes; default: the file's mode key (standalone). Kubernetes: networks, peers and pod addresses from the API server")
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubernetes mode: kubeconfig `file` (default $KUBECONFIG; empty: in-cluster)")
	nodeName := flag.String("node-name", os.Getenv("NODE_NAME"), "kubernetes mode: this node's name (default $NODE_NAME, then the file's node key)")
	confDir := flag.String("cni-conf-dir", cniconf.DefaultDir, "write the CNI configuration into this `directory` while the agent can serve ADD; "+
		"used in kubernetes mode, or in standalone mode when given; \"\": never")
	confName := flag.String("cni-conf-name", "10-filament.conflist", "the CNI configuration's file name")
	cniNetwork := flag.String("cni-network", "filament", "the CNI network's name in that configuration")
	confGrace := flag.Duration("cni-conf-grace", 10*time.Second, "remove the CNI configuration once the agent has not been ready (dataplane gone) this long")
	confKeep := flag.Bool("cni-conf-keep-on-exit", false, "leave the CNI configuration at exit for the next agent (an upgrade), and keep one found at start for --cni-conf-grace while not ready")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), agentUsage)
		flag.PrintDefaults()
	}
	flag.Parse()
	confDirSet := false
	flag.Visit(func(f *flag.Flag) { confDirSet = confDirSet || f.Name == "cni-conf-dir" })

	cfg, err := config.Load(*cfgPath, func(c *config.Config) {
		if *mode != "" {
			c.Mode = *mode
		}
		if *nodeName != "" && (c.Mode == config.ModeKubernetes) {
			c.Node = *nodeName
		}
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "filament-agent: %v\n", err)
		return 2
	}
	if *check {
		fmt.Printf("%s: ok\n", *cfgPath)
		return 0
	}
	log, err := logging.New(*level)
	if err != nil {
		fmt.Fprintf(os.Stderr, "filament-agent: %v\n", err)
		var lerr *logging.ErrLevel
		if errors.As(err, &lerr) {
			return 2
		}
		return 1
	}
	defer func() { _ = log.Sync() }()
	log = log.With(zap.String("node", cfg.Node))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	// The CNI configuration tells the runtime the node takes pods: only
	// while ADD is served. Standalone mode (demos, tests) writes none
	// unless asked.
	var conf *cniconf.Publisher
	if *confDir != "" && (cfg.Mode == config.ModeKubernetes || confDirSet) {
		conf, err = cniconf.New(cniconf.Options{Dir: *confDir, Name: *confName, Network: *cniNetwork,
			Socket: cfg.Sockets.CNI, Grace: *confGrace, Poll: 200 * time.Millisecond, KeepOnExit: *confKeep}, log)
		if err != nil {
			log.Error("bad CNI configuration flags", zap.Error(err))
			return 2
		}
	}
	n, err := node.New(cfg, log)
	if err != nil {
		log.Error("cannot load the state", zap.String("state_dir", cfg.StateDir), zap.Error(err))
		return 1
	}
	var src *kubesource.Source
	var pub *filamentnode.Publisher
	if cfg.Mode == config.ModeKubernetes {
		kc, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
		if err != nil {
			log.Error("cannot configure the API server client", zap.String("kubeconfig", *kubeconfig), zap.Error(err))
			return 1
		}
		if src, err = kubesource.New(kc, cfg.Node, log); err != nil {
			log.Error("cannot watch the API server", zap.Error(err))
			return 1
		}
		n.SetPortSource(src)
		if pub, err = filamentnode.New(kc, cfg.Node, filamentnode.Spec(cfg), log); err != nil {
			log.Error("cannot publish the node's FilamentNode", zap.Error(err))
			return 1
		}
	}
	// The CNI socket is up first: until the dataplane is programmed it
	// answers "try again later" (STATUS: not ready).
	srv, err := cniserver.Listen(cfg.Sockets.CNI, n, log)
	if err != nil {
		log.Error("cannot serve the CNI API", zap.String("socket", cfg.Sockets.CNI), zap.Error(err))
		return 1
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve() }()
	log.Info("serving the CNI API", zap.String("socket", cfg.Sockets.CNI), zap.String("dataplane", cfg.Sockets.Dataplane))

	confCtx, stopConf := context.WithCancel(ctx)
	defer stopConf()
	confDone := make(chan struct{})
	if conf != nil {
		go func() { conf.Run(confCtx, n.Ready); close(confDone) }()
	} else {
		close(confDone)
	}

	if cfg.Metrics.Listen != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), n)
		reg.MustRegister(cniserver.Collectors()...)
		if src != nil {
			reg.MustRegister(src.Collectors()...)
			reg.MustRegister(src) // the service and policy records held
		}
		if pub != nil {
			reg.MustRegister(pub.Collectors()...)
		}
		if conf != nil {
			reg.MustRegister(conf.Collector())
		}
		// The dataplane's counters, read at each scrape (within 3 s).
		dpm := dpmetrics.New(cfg.Sockets.Dataplane, 3*time.Second, n.PortPods, log)
		defer dpm.Close()
		reg.MustRegister(dpm)
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		// The probes: alive while the process serves; ready while ADD is.
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			if !n.Ready() {
				http.Error(w, "not ready: the dataplane is not programmed", http.StatusServiceUnavailable)
				return
			}
			_, _ = io.WriteString(w, "ready\n")
		})
		ms := &http.Server{Addr: cfg.Metrics.Listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		mln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			log.Error("cannot serve metrics", zap.String("listen", cfg.Metrics.Listen), zap.Error(err))
			return 1
		}
		go func() { _ = ms.Serve(mln) }()
		defer ms.Close()
		log.Info("serving metrics", zap.String("listen", mln.Addr().String()))
	}

	// Other nodes' tunnels to this one need its FilamentNode, whether or
	// not this agent is ready yet.
	if pub != nil {
		go pub.Run(ctx)
	}
	started := make(chan error, 1)
	go func() {
		if src != nil {
			// The first programming has the API server's networks.
			log.Info("waiting for the API server's networks, nodes and ports")
			if err := src.Sync(ctx, n); err != nil {
				started <- err
				return
			}
			go src.Run(ctx, n)
		}
		started <- n.Start(ctx)
	}()

	rc := 0
	select {
	case err := <-serveErr:
		log.Error("CNI server failed", zap.Error(err))
		rc = 1
	case err := <-started:
		if err == nil {
			log.Info("ready")
			go n.Watch(ctx, *watch)
			select {
			case err := <-serveErr:
				log.Error("CNI server failed", zap.Error(err))
				rc = 1
			case <-ctx.Done():
			}
		}
	case <-ctx.Done():
	}
	log.Info("stopping: the dataplane keeps its state")
	// The configuration goes first: the runtime stops sending ADDs before
	// the socket closes.
	stopConf()
	<-confDone
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	n.Close()
	return rc
}
