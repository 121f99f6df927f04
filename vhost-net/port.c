// SPDX-License-Identifier: MIT
/*
 * The ports of the switch.
 *
 * Guest ports: a virtio-net device on the vhost-user library, one per
 * socket.  Features, config space (MAC, link status, queue pairs, MTU),
 * queue start/stop (buffers of each queue; the link is up while queues
 * run), SEND_RARP and NET_SET_MTU.  Queue 2k is the RX queue of pair k
 * and 2k + 1 its TX queue; both run on one worker, pairs of successive
 * ports on successive workers.  The control queue stays with the
 * front-end (QEMU and virtio-user implement it themselves).
 *
 * Uplinks: a DPDK ethdev probed from devargs, with its RX queues polled
 * as poll sources of the workers and one TX queue per worker (plus one for
 * the control thread) where the device has that many, locked otherwise.
 * What the device cannot offload is done in software before it transmits.
 */
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <rte_arp.h>
#include <rte_dev.h>
#include <rte_epoll.h>
#include <rte_ethdev.h>
#include <rte_log.h>

#include "net.h"
#include "offload.h"
#include "switch.h"
#include "vu_util.h"

const uint64_t net_vport_features =
	(1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |
	(1ull << VIRTIO_NET_F_MTU) | (1ull << VIRTIO_NET_F_MAC) |
	(1ull << VIRTIO_NET_F_GUEST_TSO4) | (1ull << VIRTIO_NET_F_GUEST_TSO6) |
	(1ull << VIRTIO_NET_F_HOST_TSO4) | (1ull << VIRTIO_NET_F_HOST_TSO6) |
	(1ull << VIRTIO_NET_F_MRG_RXBUF) | (1ull << VIRTIO_NET_F_STATUS) |
	(1ull << VIRTIO_NET_F_MQ) | (1ull << VIRTIO_NET_F_GUEST_ANNOUNCE) |
	(1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_IN_ORDER);

/* Smallest MTU a guest may ask for with NET_SET_MTU (IPv4's minimum). */
#define NET_MIN_MTU 68

/* ---- guest ports: the virtio-net device ---- */

static struct net_vport *to_vport(struct vu_dev *dev)
{
	return dev->priv;
}

static void update_link(struct net_vport *vp)
{
	bool up = vp->started > 0;

	if (up != __atomic_load_n(&vp->link_up, __ATOMIC_RELAXED)) {
		__atomic_store_n(&vp->link_up, up, __ATOMIC_RELEASE);
		vu_info("%s: link %s", vp->port->name, up ? "up" : "down");
	}
}

static uint32_t vport_get_config(struct vu_dev *dev, uint8_t *buf, uint32_t len)
{
	struct net_vport *vp = to_vport(dev);
	struct virtio_net_config c;
	uint32_t size = offsetof(struct virtio_net_config, mtu) + sizeof(c.mtu);

	memset(&c, 0, sizeof(c));
	memcpy(c.mac, vp->mac.addr_bytes, sizeof(c.mac));
	c.status = htole16(__atomic_load_n(&vp->link_up, __ATOMIC_ACQUIRE) ? VIRTIO_NET_S_LINK_UP : 0);
	c.max_virtqueue_pairs = htole16(vp->npairs);
	c.mtu = htole16(vp->mtu);
	if (len > size)
		len = size;
	memcpy(buf, &c, len);
	return len;
}

static int vport_queue_start(struct vu_dev *dev, struct vu_vq *vq)
{
	struct net_vport *vp = to_vport(dev);
	uint16_t pair = vq->index / 2;
	int ret;

	if (vq->index & 1) {
		ret = net_txq_start(&vp->txq[pair], vq);
		vq->priv = &vp->txq[pair];
	} else {
		ret = net_rxq_start(&vp->rxq[pair], vq);
		vq->priv = &vp->rxq[pair];
	}
	if (ret)
		return ret;
	vp->started++;
	update_link(vp);
	return 0;
}

static void vport_queue_stop(struct vu_dev *dev, struct vu_vq *vq)
{
	struct net_vport *vp = to_vport(dev);
	uint16_t pair = vq->index / 2;

	if (vq->index & 1)
		net_txq_stop(&vp->txq[pair]);
	else
		net_rxq_stop(&vp->rxq[pair]);
	vq->priv = NULL;
	if (vp->started)
		vp->started--;
	update_link(vp);
}

static unsigned int vport_queue_process(struct vu_dev *dev, struct vu_vq *vq, unsigned int budget)
{
	struct net_vport *vp = to_vport(dev);
	struct net_worker *w = net_worker_self();

	if (vq->index & 1)
		return net_guest_tx(w, &vp->txq[vq->index / 2], vq, budget);
	return net_guest_rx(w, &vp->rxq[vq->index / 2], vq, budget);
}

/* Buffers a guest posts on an RX queue are work only for packets waiting. */
static bool vport_queue_needs_kick(struct vu_dev *dev, struct vu_vq *vq)
{
	struct net_vport *vp = to_vport(dev);

	return (vq->index & 1) || net_rxq_needs_kick(&vp->rxq[vq->index / 2]);
}

static void vport_disconnected(struct vu_dev *dev)
{
	struct net_vport *vp = to_vport(dev);

	net_mac_flush_port(net_ctx.macs, vp->port->id);
	vp->started = 0;
	update_link(vp);
}

static uint16_t uplink_xmit(struct net_uplink *up, uint16_t txq, struct rte_mbuf **pkts, uint16_t n);

/* A RARP announcing mac (what QEMU's announce-self sends). */
static struct rte_mbuf *make_rarp(struct rte_mempool *pool, const uint8_t mac[6])
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	struct rte_ether_hdr *eth;
	struct rte_arp_hdr *arp;

	if (!m || !rte_pktmbuf_append(m, RTE_ETHER_MIN_LEN - RTE_ETHER_CRC_LEN)) {
		rte_pktmbuf_free(m);
		return NULL;
	}
	memset(rte_pktmbuf_mtod(m, void *), 0, m->data_len);
	eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	memset(&eth->dst_addr, 0xff, RTE_ETHER_ADDR_LEN);
	memcpy(&eth->src_addr, mac, RTE_ETHER_ADDR_LEN);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_RARP);
	arp = (struct rte_arp_hdr *)(eth + 1);
	arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	arp->arp_hlen = RTE_ETHER_ADDR_LEN;
	arp->arp_plen = 4;
	arp->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REVREQUEST);
	memcpy(&arp->arp_data.arp_sha, mac, RTE_ETHER_ADDR_LEN);
	memcpy(&arp->arp_data.arp_tha, mac, RTE_ETHER_ADDR_LEN);
	return m;
}

