/* SPDX-License-Identifier: Apache-2.0
 * The fast path's control boundary: everything the Go side (and tests and
 * benchmarks) may call. Every call here runs on a control thread, never on a
 * forwarding lcore; writers are serialised by the caller (one control thread
 * at a time, the Go package holds a mutex). Readers on the lcores are made safe
 * with RCU (rte_rcu_qsbr): a control call returns only once no lcore can still
 * see what it replaced.
 *
 * Errors: negative errno; a message is written to the caller's buffer.
 */
#ifndef FP_H
#define FP_H

#include <stddef.h>
#include <stdint.h>

#include "fp_drop.h"

#define FP_ERRLEN 256
#define FP_MAX_PORTS 32 /* RTE_MAX_ETHPORTS of Debian's DPDK 22.11 */
#define FP_MAX_VRFS 4096
#define FP_MAX_WORKERS 16
#define FP_MAX_POD_ADDRS 8
#define FP_MAX_ECMP 128
#define FP_MAX_RXQ 16    /* RX queues per port */
#define FP_MAX_NEIGH 4096 /* underlay neighbours */
#define FP_NH_INVALID UINT32_MAX

/* Overhead added in front of the inner IPv4 packet, for MTU accounting. */
#define FP_VXLAN_OVERHEAD 50   /* outer eth 14 + ip 20 + udp 8 + vxlan 8 (+ inner eth 14 - 14 on the pod side) */
#define FP_MPLSOUDP_OVERHEAD 32 /* ip 20 + udp 8 + label 4, inner eth replaced by outer eth */
#define FP_VXLAN_PORT 4789
#define FP_MPLSOUDP_PORT 6635

struct fp_config {
	uint32_t nh_max;          /* next-hop ids are 0..nh_max-1 */
	uint32_t vrf_max;         /* VRF ids are 0..vrf_max-1 (<= FP_MAX_VRFS) */
	uint32_t fib4_rules;      /* max IPv4 routes per VRF */
	uint32_t fib4_tbl8s;      /* /25../32 groups per VRF */
	uint32_t mbufs;           /* mbufs in the packet pool */
	uint32_t idle_sleep_max_us; /* adaptive polling: longest idle sleep */
	uint8_t vrouter_mac[6];   /* MAC every pod sees as its gateway */
};

/* Fill c with defaults. */
void fp_config_defaults(struct fp_config *c);

/* Start EAL (argv as for rte_eal_init), create pools and tables, launch one
 * forwarding loop per worker lcore. The calling thread keeps its CPU affinity. */
int fp_init(int argc, char **argv, const struct fp_config *c, char *err);
/* Stop workers, stop and close every port, free tables, rte_eal_cleanup. */
void fp_fini(void);
unsigned fp_worker_count(void);

enum fp_port_kind {
	FP_PORT_FABRIC = 0, /* underlay NIC: tunnels end here */
	FP_PORT_POD = 1,    /* a pod/VM interface, in one VRF */
	FP_PORT_HOST = 2,   /* the node's TAP (TF's vhost0) */
};

struct fp_port_conf {
	uint8_t kind;        /* enum fp_port_kind */
	uint16_t nb_rxq;     /* spread round-robin over workers; 0 = 1 */
	uint16_t mtu;        /* L3 MTU; 0 = 1500 */
	uint16_t vrf;        /* POD, HOST: the VRF its IPv4 is routed in */
	uint8_t mac[6];      /* POD: the pod's MAC (anti-spoofing); FABRIC,
	                      * HOST: 00.. = keep the device's MAC */
	uint32_t ip4[FP_MAX_POD_ADDRS]; /* POD: addresses the pod may send
	                      * from; FABRIC: [0] is the underlay address;
	                      * network byte order */
	uint8_t nb_ip4;
	uint16_t xconnect;   /* > 0: send everything received to port
	                      * xconnect - 1 untouched (service chaining, and
	                      * the io-forward baseline of benchmarks) */
};

/* Probe devargs ("net_af_packet0,iface=veth0"), configure and start it, and
 * start polling it. Returns the port id (>= 0). */
int fp_port_add(const char *devargs, const struct fp_port_conf *pc, char *err);
/* A port over in-memory rings (tests, benchmarks): frames enqueued with
 * fp_ring_inject are received on it, what it sends is read with fp_ring_drain. */
int fp_port_add_ring(const char *name, const struct fp_port_conf *pc, char *err);
/* Change a running port's configuration (VRF, addresses, MTU). */
int fp_port_update(uint16_t port, const struct fp_port_conf *pc, char *err);
/* Stop polling, wait for a grace period, stop and close. -EBUSY while
 * next-hops use it. */
