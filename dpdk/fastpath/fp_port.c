/* SPDX-License-Identifier: Apache-2.0
 * Ports: probe from devargs (or build over rings), configure one TX queue per
 * worker and the requested RX queues, spread the RX queues over workers, and
 * add or remove them while the workers forward.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <rte_alarm.h>
#include <rte_dev.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_interrupts.h>
#include <rte_malloc.h>

#include "fp_priv.h"

#define FP_RING_SIZE 4096
#define FP_NB_DESC 1024

/* Which worker polls each RX queue of each port (control-only). */
static uint8_t rxq_worker[FP_MAX_PORTS][FP_MAX_RXQ];

/* Serialises publishing and removing ports (and their poll sets) with the
 * memif unmap hook on the EAL interrupt thread. That thread may take it from
 * inside munmap, holding EAL's own locks: nothing done under it allocates or
 * frees DPDK memory or waits for the interrupt thread. */
static pthread_mutex_t port_mu = PTHREAD_MUTEX_INITIALIZER;
/* Set once the workers are stopped (fp_links_stop): the hook does nothing. */
static bool links_stopped;

/* Two poll sets per worker, each big enough for every queue: a rebuild fills
 * the one the worker does not read (the last rebuild waited for the worker
 * to leave it), so rebuilding never allocates (it runs under port_mu). */
static struct fp_pollset *pollbuf[FP_MAX_WORKERS][2];

#define FP_POLLSET_SIZE \
	(sizeof(struct fp_pollset) + FP_MAX_PORTS * FP_MAX_RXQ * sizeof(struct fp_rxq))

int
fp_pollsets_init(char *err)
{
	unsigned w, b;

	for (w = 0; w < fp_dp->nb_workers; w++) {
		for (b = 0; b < 2; b++) {
			pollbuf[w][b] = rte_zmalloc("fp_poll", FP_POLLSET_SIZE, 0);
			if (pollbuf[w][b] == NULL) {
				fp_err(err, "no memory for poll sets");
				return -ENOMEM;
			}
		}
		fp_dp->lcore[w]->poll = pollbuf[w][0];
	}
	return 0;
}

void
fp_pollsets_fini(void)
{
	unsigned w;

	for (w = 0; w < FP_MAX_WORKERS; w++) {
		rte_free(pollbuf[w][0]);
		rte_free(pollbuf[w][1]);
		pollbuf[w][0] = pollbuf[w][1] = NULL;
		if (fp_dp != NULL && w < fp_dp->nb_workers && fp_dp->lcore[w] != NULL)
			fp_dp->lcore[w]->poll = NULL;
	}
}

/* Publish poll sets of the ports in service and wait until no worker polls
 * what they replaced. Caller holds port_mu. */
static void
pollsets_rebuild(void)
{
	struct fp_pollset *ps[FP_MAX_WORKERS];
	struct fp_dp *dp = fp_dp;
	unsigned w, p, q;

	for (w = 0; w < dp->nb_workers; w++) {
		ps[w] = dp->lcore[w]->poll == pollbuf[w][0] ? pollbuf[w][1] : pollbuf[w][0];
		ps[w]->n = 0;
	}
	for (p = 0; p < FP_MAX_PORTS; p++) {
		const struct fp_port *port = dp->port[p];

		if (port == NULL || port->state != FP_PORT_UP)
			continue;
		for (q = 0; q < port->nb_rxq; q++) {
			struct fp_pollset *s = ps[rxq_worker[p][q]];

			s->q[s->n].port = (uint16_t)p;
			s->q[s->n].queue = (uint16_t)q;
			s->n++;
		}
	}
	for (w = 0; w < dp->nb_workers; w++)
		__atomic_store_n(&dp->lcore[w]->poll, ps[w], __ATOMIC_RELEASE);
	fp_sync();
}

