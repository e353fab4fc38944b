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

/* Overhead added in front of the inner IPv4 or IPv6 packet (IPv4 outer),
 * for MTU accounting. */
#define FP_VXLAN_OVERHEAD 50   /* outer eth 14 + ip 20 + udp 8 + vxlan 8 (+ inner eth 14 - 14 on the pod side) */
#define FP_MPLSOUDP_OVERHEAD 32 /* ip 20 + udp 8 + label 4, inner eth replaced by outer eth */
#define FP_MPLSOGRE_OVERHEAD 28 /* ip 20 + gre 4 + label 4, inner eth replaced by outer eth */
/* An IPv6 outer header is 20 bytes longer than an IPv4 one. */
#define FP_OUTER6_EXTRA 20
/* IPv6's smallest link MTU (RFC 8200 5): of a port with IPv6 addresses;
 * ICMPv6 errors fit it (RFC 4443 2.4 c). */
#define FP_IP6_MIN_MTU 1280u
#define FP_VXLAN_PORT 4789
#define FP_MPLSOUDP_PORT 6635
#define FP_GRE_PROTO_MPLS 0x8847 /* GRE protocol type: MPLS unicast (RFC 4023) */

struct fp_config {
	uint32_t nh_max;          /* next-hop ids are 0..nh_max-1 */
	uint32_t vrf_max;         /* VRF ids are 0..vrf_max-1 (<= FP_MAX_VRFS) */
	uint32_t fib4_rules;      /* max IPv4 routes per VRF */
	uint32_t fib4_tbl8s;      /* IPv4 FIB groups (256 entries, 1 KiB each),
	                           * one pool shared by all VRFs, allocated at
	                           * start (docs/operations.md: sizing) */
	uint32_t fib6_rules;      /* max IPv6 routes per VRF */
	uint32_t fib6_groups;     /* IPv6 FIB groups (256 entries, 1 KiB each),
	                           * one pool shared by all VRFs, allocated at
	                           * start (docs/operations.md: sizing) */
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
	uint8_t ip6[FP_MAX_POD_ADDRS][16]; /* POD: IPv6 addresses the pod may
	                      * send from (its link-local one, derived from
	                      * mac, always allowed); FABRIC: [0] is the IPv6
	                      * underlay address (optional); network order */
	uint8_t nb_ip6;
	uint16_t xconnect;   /* > 0: send everything received to port
	                      * xconnect - 1 untouched (service chaining, and
	                      * the io-forward baseline of benchmarks) */
};

/* Probe devargs ("net_af_packet0,iface=veth0"), configure and start it, and
 * start polling it. A device EAL probed at start (-a 0000:3b:00.0 for a PCI
 * NIC, --vdev) is taken over when devargs names only it. Deleting the port
 * releases the device. Returns the port id (>= 0). */
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
/* 1 link up, 0 down (memif, vhost-user: peer not connected yet; memif:
 * until the fast path has started using the connection, within 1 ms). */
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
	FP_ENCAP_MPLSOGRE = 2,
};

