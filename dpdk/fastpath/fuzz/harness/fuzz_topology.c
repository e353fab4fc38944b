/* SPDX-License-Identifier: Apache-2.0
 * A representative table state for fuzzing (fuzz_topology.h): two VRFs with
 * overlapping addresses, pods, a fabric port with VXLAN and MPLSoUDP tunnels
 * (resolved and unresolved neighbours), ECMP, discard and receive next-hops,
 * a host port, VRF addresses for ICMP errors, VNI and label maps (one to a
 * VRF with no FIB), a cross-connected port; IPv6 addresses and routes in
 * VRF 1 (pods, gateway, a prefix over each tunnel); an IPv6 underlay
 * (fd00:100::1 on the fabric, VXLAN and MPLSoGRE tunnels to a pinned
 * neighbour, VXLAN to one learnt by ND).
 */
#include <arpa/inet.h>
#include <string.h>

#include "../../fp.h"
#include "fuzz_topology.h"

static uint32_t
ip4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

static void
ip6(uint8_t a[16], const char *s)
{
	inet_pton(AF_INET6, s, a);
}

static int
route6(uint16_t vrf, const char *p, uint8_t len, uint32_t nh, char *err)
{
	uint8_t a[16];

	ip6(a, p);
	return fp_route6_add(vrf, a, len, nh, err);
}

static void
mac(uint8_t m[6], uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t e, uint8_t f)
{
	m[0] = a, m[1] = b, m[2] = c, m[3] = d, m[4] = e, m[5] = f;
}