/* DPDK 22.11's memif (drivers/net/memif/memif_socket.c, memif_disconnect)
 * handles a peer's disconnect on the EAL interrupt thread: it marks the link
 * down and clears ETH_MEMIF_FLAG_CONNECTED with plain stores, then unmaps and
 * frees the shared regions (memif_free_regions) at once, without waiting for
 * lcores in rte_eth_rx_burst/tx_burst on them; it raises no LSC event, nor
 * does its connect. Its RX and TX compute the ring's address from the region
 * table first and test the flag after: a worker past the first step when
 * the regions go (preempted by the interrupt thread on a shared CPU, or
 * simply mid-burst) touches unmapped or freed memory, and so does one
 * preempted there until a new peer has connected and set the flag again.
 *
 * So the fast path stops using a memif port while it is not connected (the
 * port is "gated"): out of the poll sets, frames for it dropped as port
 * down (its fp_port's state), the PMD not entered at all. Before any munmap
 * on the interrupt thread while a memif port's link is down (memif_disconnect
 * stores that first, on this same thread) the hook gates the port and waits
 * a grace period: workers report one only between bursts, TX buffers
 * flushed, so after it none is inside the PMD on the port and none enters.
 * A port starts gated when its link is down at setup. memif_watch, an EAL
 * alarm (on the interrupt thread, after whatever memif handler ran), opens
 * the gate once the link is up: the connect has mapped the rings and set
 * up the queues by then. It checks every FP_MEMIF_WATCH_MIN_US, backing off
 * to FP_MEMIF_WATCH_MAX_US while nothing changes, and stops when no port is
 * gated. */
#define FP_MEMIF_WATCH_MIN_US 200
/* 1 ms: a generator (filament-perf) starts its first trial as soon as its
 * link is up, and a closed gate back-pressures it; the cost is a wake-up of
 * the interrupt thread each ms while a memif port has no peer. */
#define FP_MEMIF_WATCH_MAX_US 1000

static unsigned watch_us;   /* next alarm's delay; 0: none armed (port_mu) */

static bool
port_link_up(uint16_t id)
{
	struct rte_eth_link link;

	/* memif's link_update reads what its connect and disconnect wrote:
	 * no call into the device, no lock */
	return rte_eth_link_get_nowait(id, &link) == 0 && link.link_status == RTE_ETH_LINK_UP;
}

/* Close or open a memif port's gate. Caller holds port_mu and rebuilds the
 * poll sets after (which waits a grace period). The state byte is written
 * in place: allocating a new fp_port is not allowed in the hook. */
static void
memif_gate(uint16_t id, bool gated)
{
	__atomic_store_n(&fp_dp->port_ctl[id].gated, gated, __ATOMIC_RELAXED);
	__atomic_store_n(&fp_dp->port[id]->state, gated ? FP_PORT_DOWN : FP_PORT_UP,
			 __ATOMIC_RELEASE);
}

static void memif_watch(void *arg);

/* Arm the watch (port_mu held). rte_eal_alarm_set allocates with libc's
 * malloc, not DPDK's heap. */
static void
memif_watch_arm(bool soon)
{
	if (watch_us != 0 && !soon)
		return;
	if (watch_us != 0)
		rte_eal_alarm_cancel(memif_watch, NULL);
	watch_us = FP_MEMIF_WATCH_MIN_US;
	if (rte_eal_alarm_set(watch_us, memif_watch, NULL) != 0)
		watch_us = 0; /* retried at the next gate */
}

static void
memif_watch(void *arg __rte_unused)
{
	bool opened = false, gated = false;
	unsigned id;

	pthread_mutex_lock(&port_mu);
	watch_us = RTE_MIN(RTE_MAX(watch_us * 2, (unsigned)FP_MEMIF_WATCH_MIN_US),
			   (unsigned)FP_MEMIF_WATCH_MAX_US);
	for (id = 0; !links_stopped && id < FP_MAX_PORTS; id++) {
		if (fp_dp->port[id] == NULL || !fp_dp->port_ctl[id].gated)
			continue;
		if (port_link_up((uint16_t)id)) {
			memif_gate((uint16_t)id, false);
			opened = true;
		} else {
			gated = true;
		}
	}
	if (opened) {
		pollsets_rebuild();
		watch_us = FP_MEMIF_WATCH_MIN_US;
	}
	if (!gated || links_stopped || rte_eal_alarm_set(watch_us, memif_watch, NULL) != 0)
		watch_us = 0;
	pthread_mutex_unlock(&port_mu);
}

