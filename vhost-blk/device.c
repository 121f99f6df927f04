// SPDX-License-Identifier: MIT
/*
 * The virtio-blk device: config space, features, and the request path
 * from a chain to an engine operation and back to the used ring.
 *
 * Every field of a request comes from the guest and is checked here
 * before an engine sees it (SECURITY.md B.18): header and status byte
 * present and of the right direction, data a multiple of 512 bytes,
 * sector + length inside the capacity without overflow, discard and
 * write-zeroes ranges within the limits of config space.  A bad request
 * completes with IOERR (or UNSUPP) and the queue goes on.
 */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "blk.h"
#include "vu_numa.h"
#include "vu_util.h"

#define BLK_FEATURES                                                                   \
	((1ull << VIRTIO_BLK_F_SIZE_MAX) | (1ull << VIRTIO_BLK_F_SEG_MAX) |              \
	 (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_TOPOLOGY) |             \
	 (1ull << VIRTIO_BLK_F_MQ) | (1ull << VIRTIO_BLK_F_FLUSH) |                      \
	 (1ull << VIRTIO_BLK_F_CONFIG_WCE))

/* Bad requests logged per queue before the log falls silent. */
#define BAD_REQ_LOG_LIMIT 16

static struct blk_device *to_blk(struct vu_dev *dev)
{
	return dev->priv;
}

static uint64_t disk_capacity(const struct blk_disk *disk)
{
	return __atomic_load_n(&disk->capacity, __ATOMIC_ACQUIRE);
}

