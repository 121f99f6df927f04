/* SPDX-License-Identifier: MIT */
/*
 * vhost-net internals: the ports of the switch (guests' virtio-net devices
 * served over vhost-user, and DPDK ethdev uplinks), the workers that poll
 * them (one per DPDK lcore, each running a vu_poller), per-port counters,
 * and the functions the modules offer each other:
 *
 *   main.c     command line, EAL, lcores, control loop, counters report
 *   port.c     vhost-user ports (the virtio-net device) and uplinks
 *   txrx.c     guest TX (chains -> mbufs) and guest RX (mbufs -> chains)
 *   forward.c  where a burst goes: xconnect or the learning switch, flooding,
 *              delivery to other workers' guest queues through rte_rings
 *   offload.c  virtio_net_hdr <-> mbuf offload flags, software fallbacks
 *   switch.c   the MAC learning table
 *
 * Threads: the control thread (EAL main lcore) runs the vhost-user sockets
 * and the device callbacks of struct vu_dev_ops except queue_process; each
 * worker runs its poller on its own lcore.  A guest queue is served by one
 * worker only (the library's rule); another worker hands it packets through
 * the queue's multi-producer, single-consumer rte_ring.
 */
#ifndef NET_H
#define NET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <linux/virtio_net.h>

#include <rte_ether.h>
#include <rte_gso.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_spinlock.h>

#include "vu_dev.h"
#include "vu_poller.h"
#include "vu_server.h"

struct net_mac_table;

#define NET_BURST 32
#define NET_MAX_PORTS 64
#define NET_MAX_WORKERS 64
#define NET_MAX_PAIRS (VU_DEV_MAX_QUEUES / 2)
/* Packets waiting for one guest RX queue (power of two). */
#define NET_RING_SIZE 1024
/* Largest frame accepted from a guest or given to one: a 64 KiB IP packet
 * behind an Ethernet header and one VLAN tag (SECURITY.md 19). */
#define NET_MAX_FRAME (65535 + RTE_ETHER_HDR_LEN + 4)
/* Segments a software-segmented TCP packet may become. */
#define NET_GSO_MAX_SEGS 1024
/* Smallest gso_size accepted from a guest (Linux's TCP_MIN_MSS is 88). */
#define NET_GSO_MIN_SIZE 64
/* Descriptor segments of a guest TX chain (Linux: MAX_SKB_FRAGS + 2, split
 * at region ends), and of one guest RX buffer. */
#define NET_TX_CHAIN_IOV 256
#define NET_RX_CHAIN_IOV 32
/* Guest RX buffers one packet may use (mergeable RX buffers). */
#define NET_RX_MAX_CHAINS 64
#define NET_DEFAULT_MTU 1500
/* Seconds a learned MAC address stays in the table without traffic. */
#define NET_MAC_AGING_S 300

/* Why a packet was dropped; counted per port (see net_drop_names). */
enum net_drop {
	NET_DROP_BAD_HEADER,   /* guest TX: virtio_net_hdr rejected (SECURITY.md 19) */
	NET_DROP_RUNT,         /* shorter than an Ethernet header */
	NET_DROP_TOO_BIG,      /* larger than the mbuf chain or the guest's buffers */
	NET_DROP_NO_MBUF,      /* mbuf pool empty */
	NET_DROP_RING_FULL,    /* the destination guest queue's backlog is full */
	NET_DROP_LINK_DOWN,    /* destination guest has no running RX queue */
	NET_DROP_TX_FULL,      /* uplink TX queue full */
	NET_DROP_FILTERED,     /* destination is the port it came from */
	NET_DROP_OFFLOAD,      /* software checksum or segmentation impossible */
	NET_DROP_COUNT
};

extern const char *const net_drop_names[NET_DROP_COUNT];

/*
 * Counters of one port kept by one worker (single writer, relaxed
 * stores; readers add up the workers' copies).  rx is what the port
 * brought into the switch (a guest's TX queue, an uplink's RX queue), tx
 * what the switch delivered to it.  Bytes are frame bytes, without the
 * virtio_net_hdr, like testpmd and the kernel count them.
 */
struct net_port_stats {
	uint64_t rx_packets;
	uint64_t rx_bytes;
	uint64_t tx_packets;
	uint64_t tx_bytes;
	uint64_t flooded;
	uint64_t drops[NET_DROP_COUNT];
} __rte_cache_aligned;

static inline void net_stat_add(uint64_t *counter, uint64_t v)
{
	__atomic_store_n(counter, *counter + v, __ATOMIC_RELAXED);
}

struct net_worker;
struct net_port;

/* A position in a ring: split: the free-running avail index; packed: a
 * slot and its wrap counter. */
struct net_ring_pos {
	uint16_t idx;
	bool wrap;
};

/* A guest RX buffer taken from the ring and not yet used. */
struct net_rx_chain {
	struct vu_chain c;
	struct net_ring_pos start;     /* the ring position it was taken at */
	uint64_t bad_after;            /* the queue's stats.bad_chains just after */
	struct iovec iov[NET_RX_CHAIN_IOV];
	uint64_t gpa[NET_RX_CHAIN_IOV];
};

