/* SPDX-License-Identifier: Apache-2.0
 * Control side of the forwarding tables: next-hops, per-VRF IPv4 FIBs,
 * VNI/label -> VRF maps and underlay neighbours.
 *
 * Readers (lcores) never see a half-built object: a next-hop is built whole,
 * published with one pointer store, and the one it replaced is freed after an
 * RCU grace period. The IPv4 FIB is fp_fib4.c's trie: routes are validated
 * and next-hops reference-counted here, the tables are changed there (IPv6:
 * fp_route6.c around fp_fib6.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <rte_ethdev.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_udp.h>
#include <rte_vxlan.h>

#include "fp_priv.h"

int
fp_tables_init(char *err)
{
	struct fp_dp *dp = fp_dp;
	int ret;

	dp->fib4 = rte_zmalloc("fp_fib4", sizeof(*dp->fib4) * dp->cfg.vrf_max, RTE_CACHE_LINE_SIZE);
	dp->fib4_ctl = rte_zmalloc("fp_fib4_ctl", sizeof(*dp->fib4_ctl) * dp->cfg.vrf_max, 0);
	dp->fib6 = rte_zmalloc("fp_fib6", sizeof(*dp->fib6) * dp->cfg.vrf_max, RTE_CACHE_LINE_SIZE);
	dp->fib6_ctl = rte_zmalloc("fp_fib6_ctl", sizeof(*dp->fib6_ctl) * dp->cfg.vrf_max, 0);
	dp->vrf_addr4 = rte_zmalloc("fp_vrf_addr4", sizeof(uint32_t) * dp->cfg.vrf_max, 0);
	dp->vrf_addr6 = rte_zmalloc("fp_vrf_addr6", sizeof(*dp->vrf_addr6) * dp->cfg.vrf_max, 0);
	dp->nh = rte_zmalloc("fp_nh", sizeof(*dp->nh) * dp->cfg.nh_max, RTE_CACHE_LINE_SIZE);
	dp->nh_refs = rte_zmalloc("fp_nh_refs", sizeof(uint32_t) * dp->cfg.nh_max, 0);
	if (!dp->fib4 || !dp->fib4_ctl || !dp->fib6 || !dp->fib6_ctl || !dp->vrf_addr4 ||
	    !dp->vrf_addr6 || !dp->nh ||
	    !dp->nh_refs) {
		fp_err(err, "no memory for tables (nh_max %u, vrf_max %u)",
			dp->cfg.nh_max, dp->cfg.vrf_max);
		return -ENOMEM;
	}
	ret = fp_fib4_pool_init(dp->cfg.fib4_tbl8s, dp->qs, err);
	if (ret < 0)
		return ret;
	return fp_fib6_pool_init(dp->cfg.fib6_groups, dp->qs, err);
}

static void
map24_fini(struct fp_map24 *m)
{
	unsigned i;

	for (i = 0; i < RTE_DIM(m->page); i++) {
		rte_free(m->page[i]);
		m->page[i] = NULL;
	}
}

void
fp_tables_fini(void)
{
	struct fp_dp *dp = fp_dp;
	uint32_t i;

	if (dp->fib4_ctl)
		for (i = 0; i < dp->cfg.vrf_max; i++)
			fp_fib4_free(dp->fib4_ctl[i]);
	fp_fib4_pool_fini();
	if (dp->fib6_ctl)
		for (i = 0; i < dp->cfg.vrf_max; i++)
			fp_fib6_free(dp->fib6_ctl[i]);
	fp_fib6_pool_fini();
	if (dp->nh)
		for (i = 0; i < dp->cfg.nh_max; i++)
			rte_free(dp->nh[i]);
	map24_fini(&dp->vni);
	map24_fini(&dp->label);
	rte_free(dp->fib4);
	rte_free(dp->fib4_ctl);
	rte_free(dp->fib6);
	rte_free(dp->fib6_ctl);
	rte_free(dp->vrf_addr4);
	rte_free(dp->vrf_addr6);
	rte_free(dp->nh);
	rte_free(dp->nh_refs);
}

/* ---- underlay neighbours ------------------------------------------------ */

/* A neighbour's address: IPv4 (ip, NBO) or IPv6 (ip6). */
struct neigh_key {
	uint8_t family;
	uint32_t ip;
	uint8_t ip6[16];
};

static bool
neigh_is(const struct fp_neigh *n, const struct neigh_key *k)
{
	if (n->family != k->family)
		return false;
	return k->family == 4 ? n->ip == k->ip : memcmp(n->ip6, k->ip6, 16) == 0;
}

/* The slot holding k, or with k NULL a free slot; -1 if none. */
static int
neigh_find(const struct neigh_key *k)
{
	unsigned i;

	for (i = 0; i < FP_MAX_NEIGH; i++) {
		const struct fp_neigh *n = &fp_dp->neigh[i];

		if (k == NULL ? n->family == 0 : neigh_is(n, k))
			return (int)i;
	}
	return -1;
}

static int
neigh_ref(const struct neigh_key *k)
{
	int i = neigh_find(k);

	if (i < 0) {
		struct fp_neigh *n;

		i = neigh_find(NULL);
		if (i < 0)
			return -ENOSPC;
		n = &fp_dp->neigh[i];
		n->mac = 0;
		n->last_req_tsc = 0;
		n->is_static = false;
		n->ip = k->ip;
		memcpy(n->ip6, k->ip6, 16);
		/* lcores match on the family first: the address is in place */
		__atomic_store_n(&n->family, k->family, __ATOMIC_RELEASE);
	}
	fp_dp->neigh[i].refs++;
	return i;
}

