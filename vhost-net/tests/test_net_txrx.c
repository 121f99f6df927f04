// SPDX-License-Identifier: MIT
/*
 * Unit tests of vhost-net's guest data path (vhost-net/txrx.c) on fake
 * guest rings (tests/unit/fake_guest.c), without pollers or sockets:
 *  - guest RX: filling one buffer, mergeable RX buffers (num_buffers,
 *    lengths, data), a packet waiting for buffers (the ones taken for it
 *    are given back to the ring, split and packed), buffers too small
 *    without mergeable buffers, the legacy 10-byte header, packed ring
 *    wrap, software segmentation for a guest without TSO, buffers
 *    completed in order around batched one-buffer packets;
 *  - guest TX: a frame spread over descriptors, header offloads, and
 *    hostile chains (shorter than the header, runt frames, bad headers),
 *    each completed with length 0 and counted;
 *  - SEND_RARP: a RARP on a net_null uplink, the MAC learned.
 * The guest TX side delivers through net_forward() in xconnect mode to a
 * second port whose RX ring the test reads.
 */
#include <endian.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_tcp.h>

#include "eal_fixture.h"
#include "fake_guest.h"
#include "net.h"
#include "offload.h"
#include "switch.h"

#define WR VRING_DESC_F_WRITE
#define NEXT VRING_DESC_F_NEXT
#define HDR 12
#define BUF(i) (FG_BUF_GPA + (uint64_t)(i) * 0x1000)

static struct rte_mempool *pool;
static struct rte_mempool *ind_pool;
static struct net_worker *w;
static struct net_port port_a, port_b, port_up;
static struct net_port_stats stats_a[2], stats_b[2], stats_up[2];
static struct net_vport vp_a, vp_b;
static struct vu_vq sink_vq;
static struct net_worker *other; /* owns port B's queue: sends to it use its ring */
static uint8_t frame[70000];

struct t {
	struct fake_guest *g;
	struct fg_split r;
	struct fg_packed *p;
	struct net_rxq *q;
	struct net_txq *tq;
	unsigned int avail0;
};

static void fill(uint8_t *b, uint32_t len, uint8_t seed)
{
	memset(b, 0, 14);
	memcpy(b, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00", 14);
	for (uint32_t i = 14; i < len; i++)
		b[i] = (uint8_t)(i * 31 + seed);
}

static struct rte_mbuf *mbuf_of(const uint8_t *data, uint32_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool), *last = m;

	assert_non_null(m);
	while (len) {
		uint32_t room = rte_pktmbuf_tailroom(last), n = len < room ? len : room;

		if (!room) {
			last->next = rte_pktmbuf_alloc(pool);
			assert_non_null(last->next);
			last = last->next;
			m->nb_segs++;
			continue;
		}
		memcpy(rte_pktmbuf_mtod_offset(last, uint8_t *, last->data_len), data, n);
		last->data_len += (uint16_t)n;
		m->pkt_len += n;
		data += n;
		len -= n;
	}
	return m;
}

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->g = fg_create();
	t->g->dev->features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MRG_RXBUF) |
			      (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_HOST_TSO4);
	t->q = &vp_a.rxq[0];
	t->tq = &vp_a.txq[0];
	memset(stats_a, 0, sizeof(stats_a));
	memset(stats_b, 0, sizeof(stats_b));
	t->avail0 = rte_mempool_avail_count(pool);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;
	struct rte_mbuf *m;

	while (rte_ring_dequeue(vp_b.rxq[0].ring, (void **)&m) == 0)
		rte_pktmbuf_free(m);
	if (t->q->chains)
		net_rxq_stop(t->q);
	if (t->tq->iov)
		net_txq_stop(t->tq);
	assert_int_equal(rte_mempool_avail_count(pool), t->avail0);
	free(t->p);
	fg_destroy(t->g);
	free(t);
	return 0;
}

/* Queue 0 as the guest's split RX ring, with the device's features. */
static struct vu_vq *rx_split(struct t *t, uint32_t size)
{
	fg_split_setup(t->g, &t->r, 0, size, FG_RING_GPA, 0, 0);
	t->q->vq = t->r.vq;
	assert_int_equal(net_rxq_start(t->q, t->r.vq), 0);
	return t->r.vq;
}

static void post_split(struct t *t, uint16_t i, uint32_t len)
{
	fg_split_desc(&t->r, i, BUF(i), len, WR, 0);
	fg_split_publish(&t->r, i);
}

static void enqueue(struct t *t, const uint8_t *data, uint32_t len)
{
	assert_int_equal(rte_ring_enqueue(t->q->ring, mbuf_of(data, len)), 0);
}

static unsigned int rx(struct t *t, struct vu_vq *vq)
{
	unsigned int n = net_guest_rx(w, t->q, vq, 64);

	vu_vq_notify(vq);
	return n;
}

