// Package pmdtest runs the fast path over real DPDK drivers (net_tap,
// net_af_packet, net_af_xdp, net_memif, net_pcap) with kernel pods in network
// namespaces, and with two forwarding lcores, in its own test process (DPDK
// starts once per process). It has tests only.
package pmdtest