static void
neigh_free(struct fp_neigh *n)
{
	__atomic_store_n(&n->family, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&n->mac, 0, __ATOMIC_RELAXED);
}

static void
neigh_unref(uint32_t idx)
{
	struct fp_neigh *n = &fp_dp->neigh[idx];

	/* No next-hop reads it any more (the caller waited a grace period);
	 * an lcore learning by ARP or ND may still match the address, a
	 * harmless write to a free slot. */
	if (--n->refs == 0 && !n->is_static)
		neigh_free(n);
}

static uint64_t
mac_word(const struct rte_ether_addr *mac)
{
	uint64_t w = 0;

	memcpy(&w, mac, RTE_ETHER_ADDR_LEN);
	return w | FP_NEIGH_VALID;
}

/* Called by lcores on ARP (ND) from the fabric: only neighbours some tunnel
 * (or the operator) asked for are learnt, so the table cannot be flooded. */
bool
fp_neigh_learn(uint32_t ip, const struct rte_ether_addr *mac)
{
	unsigned i;

	if (ip == 0 || !rte_is_unicast_ether_addr(mac) || rte_is_zero_ether_addr(mac))
		return false;
	for (i = 0; i < FP_MAX_NEIGH; i++) {
		struct fp_neigh *n = &fp_dp->neigh[i];

		if (__atomic_load_n(&n->family, __ATOMIC_ACQUIRE) == 4 && n->ip == ip) {
			if (n->is_static)
				return false;
			__atomic_store_n(&n->mac, mac_word(mac), __ATOMIC_RELAXED);
			return true;
		}
	}
	return false;
}

bool
fp_neigh6_learn(const uint8_t *ip, const struct rte_ether_addr *mac)
{
	unsigned i;

	if (!rte_is_unicast_ether_addr(mac) || rte_is_zero_ether_addr(mac))
		return false;
	for (i = 0; i < FP_MAX_NEIGH; i++) {
		struct fp_neigh *n = &fp_dp->neigh[i];

		if (__atomic_load_n(&n->family, __ATOMIC_ACQUIRE) == 6 &&
		    memcmp(n->ip6, ip, 16) == 0) {
			if (n->is_static)
				return false;
			__atomic_store_n(&n->mac, mac_word(mac), __ATOMIC_RELAXED);
			return true;
		}
	}
	return false;
}

static bool
ip6_zero(const uint8_t *a)
{
	static const uint8_t zero[16];

	return memcmp(a, zero, 16) == 0;
}

static void
neigh_key_fmt(const struct neigh_key *k, char *buf, size_t len)
{
	if (k->family == 4)
		snprintf(buf, len, "%u.%u.%u.%u", ((const uint8_t *)&k->ip)[0],
			 ((const uint8_t *)&k->ip)[1], ((const uint8_t *)&k->ip)[2],
			 ((const uint8_t *)&k->ip)[3]);
	else
		inet_ntop(AF_INET6, k->ip6, buf, len);
}

static int
neigh_set(const struct neigh_key *k, const uint8_t mac[6], char *err)
{
	const struct rte_ether_addr *ea = (const struct rte_ether_addr *)mac;
	int i;

	if ((k->family == 4 ? k->ip == 0 : ip6_zero(k->ip6)) || !rte_is_unicast_ether_addr(ea) ||
	    rte_is_zero_ether_addr(ea)) {
		fp_err(err, "neighbour needs a non-zero IP and a unicast MAC");
		return -EINVAL;
	}
	i = neigh_find(k);
	if (i < 0) {
		i = neigh_ref(k);
		if (i < 0) {
			fp_err(err, "neighbour table full (%u)", FP_MAX_NEIGH);
			return i;
		}
		fp_dp->neigh[i].refs--; /* static entries are not referenced */
	}
	fp_dp->neigh[i].is_static = true;
	__atomic_store_n(&fp_dp->neigh[i].mac, mac_word(ea), __ATOMIC_RELAXED);
	return 0;
}

static int
neigh_del(const struct neigh_key *k, char *err)
{
	struct fp_neigh *n;
	int i = neigh_find(k);

	if (i < 0 || !fp_dp->neigh[i].is_static) {
		char a[INET6_ADDRSTRLEN];

		neigh_key_fmt(k, a, sizeof(a));
		fp_err(err, "no static neighbour %s", a);
		return -ENOENT;
	}
	n = &fp_dp->neigh[i];
	n->is_static = false;
	if (n->refs == 0)
		neigh_free(n);
	/* Still used by tunnels: it keeps its MAC until ARP or ND says
	 * otherwise. */
	return 0;
}

static int
neigh_get(const struct neigh_key *k, uint8_t mac[6])
{
	uint64_t w;
	int i;

	if (fp_dp == NULL)
		return -ENOENT;
	i = neigh_find(k);
	if (i < 0)
		return -ENOENT;
	w = __atomic_load_n(&fp_dp->neigh[i].mac, __ATOMIC_RELAXED);
	if (!(w & FP_NEIGH_VALID))
		return 0;
	memcpy(mac, &w, 6);
	return 1;
}

static struct neigh_key
key4(uint32_t ip)
{
	struct neigh_key k = {.family = 4, .ip = ip};

	return k;
}

static struct neigh_key
key6(const uint8_t ip[16])
{
	struct neigh_key k = {.family = 6};

	memcpy(k.ip6, ip, 16);
	return k;
}

int
fp_neigh_set(uint32_t ip, const uint8_t mac[6], char *err)
{
	struct neigh_key k = key4(ip);

	return neigh_set(&k, mac, err);
}

int
fp_neigh_del(uint32_t ip, char *err)
{
	struct neigh_key k = key4(ip);

	return neigh_del(&k, err);
}

