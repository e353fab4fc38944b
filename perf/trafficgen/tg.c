/* SPDX-License-Identifier: Apache-2.0
 * The generator's control half: EAL, pools, ports, trial set-up and results.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_devargs.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_pause.h>

#include "tg_frame.h"
#include "tg_priv.h"

struct tg *tg;

static void
tg_err(char *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(err, TG_ERRLEN, fmt, ap);
	va_end(ap);
}

uint64_t
tg_tsc_hz(void)
{
	return tg ? tg->hz : 0;
}

static void
pool_zero(struct rte_mempool *mp, void *arg, void *obj, unsigned i)
{
	struct rte_mbuf *m = obj;

	(void)mp;
	(void)arg;
	(void)i;
	/* Frames' payloads start as zeros: the worker only writes headers,
	 * the signature and zeros in between. */
	memset(rte_pktmbuf_mtod(m, void *), 0, m->buf_len - m->data_off);
	m->hash.usr = 0; /* layout: all zeros (TG_LAYOUT) */
}

int
tg_init(int argc, char **argv, const struct tg_conf *c, char *err)
{
	cpu_set_t saved;
	int ret;

	if (tg != NULL) {
		tg_err(err, "generator already initialised");
		return -EALREADY;
	}
	if (c->mbufs < 1024) {
		tg_err(err, "mbufs %u: must be >= 1024", c->mbufs);
		return -EINVAL;
	}
	if (c->data_room < TG_MAX_HDR + TG_SIG_LEN || c->data_room > 65535 - RTE_PKTMBUF_HEADROOM) {
		tg_err(err, "data room %u: must be %u..%u", c->data_room, TG_MAX_HDR + TG_SIG_LEN,
			65535 - RTE_PKTMBUF_HEADROOM);
		return -EINVAL;
	}
	/* rte_eal_init pins the calling (Go runtime) thread: give it back. */
	pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved);
	ret = rte_eal_init(argc, argv);
	pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
	if (ret < 0) {
		tg_err(err, "EAL init failed: %s", rte_strerror(rte_errno));
		return -rte_errno;
	}
	tg = rte_zmalloc("tg", sizeof(*tg), RTE_CACHE_LINE_SIZE);
	if (tg == NULL) {
		tg_err(err, "no memory for the generator's state");
		ret = -ENOMEM;
		goto fail;
	}
	tg->conf = *c;
	{
		pthread_condattr_t ca;

		pthread_mutex_init(&tg->done_lock, NULL);
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&tg->done_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (tg->conf.rx_bursts == 0)
		tg->conf.rx_bursts = TG_RX_BURSTS;
	tg->hz = rte_get_tsc_hz();
	if (c->lcore == rte_get_main_lcore() || !rte_lcore_is_enabled(c->lcore)) {
		tg_err(err, "worker lcore %u: not a worker lcore of the EAL lcore list "
			    "(give e.g. --lcores 0@0,1@1 and lcore 1)", c->lcore);
		ret = -EINVAL;
		goto fail;
	}
	tg->lcore = c->lcore;
	/* Separate pools: frames built for TX come back to a pool nothing
	 * else writes into, so their payloads stay as the worker left them. */
	tg->tx_pool = rte_pktmbuf_pool_create("tg_tx", c->mbufs, 256, 0,
		(uint16_t)(c->data_room + RTE_PKTMBUF_HEADROOM), rte_socket_id());
	tg->rx_pool = rte_pktmbuf_pool_create("tg_rx", c->mbufs, 256, 0,
		(uint16_t)(c->data_room + RTE_PKTMBUF_HEADROOM), rte_socket_id());
	/* Templates live as long as the generator, and beyond a trial while
	 * a port still holds clones: the pool has room for a ring's worth of
	 * those for two ports on top. Jumbo frames are built, not cloned. */
	if (c->templates > 0)
		tg->tmpl_pool = rte_pktmbuf_pool_create("tg_tmpl", c->templates + 2 * c->nb_desc, 0, 0,
			(uint16_t)(RTE_MIN(c->data_room, TG_TMPL_ROOM) + RTE_PKTMBUF_HEADROOM),
			rte_socket_id());
	if (tg->tx_pool == NULL || tg->rx_pool == NULL ||
	    (c->templates > 0 && tg->tmpl_pool == NULL)) {
		tg_err(err, "cannot create pools of %u mbufs of %u bytes: %s", c->mbufs,
			c->data_room, rte_strerror(rte_errno));
		ret = -ENOMEM;
		goto fail;
	}
	rte_mempool_obj_iter(tg->tx_pool, pool_zero, NULL);
	ret = tg_memfd_save(err);
	if (ret < 0)
		goto fail;
	__atomic_store_n(&tg->running, 1, __ATOMIC_RELEASE);
	ret = rte_eal_remote_launch(tg_worker_main, NULL, tg->lcore);
	if (ret != 0) {
		__atomic_store_n(&tg->running, 0, __ATOMIC_RELEASE);
		tg_err(err, "cannot launch the worker on lcore %u: %s", tg->lcore, strerror(-ret));
		goto fail;
	}
	return 0;
fail:
	tg_memfd_release();
	if (tg != NULL) {
		rte_mempool_free(tg->tx_pool);
		rte_mempool_free(tg->rx_pool);
		rte_mempool_free(tg->tmpl_pool);
		rte_free(tg);
		tg = NULL;
	}
	rte_eal_cleanup();
	return ret;
}