static const struct virtio_net_hdr_mrg_rxbuf *hdr_at(struct t *t, uint16_t i)
{
	return fg_ptr(t->g, BUF(i), sizeof(struct virtio_net_hdr_mrg_rxbuf));
}

/* ---- guest RX ---- */

static void test_rx_one_buffer(void **state)
{
	struct t *t = *state;
	struct vu_vq *vq = rx_split(t, 64);
	uint32_t id, len;

	fill(frame, 100, 1);
	post_split(t, 0, 2048);
	enqueue(t, frame, 100);
	rx(t, vq);
	assert_true(fg_split_get_used(&t->r, &id, &len));
	assert_int_equal(id, 0);
	assert_int_equal(len, HDR + 100);
	assert_int_equal(le16toh(hdr_at(t, 0)->num_buffers), 1);
	assert_int_equal(hdr_at(t, 0)->hdr.flags, 0);
	assert_memory_equal(fg_ptr(t->g, BUF(0) + HDR, 100), frame, 100);
	assert_int_equal(stats_a[0].tx_packets, 1);
	assert_int_equal(stats_a[0].tx_bytes, 100);
}

/* Headers in one burst: a packet without offload flags gets an all-zero
 * header without the offload code, one whose checksum is known good gets
 * DATA_VALID (for a guest with GUEST_CSUM), in the order they came. */
static void test_rx_header_per_packet(void **state)
{
	static const uint64_t flags[] = { 0, RTE_MBUF_F_RX_L4_CKSUM_GOOD, 0, RTE_MBUF_F_RX_L4_CKSUM_GOOD };
	struct t *t = *state;
	struct vu_vq *vq;
	uint32_t id, len;

	t->g->dev->features |= 1ull << VIRTIO_NET_F_GUEST_CSUM;
	vq = rx_split(t, 64);
	for (uint16_t i = 0; i < 4; i++) {
		struct rte_mbuf *m;

		fill(frame, 80, (uint8_t)i);
		m = mbuf_of(frame, 80);
		m->ol_flags = flags[i];
		assert_int_equal(rte_ring_enqueue(t->q->ring, m), 0);
		post_split(t, i, 2048);
	}
	/* Leftovers of an earlier header must not show through. */
	memset(fg_ptr(t->g, BUF(0), 4 * 0x1000), 0xa5, 4 * 0x1000);
	assert_int_equal(rx(t, vq), 4);
	for (uint16_t i = 0; i < 4; i++) {
		const struct virtio_net_hdr_mrg_rxbuf *h = hdr_at(t, i);

		assert_true(fg_split_get_used(&t->r, &id, &len));
		assert_int_equal(id, i);
		assert_int_equal(len, HDR + 80);
		assert_int_equal(h->hdr.flags, flags[i] ? VIRTIO_NET_HDR_F_DATA_VALID : 0);
		assert_int_equal(h->hdr.gso_type, 0);
		assert_int_equal(h->hdr.hdr_len, 0);
		assert_int_equal(h->hdr.gso_size, 0);
		assert_int_equal(h->hdr.csum_start, 0);
		assert_int_equal(h->hdr.csum_offset, 0);
		assert_int_equal(le16toh(h->num_buffers), 1);
		fill(frame, 80, (uint8_t)i);
		assert_memory_equal(fg_ptr(t->g, BUF(i) + HDR, 80), frame, 80);
	}
	assert_int_equal(stats_a[0].tx_packets, 4);
	assert_int_equal(stats_a[0].tx_bytes, 4 * 80);
}

/* A queue this worker polls gets its packets at once, not through its
 * ring; what finds no buffer waits, and later packets queue behind it. */
static void test_rx_direct_delivery(void **state)
{
	struct t *t = *state;
	struct vu_vq *vq = rx_split(t, 64);
	struct rte_mbuf *m[3];
	uint32_t id, len;

	vq->runnable = true;
	for (uint16_t i = 0; i < 3; i++) {
		fill(frame, 100, (uint8_t)i);
		m[i] = mbuf_of(frame, 100);
	}
	post_split(t, 0, 2048);
	post_split(t, 1, 2048);
	net_vport_send(w, &vp_a, 0, m, 3);
	vu_vq_notify(vq);
	for (uint16_t i = 0; i < 2; i++) {
		fill(frame, 100, (uint8_t)i);
		assert_true(fg_split_get_used(&t->r, &id, &len));
		assert_int_equal(id, i);
		assert_int_equal(len, HDR + 100);
		assert_memory_equal(fg_ptr(t->g, BUF(i) + HDR, 100), frame, 100);
	}
	assert_false(fg_split_get_used(&t->r, &id, &len));
	assert_int_equal(rte_ring_count(t->q->ring), 0);
	assert_true(net_rxq_needs_kick(t->q));
	/* The third waits: a fourth goes behind it, into the ring. */
	fill(frame, 100, 3);
	m[0] = mbuf_of(frame, 100);
	net_vport_send(w, &vp_a, 0, m, 1);
	assert_int_equal(rte_ring_count(t->q->ring), 1);
	post_split(t, 2, 2048);
	post_split(t, 3, 2048);
	assert_int_equal(rx(t, vq), 2);
	for (uint16_t i = 2; i < 4; i++) {
		fill(frame, 100, (uint8_t)i);
		assert_true(fg_split_get_used(&t->r, &id, &len));
		assert_int_equal(id, i);
		assert_memory_equal(fg_ptr(t->g, BUF(i) + HDR, 100), frame, 100);
	}
	assert_false(net_rxq_needs_kick(t->q));
	assert_int_equal(stats_a[0].tx_packets, 4);
	vq->runnable = false;
}