void
fz_topology_setup(uint16_t port[FZ_NB_PORTS],
		  void (*check)(int ret, const char *what, const char *err))
{
	static const char *const names[FZ_NB_PORTS] = {"fz_a", "fz_b", "fz_fab", "fz_host",
							"fz_c", "fz_x"};
	struct fp_port_conf pc[FZ_NB_PORTS];
	struct fp_nh_conf nc;
	char err[FP_ERRLEN] = "";
	uint8_t m[6], a6[16];
	unsigned i;

	memset(pc, 0, sizeof(pc));
	pc[FZ_POD_A].kind = FP_PORT_POD;
	pc[FZ_POD_A].vrf = 1;
	mac(pc[FZ_POD_A].mac, 0x02, 0, 0, 0x01, 0, 0x0a);
	pc[FZ_POD_A].ip4[0] = ip4("10.1.0.10");
	pc[FZ_POD_A].nb_ip4 = 1;
	ip6(pc[FZ_POD_A].ip6[0], "fd00:1::a");
	pc[FZ_POD_A].nb_ip6 = 1;
	pc[FZ_POD_B] = pc[FZ_POD_A];
	pc[FZ_POD_B].mac[5] = 0x0b;
	pc[FZ_POD_B].ip4[0] = ip4("10.1.0.11");
	ip6(pc[FZ_POD_B].ip6[0], "fd00:1::b");
	pc[FZ_FABRIC].kind = FP_PORT_FABRIC;
	mac(pc[FZ_FABRIC].mac, 0x02, 0xfa, 0, 0, 0, 0x01);
	pc[FZ_FABRIC].ip4[0] = ip4("192.168.100.1");
	pc[FZ_FABRIC].nb_ip4 = 1;
	ip6(pc[FZ_FABRIC].ip6[0], "fd00:100::1");
	pc[FZ_FABRIC].nb_ip6 = 1;
	pc[FZ_HOST].kind = FP_PORT_HOST;
	pc[FZ_HOST].vrf = 1;
	mac(pc[FZ_HOST].mac, 0x02, 0x40, 0, 0, 0, 0x01);
	pc[FZ_POD_C] = pc[FZ_POD_A];
	pc[FZ_POD_C].vrf = 2;
	pc[FZ_POD_C].mtu = 1280;
	pc[FZ_POD_C].mac[3] = 0x02;
	pc[FZ_XCONNECT].kind = FP_PORT_POD;
	pc[FZ_XCONNECT].vrf = 1;
	mac(pc[FZ_XCONNECT].mac, 0x02, 0, 0, 0x01, 0, 0x0c);
	for (i = 0; i < FZ_NB_PORTS; i++) {
		int id;

		if (i == FZ_XCONNECT)
			pc[i].xconnect = port[FZ_POD_B] + 1;
		id = fp_port_add_ring(names[i], &pc[i], err);
		check(id, "fp_port_add_ring", err);
		port[i] = (uint16_t)id;
	}

	/* Underlay: .2 and .3 pinned, .9 unresolved (tunnels to it ARP). */
	mac(m, 0x02, 0xfb, 0, 0, 0, 0x02);
	check(fp_neigh_set(ip4("192.168.100.2"), m, err), "fp_neigh_set", err);
	m[5] = 0x03;
	check(fp_neigh_set(ip4("192.168.100.3"), m, err), "fp_neigh_set", err);
	/* IPv6 underlay: fd00:100::2 pinned, fd00:100::9 unresolved (ND). */
	m[5] = 0x02;
	ip6(a6, "fd00:100::2");
	check(fp_neigh6_set(a6, m, err), "fp_neigh6_set", err);

	/* 1, 2: pods A and B; 3: pod C; 10 VXLAN .2 VNI 100; 11 MPLSoUDP .3
	 * label 200; 12 VXLAN .9 (unresolved); 13 ECMP 1, 10, 11; 14 discard;
	 * 15 receive. */
	memset(&nc, 0, sizeof(nc));
	nc.type = FP_NH_IFACE;
	nc.port = port[FZ_POD_A];
	memcpy(nc.dst_mac, pc[FZ_POD_A].mac, 6);
	check(fp_nh_set(1, &nc, err), "fp_nh_set 1", err);
	nc.port = port[FZ_POD_B];
	memcpy(nc.dst_mac, pc[FZ_POD_B].mac, 6);
	check(fp_nh_set(2, &nc, err), "fp_nh_set 2", err);
	nc.port = port[FZ_POD_C];
	memcpy(nc.dst_mac, pc[FZ_POD_C].mac, 6);
	check(fp_nh_set(3, &nc, err), "fp_nh_set 3", err);
	memset(&nc, 0, sizeof(nc));
	nc.type = FP_NH_TUNNEL;
	nc.port = port[FZ_FABRIC];
	nc.encap = FP_ENCAP_VXLAN;
	nc.tun_dst = ip4("192.168.100.2");
	nc.vni = 100;
	check(fp_nh_set(10, &nc, err), "fp_nh_set 10", err);
	nc.encap = FP_ENCAP_MPLSOUDP;
	nc.tun_dst = ip4("192.168.100.3");
	nc.vni = 200;
	check(fp_nh_set(11, &nc, err), "fp_nh_set 11", err);
	nc.encap = FP_ENCAP_VXLAN;
	nc.tun_dst = ip4("192.168.100.9");
	nc.vni = 101;
	check(fp_nh_set(12, &nc, err), "fp_nh_set 12", err);
	/* IPv6 underlay: 16 VXLAN fd00:100::2 VNI 100; 17 MPLSoGRE
	 * fd00:100::2 label 200; 18 VXLAN fd00:100::9 (unresolved). */
	nc.tun_ip6 = 1;
	nc.tun_dst = 0;
	ip6(nc.tun_dst6, "fd00:100::2");
	nc.vni = 100;
	check(fp_nh_set(16, &nc, err), "fp_nh_set 16", err);
	nc.encap = FP_ENCAP_MPLSOGRE;
	nc.vni = 200;
	check(fp_nh_set(17, &nc, err), "fp_nh_set 17", err);
	nc.encap = FP_ENCAP_VXLAN;
	ip6(nc.tun_dst6, "fd00:100::9");
	nc.vni = 101;
	check(fp_nh_set(18, &nc, err), "fp_nh_set 18", err);
	memset(&nc, 0, sizeof(nc));
	nc.type = FP_NH_ECMP;
	nc.nb_members = 3;
	nc.members[0] = 1;
	nc.members[1] = 10;
	nc.members[2] = 11;
	check(fp_nh_set(13, &nc, err), "fp_nh_set 13", err);
	memset(&nc, 0, sizeof(nc));
	nc.type = FP_NH_DISCARD;
	check(fp_nh_set(14, &nc, err), "fp_nh_set 14", err);
	nc.type = FP_NH_RECEIVE;
	check(fp_nh_set(15, &nc, err), "fp_nh_set 15", err);

	/* VRF 1 */
	check(fp_route4_add(1, ip4("10.1.0.10"), 32, 1, err), "route", err);
	check(fp_route4_add(1, ip4("10.1.0.11"), 32, 2, err), "route", err);
	check(fp_route4_add(1, ip4("10.1.0.1"), 32, 15, err), "route", err);
	check(fp_route4_add(1, ip4("10.2.0.0"), 16, 10, err), "route", err);
	check(fp_route4_add(1, ip4("10.3.0.0"), 16, 11, err), "route", err);
	check(fp_route4_add(1, ip4("10.4.0.0"), 16, 13, err), "route", err);
	check(fp_route4_add(1, ip4("10.5.0.0"), 16, 14, err), "route", err);
	check(fp_route4_add(1, ip4("10.9.0.0"), 16, 12, err), "route", err);
	check(fp_route4_add(1, ip4("10.16.0.0"), 16, 16, err), "route", err);
	check(fp_route4_add(1, ip4("10.17.0.0"), 16, 17, err), "route", err);
	check(fp_route4_add(1, ip4("10.18.0.0"), 16, 18, err), "route", err);
	check(fp_vrf_addr_set(1, ip4("10.1.0.1"), err), "vrf addr", err);
	/* VRF 1, IPv6: the pods, the gateway, fd00:2::/48 over VXLAN,
	 * fd00:3::/48 over MPLSoUDP */
	check(route6(1, "fd00:1::a", 128, 1, err), "route6", err);
	check(route6(1, "fd00:1::b", 128, 2, err), "route6", err);
	check(route6(1, "fd00:1::1", 128, 15, err), "route6", err);
	check(route6(1, "fd00:2::", 48, 10, err), "route6", err);
	check(route6(1, "fd00:3::", 48, 11, err), "route6", err);
	check(route6(1, "fd00:16::", 48, 16, err), "route6", err);
	ip6(a6, "fd00:1::1");
	check(fp_vrf_addr6_set(1, a6, err), "vrf addr6", err);
	/* VRF 2: pod C and a default route over VXLAN. */
	check(fp_route4_add(2, ip4("10.1.0.10"), 32, 3, err), "route", err);
	check(fp_route4_add(2, ip4("10.1.0.1"), 32, 15, err), "route", err);
	check(fp_route4_add(2, 0, 0, 10, err), "route", err);
	check(fp_vrf_addr_set(2, ip4("10.1.0.1"), err), "vrf addr", err);
	/* Decap: VNI 100 and label 200 to VRF 1, VNI 102 to VRF 2, VNI 103
	 * to VRF 3 that has no FIB. */
	check(fp_vni_set(100, 1, err), "vni", err);
	check(fp_vni_set(102, 2, err), "vni", err);
	check(fp_vni_set(103, 3, err), "vni", err);
	check(fp_label_set(200, 1, err), "label", err);
}
