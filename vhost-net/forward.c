// SPDX-License-Identifier: MIT
/*
 * Forwarding of a burst that entered the switch: in xconnect mode port 0
 * and port 1 are wired together; in switch mode each frame's source is
 * learned and its destination looked up (switch.c), unknown and group
 * destinations are flooded to every other port that is up (a copy each,
 * since an egress may rewrite a packet's checksums).  The burst is sorted
 * by destination and each destination gets its share at once.
 *
 * Worker context: everything here runs on the worker that received the
 * burst, with that worker's scratch arrays and counters.
 */
#include <string.h>

#include <rte_cycles.h>

#include "net.h"
#include "switch.h"
#include "vu_util.h"

struct net_context net_ctx;

const char *const net_drop_names[NET_DROP_COUNT] = {
	[NET_DROP_BAD_HEADER] = "bad_header",
	[NET_DROP_RUNT] = "runt",
	[NET_DROP_TOO_BIG] = "too_big",
	[NET_DROP_NO_MBUF] = "no_mbuf",
	[NET_DROP_RING_FULL] = "ring_full",
	[NET_DROP_LINK_DOWN] = "link_down",
	[NET_DROP_TX_FULL] = "tx_full",
	[NET_DROP_FILTERED] = "filtered",
	[NET_DROP_OFFLOAD] = "offload",
};

void net_port_stats_sum(const struct net_port *port, struct net_port_stats *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (unsigned int w = 0; w <= net_ctx.nworkers; w++) {
		const struct net_port_stats *s = &port->stats[w];

		sum->rx_packets += __atomic_load_n(&s->rx_packets, __ATOMIC_RELAXED);
		sum->rx_bytes += __atomic_load_n(&s->rx_bytes, __ATOMIC_RELAXED);
		sum->tx_packets += __atomic_load_n(&s->tx_packets, __ATOMIC_RELAXED);
		sum->tx_bytes += __atomic_load_n(&s->tx_bytes, __ATOMIC_RELAXED);
		sum->flooded += __atomic_load_n(&s->flooded, __ATOMIC_RELAXED);
		for (unsigned int d = 0; d < NET_DROP_COUNT; d++)
			sum->drops[d] += __atomic_load_n(&s->drops[d], __ATOMIC_RELAXED);
	}
}

static void port_send(struct net_worker *w, struct net_port *p, uint16_t queue,
		      struct rte_mbuf **pkts, uint16_t n)
{
	if (p->is_uplink)
		net_uplink_send(w, p->uplink, pkts, n);
	else
		net_vport_send(w, p->vport, queue, pkts, n);
}

static inline bool port_up(const struct net_port *p)
{
	return p->is_uplink || __atomic_load_n(&p->vport->link_up, __ATOMIC_RELAXED);
}

static inline void out_add(struct net_worker *w, uint16_t port, struct rte_mbuf *m)
{
	if (!w->nout[port])
		w->touched[w->ntouched++] = port;
	w->out[port][w->nout[port]++] = m;
}

static void flood(struct net_worker *w, struct net_port *in, struct rte_mbuf *m)
{
	uint16_t targets[NET_MAX_PORTS], nt = 0;

	for (unsigned int i = 0; i < net_ctx.nports; i++) {
		struct net_port *p = net_ctx.ports[i];

		if (p != in && port_up(p))
			targets[nt++] = p->id;
	}
	net_stat_add(&net_stats(in, w)->flooded, 1);
	if (!nt) {
		rte_pktmbuf_free(m);
		return;
	}
	for (uint16_t i = 0; i + 1 < nt; i++) {
		struct rte_mbuf *c = rte_pktmbuf_copy(m, w->pool, 0, UINT32_MAX);

		if (!c) {
			net_count_drop(net_ctx.ports[targets[i]], w, NET_DROP_NO_MBUF, 1);
			continue;
		}
		out_add(w, targets[i], c);
	}
	out_add(w, targets[nt - 1], m);
}

void net_forward(struct net_worker *w, struct net_port *in, uint16_t queue,
		 struct rte_mbuf **pkts, uint16_t n)
{
	if (net_ctx.mode == NET_MODE_XCONNECT) {
		port_send(w, net_ctx.ports[in->id ^ 1], queue, pkts, n);
		return;
	}
	w->now_s = (uint32_t)(rte_rdtsc() / rte_get_tsc_hz());
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		uint16_t dst;

		if (vu_unlikely(m->data_len < 2 * RTE_ETHER_ADDR_LEN)) {
			net_count_drop(in, w, NET_DROP_RUNT, 1);
			rte_pktmbuf_free(m);
			continue;
		}
		switch (net_switch_decide(net_ctx.macs, rte_pktmbuf_mtod(m, const uint8_t *), in->id,
					  w->now_s, &dst)) {
		case NET_SWITCH_UNICAST:
			out_add(w, dst, m);
			break;
		case NET_SWITCH_FLOOD:
			flood(w, in, m);
			break;
		case NET_SWITCH_FILTER:
			net_count_drop(in, w, NET_DROP_FILTERED, 1);
			rte_pktmbuf_free(m);
			break;
		}
	}
	for (uint16_t i = 0; i < w->ntouched; i++) {
		uint16_t p = w->touched[i];

		port_send(w, net_ctx.ports[p], queue, w->out[p], w->nout[p]);
		w->nout[p] = 0;
	}
	w->ntouched = 0;
}