static void
port_release(struct tg_port *p)
{
	struct rte_eth_dev_info info;
	struct rte_mbuf *m;

	rte_eth_dev_stop(p->id);
	if (rte_eth_dev_info_get(p->id, &info) != 0 || info.device == NULL ||
	    rte_dev_remove(info.device) != 0)
		rte_eth_dev_close(p->id);
	if (p->is_ring) {
		while (rte_ring_dequeue(p->rx_ring, (void **)&m) == 0)
			rte_pktmbuf_free(m);
		while (rte_ring_dequeue(p->tx_ring, (void **)&m) == 0)
			rte_pktmbuf_free(m);
		rte_ring_free(p->rx_ring);
		rte_ring_free(p->tx_ring);
	}
	rte_pktmbuf_free_bulk(p->pend, p->nb_pend);
	memset(p, 0, sizeof(*p));
}

/* Drops the generator's reference to a stream's templates: each returns to
 * the pool once the ports let go of their clones too. */
static void
tmpl_release(struct tg_tmpl_set *t)
{
	if (t->m != NULL) {
		rte_pktmbuf_free_bulk(t->m, t->n);
		rte_free(t->m);
	}
	memset(t, 0, sizeof(*t));
}

/* Builds stream si's templates, one per flow and size, into t; -ENOBUFS
 * when the pool has not that many left. Runs with the worker idle. */
static int
tmpl_build(struct tg_tmpl_set *t, const struct tg_stream_conf *c, unsigned si)
{
	uint64_t n = (uint64_t)c->nb_flows * c->nb_sizes;
	uint32_t fval[TG_MAX_FIELDS];
	uint32_t f, k, i;

	if (tg->tmpl_pool == NULL || n > rte_mempool_avail_count(tg->tmpl_pool))
		return -ENOBUFS;
	for (i = 0; i < c->nb_sizes; i++)
		if (c->sizes[i] > RTE_MIN(tg->conf.data_room, TG_TMPL_ROOM))
			return -ENOBUFS;
	t->m = rte_malloc("tg_tmpl", n * sizeof(t->m[0]), 0);
	if (t->m == NULL)
		return -ENOMEM;
	if (rte_pktmbuf_alloc_bulk(tg->tmpl_pool, t->m, (unsigned)n) != 0) {
		rte_free(t->m);
		t->m = NULL;
		return -ENOBUFS;
	}
	t->n = (uint32_t)n;
	t->c = *c;
	for (f = 0; f < c->nb_flows; f++) {
		for (k = 0; k < c->nb_fields; k++)
			fval[k] = c->fields[k].base + (f % c->fields[k].count) * c->fields[k].step;
		for (i = 0; i < c->nb_sizes; i++) {
			struct rte_mbuf *m = t->m[f * c->nb_sizes + i];
			uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);

			memset(p, 0, c->sizes[i]);
			tg_frame_fill(c, p, fval, c->sizes[i], si, TG_SEQ_NONE, 0);
			m->data_len = c->sizes[i];
			m->pkt_len = c->sizes[i];
		}
	}
	return 0;
}

