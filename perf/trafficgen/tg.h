/* SPDX-License-Identifier: Apache-2.0
 * The traffic generator's C core: the boundary with Go.
 *
 * One worker lcore transmits and receives (on a 2-core machine the device
 * under test owns the other core). Go describes each stream as a header
 * template plus the offsets of the fields that vary per flow, the length
 * fields and the checksums to fix; the worker only writes those, the
 * signature and the checksums, so streams of any encapsulation cost the
 * same per packet.
 *
 * Every frame ends with a 16-byte signature (stream id, sequence number,
 * TSC at transmission, a magic). The receiver finds it from the outermost IP
 * header's length, so it survives encapsulation, decapsulation and Ethernet
 * padding.
 *
 * Writing a frame costs the worker more than the rest of its work together:
 * the line it writes was just read by the device on the other core. So with
 * stamp_every N > 1 only one frame in N per stream is built, with a sequence
 * number and a timestamp; the others are clones (one more reference) of a
 * template built once per flow and size, whose signature carries
 * TG_SEQ_NONE and no timestamp. Loss stays exact (counts); order and
 * latency are measured on the stamped frames.
 */
#ifndef TG_H
#define TG_H

#include <stdint.h>

#define TG_ERRLEN 256
#define TG_MAX_PORTS 8
#define TG_MAX_STREAMS 64
#define TG_MAX_HDR 192	  /* header template bytes (outer + inner headers) */
#define TG_MAX_FIELDS 8	  /* per-flow varying fields per stream */
#define TG_MAX_LENS 6	  /* length fields per stream */
#define TG_MAX_CSUMS 2	  /* IPv4 header / L4 checksums per stream */
#define TG_MAX_SIZES 64	  /* frame size schedule per stream */
#define TG_SIG_LEN 16
#define TG_SIG_MAGIC 0xf11a
#define TG_SEQ_NONE ((1ull << 48) - 1) /* a template clone's sequence number */
#define TG_TMPL_ROOM 2048		/* template data room: larger frames are built */
#define TG_MIN_FRAME 60	  /* 64 B on the wire minus the FCS */
#define TG_MAX_FRAME 9018 /* 9022 B jumbo minus the FCS */

/* The latency histogram: log-linear over TSC cycles (HDR histogram style).
 * Values below 2^TG_HIST_SUB_BITS are exact; above, each power of two is
 * split into 2^(TG_HIST_SUB_BITS-1) buckets: relative error < 1/64. */
#define TG_HIST_SUB_BITS 7
#define TG_HIST_BUCKETS ((64 - TG_HIST_SUB_BITS + 2) << (TG_HIST_SUB_BITS - 1))

struct tg_conf {
	unsigned lcore;		  /* worker lcore id (must be in the EAL lcore list) */
	unsigned mbufs;		  /* per pool (TX and RX pools are separate) */
	unsigned data_room;	  /* mbuf data room: >= largest frame + headroom */
	unsigned nb_desc;	  /* RX/TX descriptors per queue */
	unsigned rx_queues;	  /* RX queues per device port, all polled (0: 1) */
	unsigned idle_sleep_us;	  /* between polls when no trial runs */
	unsigned rx_bursts;	  /* RX bursts per queue per loop at most, while full (0: TG_RX_BURSTS) */
	unsigned templates;	  /* template frames for clones, over all streams (0: none) */
	unsigned mtu;		  /* every port's MTU (0: the device's own) */
};

/* A device that had a hiccup forwards its RX ring's backlog into ours at
 * its own speed: the worker drains up to this many RX bursts per queue per
 * loop, not one, or its ring stays full while it catches up on the rate
 * and the device drops into it. */
#define TG_RX_BURSTS 16

/* A field written per packet: value = base + (flow % count) * step, big
 * endian. */
struct tg_field {
	uint16_t off;
	uint8_t width; /* 2 or 4 bytes */
	uint32_t base;
	uint32_t count;
	uint32_t step;
};

/* A length field written per packet: value = frame length - delta. */
struct tg_len {
	uint16_t off;
	uint16_t delta;
};

/* An L4 checksum to compute (inner ones listed before outer ones). */
struct tg_l4csum {
	uint16_t l3_off;
	uint16_t l4_off;
	uint8_t v6;
	uint8_t csum_at; /* offset of the checksum field inside the L4 header */
};

struct tg_stream_conf {
	uint16_t tx_port;
	uint16_t hdr_len;
	uint8_t hdr[TG_MAX_HDR];
	uint8_t nb_fields, nb_lens, nb_ip4csum, nb_l4csum;
	struct tg_field fields[TG_MAX_FIELDS];
	struct tg_len lens[TG_MAX_LENS];
	uint16_t ip4csum[TG_MAX_CSUMS]; /* offsets of IPv4 headers */
	struct tg_l4csum l4csum[TG_MAX_CSUMS];
	uint32_t nb_flows;
	uint16_t nb_sizes;
	uint16_t sizes[TG_MAX_SIZES]; /* frame lengths without FCS, cycled */
	uint32_t weight;	      /* share of the trial's packets */
};