static void test_rx_mergeable(void **state)
{
	struct t *t = *state;
	struct vu_vq *vq = rx_split(t, 64);
	uint32_t id, len, off = 0;

	fill(frame, 3000, 2);
	for (uint16_t i = 0; i < 4; i++)
		post_split(t, i, 1024);
	enqueue(t, frame, 3000);
	rx(t, vq);
	assert_int_equal(le16toh(hdr_at(t, 0)->num_buffers), 3);
	for (uint16_t i = 0; i < 3; i++) {
		uint32_t want = i < 2 ? 1024 : HDR + 3000 - 2048, skip = i ? 0 : HDR;

		assert_true(fg_split_get_used(&t->r, &id, &len));
		assert_int_equal(id, i);
		assert_int_equal(len, want);
		assert_memory_equal(fg_ptr(t->g, BUF(i) + skip, len - skip), frame + off, len - skip);
		off += len - skip;
	}
	assert_false(fg_split_get_used(&t->r, &id, &len));
	/* The fourth buffer is still the guest's, not taken. */
	assert_int_equal(vq->last_avail_idx, 3);
}

/*
 * Buffers complete in the order they were taken (the ring may be
 * IN_ORDER) while one-buffer packets are written in batches: packets that
 * need two buffers in the middle, more than a batch in one pass, and a
 * packet left waiting for buffers behind written ones.
 */
static void test_rx_batch_order(void **state)
{
	enum { N = 38, BIG = 5 };
	struct t *t = *state;
	struct vu_vq *vq = rx_split(t, 128);
	uint32_t id, len;

	for (uint16_t i = 0, b = 0; i < N; i++) {
		uint32_t n = i == BIG ? 1500 : 60 + i;

		fill(frame, n, (uint8_t)i);
		enqueue(t, frame, n);
		post_split(t, b++, i == BIG ? 1024 : 2048);
		if (i == BIG)
			post_split(t, b++, 1024);
	}
	fill(frame, 70, 0xee);
	enqueue(t, frame, 70); /* no buffer for it yet */
	assert_int_equal(rx(t, vq), N + 1);
	for (uint16_t i = 0, b = 0; i < N; i++) {
		uint32_t n = i == BIG ? 1500 : 60 + i;

		fill(frame, n, (uint8_t)i);
		assert_true(fg_split_get_used(&t->r, &id, &len));
		assert_int_equal(id, b);
		assert_int_equal(le16toh(hdr_at(t, b)->num_buffers), i == BIG ? 2 : 1);
		if (i != BIG) {
			assert_int_equal(len, HDR + n);
			assert_memory_equal(fg_ptr(t->g, BUF(b) + HDR, n), frame, n);
			b++;
			continue;
		}
		assert_int_equal(len, 1024);
		assert_memory_equal(fg_ptr(t->g, BUF(b) + HDR, 1024 - HDR), frame, 1024 - HDR);
		assert_true(fg_split_get_used(&t->r, &id, &len));
		assert_int_equal(id, b + 1);
		assert_int_equal(len, HDR + n - 1024);
		assert_memory_equal(fg_ptr(t->g, BUF(b + 1), len), frame + 1024 - HDR, len);
		b += 2;
	}
	assert_false(fg_split_get_used(&t->r, &id, &len));
	assert_int_equal(stats_a[0].tx_packets, N);
	assert_int_equal(vq->last_avail_idx, N + 1);
	post_split(t, N + 1, 2048);
	assert_int_equal(rx(t, vq), 1);
	assert_true(fg_split_get_used(&t->r, &id, &len));
	assert_int_equal(id, N + 1);
	assert_int_equal(len, HDR + 70);
	assert_int_equal(stats_a[0].tx_packets, N + 1);
}

/* Without mergeable buffers, a buffer too small for any frame is given
 * back empty between written ones, in its place. */