/* Gives each stream its templates for a trial that clones: kept from the
 * last trial when the stream is the same, else built. A stream they do not
 * fit for is built frame by frame. */
static void
tmpl_prepare(const struct tg_trial_conf *t, const struct tg_stream_conf *s)
{
	unsigned i;

	for (i = 0; i < TG_MAX_STREAMS; i++) {
		struct tg_tmpl_set *ts = &tg->tmpl[i];

		if (ts->m != NULL && (i >= t->nb_streams || t->stamp_every <= 1 ||
				      memcmp(&ts->c, &s[i], sizeof(ts->c)) != 0))
			tmpl_release(ts);
	}
	if (t->stamp_every <= 1)
		return;
	for (i = 0; i < t->nb_streams; i++) {
		struct tg_tmpl_set *ts = &tg->tmpl[i];

		if (ts->m == NULL && tmpl_build(ts, &s[i], i) != 0)
			continue;
		tg->stream[i].tmpl = ts->m;
	}
}

void
tg_fini(void)
{
	unsigned i;

	if (tg == NULL)
		return;
	__atomic_store_n(&tg->quit, 1, __ATOMIC_RELEASE);
	rte_eal_wait_lcore(tg->lcore);
	for (i = 0; i < tg->nb_ports; i++)
		if (tg->port[i].used)
			port_release(&tg->port[i]);
	rte_free(tg->hist);
	for (i = 0; i < TG_MAX_STREAMS; i++)
		tmpl_release(&tg->tmpl[i]);
	rte_pktmbuf_free_bulk(tg->stash, tg->nb_stash);
	rte_mempool_free(tg->tx_pool);
	rte_mempool_free(tg->rx_pool);
	rte_mempool_free(tg->tmpl_pool);
	pthread_cond_destroy(&tg->done_cond);
	pthread_mutex_destroy(&tg->done_lock);
	rte_free(tg);
	tg = NULL;
	tg_memfd_release();
	rte_eal_cleanup();
}

static bool
idle(void)
{
	int s = __atomic_load_n(&tg->state, __ATOMIC_ACQUIRE);

	return s == TG_IDLE || s == TG_DONE;
}

/* Frames leave on TX queue 0; every RX queue is polled: some peers send on
 * a queue other than 0 (OVS-DPDK's PMD thread takes TX queue 1 on memif,
 * queue 0 being its main thread's). */
