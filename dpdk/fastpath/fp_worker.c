/* SPDX-License-Identifier: Apache-2.0
 * The forwarding loop: run to completion on each worker lcore.
 *
 * A burst comes from one RX queue of one port; the port's kind picks the input
 * stage (pod, fabric, host). Every packet ends in exactly one of: a per-port TX
 * buffer of this lcore (flushed once per loop iteration) or the drop list
 * (counted by reason, freed in bulk). Nothing here allocates memory, takes a
 * lock or calls into Go; tables are read under RCU (the loop reports a
 * quiescent state once per iteration, after flushing TX).
 */
#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_hash_crc.h>
#ifdef __SSE4_2__
#include <nmmintrin.h>
#endif
#include <rte_icmp.h>
#include <rte_mpls.h>
#include <rte_prefetch.h>
#include <rte_udp.h>
#include <rte_vxlan.h>

#include "fp_ip4csum.h"
#include "fp_priv.h"

#define ETH_LEN ((uint16_t)sizeof(struct rte_ether_hdr))
#define IP_LEN ((uint16_t)sizeof(struct rte_ipv4_hdr))

/* ---- output ------------------------------------------------------------- */

/* Count a drop under r, or under icmp_error_unsent for the vRouter's own
 * ICMP error: each packet received is counted once, under its cause. */
static __rte_always_inline void
fp_drop_count(struct fp_lcore *lc, enum fp_drop_reason r)
{
	if (unlikely(lc->icmp_error_out))
		r = FP_DROP_ICMP_ERROR_UNSENT;
	lc->drops[r]++;
	lc->st.drops++;
}

static __rte_always_inline void
fp_drop(struct fp_lcore *lc, struct rte_mbuf *m, enum fp_drop_reason r)
{
	fp_drop_count(lc, r);
	lc->dropped[lc->nb_dropped++] = m;
}

/* Terminated by the vRouter itself: freed, counted, not a drop. */
static __rte_always_inline void
fp_consume(struct fp_lcore *lc, struct rte_mbuf *m)
{
	lc->st.consumed++;
	lc->dropped[lc->nb_dropped++] = m;
}

static void
fp_tx_flush_port(struct fp_lcore *lc, uint16_t port)
{
	struct fp_txbuf *b = &lc->tx[port];
	uint16_t sent = 0, n = b->n, i, q;
	/* Summed by fp_tx, where the mbuf is at hand: a loop over the buffer
	 * here cost 6 instructions a packet (callgrind), and a sent mbuf
	 * belongs to the PMD (and, on a ring port, to whoever reads the
	 * ring) that may free it. */
	uint64_t bytes = b->bytes;

	/* One retry: a PMD may free descriptors between two calls. */
	q = fp_dp->txq[port][lc->idx];
	if (unlikely(fp_dp->txq_shared[port]))
		rte_spinlock_lock(&fp_dp->txq_lock[port][q]);
	sent = rte_eth_tx_burst(port, q, b->m, n);
	if (unlikely(sent < n))
		sent += rte_eth_tx_burst(port, q, b->m + sent, n - sent);
	if (unlikely(fp_dp->txq_shared[port]))
		rte_spinlock_unlock(&fp_dp->txq_lock[port][q]);
	for (i = sent; i < n; i++)
		bytes -= b->m[i]->pkt_len;
	lc->port_st[port].tx_pkts += sent;
	lc->port_st[port].tx_bytes += bytes;
	lc->st.tx_pkts += sent;
	if (unlikely(sent < n)) {
		lc->drops[FP_DROP_TX_FULL] += n - sent;
		lc->port_st[port].drops += n - sent;
		lc->st.drops += n - sent;
		rte_pktmbuf_free_bulk(b->m + sent, n - sent);
	}
	b->n = 0;
	b->bytes = 0;
	lc->tx_pending &= ~(1u << port);
}

static __rte_always_inline void
fp_tx(struct fp_lcore *lc, uint16_t port, struct rte_mbuf *m)
{
	const struct fp_port *p = fp_dp->port[port];
	struct fp_txbuf *b;
	uint16_t n;

	if (unlikely(p == NULL || p->state != FP_PORT_UP)) {
		fp_drop(lc, m, FP_DROP_PORT_DOWN);
		return;
	}
	b = &lc->tx[port];
	/* n through a local: as b->m[b->n++] the compiler addressed the slot
	 * from lc again (11 instructions, callgrind) */
	n = b->n;
	b->m[n] = m;
	b->n = ++n;
	b->bytes += m->pkt_len;
	lc->tx_pending |= 1u << port;
	if (unlikely(n == FP_TXBUF))
		fp_tx_flush_port(lc, port);
}

static inline void
fp_tx_flush(struct fp_lcore *lc)
{
	uint32_t pend = lc->tx_pending;

	while (pend) {
		unsigned port = __builtin_ctz(pend);

		pend &= pend - 1;
		fp_tx_flush_port(lc, port);
	}
}

/* ---- helpers ------------------------------------------------------------ */

/* rte_is_same_ether_addr with one 64-bit load on each side instead of three
 * 16-bit ones: for addresses followed by 2 bytes that may be read (a frame's
 * destination and source, an fp_port's or fp_dp's MAC field), which the
 * shift drops (little-endian: they are the high bytes). */
static __rte_always_inline bool
fp_ether_eq8(const struct rte_ether_addr *a, const struct rte_ether_addr *b)
{
	uint64_t x, y;

	memcpy(&x, a, sizeof(x));
	memcpy(&y, b, sizeof(y));
	return ((x ^ y) << 16) == 0;
}
_Static_assert(offsetof(struct fp_port, pod_mac) + 8 <= sizeof(struct fp_port) &&
	       offsetof(struct fp_port, mac) + 8 <= sizeof(struct fp_port) &&
	       offsetof(struct fp_dp, vrouter_mac) + 8 <= offsetof(struct fp_dp, pool),
	       "fp_ether_eq8 reads 8 bytes");

/* CRC32-C steps of the flow hashes: the SSE4.2 instruction where the build
 * targets it (DPDK's x86 baseline, -march=corei7, does), the same value as
 * rte_hash_crc_4byte/8byte, which test at run time which implementation to
 * use on every call (6 instructions a packet on VXLAN encap: callgrind). */
static __rte_always_inline uint32_t
fp_crc4(uint32_t data, uint32_t h)
{
#ifdef __SSE4_2__
	return _mm_crc32_u32(h, data);
#else
	return rte_hash_crc_4byte(data, h);
#endif
}

static __rte_always_inline uint32_t
fp_crc8(uint64_t data, uint32_t h)
{
#ifdef __SSE4_2__
	return (uint32_t)_mm_crc32_u64(h, data);
#else
	return rte_hash_crc_8byte(data, h);
#endif
}

/* Flow hash over the IPv4 5-tuple (ports only for unfragmented TCP/UDP).
 * CRC32-C runs over bytes in order, so one 8-byte step is two 4-byte steps
 * of its halves: the adjacent addresses in one, the protocol and the ports
 * in another, the same hash in fewer steps. */