int net_vport_send_rarp(struct net_vport *vp, const uint8_t mac[6])
{
	const char *name = vp->port->name;
	uint32_t now = (uint32_t)(rte_rdtsc() / rte_get_tsc_hz());

	if (net_mac_is_group(mac)) {
		vu_warn("%s: SEND_RARP with group address %02x:%02x:%02x:%02x:%02x:%02x", name,
			mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
		return -EINVAL;
	}
	if (net_ctx.mode == NET_MODE_SWITCH)
		net_mac_learn(net_ctx.macs, mac, vp->port->id, now);
	for (unsigned int i = 0; i < net_ctx.nports; i++) {
		struct net_port *p = net_ctx.ports[i];
		struct rte_mbuf *m;
		uint32_t len;

		if (!p->is_uplink)
			continue;
		m = make_rarp(net_ctx.workers[0]->pool, mac);
		if (!m) {
			net_count_drop(p, NULL, NET_DROP_NO_MBUF, 1);
			continue;
		}
		len = m->pkt_len;
		if (uplink_xmit(p->uplink, (uint16_t)(net_ctx.nworkers % p->uplink->nb_txq), &m, 1)) {
			net_stat_add(&net_stats(p, NULL)->tx_packets, 1);
			net_stat_add(&net_stats(p, NULL)->tx_bytes, len);
		} else {
			net_count_drop(p, NULL, NET_DROP_TX_FULL, 1);
			rte_pktmbuf_free(m);
		}
	}
	vu_info("%s: announced %02x:%02x:%02x:%02x:%02x:%02x", name, mac[0], mac[1], mac[2],
		mac[3], mac[4], mac[5]);
	return 0;
}

static int vport_send_rarp(struct vu_dev *dev, const uint8_t mac[6])
{
	return net_vport_send_rarp(to_vport(dev), mac);
}

static int vport_set_mtu(struct vu_dev *dev, uint16_t mtu)
{
	struct net_vport *vp = to_vport(dev);

	/* Any 16-bit MTU fits NET_MAX_FRAME. */
	if (mtu < NET_MIN_MTU) {
		vu_warn("%s: NET_SET_MTU %u below %u", dev->name, mtu, NET_MIN_MTU);
		return -EINVAL;
	}
	vp->mtu = mtu;
	return 0;
}

static const struct vu_dev_ops vport_ops = {
	.features = net_vport_features,
	.protocol_features = (1ull << VU_PROTOCOL_F_RARP) | (1ull << VU_PROTOCOL_F_NET_MTU),
	.get_config = vport_get_config,
	.queue_start = vport_queue_start,
	.queue_stop = vport_queue_stop,
	.queue_process = vport_queue_process,
	.queue_needs_kick = vport_queue_needs_kick,
	.disconnected = vport_disconnected,
	.send_rarp = vport_send_rarp,
	.set_mtu = vport_set_mtu,
};

int net_vport_create(struct net_port *port, const struct net_vport_config *cfg,
		     struct vu_loop *loop)
{
	struct net_vport *vp = calloc(1, sizeof(*vp));
	unsigned int nw = net_ctx.nworkers, ord = port->id;
	char name[RTE_RING_NAMESIZE];

	if (!vp)
		return -ENOMEM;
	port->vport = vp;
	vp->port = port;
	vp->mac = cfg->mac;
	vp->mtu = NET_DEFAULT_MTU;
	vp->npairs = cfg->npairs;
	/* Queue i runs on pollers[i % (2 nw)]: pair k of this port on
	 * worker (ord + k) % nw, its RX and TX queue together. */
	for (unsigned int i = 0; i < 2 * nw; i++)
		vp->pollers[i] = net_ctx.workers[(ord + i / 2) % nw]->poller;
	for (uint16_t k = 0; k < vp->npairs; k++) {
		struct net_rxq *q = &vp->rxq[k];
		struct net_worker *w = net_ctx.workers[(ord + k) % nw];
		struct net_rxq **l;

		q->vp = vp;
		q->owner = w;
		vp->txq[k].vp = vp;
		vp->txq[k].pair = k;
		snprintf(name, sizeof(name), "net_rx_%u_%u", port->id, k);
		q->ring = rte_ring_create(name, NET_RING_SIZE, (int)rte_lcore_to_socket_id(w->lcore),
					  RING_F_SC_DEQ);
		if (!q->ring) {
			vu_err("%s: cannot create a ring: %s", port->name, rte_strerror(rte_errno));
			return -ENOMEM;
		}
		l = realloc(w->rxqs, sizeof(*l) * (w->nrxqs + 1));
		if (!l)
			return -ENOMEM;
		w->rxqs = l;
		l[w->nrxqs++] = q;
	}
	struct vu_dev_config dcfg = {
		.name = port->name,
		.num_queues = (uint16_t)(2 * vp->npairs),
		.pollers = vp->pollers,
		.npollers = 2 * nw,
		.ops = &vport_ops,
		.priv = vp,
	};
	vp->vdev = vu_dev_create(&dcfg);
	if (!vp->vdev) {
		vu_err("%s: cannot create the device: %s", port->name, strerror(errno));
		return -errno;
	}
	/* Packets may be lost; nothing to resubmit after a reconnect. */
	vp->vdev->protocol_features_offered &= ~(1ull << VU_PROTOCOL_F_INFLIGHT_SHMFD);
	for (uint16_t k = 0; k < vp->npairs; k++)
		vp->rxq[k].vq = &vp->vdev->vqs[2 * k];
	struct vu_endpoint_config ecfg = {
		.mode = cfg->client ? VU_EP_CLIENT : VU_EP_SERVER,
		.path = cfg->socket_path,
		.socket_mode = cfg->socket_mode,
	};
	vp->ep = vu_endpoint_create(loop, vp->vdev, &ecfg);
	if (!vp->ep)
		return -errno;
	vu_info("%s: %s%s, MAC %02x:%02x:%02x:%02x:%02x:%02x, %u queue pair%s", port->name,
		cfg->socket_path, cfg->client ? " (client)" : "", vp->mac.addr_bytes[0],
		vp->mac.addr_bytes[1], vp->mac.addr_bytes[2], vp->mac.addr_bytes[3],
		vp->mac.addr_bytes[4], vp->mac.addr_bytes[5], vp->npairs, vp->npairs > 1 ? "s" : "");
	return 0;
}

void net_vport_destroy(struct net_port *port)
{
	struct net_vport *vp = port->vport;

	if (!vp)
		return;
	vu_endpoint_destroy(vp->ep);
	vu_dev_destroy(vp->vdev);
	for (uint16_t k = 0; k < vp->npairs; k++) {
		struct rte_mbuf *m[NET_BURST];
		unsigned int n;

		if (!vp->rxq[k].ring)
			continue;
		while ((n = rte_ring_sc_dequeue_burst(vp->rxq[k].ring, (void **)m, NET_BURST, NULL)))
			rte_pktmbuf_free_bulk(m, n);
		rte_ring_free(vp->rxq[k].ring);
	}
	free(vp);
	port->vport = NULL;
}

/* ---- uplinks ---- */

/*
 * Transmit n prepared packets on TX queue txq (locked when queues are
 * shared), retrying a full queue a little; returns how many went out.
 * The caller still owns pkts[sent..n).
 */
static uint16_t uplink_xmit(struct net_uplink *up, uint16_t txq, struct rte_mbuf **pkts, uint16_t n)
{
	uint16_t sent = 0;

	if (up->txq_shared)
		rte_spinlock_lock(&up->txq_lock[txq]);
	for (unsigned int tries = 0; sent < n && tries < 8; tries++)
		sent += rte_eth_tx_burst(up->eth_port, txq, pkts + sent, (uint16_t)(n - sent));
	if (up->txq_shared)
		rte_spinlock_unlock(&up->txq_lock[txq]);
	return sent;
}

static void uplink_flush(struct net_worker *w, struct net_uplink *up, struct rte_mbuf **pkts,
			 uint16_t n, bool offloads)
{
	struct net_port_stats *st = net_stats(up->port, w);
	uint16_t txq = (uint16_t)(w->index % up->nb_txq), sent = 0;
	uint64_t bytes = 0;

	while (offloads && sent < n) {
		/* Drivers fix up what their hardware needs (pseudo-headers). */
		uint16_t ok = rte_eth_tx_prepare(up->eth_port, txq, pkts + sent, (uint16_t)(n - sent));

		sent = (uint16_t)(sent + ok);
		if (sent == n)
			break;
		net_count_drop(up->port, w, NET_DROP_OFFLOAD, 1);
		rte_pktmbuf_free(pkts[sent]);
		memmove(pkts + sent, pkts + sent + 1, sizeof(*pkts) * (size_t)(n - sent - 1));
		n--;
	}
	for (uint16_t i = 0; i < n; i++)
		bytes += pkts[i]->pkt_len;
	sent = uplink_xmit(up, txq, pkts, n);
	if (sent < n) {
		for (uint16_t i = sent; i < n; i++)
			bytes -= pkts[i]->pkt_len;
		net_count_drop(up->port, w, NET_DROP_TX_FULL, n - sent);
		rte_pktmbuf_free_bulk(pkts + sent, n - sent);
	}
	net_stat_add(&st->tx_packets, sent);
	net_stat_add(&st->tx_bytes, bytes);
}

void net_uplink_send(struct net_worker *w, struct net_uplink *up, struct rte_mbuf **pkts,
		     uint16_t n)
{
	const unsigned int max = RTE_DIM(w->egress);
	unsigned int cnt = 0;
	bool offloads = false;
	uint16_t plain = 0;

	/* The usual burst, without offload requests or segments the port
	 * cannot take, goes out as it is. */
	while (n <= NET_BURST && plain < n && !net_offload_egress_needed(pkts[plain]) &&
	       (pkts[plain]->nb_segs == 1 || up->multi_seg))
		plain++;
	if (plain == n) {
		if (n)
			uplink_flush(w, up, pkts, n, false);
		return;
	}
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		enum net_drop why;
		int k = 1;

		if (m->ol_flags & (RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_TCP_SEG)) {
			k = net_offload_egress(m, up->egress_capa, &w->gso, &w->egress[cnt], max - cnt, &why);
			if (k < 0) {
				net_count_drop(up->port, w, why, 1);
				continue;
			}
		} else {
			w->egress[cnt] = m;
		}
		for (int j = 0; j < k; j++) {
			struct rte_mbuf *e = w->egress[cnt];

			if (vu_unlikely(e->nb_segs > 1 && !up->multi_seg)) {
				net_count_drop(up->port, w, NET_DROP_TOO_BIG, 1);
				rte_pktmbuf_free(e);
				memmove(&w->egress[cnt], &w->egress[cnt + 1], sizeof(*pkts) * (size_t)(k - j - 1));
				continue;
			}
			offloads |= (e->ol_flags & (RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_TX_IP_CKSUM |
						    RTE_MBUF_F_TX_TCP_SEG)) != 0;
			cnt++;
		}
		/* Room for the next packet's segments, or send what we have. */
		if (max - cnt < NET_GSO_MAX_SEGS || cnt >= NET_BURST) {
			uplink_flush(w, up, w->egress, (uint16_t)cnt, offloads);
			cnt = 0;
			offloads = false;
		}
	}
	if (cnt)
		uplink_flush(w, up, w->egress, (uint16_t)cnt, offloads);
}

