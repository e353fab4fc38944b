/* SPDX-License-Identifier: Apache-2.0
 * Internal state shared by the fast path's C files. Lcores only read what is
 * here (except their own struct fp_lcore and neighbour MACs learnt by ARP);
 * the control thread replaces objects by pointer and frees the old one after
 * an RCU grace period.
 */
#ifndef FP_PRIV_H
#define FP_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_branch_prediction.h>
#include <rte_common.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_spinlock.h>

/* DPDK 22.11 swaps a non-constant 16-bit value with an xchgb in asm
 * volatile (rte_arch_bswap16): the compiler may neither schedule, merge nor
 * fold it. The builtin is one rotate it can (what DPDK's own
 * RTE_FORCE_INTRINSICS picks); every rte_cpu_to_be_16 and rte_be_to_cpu_16
 * in the fast path's code expands to it. */
#undef rte_bswap16
#define rte_bswap16(x) ((uint16_t)__builtin_bswap16((uint16_t)(x)))

#include "fp.h"
#include "fp_fib4.h"
#include "fp_fib6.h"

/* RX burst: a loop's fixed cost (the PMD's calls, the RX and TX ring
 * indices the other side writes, the stats, the RCU report) is shared by
 * up to FP_BURST packets. 64 rather than DPDK's customary 32: callgrind
 * -5.2 instructions/packet on every path (encap-vxlan 287.6 -> 282.4,
 * pod-to-pod 222.6 -> 217.4), before the ring index cache lines a memif
 * call moves between the cores; 64 mbufs and their first data lines
 * (8 KiB) still fit L1. */
#define FP_BURST 64
#define FP_PREFETCH 3
#define FP_TXBUF 64
/* fp_capture_burst copies an RX burst into an array of FP_TXBUF */
_Static_assert(FP_TXBUF >= FP_BURST, "an RX burst must fit a TX buffer");
#define FP_IDLE_SPIN 256     /* empty polls before the first sleep */
#define FP_ARP_REQ_GAP_MS 100 /* per neighbour, between ARP requests */

#define FP_PORT_DOWN 0 /* fp_port.state: a memif port not connected (fp_port.c) */
#define FP_PORT_UP 1

/* struct fp_lcore stop values, and dbg bits */
#define FP_LOOP_STOP 1
#define FP_LOOP_ARMED 2
#define FP_DBG_TRACE 1u
#define FP_DBG_CAPTURE 2u

struct fp_trace;
struct fp_capture;

/* Read by lcores through dp->port[id]; replaced whole on update. */
struct fp_port {
	uint8_t kind;
	uint8_t state;
	uint16_t id;
	uint16_t vrf;
	uint16_t mtu;
	struct rte_ether_addr mac;     /* the device's MAC */
	struct rte_ether_addr pod_mac; /* POD: the pod's own MAC */
	uint8_t nb_ip4;
	uint8_t nb_ip6;
	uint32_t ip4[FP_MAX_POD_ADDRS];
	uint8_t ll6[16];                    /* POD: fe80::/64 + EUI-64 of pod_mac */
	uint8_t ip6[FP_MAX_POD_ADDRS][16];
	uint16_t nb_rxq;
	uint16_t xconnect; /* peer port + 1, 0 = route */
	uint8_t tx_udp_csum; /* FABRIC: the NIC computes UDP checksums (TX offload) */
} __rte_cache_aligned;

/* Control-only bookkeeping of a port. */
struct fp_port_ctl {
	bool used;
	bool is_ring;
	bool memif;    /* net_memif: workers quiesce before its rings are
			* unmapped (fp_port.c, fp_memif.c) */
	bool gated;    /* memif, not connected: not polled, not sent to */
	uint32_t refs; /* next-hops pointing at it */
	uint64_t unmap_waits; /* memif: disconnects, gated before its rings went */
	struct rte_ring *rx_ring, *tx_ring;
	char name[64];
};