static __rte_always_inline uint32_t
fp_flow_hash(const struct rte_ipv4_hdr *ip, uint16_t l3_avail)
{
	uint16_t ihl = (ip->version_ihl & 0xf) << 2;
	uint64_t addrs;
	uint32_t h, ports;

	memcpy(&addrs, &ip->src_addr, sizeof(addrs)); /* then dst_addr */
	h = fp_crc8(addrs, 0x9e3779b9);
	if ((ip->next_proto_id == IPPROTO_TCP || ip->next_proto_id == IPPROTO_UDP) &&
	    !(ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG |
						     RTE_IPV4_HDR_OFFSET_MASK)) &&
	    l3_avail >= ihl + 4) {
		/* memcpy: the ports are only 2-byte aligned (one load all the same) */
		memcpy(&ports, (const uint8_t *)ip + ihl, sizeof(ports));
		return fp_crc8((uint64_t)ports << 32 | ip->next_proto_id, h);
	}
	return fp_crc4(ip->next_proto_id, h);
}
_Static_assert(offsetof(struct rte_ipv4_hdr, dst_addr) == offsetof(struct rte_ipv4_hdr, src_addr) + 4,
	       "fp_flow_hash reads both addresses in one");

/* Validate an IPv4 header at offset off; trims L2 padding. Returns the
 * header or NULL with the drop reason in *r. */
static __rte_always_inline struct rte_ipv4_hdr *
fp_ip4_check(struct rte_mbuf *m, uint16_t off, enum fp_drop_reason *r)
{
	struct rte_ipv4_hdr *ip;
	uint16_t avail, ihl, tot;

	if (unlikely(m->data_len < off + IP_LEN)) {
		*r = FP_DROP_IP_TRUNCATED;
		return NULL;
	}
	ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, off);
	avail = m->data_len - off;
	if (likely(ip->version_ihl == RTE_IPV4_VHL_DEF)) {
		/* Version 4 without options, in one test: 20 bytes fit
		 * (avail >= IP_LEN above). */
		ihl = IP_LEN;
	} else {
		if (unlikely((ip->version_ihl >> 4) != 4)) {
			*r = FP_DROP_IP_VERSION;
			return NULL;
		}
		ihl = (ip->version_ihl & 0xf) << 2;
		if (unlikely(ihl < IP_LEN || ihl > avail)) {
			*r = FP_DROP_IP_IHL;
			return NULL;
		}
	}
	tot = rte_be_to_cpu_16(ip->total_length);
	if (unlikely(tot < ihl || tot > avail)) {
		*r = FP_DROP_IP_LEN;
		return NULL;
	}
	if ((m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD) {
		/* checked by the NIC */
	} else if (unlikely((m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) ==
			    RTE_MBUF_F_RX_IP_CKSUM_BAD ||
			    !fp_ip4_csum_ok(ip, ihl))) {
		*r = FP_DROP_IP_CSUM;
		return NULL;
	}
	if (unlikely(tot < avail)) {
		/* Ethernet padding of short frames must not travel on. */
		rte_pktmbuf_trim(m, avail - tot);
	}
	return ip;
}

/* ---- forwarding --------------------------------------------------------- */

static void fp_forward4(struct fp_lcore *lc, struct rte_mbuf *m,
			struct rte_ipv4_hdr *ip, uint16_t vrf, bool local_reply);

static __rte_always_inline int
fp_fib4_lookup(uint16_t vrf, uint32_t dst_be, uint32_t *nh)
{
	uintptr_t root = __atomic_load_n(&fp_dp->fib4[vrf], __ATOMIC_ACQUIRE);
	uint32_t e;

	if (unlikely(root == 0))
		return -1;
	/* 0: no route (the default route is in the table), else nh + 1 */
	e = fp_fib4_match(root, rte_be_to_cpu_32(dst_be));
	if (unlikely(e == 0))
		return -1;
	*nh = e - 1;
	return 0;
}

/* Flow hash over the IPv6 5-tuple: ports only when TCP or UDP follows the
 * fixed header (no extension header walked). */
static __rte_always_inline uint32_t
fp_flow_hash6(const struct rte_ipv6_hdr *ip6)
{
	uint64_t a[4]; /* src and dst: only 2-byte aligned after MPLS */
	uint32_t h, ports;

	memcpy(a, ip6->src_addr, sizeof(a));
	h = fp_crc8(a[0], 0x9e3779b9);
	h = fp_crc8(a[1], h);
	h = fp_crc8(a[2], h);
	h = fp_crc8(a[3], h);
	h = fp_crc4(ip6->proto, h);
	if ((ip6->proto == IPPROTO_TCP || ip6->proto == IPPROTO_UDP) &&
	    rte_be_to_cpu_16(ip6->payload_len) >= 4) {
		memcpy(&ports, ip6 + 1, sizeof(ports));
		h = fp_crc4(ports, h);
	}
	return h;
}

/* One's complement sum of len bytes, folded to 16 bits, as rte_raw_cksum
 * but 8 bytes per add (DPDK 22.11's loops 2 bytes at a time): the outer UDP
 * checksum over IPv6 covers the whole packet. Any grouping of 16-bit words
 * gives the same one's complement sum once the carries are added back. On
 * x86-64 a 32-byte block is one add-with-carry chain from memory, as
 * Linux's csum_partial: the carries of a 128-bit accumulator cost gcc two
 * instructions per word and moves (callgrind: u6-encap-vxlan 474.6 -> 415.6
 * instructions/packet, u6-decap-vxlan 525.8 -> 462.7). */
static __rte_always_inline uint16_t
fp_csum(const void *buf, uint32_t len)
{
	const uint8_t *b = buf;
	uint64_t s = 0, a0;
	uint32_t w;
	uint16_t h;

	for (; len >= 32; b += 32, len -= 32) {
#if defined(__x86_64__)
		__asm__("addq 0(%[b]), %[s]\n\t"
			"adcq 8(%[b]), %[s]\n\t"
			"adcq 16(%[b]), %[s]\n\t"
			"adcq 24(%[b]), %[s]\n\t"
			"adcq $0, %[s]"
			: [s] "+r"(s)
			: [b] "r"(b), "m"(*(const uint8_t(*)[32])b)
			: "cc");
#else
		uint64_t a1, a2, a3;

		memcpy(&a0, b, 8);
		memcpy(&a1, b + 8, 8);
		memcpy(&a2, b + 16, 8);
		memcpy(&a3, b + 24, 8);
		s += a0;
		s += s < a0;
		s += a1;
		s += s < a1;
		s += a2;
		s += s < a2;
		s += a3;
		s += s < a3;
#endif
	}
	for (; len >= 8; b += 8, len -= 8) {
		memcpy(&a0, b, 8);
		s += a0;
		s += s < a0; /* end-around carry: add, adc */
	}
	if (len >= 4) {
		memcpy(&w, b, 4);
		s += w;
		s += s < w;
		b += 4;
		len -= 4;
	}
	if (len >= 2) {
		memcpy(&h, b, 2);
		s += h;
		s += s < h;
		b += 2;
		len -= 2;
	}
	if (len) {
		h = 0;
		*(uint8_t *)&h = *b; /* the odd byte is the first of its word */
		s += h;
		s += s < h;
	}
	/* 64 to 32 bits and 32 to 16 as fp_ip4_csum_ok folds */
	return (uint16_t)fp_csum_fold((uint32_t)((s + (s >> 32 | s << 32)) >> 32));
}