static unsigned int uplink_rx_poll(struct vu_poll_source *src)
{
	struct net_uplink_rxq *rq = container_of(src, struct net_uplink_rxq, src);
	struct net_port *port = rq->up->port;
	struct rte_mbuf *buf[NET_BURST], **pkts = buf;
	struct net_port_stats *st;
	uint64_t bytes = 0;
	uint16_t n;

	if (rq->intr_armed) {
		struct rte_epoll_event ev[4];

		/* Awake again: interrupts off, their counters drained. */
		rq->intr_armed = false;
		rte_eth_dev_rx_intr_disable(rq->up->eth_port, rq->queue);
		rte_epoll_wait(rq->intr_epfd, ev, RTE_DIM(ev), 0);
	}
	if (rq->nstash) {
		pkts = rq->stash;
		n = rq->nstash;
		rq->nstash = 0;
	} else {
		n = rte_eth_rx_burst(rq->up->eth_port, rq->queue, pkts, NET_BURST);
	}
	if (!n)
		return 0;
	for (uint16_t i = 0; i < n; i++)
		bytes += pkts[i]->pkt_len;
	st = net_stats(port, rq->w);
	net_stat_add(&st->rx_packets, n);
	net_stat_add(&st->rx_bytes, bytes);
	net_forward(rq->w, port, rq->queue, pkts, n);
	return n;
}

