// SPDX-License-Identifier: MIT
/*
 * The guest side of the data path, on the worker that owns the queue.
 *
 * Guest TX: chains are taken in bursts, their readable bytes after the
 * virtio_net_hdr copied into mbufs (chained beyond one mbuf), the header
 * validated and turned into offload flags (offload.c), and the chain
 * completed at once with length 0; the burst then goes to net_forward().
 *
 * Guest RX: other workers put packets into the queue's multi-producer,
 * single-consumer rte_ring; the owner delivers its own at once while
 * nothing is waiting (else into the ring too, to keep order); it makes
 * them fit the guest's offloads, and copies each into one guest buffer or,
 * with VIRTIO_NET_F_MRG_RXBUF, into as many as it needs (num_buffers).
 * A packet is copied only once its buffers are all taken; if the ring runs
 * dry first, the buffers taken for it are given back to the ring by moving
 * the queue's position back (no chain is completed that the guest did not
 * get data in) and the packet waits for the guest's next buffers.
 *
 * Wake-ups: a worker about to sleep says so in may_sleep and then looks at
 * its queues' rings once more; a producer enqueues and then reads
 * may_sleep, each with a full fence in between, so either the sleeper sees
 * the packet or the producer sees the sleeper and wakes it.
 */
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <rte_ether.h>

#include "net.h"
#include "offload.h"
#include "vu_numa.h"
#include "vu_util.h"

static uint8_t hdr_len_of(uint64_t features)
{
	if (features & ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MRG_RXBUF)))
		return sizeof(struct virtio_net_hdr_mrg_rxbuf);
	return sizeof(struct virtio_net_hdr);
}

static int ring_node(const struct vu_vq *vq)
{
	return vu_numa_node_of(vq->packed ? (const void *)vq->gpdesc : (const void *)vq->gdesc);
}

/* ---- guest TX ---- */

int net_txq_start(struct net_txq *q, struct vu_vq *vq)
{
	int node = ring_node(vq);

	q->iov = vu_numa_zalloc(sizeof(*q->iov) * NET_TX_CHAIN_IOV, node);
	q->gpa = vu_numa_zalloc(sizeof(*q->gpa) * NET_TX_CHAIN_IOV, node);
	if (!q->iov || !q->gpa) {
		net_txq_stop(q);
		return -ENOMEM;
	}
	vu_chain_init(&q->chain, q->iov, q->gpa, NET_TX_CHAIN_IOV);
	q->features = vq->dev->features;
	q->hdr_len = hdr_len_of(q->features);
	return 0;
}

void net_txq_stop(struct net_txq *q)
{
	vu_numa_free(q->iov, sizeof(*q->iov) * NET_TX_CHAIN_IOV);
	vu_numa_free(q->gpa, sizeof(*q->gpa) * NET_TX_CHAIN_IOV);
	q->iov = NULL;
	q->gpa = NULL;
}

/*
 * Copy the frame of a guest TX chain into a new mbuf chain and apply its
 * header.  NULL with *why set if the packet is dropped.
 */