/* Copy n bytes, 32 <= n <= 64, as two 32-byte moves that overlap: no
 * branch on the length (rte_memcpy's cost 21 instructions a packet on
 * VXLAN encap, with the inner MAC stores the template now carries). */
static __rte_always_inline void
fp_tmpl_copy(void *dst, const void *src, unsigned n)
{
	memcpy(dst, src, 32);
	memcpy((uint8_t *)dst + n - 32, (const uint8_t *)src + n - 32, 32);
}

/* The same for 32 <= n <= 96 (IPv6 outer templates, 62..82 bytes): a third
 * move when n > 64, a branch each next-hop takes the same way. */
static __rte_always_inline void
fp_tmpl_copy96(void *dst, const void *src, unsigned n)
{
	if (n > 64)
		memcpy((uint8_t *)dst + 32, (const uint8_t *)src + 32, 32);
	fp_tmpl_copy(dst, src, n);
}

/* Grow single-segment m (checked on input) in place by the template's grow
 * for its outer headers, the caller having checked the headroom: VXLAN
 * keeps the inner Ethernet (its MACs rewritten by the template's copy,
 * vRouter to vRouter), the MPLS encapsulations write over it. One
 * adjustment rather than an adj and a prepend. (The headroom test in here,
 * returning NULL, cost VXLAN encap an instruction a packet: callgrind.) */
static __rte_always_inline struct rte_ether_hdr *
fp_tun_grow(struct rte_mbuf *m, const struct fp_tun_tmpl *t)
{
	m->data_off = (uint16_t)(m->data_off - t->grow);
	m->data_len = (uint16_t)(m->data_len + t->grow);
	m->pkt_len += t->grow;
	return rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
}

static void fp_tunnel_out6(struct fp_lcore *lc, struct rte_mbuf *m, const struct fp_nh *nh,
			   struct fp_neigh *ne, uint64_t mac, uint32_t hash, uint8_t tos,
			   const struct rte_ipv4_hdr *ip, const struct rte_ipv6_hdr *ip6);

/* Encapsulate m for tunnel next-hop nh and send it: an IPv4 packet (ip) or,
 * if ip is NULL, an IPv6 one (ip6), behind its Ethernet header. Inlined:
 * with two callers (fp_forward4, fp_forward6) the compiler made it a call,
 * and the IPv4 path paid the call and the family tests: 25 instructions a
 * packet on VXLAN encap (callgrind); inlined, each caller's constant NULL
 * folds them away. */
static __rte_always_inline void
fp_tunnel_out(struct fp_lcore *lc, struct rte_mbuf *m, const struct rte_ipv4_hdr *ip,
	      const struct rte_ipv6_hdr *ip6, const struct fp_nh *nh)
{
	struct fp_neigh *ne = &fp_dp->neigh[nh->neigh];
	uint64_t mac = __atomic_load_n(&ne->mac, __ATOMIC_RELAXED);
	/* Early, whatever the encapsulation (MPLSoGRE does not use it), so
	 * that it overlaps the header writes: computed only for the UDP
	 * encapsulations, after them, VXLAN and MPLSoUDP encap measured 4-6
	 * cycles/packet slower (make bench-fastpath, near placement). */
	uint32_t hash = likely(ip != NULL) ? fp_flow_hash(ip, rte_be_to_cpu_16(ip->total_length)) :
					     fp_flow_hash6(ip6);
	/* DSCP and ECN: the TOS byte, or the traffic class */
	uint8_t tos = likely(ip != NULL) ? ip->type_of_service :
					   (uint8_t)(rte_be_to_cpu_32(ip6->vtc_flow) >> 20);
	struct rte_ether_hdr *eth;
	struct rte_ipv4_hdr *oip;
	struct rte_udp_hdr *udp;
	uint16_t olen;
	uint32_t sum;

	if (unlikely(nh->tun.outer6)) {
		fp_tunnel_out6(lc, m, nh, ne, mac, hash, tos, ip, ip6);
		return;
	}
	if (unlikely(!(mac & FP_NEIGH_VALID))) {
		uint64_t now = rte_rdtsc();
		uint64_t last = __atomic_load_n(&ne->last_req_tsc, __ATOMIC_RELAXED);
		const struct fp_port *fab = fp_dp->port[nh->port];

		/* Turn the packet we cannot send into an ARP request for the
		 * neighbour, at most every FP_ARP_REQ_GAP_MS: no allocation. */
		if (fab != NULL && now - last > fp_dp->tsc_hz / 1000 * FP_ARP_REQ_GAP_MS &&
		    __atomic_compare_exchange_n(&ne->last_req_tsc, &last, now, false,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
			struct rte_arp_hdr *arp;

			fp_drop_count(lc, FP_DROP_NEIGH_UNRESOLVED);
			rte_pktmbuf_reset(m);
			eth = (struct rte_ether_hdr *)rte_pktmbuf_append(m,
				ETH_LEN + sizeof(struct rte_arp_hdr));
			memset(&eth->dst_addr, 0xff, RTE_ETHER_ADDR_LEN);
			eth->src_addr = fab->mac;
			eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
			arp = (struct rte_arp_hdr *)(eth + 1);
			arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
			arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
			arp->arp_hlen = RTE_ETHER_ADDR_LEN;
			arp->arp_plen = 4;
			arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REQUEST);
			arp->arp_data.arp_sha = fab->mac;
			arp->arp_data.arp_sip = fab->ip4[0];
			memset(&arp->arp_data.arp_tha, 0, RTE_ETHER_ADDR_LEN);
			arp->arp_data.arp_tip = ne->ip;
			fp_tx(lc, nh->port, m);
			return;
		}
		fp_drop(lc, m, FP_DROP_NEIGH_UNRESOLVED);
		return;
	}
	if (unlikely(m->data_off < nh->tun.grow)) {
		fp_drop(lc, m, FP_DROP_NO_HEADROOM);
		return;
	}
	eth = fp_tun_grow(m, &nh->tun);
	fp_tmpl_copy(eth, nh->tun.hdr, nh->tun.copy);
	/* 48-bit store of the resolved MAC over the template's zero dst. */
	memcpy(&eth->dst_addr, &mac, RTE_ETHER_ADDR_LEN);

	olen = m->pkt_len - ETH_LEN;
	oip = (struct rte_ipv4_hdr *)(eth + 1);
	oip->type_of_service = tos; /* DSCP and ECN copied out (RFC 6040 normal mode) */
	oip->total_length = rte_cpu_to_be_16(olen);
	sum = nh->tun.ip_sum;
	sum += rte_cpu_to_be_16((uint16_t)tos); /* tos is the low byte of word 0 */
	sum += oip->total_length;
	oip->hdr_checksum = (uint16_t)~fp_csum_fold(sum);
	/* MPLSoGRE: the template is complete; GRE has no field to carry the
	 * flow's entropy, underlay ECMP sees one flow per tunnel. */
	if (likely(nh->encap != FP_ENCAP_MPLSOGRE)) {
		/* Source port from the inner flow: entropy for underlay ECMP
		 * and RSS (RFC 7348 section 5: the dynamic range 49152-65535). */
		udp = (struct rte_udp_hdr *)(oip + 1);
		udp->src_port = rte_cpu_to_be_16((uint16_t)(0xc000 | (hash & 0x3fff)));
		udp->dgram_len = rte_cpu_to_be_16(olen - IP_LEN);
	}
	/* No TX offload (the checksum is summed above): l2_len and l3_len,
	 * in the mbuf's second cache line, are left as they are. */
	fp_tx(lc, nh->port, m);
}