/*
 * With RX interrupts, arm the queue's interrupt, then receive once more:
 * a packet that arrived before it was armed raised nothing, so it is kept
 * for the next poll and the worker stays awake.  Without them an ethdev
 * RX queue cannot wake a sleeping worker: keep it polling.
 */
static bool uplink_rx_prepare_sleep(struct vu_poll_source *src)
{
	struct net_uplink_rxq *rq = container_of(src, struct net_uplink_rxq, src);

	if (rq->intr_epfd < 0 || rq->nstash)
		return true;
	if (!rq->intr_armed) {
		/* -ENOTSUP: always on (net_tap: the tap fd itself). */
		int ret = rte_eth_dev_rx_intr_enable(rq->up->eth_port, rq->queue);

		if (ret < 0 && ret != -ENOTSUP)
			return true;
		rq->intr_armed = true;
	}
	rq->nstash = rte_eth_rx_burst(rq->up->eth_port, rq->queue, rq->stash, NET_BURST);
	return rq->nstash > 0;
}

/* The queue's interrupt in an epoll set of its own, or -1 without one. */
static int uplink_rx_intr_epfd(struct net_uplink *up, uint16_t q)
{
	int epfd = epoll_create1(EPOLL_CLOEXEC);

	if (epfd < 0)
		return -1;
	if (rte_eth_dev_rx_intr_ctl_q(up->eth_port, q, epfd, RTE_INTR_EVENT_ADD, NULL)) {
		close(epfd);
		return -1;
	}
	rte_eth_dev_rx_intr_disable(up->eth_port, q);
	return epfd;
}