void
fp_port_unmap_hook(void)
{
	static __thread bool busy; /* our own munmaps, if any, pass through */
	bool gate = false;
	unsigned id;

	if (fp_dp == NULL || busy || !rte_thread_is_intr())
		return;
	busy = true;
	pthread_mutex_lock(&port_mu);
	for (id = 0; !links_stopped && id < FP_MAX_PORTS; id++) {
		if (fp_dp->port[id] == NULL || !fp_dp->port_ctl[id].memif ||
		    fp_dp->port_ctl[id].gated || port_link_up((uint16_t)id))
			continue;
		memif_gate((uint16_t)id, true);
		__atomic_fetch_add(&fp_dp->port_ctl[id].unmap_waits, 1, __ATOMIC_RELAXED);
		gate = true;
	}
	if (gate) {
		pollsets_rebuild();
		memif_watch_arm(true);
	}
	pthread_mutex_unlock(&port_mu);
	busy = false;
}

/* Workers stopped: nothing polls, nothing needs to wait. */
void
fp_links_stop(void)
{
	pthread_mutex_lock(&port_mu);
	links_stopped = true;
	pthread_mutex_unlock(&port_mu);
	/* outside port_mu: it waits for a watch that is running */
	rte_eal_alarm_cancel(memif_watch, NULL);
}

static int
port_conf_check(const struct fp_port_conf *pc, char *err)
{
	const struct rte_ether_addr *mac = (const struct rte_ether_addr *)pc->mac;

	if (pc->kind > FP_PORT_HOST) {
		fp_err(err, "unknown port kind %u", pc->kind);
		return -EINVAL;
	}
	if (pc->nb_rxq > FP_MAX_RXQ) {
		fp_err(err, "nb_rxq %u: at most %u", pc->nb_rxq, FP_MAX_RXQ);
		return -EINVAL;
	}
	if (pc->mtu != 0 && (pc->mtu < 576 || pc->mtu > 9600)) {
		fp_err(err, "mtu %u: must be 576..9600", pc->mtu);
		return -EINVAL;
	}
	/* Its RAs and packet too big messages would carry an MTU hosts
	 * ignore; an IPv4-only port keeps 576. */
	if (pc->nb_ip6 != 0 && pc->mtu != 0 && pc->mtu < FP_IP6_MIN_MTU) {
		fp_err(err, "mtu %u: a port with IPv6 addresses needs at least %u (RFC 8200)",
		       pc->mtu, FP_IP6_MIN_MTU);
		return -EINVAL;
	}
	if (pc->vrf >= fp_dp->cfg.vrf_max) {
		fp_err(err, "VRF %u out of range 0..%u", pc->vrf, fp_dp->cfg.vrf_max - 1);
		return -EINVAL;
	}
	if (pc->xconnect > FP_MAX_PORTS) {
		fp_err(err, "xconnect port %u out of range", pc->xconnect - 1);
		return -EINVAL;
	}
	if (pc->nb_ip4 > FP_MAX_POD_ADDRS) {
		fp_err(err, "%u addresses: at most %u", pc->nb_ip4, FP_MAX_POD_ADDRS);
		return -EINVAL;
	}
	if (pc->nb_ip6 > FP_MAX_POD_ADDRS) {
		fp_err(err, "%u IPv6 addresses: at most %u", pc->nb_ip6, FP_MAX_POD_ADDRS);
		return -EINVAL;
	}
	if (pc->kind == FP_PORT_POD &&
	    (rte_is_zero_ether_addr(mac) || !rte_is_unicast_ether_addr(mac))) {
		fp_err(err, "pod port needs the pod's unicast MAC");
		return -EINVAL;
	}
	if (pc->kind != FP_PORT_POD && !rte_is_zero_ether_addr(mac) &&
	    !rte_is_unicast_ether_addr(mac)) {
		fp_err(err, "port MAC must be unicast");
		return -EINVAL;
	}
	return 0;
}