int
fp_neigh_get(uint32_t ip, uint8_t mac[6])
{
	struct neigh_key k = key4(ip);

	if (ip == 0)
		return -ENOENT;
	return neigh_get(&k, mac);
}

int
fp_neigh6_set(const uint8_t ip[16], const uint8_t mac[6], char *err)
{
	struct neigh_key k = key6(ip);

	return neigh_set(&k, mac, err);
}

int
fp_neigh6_del(const uint8_t ip[16], char *err)
{
	struct neigh_key k = key6(ip);

	return neigh_del(&k, err);
}

int
fp_neigh6_get(const uint8_t ip[16], uint8_t mac[6])
{
	struct neigh_key k = key6(ip);

	if (ip6_zero(ip))
		return -ENOENT;
	return neigh_get(&k, mac);
}

/* ---- next-hops ---------------------------------------------------------- */

/* What an encapsulation adds in front of the inner packet: IPv4 outer,
 * and 20 bytes more with an IPv6 one. */
static uint16_t
fp_encap_overhead(uint8_t encap, bool outer6)
{
	uint16_t extra = outer6 ? FP_OUTER6_EXTRA : 0;

	switch (encap) {
	case FP_ENCAP_VXLAN:
		return FP_VXLAN_OVERHEAD + extra;
	case FP_ENCAP_MPLSOUDP:
		return FP_MPLSOUDP_OVERHEAD + extra;
	default:
		return FP_MPLSOGRE_OVERHEAD + extra;
	}
}

/* What a template copies and grows the frame by (fp_tmpl_copy): VXLAN keeps
 * the inner Ethernet, its MACs written with the outer headers (vRouter to
 * vRouter, its type stays the packet's); the MPLS encapsulations write over
 * it. */
static void
tun_template_sizes(struct fp_nh *nh, uint8_t encap, struct rte_ether_hdr *inner)
{
	if (encap == FP_ENCAP_VXLAN) {
		inner->dst_addr = fp_dp->vrouter_mac;
		inner->src_addr = fp_dp->vrouter_mac;
		nh->tun.copy = (uint8_t)(nh->tun.len + 2 * RTE_ETHER_ADDR_LEN);
		nh->tun.grow = (uint8_t)nh->tun.len;
	} else {
		nh->tun.copy = (uint8_t)nh->tun.len;
		nh->tun.grow = (uint8_t)(nh->tun.len - sizeof(*inner));
	}
}

static void
tun_template(struct fp_nh *nh, const struct fp_port *fab, const struct fp_nh_conf *nc)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)nh->tun.hdr;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	uint32_t sum;

	memset(nh->tun.hdr, 0, sizeof(nh->tun.hdr));
	eth->src_addr = fab->mac;
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	/* DF: the vRouter never fragments the outer packet; inner packets
	 * that do not fit are dropped (too_big) before encapsulation. */
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = nc->encap == FP_ENCAP_MPLSOGRE ? IPPROTO_GRE : IPPROTO_UDP;
	ip->src_addr = fab->ip4[0];
	ip->dst_addr = nc->tun_dst;
	/* Partial sum with tos = 0, total_length = 0, checksum = 0; the
	 * lcore adds the two variable words. */
	sum = rte_raw_cksum(ip, sizeof(*ip));
	nh->tun.ip_sum = sum;
	/* UDP checksum 0: allowed for VXLAN (RFC 7348) and MPLSoUDP over IPv4
	 * (RFC 7510); the inner packet carries its own. */
	if (nc->encap == FP_ENCAP_VXLAN) {
		struct rte_vxlan_hdr *vx = (struct rte_vxlan_hdr *)(udp + 1);

		udp->dst_port = rte_cpu_to_be_16(FP_VXLAN_PORT);
		vx->vx_flags = rte_cpu_to_be_32(0x08000000);
		vx->vx_vni = rte_cpu_to_be_32(nc->vni << 8);
		nh->tun.len = sizeof(*eth) + sizeof(*ip) + sizeof(*udp) + sizeof(*vx);
	} else if (nc->encap == FP_ENCAP_MPLSOUDP) {
		/* label | TC 0 | bottom of stack | TTL 64; at offset 42, so
		 * stored unaligned (memcpy: a uint32_t store there is UB) */
		uint32_t label = rte_cpu_to_be_32((nc->vni << 12) | 0x100 | 64);

		udp->dst_port = rte_cpu_to_be_16(FP_MPLSOUDP_PORT);
		memcpy(udp + 1, &label, sizeof(label));
		nh->tun.len = sizeof(*eth) + sizeof(*ip) + sizeof(*udp) + 4;
	} else {
		/* GRE without checksum, key or sequence number (RFC 2784):
		 * flags and version 0, then the protocol. Nothing varies per
		 * packet but the outer IP's tos, length and checksum. */
		uint16_t *gre = (uint16_t *)(ip + 1);
		/* at offset 38: stored unaligned, as MPLSoUDP's */
		uint32_t label = rte_cpu_to_be_32((nc->vni << 12) | 0x100 | 64);

		gre[1] = rte_cpu_to_be_16(FP_GRE_PROTO_MPLS);
		memcpy(gre + 2, &label, sizeof(label));
		nh->tun.len = sizeof(*eth) + sizeof(*ip) + 4 + 4;
	}
	tun_template_sizes(nh, nc->encap, (struct rte_ether_hdr *)(nh->tun.hdr + nh->tun.len));
	RTE_BUILD_BUG_ON(sizeof(nh->tun.hdr) < 64);
}

/* The IPv6 outer header's template: hop limit 64, traffic class and flow
 * label per packet; the UDP checksum (mandatory over IPv6, RFC 8200 8.1)
 * starts from the pseudo-header's constant part, the addresses and the
 * next header, kept in ip_sum. */