/*
 * DPDK's log captured while it tries things that may fail and be retried
 * or explained in one line of ours: its first line is kept.
 */
struct log_capture {
	FILE *old, *f;
	char *buf;
	size_t len;
};

static void capture_begin(struct log_capture *c)
{
	c->old = rte_log_get_stream();
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
	if (c->f)
		rte_openlog_stream(c->f);
}

/* Stop capturing; the first line logged goes into line (or ""). */
static void capture_end(struct log_capture *c, char *line, size_t len)
{
	const char *l;

	if (c->f) {
		rte_openlog_stream(c->old);
		fclose(c->f);
	}
	l = c->buf ? c->buf + strspn(c->buf, " \n") : "";
	snprintf(line, len, "%.*s", (int)strcspn(l, "\n"), l);
	free(c->buf);
}

/* Probe devargs; on failure why says what DPDK said first (the cause). */
static int probe(const char *devargs, char *why, size_t whylen)
{
	struct log_capture cap;
	char line[256];
	int ret;

	capture_begin(&cap);
	ret = rte_dev_probe(devargs);
	capture_end(&cap, line, sizeof(line));
	if (ret == -EEXIST)
		ret = 0;        /* a PCI device EAL probed at start-up */
	if (ret)
		snprintf(why, whylen, "cannot probe: %s", *line ? line : rte_strerror(-ret));
	return ret;
}

