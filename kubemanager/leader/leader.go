// Package leader runs kube-manager's leader election on a coordination.k8s.io
// Lease: one replica leads and works, the others wait to take over. The
// leader releases the Lease when its context ends (SIGTERM), so a rolling
// update hands over within one retry period; a leader that dies without
// releasing it is replaced within LeaseDuration + RetryPeriod.
package leader

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Config names the Lease and times the election (client-go's meaning).
type Config struct {
	Namespace, Name string
	Identity        string // unique per replica: the pod's name
	LeaseDuration   time.Duration
	RenewDeadline   time.Duration
	RetryPeriod     time.Duration
}

// ErrLost is returned by Run when this replica led and lost the Lease while
// its context was alive: the caller exits, and its restart starts afresh.
var ErrLost = errors.New("leader: lost the lease")

// Elector is one replica's participant.
type Elector struct {
	cfg     Config
	client  kubernetes.Interface
	log     *zap.Logger
	health  *leaderelection.HealthzAdaptor
	leading prometheus.Gauge
	changes prometheus.Counter
}

// New checks cfg and makes an Elector.
func New(cfg Config, client kubernetes.Interface, log *zap.Logger) (*Elector, error) {
	switch {
	case cfg.Namespace == "" || cfg.Name == "" || cfg.Identity == "":
		return nil, fmt.Errorf("leader: namespace, name and identity are required")
	case cfg.RetryPeriod <= 0 || cfg.RenewDeadline <= cfg.RetryPeriod || cfg.LeaseDuration <= cfg.RenewDeadline:
		return nil, fmt.Errorf("leader: want 0 < retry period (%v) < renew deadline (%v) < lease duration (%v)",
			cfg.RetryPeriod, cfg.RenewDeadline, cfg.LeaseDuration)
	}
	return &Elector{
		cfg: cfg, client: client, log: log,
		// A leader that has not renewed for RenewDeadline + 2 s is unhealthy:
		// its liveness probe restarts it.
		health: leaderelection.NewLeaderHealthzAdaptor(2 * time.Second),
		leading: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "filament_kube_manager_leader",
			Help: "1 while this replica holds the leader Lease, else 0.",
		}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "filament_kube_manager_leader_changes_total",
			Help: "Times this replica saw the Lease change holder (itself included).",
		}),
	}, nil
}

// Collectors are the Elector's metrics.
func (e *Elector) Collectors() []prometheus.Collector {
	return []prometheus.Collector{e.leading, e.changes}
}

// Healthz fails while this replica leads with a Lease it has not renewed in
// time; a waiting replica is healthy.
func (e *Elector) Healthz(r *http.Request) error { return e.health.Check(r) }

// Run takes part in the election until ctx ends, calling lead with a
// context that ends when leadership does. It returns nil once ctx has ended
// (the Lease released if held), ErrLost if leadership was lost before.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context)) error {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: e.cfg.Namespace, Name: e.cfg.Name},
		Client:     e.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.cfg.Identity},
	}
	var led atomic.Bool // set in client-go's goroutine
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   e.cfg.LeaseDuration,
		RenewDeadline:   e.cfg.RenewDeadline,
		RetryPeriod:     e.cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            e.cfg.Name,
		WatchDog:        e.health,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				led.Store(true)
				e.leading.Set(1)
				e.log.Info("leading", zap.String("lease", e.cfg.Namespace+"/"+e.cfg.Name))
				lead(ctx)
			},
			OnStoppedLeading: func() {
				e.leading.Set(0)
				e.log.Info("not leading any more")
			},
			OnNewLeader: func(id string) {
				e.changes.Inc()
				e.log.Info("leader", zap.String("identity", id))
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader: %w", err)
	}
	e.health.SetLeaderElection(le)
	e.log.Info("waiting for the lease", zap.String("lease", e.cfg.Namespace+"/"+e.cfg.Name), zap.String("identity", e.cfg.Identity))
	le.Run(ctx) // returns when ctx ends or leadership is lost
	if ctx.Err() == nil && led.Load() {
		return ErrLost
	}
	return nil
}