struct fp_nh_conf {
	uint8_t type;      /* enum fp_nh_type */
	uint16_t port;     /* IFACE, TUNNEL: out port */
	uint8_t dst_mac[6];/* IFACE: destination MAC (source is the port's, or
	                    * the vRouter MAC on pod ports) */
	uint8_t encap;     /* TUNNEL: enum fp_encap */
	uint8_t tun_ip6;   /* TUNNEL: 1 = IPv6 underlay (tun_dst6, tun_gw6,
	                    * the fabric's ip6[0] as source), 0 = IPv4 */
	uint32_t tun_dst;  /* TUNNEL: remote vRouter underlay IP (NBO) */
	uint32_t tun_gw;   /* TUNNEL: underlay next hop (NBO), 0 = tun_dst */
	uint8_t tun_dst6[16]; /* TUNNEL, tun_ip6: the same in IPv6 (network */
	uint8_t tun_gw6[16];  /* order; tun_gw6 all zero = tun_dst6) */
	uint32_t vni;      /* TUNNEL: VNI (VXLAN) or label (MPLSoUDP, MPLSoGRE) */
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
/* The same for n addresses at once: nh[i] = FP_NH_INVALID where none. */
int fp_route4_lookup_bulk(uint16_t vrf, const uint32_t *addr, uint32_t *nh, unsigned n);
/* A batch of route changes in one VRF: route i is added (or repointed) to
 * nh[i], or deleted if nh[i] is FP_NH_INVALID. Every entry is validated
 * before any is applied (-EINVAL), and a batch that fails part way
 * (-ENOENT: deleting a missing route, -ENOSPC: FIB full) is undone: the FIB
 * is then as before the call. err names the failing entry. */
int fp_route4_add_bulk(uint16_t vrf, const uint32_t *prefix, const uint8_t *len,
		       const uint32_t *nh, unsigned n, char *err);
/* Every route of a VRF (prefix in network byte order), in no particular
 * order; stops at the first non-zero return of cb and returns it. cb must
 * not change routes. */
int fp_route4_walk(uint16_t vrf, int (*cb)(uint32_t prefix, uint8_t len, uint32_t nh, void *arg),
		   void *arg);

struct fp_fib4_stats {
	/* the VRF */
	uint32_t routes;
	uint32_t root_bits;      /* root table: 8, 16 or 24 bits; 0 = no FIB */
	uint32_t groups;         /* pool groups it uses */
	uint64_t bytes;          /* what its lookups read: root + groups */
	uint64_t ctl_bytes;      /* control side: route table, depths */
	/* all VRFs */
	uint32_t vrfs;           /* VRFs with a FIB */
	uint64_t all_routes;
	uint32_t pool_groups;    /* fib4_tbl8s */
	uint32_t pool_free;
	uint32_t pool_pending;   /* released, free after a grace period */
	uint64_t pool_bytes;     /* the groups, allocated at start */
	uint64_t pool_ctl_bytes; /* their depths and counters */
	uint64_t all_bytes;      /* pool + every VRF's root table */
	uint64_t all_ctl_bytes;  /* pool's and every VRF's control side */
};

/* IPv4 FIB memory and occupancy: vrf's, and totals. -EINVAL if vrf is out
 * of range; a VRF without FIB has zero VRF fields. */
int fp_fib4_stats(uint16_t vrf, struct fp_fib4_stats *out);

/* IPv6 routes: prefix is 16 bytes in network order, n prefixes back to
 * back for the bulk calls. The same contracts as the IPv4 calls above. */
int fp_route6_add(uint16_t vrf, const uint8_t *prefix, uint8_t len, uint32_t nh, char *err);
int fp_route6_del(uint16_t vrf, const uint8_t *prefix, uint8_t len, char *err);
int fp_route6_lookup(uint16_t vrf, const uint8_t *addr, uint32_t *nh);
int fp_route6_lookup_bulk(uint16_t vrf, const uint8_t *addr, uint32_t *nh, unsigned n);
int fp_route6_add_bulk(uint16_t vrf, const uint8_t *prefix, const uint8_t *len,
		       const uint32_t *nh, unsigned n, char *err);
int fp_route6_walk(uint16_t vrf,
		   int (*cb)(const uint8_t *prefix, uint8_t len, uint32_t nh, void *arg), void *arg);

struct fp_fib6_stats {
	/* the VRF */
	uint32_t routes;
	uint32_t groups;         /* pool groups it uses (its root among them) */
	uint64_t bytes;          /* what its lookups read: groups and their meta */
	uint64_t ctl_bytes;      /* control side: route table, depths */
	/* all VRFs */
	uint32_t vrfs;           /* VRFs with a FIB */
	uint64_t all_routes;
	uint32_t pool_groups;    /* fib6_groups */
	uint32_t pool_free;
	uint32_t pool_pending;   /* released, free after a grace period */
	uint64_t pool_bytes;     /* the groups and their meta, allocated at start */
	uint64_t pool_ctl_bytes;
	uint64_t all_bytes;      /* the pool and every VRF's root word */
	uint64_t all_ctl_bytes;
};

/* IPv6 FIB memory and occupancy: vrf's, and totals. */
int fp_fib6_stats(uint16_t vrf, struct fp_fib6_stats *out);

/* The vRouter's own IPv4 address in a VRF (the networks' gateway, NBO): the
 * source of the ICMP errors (time exceeded, fragmentation needed) it sends
 * there. 0: it sends none in that VRF. */
int fp_vrf_addr_set(uint16_t vrf, uint32_t addr, char *err);
/* The same for IPv6 (16 bytes, network order; all zero: none): the source
 * of its ICMPv6 errors (time exceeded, packet too big). */
int fp_vrf_addr6_set(uint16_t vrf, const uint8_t addr[16], char *err);

/* Decapsulation: VNI -> VRF and MPLS label -> VRF. */
int fp_vni_set(uint32_t vni, uint16_t vrf, char *err);
int fp_vni_del(uint32_t vni, char *err);
int fp_label_set(uint32_t label, uint16_t vrf, char *err);
int fp_label_del(uint32_t label, char *err);

/* Static underlay neighbour (otherwise learnt by ARP on the fabric port). */
int fp_neigh_set(uint32_t ip, const uint8_t mac[6], char *err);
/* Unpin a static neighbour: removed, or learnt again by ARP if tunnels use
 * it. -ENOENT if it is not static. */
int fp_neigh_del(uint32_t ip, char *err);
/* Resolved MAC of an underlay neighbour: 1 resolved, 0 pending, -ENOENT. */
int fp_neigh_get(uint32_t ip, uint8_t mac[6]);
/* The same for IPv6 underlay neighbours (learnt by neighbour discovery on
 * the fabric port); ip is 16 bytes in network order. */
int fp_neigh6_set(const uint8_t ip[16], const uint8_t mac[6], char *err);
int fp_neigh6_del(const uint8_t ip[16], char *err);
int fp_neigh6_get(const uint8_t ip[16], uint8_t mac[6]);

struct fp_port_stats {
	uint64_t rx_pkts, rx_bytes, tx_pkts, tx_bytes, drops;
	/* the device's own counters (rte_eth_stats): what never reached the
	 * fast path, or what the device failed to send */
	uint64_t dev_imissed, dev_ierrors, dev_oerrors, dev_rx_nombuf;
	/* memif: disconnects of a peer, each waited out by the workers before
	 * DPDK unmapped its rings (fp_port.c): one per disconnect */
	uint64_t memif_unmap_waits;
};

struct fp_lcore_stats {
	uint64_t polls, busy_polls, sleeps, rx_pkts, tx_pkts, drops;
	uint64_t consumed;    /* terminated by the vRouter, not drops (ARP
	                       * replies it learnt a neighbour from) */
	uint64_t busy_cycles; /* TSC cycles in polls that received packets */
	uint64_t router_adverts; /* Router Advertisements sent: pods' solicitations answered */
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

/* ---- packet trace and capture (fp_trace.c) --------------------------------
 * Operator debugging. Both are armed by control; while armed, the workers run
 * a recording copy of their loop, while disarmed they pay nothing. Records
 * go to memory allocated at arm time, never on the packet path. At most one
 * trace at a time, and one capture per port. */

#define FP_TRACE_BYTES 128    /* bytes of each frame kept, in and out */
#define FP_TRACE_MAX 4096     /* records per trace */
#define FP_TRACE_ANY_PORT 0xffff
#define FP_TRACE_NO_PORT 0xffff

enum fp_trace_verdict {
	FP_TRACE_NONE = 0,     /* no decision seen: a bug in the fast path */
	FP_TRACE_SENT = 1,     /* handed to out_port's TX queue */
	FP_TRACE_CONSUMED = 2, /* terminated by the vRouter (not a drop) */
	FP_TRACE_DROPPED = 3,  /* counted under reason; if out_len != 0 the
	                        * same mbuf left instead as the vRouter's answer
	                        * (ICMP error, ARP request) on out_port */
};

struct fp_trace_rec {
	uint64_t tsc;       /* rte_rdtsc() when the packet was processed */
	uint16_t worker;    /* worker index */
	uint16_t lcore;     /* DPDK lcore id */
	uint16_t in_port, in_queue;
	uint32_t in_len;    /* frame length as received */
	uint32_t out_len;   /* frame length as sent, 0 = nothing sent */
	uint16_t out_port;  /* FP_TRACE_NO_PORT when nothing was sent */
	uint8_t verdict;    /* enum fp_trace_verdict */
	uint8_t reason;     /* DROPPED: enum fp_drop_reason */
	uint8_t in_cap, out_cap;   /* bytes kept in in[] and out[] */
	uint8_t in[FP_TRACE_BYTES];  /* the frame as received */
	uint8_t out[FP_TRACE_BYTES]; /* as sent: after rewrite or encapsulation */
};

/* Arm: record the next count (1..FP_TRACE_MAX) packets received by any
 * worker, only those received on port unless it is FP_TRACE_ANY_PORT.
 * -EBUSY while a trace is armed. */
int fp_trace_start(uint32_t count, uint16_t port, char *err);
/* Records claimed so far (<= count); they are complete after fp_trace_stop. */
uint32_t fp_trace_progress(void);
/* Disarm, wait for every worker (RCU), copy up to max records out (in claim
 * order) and free the trace. Returns the number of records. */
int fp_trace_stop(struct fp_trace_rec *out, uint32_t max, char *err);

enum fp_capture_dir {
	FP_CAPTURE_RX = 1,
	FP_CAPTURE_TX = 2, /* frames handed to the device, before it sends */
};

#define FP_CAPTURE_RING_DEF 4096
#define FP_CAPTURE_RING_MAX 65536
#define FP_CAPTURE_SNAP_MAX 16384

struct fp_capture_conf {
	uint16_t port;
	uint8_t dir;       /* FP_CAPTURE_RX | FP_CAPTURE_TX */
	uint32_t count;    /* frames to capture, 0 = until stopped */
	uint32_t snaplen;  /* bytes kept per frame, 0 = FP_CAPTURE_SNAP_MAX */
	uint32_t ring;     /* frames buffered until read, 0 = FP_CAPTURE_RING_DEF */
};

struct fp_capture_meta {
	uint64_t tsc;
	uint32_t orig_len; /* the frame's length */
	uint32_t cap_len;  /* bytes in the buffer (<= snaplen) */
	uint16_t worker;
	uint8_t dir;       /* FP_CAPTURE_RX or FP_CAPTURE_TX */
};

struct fp_capture_stats {
	uint64_t captured; /* frames put in the capture ring */
	uint64_t dropped;  /* frames not captured: ring or capture pool full */
	uint64_t read;     /* frames taken by fp_capture_read */
	uint8_t armed;     /* 0 once stopped */
};

/* Arm a capture of a port: a copy of each frame (from a capture pool made
 * here) is queued on a ring until fp_capture_read takes it; a full ring
 * counts dropped, never stalls forwarding. -EBUSY if the port has one. */
int fp_capture_start(const struct fp_capture_conf *c, char *err);
/* Take up to max captured frames: data back to back in buf (only while a
 * whole snaplen still fits), one meta each. Works after fp_capture_stop
 * too, until fp_capture_free. Returns frames read or -ENOENT. */
int fp_capture_read(uint16_t port, uint8_t *buf, size_t buflen,
		    struct fp_capture_meta *meta, unsigned max);
int fp_capture_stats(uint16_t port, struct fp_capture_stats *out);
/* Disarm and wait for every worker; what was captured stays readable. */
int fp_capture_stop(uint16_t port, char *err);
/* Stop if armed and free the ring, its frames and the pool. */
int fp_capture_free(uint16_t port, char *err);

/* The TSC now, and its frequency (records' timestamps are TSC readings). */
uint64_t fp_tsc(uint64_t *hz);

#endif