static struct rte_mbuf *chain_to_mbuf(struct net_worker *w, const struct net_txq *q,
				      const struct vu_chain *c, enum net_drop *why)
{
	struct virtio_net_hdr_mrg_rxbuf hdr;
	const struct iovec *iov = c->iov;
	unsigned int i = 0, n = c->nout;
	size_t off = 0;
	uint32_t len, left;
	struct rte_mbuf *m, *seg;
	uint8_t *h = (uint8_t *)&hdr;

	if (c->out_len < q->hdr_len) {
		*why = NET_DROP_BAD_HEADER;
		return NULL;
	}
	len = c->out_len - q->hdr_len;
	if (len < RTE_ETHER_HDR_LEN) {
		*why = NET_DROP_RUNT;
		return NULL;
	}
	if (len > NET_MAX_FRAME) {
		*why = NET_DROP_TOO_BIG;
		return NULL;
	}
	m = rte_pktmbuf_alloc(w->pool);
	if (!m) {
		*why = NET_DROP_NO_MBUF;
		return NULL;
	}
	/* The header, read once into private memory (SECURITY.md B.16). */
	for (left = q->hdr_len; left && i < n;) {
		size_t l = iov[i].iov_len - off;

		if (l > left)
			l = left;
		memcpy(h, (const uint8_t *)iov[i].iov_base + off, l);
		h += l;
		left -= l;
		off += l;
		if (off == iov[i].iov_len) {
			i++;
			off = 0;
		}
	}
	seg = m;
	for (left = len; left && i < n;) {
		uint32_t room = rte_pktmbuf_tailroom(seg);
		size_t avail = iov[i].iov_len - off, chunk;

		if (!avail) {
			i++;
			off = 0;
			continue;
		}
		if (!room) {
			struct rte_mbuf *next = rte_pktmbuf_alloc(w->pool);

			if (!next) {
				rte_pktmbuf_free(m);
				*why = NET_DROP_NO_MBUF;
				return NULL;
			}
			seg->next = next;
			seg = next;
			m->nb_segs++;
			continue;
		}
		chunk = avail < room ? avail : room;
		if (chunk > left)
			chunk = left;
		memcpy(rte_pktmbuf_mtod_offset(seg, uint8_t *, seg->data_len),
		       (const uint8_t *)iov[i].iov_base + off, chunk);
		seg->data_len += (uint16_t)chunk;
		m->pkt_len += (uint32_t)chunk;
		off += chunk;
		left -= (uint32_t)chunk;
	}
	if (left || (net_offload_from_guest_needed(&hdr.hdr) &&
		     net_offload_from_guest(m, &hdr.hdr, q->features, why))) {
		if (left)
			*why = NET_DROP_BAD_HEADER;
		rte_pktmbuf_free(m);
		return NULL;
	}
	return m;
}

unsigned int net_guest_tx(struct net_worker *w, struct net_txq *q, struct vu_vq *vq,
			  unsigned int budget)
{
	struct net_port *port = q->vp->port;
	struct net_port_stats *st = net_stats(port, w);
	struct rte_mbuf *pkts[NET_BURST];
	unsigned int done = 0;

	while (done < budget) {
		uint64_t bytes = 0;
		uint16_t n = 0;
		int ret = 0;

		while (n < NET_BURST && done < budget) {
			enum net_drop why;
			struct rte_mbuf *m;

			ret = vu_vq_pop(vq, &q->chain);
			if (ret <= 0)
				break;
			done++;
			m = chain_to_mbuf(w, q, &q->chain, &why);
			/* Copied: the guest may have its buffer back. */
			vu_vq_push(vq, &q->chain, 0);
			if (vu_unlikely(!m)) {
				net_count_drop(port, w, why, 1);
				continue;
			}
			bytes += m->pkt_len;
			pkts[n++] = m;
		}
		if (n) {
			net_stat_add(&st->rx_packets, n);
			net_stat_add(&st->rx_bytes, bytes);
			net_stat_add(&q->packets, n);
			net_forward(w, port, q->pair, pkts, n);
		}
		if (ret <= 0)
			break;
	}
	return done;
}

/* ---- guest RX: the queue's buffers ---- */

static inline struct net_ring_pos pos_now(const struct vu_vq *vq)
{
	return (struct net_ring_pos){ vq->last_avail_idx, vq->avail_wrap };
}

/* Move a ring position back by slots (slots <= size). */
static inline void pos_back(const struct vu_vq *vq, struct net_ring_pos *p, uint32_t slots)
{
	if (!vq->packed) {
		p->idx = (uint16_t)(p->idx - slots);
	} else if (p->idx >= slots) {
		p->idx = (uint16_t)(p->idx - slots);
	} else {
		p->idx = (uint16_t)(p->idx + vq->size - slots);
		p->wrap = !p->wrap;
	}
}