static void test_rx_batch_small_buffer(void **state)
{
	static const uint32_t size[] = { 2048, 20, 2048 };
	struct t *t = *state;
	struct vu_vq *vq;
	uint32_t id, len;

	t->g->dev->features &= ~(1ull << VIRTIO_NET_F_MRG_RXBUF);
	vq = rx_split(t, 64);
	for (uint16_t i = 0; i < 3; i++) {
		fill(frame, 100, (uint8_t)i);
		enqueue(t, frame, 100);
		post_split(t, i, size[i]);
	}
	rx(t, vq);
	for (uint16_t i = 0; i < 3; i++) {
		assert_true(fg_split_get_used(&t->r, &id, &len));
		assert_int_equal(id, i);
		assert_int_equal(len, i == 1 ? 0 : HDR + 100);
	}
	fill(frame, 100, 1);
	assert_memory_equal(fg_ptr(t->g, BUF(2) + HDR, 100), frame, 100);
	assert_false(fg_split_get_used(&t->r, &id, &len));
	assert_int_equal(stats_a[0].tx_packets, 2);
}

/* Not enough buffers: the ones taken go back, the packet waits. */
static void test_rx_waits_for_buffers_split(void **state)
{
	struct t *t = *state;
	struct vu_vq *vq = rx_split(t, 64);
	uint32_t id, len;

	fill(frame, 3000, 3);
	post_split(t, 0, 1024);
	post_split(t, 1, 1024);
	enqueue(t, frame, 3000);
	assert_int_equal(rx(t, vq), 0);
	assert_false(fg_split_get_used(&t->r, &id, &len));
	assert_int_equal(vq->last_avail_idx, 0);
	assert_int_equal(stats_a[0].tx_packets, 0);
	/* Again: still waiting, nothing lost or duplicated. */
	assert_int_equal(rx(t, vq), 0);
	assert_int_equal(vq->last_avail_idx, 0);
	post_split(t, 2, 1024);
	assert_true(rx(t, vq) > 0);
	for (uint16_t i = 0; i < 3; i++) {
		assert_true(fg_split_get_used(&t->r, &id, &len));
		assert_int_equal(id, i);
	}
	assert_int_equal(le16toh(hdr_at(t, 0)->num_buffers), 3);
	assert_int_equal(stats_a[0].tx_packets, 1);
}

/*
 * A packet waiting for buffers while the walker skips bad chains (it
 * completes them itself, length 0): the buffers taken for the packet are
 * given back by rewinding only where that cannot take a bad chain again;
 * otherwise they are completed empty.  Three buffers are posted, one of
 * them bad (outside guest memory), for a packet that needs three.
 */
static void test_rx_give_back_bad_chains(void **state)
{
	static const struct {
		uint16_t bad;            /* which of the three is bad */
		uint16_t rewind_to;      /* last_avail_idx after the pass */
		unsigned int nused;      /* chains completed (length 0) ... */
		uint16_t used[3];        /* ... their ids, in order */
		uint16_t first;          /* the packet's first buffer in the end */
	} cases[] = {
		/* Before the held ones: rewind to the first held one. */
		{ 0, 1, 1, { 0 }, 1 },
		/* Between them: the held ones are completed empty. */
		{ 1, 3, 3, { 1, 0, 2 }, 3 },
		/* After them (the pop that found the ring empty skipped it):
		 * rewinding would take it again; completed empty. */
		{ 2, 3, 3, { 2, 0, 1 }, 3 },
	};
	struct t *t = *state;

	for (unsigned int c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct vu_vq *vq = rx_split(t, 64);
		uint32_t id, len;

		fill(frame, 3000, (uint8_t)c);
		for (uint16_t i = 0; i < 3; i++) {
			if (i == cases[c].bad) {
				fg_split_desc(&t->r, i, FG_MEM_END + 0x1000, 1024, WR, 0);
				fg_split_publish(&t->r, i);
			} else {
				post_split(t, i, 1024);
			}
		}
		enqueue(t, frame, 3000);
		assert_int_equal(rx(t, vq), 0);
		assert_int_equal(vq->last_avail_idx, cases[c].rewind_to);
		for (unsigned int j = 0; j < cases[c].nused; j++) {
			assert_true(fg_split_get_used(&t->r, &id, &len));
			assert_int_equal(id, cases[c].used[j]);
			assert_int_equal(len, 0);
		}
		assert_false(fg_split_get_used(&t->r, &id, &len));
		assert_int_equal(vq->stats.bad_chains, 1);
		assert_int_equal(stats_a[0].tx_packets, 0);
		/* The packet still waits; three good buffers more take it. */
		for (uint16_t i = 3; i < 6; i++)
			post_split(t, i, 1024);
		assert_true(rx(t, vq) > 0);
		assert_int_equal(stats_a[0].tx_packets, 1);
		for (uint16_t j = 0; j < 3; j++) {
			assert_true(fg_split_get_used(&t->r, &id, &len));
			assert_int_equal(id, cases[c].first + j);
			assert_int_equal(len, j < 2 ? 1024 : HDR + 3000 - 2048);
		}
		assert_int_equal(le16toh(hdr_at(t, cases[c].first)->num_buffers), 3);
		assert_memory_equal(fg_ptr(t->g, BUF(cases[c].first) + HDR, 1024 - HDR), frame, 1024 - HDR);
		net_rxq_stop(t->q);
		fg_split_teardown(&t->r);
		memset(stats_a, 0, sizeof(stats_a));
	}
}