static struct fp_port *
port_obj(uint16_t id, const struct fp_port_conf *pc, const struct rte_ether_addr *mac,
	 uint16_t nb_rxq)
{
	struct fp_port *p = rte_zmalloc("fp_port", sizeof(*p), RTE_CACHE_LINE_SIZE);

	if (p == NULL)
		return NULL;
	p->kind = pc->kind;
	p->state = FP_PORT_UP;
	p->id = id;
	p->vrf = pc->vrf;
	p->mtu = pc->mtu ? pc->mtu : 1500;
	p->mac = *mac;
	memcpy(&p->pod_mac, pc->mac, 6);
	p->nb_ip4 = pc->nb_ip4;
	memcpy(p->ip4, pc->ip4, sizeof(p->ip4));
	p->nb_ip6 = pc->nb_ip6;
	memcpy(p->ip6, pc->ip6, sizeof(p->ip6));
	/* the pod's link-local address: fe80::/64 and the modified EUI-64 of
	 * its MAC (RFC 4291 appendix A), what a kernel derives by default */
	p->ll6[0] = 0xfe;
	p->ll6[1] = 0x80;
	p->ll6[8] = pc->mac[0] ^ 0x02;
	p->ll6[9] = pc->mac[1];
	p->ll6[10] = pc->mac[2];
	p->ll6[11] = 0xff;
	p->ll6[12] = 0xfe;
	p->ll6[13] = pc->mac[3];
	p->ll6[14] = pc->mac[4];
	p->ll6[15] = pc->mac[5];
	p->nb_rxq = nb_rxq;
	p->xconnect = pc->xconnect;
	return p;
}

static void
port_release(uint16_t id)
{
	struct rte_eth_dev_info info;
	struct fp_port_ctl *ctl = &fp_dp->port_ctl[id];
	struct rte_mbuf *m;

	rte_eth_dev_stop(id);
	if (rte_eth_dev_info_get(id, &info) != 0 || info.device == NULL ||
	    rte_dev_remove(info.device) != 0)
		rte_eth_dev_close(id);
	if (ctl->is_ring) {
		while (rte_ring_dequeue(ctl->rx_ring, (void **)&m) == 0)
			rte_pktmbuf_free(m);
		while (rte_ring_dequeue(ctl->tx_ring, (void **)&m) == 0)
			rte_pktmbuf_free(m);
		rte_ring_free(ctl->rx_ring);
		rte_ring_free(ctl->tx_ring);
	}
	memset(ctl, 0, sizeof(*ctl));
}