/*
 * Configure the queues: one RX queue per worker and a TX queue per worker
 * plus the control thread's, or, for devices that want as many RX as TX
 * queues (net_tap), the larger or else the smaller number of both (a
 * shared TX queue is locked).  On failure line gets what DPDK said first.
 */
static int configure(struct net_uplink *up, const struct rte_eth_dev_info *info,
		     const struct rte_eth_conf *conf, char *line, size_t len)
{
	uint16_t rx = up->nb_rxq, tx = up->nb_txq, both = RTE_MIN(info->max_rx_queues, info->max_tx_queues);
	const uint16_t tries[][2] = {
		{ rx, tx }, { RTE_MIN(tx, both), RTE_MIN(tx, both) }, { RTE_MIN(rx, both), RTE_MIN(rx, both) },
		{ 1, 1 },
	};
	struct log_capture cap;
	int ret = -EINVAL;

	capture_begin(&cap);
	for (unsigned int i = 0; i < RTE_DIM(tries); i++) {
		struct rte_eth_conf c = *conf;

		if (!tries[i][0] || !tries[i][1])
			continue;
		if (tries[i][0] == 1)
			c.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
		ret = rte_eth_dev_configure(up->eth_port, tries[i][0], tries[i][1], &c);
		if (!ret) {
			up->nb_rxq = tries[i][0];
			up->nb_txq = tries[i][1];
			break;
		}
	}
	capture_end(&cap, line, len);
	return ret;
}