static struct vu_vq *rx_packed(struct t *t, uint32_t size)
{
	t->p = calloc(1, sizeof(*t->p));
	assert_non_null(t->p);
	fg_packed_setup(t->g, t->p, 0, size, FG_RING_GPA, 0);
	t->q->vq = t->p->vq;
	assert_int_equal(net_rxq_start(t->q, t->p->vq), 0);
	return t->p->vq;
}

static void post_packed(struct t *t, uint16_t id, uint32_t len)
{
	struct fg_buf b = { .addr = BUF(id), .len = len, .flags = WR };

	fg_packed_add(t->p, &b, 1, id);
}

static void test_rx_waits_for_buffers_packed(void **state)
{
	struct t *t = *state;
	struct vu_vq *vq = rx_packed(t, 4);
	uint16_t id;
	uint32_t len;

	fill(frame, 3000, 4);
	post_packed(t, 0, 1024);
	post_packed(t, 1, 1024);
	enqueue(t, frame, 3000);
	assert_int_equal(rx(t, vq), 0);
	assert_false(fg_packed_get_used(t->p, &id, &len));
	assert_int_equal(vq->last_avail_idx, 0);
	assert_true(vq->avail_wrap);
	post_packed(t, 2, 1024);
	rx(t, vq);
	for (uint16_t i = 0; i < 3; i++) {
		assert_true(fg_packed_get_used(t->p, &id, &len));
		assert_int_equal(id, i);
	}
	assert_int_equal(le16toh(hdr_at(t, 0)->num_buffers), 3);
	/* Across the wrap: buffers 3, 0, 1 for the next packet. */
	post_packed(t, 3, 1024);
	post_packed(t, 0, 1024);
	enqueue(t, frame, 3000);
	assert_int_equal(rx(t, vq), 0);
	assert_int_equal(vq->last_avail_idx, 3);
	assert_true(vq->avail_wrap);
	post_packed(t, 1, 1024);
	rx(t, vq);
	for (uint16_t i = 0; i < 3; i++) {
		assert_true(fg_packed_get_used(t->p, &id, &len));
		assert_int_equal(id, (i + 3) % 4);
	}
	assert_int_equal(stats_a[0].tx_packets, 2);
}

/* Many small packets around a small packed ring. */
static void test_rx_packed_wrap(void **state)
{
	struct t *t = *state;
	struct vu_vq *vq = rx_packed(t, 4);
	uint16_t id;
	uint32_t len;

	for (unsigned int round = 0; round < 10; round++) {
		for (uint16_t i = 0; i < 3; i++) {
			post_packed(t, i, 256);
			fill(frame, 60 + i, (uint8_t)round);
			enqueue(t, frame, 60 + i);
		}
		rx(t, vq);
		for (uint16_t i = 0; i < 3; i++) {
			assert_true(fg_packed_get_used(t->p, &id, &len));
			assert_int_equal(id, i);
			assert_int_equal(len, HDR + 60 + i);
		}
	}
	assert_int_equal(stats_a[0].tx_packets, 30);
}

/* Without mergeable buffers a packet must fit one buffer. */
static void test_rx_no_mrg_too_small(void **state)
{
	struct t *t = *state;
	struct vu_vq *vq;
	uint32_t id, len;

	t->g->dev->features &= ~(1ull << VIRTIO_NET_F_MRG_RXBUF);
	vq = rx_split(t, 64);
	fill(frame, 3000, 5);
	post_split(t, 0, 1600);
	enqueue(t, frame, 3000);
	enqueue(t, frame, 1000);
	rx(t, vq);
	assert_int_equal(stats_a[0].drops[NET_DROP_TOO_BIG], 1);
	assert_true(fg_split_get_used(&t->r, &id, &len));
	assert_int_equal(id, 0);
	assert_int_equal(len, HDR + 1000);
	assert_int_equal(le16toh(hdr_at(t, 0)->num_buffers), 1);
	assert_false(fg_split_get_used(&t->r, &id, &len));
}

/* A legacy driver without VERSION_1 or mergeable buffers: 10-byte header. */
static void test_rx_legacy_header(void **state)
{
	struct t *t = *state;
	struct vu_vq *vq;
	uint32_t id, len;

	t->g->dev->features = 0;
	vq = rx_split(t, 64);
	fill(frame, 200, 6);
	post_split(t, 0, 2048);
	enqueue(t, frame, 200);
	rx(t, vq);
	assert_true(fg_split_get_used(&t->r, &id, &len));
	assert_int_equal(len, 10 + 200);
	assert_memory_equal(fg_ptr(t->g, BUF(0) + 10, 200), frame, 200);
}