/* Guest RX queue (virtqueue 2k): delivery to the guest. */
struct net_rxq {
	struct net_vport *vp;
	struct vu_vq *vq;
	struct net_worker *owner;      /* the worker that polls vq */
	struct rte_ring *ring;         /* MP/SC: packets for this queue */
	/* ---- owner worker only ---- */
	struct rte_mbuf *stash[NET_BURST]; /* dequeued from ring, not prepared */
	uint16_t stash_head, stash_n;
	struct rte_mbuf **pend;        /* prepared for this guest (NET_GSO_MAX_SEGS) */
	uint16_t pend_head, pend_n;
	struct net_rx_chain *chains;   /* NET_RX_MAX_CHAINS, while started */
	uint16_t held_head, held_n;    /* popped, unused chains: chains[head..head+n) */
	uint32_t held_slots;           /* ring slots the held chains took */
	/* Negotiated, set when the queue starts (control thread, quiesced). */
	uint8_t hdr_len;
	bool mrg_rxbuf;
	uint64_t egress_capa;          /* NET_CAN_* of this guest */
	/* Packets delivered on this queue (owner worker writes, relaxed;
	 * kept across restarts, like the port's counters). */
	uint64_t packets;
};

/* Guest TX queue (virtqueue 2k + 1): packets from the guest. */
struct net_txq {
	struct net_vport *vp;
	uint16_t pair;
	struct vu_chain chain;
	struct iovec *iov;             /* NET_TX_CHAIN_IOV, while started */
	uint64_t *gpa;
	uint8_t hdr_len;
	uint64_t features;
	/* Packets taken from this queue into the switch (its worker writes,
	 * relaxed; kept across restarts). */
	uint64_t packets;
};

/* A guest's virtio-net device on a vhost-user socket. */
struct net_vport {
	struct net_port *port;
	struct vu_dev *vdev;
	struct vu_endpoint *ep;
	/* Queue i runs on pollers[i % (2 * nworkers)]: a pair on one worker. */
	struct vu_poller *pollers[2 * NET_MAX_WORKERS];
	struct rte_ether_addr mac;
	uint16_t mtu;
	uint16_t npairs;
	unsigned int started;          /* queues started (control thread) */
	bool link_up;                  /* atomic: some queue runs */
	struct net_rxq rxq[NET_MAX_PAIRS];
	struct net_txq txq[NET_MAX_PAIRS];
};

/* An uplink RX queue as a poll source of the worker that polls it. */
struct net_uplink_rxq {
	struct vu_poll_source src;     /* first: the poller hands us &src */
	struct net_uplink *up;
	struct net_worker *w;
	uint16_t queue;
	/* RX interrupts, where the PMD has them: an epoll set holding the
	 * queue's interrupt fd (src.fd), or -1 (the worker never sleeps). */
	int intr_epfd;
	bool intr_armed;               /* enabled by prepare_sleep */
	uint16_t nstash;               /* received while arming, not yet forwarded */
	struct rte_mbuf *stash[NET_BURST];
};

/* A DPDK ethdev port. */
struct net_uplink {
	struct net_port *port;
	const char *devargs;
	uint16_t eth_port;
	bool have_port;                /* eth_port was found */
	uint16_t nb_rxq, nb_txq;
	uint64_t egress_capa;          /* NET_CAN_* the port offloads */
	bool multi_seg;
	bool txq_shared;               /* fewer TX queues than senders: lock */
	rte_spinlock_t txq_lock[NET_MAX_WORKERS + 1];
	struct net_uplink_rxq rxq[NET_MAX_WORKERS];
};

struct net_port {
	uint16_t id;
	bool is_uplink;
	char name[64];
	struct net_port_stats *stats;  /* [nworkers + 1]; the last: control thread */
	struct net_vport *vport;
	struct net_uplink *uplink;
};

/* One poller on one lcore. */
struct net_worker {
	unsigned int index;
	unsigned int lcore;
	int cpu;
	struct vu_poller *poller;
	struct rte_mempool *pool;
	/* Cross-worker wake-up: true while the poller may sleep (seq_cst). */
	struct vu_poll_source ring_src;
	bool may_sleep;
	struct net_rxq **rxqs;         /* guest RX queues this worker serves */
	unsigned int nrxqs;
	struct rte_gso_ctx gso;
	uint32_t now_s;                /* coarse clock for MAC aging */
	/* Forwarding scratch: packets per destination port of one burst. */
	struct rte_mbuf *out[NET_MAX_PORTS][NET_BURST];
	uint16_t nout[NET_MAX_PORTS];
	uint16_t touched[NET_MAX_PORTS];
	uint16_t ntouched;
	struct rte_mbuf *egress[NET_GSO_MAX_SEGS + NET_BURST];
} __rte_cache_aligned;

enum net_mode {
	NET_MODE_SWITCH,
	NET_MODE_XCONNECT,
};