static void
tun_template6(struct fp_nh *nh, const struct fp_port *fab, const struct fp_nh_conf *nc)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)nh->tun.hdr;
	struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip6 + 1);
	uint32_t label = rte_cpu_to_be_32((nc->vni << 12) | 0x100 | 64);

	memset(nh->tun.hdr, 0, sizeof(nh->tun.hdr));
	nh->tun.outer6 = 1;
	/* A port update rebuilds the next-hops (fp_nh_port_changed) and
	 * keeps the flag (fp_port_update): the copy stays right. */
	nh->tun.udp_csum_offload = fab->tx_udp_csum;
	eth->src_addr = fab->mac;
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
	ip6->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip6->hop_limits = 64;
	ip6->proto = nc->encap == FP_ENCAP_MPLSOGRE ? IPPROTO_GRE : IPPROTO_UDP;
	memcpy(ip6->src_addr, fab->ip6[0], 16);
	memcpy(ip6->dst_addr, nc->tun_dst6, 16);
	/* payload_len 0 here: the lcore adds the length (twice: pseudo-header
	 * and UDP header) */
	nh->tun.ip_sum = rte_ipv6_phdr_cksum(ip6, 0);
	if (nc->encap == FP_ENCAP_VXLAN) {
		struct rte_vxlan_hdr *vx = (struct rte_vxlan_hdr *)(udp + 1);

		udp->dst_port = rte_cpu_to_be_16(FP_VXLAN_PORT);
		vx->vx_flags = rte_cpu_to_be_32(0x08000000);
		vx->vx_vni = rte_cpu_to_be_32(nc->vni << 8);
		nh->tun.len = sizeof(*eth) + sizeof(*ip6) + sizeof(*udp) + sizeof(*vx);
	} else if (nc->encap == FP_ENCAP_MPLSOUDP) {
		udp->dst_port = rte_cpu_to_be_16(FP_MPLSOUDP_PORT);
		memcpy(udp + 1, &label, sizeof(label));
		nh->tun.len = sizeof(*eth) + sizeof(*ip6) + sizeof(*udp) + 4;
	} else {
		uint16_t *gre = (uint16_t *)(ip6 + 1);

		gre[1] = rte_cpu_to_be_16(FP_GRE_PROTO_MPLS);
		memcpy(gre + 2, &label, sizeof(label));
		nh->tun.len = sizeof(*eth) + sizeof(*ip6) + 4 + 4;
	}
	tun_template_sizes(nh, nc->encap, (struct rte_ether_hdr *)(nh->tun.hdr + nh->tun.len));
	RTE_BUILD_BUG_ON(sizeof(nh->tun.hdr) < 96);
}

static int
nh_build(uint32_t id, const struct fp_nh_conf *nc, struct fp_nh **out, char *err)
{
	const struct fp_port *p = NULL;
	struct fp_nh *nh;
	uint32_t i;

	if (nc->type > FP_NH_ECMP) {
		fp_err(err, "next-hop %u: unknown type %u", id, nc->type);
		return -EINVAL;
	}
	if (nc->type == FP_NH_IFACE || nc->type == FP_NH_TUNNEL) {
		if (nc->port >= FP_MAX_PORTS || fp_dp->port[nc->port] == NULL) {
			fp_err(err, "next-hop %u: port %u does not exist", id, nc->port);
			return -EINVAL;
		}
		p = fp_dp->port[nc->port];
	}
	if (nc->type == FP_NH_TUNNEL) {
		if (p->kind != FP_PORT_FABRIC || (nc->tun_ip6 ? p->nb_ip6 == 0 : p->ip4[0] == 0)) {
			fp_err(err, "next-hop %u: tunnel port %u is not a fabric port "
				    "with an IPv%c underlay address", id, nc->port,
				    nc->tun_ip6 ? '6' : '4');
			return -EINVAL;
		}
		if (nc->tun_ip6 ? ip6_zero(nc->tun_dst6) : nc->tun_dst == 0) {
			fp_err(err, "next-hop %u: tunnel destination %s", id,
			       nc->tun_ip6 ? "::" : "0.0.0.0");
			return -EINVAL;
		}
		if (nc->encap == FP_ENCAP_VXLAN && nc->vni >= (1u << 24)) {
			fp_err(err, "next-hop %u: VNI %u out of range 0..16777215", id, nc->vni);
			return -EINVAL;
		}
		if ((nc->encap == FP_ENCAP_MPLSOUDP || nc->encap == FP_ENCAP_MPLSOGRE) &&
		    (nc->vni < 16 || nc->vni >= (1u << 20))) {
			fp_err(err, "next-hop %u: MPLS label %u out of range 16..1048575",
				id, nc->vni);
			return -EINVAL;
		}
		if (nc->encap > FP_ENCAP_MPLSOGRE) {
			fp_err(err, "next-hop %u: unknown encapsulation %u", id, nc->encap);
			return -EINVAL;
		}
	}
	if (nc->type == FP_NH_ECMP) {
		if (nc->nb_members == 0 || nc->nb_members > FP_MAX_ECMP) {
			fp_err(err, "next-hop %u: ECMP group needs 1..%u members", id, FP_MAX_ECMP);
			return -EINVAL;
		}
		for (i = 0; i < nc->nb_members; i++) {
			uint32_t m = nc->members[i];
			const struct fp_nh *mn = m < fp_dp->cfg.nh_max ? fp_dp->nh[m] : NULL;

			if (mn == NULL || m == id) {
				fp_err(err, "next-hop %u: ECMP member %u does not exist", id, m);
				return -EINVAL;
			}
			if (mn->type != FP_NH_IFACE && mn->type != FP_NH_TUNNEL) {
				fp_err(err, "next-hop %u: ECMP member %u must be an interface "
					    "or tunnel next-hop", id, m);
				return -EINVAL;
			}
		}
	}

	nh = rte_zmalloc("fp_nh", sizeof(*nh) +
		(nc->type == FP_NH_ECMP ? nc->nb_members * sizeof(uint32_t) : 0),
		RTE_CACHE_LINE_SIZE);
	if (nh == NULL) {
		fp_err(err, "next-hop %u: out of memory", id);
		return -ENOMEM;
	}
	nh->type = nc->type;
	nh->id = id;
	nh->neigh = UINT32_MAX;
	switch (nc->type) {
	case FP_NH_IFACE:
		nh->port = nc->port;
		nh->mtu = p->mtu;
		memcpy(&nh->dst, nc->dst_mac, 6);
		/* Pods know the vRouter MAC as their gateway's. */
		nh->src = p->kind == FP_PORT_POD || p->kind == FP_PORT_HOST ?
				  fp_dp->vrouter_mac : p->mac;
		break;
	case FP_NH_TUNNEL: {
		struct neigh_key k = nc->tun_ip6 ?
			key6(ip6_zero(nc->tun_gw6) ? nc->tun_dst6 : nc->tun_gw6) :
			key4(nc->tun_gw ? nc->tun_gw : nc->tun_dst);
		int n = neigh_ref(&k);

		if (n < 0) {
			rte_free(nh);
			fp_err(err, "next-hop %u: neighbour table full (%u)", id, FP_MAX_NEIGH);
			return n;
		}
		nh->neigh = (uint32_t)n;
		nh->tun_dst = nc->tun_dst;
		nh->tun_gw = nc->tun_gw;
		memcpy(nh->tun_dst6, nc->tun_dst6, 16);
		memcpy(nh->tun_gw6, nc->tun_gw6, 16);
		nh->vni = nc->vni;
		nh->port = nc->port;
		nh->encap = nc->encap;
		nh->mtu = p->mtu - fp_encap_overhead(nc->encap, nc->tun_ip6);
		if (nc->tun_ip6)
			tun_template6(nh, p, nc);
		else
			tun_template(nh, p, nc);
		break;
	}
	case FP_NH_ECMP:
		nh->nb_members = nc->nb_members;
		memcpy(nh->members, nc->members, nc->nb_members * sizeof(uint32_t));
		break;
	default:
		break;
	}
	*out = nh;
	return 0;
}

