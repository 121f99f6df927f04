// SPDX-License-Identifier: MIT
/*
 * A fixed workload for counting vhost-net's instructions per packet under
 * callgrind, without peers or noise: a fake guest (tests/unit/fake_guest.c)
 * with one ring of 256, the worker's code as in xconnect mode.
 *
 *   bench_net_txrx rx|tx LEN split|packed [ROUNDS]
 *
 * rx: every round the guest posts 32 buffers of 2048 bytes, and a burst of
 * 32 packets of LEN bytes goes to its RX queue through net_vport_send()
 * (delivered directly: the worker polls the queue), then vu_vq_notify().
 * tx: every round the guest posts 32 packets of LEN bytes (header and
 * frame in one descriptor, as DPDK's virtio PMD does), and net_guest_tx()
 * takes them to a net_null uplink (a sink).  The guest reads the used
 * entries back each round and checks their count.
 *
 * Count with
 *   valgrind --tool=callgrind --toggle-collect=bench_round ./bench_net_txrx rx 60 split
 * bench_round() does the device side of one round only; divide its
 * instructions by the packets printed.
 */
#include <endian.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_malloc.h>

#include "eal_fixture.h"
#include "fake_guest.h"
#include "net.h"
#include "offload.h"

#define RING 256
#define BURST 32
#define BUF_STRIDE 2048
#define BUF(i) (FG_BUF_GPA + (uint64_t)(i) * BUF_STRIDE)
#define HDR 12

static struct rte_mempool *pool;
static struct net_worker *w;
static struct net_port port_g, port_up;
static struct net_port_stats stats_g[2], stats_up[2];
static struct net_vport vp;
static struct fg_split split;
static struct fg_packed packed;
static bool is_packed;

static void post(uint16_t id, uint32_t len, uint16_t flags)
{
	if (is_packed) {
		struct fg_buf b = { .addr = BUF(id), .len = len, .flags = flags };

		fg_packed_add(&packed, &b, 1, id);
	} else {
		fg_split_desc(&split, id, BUF(id), len, flags, 0);
		fg_split_publish(&split, id);
	}
}

static unsigned int reap(void)
{
	unsigned int n = 0;
	uint32_t id32, len;
	uint16_t id16;

	while (is_packed ? fg_packed_get_used(&packed, &id16, &len)
			 : fg_split_get_used(&split, &id32, &len))
		n++;
	return n;
}

/* The device's side of one round (what callgrind counts). */
__attribute__((noinline)) void bench_round(bool rx, struct vu_vq *vq, struct rte_mbuf **pkts);
__attribute__((noinline)) void bench_round(bool rx, struct vu_vq *vq, struct rte_mbuf **pkts)
{
	if (rx) {
		net_vport_send(w, &vp, 0, pkts, BURST);
		/* Delivered already, unless the build goes through the ring. */
		if (net_rxq_needs_kick(&vp.rxq[0]))
			net_guest_rx(w, &vp.rxq[0], vq, UINT_MAX);
	} else
		net_guest_tx(w, &vp.txq[0], vq, BURST);
	vu_vq_notify(vq);
}