/* ICMP echo request to one of the vRouter's addresses: answered in place and
 * routed back. Returns false if it is not an echo request. */
static bool
fp_echo_reply(struct fp_lcore *lc, struct rte_mbuf *m, struct rte_ipv4_hdr *ip,
	      uint16_t vrf)
{
	uint16_t ihl = (ip->version_ihl & 0xf) << 2;
	uint16_t tot = rte_be_to_cpu_16(ip->total_length);
	struct rte_icmp_hdr *icmp;
	uint32_t sum, a;

	if (ip->next_proto_id != IPPROTO_ICMP || tot < ihl + sizeof(*icmp) ||
	    (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG |
						    RTE_IPV4_HDR_OFFSET_MASK)))
		return false;
	icmp = (struct rte_icmp_hdr *)((uint8_t *)ip + ihl);
	if (icmp->icmp_type != RTE_IP_ICMP_ECHO_REQUEST || icmp->icmp_code != 0)
		return false;
	icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
	sum = (uint16_t)~icmp->icmp_cksum;
	sum += (uint16_t)~rte_cpu_to_be_16(RTE_IP_ICMP_ECHO_REQUEST << 8);
	sum += rte_cpu_to_be_16(RTE_IP_ICMP_ECHO_REPLY << 8);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	icmp->icmp_cksum = (uint16_t)~sum;
	a = ip->src_addr;
	ip->src_addr = ip->dst_addr;
	ip->dst_addr = a;
	ip->time_to_live = 64;
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	fp_forward4(lc, m, ip, vrf, true);
	return true;
}

static __rte_always_inline void
fp_punt_host(struct fp_lcore *lc, struct rte_mbuf *m)
{
	int host = fp_dp->host_port;

	if (unlikely(host < 0)) {
		fp_drop(lc, m, FP_DROP_NO_HOST_PORT);
		return;
	}
	fp_tx(lc, (uint16_t)host, m);
}

#define FP_ICMP_DEST_UNREACH 3  /* code 4: fragmentation needed */
#define FP_ICMP_TIME_EXCEEDED 11
#define FP_ICMP_RATE_PER_MS 1 /* ICMP errors per lcore: 1000/s ... */
#define FP_ICMP_BURST 100     /* ... in bursts of up to 100 */

/* Token bucket, per lcore: an error storm must not cost a forwarding core. */
static __rte_always_inline bool
fp_icmp_token(struct fp_lcore *lc)
{
	uint64_t now = rte_rdtsc();
	uint64_t ms = (now - lc->icmp_tsc) / (fp_dp->tsc_hz / 1000);

	if (ms != 0) {
		lc->icmp_tsc = now;
		lc->icmp_tokens = (uint32_t)RTE_MIN((uint64_t)FP_ICMP_BURST,
			lc->icmp_tokens + ms * FP_ICMP_RATE_PER_MS);
	}
	if (lc->icmp_tokens == 0)
		return false;
	lc->icmp_tokens--;
	return true;
}

static __rte_always_inline bool
fp_ip4_is_martian(uint32_t a_be)
{
	uint8_t first = ((const uint8_t *)&a_be)[0];

	/* 0/8, 127/8, multicast, reserved and broadcast */
	return first == 0 || first == 127 || first >= 224;
}

/* RFC 1812 4.3.2.7: no error about an ICMP error, a non-first fragment,
 * or a packet from or to an address that is not one host's. */
static bool
fp_icmp_error_allowed(const struct rte_ipv4_hdr *ip, uint16_t ihl, uint16_t tot)
{
	if (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_OFFSET_MASK))
		return false;
	if (fp_ip4_is_martian(ip->src_addr) || fp_ip4_is_martian(ip->dst_addr))
		return false;
	if (ip->next_proto_id == IPPROTO_ICMP) {
		uint8_t type;

		if (tot < ihl + 1)
			return false;
		type = *((const uint8_t *)ip + ihl);
		/* queries may get errors, errors may not */
		return type == RTE_IP_ICMP_ECHO_REQUEST || type == RTE_IP_ICMP_ECHO_REPLY ||
		       (type >= 13 && type <= 18);
	}
	return true;
}

/* The vRouter cannot forward m: count it under r and, where RFC 1812 allows
 * and the VRF has an address, turn the same mbuf into the ICMP error
 * (type, code; mtu for "fragmentation needed") and route it back to the
 * sender in the VRF. */
static void
fp_icmp_error(struct fp_lcore *lc, struct rte_mbuf *m, struct rte_ipv4_hdr *ip,
	      uint16_t vrf, uint8_t type, uint8_t code, uint16_t mtu,
	      enum fp_drop_reason r)
{
	uint32_t src = __atomic_load_n(&fp_dp->vrf_addr4[vrf], __ATOMIC_RELAXED);
	uint16_t ihl = (ip->version_ihl & 0xf) << 2;
	uint16_t tot = rte_be_to_cpu_16(ip->total_length);
	uint16_t quoted = RTE_MIN(tot, (uint16_t)(ihl + 8));
	uint32_t dst = ip->src_addr;
	struct rte_ipv4_hdr *eip;
	struct rte_icmp_hdr *icmp;
	struct rte_ether_hdr *eth;

	if (src == 0 || !fp_icmp_error_allowed(ip, ihl, tot) ||
	    rte_pktmbuf_headroom(m) < IP_LEN + sizeof(*icmp) || !fp_icmp_token(lc)) {
		fp_drop(lc, m, r);
		return;
	}
	fp_drop_count(lc, r);
	/* eth | quoted header + 8 bytes, then eth | ip | icmp | quoted */
	rte_pktmbuf_trim(m, m->data_len - (ETH_LEN + quoted));
	eth = (struct rte_ether_hdr *)rte_pktmbuf_prepend(m, IP_LEN + sizeof(*icmp));
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	eip = (struct rte_ipv4_hdr *)(eth + 1);
	eip->version_ihl = RTE_IPV4_VHL_DEF;
	eip->type_of_service = 0xc0; /* internetwork control */
	eip->total_length = rte_cpu_to_be_16(IP_LEN + sizeof(*icmp) + quoted);
	eip->packet_id = 0;
	eip->fragment_offset = 0;
	eip->time_to_live = 64;
	eip->next_proto_id = IPPROTO_ICMP;
	eip->src_addr = src;
	eip->dst_addr = dst;
	eip->hdr_checksum = 0;
	eip->hdr_checksum = rte_ipv4_cksum(eip);
	icmp = (struct rte_icmp_hdr *)(eip + 1);
	icmp->icmp_type = type;
	icmp->icmp_code = code;
	icmp->icmp_cksum = 0;
	icmp->icmp_ident = 0;
	icmp->icmp_seq_nb = rte_cpu_to_be_16(mtu); /* next-hop MTU (RFC 1191) or 0 */
	icmp->icmp_cksum = (uint16_t)~rte_raw_cksum(icmp, sizeof(*icmp) + quoted);
	lc->icmp_error_out = 1;
	fp_forward4(lc, m, eip, vrf, true);
	lc->icmp_error_out = 0;
}

