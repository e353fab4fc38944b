/* SPDX-License-Identifier: Apache-2.0
 * Drop reasons of the fast path: every packet the fast path does not send is
 * counted under exactly one of these (TF's dropstats). The names are the API:
 * they show up in counters, filamentctl and metrics, so never rename one.
 */
#ifndef FP_DROP_H
#define FP_DROP_H

#define FP_DROP_REASONS(X)                                                     \
	X(ETH_TRUNCATED, "eth_truncated")         /* < 14 bytes */                 \
	X(ETHERTYPE, "ethertype_unsupported")     /* not IPv4/IPv6/ARP */          \
	X(L2_NOT_FOR_US, "l2_not_for_us")         /* dst MAC is not ours */        \
	X(MULTISEG, "multiseg_unsupported")       /* chained mbuf */               \
	X(ARP_MALFORMED, "arp_malformed")                                          \
	X(ARP_IGNORED, "arp_ignored")             /* not a request we answer */    \
	X(IP_TRUNCATED, "ip_truncated")           /* < 20 bytes of IPv4 */         \
	X(IP_VERSION, "ip_version")                                                \
	X(IP_IHL, "ip_ihl")                       /* IHL < 5 or > frame */         \
	X(IP_LEN, "ip_total_length")              /* total length vs frame */      \
	X(IP_CSUM, "ip_checksum")                                                  \
	X(SPOOF_MAC, "spoof_mac")                 /* pod sent from another MAC */  \
	X(SPOOF_IP, "spoof_ip")                   /* pod sent from another IP */   \
	X(TTL_EXCEEDED, "ttl_exceeded")           /* TTL or hop limit: time exceeded sent */\
	X(VRF_INVALID, "vrf_invalid")             /* port/VNI maps to no FIB */    \
	X(NO_ROUTE, "no_route")                                                    \
	X(NH_INVALID, "nh_invalid")               /* route to a missing nh */      \
	X(NH_DISCARD, "nh_discard")               /* discard next-hop */           \
	X(PORT_DOWN, "port_down")                 /* out port gone, memif unconnected */\
	X(TOO_BIG, "too_big")                     /* > MTU; ICMP frag. needed if DF */\
	X(NO_HEADROOM, "no_headroom")             /* cannot prepend encap */       \
	X(NEIGH_UNRESOLVED, "neigh_unresolved")   /* underlay MAC unknown */       \
	X(UDP_TRUNCATED, "udp_truncated")                                          \
	X(VXLAN_TRUNCATED, "vxlan_truncated")                                      \
	X(VXLAN_FLAGS, "vxlan_flags")             /* I flag clear */               \
	X(VNI_UNKNOWN, "vni_unknown")                                              \
	X(MPLS_TRUNCATED, "mpls_truncated")                                        \
	X(MPLS_LABEL_UNKNOWN, "mpls_label_unknown")                                \
	X(MPLS_STACK, "mpls_stack")               /* not a single, BoS label */    \
	X(INNER_NOT_IP, "inner_not_ipv4")         /* overlay payload not IPv4/IPv6 */\
	X(NO_HOST_PORT, "no_host_port")           /* punt with no host port */     \
	X(TX_FULL, "tx_full")                     /* NIC TX queue full */          \
	X(IPV6, "ipv6_unsupported")               /* IPv6 on the fabric not for the vRouter, no host port */\
	X(GRE_TRUNCATED, "gre_truncated")         /* < 4 bytes of GRE */           \
	X(GRE_UNSUPPORTED, "gre_unsupported")     /* version, C/K/S/R bits set */  \
	X(IP6_TRUNCATED, "ip6_truncated")         /* < 40 bytes of IPv6 */         \
	X(IP6_LEN, "ip6_payload_length")          /* payload length vs frame */    \
	X(IP6_SCOPE, "ip6_link_scope")            /* link-local, multicast or unspecified: not routed */\
	X(ND_MALFORMED, "nd_malformed")           /* ND/ICMPv6 to us: hop limit, length, checksum */\
	X(ND_IGNORED, "nd_ignored")               /* ND we do not answer (DAD, NA, RA) */\
	X(UDP_CSUM, "udp_checksum")               /* outer UDP checksum wrong (IPv6 underlay) */\
	X(UDP6_ZERO_CSUM, "udp6_zero_checksum")   /* outer UDP checksum 0 over IPv6 (RFC 6935 not taken) */\
	X(NO_TAILROOM, "no_tailroom")             /* cannot append a reply's bytes (NA, RA) */\
	X(ICMP_ERROR_UNSENT, "icmp_error_unsent") /* our ICMP error found no way back; its cause counted already */

enum fp_drop_reason {
#define FP_DROP_ENUM(e, s) FP_DROP_##e,
	FP_DROP_REASONS(FP_DROP_ENUM)
#undef FP_DROP_ENUM
	FP_DROP_MAX
};

/* Name of a drop reason, "" for out-of-range values. */
const char *fp_drop_name(unsigned reason);

#endif