/* Configure, start and publish an ethdev that exists. */
static int
port_setup(uint16_t id, const struct fp_port_conf *pc, char *err)
{
	struct fp_dp *dp = fp_dp;
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	uint16_t nb_rxq, nb_txq, nrxd = FP_NB_DESC, ntxd = FP_NB_DESC;
	struct rte_ether_addr mac;
	struct fp_port *p;
	unsigned q;
	int ret;

	memset(&conf, 0, sizeof(conf));
	ret = rte_eth_dev_info_get(id, &info);
	if (ret != 0) {
		fp_err(err, "port %u: cannot read device info: %s", id, strerror(-ret));
		return ret;
	}
	/* Default: one RX queue per worker, as many as the device has. Devices
	 * that fan out to every queue they have (af_packet qpairs, tap) must be
	 * polled on all of them, and tap wants as many RX as TX queues. */
	nb_rxq = pc->nb_rxq ? pc->nb_rxq :
		(uint16_t)RTE_MIN(RTE_MAX(dp->nb_workers, 1u), (unsigned)info.max_rx_queues);
	if (nb_rxq > FP_MAX_RXQ)
		nb_rxq = FP_MAX_RXQ;
	if (nb_rxq == 0 || nb_rxq > info.max_rx_queues || info.max_tx_queues == 0) {
		fp_err(err, "port %u (%s): asked for %u RX queues, device has %u RX "
			    "and %u TX queues", id, info.driver_name, nb_rxq,
			info.max_rx_queues, info.max_tx_queues);
		return -EINVAL;
	}
	/* One TX queue per worker where the device has enough, else workers
	 * share them under a lock. */
	nb_txq = (uint16_t)RTE_MIN(dp->nb_workers, (unsigned)info.max_tx_queues);
	/* The outer UDP checksum over an IPv6 underlay, where the fabric's
	 * NIC can compute it; no other offload, and none on other ports. */
	if (pc->kind == FP_PORT_FABRIC && (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_UDP_CKSUM))
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
	ret = rte_eth_dev_configure(id, nb_rxq, nb_txq, &conf);
	if (ret != 0) {
		fp_err(err, "port %u: configure: %s", id, strerror(-ret));
		return ret;
	}
	rte_eth_dev_adjust_nb_rx_tx_desc(id, &nrxd, &ntxd);
	for (q = 0; q < nb_rxq; q++) {
		ret = rte_eth_rx_queue_setup(id, q, nrxd, rte_eth_dev_socket_id(id), NULL,
			dp->pool);
		if (ret != 0) {
			fp_err(err, "port %u: RX queue %u: %s", id, q, strerror(-ret));
			return ret;
		}
	}
	for (q = 0; q < nb_txq; q++) {
		ret = rte_eth_tx_queue_setup(id, q, ntxd, rte_eth_dev_socket_id(id), NULL);
		if (ret != 0) {
			fp_err(err, "port %u: TX queue %u: %s", id, q, strerror(-ret));
			return ret;
		}
	}
	/* A configured MAC is what the fast path answers ARP with and writes
	 * as source; the device takes it too where its driver can (ring and
	 * some virtual PMDs cannot: they run promiscuous anyway). */
	if (pc->kind != FP_PORT_POD && !rte_is_zero_ether_addr((const void *)pc->mac)) {
		ret = rte_eth_dev_default_mac_addr_set(id, (struct rte_ether_addr *)pc->mac);
		if (ret != 0 && ret != -ENOTSUP) {
			fp_err(err, "port %u: cannot set MAC: %s", id, strerror(-ret));
			return ret;
		}
	}
	if (pc->mtu != 0)
		rte_eth_dev_set_mtu(id, pc->mtu); /* best effort: enforced in software */
	/* Pods and the host address the vRouter MAC, not the device's. */
	rte_eth_promiscuous_enable(id);
	ret = rte_eth_dev_start(id);
	if (ret != 0) {
		fp_err(err, "port %u: start: %s", id, strerror(-ret));
		return ret;
	}
	if (pc->kind != FP_PORT_POD && !rte_is_zero_ether_addr((const void *)pc->mac))
		memcpy(&mac, pc->mac, sizeof(mac));
	else
		rte_eth_macaddr_get(id, &mac);
	p = port_obj(id, pc, &mac, nb_rxq);
	if (p == NULL) {
		rte_eth_dev_stop(id);
		fp_err(err, "port %u: out of memory", id);
		return -ENOMEM;
	}
	p->tx_udp_csum = !!(conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_UDP_CKSUM);
	for (q = 0; q < nb_rxq; q++)
		rxq_worker[id][q] = (uint8_t)(dp->rxq_rr++ % dp->nb_workers);
	for (q = 0; q < dp->nb_workers; q++) {
		dp->txq[id][q] = (uint16_t)(q % nb_txq);
		rte_spinlock_init(&dp->txq_lock[id][q]);
	}
	dp->txq_shared[id] = nb_txq < dp->nb_workers;
	/* Port ids are reused: start the counters of this one from zero. No
	 * lcore writes them until the port is published below. */
	for (q = 0; q < dp->nb_workers; q++)
		memset(&dp->lcore[q]->port_st[id], 0, sizeof(dp->lcore[q]->port_st[id]));
	pthread_mutex_lock(&port_mu);
	dp->port_ctl[id].used = true;
	dp->port_ctl[id].memif = strcmp(info.driver_name, "net_memif") == 0;
	/* Not connected yet: gated until the watch sees it up. */
	if (dp->port_ctl[id].memif && !port_link_up(id)) {
		__atomic_store_n(&dp->port_ctl[id].gated, true, __ATOMIC_RELAXED);
		p->state = FP_PORT_DOWN;
		memif_watch_arm(false);
	}
	__atomic_store_n(&dp->port[id], p, __ATOMIC_RELEASE);
	if (pc->kind == FP_PORT_FABRIC)
		dp->fabric_port = id;
	else if (pc->kind == FP_PORT_HOST)
		dp->host_port = id;
	pollsets_rebuild();
	pthread_mutex_unlock(&port_mu);
	return id;
}