/* Take (delta 1) or drop (-1) the references an object holds. */
static void
nh_refs(const struct fp_nh *nh, int delta)
{
	uint32_t i;

	if (nh->type == FP_NH_IFACE || nh->type == FP_NH_TUNNEL)
		fp_dp->port_ctl[nh->port].refs += delta;
	if (nh->type == FP_NH_TUNNEL && delta < 0)
		neigh_unref(nh->neigh);
	if (nh->type == FP_NH_ECMP)
		for (i = 0; i < nh->nb_members; i++)
			fp_dp->nh_refs[nh->members[i]] += delta;
}

int
fp_nh_set(uint32_t id, const struct fp_nh_conf *nc, char *err)
{
	struct fp_nh *nh, *old;
	int ret;

	if (id >= fp_dp->cfg.nh_max) {
		fp_err(err, "next-hop id %u out of range 0..%u", id, fp_dp->cfg.nh_max - 1);
		return -EINVAL;
	}
	ret = nh_build(id, nc, &nh, err);
	if (ret < 0)
		return ret;
	old = fp_dp->nh[id];
	if (old != NULL && fp_dp->nh_refs[id] != 0 && old->type != nh->type &&
	    (nh->type != FP_NH_IFACE && nh->type != FP_NH_TUNNEL)) {
		/* An ECMP group may point at it: it must stay a member type. */
		unsigned i;

		for (i = 0; i < fp_dp->cfg.nh_max; i++) {
			const struct fp_nh *g = fp_dp->nh[i];
			uint32_t k;

			if (g == NULL || g->type != FP_NH_ECMP)
				continue;
			for (k = 0; k < g->nb_members; k++)
				if (g->members[k] == id) {
					if (nh->neigh != UINT32_MAX)
						neigh_unref(nh->neigh);
					rte_free(nh);
					fp_err(err, "next-hop %u: member of ECMP group %u, "
						    "must stay interface or tunnel", id, i);
					return -EBUSY;
				}
		}
	}
	nh_refs(nh, 1);
	__atomic_store_n(&fp_dp->nh[id], nh, __ATOMIC_RELEASE);
	if (old != NULL) {
		fp_sync();
		nh_refs(old, -1);
		rte_free(old);
	}
	return 0;
}

/* Whether a tunnel next-hop leaving by port has an IPv6 outer header (it
 * needs the port's IPv6 underlay address). */
bool
fp_nh_port_uses6(uint16_t port)
{
	uint32_t id;

	for (id = 0; id < fp_dp->cfg.nh_max; id++) {
		const struct fp_nh *nh = fp_dp->nh[id];

		if (nh != NULL && nh->type == FP_NH_TUNNEL && nh->port == port && nh->tun.outer6)
			return true;
	}
	return false;
}

/* Rebuild the interface and tunnel next-hops of a port whose MTU, MAC or
 * underlay address changed, so that they stop using the old values. */