int fp_port_del(uint16_t port, char *err);
int fp_port_mac(uint16_t port, uint8_t mac[6]);
/* 1 link up, 0 down (memif, vhost-user: peer not connected yet). */
int fp_port_link(uint16_t port);

enum fp_nh_type {
	FP_NH_DISCARD = 0,
	FP_NH_RECEIVE = 1, /* for the vRouter: ICMP echo answered, rest punted to host */
	FP_NH_IFACE = 2,   /* out of a port with an L2 rewrite */
	FP_NH_TUNNEL = 3,  /* encapsulate towards another vRouter */
	FP_NH_ECMP = 4,    /* one of several next-hops by flow hash */
};

enum fp_encap {
	FP_ENCAP_VXLAN = 0,
	FP_ENCAP_MPLSOUDP = 1,
};

struct fp_nh_conf {
	uint8_t type;      /* enum fp_nh_type */
	uint16_t port;     /* IFACE, TUNNEL: out port */
	uint8_t dst_mac[6];/* IFACE: destination MAC (source is the port's, or
	                    * the vRouter MAC on pod ports) */
	uint8_t encap;     /* TUNNEL: enum fp_encap */
	uint32_t tun_dst;  /* TUNNEL: remote vRouter underlay IP (NBO) */
	uint32_t tun_gw;   /* TUNNEL: underlay next hop (NBO), 0 = tun_dst */
	uint32_t vni;      /* TUNNEL: VNI (VXLAN) or label (MPLSoUDP) */
	uint32_t nb_members;          /* ECMP */
	uint32_t members[FP_MAX_ECMP];/* ECMP: IFACE or TUNNEL next-hop ids */
};

/* Create or replace next-hop id. Replacing is atomic for readers. */
int fp_nh_set(uint32_t id, const struct fp_nh_conf *nc, char *err);
/* -EBUSY while routes or ECMP groups use it. */
int fp_nh_del(uint32_t id, char *err);

/* IPv4 routes, prefix in network byte order. Adding an existing prefix
 * replaces its next-hop. */
int fp_route4_add(uint16_t vrf, uint32_t prefix, uint8_t len, uint32_t nh, char *err);
int fp_route4_del(uint16_t vrf, uint32_t prefix, uint8_t len, char *err);
/* Exact-match lookup: next-hop id of the longest match for addr, or -ENOENT. */
int fp_route4_lookup(uint16_t vrf, uint32_t addr, uint32_t *nh);

/* The vRouter's own IPv4 address in a VRF (the networks' gateway, NBO): the
 * source of the ICMP errors (time exceeded, fragmentation needed) it sends
 * there. 0: it sends none in that VRF. */
int fp_vrf_addr_set(uint16_t vrf, uint32_t addr, char *err);

/* Decapsulation: VNI -> VRF and MPLS label -> VRF. */
int fp_vni_set(uint32_t vni, uint16_t vrf, char *err);
int fp_vni_del(uint32_t vni, char *err);
int fp_label_set(uint32_t label, uint16_t vrf, char *err);
int fp_label_del(uint32_t label, char *err);

/* Static underlay neighbour (otherwise learnt by ARP on the fabric port). */
int fp_neigh_set(uint32_t ip, const uint8_t mac[6], char *err);
/* Resolved MAC of an underlay neighbour: 1 resolved, 0 pending, -ENOENT. */
int fp_neigh_get(uint32_t ip, uint8_t mac[6]);

struct fp_port_stats {
	uint64_t rx_pkts, rx_bytes, tx_pkts, tx_bytes, drops;
	/* the device's own counters (rte_eth_stats): what never reached the
	 * fast path, or what the device failed to send */
	uint64_t dev_imissed, dev_ierrors, dev_oerrors, dev_rx_nombuf;
};

struct fp_lcore_stats {
	uint64_t polls, busy_polls, sleeps, rx_pkts, tx_pkts, drops;
	uint64_t consumed;    /* terminated by the vRouter, not drops (ARP
	                       * replies it learnt a neighbour from) */
	uint64_t busy_cycles; /* TSC cycles in polls that received packets */
};

/* Sums over lcores; values only grow. */
void fp_drop_stats(uint64_t out[FP_DROP_MAX]);
int fp_port_stats(uint16_t port, struct fp_port_stats *out);
int fp_lcore_stats(unsigned worker, struct fp_lcore_stats *out);

/* Test and benchmark ports: copy frames in and out of ring ports. */
int fp_ring_inject(uint16_t port, const uint8_t *buf, const uint32_t *lens, unsigned n);
/* Returns frames read (<= max); buf holds them back to back, lens their sizes. */
int fp_ring_drain(uint16_t port, uint8_t *buf, size_t buflen, uint32_t *lens, unsigned max);
/* Mbufs not in the pool (in flight or leaked). */
unsigned fp_mbufs_in_use(void);

#endif