uint64_t blk_device_features(const struct blk_disk *disk)
{
	uint64_t f = BLK_FEATURES;

	if (disk->cfg.read_only)
		f |= 1ull << VIRTIO_BLK_F_RO;
	else
		f |= (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
	return f;
}

static uint32_t blk_get_config(struct vu_dev *dev, uint8_t *buf, uint32_t len)
{
	struct blk_disk *disk = &to_blk(dev)->disk;
	struct virtio_blk_config c;

	memset(&c, 0, sizeof(c));
	c.capacity = htole64(disk_capacity(disk));
	c.size_max = htole32(BLK_SIZE_MAX);
	c.seg_max = htole32(BLK_SEG_MAX);
	c.blk_size = htole32(disk->blk_size);
	c.physical_block_exp = disk->physical_block_exp;
	c.min_io_size = htole16(1);
	c.opt_io_size = htole32(0);
	c.wce = __atomic_load_n(&disk->wce, __ATOMIC_RELAXED);
	c.num_queues = htole16(dev->num_queues);
	c.max_discard_sectors = htole32(BLK_MAX_DISCARD_SECTORS);
	c.max_discard_seg = htole32(BLK_MAX_DISCARD_SEG);
	c.discard_sector_alignment = htole32(disk->blk_size >> BLK_SECTOR_SHIFT);
	c.max_write_zeroes_sectors = htole32(BLK_MAX_DISCARD_SECTORS);
	c.max_write_zeroes_seg = htole32(BLK_MAX_DISCARD_SEG);
	c.write_zeroes_may_unmap = 1;
	if (len > sizeof(c))
		len = sizeof(c);
	memcpy(buf, &c, len);
	return len;
}

static int blk_set_config(struct vu_dev *dev, const uint8_t *data, uint32_t offset,
			  uint32_t size, uint32_t flags)
{
	struct blk_disk *disk = &to_blk(dev)->disk;

	(void)flags;
	if (offset != offsetof(struct virtio_blk_config, wce) || size != 1) {
		vu_warn("%s: config write at offset %u size %u refused (only wce is writable)",
			dev->name, offset, size);
		return -EPERM;
	}
	if (data[0] > 1)
		return -EINVAL;
	__atomic_store_n(&disk->wce, data[0], __ATOMIC_RELAXED);
	vu_info("%s: write cache %s", dev->name, data[0] ? "writeback" : "writethrough");
	return 0;
}

static int blk_queue_start(struct vu_dev *dev, struct vu_vq *vq)
{
	struct blk_device *bd = to_blk(dev);
	struct blk_queue *q = &bd->queues[vq->index];
	int node = vu_numa_node_of(vq->packed ? (void *)vq->gpdesc : (void *)vq->gdesc);

	q->vq = vq;
	q->disk = &bd->disk;
	q->eops = bd->eops;
	q->engine = bd->engines[vq->index % dev->npollers];
	q->disk_handle = bd->disk_handles[vq->index % dev->npollers];
	q->fixed = &bd->fixed[vq->index % dev->npollers];
	q->nreqs = (uint16_t)(vq->size > UINT16_MAX ? UINT16_MAX : vq->size);
	q->reqs = vu_numa_zalloc(sizeof(struct blk_req) * q->nreqs, node);
	if (!q->reqs)
		return -ENOMEM;
	for (uint16_t i = 0; i < q->nreqs; i++) {
		struct blk_req *r = &q->reqs[i];

		r->q = q;
		r->next_free = (uint16_t)(i + 1);
		vu_chain_init(&r->chain, r->iov, r->gpa, BLK_CHAIN_IOV);
	}
	q->free_head = 0;
	__atomic_store_n(&q->inflight, 0, __ATOMIC_RELAXED);
	vq->priv = q;
	return 0;
}

static void blk_queue_stop(struct vu_dev *dev, struct vu_vq *vq)
{
	struct blk_queue *q = &to_blk(dev)->queues[vq->index];

	vu_numa_free(q->reqs, sizeof(struct blk_req) * q->nreqs);
	q->reqs = NULL;
	q->nreqs = 0;
	vq->priv = NULL;
}

static unsigned int blk_queue_inflight(struct vu_dev *dev, struct vu_vq *vq)
{
	return __atomic_load_n(&to_blk(dev)->queues[vq->index].inflight, __ATOMIC_ACQUIRE);
}

static void blk_mem_changed(struct vu_dev *dev)
{
	struct blk_device *bd = to_blk(dev);

	for (unsigned int i = 0; i < dev->npollers && bd->eops->mem_changed; i++)
		bd->eops->mem_changed(bd->engines[i], dev->mem, bd->disk.cfg.fixed, &bd->fixed[i]);
}

/* ---- request path (poller) ---- */

static void report_bad(struct blk_queue *q, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void report_bad(struct blk_queue *q, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	if (q->vq->stats.bad_chains >= BAD_REQ_LOG_LIMIT)
		return;
	q->vq->stats.bad_chains++;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	vu_warn("%s queue %u: bad request: %s", q->vq->dev->name, q->vq->index, why);
}

/* Copy len bytes at byte offset off of an iovec array into dst. */
static bool iov_copy_from(const struct iovec *iov, unsigned int n, size_t off, void *dst, size_t len)
{
	uint8_t *d = dst;

	for (unsigned int i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len)
			l = len;
		memcpy(d, (uint8_t *)iov[i].iov_base + off, l);
		d += l;
		len -= l;
		off = 0;
	}
	return len == 0;
}

static void iov_copy_to(const struct iovec *iov, unsigned int n, const void *src, size_t len)
{
	const uint8_t *s = src;

	for (unsigned int i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len < len ? iov[i].iov_len : len;

		memcpy(iov[i].iov_base, s, l);
		s += l;
		len -= l;
	}
}

/* dst = the bytes [off, off + len) of src, as iovecs. */
static unsigned int iov_slice(const struct iovec *src, unsigned int n, size_t off, size_t len,
			      struct iovec *dst)
{
	unsigned int k = 0;

	for (unsigned int i = 0; i < n && len; i++) {
		size_t l = src[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len)
			l = len;
		dst[k].iov_base = (uint8_t *)src[i].iov_base + off;
		dst[k].iov_len = l;
		k++;
		len -= l;
		off = 0;
	}
	return k;
}

static void req_free(struct blk_req *req)
{
	struct blk_queue *q = req->q;

	req->next_free = q->free_head;
	q->free_head = (uint16_t)(req - q->reqs);
	/* Release: the request's used entry is written before the control
	 * thread can see it gone. */
	__atomic_store_n(&q->inflight, q->inflight - 1, __ATOMIC_RELEASE);
}

static void req_complete(struct blk_req *req, uint8_t status, uint32_t data_written)
{
	/* The status byte is the last byte the guest reads. */
	*(volatile uint8_t *)req->status = status;
	/* The status byte is last, after data the length may not cover. */
	if (data_written + 1 < req->chain.in_len)
		vu_vq_log_tail(req->q->vq, &req->chain, 1);
	vu_vq_push(req->q->vq, &req->chain, data_written + 1);
	req_free(req);
}

void blk_req_op_done(struct blk_req *req, int res)
{
	if (res < 0 && req->result == 0)
		req->result = res;
	if (--req->pending > 0)
		return;
	if (req->result) {
		vu_dp_debug("request type %u sector %llu failed: %d", req->type,
			    (unsigned long long)req->sector, req->result);
		req_complete(req, VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	req_complete(req, VIRTIO_BLK_S_OK, req->type == VIRTIO_BLK_T_IN ? req->data_len : 0);
}

static bool range_ok(const struct blk_disk *disk, uint64_t sector, uint64_t sectors)
{
	uint64_t cap = disk_capacity(disk);

	return sector <= cap && sectors <= cap - sector;
}

/* Validate DISCARD / WRITE_ZEROES ranges (B.18).  Returns a status. */
static uint8_t parse_ranges(struct blk_queue *q, struct blk_req *req, unsigned int nout,
			    uint32_t out_len)
{
	uint32_t bytes = out_len - sizeof(struct virtio_blk_outhdr);
	uint32_t allowed = req->type == VIRTIO_BLK_T_WRITE_ZEROES ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;

	if (bytes == 0 || bytes % sizeof(struct virtio_blk_discard_write_zeroes) ||
	    bytes / sizeof(struct virtio_blk_discard_write_zeroes) > BLK_MAX_DISCARD_SEG) {
		report_bad(q, "%u bytes of discard/write-zeroes ranges (at most %u ranges of 16)",
			   bytes, BLK_MAX_DISCARD_SEG);
		return VIRTIO_BLK_S_IOERR;
	}
	req->nranges = bytes / sizeof(struct virtio_blk_discard_write_zeroes);
	iov_copy_from(req->chain.iov, nout, sizeof(struct virtio_blk_outhdr), req->ranges, bytes);
	for (unsigned int i = 0; i < req->nranges; i++) {
		struct virtio_blk_discard_write_zeroes *r = &req->ranges[i];

		r->sector = le64toh(r->sector);
		r->num_sectors = le32toh(r->num_sectors);
		r->flags = le32toh(r->flags);
		if (r->flags & ~allowed) {
			report_bad(q, "range flags 0x%x", r->flags);
			return VIRTIO_BLK_S_UNSUPP;
		}
		if (r->num_sectors > BLK_MAX_DISCARD_SECTORS ||
		    !range_ok(q->disk, r->sector, r->num_sectors)) {
			report_bad(q, "range sector %llu + %u outside the disk or the limit",
				   (unsigned long long)r->sector, r->num_sectors);
			return VIRTIO_BLK_S_IOERR;
		}
	}
	return VIRTIO_BLK_S_OK;
}

/*
 * Check a request and hand it to the engine, or complete it at once.
 * The chain has at least one readable and one writable byte.
 */
static void handle_req(struct blk_queue *q, struct blk_req *req)
{
	struct vu_chain *c = &req->chain;
	struct virtio_blk_outhdr hdr;
	const struct blk_disk *disk = q->disk;
	uint8_t status = VIRTIO_BLK_S_OK;
	uint32_t in_data = c->in_len - 1;

	if (vu_likely(c->iov[0].iov_len >= sizeof(hdr)))
		memcpy(&hdr, c->iov[0].iov_base, sizeof(hdr));
	else
		iov_copy_from(c->iov, c->nout, 0, &hdr, sizeof(hdr));
	req->type = le32toh(hdr.type);
	req->sector = le64toh(hdr.sector);
	req->pending = 0;
	req->result = 0;
	req->retried_buffered = false;

	switch (req->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT: {
		bool in = req->type == VIRTIO_BLK_T_IN;
		uint32_t len = in ? in_data : c->out_len - (uint32_t)sizeof(hdr);

		if (!in && disk->cfg.read_only) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		if (len % BLK_SECTOR_SIZE || !range_ok(disk, req->sector, len >> BLK_SECTOR_SHIFT)) {
			report_bad(q, "%s of %u bytes at sector %llu (capacity %llu)", in ? "read" : "write",
				   len, (unsigned long long)req->sector,
				   (unsigned long long)disk_capacity(disk));
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		req->data_len = len;
		if (in)
			req->ndata = iov_slice(c->iov + c->nout, c->nin, 0, len, req->data);
		else
			req->ndata = iov_slice(c->iov, c->nout, sizeof(hdr), len, req->data);
		if (len == 0) {
			req_complete(req, VIRTIO_BLK_S_OK, 0);
			return;
		}
		q->eops->submit(q->engine, req);
		return;
	}
	case VIRTIO_BLK_T_FLUSH:
		q->eops->submit(q->engine, req);
		return;
	case VIRTIO_BLK_T_GET_ID: {
		uint32_t n = in_data < BLK_SERIAL_LEN ? in_data : BLK_SERIAL_LEN;

		iov_copy_to(c->iov + c->nout, c->nin, disk->serial, n);
		req_complete(req, VIRTIO_BLK_S_OK, n);
		return;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (disk->cfg.read_only) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		status = parse_ranges(q, req, c->nout, c->out_len);
		if (status == VIRTIO_BLK_S_OK) {
			q->eops->submit(q->engine, req);
			return;
		}
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	req_complete(req, status, 0);
}

/* Where the status byte is: the last writable byte of the chain. */
static uint8_t *status_byte(const struct vu_chain *c)
{
	const struct iovec *last = &c->iov[c->nout + c->nin - 1];

	return (uint8_t *)last->iov_base + last->iov_len - 1;
}

/*
 * Requests taken from the ring before the first of them is handled; the
 * completions of each such batch are published before the next is taken
 * (blk_queue_process).
 */
#define BLK_TAKE_BATCH 8

/*
 * Take up to max requests, starting to load each one's header: the guest's
 * CPU wrote those lines last, and reading them one request at a time
 * stalled the poller on each miss in turn.  Returns the requests taken.
 */
static unsigned int take_requests(struct blk_queue *q, struct vu_vq *vq, struct blk_req **out,
				  unsigned int max)
{
	unsigned int n = 0;

	while (n < max && q->free_head < q->nreqs) {
		struct blk_req *req = &q->reqs[q->free_head];

		if (vu_vq_pop(vq, &req->chain) <= 0)
			break;
		q->free_head = req->next_free;
		__atomic_store_n(&q->inflight, q->inflight + 1, __ATOMIC_RELAXED);
		if (vu_likely(req->chain.nout))
			__builtin_prefetch(req->chain.iov[0].iov_base);
		out[n++] = req;
	}
	return n;
}

static void start_request(struct blk_queue *q, struct vu_vq *vq, struct blk_req *req)
{
	if (vu_unlikely(req->chain.out_len < sizeof(struct virtio_blk_outhdr) || req->chain.nin == 0)) {
		/* No header or no status byte: nothing can be reported in
		 * the request itself (B.18, B.20). */
		report_bad(q, "chain with %u readable and %u writable bytes has no header or status",
			   req->chain.out_len, req->chain.in_len);
		vu_vq_push(vq, &req->chain, 0);
		req_free(req);
		return;
	}
	req->status = status_byte(&req->chain);
	handle_req(q, req);
}

static unsigned int blk_queue_process(struct vu_dev *dev, struct vu_vq *vq, unsigned int budget)
{
	struct blk_queue *q = vq->priv;
	struct blk_req *batch[BLK_TAKE_BATCH];
	unsigned int n = 0, k;
	bool more;

	(void)dev;
	do {
		k = take_requests(q, vq, batch, budget - n < BLK_TAKE_BATCH ? budget - n : BLK_TAKE_BATCH);
		for (unsigned int i = 0; i < k; i++)
			start_request(q, vq, batch[i]);
		n += k;
		more = k == BLK_TAKE_BATCH && n < budget;
		/* The driver can reuse what completed while we take more
		 * (taking all 32 of QD 32 first left it idle; bench/README.md,
		 * "Session 6").  The poller signals once, at the end of the
		 * pass. */
		if (more)
			vu_vq_publish(vq);
	} while (more);
	return n;
}

const struct vu_dev_ops blk_dev_ops = {
	.get_config = blk_get_config,
	.set_config = blk_set_config,
	.queue_start = blk_queue_start,
	.queue_stop = blk_queue_stop,
	.queue_process = blk_queue_process,
	.queue_inflight = blk_queue_inflight,
	.mem_changed = blk_mem_changed,
};