static int
port_setup(struct tg_port *p, uint16_t nb_rxq, char *err)
{
	struct rte_eth_conf conf;
	uint16_t nrxd = (uint16_t)tg->conf.nb_desc, ntxd = (uint16_t)tg->conf.nb_desc;
	uint16_t id = p->id, q;
	int ret;

	memset(&conf, 0, sizeof(conf));
	ret = rte_eth_dev_configure(id, nb_rxq, 1, &conf);
	if (ret == 0)
		rte_eth_dev_adjust_nb_rx_tx_desc(id, &nrxd, &ntxd);
	for (q = 0; ret == 0 && q < nb_rxq; q++)
		ret = rte_eth_rx_queue_setup(id, q, nrxd, rte_eth_dev_socket_id(id), NULL,
			tg->rx_pool);
	p->nb_rxq = nb_rxq;
	if (ret == 0)
		ret = rte_eth_tx_queue_setup(id, 0, ntxd, rte_eth_dev_socket_id(id), NULL);
	if (ret != 0) {
		tg_err(err, "port %u: set-up: %s", id, strerror(-ret));
		return ret;
	}
	p->mtu = 0;
	if (tg->conf.mtu != 0) {
		ret = rte_eth_dev_set_mtu(id, (uint16_t)tg->conf.mtu);
		if (ret == -ENOTSUP) {
			/* No MTU of its own (memif chains buffers, a ring
			 * passes pointers): the configured one is the bound. */
			p->mtu = (uint16_t)tg->conf.mtu;
			ret = 0;
		}
		if (ret != 0) {
			tg_err(err, "port %u: MTU %u: %s", id, tg->conf.mtu, strerror(-ret));
			return ret;
		}
	}
	/* The generator counts every frame that comes back, whatever MAC the
	 * device under test wrote. */
	rte_eth_promiscuous_enable(id);
	ret = rte_eth_dev_start(id);
	if (ret != 0) {
		tg_err(err, "port %u: start: %s", id, strerror(-ret));
		return ret;
	}
	return 0;
}

/* Ports are added while no trial runs: the worker reads the port table only
 * during trials (and idle polls ports below nb_ports, published last). */
static int
port_publish(struct tg_port *p)
{
	unsigned idx = (unsigned)(p - tg->port);

	p->used = true;
	__atomic_store_n(&tg->nb_ports, RTE_MAX(tg->nb_ports, idx + 1), __ATOMIC_RELEASE);
	return (int)idx;
}

static struct tg_port *
port_slot(char *err)
{
	unsigned i;

	if (tg == NULL) {
		tg_err(err, "generator not initialised");
		return NULL;
	}
	if (!idle()) {
		tg_err(err, "a trial is running");
		return NULL;
	}
	for (i = 0; i < TG_MAX_PORTS; i++)
		if (!tg->port[i].used)
			return &tg->port[i];
	tg_err(err, "at most %u ports", TG_MAX_PORTS);
	return NULL;
}

int
tg_devargs_check(const char *devargs, char *err)
{
	struct rte_devargs da;
	int ret;

	memset(&da, 0, sizeof(da));
	ret = rte_devargs_parse(&da, devargs);
	rte_devargs_reset(&da);
	if (ret < 0) {
		tg_err(err, "no DPDK driver knows device \"%s\": give a PCI address "
			    "(0000:01:00.0) or a virtual device such as net_memif0, net_af_xdp0, "
			    "net_af_packet0, net_virtio_user0, net_vhost0 or net_tap0", devargs);
		return -ENOENT;
	}
	return 0;
}

int
tg_port_add(const char *devargs, char *err)
{
	char name[RTE_DEV_NAME_MAX_LEN];
	struct tg_port *p = port_slot(err);
	uint16_t id;
	size_t n;
	int ret;

	if (p == NULL)
		return -EBUSY;
	n = strcspn(devargs, ",");
	if (n == 0 || n >= sizeof(name)) {
		tg_err(err, "devargs \"%s\": expected <device>[,key=value...]", devargs);
		return -EINVAL;
	}
	memcpy(name, devargs, n);
	name[n] = '\0';
	/* A device the EAL probed at start (a PCI NIC given with -a) is
	 * taken as it is; others are probed from their devargs. */
	if (rte_eth_dev_get_port_by_name(name, &id) == 0) {
		unsigned i;

		for (i = 0; i < TG_MAX_PORTS; i++) {
			if (tg->port[i].used && tg->port[i].id == id) {
				tg_err(err, "device %s is already port %u", name, i);
				return -EEXIST;
			}
		}
		if (strcmp(name, devargs) != 0) {
			tg_err(err, "device %s exists already: its arguments \"%s\" cannot "
				    "apply (give them to the EAL instead)", name, devargs + n);
			return -EEXIST;
		}
	} else if ((ret = rte_dev_probe(devargs)) != 0) {
		tg_err(err, "cannot probe \"%s\": check the driver name, its arguments "
			    "and the DPDK log", devargs);
		return ret < -1 ? ret : -ENODEV;
	}
	if (rte_eth_dev_get_port_by_name(name, &id) != 0) {
		tg_err(err, "\"%s\" probed but is not an ethdev", devargs);
		return -ENODEV;
	}
	p->id = id;
	/* A memif zero-copy client sends the EAL's memory fds when it
	 * connects: they must be the EAL's (see tg_memfd.c). */
	ret = tg_memfd_restore(err);
	if (ret == 0)
		ret = port_setup(p, (uint16_t)RTE_MAX(tg->conf.rx_queues, 1u), err);
	if (ret != 0) {
		port_release(p);
		return ret;
	}
	return port_publish(p);
}