static inline struct net_rx_chain *held(struct net_rxq *q, unsigned int j)
{
	return &q->chains[(q->held_head + j) % NET_RX_MAX_CHAINS];
}

/*
 * Take one more guest buffer and hold it.  NULL if the ring is empty, the
 * queue broke, or NET_RX_MAX_CHAINS are held.  The chain remembers where
 * it starts and how many bad chains the walker had completed (it skips
 * and completes them itself) when it was taken: rx_release() needs both.
 */
static inline struct net_rx_chain *rx_pop(struct net_rxq *q, struct vu_vq *vq)
{
	uint64_t bad = vq->stats.bad_chains;
	struct net_rx_chain *rc;

	if (q->held_n == NET_RX_MAX_CHAINS)
		return NULL;
	rc = held(q, q->held_n);
	rc->start = pos_now(vq);
	if (vu_vq_pop(vq, &rc->c) <= 0)
		return NULL;
	if (vu_unlikely(vq->stats.bad_chains != bad)) {
		/* Bad chains were completed before it: it starts its own
		 * slots back from where the walker stopped. */
		rc->start = pos_now(vq);
		pos_back(vq, &rc->start, vq->packed ? rc->c.ndescs : 1);
	}
	rc->bad_after = vq->stats.bad_chains;
	q->held_slots += vq->packed ? rc->c.ndescs : 1;
	q->held_n++;
	return rc;
}

/* The first k held buffers were completed. */
static inline void rx_consume(struct net_rxq *q, struct vu_vq *vq, unsigned int k)
{
	if (vq->packed) {
		for (unsigned int j = 0; j < k; j++)
			q->held_slots -= held(q, j)->c.ndescs;
	} else {
		q->held_slots -= k;
	}
	q->held_head = (uint16_t)((q->held_head + k) % NET_RX_MAX_CHAINS);
	q->held_n = (uint16_t)(q->held_n - k);
}

/*
 * Give back the buffers still held: move the ring position back to where
 * the first of them starts, so that they are taken again later.  That is
 * exact when the walker completed no bad chain since the first was taken
 * (none sits between or after them), and inflight tracking does not
 * record what was taken; otherwise complete them empty instead.
 */
static void rx_release(struct net_rxq *q, struct vu_vq *vq)
{
	const struct net_rx_chain *first;

	if (!q->held_n)
		return;
	first = held(q, 0);
	if (!vq->inflight && vq->stats.bad_chains == first->bad_after) {
		vq->last_avail_idx = first->start.idx;
		vq->avail_wrap = first->start.wrap;
	} else {
		for (unsigned int j = 0; j < q->held_n; j++)
			vu_vq_push(vq, &held(q, j)->c, 0);
	}
	q->held_n = 0;
	q->held_head = 0;
	q->held_slots = 0;
}

int net_rxq_start(struct net_rxq *q, struct vu_vq *vq)
{
	int node = ring_node(vq);
	uint64_t f = vq->dev->features;

	q->chains = vu_numa_zalloc(sizeof(*q->chains) * NET_RX_MAX_CHAINS, node);
	q->pend = vu_numa_zalloc(sizeof(*q->pend) * NET_GSO_MAX_SEGS, node);
	if (!q->chains || !q->pend) {
		net_rxq_stop(q);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < NET_RX_MAX_CHAINS; i++)
		vu_chain_init(&q->chains[i].c, q->chains[i].iov, q->chains[i].gpa, NET_RX_CHAIN_IOV);
	q->held_head = q->held_n = 0;
	q->held_slots = 0;
	q->stash_head = q->stash_n = 0;
	q->pend_head = q->pend_n = 0;
	q->hdr_len = hdr_len_of(f);
	q->mrg_rxbuf = f & (1ull << VIRTIO_NET_F_MRG_RXBUF);
	q->egress_capa = net_offload_guest_capa(f);
	return 0;
}

