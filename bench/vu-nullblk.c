// SPDX-License-Identifier: MIT
/*
 * vu-nullblk: a do-nothing vhost-user-blk back-end on common/, for the
 * ceiling of the benchmark harness (shared/PERF.md "The ceiling").  It
 * offers a virtio-blk config space (capacity from --size), busy-polls its
 * queues, writes the status byte of every chain (VIRTIO_BLK_S_OK) and
 * completes it.  No request is parsed or validated and no data moves.
 *
 * Two ring paths:
 *  - default: the library's walker (vu_vq_pop: descriptors copied and
 *    checked, iovecs mapped), then vu_vq_push: the library's cost, no blk;
 *  - --raw (split rings, --poll always): heads are taken straight from
 *    the avail ring, the status descriptor found by following `next`, no
 *    checks at all beyond masking indexes: close to the cost of the ring
 *    itself, i.e. the limit of the load generator.
 *
 * Usage: vu-nullblk --socket-path PATH [--size BYTES] [--num-queues N]
 *                   [--cpu N] [--poll always|adaptive[:US]|never] [--raw]
 */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_blk.h>

#include "vu_dev.h"
#include "vu_mem.h"
#include "vu_poller.h"
#include "vu_server.h"
#include "vu_util.h"

#define CHAIN_IOV 8

static uint64_t capacity_sectors = (1ull << 30) >> 9;
static uint16_t nqueues = 1;
static bool raw;

static uint32_t nb_get_config(struct vu_dev *dev, uint8_t *buf, uint32_t len)
{
	struct virtio_blk_config c;

	(void)dev;
	memset(&c, 0, sizeof(c));
	c.capacity = htole64(capacity_sectors);
	c.size_max = htole32(1u << 20);
	c.seg_max = htole32(126);
	c.blk_size = htole32(512);
	c.num_queues = htole16(nqueues);
	if (len > sizeof(c))
		len = sizeof(c);
	memcpy(buf, &c, len);
	return len;
}

/* Completions published every this many requests of a pass, as vhost-blk does. */
#define NB_PUBLISH_EVERY 8

/* The library path: pop (validated), status byte, push. */
static unsigned int nb_process(struct vu_dev *dev, struct vu_vq *vq, unsigned int budget)
{
	struct iovec iov[CHAIN_IOV];
	uint64_t gpa[CHAIN_IOV];
	struct vu_chain c;
	unsigned int n = 0;

	(void)dev;
	vu_chain_init(&c, iov, gpa, CHAIN_IOV);
	while (n < budget && vu_vq_pop(vq, &c) == 1) {
		if (c.nin) {
			const struct iovec *last = &iov[c.nout + c.nin - 1];

			((uint8_t *)last->iov_base)[last->iov_len - 1] = VIRTIO_BLK_S_OK;
		}
		vu_vq_push(vq, &c, c.in_len);
		if (++n % NB_PUBLISH_EVERY == 0)
			vu_vq_publish(vq);
	}
	return n;
}

/* The raw split path: no copies, no checks (trusted front-end only). */
static unsigned int nb_process_raw(struct vu_dev *dev, struct vu_vq *vq, unsigned int budget)
{
	uint16_t mask, avail;
	unsigned int n = 0;
	struct vu_chain c;

	if (vq->packed)
		return nb_process(dev, vq, budget);
	mask = (uint16_t)(vq->size - 1);
	avail = le16toh(vu_load_acquire16(&vq->gavail->idx));
	memset(&c, 0, sizeof(c));
	while (vq->last_avail_idx != avail && n < budget) {
		uint16_t head = le16toh(vq->gavail->ring[vq->last_avail_idx & mask]) & mask;
		const struct vring_desc *d = &vq->gdesc[head];
		uint8_t *status;
		uint32_t in_len = 0;

		if (le16toh(d->flags) & VRING_DESC_F_INDIRECT) {
			const struct vring_desc *t =
				vu_mem_gpa_to_host(dev->mem, le64toh(d->addr), le32toh(d->len));
			uint32_t nt = le32toh(d->len) / 16;

			d = t && nt ? &t[nt - 1] : NULL;
		} else {
			for (unsigned int k = 0; k < vq->size &&
			     (le16toh(d->flags) & VRING_DESC_F_NEXT); k++) {
				if (le16toh(d->flags) & VRING_DESC_F_WRITE)
					in_len += le32toh(d->len);
				d = &vq->gdesc[le16toh(d->next) & mask];
			}
		}
		if (d) {
			in_len += le32toh(d->len);
			status = vu_mem_gpa_to_host(dev->mem, le64toh(d->addr) + le32toh(d->len) - 1, 1);
			if (status)
				*status = VIRTIO_BLK_S_OK;
		}
		c.id = head;
		c.in_len = in_len;
		vu_vq_push(vq, &c, in_len);
		vq->last_avail_idx++;
		if (++n % NB_PUBLISH_EVERY == 0)
			vu_vq_publish(vq);
	}
	return n;
}