int main(int argc, char **argv)
{
	struct vu_vq *vq;
	struct fake_guest *g;
	struct rte_mbuf *pkts[BURST];
	struct rte_mempool *unit_pool;
	unsigned long rounds = 100000, total = 0;
	uint16_t next = 0;
	uint32_t len;
	bool rx;
	char why[256];

	if (argc < 4) {
		fprintf(stderr, "usage: %s rx|tx LEN split|packed [ROUNDS]\n", argv[0]);
		return 2;
	}
	rx = !strcmp(argv[1], "rx");
	len = (uint32_t)atoi(argv[2]);
	is_packed = !strcmp(argv[3], "packed");
	if (argc > 4)
		rounds = strtoul(argv[4], NULL, 0);
	if (len < 60 || len + HDR > BUF_STRIDE) {
		fprintf(stderr, "LEN must be 60..%u\n", BUF_STRIDE - HDR);
		return 2;
	}
	unit_pool = eal_fixture_init(63);
	if (!unit_pool) {
		fprintf(stderr, "SKIP: cannot initialise DPDK's EAL\n");
		return 77;
	}
	/* With a per-lcore cache, as vhost-net's pools have. */
	pool = rte_pktmbuf_pool_create("bench", 4095, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (!pool)
		return 1;
	w = rte_zmalloc("worker", sizeof(*w), RTE_CACHE_LINE_SIZE);
	w->pool = pool;
	net_ctx.mode = NET_MODE_XCONNECT;
	net_ctx.nworkers = 1;
	net_ctx.workers[0] = w;
	port_g = (struct net_port){ .id = 0, .name = "g", .stats = stats_g, .vport = &vp };
	port_up = (struct net_port){ .id = 1, .name = "up", .is_uplink = true, .stats = stats_up };
	net_ctx.ports[0] = &port_g;
	net_ctx.ports[1] = &port_up;
	net_ctx.nports = 2;
	struct vu_poller_config pc = { .name = "bench", .mode = VU_POLL_NEVER, .cpu = -1 };

	w->poller = vu_poller_create(&pc);
	if (!w->poller || net_uplink_create(&port_up, "net_null0,no-rx=1", why, sizeof(why))) {
		fprintf(stderr, "setup failed: %s\n", w->poller ? why : "poller");
		return 1;
	}
	vp.port = &port_g;
	vp.npairs = 1;
	vp.link_up = true;
	vp.rxq[0].vp = &vp;
	vp.rxq[0].owner = w;
	vp.rxq[0].ring = rte_ring_create("g_rx", 1024, SOCKET_ID_ANY, RING_F_SC_DEQ);
	vp.txq[0].vp = &vp;

	g = fg_create();
	g->dev->features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MRG_RXBUF);
	if (is_packed) {
		fg_packed_setup(g, &packed, rx ? 0 : 1, RING, FG_RING_GPA, 0);
		vq = packed.vq;
	} else {
		fg_split_setup(g, &split, rx ? 0 : 1, RING, FG_RING_GPA, 0, 0);
		vq = split.vq;
	}
	vq->runnable = true;
	if (rx) {
		vp.rxq[0].vq = vq;
		if (net_rxq_start(&vp.rxq[0], vq))
			return 1;
	} else if (net_txq_start(&vp.txq[0], vq)) {
		return 1;
	}
	/* Guest TX frames: a zero header and a frame, written once. */
	for (uint16_t i = 0; !rx && i < RING; i++) {
		uint8_t *b = fg_ptr(g, BUF(i), HDR + len);

		memset(b, 0, HDR + len);
		memcpy(b + HDR, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00", 14);
	}
	for (unsigned long r = 0; r < rounds; r++) {
		for (unsigned int i = 0; i < BURST; i++, next = (uint16_t)((next + 1) % RING))
			post(next, rx ? BUF_STRIDE : HDR + len, rx ? VRING_DESC_F_WRITE : 0);
		if (rx) {
			if (rte_pktmbuf_alloc_bulk(pool, pkts, BURST))
				return 1;
			for (unsigned int i = 0; i < BURST; i++) {
				char *d = rte_pktmbuf_append(pkts[i], (uint16_t)len);

				memset(d, 0, 14);
			}
		}
		bench_round(rx, vq, pkts);
		if (reap() != BURST) {
			fprintf(stderr, "round %lu: the device did not complete %u buffers\n", r, BURST);
			return 1;
		}
		total += BURST;
	}
	printf("%s %u %s: %lu packets in %lu rounds of %u\n", rx ? "rx" : "tx", len,
	       is_packed ? "packed" : "split", total, rounds, BURST);
	net_uplink_destroy(&port_up);
	if (rx)
		net_rxq_stop(&vp.rxq[0]);
	else
		net_txq_stop(&vp.txq[0]);
	fg_destroy(g);
	vu_poller_destroy(w->poller);
	rte_ring_free(vp.rxq[0].ring);
	rte_free(w);
	rte_mempool_free(pool);
	/* Removes EAL's runtime directory too. */
	eal_fixture_fini(unit_pool);
	return 0;
}