/* Free what waits for the guest: the queue is stopped (quiesced). */
static unsigned int rxq_flush(struct net_rxq *q)
{
	struct rte_mbuf *m[NET_BURST];
	unsigned int n, total = 0;

	for (; q->stash_head < q->stash_n; q->stash_head++, total++)
		rte_pktmbuf_free(q->stash[q->stash_head]);
	for (; q->pend && q->pend_head < q->pend_n; q->pend_head++, total++)
		rte_pktmbuf_free(q->pend[q->pend_head]);
	while ((n = rte_ring_sc_dequeue_burst(q->ring, (void **)m, NET_BURST, NULL)) > 0) {
		rte_pktmbuf_free_bulk(m, n);
		total += n;
	}
	q->stash_head = q->stash_n = 0;
	q->pend_head = q->pend_n = 0;
	return total;
}

void net_rxq_stop(struct net_rxq *q)
{
	unsigned int n = rxq_flush(q);

	if (n)
		net_count_drop(q->vp->port, NULL, NET_DROP_LINK_DOWN, n);
	vu_numa_free(q->chains, sizeof(*q->chains) * NET_RX_MAX_CHAINS);
	vu_numa_free(q->pend, sizeof(*q->pend) * NET_GSO_MAX_SEGS);
	q->chains = NULL;
	q->pend = NULL;
}

/* ---- guest RX: packets ---- */

/*
 * The next packet for the guest, made fit for its offloads; NULL if none.
 * A packet without offload requests is delivered from the stash as it is;
 * the others are prepared into pend (software segmentation may make
 * several packets of one).
 */
static struct rte_mbuf *rx_peek(struct net_worker *w, struct net_rxq *q)
{
	if (q->pend_head < q->pend_n)
		return q->pend[q->pend_head];
	for (;;) {
		struct rte_mbuf *m;
		enum net_drop why;
		int n;

		if (q->stash_head == q->stash_n) {
			q->stash_n = (uint16_t)rte_ring_sc_dequeue_burst(q->ring, (void **)q->stash,
									 NET_BURST, NULL);
			q->stash_head = 0;
			if (!q->stash_n)
				return NULL;
		}
		m = q->stash[q->stash_head];
		if (vu_likely(!net_offload_egress_needed(m)))
			return m;
		q->stash_head++;
		n = net_offload_egress(m, q->egress_capa, &w->gso, q->pend, NET_GSO_MAX_SEGS, &why);
		if (n < 0) {
			net_count_drop(q->vp->port, w, why, 1);
			continue;
		}
		q->pend_head = 0;
		q->pend_n = (uint16_t)n;
		return q->pend[0];
	}
}

/* The packet rx_peek() returned is gone (delivered or dropped). */
static inline void rx_next(struct net_rxq *q)
{
	if (q->pend_head < q->pend_n)
		q->pend_head++;
	else
		q->stash_head++;
}

/*
 * Put the virtio-net header (10 or 12 bytes) at dst, storing only where the
 * buffer does not hold it already.  A driver that recycles its buffers
 * (DPDK's virtio PMD) finds its last header there, on a line its CPU has
 * just read: a load shares that line, a store would take it back.  DPDK's
 * vhost library compares before storing for the same reason.
 */
static inline void hdr_put(uint8_t *dst, const struct virtio_net_hdr_mrg_rxbuf *hdr,
			   unsigned int len)
{
	if (len == sizeof(*hdr)) {
		if (memcmp(dst, hdr, sizeof(*hdr)))
			memcpy(dst, hdr, sizeof(*hdr));
	} else if (memcmp(dst, &hdr->hdr, sizeof(hdr->hdr))) {
		memcpy(dst, &hdr->hdr, sizeof(hdr->hdr));
	}
}