struct fp_tun_tmpl {
	uint8_t hdr[96];  /* outer eth + ip/ipv6 + (udp + (vxlan | mpls) | gre + mpls),
			   * VXLAN: then the inner MACs */
	uint16_t len;     /* IPv4: 50 VXLAN, 46 MPLSoUDP, 42 MPLSoGRE; IPv6: 20 more */
	uint8_t copy;     /* bytes copied, 32..96 (fp_tmpl_copy): len, and for
			   * VXLAN the inner MACs after it (IPv4 62, IPv6 82) */
	uint8_t grow;     /* bytes the frame grows by: len, less the pod's
			   * Ethernet header where it does not travel */
	uint8_t outer6;   /* the outer header is IPv6 */
	uint8_t udp_csum_offload; /* IPv6 UDP: the port's NIC sums it (its
				   * tx_udp_csum, copied: no port read per packet) */
	uint32_t ip_sum;  /* IPv4: partial IP checksum without tos and total
			   * length; IPv6: partial UDP pseudo-header checksum
			   * (addresses, next header) without the length */
};

struct fp_nh {
	uint8_t type;
	uint8_t encap;
	uint16_t port;
	uint16_t mtu;     /* largest inner IPv4 total length allowed out */
	uint32_t id;
	uint32_t neigh;   /* TUNNEL: index in dp->neigh */
	struct rte_ether_addr dst, src; /* IFACE rewrite */
	struct fp_tun_tmpl tun;         /* TUNNEL */
	uint32_t tun_dst, tun_gw, vni;  /* TUNNEL as configured (rebuilds, dumps) */
	uint8_t tun_dst6[16], tun_gw6[16]; /* TUNNEL over IPv6 (tun.outer6) */
	uint32_t nb_members;            /* ECMP */
	uint32_t members[];
} __rte_cache_aligned;

/* Underlay neighbour. mac is written by lcores (ARP and ND learning) and
 * control, read by lcores: one 64-bit word, bit 63 = resolved. */
struct fp_neigh {
	uint64_t mac;
	uint64_t last_req_tsc;
	uint32_t ip;   /* family 4: NBO */
	uint32_t refs;
	uint8_t family; /* 4, 6; 0 = free slot (published last) */
	bool is_static;
	uint8_t ip6[16]; /* family 6 */
} __rte_cache_aligned;
#define FP_NEIGH_VALID (1ULL << 63)

/* 24-bit key -> VRF map (VNI, MPLS label): two levels of 4096 entries,
 * second level allocated on first use. Entries hold vrf + 1, 0 = none. */
struct fp_map24 {
	uint16_t *page[4096];
};

struct fp_rxq {
	uint16_t port;
	uint16_t queue;
};

struct fp_pollset {
	unsigned n;
	struct fp_rxq q[];
};

struct fp_txbuf {
	uint16_t n;
	uint64_t bytes; /* pkt_len of m[0..n-1], summed as they come */
	struct rte_mbuf *m[FP_TXBUF];
};

struct fp_lcore {
	/* read-mostly */
	struct fp_pollset *poll; /* RCU: swapped by control */
	unsigned idx;            /* worker index = RCU thread id = TX queue */
	unsigned lcore_id;
	/* 0: forward. FP_LOOP_STOP (fp_fini) ends the loop; FP_LOOP_ARMED
	 * (fp_trace.c) leaves it for the armed loop until cleared: the loop's
	 * one test covers both. */
	volatile uint8_t stop;
	/* Set while an ICMP error of the vRouter's is forwarded: a drop on its
	 * way is icmp_error_unsent, since the packet that caused it is
	 * counted already (in what was padding). */
	uint8_t icmp_error_out;
	/* hot, written per burst */
	uint32_t tx_pending; /* bit per port with frames in tx[] */
	unsigned nb_dropped;
	uint32_t dbg;        /* FP_DBG_*: what is armed (control writes, the
	                      * armed loop reads); in what was padding */
	struct rte_mbuf *dropped[FP_BURST * 2];
	struct fp_lcore_stats st;
	uint64_t icmp_tsc;    /* ICMP error token bucket: last refill */
	uint32_t icmp_tokens;
	uint64_t drops[FP_DROP_MAX];
	struct fp_port_stats port_st[FP_MAX_PORTS];
	struct fp_txbuf tx[FP_MAX_PORTS];
} __rte_cache_aligned;