/*
 * Configure the port with conf (queue counts as configure() finds them),
 * set up its queues on the workers' pools and start it.  0, or -errno
 * with why set.
 */
static int start_port(struct net_uplink *up, const struct rte_eth_conf *conf, char *why,
		      size_t whylen)
{
	unsigned int nw = net_ctx.nworkers;
	uint16_t rxd = 1024, txd = 1024;
	struct rte_eth_dev_info info;
	struct log_capture cap;
	char line[256];
	int ret;

	ret = rte_eth_dev_info_get(up->eth_port, &info);
	if (ret) {
		snprintf(why, whylen, "cannot get device info: %s", rte_strerror(-ret));
		return ret;
	}
	ret = configure(up, &info, conf, line, sizeof(line));
	if (ret) {
		snprintf(why, whylen, "cannot configure %u RX and %u TX queues: %s", up->nb_rxq,
			 up->nb_txq, *line ? line : rte_strerror(-ret));
		return ret;
	}
	ret = rte_eth_dev_adjust_nb_rx_tx_desc(up->eth_port, &rxd, &txd);
	if (ret) {
		snprintf(why, whylen, "cannot size its rings: %s", rte_strerror(-ret));
		return ret;
	}
	for (uint16_t q = 0; q < up->nb_rxq && !ret; q++) {
		struct net_worker *w = net_ctx.workers[q % nw];

		ret = rte_eth_rx_queue_setup(up->eth_port, q, rxd,
					     rte_lcore_to_socket_id(w->lcore), NULL, w->pool);
	}
	for (uint16_t q = 0; q < up->nb_txq && !ret; q++)
		ret = rte_eth_tx_queue_setup(up->eth_port, q, txd,
					     rte_lcore_to_socket_id(net_ctx.workers[q % nw]->lcore), NULL);
	if (ret) {
		snprintf(why, whylen, "cannot set up queues: %s", rte_strerror(-ret));
		return ret;
	}
	/* Quiet: net_tap complains that it has no secondary processes to tell. */
	capture_begin(&cap);
	ret = rte_eth_dev_start(up->eth_port);
	capture_end(&cap, line, sizeof(line));
	if (ret)
		snprintf(why, whylen, "cannot start: %s", *line ? line : rte_strerror(-ret));
	return ret;
}