/*
 * Packets that each fit the first buffer of one held chain (the usual case),
 * given buffers but not yet written: the first n held chains are theirs, in
 * order.  rx_batch_flush() writes them all, completes their buffers and frees
 * them.  Writing a burst's headers and frames back to back lets the misses
 * on the guest's lines (its CPU read them last) overlap, where writing
 * each packet between taking buffers stalled the worker on every one.
 */
struct rx_batch {
	unsigned int n;
	struct rte_mbuf *m[NET_BURST];
	struct virtio_net_hdr_mrg_rxbuf hdr[NET_BURST];
};

/* Count and free the packets delivered to the guest. */
static void rx_done(struct net_worker *w, struct net_rxq *q, struct rte_mbuf **done,
		    unsigned int n, uint64_t bytes)
{
	struct net_port_stats *st = net_stats(q->vp->port, w);

	net_stat_add(&st->tx_packets, n);
	net_stat_add(&st->tx_bytes, bytes);
	net_stat_add(&q->packets, n);
	rte_pktmbuf_free_bulk(done, n);
}

static void rx_batch_flush(struct net_worker *w, struct net_rxq *q, struct vu_vq *vq,
			   struct rx_batch *b)
{
	uint64_t bytes = 0;
	unsigned int i;

	if (!b->n)
		return;
	for (i = 0; i < b->n; i++) {
		const struct vu_chain *c = &held(q, i)->c;
		uint8_t *dst = c->iov[c->nout].iov_base;

		hdr_put(dst, &b->hdr[i], q->hdr_len);
		memcpy(dst + q->hdr_len, rte_pktmbuf_mtod(b->m[i], const void *), b->m[i]->data_len);
		bytes += b->m[i]->data_len;
	}
	/* In order: the ring may be IN_ORDER. */
	for (i = 0; i < b->n; i++)
		vu_vq_push(vq, &held(q, i)->c, q->hdr_len + b->m[i]->data_len);
	rx_consume(q, vq, b->n);
	rx_done(w, q, b->m, b->n, bytes);
	b->n = 0;
}

/* Whether no more buffers can be held for one packet. */
static inline bool rx_held_full(const struct net_rxq *q, const struct vu_vq *vq)
{
	return q->held_n == NET_RX_MAX_CHAINS || q->held_slots >= vq->size;
}

/* Writes a byte stream into the writable parts of the first held chains. */
struct rx_cursor {
	struct net_rxq *q;
	unsigned int nchains;
	unsigned int chain;
	unsigned int iov;
	size_t off;
	uint32_t written[NET_RX_MAX_CHAINS];
};

static void cursor_write(struct rx_cursor *cur, const uint8_t *src, uint32_t len)
{
	while (len && cur->chain < cur->nchains) {
		const struct vu_chain *c = &held(cur->q, cur->chain)->c;
		const struct iovec *v;
		size_t room, chunk;

		if (cur->iov == c->nin) {
			cur->chain++;
			cur->iov = 0;
			cur->off = 0;
			continue;
		}
		v = &c->iov[c->nout + cur->iov];
		room = v->iov_len - cur->off;
		if (!room) {
			cur->iov++;
			cur->off = 0;
			continue;
		}
		chunk = room < len ? room : len;
		memcpy((uint8_t *)v->iov_base + cur->off, src, chunk);
		cur->off += chunk;
		cur->written[cur->chain] += (uint32_t)chunk;
		src += chunk;
		len -= (uint32_t)chunk;
	}
}

/* The virtio-net header for m in k buffers. */
static inline void rx_hdr_fill(const struct net_rxq *q, struct rte_mbuf *m, unsigned int k,
			       struct virtio_net_hdr_mrg_rxbuf *hdr)
{
	if (vu_likely(!net_offload_to_guest_needed(m)))
		memset(&hdr->hdr, 0, sizeof(hdr->hdr));
	else
		net_offload_to_guest(m, q->egress_capa, &hdr->hdr);
	hdr->num_buffers = htole16((uint16_t)k);
}