/* Too big for the next hop: "fragmentation needed" if the sender set DF
 * (path MTU discovery), else dropped: the vRouter does not fragment. */
static __rte_always_inline void
fp_too_big(struct fp_lcore *lc, struct rte_mbuf *m, struct rte_ipv4_hdr *ip,
	   uint16_t vrf, uint16_t mtu, bool local_reply)
{
	if (!local_reply && (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG)))
		fp_icmp_error(lc, m, ip, vrf, FP_ICMP_DEST_UNREACH, 4, mtu, FP_DROP_TOO_BIG);
	else
		fp_drop(lc, m, FP_DROP_TOO_BIG);
}

/* its MAC rewrite copies dst and src in one */
_Static_assert(offsetof(struct fp_nh, src) == offsetof(struct fp_nh, dst) + RTE_ETHER_ADDR_LEN &&
	       offsetof(struct rte_ether_hdr, src_addr) ==
	       offsetof(struct rte_ether_hdr, dst_addr) + RTE_ETHER_ADDR_LEN,
	       "fp_forward4 copies the MAC rewrite in one");

/* Route an IPv4 packet (Ethernet header in front of it) in a VRF and send
 * it. local_reply: generated by the vRouter, never answered again.
 * Inlined into the two hot callers (pod input, UDP decap): as a call it
 * cost them ~25 instructions a packet in register saves, restores and
 * arguments (callgrind); the others call fp_forward4. */
static __rte_always_inline void
fp_forward4_inline(struct fp_lcore *lc, struct rte_mbuf *m, struct rte_ipv4_hdr *ip,
		   uint16_t vrf, bool local_reply)
{
	const struct fp_nh *nh;
	struct rte_ether_hdr *eth;
	uint32_t id;
	uint8_t type;

	if (unlikely(fp_fib4_lookup(vrf, ip->dst_addr, &id) != 0)) {
		fp_drop(lc, m, fp_dp->fib4[vrf] ? FP_DROP_NO_ROUTE : FP_DROP_VRF_INVALID);
		return;
	}
	nh = fp_dp->nh[id];
	if (unlikely(nh == NULL)) {
		fp_drop(lc, m, FP_DROP_NH_INVALID);
		return;
	}
	type = nh->type;
	if (type == FP_NH_ECMP) {
		uint32_t h = fp_flow_hash(ip, rte_be_to_cpu_16(ip->total_length));

		/* multiply-shift: uniform pick without a division */
		id = nh->members[((uint64_t)h * nh->nb_members) >> 32];
		nh = fp_dp->nh[id];
		if (unlikely(nh == NULL)) {
			fp_drop(lc, m, FP_DROP_NH_INVALID);
			return;
		}
		type = nh->type;
	}
	/* IFACE or TUNNEL in one compare, first: a switch tested RECEIVE
	 * before them */
	if (likely((uint8_t)(type - FP_NH_IFACE) <= FP_NH_TUNNEL - FP_NH_IFACE)) {
		/* A reply of the vRouter's own leaves with the TTL it set. */
		if (unlikely(ip->time_to_live <= 1 && !local_reply)) {
			fp_icmp_error(lc, m, ip, vrf, FP_ICMP_TIME_EXCEEDED, 0, 0,
				      FP_DROP_TTL_EXCEEDED);
			return;
		}
		if (unlikely(rte_be_to_cpu_16(ip->total_length) > nh->mtu)) {
			fp_too_big(lc, m, ip, vrf, nh->mtu, local_reply);
			return;
		}
		if (!local_reply)
			fp_ttl_dec(ip);
		if (type == FP_NH_TUNNEL) {
			fp_tunnel_out(lc, m, ip, NULL, nh);
			return;
		}
		eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
		/* dst and src in one 12-byte copy (an 8- and a 4-byte move),
		 * not two 6-byte ones: adjacent in both */
		memcpy(&eth->dst_addr, &nh->dst, 2 * RTE_ETHER_ADDR_LEN);
		fp_tx(lc, nh->port, m);
		return;
	}
	if (type == FP_NH_RECEIVE) {
		if (!local_reply && fp_echo_reply(lc, m, ip, vrf))
			return;
		fp_punt_host(lc, m);
		return;
	}
	/* DISCARD, or an ECMP member that is a group itself */
	fp_drop(lc, m, FP_DROP_NH_DISCARD);
}

static void
fp_forward4(struct fp_lcore *lc, struct rte_mbuf *m, struct rte_ipv4_hdr *ip,
	    uint16_t vrf, bool local_reply)
{
	fp_forward4_inline(lc, m, ip, vrf, local_reply);
}

/* ---- ARP ---------------------------------------------------------------- */

static __rte_always_inline struct rte_arp_hdr *
fp_arp_check(struct rte_mbuf *m)
{
	struct rte_arp_hdr *arp;

	if (unlikely(m->data_len < ETH_LEN + sizeof(*arp)))
		return NULL;
	arp = rte_pktmbuf_mtod_offset(m, struct rte_arp_hdr *, ETH_LEN);
	if (unlikely(arp->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
		     arp->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
		     arp->arp_hlen != RTE_ETHER_ADDR_LEN || arp->arp_plen != 4))
		return NULL;
	return arp;
}

/* Turn an ARP request into the reply "tip is at mac" and send it back. */
static __rte_always_inline void
fp_arp_reply(struct fp_lcore *lc, uint16_t port, struct rte_mbuf *m,
	     struct rte_arp_hdr *arp, const struct rte_ether_addr *mac)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	uint32_t tip = arp->arp_data.arp_tip;

	arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
	arp->arp_data.arp_tha = arp->arp_data.arp_sha;
	arp->arp_data.arp_tip = arp->arp_data.arp_sip;
	arp->arp_data.arp_sha = *mac;
	arp->arp_data.arp_sip = tip;
	eth->dst_addr = arp->arp_data.arp_tha;
	eth->src_addr = *mac;
	/* drop any padding: the reply is exactly eth + arp */
	rte_pktmbuf_trim(m, m->data_len - (ETH_LEN + sizeof(*arp)));
	fp_tx(lc, port, m);
}

/* ---- IPv6 --------------------------------------------------------------- */

#include "fp_worker6.h"

/* ---- input stages ------------------------------------------------------- */