int net_uplink_create(struct net_port *port, const char *devargs, char *why, size_t whylen)
{
	struct net_uplink *up = calloc(1, sizeof(*up));
	unsigned int nw = net_ctx.nworkers;
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	struct rte_dev_iterator it;
	bool found = false, sleeps = true;
	uint16_t pid;
	int ret;

	if (!up) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	port->uplink = up;
	up->port = port;
	up->devargs = devargs;
	ret = probe(devargs, why, whylen);
	if (ret)
		return ret;
	RTE_ETH_FOREACH_MATCHING_DEV(pid, devargs, &it) {
		if (!found) {
			up->eth_port = pid;
			found = true;
		}
	}
	if (!found) {
		snprintf(why, whylen, "no ethernet device matches");
		return -ENODEV;
	}
	up->have_port = true;
	ret = rte_eth_dev_info_get(up->eth_port, &info);
	if (ret) {
		snprintf(why, whylen, "cannot get device info: %s", rte_strerror(-ret));
		return ret;
	}
	up->nb_rxq = (uint16_t)RTE_MIN(nw, info.max_rx_queues);
	up->nb_txq = (uint16_t)RTE_MIN(nw + 1, info.max_tx_queues);
	if (!up->nb_rxq || !up->nb_txq) {
		snprintf(why, whylen, "device has no queues");
		return -ENODEV;
	}
	memset(&conf, 0, sizeof(conf));
	conf.rxmode.offloads = info.rx_offload_capa &
			       (RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM |
				RTE_ETH_RX_OFFLOAD_TCP_CKSUM);
	conf.txmode.offloads = info.tx_offload_capa &
			       (RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM |
				RTE_ETH_TX_OFFLOAD_TCP_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_TSO |
				RTE_ETH_TX_OFFLOAD_MULTI_SEGS);
	if (up->nb_rxq > 1 && info.flow_type_rss_offloads) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf = info.flow_type_rss_offloads &
						   (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP);
	}
	/* RX interrupts let idle workers sleep; not every PMD has them. */
	conf.intr_conf.rxq = 1;
	ret = start_port(up, &conf, why, whylen);
	if (ret) {
		char first[256];

		snprintf(first, sizeof(first), "%s", why);
		conf.intr_conf.rxq = 0;
		rte_eth_dev_stop(up->eth_port);
		ret = start_port(up, &conf, why, whylen);
		if (ret == 0)
			vu_info("%s: started without RX interrupts (%s)", devargs, first);
	}
	if (ret)
		return ret;
	up->txq_shared = up->nb_txq < nw + 1;
	for (unsigned int q = 0; q < up->nb_txq; q++)
		rte_spinlock_init(&up->txq_lock[q]);
	up->multi_seg = conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
	if ((conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_TCP_CKSUM) &&
	    (conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_UDP_CKSUM))
		up->egress_capa |= NET_CAN_CSUM;
	if (conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM)
		up->egress_capa |= NET_CAN_IPCSUM;
	/* IPv6 TSO is done here: some PMDs (net_tap) segment IPv4 only. */
	if ((up->egress_capa & NET_CAN_CSUM) && (conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_TCP_TSO))
		up->egress_capa |= NET_CAN_TSO4;
	ret = rte_eth_promiscuous_enable(up->eth_port);
	if (ret && ret != -ENOTSUP)
		vu_warn("%s: cannot enable promiscuous mode: %s", devargs, rte_strerror(-ret));
	for (uint16_t q = 0; q < up->nb_rxq; q++) {
		struct net_uplink_rxq *rq = &up->rxq[q];

		rq->src.poll = uplink_rx_poll;
		rq->src.prepare_sleep = uplink_rx_prepare_sleep;
		rq->up = up;
		rq->queue = q;
		rq->intr_epfd = conf.intr_conf.rxq ? uplink_rx_intr_epfd(up, q) : -1;
		rq->src.fd = rq->intr_epfd;
		sleeps = sleeps && rq->intr_epfd >= 0;
		rq->w = net_ctx.workers[q % nw];
		ret = vu_poller_add_source(rq->w->poller, &rq->src);
		if (ret) {
			snprintf(why, whylen, "cannot poll RX queue %u: %s", q, strerror(-ret));
			return ret;
		}
	}
	vu_info("%s: %s, ethdev %u, %u RX / %u TX queues, %s, offloads%s%s%s%s", port->name,
		devargs, up->eth_port, up->nb_rxq, up->nb_txq,
		sleeps ? "RX interrupts" : "no RX interrupts (its workers never sleep)",
		up->egress_capa & NET_CAN_CSUM ? " csum" : "",
		up->egress_capa & NET_CAN_IPCSUM ? " ipcsum" : "",
		up->egress_capa & NET_CAN_TSO4 ? " tso4" : "", up->multi_seg ? " multi-seg" : "");
	return 0;
}

void net_uplink_destroy(struct net_port *port)
{
	struct net_uplink *up = port->uplink;
	struct rte_eth_dev_info info;

	if (!up)
		return;
	if (up->have_port && rte_eth_dev_info_get(up->eth_port, &info) == 0) {
		rte_eth_dev_stop(up->eth_port);
		rte_eth_dev_close(up->eth_port);
	}
	for (unsigned int q = 0; q < RTE_DIM(up->rxq); q++)
		if (up->rxq[q].up) {
			rte_pktmbuf_free_bulk(up->rxq[q].stash, up->rxq[q].nstash);
			if (up->rxq[q].intr_epfd >= 0)
				close(up->rxq[q].intr_epfd);
		}
	free(up);
	port->uplink = NULL;
}