int
tg_port_add_ring(const char *name, char *err)
{
	char rname[RTE_RING_NAMESIZE];
	struct tg_port *p = port_slot(err);
	int id, ret;

	if (p == NULL)
		return -EBUSY;
	snprintf(rname, sizeof(rname), "tgr_%s", name);
	p->rx_ring = rte_ring_create(rname, 4096, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	snprintf(rname, sizeof(rname), "tgt_%s", name);
	p->tx_ring = rte_ring_create(rname, 4096, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (p->rx_ring == NULL || p->tx_ring == NULL) {
		tg_err(err, "ring port %s: cannot create rings: %s", name, rte_strerror(rte_errno));
		rte_ring_free(p->rx_ring);
		rte_ring_free(p->tx_ring);
		memset(p, 0, sizeof(*p));
		return -ENOMEM;
	}
	id = rte_eth_from_rings(name, &p->rx_ring, 1, &p->tx_ring, 1, SOCKET_ID_ANY);
	if (id < 0) {
		tg_err(err, "ring port %s: %s", name, rte_strerror(rte_errno));
		rte_ring_free(p->rx_ring);
		rte_ring_free(p->tx_ring);
		memset(p, 0, sizeof(*p));
		return -rte_errno;
	}
	p->id = (uint16_t)id;
	p->is_ring = true;
	ret = port_setup(p, 1, err);
	if (ret != 0) {
		port_release(p);
		return ret;
	}
	return port_publish(p);
}

static struct tg_port *
port_get(unsigned port)
{
	if (tg == NULL || port >= TG_MAX_PORTS || !tg->port[port].used)
		return NULL;
	return &tg->port[port];
}

int
tg_port_link_up(unsigned port)
{
	struct rte_eth_link link;
	struct tg_port *p = port_get(port);

	if (p == NULL)
		return -ENOENT;
	if (rte_eth_link_get_nowait(p->id, &link) != 0 || link.link_status != RTE_ETH_LINK_UP)
		return 0;
	/* Connected: a memif zero-copy client has just closed the EAL's
	 * memory fds (see tg_memfd.c); the next port to connect needs them. */
	return tg_memfd_restore(NULL) == 0 ? 1 : -EBUSY;
}

int
tg_port_mtu(unsigned port, char *err)
{
	struct tg_port *p = port_get(port);
	uint16_t mtu;
	int ret;

	if (p == NULL) {
		tg_err(err, "port %u does not exist", port);
		return -ENOENT;
	}
	if (p->mtu != 0)
		return p->mtu;
	ret = rte_eth_dev_get_mtu(p->id, &mtu);
	if (ret != 0) {
		tg_err(err, "port %u: MTU: %s", port, strerror(-ret));
		return ret;
	}
	return mtu;
}

int
tg_port_restart(unsigned port, char *err)
{
	struct tg_port *p = port_get(port);
	int ret;

	if (p == NULL) {
		tg_err(err, "port %u does not exist", port);
		return -ENOENT;
	}
	if (!idle()) {
		tg_err(err, "a trial is running");
		return -EBUSY;
	}
	__atomic_store_n(&tg->pause, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&tg->paused, __ATOMIC_ACQUIRE))
		rte_pause();
	ret = rte_eth_dev_stop(p->id);
	if (ret == 0)
		ret = tg_memfd_restore(err);
	if (ret == 0)
		ret = rte_eth_dev_start(p->id);
	__atomic_store_n(&tg->pause, 0, __ATOMIC_RELEASE);
	if (ret != 0)
		tg_err(err, "port %u: restart: %s", port, strerror(-ret));
	return ret;
}

int
tg_port_stats(unsigned port, struct tg_port_stats *s)
{
	struct rte_eth_stats ds;
	struct tg_port *p = port_get(port);

	if (p == NULL)
		return -ENOENT;
	/* The worker is the only writer; 64-bit loads do not tear on the
	 * targets DPDK supports, so a running trial can be watched. */
	*s = p->st;
	if (rte_eth_stats_get(p->id, &ds) == 0) {
		s->dev_ipackets = ds.ipackets;
		s->dev_opackets = ds.opackets;
		s->dev_imissed = ds.imissed;
		s->dev_ierrors = ds.ierrors;
		s->dev_oerrors = ds.oerrors;
		s->dev_nombuf = ds.rx_nombuf;
	}
	return 0;
}

int
tg_ring_inject(unsigned port, const uint8_t *buf, const uint32_t *lens, unsigned n)
{
	struct tg_port *p = port_get(port);
	struct rte_mbuf *m;
	unsigned i, done = 0;

	if (p == NULL || !p->is_ring)
		return -ENOENT;
	for (i = 0; i < n; i++) {
		if (lens[i] > tg->conf.data_room || (m = rte_pktmbuf_alloc(tg->rx_pool)) == NULL)
			break;
		memcpy(rte_pktmbuf_mtod(m, void *), buf, lens[i]);
		m->data_len = (uint16_t)lens[i];
		m->pkt_len = lens[i];
		if (rte_ring_enqueue(p->rx_ring, m) != 0) {
			rte_pktmbuf_free(m);
			break;
		}
		buf += lens[i];
		done++;
	}
	return (int)done;
}

int
tg_ring_drain(unsigned port, uint8_t *buf, uint32_t buflen, uint32_t *lens, unsigned max)
{
	struct tg_port *p = port_get(port);
	struct rte_mbuf *m;
	unsigned n = 0;

	if (p == NULL || !p->is_ring)
		return -ENOENT;
	/* Room for the largest frame first: a frame once dequeued is never
	 * dropped for want of space. */
	while (n < max && buflen >= tg->conf.data_room &&
	       rte_ring_dequeue(p->tx_ring, (void **)&m) == 0) {
		uint32_t len = rte_pktmbuf_pkt_len(m);
		const void *d = rte_pktmbuf_read(m, 0, len, buf);

		if (d != buf)
			memcpy(buf, d, len);
		rte_pktmbuf_free(m);
		lens[n++] = len;
		buf += len;
		buflen -= len;
	}
	return (int)n;
}

static int
stream_check(const struct tg_stream_conf *s, unsigned i, char *err)
{
	unsigned k;

	if (s->tx_port >= TG_MAX_PORTS || !tg->port[s->tx_port].used) {
		tg_err(err, "stream %u: TX port %u does not exist", i, s->tx_port);
		return -EINVAL;
	}
	if (s->hdr_len > TG_MAX_HDR || s->nb_fields > TG_MAX_FIELDS ||
	    s->nb_lens > TG_MAX_LENS || s->nb_ip4csum > TG_MAX_CSUMS ||
	    s->nb_l4csum > TG_MAX_CSUMS || s->nb_sizes == 0 || s->nb_sizes > TG_MAX_SIZES) {
		tg_err(err, "stream %u: template out of bounds", i);
		return -EINVAL;
	}
	if (s->nb_flows == 0 || s->weight == 0) {
		tg_err(err, "stream %u: flows and weight must be > 0", i);
		return -EINVAL;
	}
	for (k = 0; k < s->nb_sizes; k++) {
		if (s->sizes[k] < RTE_MAX(TG_MIN_FRAME, s->hdr_len + TG_SIG_LEN) ||
		    s->sizes[k] > RTE_MIN(TG_MAX_FRAME, tg->conf.data_room)) {
			tg_err(err, "stream %u: frame of %u bytes: must be %u..%u (headers %u + "
				    "signature %u; mbuf data room %u)", i, s->sizes[k],
				RTE_MAX(TG_MIN_FRAME, s->hdr_len + TG_SIG_LEN),
				RTE_MIN(TG_MAX_FRAME, tg->conf.data_room), s->hdr_len, TG_SIG_LEN,
				tg->conf.data_room);
			return -EINVAL;
		}
	}
	for (k = 0; k < s->nb_fields; k++) {
		const struct tg_field *f = &s->fields[k];

		if ((f->width != 2 && f->width != 4) || f->off + f->width > s->hdr_len ||
		    f->count == 0) {
			tg_err(err, "stream %u: field %u out of bounds", i, k);
			return -EINVAL;
		}
	}
	for (k = 0; k < s->nb_lens; k++) {
		if (s->lens[k].off + 2 > s->hdr_len || s->lens[k].delta >= s->sizes[0]) {
			tg_err(err, "stream %u: length field %u out of bounds", i, k);
			return -EINVAL;
		}
	}
	for (k = 0; k < s->nb_ip4csum; k++) {
		if (s->ip4csum[k] + 20 > s->hdr_len) {
			tg_err(err, "stream %u: IPv4 header %u out of bounds", i, k);
			return -EINVAL;
		}
	}
	for (k = 0; k < s->nb_l4csum; k++) {
		const struct tg_l4csum *c = &s->l4csum[k];

		if (c->l4_off + c->csum_at + 2 > s->hdr_len || c->l3_off >= c->l4_off) {
			tg_err(err, "stream %u: L4 checksum %u out of bounds", i, k);
			return -EINVAL;
		}
	}
	return 0;
}

int
tg_trial_start(const struct tg_trial_conf *t, const struct tg_stream_conf *s, char *err)
{
	uint64_t total = 0, acc = 0;
	unsigned i, slot = 0;
	int ret;

	if (tg == NULL) {
		tg_err(err, "generator not initialised");
		return -ENODEV;
	}
	if (!idle()) {
		tg_err(err, "a trial is running");
		return -EBUSY;
	}
	if (t->nb_streams == 0 || t->nb_streams > TG_MAX_STREAMS) {
		tg_err(err, "%u streams: must be 1..%u", t->nb_streams, TG_MAX_STREAMS);
		return -EINVAL;
	}
	if (t->burst == 0 || t->burst > TG_BURST_MAX) {
		tg_err(err, "burst %u: must be 1..%u", t->burst, TG_BURST_MAX);
		return -EINVAL;
	}
	if (t->pps < 0) {
		tg_err(err, "rate %f pps: must be >= 0 (0: as fast as possible)", t->pps);
		return -EINVAL;
	}
	for (i = 0; i < t->nb_streams; i++) {
		ret = stream_check(&s[i], i, err);
		if (ret < 0)
			return ret;
		total += s[i].weight;
	}
	rte_free(tg->hist);
	tg->hist = rte_zmalloc("tg_hist", (size_t)t->nb_streams * TG_HIST_BUCKETS * sizeof(uint64_t),
		RTE_CACHE_LINE_SIZE);
	if (tg->hist == NULL) {
		tg_err(err, "no memory for %u latency histograms", t->nb_streams);
		return -ENOMEM;
	}
	tg->trial = *t;
	memset(tg->stream, 0, sizeof(tg->stream));
	memset(tg->st, 0, sizeof(tg->st));
	for (i = 0; i < t->nb_streams; i++) {
		struct tg_stream *st = &tg->stream[i];
		unsigned k;

		st->c = s[i];
		for (k = 0; k < s[i].nb_fields; k++)
			st->fval[k] = s[i].fields[k].base;
		st->stamp_left = 1; /* a stream's first frame is stamped */
		tg->st[i].lat_min = UINT64_MAX;
	}
	tmpl_prepare(t, s);
	/* The schedule interleaves streams in proportion to their weights
	 * (Bresenham style), so a burst mixes them evenly. */
	for (slot = 0; slot < TG_SCHED_LEN; slot++) {
		uint64_t pos = (uint64_t)slot * total / TG_SCHED_LEN;

		acc = 0;
		for (i = 0; i < t->nb_streams; i++) {
			acc += s[i].weight;
			if (pos < acc)
				break;
		}
		tg->sched[slot] = (uint8_t)i;
	}
	/* Bresenham above is by position: a weight too small for one of the
	 * 1024 slots must still get its stream a slot. */
	for (i = 0; i < t->nb_streams; i++) {
		unsigned k;

		for (k = 0; k < TG_SCHED_LEN && tg->sched[k] != i; k++)
			;
		if (k == TG_SCHED_LEN)
			tg->sched[(i * TG_SCHED_LEN) / t->nb_streams] = (uint8_t)i;
	}
	__atomic_store_n(&tg->abort, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&tg->state, TG_RUNNING, __ATOMIC_RELEASE);
	return 0;
}

int
tg_trial_state(void)
{
	return tg ? __atomic_load_n(&tg->state, __ATOMIC_ACQUIRE) : TG_IDLE;
}

void
tg_trial_done(void)
{
	pthread_mutex_lock(&tg->done_lock);
	__atomic_store_n(&tg->state, TG_DONE, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&tg->done_cond);
	pthread_mutex_unlock(&tg->done_lock);
}

int
tg_trial_wait(unsigned timeout_ms)
{
	struct timespec ts;
	int s;

	if (tg == NULL)
		return TG_IDLE;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&tg->done_lock);
	while ((s = __atomic_load_n(&tg->state, __ATOMIC_ACQUIRE)) == TG_RUNNING || s == TG_DRAINING)
		if (pthread_cond_timedwait(&tg->done_cond, &tg->done_lock, &ts) == ETIMEDOUT) {
			s = __atomic_load_n(&tg->state, __ATOMIC_ACQUIRE);
			break;
		}
	pthread_mutex_unlock(&tg->done_lock);
	return s;
}

int
tg_trial_stats(struct tg_trial_stats *s)
{
	if (tg == NULL || __atomic_load_n(&tg->state, __ATOMIC_ACQUIRE) != TG_DONE)
		return -EBUSY;
	*s = tg->tst;
	return 0;
}

void
tg_trial_abort(void)
{
	if (tg != NULL)
		__atomic_store_n(&tg->abort, 1, __ATOMIC_RELEASE);
}

int
tg_stream_stats(unsigned stream, struct tg_stream_stats *s, uint64_t *hist)
{
	if (tg == NULL || stream >= tg->trial.nb_streams || tg->hist == NULL)
		return -ENOENT;
	if (__atomic_load_n(&tg->state, __ATOMIC_ACQUIRE) != TG_DONE) {
		/* Counters of a running trial are readable; histograms are not
		 * worth a torn copy. */
		*s = tg->st[stream];
		return 1;
	}
	*s = tg->st[stream];
	if (hist != NULL)
		memcpy(hist, tg->hist + (size_t)stream * TG_HIST_BUCKETS,
			TG_HIST_BUCKETS * sizeof(uint64_t));
	return 0;
}