/*
 * Deliver m into the held chains from b->n on.  Returns 1 (delivered, or
 * added to b), 0 (dropped and counted, m freed), or -EAGAIN (not enough
 * buffers yet; m kept).  *used counts the buffers given to packets.  b is
 * flushed before any buffer is completed here, so that buffers complete in
 * the order they were taken.
 */
static int rx_deliver(struct net_worker *w, struct net_rxq *q, struct vu_vq *vq,
		      struct rx_batch *b, struct rte_mbuf *m, unsigned int *used)
{
	struct net_port *port = q->vp->port;
	uint32_t need = q->hdr_len + m->pkt_len, have = 0;
	struct virtio_net_hdr_mrg_rxbuf hdr;
	struct rx_cursor cur;
	unsigned int k;

	if (!q->mrg_rxbuf) {
		for (;;) {
			const struct vu_chain *c;

			if (q->held_n == b->n && !rx_pop(q, vq))
				return -EAGAIN;
			c = &held(q, b->n)->c;
			if (c->in_len >= need)
				break;
			if (c->in_len < (uint32_t)q->hdr_len + RTE_ETHER_HDR_LEN) {
				/* No frame fits it: give it back empty, after
				 * the buffers taken before it. */
				rx_batch_flush(w, q, vq, b);
				vu_vq_push(vq, c, 0);
				rx_consume(q, vq, 1);
				(*used)++;
				continue;
			}
			/* Buffers are as big as the guest made them: it did
			 * not ask for packets this big. */
			net_count_drop(port, w, NET_DROP_TOO_BIG, 1);
			rte_pktmbuf_free(m);
			return 0;
		}
		k = 1;
	} else {
		for (k = 0; have < need; k++) {
			if (b->n + k == q->held_n) {
				if (rx_held_full(q, vq))
					rx_batch_flush(w, q, vq, b);
				if (rx_held_full(q, vq)) {
					/* More than the guest's buffers can ever hold. */
					net_count_drop(port, w, NET_DROP_TOO_BIG, 1);
					rte_pktmbuf_free(m);
					return 0;
				}
				if (!rx_pop(q, vq))
					return -EAGAIN;
			}
			have += held(q, b->n + k)->c.in_len;
		}
	}

	const struct vu_chain *c0 = &held(q, b->n)->c;

	if (k == 1 && m->nb_segs == 1 && c0->nin && c0->iov[c0->nout].iov_len >= need) {
		/* The usual case: one segment into one buffer, written with
		 * the rest of the batch. */
		rx_hdr_fill(q, m, 1, &b->hdr[b->n]);
		b->m[b->n++] = m;
		(*used)++;
		if (b->n == NET_BURST)
			rx_batch_flush(w, q, vq, b);
		return 1;
	}
	/* Its buffers are now the first k held chains. */
	rx_batch_flush(w, q, vq, b);
	rx_hdr_fill(q, m, k, &hdr);
	cur.q = q;
	cur.nchains = k;
	cur.chain = cur.iov = 0;
	cur.off = 0;
	memset(cur.written, 0, k * sizeof(cur.written[0]));
	cursor_write(&cur, (const uint8_t *)&hdr, q->hdr_len);
	for (const struct rte_mbuf *seg = m; seg; seg = seg->next)
		cursor_write(&cur, rte_pktmbuf_mtod(seg, const uint8_t *), seg->data_len);
	for (unsigned int j = 0; j < k; j++)
		vu_vq_push(vq, &held(q, j)->c, cur.written[j]);
	rx_consume(q, vq, k);
	*used += k;
	rx_done(w, q, &m, 1, m->pkt_len);
	return 1;
}

unsigned int net_guest_rx(struct net_worker *w, struct net_rxq *q, struct vu_vq *vq,
			  unsigned int budget)
{
	unsigned int used = 0, pkts = 0;
	struct rx_batch b;

	b.n = 0;
	while (used < budget && pkts < budget) {
		struct rte_mbuf *m = rx_peek(w, q);

		if (!m || rx_deliver(w, q, vq, &b, m, &used) == -EAGAIN)
			break;
		rx_next(q);
		pkts++;
	}
	rx_batch_flush(w, q, vq, &b);
	rx_release(q, vq);
	return pkts > used ? pkts : used;
}