/* The program's state (one instance, net_ctx). */
struct net_context {
	enum net_mode mode;
	struct net_port *ports[NET_MAX_PORTS];
	unsigned int nports;
	struct net_worker *workers[NET_MAX_WORKERS];
	unsigned int nworkers;
	struct net_worker *by_lcore[RTE_MAX_LCORE];
	struct net_mac_table *macs;
	struct rte_mempool *pools[RTE_MAX_NUMA_NODES];
	struct rte_mempool *indirect_pool;
};

extern struct net_context net_ctx;

/* Offload abilities of an egress port (offload.c). */
#define NET_CAN_CSUM   (1u << 0)   /* TCP/UDP checksum left partial */
#define NET_CAN_TSO4   (1u << 1)
#define NET_CAN_TSO6   (1u << 2)
#define NET_CAN_IPCSUM (1u << 3)

/* ---- port.c ---- */

/* Virtio-net feature bits offered to guests. */
extern const uint64_t net_vport_features;

struct net_vport_config {
	const char *socket_path;
	bool client;
	struct rte_ether_addr mac;
	uint16_t npairs;
	mode_t socket_mode;
};

/*
 * Control thread, before the workers run: create port `id` as a guest
 * port serving cfg on loop.  0 or -errno (a line was logged).
 */
int net_vport_create(struct net_port *port, const struct net_vport_config *cfg,
		     struct vu_loop *loop);
void net_vport_destroy(struct net_port *port);

/*
 * SEND_RARP (control thread): the guest moved here; tell the network.  The
 * switch learns mac on this port, and every uplink sends a RARP from mac
 * on the control thread's TX queue.  0 or -EINVAL for a group address.
 */
int net_vport_send_rarp(struct net_vport *vp, const uint8_t mac[6]);

/*
 * Control thread, before the workers run: probe devargs (rte_dev_probe),
 * configure and start the ethdev with one RX queue per worker (as far as
 * it has queues) and one TX queue per worker plus one for the control
 * thread, and add its RX queues as poll sources of the workers.
 * 0 or -errno; *why gets a one-line reason.
 */
int net_uplink_create(struct net_port *port, const char *devargs, char *why, size_t whylen);
void net_uplink_destroy(struct net_port *port);

/* Worker: send pkts out of an uplink (offload fallbacks, counting); takes them. */
void net_uplink_send(struct net_worker *w, struct net_uplink *up, struct rte_mbuf **pkts,
		     uint16_t n);

/* ---- txrx.c ---- */

/* Poller: process a guest TX / RX queue (vu_dev_ops.queue_process). */
unsigned int net_guest_tx(struct net_worker *w, struct net_txq *q, struct vu_vq *vq,
			  unsigned int budget);
unsigned int net_guest_rx(struct net_worker *w, struct net_rxq *q, struct vu_vq *vq,
			  unsigned int budget);
/* Control thread, queue quiesced: allocate / free a queue's buffers. */
int net_rxq_start(struct net_rxq *q, struct vu_vq *vq);
void net_rxq_stop(struct net_rxq *q);
int net_txq_start(struct net_txq *q, struct vu_vq *vq);
void net_txq_stop(struct net_txq *q);

/*
 * Worker: hand pkts to a guest port, on the RX queue of pair `pair` (or
 * the next one that runs).  Takes the packets (dropped ones are counted
 * and freed).
 */
void net_vport_send(struct net_worker *w, struct net_vport *vp, uint16_t pair,
		    struct rte_mbuf **pkts, uint16_t n);

/*
 * Poller, before sleeping: whether the guest must kick this RX queue: only
 * while packets wait for its buffers (vu_dev_ops.queue_needs_kick).
 */
bool net_rxq_needs_kick(const struct net_rxq *q);

/* Worker's poll source that lets other workers wake it (see txrx.c). */
unsigned int net_ring_src_poll(struct vu_poll_source *src);
bool net_ring_src_prepare_sleep(struct vu_poll_source *src);

/* ---- forward.c ---- */

/* Worker: forward a burst that entered the switch at port `in`. */
void net_forward(struct net_worker *w, struct net_port *in, uint16_t queue,
		 struct rte_mbuf **pkts, uint16_t n);

/* The worker running on the calling lcore (NULL on the control thread). */
static inline struct net_worker *net_worker_self(void)
{
	unsigned int lc = rte_lcore_id();

	return lc < RTE_MAX_LCORE ? net_ctx.by_lcore[lc] : NULL;
}

/* The counters a thread writes for port: its worker's slot or the control slot. */
static inline struct net_port_stats *net_stats(struct net_port *port, const struct net_worker *w)
{
	return &port->stats[w ? w->index : net_ctx.nworkers];
}

static inline void net_count_drop(struct net_port *port, const struct net_worker *w,
				  enum net_drop why, uint64_t n)
{
	net_stat_add(&net_stats(port, w)->drops[why], n);
}

/* Sum of the counters of port over every thread. */
void net_port_stats_sum(const struct net_port *port, struct net_port_stats *sum);

#endif