int
fp_nh_port_changed(uint16_t port, char *err)
{
	struct fp_nh **old;
	struct fp_nh_conf nc;
	uint32_t id, n = 0, i;
	int ret = 0;

	old = calloc(fp_dp->port_ctl[port].refs, sizeof(*old));
	if (old == NULL && fp_dp->port_ctl[port].refs != 0) {
		fp_err(err, "port %u: out of memory rebuilding next-hops", port);
		return -ENOMEM;
	}
	for (id = 0; id < fp_dp->cfg.nh_max && n < fp_dp->port_ctl[port].refs; id++) {
		struct fp_nh *o = fp_dp->nh[id], *nh;

		if (o == NULL || (o->type != FP_NH_IFACE && o->type != FP_NH_TUNNEL) ||
		    o->port != port)
			continue;
		memset(&nc, 0, sizeof(nc));
		nc.type = o->type;
		nc.port = o->port;
		memcpy(nc.dst_mac, &o->dst, 6);
		nc.encap = o->encap;
		nc.tun_dst = o->tun_dst;
		nc.tun_gw = o->tun_gw;
		nc.tun_ip6 = o->tun.outer6;
		memcpy(nc.tun_dst6, o->tun_dst6, 16);
		memcpy(nc.tun_gw6, o->tun_gw6, 16);
		nc.vni = o->vni;
		ret = nh_build(id, &nc, &nh, err);
		if (ret < 0)
			break;
		nh_refs(nh, 1);
		__atomic_store_n(&fp_dp->nh[id], nh, __ATOMIC_RELEASE);
		old[n++] = o;
	}
	fp_sync();
	for (i = 0; i < n; i++) {
		nh_refs(old[i], -1);
		rte_free(old[i]);
	}
	free(old);
	return ret;
}

int
fp_nh_del(uint32_t id, char *err)
{
	struct fp_nh *old;

	if (id >= fp_dp->cfg.nh_max || fp_dp->nh[id] == NULL) {
		fp_err(err, "next-hop %u does not exist", id);
		return -ENOENT;
	}
	if (fp_dp->nh_refs[id] != 0) {
		fp_err(err, "next-hop %u is used by %u routes or ECMP groups", id,
			fp_dp->nh_refs[id]);
		return -EBUSY;
	}
	old = fp_dp->nh[id];
	__atomic_store_n(&fp_dp->nh[id], NULL, __ATOMIC_RELEASE);
	fp_sync();
	nh_refs(old, -1);
	rte_free(old);
	return 0;
}

/* ---- IPv4 routes -------------------------------------------------------- */

static struct fp_fib4 *
fib4_get(uint16_t vrf, bool create, char *err)
{
	struct fp_fib4 *f = fp_dp->fib4_ctl[vrf];

	if (f != NULL || !create)
		return f;
	/* publishes its (empty) root in fp_dp->fib4[vrf] */
	f = fp_fib4_create(fp_dp->cfg.fib4_rules, &fp_dp->fib4[vrf], err);
	fp_dp->fib4_ctl[vrf] = f;
	return f;
}

/* After updates: the FIB settles (root size, route table). A VRF left
 * without routes gives its FIB back instead: lcores count its packets
 * vrf_invalid again, as for a VRF never routed, and it costs nothing. */
static void
fib4_done(uint16_t vrf, struct fp_fib4 *f)
{
	if (fp_fib4_routes(f) != 0) {
		fp_fib4_settle(f);
		return;
	}
	fp_fib4_retire(f); /* fp_dp->fib4[vrf] = 0, then its tables go */
	fp_dp->fib4_ctl[vrf] = NULL;
}

static int
route4_check(uint16_t vrf, uint32_t prefix, uint8_t len, char *err)
{
	uint32_t p = rte_be_to_cpu_32(prefix);

	if (vrf >= fp_dp->cfg.vrf_max) {
		fp_err(err, "VRF %u out of range 0..%u", vrf, fp_dp->cfg.vrf_max - 1);
		return -EINVAL;
	}
	if (len > 32) {
		fp_err(err, "prefix length %u > 32", len);
		return -EINVAL;
	}
	if (len < 32 && (p & (UINT32_MAX >> len)) != 0) {
		fp_err(err, "prefix %u.%u.%u.%u/%u has host bits set", p >> 24,
			(p >> 16) & 0xff, (p >> 8) & 0xff, p & 0xff, len);
		return -EINVAL;
	}
	return 0;
}

static int
route4_nh_check(uint16_t vrf, uint32_t nh, char *err)
{
	/* nh_max <= FP_FIB4_NH_MAX (check_config): every id fits an entry */
	if (nh >= fp_dp->cfg.nh_max || fp_dp->nh[nh] == NULL) {
		fp_err(err, "route in VRF %u: next-hop %u does not exist", vrf, nh);
		return -EINVAL;
	}
	return 0;
}

int
fp_route4_add(uint16_t vrf, uint32_t prefix, uint8_t len, uint32_t nh, char *err)
{
	char msg[FP_ERRLEN] = "";
	struct fp_fib4 *f;
	uint32_t old;
	int ret;

	ret = route4_check(vrf, prefix, len, err);
	if (ret < 0)
		return ret;
	ret = route4_nh_check(vrf, nh, err);
	if (ret < 0)
		return ret;
	f = fib4_get(vrf, true, msg);
	if (f == NULL) {
		fp_err(err, "VRF %u: %s", vrf, msg);
		return -ENOMEM;
	}
	ret = fp_fib4_add(f, rte_be_to_cpu_32(prefix), len, nh, &old, msg);
	if (ret < 0) {
		fp_err(err, "VRF %u: %s", vrf, msg);
		fib4_done(vrf, f);
		return ret;
	}
	fp_dp->nh_refs[nh]++;
	if (old != FP_NH_INVALID)
		fp_dp->nh_refs[old]--;
	fib4_done(vrf, f);
	return 0;
}