static int
port_kind_free(const struct fp_port_conf *pc, char *err)
{
	if (pc->kind == FP_PORT_FABRIC && fp_dp->fabric_port >= 0) {
		fp_err(err, "a fabric port exists already (port %d)", fp_dp->fabric_port);
		return -EEXIST;
	}
	if (pc->kind == FP_PORT_HOST && fp_dp->host_port >= 0) {
		fp_err(err, "a host port exists already (port %d)", fp_dp->host_port);
		return -EEXIST;
	}
	return 0;
}

int
fp_port_add(const char *devargs, const struct fp_port_conf *pc, char *err)
{
	char name[RTE_DEV_NAME_MAX_LEN];
	uint16_t id;
	size_t n;
	int ret;

	if (fp_dp == NULL) {
		fp_err(err, "fast path not initialised");
		return -ENODEV;
	}
	ret = port_conf_check(pc, err);
	if (ret == 0)
		ret = port_kind_free(pc, err);
	if (ret < 0)
		return ret;
	n = strcspn(devargs, ",");
	if (n == 0 || n >= sizeof(name)) {
		fp_err(err, "devargs \"%s\": expected <device>[,key=value...]", devargs);
		return -EINVAL;
	}
	memcpy(name, devargs, n);
	name[n] = '\0';
	if (rte_eth_dev_get_port_by_name(name, &id) == 0) {
		if (id >= FP_MAX_PORTS || fp_dp->port_ctl[id].used) {
			fp_err(err, "device %s is already a port (%u)", name, id);
			return -EEXIST;
		}
		/* Probed by EAL at start (-a for a PCI NIC, --vdev): the port
		 * takes it over. Its arguments were EAL's; a second set here
		 * would be silently ignored, so refuse it. */
		if (devargs[n] != '\0') {
			fp_err(err, "device %s was probed by EAL at start (-a or "
				    "--vdev): give its arguments there and name only "
				    "the device here", name);
			return -EINVAL;
		}
		/* On failure the device stays EAL's, for a later try. */
		return port_setup(id, pc, err);
	}
	ret = rte_dev_probe(devargs);
	if (ret != 0) {
		/* Some drivers return -1, not an errno: say nothing false. */
		fp_err(err, "cannot probe \"%s\"%s%s: check the driver name, its "
			    "arguments and the DPDK log", devargs, ret < -1 ? ": " : "",
			ret < -1 ? strerror(-ret) : "");
		return ret < -1 ? ret : -ENODEV;
	}
	if (rte_eth_dev_get_port_by_name(name, &id) != 0) {
		fp_err(err, "\"%s\" probed but is not an ethdev", devargs);
		return -ENODEV;
	}
	if (id >= FP_MAX_PORTS) {
		fp_err(err, "port id %u >= %u", id, FP_MAX_PORTS);
		port_release(id);
		return -ENOSPC;
	}
	ret = port_setup(id, pc, err);
	if (ret < 0 && !fp_dp->port_ctl[id].used)
		port_release(id);
	return ret;
}