/* ---- handing packets to a guest ---- */

static void wake_owner(struct net_worker *w, struct net_worker *owner)
{
	if (owner == w)
		return;
	/* Pairs with the fence in net_ring_src_prepare_sleep(): the packet is
	 * in the ring before we look at may_sleep. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&owner->may_sleep, __ATOMIC_RELAXED) &&
	    __atomic_exchange_n(&owner->may_sleep, false, __ATOMIC_ACQ_REL))
		vu_poller_wake(owner->poller);
}

/* Packets wait for the guest in this RX queue (owner worker). */
static inline bool rxq_pending(const struct net_rxq *q)
{
	return q->pend_head < q->pend_n || q->stash_head < q->stash_n || !rte_ring_empty(q->ring);
}

static inline bool rxq_runs(const struct net_rxq *q)
{
	return __atomic_load_n(&q->vq->runnable, __ATOMIC_ACQUIRE) &&
	       !__atomic_load_n(&q->vq->broken, __ATOMIC_RELAXED);
}

void net_vport_send(struct net_worker *w, struct net_vport *vp, uint16_t pair,
		    struct rte_mbuf **pkts, uint16_t n)
{
	struct net_rxq *q = NULL;
	unsigned int sent;

	for (uint16_t i = 0; i < vp->npairs; i++) {
		struct net_rxq *c = &vp->rxq[(pair + i) % vp->npairs];

		if (rxq_runs(c)) {
			q = c;
			break;
		}
	}
	if (!q) {
		net_count_drop(vp->port, w, NET_DROP_LINK_DOWN, n);
		rte_pktmbuf_free_bulk(pkts, n);
		return;
	}
	if (q->owner == w && !rxq_pending(q)) {
		/* This worker polls the queue and nothing waits before these
		 * packets: deliver them now, in this pass (its notification
		 * follows at the pass's end), without the ring.  What the
		 * guest has no buffers for stays in the stash. */
		uint16_t k = n < NET_BURST ? n : NET_BURST;

		memcpy(q->stash, pkts, k * sizeof(*pkts));
		q->stash_head = 0;
		q->stash_n = k;
		net_guest_rx(w, q, q->vq, UINT_MAX);
		pkts += k;
		n = (uint16_t)(n - k);
		if (!n)
			return;
	}
	sent = rte_ring_mp_enqueue_burst(q->ring, (void **)pkts, n, NULL);
	if (sent < n) {
		net_count_drop(vp->port, w, NET_DROP_RING_FULL, n - sent);
		rte_pktmbuf_free_bulk(pkts + sent, n - sent);
	}
	if (sent)
		wake_owner(w, q->owner);
}

bool net_rxq_needs_kick(const struct net_rxq *q)
{
	return rxq_pending(q);
}

unsigned int net_ring_src_poll(struct vu_poll_source *src)
{
	struct net_worker *w = container_of(src, struct net_worker, ring_src);

	if (__atomic_load_n(&w->may_sleep, __ATOMIC_RELAXED))
		__atomic_store_n(&w->may_sleep, false, __ATOMIC_RELAXED);
	return 0;
}

bool net_ring_src_prepare_sleep(struct vu_poll_source *src)
{
	struct net_worker *w = container_of(src, struct net_worker, ring_src);

	__atomic_store_n(&w->may_sleep, true, __ATOMIC_RELAXED);
	/* Pairs with the fence in wake_owner(). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (unsigned int i = 0; i < w->nrxqs; i++) {
		struct net_rxq *q = w->rxqs[i];

		if (!rxq_runs(q))
			continue;
		if (rxq_pending(q) && vu_vq_has_work(q->vq))
			return true;
	}
	return false;
}