int
fp_route4_del(uint16_t vrf, uint32_t prefix, uint8_t len, char *err)
{
	char msg[FP_ERRLEN] = "";
	struct fp_fib4 *f;
	uint32_t old;
	int ret;

	ret = route4_check(vrf, prefix, len, err);
	if (ret < 0)
		return ret;
	f = fib4_get(vrf, false, msg);
	if (f == NULL) {
		fp_err(err, "VRF %u: no such route", vrf);
		return -ENOENT;
	}
	ret = fp_fib4_del(f, rte_be_to_cpu_32(prefix), len, &old, msg);
	if (ret < 0) {
		fp_err(err, "VRF %u: %s", vrf, msg);
		return ret;
	}
	fp_dp->nh_refs[old]--;
	fib4_done(vrf, f);
	return 0;
}

int
fp_route4_add_bulk(uint16_t vrf, const uint32_t *prefix, const uint8_t *len,
		   const uint32_t *nh, unsigned n, char *err)
{
	char msg[FP_ERRLEN] = "";
	struct fp_fib4 *f;
	uint32_t *old, unused;
	bool adds = false;
	unsigned i, j;
	int ret = 0;

	if (vrf >= fp_dp->cfg.vrf_max) {
		fp_err(err, "VRF %u out of range 0..%u", vrf, fp_dp->cfg.vrf_max - 1);
		return -EINVAL;
	}
	/* Everything the FIB cannot tell is checked first: nothing is applied
	 * if one entry is malformed. */
	for (i = 0; i < n; i++) {
		ret = route4_check(vrf, prefix[i], len[i], msg);
		if (ret == 0 && nh[i] != FP_NH_INVALID) {
			adds = true;
			ret = route4_nh_check(vrf, nh[i], msg);
		}
		if (ret < 0) {
			fp_err(err, "route %u of %u: %s", i, n, msg);
			return ret;
		}
	}
	if (n == 0)
		return 0;
	f = fib4_get(vrf, adds, msg);
	if (f == NULL) {
		if (adds) {
			fp_err(err, "VRF %u: %s", vrf, msg);
			return -ENOMEM;
		}
		fp_err(err, "VRF %u: route 0 of %u: no such route", vrf, n);
		return -ENOENT;
	}
	old = malloc(sizeof(*old) * n);
	if (old == NULL) {
		fp_err(err, "VRF %u: no memory for a batch of %u routes", vrf, n);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		uint32_t p = rte_be_to_cpu_32(prefix[i]);

		ret = nh[i] == FP_NH_INVALID ? fp_fib4_del(f, p, len[i], &old[i], msg) :
					       fp_fib4_add(f, p, len[i], nh[i], &old[i], msg);
		if (ret < 0)
			break;
	}
	if (ret < 0) {
		uint32_t p = rte_be_to_cpu_32(prefix[i]);

		/* Undo in reverse: each step brings back a state the FIB had,
		 * on a root at least as large, so it needs no memory the FIB
		 * did not have then (fp_fib4_add/del never demote or shrink). */
		for (j = i; j-- > 0;) {
			uint32_t q = rte_be_to_cpu_32(prefix[j]);
			int r = old[j] == FP_NH_INVALID ? fp_fib4_del(f, q, len[j], &unused, NULL) :
							  fp_fib4_add(f, q, len[j], old[j], &unused, NULL);

			if (r < 0)
				RTE_LOG(ERR, USER1, "VRF %u: undoing route %u of a failed batch: %s\n",
					vrf, j, strerror(-r));
		}
		fp_err(err, "VRF %u: route %u of %u (%u.%u.%u.%u/%u): %s (batch not applied)",
			vrf, i, n, p >> 24, (p >> 16) & 0xff, (p >> 8) & 0xff, p & 0xff, len[i], msg);
	} else {
		/* references follow the net change */
		for (i = 0; i < n; i++) {
			if (nh[i] != FP_NH_INVALID)
				fp_dp->nh_refs[nh[i]]++;
			if (old[i] != FP_NH_INVALID)
				fp_dp->nh_refs[old[i]]--;
		}
	}
	free(old);
	fib4_done(vrf, f);
	return ret;
}

int
fp_route4_lookup(uint16_t vrf, uint32_t addr, uint32_t *nh)
{
	uintptr_t root;
	uint32_t e;

	if (fp_dp == NULL || vrf >= fp_dp->cfg.vrf_max)
		return -EINVAL;
	root = fp_dp->fib4[vrf];
	if (root == 0)
		return -ENOENT;
	e = fp_fib4_match(root, rte_be_to_cpu_32(addr));
	if (e == 0)
		return -ENOENT;
	*nh = e - 1;
	return 0;
}

int
fp_route4_lookup_bulk(uint16_t vrf, const uint32_t *addr, uint32_t *nh, unsigned n)
{
	uint32_t a[64], e[64];
	uintptr_t root;
	unsigned i, k;

	if (fp_dp == NULL || vrf >= fp_dp->cfg.vrf_max)
		return -EINVAL;
	root = fp_dp->fib4[vrf];
	for (i = 0; i < n; i += k) {
		k = RTE_MIN(n - i, (unsigned)RTE_DIM(a));
		if (root == 0) {
			memset(e, 0, sizeof(e));
		} else {
			unsigned j;

			for (j = 0; j < k; j++)
				a[j] = rte_be_to_cpu_32(addr[i + j]);
			fp_fib4_match_bulk(root, a, e, k);
		}
		for (unsigned j = 0; j < k; j++)
			nh[i + j] = e[j] == 0 ? FP_NH_INVALID : e[j] - 1;
	}
	return 0;
}

struct route4_walk_ctx {
	int (*cb)(uint32_t prefix, uint8_t len, uint32_t nh, void *arg);
	void *arg;
};