static const struct vu_dev_ops nb_ops = {
	.features = (1ull << VIRTIO_BLK_F_SIZE_MAX) | (1ull << VIRTIO_BLK_F_SEG_MAX) |
		    (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH) |
		    (1ull << VIRTIO_BLK_F_MQ),
	.get_config = nb_get_config,
	.queue_process = nb_process,
};

static const struct vu_dev_ops nb_ops_raw = {
	.features = (1ull << VIRTIO_BLK_F_SIZE_MAX) | (1ull << VIRTIO_BLK_F_SEG_MAX) |
		    (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH) |
		    (1ull << VIRTIO_BLK_F_MQ),
	.get_config = nb_get_config,
	.queue_process = nb_process_raw,
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: vu-nullblk --socket-path PATH [--size BYTES] [--num-queues N] [--cpu N]\n"
"                  [--poll always|adaptive[:IDLE_US]|never] [--raw]\n"
"A do-nothing vhost-user-blk back-end: completes every request at once\n"
"with status OK, without reading or writing data.  --raw (split rings, with\n"
"--poll always) skips the library's descriptor walker and all validation.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket-path", required_argument, NULL, 's' },
		{ "size", required_argument, NULL, 'S' },
		{ "num-queues", required_argument, NULL, 'q' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "poll", required_argument, NULL, 'p' },
		{ "raw", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vu_endpoint_config ecfg = { .mode = VU_EP_SERVER };
	enum vu_poll_mode mode = VU_POLL_ALWAYS;
	uint32_t idle_us = VU_POLL_DEFAULT_IDLE_US;
	struct vu_poller *poller;
	pthread_t poller_thread;
	int cpu = -1;
	struct vu_endpoint *ep;
	struct vu_loop *loop;
	struct vu_dev *dev;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': ecfg.path = optarg; break;
		case 'S': {
			char *end;
			unsigned long long v = strtoull(optarg, &end, 0);

			if (*end == 'M' || *end == 'm')
				v <<= 20;
			else if (*end == 'G' || *end == 'g')
				v <<= 30;
			capacity_sectors = v >> 9;
			break;
		}
		case 'q': nqueues = (uint16_t)atoi(optarg); break;
		case 'c': cpu = atoi(optarg); break;
		case 'p':
			if (vu_poll_mode_parse(optarg, &mode, &idle_us)) {
				usage(stderr);
				return 2;
			}
			break;
		case 'r': raw = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!ecfg.path || nqueues < 1 || nqueues > VU_DEV_MAX_QUEUES || !capacity_sectors) {
		usage(stderr);
		return 2;
	}
	if (raw && mode != VU_POLL_ALWAYS) {
		fprintf(stderr, "vu-nullblk: --raw needs --poll always (it keeps no avail_event)\n");
		return 2;
	}
	loop = vu_loop_create();
	struct vu_poller_config pc = { .name = "nullblk", .mode = mode, .idle_us = idle_us,
				       .cpu = cpu };

	poller = vu_poller_create(&pc);
	if (!loop || !poller)
		return 1;
	struct vu_dev_config dcfg = { .name = "nullblk", .num_queues = nqueues,
				      .pollers = &poller, .npollers = 1,
				      .ops = raw ? &nb_ops_raw : &nb_ops };

	dev = vu_dev_create(&dcfg);
	ep = dev ? vu_endpoint_create(loop, dev, &ecfg) : NULL;
	if (!ep)
		return 1;
	if (pthread_create(&poller_thread, NULL, vu_poller_thread, poller))
		return 1;
	vu_loop_run(loop, NULL, NULL);
	vu_endpoint_destroy(ep);
	vu_dev_destroy(dev);
	vu_poller_stop(poller);
	pthread_join(poller_thread, NULL);
	vu_poller_destroy(poller);
	vu_loop_destroy(loop);
	return 0;
}