struct fp_dp {
	struct fp_config cfg;
	struct rte_ether_addr vrouter_mac;
	struct rte_mempool *pool;
	struct rte_rcu_qsbr *qs;
	unsigned nb_workers;
	struct fp_lcore *lcore[FP_MAX_WORKERS];

	struct fp_port *port[FP_MAX_PORTS]; /* RCU */
	struct fp_port_ctl port_ctl[FP_MAX_PORTS];
	/* TX queue of each worker on each port; shared (and then locked) when
	 * a device has fewer TX queues than there are workers (AF_XDP on a
	 * veth has one). Set before a port is published, cleared after it is
	 * gone: stable while any lcore can send to the port. */
	uint16_t txq[FP_MAX_PORTS][FP_MAX_WORKERS];
	bool txq_shared[FP_MAX_PORTS];
	rte_spinlock_t txq_lock[FP_MAX_PORTS][FP_MAX_WORKERS];
	int fabric_port; /* -1: none */
	int host_port;   /* -1: none */

	uintptr_t *fib4;       /* [vrf_max] RCU: root word of the VRF's IPv4 FIB
				* (fp_fib4_match), 0 = no FIB (no route) */
	struct fp_fib4 **fib4_ctl; /* [vrf_max] its control side */
	uint32_t *fib6;        /* [vrf_max] RCU: root word of the VRF's IPv6 FIB
				* (fp_fib6_match), 0 = no FIB (no route) */
	struct fp_fib6 **fib6_ctl; /* [vrf_max] its control side */
	uint32_t *vrf_addr4;   /* [vrf_max] the vRouter's address in the VRF:
				* source of its ICMP errors, 0 = send none */
	uint64_t (*vrf_addr6)[2]; /* [vrf_max] the same for IPv6 (the two
				* big-endian halves as stored in memory; both 0
				* = send none): two relaxed 64-bit stores, an
				* lcore may see half of a change for one error */
	struct fp_nh **nh;     /* [nh_max] RCU */
	uint32_t *nh_refs;     /* [nh_max] routes + ECMP groups using it */

	struct fp_map24 vni;
	struct fp_map24 label;
	struct fp_neigh neigh[FP_MAX_NEIGH];

	uint64_t tsc_hz;
	unsigned rxq_rr; /* round-robin cursor for RX queue placement */

	/* Operator debugging (fp_trace.c), RCU: non-NULL while armed. */
	struct fp_trace *trace;
	struct fp_capture *cap[FP_MAX_PORTS];
};

extern struct fp_dp *fp_dp;

/* fp_worker.c: the forwarding loop, until lc->stop is set */
int fp_worker_loop(void *arg);
/* fp_trace_worker.c: what each worker lcore runs: fp_worker_loop, and the
 * armed loop while a trace or capture is armed, until FP_LOOP_STOP. */
int fp_worker_main(void *arg);

/* fp_port.c */
int fp_pollsets_init(char *err);
void fp_pollsets_fini(void);
void fp_ports_fini(void);
/* The workers are stopped: fp_port_unmap_hook has nothing to wait for. */
void fp_links_stop(void);
/* fp_memif.c's munmap calls it first; it acts on the EAL interrupt thread
 * only. */
void fp_port_unmap_hook(void);

/* fp_tables.c */
int fp_tables_init(char *err);
int fp_nh_port_changed(uint16_t port, char *err);
bool fp_nh_port_uses6(uint16_t port);
void fp_tables_fini(void);
bool fp_neigh_learn(uint32_t ip, const struct rte_ether_addr *mac);
bool fp_neigh6_learn(const uint8_t *ip, const struct rte_ether_addr *mac);

/* fp_init.c */
void fp_sync(void);
void fp_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline uint16_t
fp_map24_get(const struct fp_map24 *m, uint32_t key)
{
	const uint16_t *p = __atomic_load_n(&m->page[(key >> 12) & 0xfff], __ATOMIC_ACQUIRE);
	if (unlikely(p == NULL))
		return 0;
	return __atomic_load_n(&p[key & 0xfff], __ATOMIC_RELAXED);
}

#endif