static int
route4_walk_nbo(uint32_t prefix, uint8_t len, uint32_t nh, void *arg)
{
	const struct route4_walk_ctx *w = arg;

	return w->cb(rte_cpu_to_be_32(prefix), len, nh, w->arg);
}

int
fp_route4_walk(uint16_t vrf, int (*cb)(uint32_t prefix, uint8_t len, uint32_t nh, void *arg),
	       void *arg)
{
	struct route4_walk_ctx w = {.cb = cb, .arg = arg};

	if (fp_dp == NULL || vrf >= fp_dp->cfg.vrf_max)
		return -EINVAL;
	if (fp_dp->fib4_ctl[vrf] == NULL)
		return 0;
	return fp_fib4_walk(fp_dp->fib4_ctl[vrf], route4_walk_nbo, &w);
}

int
fp_fib4_stats(uint16_t vrf, struct fp_fib4_stats *out)
{
	struct fp_fib4_stats s;
	uint32_t v;

	memset(out, 0, sizeof(*out));
	if (fp_dp == NULL || vrf >= fp_dp->cfg.vrf_max)
		return -EINVAL;
	fp_fib4_pool_stats(out);
	out->all_bytes = out->pool_bytes;
	out->all_ctl_bytes = out->pool_ctl_bytes;
	for (v = 0; v < fp_dp->cfg.vrf_max; v++) {
		if (fp_dp->fib4_ctl[v] == NULL)
			continue;
		fp_fib4_vrf_stats(fp_dp->fib4_ctl[v], &s);
		out->all_routes += s.routes;
		/* its groups are in the pool already */
		out->all_bytes += s.bytes - (uint64_t)s.groups * FP_FIB4_GROUP * sizeof(uint32_t);
		out->all_ctl_bytes += s.ctl_bytes;
	}
	fp_fib4_vrf_stats(fp_dp->fib4_ctl[vrf], out);
	return 0;
}

/* ---- VNI / label -> VRF ------------------------------------------------- */

static int
map24_set(struct fp_map24 *m, uint32_t key, uint16_t vrf, const char *what, char *err)
{
	uint16_t **slot = &m->page[(key >> 12) & 0xfff];
	uint16_t *page = *slot;

	if (vrf >= fp_dp->cfg.vrf_max) {
		fp_err(err, "%s %u: VRF %u out of range 0..%u", what, key, vrf,
			fp_dp->cfg.vrf_max - 1);
		return -EINVAL;
	}
	if (page == NULL) {
		page = rte_zmalloc("fp_map24", 4096 * sizeof(uint16_t), RTE_CACHE_LINE_SIZE);
		if (page == NULL) {
			fp_err(err, "%s %u: out of memory", what, key);
			return -ENOMEM;
		}
		__atomic_store_n(slot, page, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&page[key & 0xfff], (uint16_t)(vrf + 1), __ATOMIC_RELAXED);
	return 0;
}

static int
map24_del(struct fp_map24 *m, uint32_t key, const char *what, char *err)
{
	uint16_t *page = m->page[(key >> 12) & 0xfff];

	if (page == NULL || page[key & 0xfff] == 0) {
		fp_err(err, "%s %u is not mapped", what, key);
		return -ENOENT;
	}
	__atomic_store_n(&page[key & 0xfff], 0, __ATOMIC_RELAXED);
	return 0;
}

int
fp_vni_set(uint32_t vni, uint16_t vrf, char *err)
{
	if (vni >= (1u << 24)) {
		fp_err(err, "VNI %u out of range 0..16777215", vni);
		return -EINVAL;
	}
	return map24_set(&fp_dp->vni, vni, vrf, "VNI", err);
}

int
fp_vni_del(uint32_t vni, char *err)
{
	if (vni >= (1u << 24)) {
		fp_err(err, "VNI %u out of range 0..16777215", vni);
		return -EINVAL;
	}
	return map24_del(&fp_dp->vni, vni, "VNI", err);
}

int
fp_label_set(uint32_t label, uint16_t vrf, char *err)
{
	if (label < 16 || label >= (1u << 20)) {
		fp_err(err, "MPLS label %u out of range 16..1048575", label);
		return -EINVAL;
	}
	return map24_set(&fp_dp->label, label, vrf, "MPLS label", err);
}

int
fp_label_del(uint32_t label, char *err)
{
	if (label < 16 || label >= (1u << 20)) {
		fp_err(err, "MPLS label %u out of range 16..1048575", label);
		return -EINVAL;
	}
	return map24_del(&fp_dp->label, label, "MPLS label", err);
}

int
fp_vrf_addr_set(uint16_t vrf, uint32_t addr, char *err)
{
	if (vrf >= fp_dp->cfg.vrf_max) {
		fp_err(err, "VRF %u out of range 0..%u", vrf, fp_dp->cfg.vrf_max - 1);
		return -EINVAL;
	}
	__atomic_store_n(&fp_dp->vrf_addr4[vrf], addr, __ATOMIC_RELAXED);
	return 0;
}

int
fp_vrf_addr6_set(uint16_t vrf, const uint8_t addr[16], char *err)
{
	uint64_t w[2];

	if (vrf >= fp_dp->cfg.vrf_max) {
		fp_err(err, "VRF %u out of range 0..%u", vrf, fp_dp->cfg.vrf_max - 1);
		return -EINVAL;
	}
	memcpy(w, addr, 16);
	__atomic_store_n(&fp_dp->vrf_addr6[vrf][0], w[0], __ATOMIC_RELAXED);
	__atomic_store_n(&fp_dp->vrf_addr6[vrf][1], w[1], __ATOMIC_RELAXED);
	return 0;
}