struct tg_trial_conf {
	uint32_t nb_streams;
	uint32_t burst;		/* packets per TX burst (<= 64) */
	double pps;		/* aggregate target; 0 = as fast as the port takes */
	uint64_t duration_ns;	/* TX time */
	uint64_t max_packets;	/* stop TX after this many (0 = no limit) */
	uint64_t drain_ns;	/* RX time after TX stops */
	/* 1 frame in stamp_every per stream is built, sequenced and stamped;
	 * the rest are template clones (0 or 1: every frame built). A stream
	 * whose flows x sizes templates do not fit the pool is built. */
	uint32_t stamp_every;
};

struct tg_stream_stats {
	uint64_t tx_pkts, tx_bytes;
	uint64_t rx_pkts, rx_bytes;
	uint64_t late; /* arrived after a higher sequence number: reordered or duplicated */
	uint64_t gaps; /* times a sequence number was skipped (loss or reordering) */
	uint64_t lat_min, lat_max, lat_sum; /* TSC cycles */
	uint64_t stamped;		    /* received frames with a timestamp (latency samples) */
	uint64_t tx_clones;		    /* frames sent as template clones */
};

struct tg_port_stats {
	uint64_t rx_pkts, rx_bytes, rx_foreign; /* frames without a signature */
	uint64_t tx_pkts, tx_bytes, tx_full;	/* tx_full: retries when the port pushed back */
	uint64_t dev_ipackets, dev_opackets, dev_imissed, dev_ierrors, dev_oerrors, dev_nombuf;
};

/* A trial's own accounting, beside its streams'. */
struct tg_trial_stats {
	uint64_t tx_cycles;  /* how long TX ran */
	uint64_t due;	     /* frames the rate asked for by the end of TX (0: flat out) */
	uint64_t not_taken;  /* built but never taken by a port when TX ended */
	uint64_t held;	     /* frames the rate asked for while a port refused frames */
	uint64_t loops;	     /* worker loop iterations */
	uint64_t max_gap;    /* longest time between two loop iterations, cycles */
	uint64_t stalls;     /* iterations that came more than TG_STALL_US after the last */
};

#define TG_STALL_US 50
/* A paced trial that fell behind sends at most this multiple of its rate
 * until it has caught up (tg_worker.c). */
#define TG_CATCHUP 1.25

enum tg_state { TG_IDLE = 0, TG_RUNNING = 1, TG_DRAINING = 2, TG_DONE = 3 };

int tg_init(int argc, char **argv, const struct tg_conf *c, char *err);
void tg_fini(void);
uint64_t tg_tsc_hz(void);

/* 0 if a DPDK bus and driver know the device devargs name, -ENOENT if
 * none does (a misspelt driver): bad input, not a failed probe. */
int tg_devargs_check(const char *devargs, char *err);
int tg_port_add(const char *devargs, char *err); /* returns the port index */
/* A port over two rings: frames injected into rx appear as received, frames
 * sent are kept for tg_ring_drain (tests). */
int tg_port_add_ring(const char *name, char *err);
int tg_port_link_up(unsigned port); /* 1 up, 0 down; once up, the EAL's memory fds are put back */
/* Stops and starts a port between trials (a memif client connects only
 * when its port starts: this retries a connection the server missed). */
int tg_port_restart(unsigned port, char *err);
/* The port's MTU: the device's, or the configured one where the device
 * has no MTU setting of its own (memif, ring). */
int tg_port_mtu(unsigned port, char *err);
int tg_port_stats(unsigned port, struct tg_port_stats *s);
int tg_ring_inject(unsigned port, const uint8_t *buf, const uint32_t *lens, unsigned n);
int tg_ring_drain(unsigned port, uint8_t *buf, uint32_t buflen, uint32_t *lens, unsigned max);

int tg_trial_start(const struct tg_trial_conf *t, const struct tg_stream_conf *s, char *err);
int tg_trial_state(void);
/* Blocks until the trial is done or timeout_ms passed; returns the state. */
int tg_trial_wait(unsigned timeout_ms);
void tg_trial_abort(void); /* stops TX now; the trial still drains */
int tg_trial_stats(struct tg_trial_stats *s); /* of the finished trial */
int tg_stream_stats(unsigned stream, struct tg_stream_stats *s, uint64_t *hist);

/* Signature helpers shared with the tests. */
void tg_sig_write(uint8_t *sig, uint16_t stream, uint64_t seq, uint64_t tsc);

#endif