static __rte_always_inline bool
fp_pod_owns(const struct fp_port *p, uint32_t ip)
{
	unsigned i;

	for (i = 0; i < p->nb_ip4; i++)
		if (p->ip4[i] == ip)
			return true;
	return false;
}

/* Always inlined: it is most packets' path, and gcc's heuristics inlined it
 * or not as fp_tunnel_out's size moved (14 instructions a packet on
 * pod-to-pod, and a worse FIB walk, when they did not: callgrind). */
static __rte_always_inline void
fp_pod_input(struct fp_lcore *lc, const struct fp_port *p, struct rte_mbuf *m)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	enum fp_drop_reason r;
	struct rte_ipv4_hdr *ip;

	if (unlikely(!fp_ether_eq8(&eth->src_addr, &p->pod_mac))) {
		fp_drop(lc, m, FP_DROP_SPOOF_MAC);
		return;
	}
	if (likely(eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))) {
		if (unlikely(!fp_ether_eq8(&eth->dst_addr, &fp_dp->vrouter_mac))) {
			fp_drop(lc, m, FP_DROP_L2_NOT_FOR_US);
			return;
		}
		ip = fp_ip4_check(m, ETH_LEN, &r);
		if (unlikely(ip == NULL)) {
			fp_drop(lc, m, r);
			return;
		}
		if (unlikely(!fp_pod_owns(p, ip->src_addr))) {
			fp_drop(lc, m, FP_DROP_SPOOF_IP);
			return;
		}
		fp_forward4_inline(lc, m, ip, p->vrf, false);
		return;
	}
	if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP)) {
		struct rte_arp_hdr *arp = fp_arp_check(m);

		if (unlikely(arp == NULL)) {
			fp_drop(lc, m, FP_DROP_ARP_MALFORMED);
			return;
		}
		if (unlikely(!rte_is_same_ether_addr(&arp->arp_data.arp_sha, &p->pod_mac))) {
			fp_drop(lc, m, FP_DROP_SPOOF_MAC);
			return;
		}
		/* Proxy ARP for every address but the pod's own: answering a
		 * probe for its own address would fail its duplicate address
		 * detection. */
		if (arp->arp_opcode != rte_cpu_to_be_16(RTE_ARP_OP_REQUEST) ||
		    fp_pod_owns(p, arp->arp_data.arp_tip) || arp->arp_data.arp_tip == 0) {
			fp_drop(lc, m, FP_DROP_ARP_IGNORED);
			return;
		}
		fp_arp_reply(lc, p->id, m, arp, &fp_dp->vrouter_mac);
		return;
	}
	if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6)) {
		fp_pod_input6(lc, p, m);
		return;
	}
	fp_drop(lc, m, FP_DROP_ETHERTYPE);
}

/* The one MPLS label at off (the caller checked that an IPv4 header's worth
 * follows): maps it to a VRF and replaces everything up to the inner IPv4
 * packet by an Ethernet header. Returns the VRF + 1, or 0 once dropped. */
static __rte_always_inline uint16_t
fp_mpls_pop(struct fp_lcore *lc, struct rte_mbuf *m, uint16_t off)
{
	struct rte_ether_hdr *eth;
	uint16_t vrf1;
	uint32_t w;

	/* 2-byte aligned: a uint32_t load there is undefined behaviour */
	memcpy(&w, rte_pktmbuf_mtod_offset(m, const void *, off), sizeof(w));
	w = rte_be_to_cpu_32(w);

	if (unlikely(!(w & 0x100))) {
		fp_drop(lc, m, FP_DROP_MPLS_STACK);
		return 0;
	}
	vrf1 = fp_map24_get(&fp_dp->label, w >> 12);
	if (unlikely(vrf1 == 0)) {
		fp_drop(lc, m, FP_DROP_MPLS_LABEL_UNKNOWN);
		return 0;
	}
	/* Keep ETH_LEN bytes of the outer headers as the new Ethernet. */
	rte_pktmbuf_adj(m, off + 4 - ETH_LEN);
	/* The NIC's checksum verdict was on the outer header. */
	m->ol_flags &= ~RTE_MBUF_F_RX_IP_CKSUM_MASK;
	eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	/* MPLS does not say what it carries: the first nibble does */
	switch (*(const uint8_t *)(eth + 1) >> 4) {
	case 4:
		eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
		break;
	case 6:
		eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
		break;
	default:
		fp_drop(lc, m, FP_DROP_INNER_NOT_IP);
		return 0;
	}
	eth->dst_addr = fp_dp->vrouter_mac;
	eth->src_addr = fp_dp->vrouter_mac;
	return vrf1;
}

/* GRE flags and version that a receiver without RFC 1701 options must not
 * accept (RFC 2784 section 2.3): checksum, routing, key, sequence, strict
 * route, recursion, and any version but 0. Bits 6-12 are ignored. */
#define FP_GRE_UNSUPPORTED 0xfc07

/* MPLSoGRE addressed to this vRouter, its GRE header at l4off and l4len
 * bytes from there (the caller checked the GRE protocol): strip, map the
 * label to a VRF, route. The outer header is IPv4 or IPv6. */
static void
fp_decap_gre(struct fp_lcore *lc, struct rte_mbuf *m, uint16_t l4off, uint16_t l4len)
{
	const unaligned_uint16_t *gre = rte_pktmbuf_mtod_offset(m, const unaligned_uint16_t *, l4off);
	enum fp_drop_reason r;
	struct rte_ipv4_hdr *ip;
	uint16_t vrf1;

	if (unlikely(gre[0] & rte_cpu_to_be_16(FP_GRE_UNSUPPORTED))) {
		fp_drop(lc, m, FP_DROP_GRE_UNSUPPORTED);
		return;
	}
	if (unlikely(l4len < 4 + 4 + IP_LEN)) {
		fp_drop(lc, m, FP_DROP_MPLS_TRUNCATED);
		return;
	}
	vrf1 = fp_mpls_pop(lc, m, l4off + 4);
	if (unlikely(vrf1 == 0))
		return;
	if (unlikely(rte_pktmbuf_mtod(m, struct rte_ether_hdr *)->ether_type ==
		     rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6))) {
		fp_inner6(lc, m, vrf1 - 1);
		return;
	}
	ip = fp_ip4_check(m, ETH_LEN, &r);
	if (unlikely(ip == NULL)) {
		fp_drop(lc, m, r);
		return;
	}
	fp_forward4(lc, m, ip, vrf1 - 1, false);
}

/* VXLAN or MPLSoUDP addressed to this vRouter, its UDP header at l4off and
 * l4len bytes from there (IPv4 or IPv6 outer): strip, map to a VRF, route. */