/* A header and data spread over the descriptors of one chain. */
static void test_rx_chain_of_descriptors(void **state)
{
	struct t *t = *state;
	struct vu_vq *vq;
	uint32_t id, len;

	t->g->dev->features &= ~(1ull << VIRTIO_NET_F_MRG_RXBUF);
	vq = rx_split(t, 64);
	fill(frame, 1500, 7);
	fg_split_desc(&t->r, 0, BUF(0), HDR, WR | NEXT, 1);
	fg_split_desc(&t->r, 1, BUF(1), 700, WR | NEXT, 2);
	fg_split_desc(&t->r, 2, BUF(2), 2000, WR, 0);
	fg_split_publish(&t->r, 0);
	enqueue(t, frame, 1500);
	rx(t, vq);
	assert_true(fg_split_get_used(&t->r, &id, &len));
	assert_int_equal(len, HDR + 1500);
	assert_memory_equal(fg_ptr(t->g, BUF(1), 700), frame, 700);
	assert_memory_equal(fg_ptr(t->g, BUF(2), 800), frame + 700, 800);
}

/* A TSO packet to a guest without GUEST_TSO4: segmented for it. */
static void test_rx_software_gso(void **state)
{
	struct t *t = *state;
	struct vu_vq *vq = rx_split(t, 64);
	struct virtio_net_hdr h = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				    .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
				    .gso_size = htole16(1000), .csum_start = htole16(34),
				    .csum_offset = htole16(16) };
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(frame + 14);
	struct rte_tcp_hdr *tcp = (struct rte_tcp_hdr *)(frame + 34);
	struct rte_mbuf *m;
	enum net_drop why;
	uint32_t id, len;

	memset(frame, 0, 54);
	fill(frame, 54 + 3500, 8);
	memset(frame + 14, 0, 40);
	ip->version_ihl = 0x45;
	ip->total_length = rte_cpu_to_be_16(40 + 3500);
	ip->next_proto_id = IPPROTO_TCP;
	ip->time_to_live = 64;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	tcp->data_off = 5 << 4;
	tcp->tcp_flags = RTE_TCP_ACK_FLAG;
	tcp->cksum = rte_ipv4_phdr_cksum(ip, 0);
	m = mbuf_of(frame, 54 + 3500);
	assert_int_equal(net_offload_from_guest(m, &h, (1ull << VIRTIO_NET_F_CSUM) |
						(1ull << VIRTIO_NET_F_HOST_TSO4), &why), 0);
	assert_int_equal(rte_ring_enqueue(t->q->ring, m), 0);
	for (uint16_t i = 0; i < 8; i++)
		post_split(t, i, 2048);
	rx(t, vq);
	for (uint16_t i = 0; i < 4; i++) {
		const struct rte_ipv4_hdr *sip = fg_ptr(t->g, BUF(i) + HDR + 14, 20);

		assert_true(fg_split_get_used(&t->r, &id, &len));
		assert_int_equal(len, HDR + 54 + (i < 3 ? 1000 : 500));
		assert_int_equal(hdr_at(t, i)->hdr.gso_type, 0);
		assert_int_equal(rte_ipv4_cksum(sip), 0);
	}
	assert_false(fg_split_get_used(&t->r, &id, &len));
	assert_int_equal(stats_a[0].tx_packets, 4);
}

/* ---- guest TX ---- */

static struct vu_vq *tx_split(struct t *t)
{
	fg_split_setup(t->g, &t->r, 1, 64, FG_RING2_GPA, 0, 0);
	assert_int_equal(net_txq_start(t->tq, t->r.vq), 0);
	return t->r.vq;
}

static unsigned int tx(struct t *t, struct vu_vq *vq)
{
	unsigned int n = net_guest_tx(w, t->tq, vq, 64);

	vu_vq_notify(vq);
	return n;
}

static struct rte_mbuf *sent(void)
{
	struct rte_mbuf *m = NULL;

	if (rte_ring_dequeue(vp_b.rxq[0].ring, (void **)&m))
		return NULL;
	return m;
}

static void test_tx_frame(void **state)
{
	struct t *t = *state;
	struct vu_vq *vq = tx_split(t);
	struct virtio_net_hdr_mrg_rxbuf *h = fg_ptr(t->g, BUF(0), HDR);
	struct rte_mbuf *m;
	uint8_t buf[5000];
	uint32_t id, len;

	fill(frame, 4000, 9);
	memset(h, 0, HDR);
	memcpy(fg_ptr(t->g, BUF(1), 1000), frame, 1000);
	memcpy(fg_ptr(t->g, BUF(2), 3000), frame + 1000, 3000);
	fg_split_desc(&t->r, 0, BUF(0), HDR, NEXT, 1);
	fg_split_desc(&t->r, 1, BUF(1), 1000, NEXT, 2);
	fg_split_desc(&t->r, 2, BUF(2), 3000, 0, 0);
	fg_split_publish(&t->r, 0);
	assert_int_equal(tx(t, vq), 1);
	assert_true(fg_split_get_used(&t->r, &id, &len));
	assert_int_equal(len, 0);
	m = sent();
	assert_non_null(m);
	assert_int_equal(m->pkt_len, 4000);
	assert_int_equal(m->ol_flags, 0);
	assert_memory_equal(rte_pktmbuf_read(m, 0, 4000, buf), frame, 4000);
	rte_pktmbuf_free(m);
	assert_int_equal(stats_a[0].rx_packets, 1);
	assert_int_equal(stats_a[0].rx_bytes, 4000);
}