int
fp_port_add_ring(const char *name, const struct fp_port_conf *pc, char *err)
{
	struct rte_ring *tx[FP_MAX_WORKERS];
	struct fp_port_ctl ctl = {0};
	char rname[RTE_RING_NAMESIZE];
	unsigned i;
	int ret, id;

	if (fp_dp == NULL) {
		fp_err(err, "fast path not initialised");
		return -ENODEV;
	}
	ret = port_conf_check(pc, err);
	if (ret == 0)
		ret = port_kind_free(pc, err);
	if (ret < 0)
		return ret;
	if (pc->nb_rxq > 1) {
		fp_err(err, "ring ports have one RX queue");
		return -EINVAL;
	}
	snprintf(rname, sizeof(rname), "%s_rx", name);
	ctl.rx_ring = rte_ring_create(rname, FP_RING_SIZE, SOCKET_ID_ANY, RING_F_SC_DEQ);
	snprintf(rname, sizeof(rname), "%s_tx", name);
	ctl.tx_ring = rte_ring_create(rname, FP_RING_SIZE, SOCKET_ID_ANY, RING_F_SC_DEQ);
	if (ctl.rx_ring == NULL || ctl.tx_ring == NULL) {
		fp_err(err, "ring port %s: cannot create rings: %s", name,
			rte_strerror(rte_errno));
		rte_ring_free(ctl.rx_ring);
		rte_ring_free(ctl.tx_ring);
		return -ENOMEM;
	}
	/* Every worker's TX queue feeds the one ring the reader drains. */
	for (i = 0; i < fp_dp->nb_workers; i++)
		tx[i] = ctl.tx_ring;
	id = rte_eth_from_rings(name, &ctl.rx_ring, 1, tx, fp_dp->nb_workers, SOCKET_ID_ANY);
	if (id < 0 || id >= FP_MAX_PORTS) {
		fp_err(err, "ring port %s: %s", name, rte_strerror(rte_errno));
		rte_ring_free(ctl.rx_ring);
		rte_ring_free(ctl.tx_ring);
		return -ENODEV;
	}
	ctl.is_ring = true;
	snprintf(ctl.name, sizeof(ctl.name), "%s", name);
	fp_dp->port_ctl[id] = ctl;
	fp_dp->port_ctl[id].used = false; /* set by port_setup */
	ret = port_setup((uint16_t)id, pc, err);
	if (ret < 0 && !fp_dp->port_ctl[id].used)
		port_release((uint16_t)id);
	return ret;
}

int
fp_port_update(uint16_t id, const struct fp_port_conf *pc, char *err)
{
	struct fp_port *old, *p;
	int ret;

	if (fp_dp == NULL || id >= FP_MAX_PORTS || fp_dp->port[id] == NULL) {
		fp_err(err, "port %u does not exist", id);
		return -ENOENT;
	}
	old = fp_dp->port[id];
	if (pc->kind != old->kind) {
		fp_err(err, "port %u: kind cannot change", id);
		return -EINVAL;
	}
	ret = port_conf_check(pc, err);
	if (ret < 0)
		return ret;
	if (pc->kind == FP_PORT_FABRIC && pc->ip4[0] == 0 && fp_dp->port_ctl[id].refs != 0) {
		fp_err(err, "port %u: tunnels use its underlay address", id);
		return -EBUSY;
	}
	if (pc->kind == FP_PORT_FABRIC && pc->nb_ip6 == 0 && fp_dp->port_ctl[id].refs != 0 &&
	    fp_nh_port_uses6(id)) {
		fp_err(err, "port %u: IPv6 tunnels use its IPv6 underlay address", id);
		return -EBUSY;
	}
	p = port_obj(id, pc, &old->mac, old->nb_rxq);
	if (p == NULL) {
		fp_err(err, "port %u: out of memory", id);
		return -ENOMEM;
	}
	/* the device's offload, configured once at setup */
	p->tx_udp_csum = old->tx_udp_csum;
	/* under port_mu: the memif gate writes the published port's state */
	pthread_mutex_lock(&port_mu);
	if (fp_dp->port_ctl[id].gated)
		p->state = FP_PORT_DOWN;
	__atomic_store_n(&fp_dp->port[id], p, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&port_mu);
	fp_sync();
	rte_free(old);
	/* Next-hops copied the MTU and addresses: rebuild them. */
	return fp_nh_port_changed(id, err);
}

int
fp_port_del(uint16_t id, char *err)
{
	struct fp_port *old;

	if (fp_dp == NULL || id >= FP_MAX_PORTS || fp_dp->port[id] == NULL) {
		fp_err(err, "port %u does not exist", id);
		return -ENOENT;
	}
	if (fp_dp->port_ctl[id].refs != 0) {
		fp_err(err, "port %u is used by %u next-hops", id, fp_dp->port_ctl[id].refs);
		return -EBUSY;
	}
	/* A capture of the port ends with it: its id may be reused. */
	if (fp_dp->cap[id] != NULL)
		fp_capture_stop(id, NULL);
	pthread_mutex_lock(&port_mu);
	old = fp_dp->port[id];
	__atomic_store_n(&fp_dp->port[id], NULL, __ATOMIC_RELEASE);
	if (fp_dp->fabric_port == id)
		fp_dp->fabric_port = -1;
	if (fp_dp->host_port == id)
		fp_dp->host_port = -1;
	/* After this (it waits a grace period) no worker polls the port or
	 * holds frames for it: TX buffers are flushed before each quiescent
	 * state. */
	pollsets_rebuild();
	pthread_mutex_unlock(&port_mu);
	rte_free(old);
	port_release(id);
	return 0;
}