static void
fp_decap(struct fp_lcore *lc, struct rte_mbuf *m, uint16_t l4off, uint16_t l4len)
{
	struct rte_udp_hdr *udp;
	struct rte_ether_hdr *eth;
	enum fp_drop_reason r;
	struct rte_ipv4_hdr *ip;
	uint16_t vrf1, dport;

	udp = rte_pktmbuf_mtod_offset(m, struct rte_udp_hdr *, l4off);
	dport = udp->dst_port;
	if (dport == rte_cpu_to_be_16(FP_VXLAN_PORT)) {
		const struct rte_vxlan_hdr *vx = (const struct rte_vxlan_hdr *)(udp + 1);

		if (unlikely(l4len < sizeof(*udp) + sizeof(*vx) + ETH_LEN ||
			     rte_be_to_cpu_16(udp->dgram_len) != l4len)) {
			fp_drop(lc, m, FP_DROP_VXLAN_TRUNCATED);
			return;
		}
		if (unlikely(!(vx->vx_flags & rte_cpu_to_be_32(0x08000000)))) {
			fp_drop(lc, m, FP_DROP_VXLAN_FLAGS);
			return;
		}
		vrf1 = fp_map24_get(&fp_dp->vni, rte_be_to_cpu_32(vx->vx_vni) >> 8);
		if (unlikely(vrf1 == 0)) {
			fp_drop(lc, m, FP_DROP_VNI_UNKNOWN);
			return;
		}
		rte_pktmbuf_adj(m, l4off + sizeof(*udp) + sizeof(*vx));
		/* The NIC's checksum verdict was on the outer header. */
		m->ol_flags &= ~RTE_MBUF_F_RX_IP_CKSUM_MASK;
		eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
		if (unlikely(eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) &&
			     eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6))) {
			fp_drop(lc, m, FP_DROP_INNER_NOT_IP);
			return;
		}
		if (unlikely(!fp_ether_eq8(&eth->dst_addr, &fp_dp->vrouter_mac))) {
			fp_drop(lc, m, FP_DROP_L2_NOT_FOR_US);
			return;
		}
	} else {
		if (unlikely(l4len < sizeof(*udp) + 4 + IP_LEN ||
			     rte_be_to_cpu_16(udp->dgram_len) != l4len)) {
			fp_drop(lc, m, FP_DROP_MPLS_TRUNCATED);
			return;
		}
		vrf1 = fp_mpls_pop(lc, m, l4off + sizeof(*udp));
		if (unlikely(vrf1 == 0))
			return;
		eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	}
	if (unlikely(eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6))) {
		fp_inner6(lc, m, vrf1 - 1);
		return;
	}
	ip = fp_ip4_check(m, ETH_LEN, &r);
	if (unlikely(ip == NULL)) {
		fp_drop(lc, m, r);
		return;
	}
	fp_forward4_inline(lc, m, ip, vrf1 - 1, false);
}

static void
fp_fabric_input(struct fp_lcore *lc, const struct fp_port *p, struct rte_mbuf *m)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	enum fp_drop_reason r;
	struct rte_ipv4_hdr *ip;

	if (likely(eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))) {
		ip = fp_ip4_check(m, ETH_LEN, &r);
		if (unlikely(ip == NULL)) {
			fp_drop(lc, m, r);
			return;
		}
		/* Fragments are not reassembled here: the host has them. */
		if (likely(ip->dst_addr == p->ip4[0] &&
			   fp_ether_eq8(&eth->dst_addr, &p->mac) &&
			   !(ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG |
								    RTE_IPV4_HDR_OFFSET_MASK)))) {
			uint16_t ihl = (ip->version_ihl & 0xf) << 2;

			if (likely(ip->next_proto_id == IPPROTO_UDP)) {
				const struct rte_udp_hdr *udp;

				if (unlikely(rte_be_to_cpu_16(ip->total_length) < ihl + sizeof(*udp))) {
					fp_drop(lc, m, FP_DROP_UDP_TRUNCATED);
					return;
				}
				udp = (const struct rte_udp_hdr *)((const uint8_t *)ip + ihl);
				if (udp->dst_port == rte_cpu_to_be_16(FP_VXLAN_PORT) ||
				    udp->dst_port == rte_cpu_to_be_16(FP_MPLSOUDP_PORT)) {
					fp_decap(lc, m, ETH_LEN + ihl,
						 rte_be_to_cpu_16(ip->total_length) - ihl);
					return;
				}
			} else if (ip->next_proto_id == IPPROTO_GRE) {
				const unaligned_uint16_t *gre;

				if (unlikely(rte_be_to_cpu_16(ip->total_length) < ihl + 4)) {
					fp_drop(lc, m, FP_DROP_GRE_TRUNCATED);
					return;
				}
				/* Other GRE payloads are the node's own tunnels. */
				gre = (const unaligned_uint16_t *)((const uint8_t *)ip + ihl);
				if (gre[1] == rte_cpu_to_be_16(FP_GRE_PROTO_MPLS)) {
					fp_decap_gre(lc, m, ETH_LEN + ihl,
						     rte_be_to_cpu_16(ip->total_length) - ihl);
					return;
				}
			}
		}
		/* Not overlay: the node's own traffic (TF's vhost0). */
		fp_punt_host(lc, m);
		return;
	}
	if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP)) {
		struct rte_arp_hdr *arp = fp_arp_check(m);

		if (unlikely(arp == NULL)) {
			fp_drop(lc, m, FP_DROP_ARP_MALFORMED);
			return;
		}
		bool learnt = false;

		if (arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REPLY))
			learnt = fp_neigh_learn(arp->arp_data.arp_sip, &arp->arp_data.arp_sha);
		if (arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REQUEST) &&
		    arp->arp_data.arp_tip == p->ip4[0] && p->ip4[0] != 0) {
			/* Learn the asker too: it is about to send to us. */
			fp_neigh_learn(arp->arp_data.arp_sip, &arp->arp_data.arp_sha);
			fp_arp_reply(lc, p->id, m, arp, &p->mac);
			return;
		}
		if (fp_dp->host_port >= 0) {
			fp_tx(lc, (uint16_t)fp_dp->host_port, m);
			return;
		}
		if (learnt)
			fp_consume(lc, m);
		else
			fp_drop(lc, m, FP_DROP_ARP_IGNORED);
		return;
	}
	if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6)) {
		fp_fabric_input6(lc, p, m);
		return;
	}
	/* Anything else belongs to the node's stack, if it has one here. */
	if (fp_dp->host_port >= 0) {
		fp_tx(lc, (uint16_t)fp_dp->host_port, m);
		return;
	}
	fp_drop(lc, m, FP_DROP_ETHERTYPE);
}

/* The node's own stack: to local pods through its VRF (kubelet probes),
 * everything else out of the fabric as it is. */
