/* SPDX-License-Identifier: Apache-2.0
 * The table state every fuzz input runs against. The seeds (seeds.go, one
 * directory up) address these ports, MACs and addresses: change both
 * together.
 */
#ifndef FUZZ_TOPOLOGY_H
#define FUZZ_TOPOLOGY_H

#include <stdint.h>

/* Port selectors (the first byte of each frame, modulo FZ_NB_PORTS). */
enum fz_port_sel {
	FZ_POD_A = 0,   /* VRF 1, 10.1.0.10, 02:00:00:01:00:0a */
	FZ_POD_B = 1,   /* VRF 1, 10.1.0.11, 02:00:00:01:00:0b */
	FZ_FABRIC = 2,  /* 192.168.100.1, fd00:100::1, 02:fa:00:00:00:01 */
	FZ_HOST = 3,    /* VRF 1, 02:40:00:00:00:01 */
	FZ_POD_C = 4,   /* VRF 2, 10.1.0.10 (overlapping), MTU 1280 */
	FZ_XCONNECT = 5, /* cross-connected to pod B */
	FZ_NB_PORTS
};

/* Add the ports and tables; ids of the ports by selector. check(ret, what,
 * err) exits on a negative ret. */
void fz_topology_setup(uint16_t port[FZ_NB_PORTS],
		       void (*check)(int ret, const char *what, const char *err));

#endif