int
fp_port_mac(uint16_t id, uint8_t mac[6])
{
	if (fp_dp == NULL || id >= FP_MAX_PORTS || fp_dp->port[id] == NULL)
		return -ENOENT;
	memcpy(mac, &fp_dp->port[id]->mac, 6);
	return 0;
}

void
fp_ports_fini(void)
{
	unsigned id;

	for (id = 0; id < FP_MAX_PORTS; id++) {
		if (!fp_dp->port_ctl[id].used)
			continue;
		rte_free(fp_dp->port[id]);
		fp_dp->port[id] = NULL;
		port_release((uint16_t)id);
	}
}

int
fp_ring_inject(uint16_t id, const uint8_t *buf, const uint32_t *lens, unsigned n)
{
	struct fp_port_ctl *ctl;
	struct rte_mbuf *m[FP_BURST];
	unsigned done = 0;

	if (fp_dp == NULL || id >= FP_MAX_PORTS || !fp_dp->port_ctl[id].is_ring)
		return -ENOENT;
	ctl = &fp_dp->port_ctl[id];
	while (done < n) {
		unsigned k = RTE_MIN(n - done, (unsigned)FP_BURST), i, q;

		if (rte_pktmbuf_alloc_bulk(fp_dp->pool, m, k) != 0)
			return done ? (int)done : -ENOBUFS;
		for (i = 0; i < k; i++) {
			uint32_t len = lens[done + i];
			char *d = rte_pktmbuf_append(m[i], (uint16_t)len);

			if (d == NULL) {
				rte_pktmbuf_free_bulk(m, k);
				return -EMSGSIZE;
			}
			memcpy(d, buf, len);
			buf += len;
		}
		q = rte_ring_enqueue_burst(ctl->rx_ring, (void **)m, k, NULL);
		if (q < k) {
			rte_pktmbuf_free_bulk(m + q, k - q);
			return (int)(done + q);
		}
		done += k;
	}
	return (int)done;
}

int
fp_ring_drain(uint16_t id, uint8_t *buf, size_t buflen, uint32_t *lens, unsigned max)
{
	struct rte_mbuf *m;
	unsigned n = 0;
	size_t off = 0;

	if (fp_dp == NULL || id >= FP_MAX_PORTS || !fp_dp->port_ctl[id].is_ring)
		return -ENOENT;
	/* Only take a frame when any frame fits: single-segment mbufs of the
	 * pool hold at most RTE_MBUF_DEFAULT_DATAROOM bytes. */
	while (n < max && buflen - off >= RTE_MBUF_DEFAULT_DATAROOM &&
	       rte_ring_dequeue(fp_dp->port_ctl[id].tx_ring, (void **)&m) == 0) {
		uint32_t len = rte_pktmbuf_pkt_len(m);
		const void *d;

		if (len > RTE_MBUF_DEFAULT_DATAROOM)
			len = RTE_MBUF_DEFAULT_DATAROOM;
		d = rte_pktmbuf_read(m, 0, len, buf + off);
		if (d != buf + off)
			memcpy(buf + off, d, len);
		lens[n++] = len;
		off += len;
		rte_pktmbuf_free(m);
	}
	return (int)n;
}

int
fp_port_link(uint16_t id)
{
	struct rte_eth_link link;

	if (fp_dp == NULL || id >= FP_MAX_PORTS || fp_dp->port[id] == NULL)
		return -ENOENT;
	if (rte_eth_link_get_nowait(id, &link) != 0)
		return -EIO;
	/* a memif port forwards once its gate opened, just after */
	return link.link_status == RTE_ETH_LINK_UP &&
	       !__atomic_load_n(&fp_dp->port_ctl[id].gated, __ATOMIC_RELAXED);
}