static void
fp_host_input(struct fp_lcore *lc, const struct fp_port *p, struct rte_mbuf *m)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_ipv4_hdr *ip;
	uint32_t id;
	int fab = fp_dp->fabric_port;

	if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6) && fp_host_input6(lc, p, m))
		return;
	if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) &&
	    m->data_len >= ETH_LEN + IP_LEN) {
		ip = (struct rte_ipv4_hdr *)(eth + 1);
		if (fp_fib4_lookup(p->vrf, ip->dst_addr, &id) == 0) {
			enum fp_drop_reason r;

			ip = fp_ip4_check(m, ETH_LEN, &r);
			if (unlikely(ip == NULL)) {
				fp_drop(lc, m, r);
				return;
			}
			fp_forward4(lc, m, ip, p->vrf, false);
			return;
		}
	}
	if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP)) {
		struct rte_arp_hdr *arp = fp_arp_check(m);

		/* The node resolves its local pods (routes in the host VRF) to
		 * the vRouter, as pods resolve their gateway; the rest of its
		 * ARP is the underlay's. */
		if (arp != NULL && arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REQUEST) &&
		    fp_fib4_lookup(p->vrf, arp->arp_data.arp_tip, &id) == 0) {
			const struct fp_nh *nh = fp_dp->nh[id];
			const struct fp_port *out = nh != NULL && nh->type == FP_NH_IFACE ?
							    fp_dp->port[nh->port] : NULL;

			/* only addresses routed to a pod, whatever else the
			 * host VRF holds (a default route, say) */
			if (out != NULL && out->kind == FP_PORT_POD) {
				fp_arp_reply(lc, p->id, m, arp, &fp_dp->vrouter_mac);
				return;
			}
		}
	}
	if (unlikely(fab < 0)) {
		fp_drop(lc, m, FP_DROP_PORT_DOWN);
		return;
	}
	fp_tx(lc, (uint16_t)fab, m);
}

/* ---- loop --------------------------------------------------------------- */

/* One received packet of port p (not NULL) of kind p->kind to its input
 * stage. */
static __rte_always_inline void
fp_input_kind(struct fp_lcore *lc, const struct fp_port *p, struct rte_mbuf *m, uint8_t kind)
{
	if (unlikely(m->nb_segs != 1)) {
		fp_drop(lc, m, FP_DROP_MULTISEG);
		return;
	}
	if (unlikely(m->data_len < ETH_LEN)) {
		fp_drop(lc, m, FP_DROP_ETH_TRUNCATED);
		return;
	}
	switch (kind) {
	case FP_PORT_POD:
		fp_pod_input(lc, p, m);
		break;
	case FP_PORT_FABRIC:
		fp_fabric_input(lc, p, m);
		break;
	default:
		fp_host_input(lc, p, m);
		break;
	}
}

/* One received packet to its port's input stage (fp_trace_worker.c uses it
 * too). */
static __rte_always_inline void
fp_input(struct fp_lcore *lc, const struct fp_port *p, struct rte_mbuf *m)
{
	if (unlikely(p == NULL)) {
		fp_drop(lc, m, FP_DROP_PORT_DOWN);
		return;
	}
	fp_input_kind(lc, p, m, p->kind);
}

/* fp_rx's loop over a burst of port p (not NULL) of kind kind, a constant
 * in each of its three copies: the port's test and the switch on its kind
 * were per packet (7 instructions, callgrind) and are now per burst.
 * Returns the bytes received. */
static __rte_always_inline uint64_t
fp_rx_kind(struct fp_lcore *lc, const struct fp_port *p, struct rte_mbuf **pkts, unsigned n,
	   uint8_t kind)
{
	uint64_t bytes = 0;
	unsigned i;

	for (i = 0; i < n && i < FP_PREFETCH; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	for (i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];

		if (i + FP_PREFETCH < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + FP_PREFETCH], void *));
		bytes += m->pkt_len;
		fp_input_kind(lc, p, m, kind);
	}
	return bytes;
}

static __rte_always_inline unsigned
fp_rx(struct fp_lcore *lc, uint16_t port, uint16_t queue)
{
	struct rte_mbuf *pkts[FP_BURST];
	const struct fp_port *p;
	uint64_t bytes = 0;
	unsigned n, i;

	n = rte_eth_rx_burst(port, queue, pkts, FP_BURST);
	if (n == 0)
		return 0;
	p = fp_dp->port[port];
	if (p != NULL && p->xconnect != 0) {
		for (i = 0; i < n; i++) {
			bytes += pkts[i]->pkt_len;
			fp_tx(lc, p->xconnect - 1, pkts[i]);
		}
		goto out;
	}
	if (unlikely(p == NULL)) {
		for (i = 0; i < n; i++) {
			bytes += pkts[i]->pkt_len;
			fp_drop(lc, pkts[i], FP_DROP_PORT_DOWN);
		}
		goto out;
	}
	switch (p->kind) {
	case FP_PORT_POD:
		bytes = fp_rx_kind(lc, p, pkts, n, FP_PORT_POD);
		break;
	case FP_PORT_FABRIC:
		bytes = fp_rx_kind(lc, p, pkts, n, FP_PORT_FABRIC);
		break;
	default:
		bytes = fp_rx_kind(lc, p, pkts, n, FP_PORT_HOST);
		break;
	}
out:
	lc->port_st[port].rx_pkts += n;
	lc->port_st[port].rx_bytes += bytes;
	lc->st.rx_pkts += n;
	if (lc->nb_dropped) {
		rte_pktmbuf_free_bulk(lc->dropped, lc->nb_dropped);
		lc->nb_dropped = 0;
	}
	return n;
}

/* The worker's loop (fp_worker_main in fp_trace_worker.c runs it). It
 * returns when lc->stop is set: FP_LOOP_STOP, or FP_LOOP_ARMED while a trace
 * or capture is armed. */
#ifndef FP_WORKER_ARMED /* fp_trace_worker.c compiles this file again */
int
fp_worker_loop(void *arg)
{
	struct fp_lcore *lc = arg;
	struct rte_rcu_qsbr *qs = fp_dp->qs;
	uint64_t max_sleep = fp_dp->cfg.idle_sleep_max_us;
	unsigned idle = 0, sleep_us = 0;
	uint64_t t0, t1;

	rte_rcu_qsbr_thread_online(qs, lc->idx);
	t0 = rte_rdtsc();
	while (!lc->stop) {
		const struct fp_pollset *ps = __atomic_load_n(&lc->poll, __ATOMIC_ACQUIRE);
		unsigned i, nrx = 0;

		for (i = 0; i < ps->n; i++)
			nrx += fp_rx(lc, ps->q[i].port, ps->q[i].queue);
		if (lc->tx_pending)
			fp_tx_flush(lc);
		lc->st.polls++;
		rte_rcu_qsbr_quiescent(qs, lc->idx);
		t1 = rte_rdtsc();
		if (likely(nrx != 0)) {
			/* cycles/packet = busy_cycles / rx_pkts on a saturated lcore */
			lc->st.busy_cycles += t1 - t0;
			t0 = t1;
			lc->st.busy_polls++;
			idle = 0;
			sleep_us = 0;
			continue;
		}
		/* Adaptive polling: spin a little, then sleep with exponential
		 * back-off; offline while asleep so control never waits on us. */
		t0 = t1;
		if (++idle < FP_IDLE_SPIN || max_sleep == 0) {
			rte_pause();
			continue;
		}
		sleep_us = sleep_us == 0 ? 1 : RTE_MIN(sleep_us * 2, (unsigned)max_sleep);
		lc->st.sleeps++;
		rte_rcu_qsbr_thread_offline(qs, lc->idx);
		rte_delay_us_sleep(sleep_us);
		rte_rcu_qsbr_thread_online(qs, lc->idx);
		t0 = rte_rdtsc();
	}
	rte_rcu_qsbr_thread_offline(qs, lc->idx);
	return 0;
}
#endif