/* Header and frame in one buffer, with a checksum request. */
static void test_tx_offload(void **state)
{
	struct t *t = *state;
	struct vu_vq *vq = tx_split(t);
	struct virtio_net_hdr_mrg_rxbuf *h = fg_ptr(t->g, BUF(0), HDR + 100);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)((uint8_t *)h + HDR + 14);
	struct rte_mbuf *m;

	fill((uint8_t *)h + HDR, 100, 10);
	memset(ip, 0, 20);
	ip->version_ihl = 0x45;
	ip->total_length = rte_cpu_to_be_16(86);
	ip->next_proto_id = IPPROTO_UDP;
	memset(h, 0, HDR);
	h->hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h->hdr.csum_start = htole16(34);
	h->hdr.csum_offset = htole16(6);
	fg_split_desc(&t->r, 0, BUF(0), HDR + 100, 0, 0);
	fg_split_publish(&t->r, 0);
	tx(t, vq);
	m = sent();
	assert_non_null(m);
	assert_int_equal(m->ol_flags, RTE_MBUF_F_TX_UDP_CKSUM | RTE_MBUF_F_TX_IPV4);
	assert_int_equal(m->l2_len, 14);
	assert_int_equal(m->l3_len, 20);
	rte_pktmbuf_free(m);
}

/* Hostile chains: each completed with length 0 and counted; good ones pass. */
static void test_tx_hostile(void **state)
{
	struct t *t = *state;
	struct vu_vq *vq = tx_split(t);
	struct virtio_net_hdr_mrg_rxbuf *h;
	uint32_t id, len;
	struct rte_mbuf *m;

	/* 0: shorter than the header. */
	fg_split_desc(&t->r, 0, BUF(0), HDR - 1, 0, 0);
	/* 1: a runt frame (10 bytes). */
	memset(fg_ptr(t->g, BUF(1), HDR), 0, HDR);
	fg_split_desc(&t->r, 1, BUF(1), HDR + 10, 0, 0);
	/* 2: csum_start beyond the frame. */
	h = fg_ptr(t->g, BUF(2), HDR + 60);
	memset(h, 0, HDR);
	fill((uint8_t *)h + HDR, 60, 11);
	h->hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h->hdr.csum_start = htole16(0xfff0);
	fg_split_desc(&t->r, 2, BUF(2), HDR + 60, 0, 0);
	/* 3: larger than any frame (two 40 KiB buffers). */
	memset(fg_ptr(t->g, BUF(3), HDR), 0, HDR);
	fg_split_desc(&t->r, 3, FG_R1_GPA, 40000, NEXT, 4);
	fg_split_desc(&t->r, 4, FG_R1_GPA + 40000, 40000, 0, 0);
	/* 5: a good one after them. */
	h = fg_ptr(t->g, BUF(5), HDR + 60);
	memset(h, 0, HDR);
	fill((uint8_t *)h + HDR, 60, 12);
	fg_split_desc(&t->r, 5, BUF(5), HDR + 60, 0, 0);
	fg_split_publish(&t->r, 0);
	fg_split_publish(&t->r, 1);
	fg_split_publish(&t->r, 2);
	fg_split_publish(&t->r, 3);
	fg_split_publish(&t->r, 5);
	assert_int_equal(tx(t, vq), 5);
	for (int i = 0; i < 5; i++) {
		assert_true(fg_split_get_used(&t->r, &id, &len));
		assert_int_equal(len, 0);
	}
	assert_int_equal(stats_a[0].drops[NET_DROP_BAD_HEADER], 2);
	assert_int_equal(stats_a[0].drops[NET_DROP_RUNT], 1);
	assert_int_equal(stats_a[0].drops[NET_DROP_TOO_BIG], 1);
	assert_int_equal(stats_a[0].rx_packets, 1);
	m = sent();
	assert_non_null(m);
	assert_int_equal(m->pkt_len, 60);
	rte_pktmbuf_free(m);
	assert_null(sent());
}

/* The destination guest has no running RX queue: dropped and counted there. */
static void test_tx_link_down(void **state)
{
	struct t *t = *state;
	struct vu_vq *vq = tx_split(t);

	memset(fg_ptr(t->g, BUF(0), HDR), 0, HDR);
	fill(fg_ptr(t->g, BUF(0) + HDR, 60), 60, 13);
	fg_split_desc(&t->r, 0, BUF(0), HDR + 60, 0, 0);
	fg_split_publish(&t->r, 0);
	sink_vq.runnable = false;
	tx(t, vq);
	sink_vq.runnable = true;
	assert_int_equal(stats_b[0].drops[NET_DROP_LINK_DOWN], 1);
	assert_null(sent());
}

/* SEND_RARP: a RARP from the guest's MAC leaves by every uplink; the MAC is learned. */
static void test_send_rarp(void **state)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	static const uint8_t group[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
	struct rte_eth_stats es;

	(void)state;
	net_ctx.mode = NET_MODE_SWITCH;
	assert_int_equal(net_vport_send_rarp(&vp_a, mac), 0);
	net_ctx.mode = NET_MODE_XCONNECT;
	assert_int_equal(net_mac_lookup(net_ctx.macs, mac, (uint32_t)(rte_rdtsc() / rte_get_tsc_hz())),
			 port_a.id);
	assert_int_equal(rte_eth_stats_get(port_up.uplink->eth_port, &es), 0);
	assert_int_equal(es.opackets, 1);
	assert_int_equal(stats_up[1].tx_packets, 1);
	assert_int_equal(stats_up[1].tx_bytes, 60);
	assert_int_equal(net_vport_send_rarp(&vp_a, group), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rx_one_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_header_per_packet, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_direct_delivery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_mergeable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_batch_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_batch_small_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_waits_for_buffers_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_waits_for_buffers_packed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_give_back_bad_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_packed_wrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_no_mrg_too_small, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_legacy_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_chain_of_descriptors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_software_gso, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_offload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_link_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_rarp, setup, teardown),
	};
	int ret;

	pool = eal_fixture_init(8191);
	if (!pool) {
		fprintf(stderr, "SKIP: cannot initialise DPDK's EAL\n");
		return 77;
	}
	ind_pool = rte_pktmbuf_pool_create("unit_ind", 1023, 0, 0, 0, SOCKET_ID_ANY);
	w = rte_zmalloc("worker", sizeof(*w), RTE_CACHE_LINE_SIZE);
	other = rte_zmalloc("other", sizeof(*other), RTE_CACHE_LINE_SIZE);
	assert_non_null(ind_pool);
	assert_non_null(w);
	assert_non_null(other);
	w->pool = pool;
	w->gso.direct_pool = pool;
	w->gso.indirect_pool = ind_pool;
	w->gso.gso_types = RTE_ETH_TX_OFFLOAD_TCP_TSO;
	net_ctx.mode = NET_MODE_XCONNECT;
	net_ctx.nworkers = 1;
	net_ctx.workers[0] = w;
	net_ctx.nports = 2;
	net_ctx.ports[0] = &port_a;
	net_ctx.ports[1] = &port_b;
	port_a = (struct net_port){ .id = 0, .name = "a", .stats = stats_a, .vport = &vp_a };
	port_b = (struct net_port){ .id = 1, .name = "b", .stats = stats_b, .vport = &vp_b };
	vp_a.port = &port_a;
	vp_a.npairs = 1;
	vp_a.rxq[0].vp = &vp_a;
	vp_a.rxq[0].owner = w;
	vp_a.rxq[0].ring = rte_ring_create("a_rx", 1024, SOCKET_ID_ANY, RING_F_SC_DEQ);
	vp_a.txq[0].vp = &vp_a;
	vp_b.port = &port_b;
	vp_b.npairs = 1;
	vp_b.link_up = true;
	vp_b.rxq[0].vp = &vp_b;
	vp_b.rxq[0].owner = other;
	vp_b.rxq[0].vq = &sink_vq;
	vp_b.rxq[0].ring = rte_ring_create("b_rx", 1024, SOCKET_ID_ANY, RING_F_SC_DEQ);
	sink_vq.runnable = true;
	assert_non_null(vp_a.rxq[0].ring);
	assert_non_null(vp_b.rxq[0].ring);
	/* A net_null uplink as port 2 (xconnect only uses ports 0 and 1). */
	struct vu_poller_config pc = { .name = "unit", .mode = VU_POLL_NEVER, .cpu = -1 };
	char why[256];

	w->poller = vu_poller_create(&pc);
	net_ctx.macs = net_mac_table_create(4, NET_MAC_AGING_S);
	assert_non_null(w->poller);
	assert_non_null(net_ctx.macs);
	port_up = (struct net_port){ .id = 2, .name = "up", .is_uplink = true, .stats = stats_up };
	net_ctx.ports[2] = &port_up;
	net_ctx.nports = 3;
	if (net_uplink_create(&port_up, "net_null0", why, sizeof(why)))
		fail_msg("net_null0: %s", why);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	net_uplink_destroy(&port_up);
	vu_poller_destroy(w->poller);
	net_mac_table_destroy(net_ctx.macs);
	rte_ring_free(vp_a.rxq[0].ring);
	rte_ring_free(vp_b.rxq[0].ring);
	rte_free(w);
	rte_free(other);
	rte_mempool_free(ind_pool);
	eal_fixture_fini(pool);
	return ret;
}
