// SPDX-License-Identifier: MIT
/*
 * The rbd engine: requests become librbd aio calls straight on the
 * guest's iovecs (rbd_aio_readv / rbd_aio_writev, no bounce copy),
 * FLUSH rbd_aio_flush, DISCARD and WRITE_ZEROES one call per range.
 *
 * One engine per poller.  Requests submitted during a pass are issued to
 * librbd when the poller polls this engine's source, right after the
 * queues.  librbd completes operations on its own threads: the callback
 * only pushes the operation onto this engine's lock-free completion stack
 * (and writes the engine's eventfd if the poller sleeps); the poller takes
 * the whole stack with one atomic exchange and completes the requests
 * itself.  So the poller never blocks on, or waits for, a librbd thread,
 * and a request completes on the poller that submitted it.
 *
 * Durability: with the guest's write cache off (WCE 0), a write, discard
 * or write-zeroes completes only after an rbd_aio_flush issued once its
 * data operations finished (librbd's cache may hold writes otherwise).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "blk.h"
#include "rbd.h"
#include "vu_util.h"

enum rbd_op_kind { OP_READ, OP_WRITE, OP_FLUSH, OP_DISCARD, OP_WRITE_ZEROES };

/* One librbd operation of a request. */
struct rbd_op {
	struct rbd_op *next;      /* free list (poller), or completion stack */
	struct blk_engine *eng;
	struct blk_req *req;
	ssize_t res;              /* librbd's return value; set by the callback */
	enum rbd_op_kind kind;
};

struct blk_engine {
	struct vu_poll_source src;
	int efd;
	/* Completed operations, pushed by librbd threads, taken by the poller. */
	struct rbd_op *done;
	/* The poller may sleep: the first completion writes efd.  Atomic. */
	uint8_t sleeping;
	bool armed;               /* poller: efd may have been written */
	struct rbd_op *free_ops;  /* poller only */
	struct blk_req *queue_head, **queue_tail; /* this pass's submissions */
};

static inline struct blk_engine *src_engine(struct vu_poll_source *src)
{
	return (struct blk_engine *)((char *)src - offsetof(struct blk_engine, src));
}

/* librbd thread. */
static void op_completed(rbd_completion_t c, void *arg)
{
	struct rbd_op *op = arg;
	struct blk_engine *eng = op->eng;
	struct rbd_op *head;
	uint64_t one = 1;

	op->res = rbd_aio_get_return_value(c);
	rbd_aio_release(c);
	head = __atomic_load_n(&eng->done, __ATOMIC_RELAXED);
	/* Release: op->res is visible to the poller's exchange (acquire).
	 * Sequentially consistent with the sleeping flag below: either the
	 * poller's prepare_sleep sees this push, or we see its flag. */
	do
		op->next = head;
	while (!__atomic_compare_exchange_n(&eng->done, &head, op, true, __ATOMIC_SEQ_CST,
					    __ATOMIC_RELAXED));
	if (__atomic_exchange_n(&eng->sleeping, 0, __ATOMIC_SEQ_CST)) {
		if (write(eng->efd, &one, sizeof(one)) < 0) {
			/* EAGAIN: the counter is full, the poller wakes anyway */
		}
	}
}

static struct rbd_op *op_get(struct blk_engine *eng)
{
	struct rbd_op *op = eng->free_ops;

	if (op)
		eng->free_ops = op->next;
	else
		op = malloc(sizeof(*op));
	return op;
}

static void op_put(struct blk_engine *eng, struct rbd_op *op)
{
	op->next = eng->free_ops;
	eng->free_ops = op;
}

/* Start one operation of req; 0 or -errno (then nothing is in flight). */
static int op_start(struct blk_engine *eng, struct blk_req *req, enum rbd_op_kind kind,
		    uint64_t off, uint64_t len)
{
	rbd_image_t image = ((struct blk_rbd_image *)req->q->disk->store)->rbd;
	struct rbd_op *op = op_get(eng);
	rbd_completion_t c;
	int ret;

	if (!op)
		return -ENOMEM;
	op->eng = eng;
	op->req = req;
	op->kind = kind;
	ret = rbd_aio_create_completion(op, op_completed, &c);
	if (ret < 0) {
		op_put(eng, op);
		return ret;
	}
	switch (kind) {
	case OP_READ:
		ret = rbd_aio_readv(image, req->data, (int)req->ndata, off, c);
		break;
	case OP_WRITE:
		ret = rbd_aio_writev(image, req->data, (int)req->ndata, off, c);
		break;
	case OP_FLUSH:
		ret = rbd_aio_flush(image, c);
		break;
	case OP_DISCARD:
		ret = rbd_aio_discard(image, off, len, c);
		break;
	case OP_WRITE_ZEROES:
		ret = rbd_aio_write_zeroes(image, off, (size_t)len, c, 0, 0);
		break;
	}
	if (ret < 0) {
		rbd_aio_release(c);
		op_put(eng, op);
	}
	return ret < 0 ? ret : 0;
}

/* Issue a request's operations (poller, in this engine's poll). */
static void issue(struct blk_engine *eng, struct blk_req *req)
{
	uint64_t off = req->sector << BLK_SECTOR_SHIFT;
	enum rbd_op_kind kind;
	int ret;

	req->flush_after = req->type != VIRTIO_BLK_T_IN && req->type != VIRTIO_BLK_T_FLUSH &&
			   !__atomic_load_n(&req->q->disk->wce, __ATOMIC_RELAXED);
	/* One extra count held while issuing, so that a failed start cannot
	 * complete the request before its other operations are issued. */
	req->pending = 1;
	switch (req->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
	case VIRTIO_BLK_T_FLUSH:
		kind = req->type == VIRTIO_BLK_T_IN ? OP_READ : req->type == VIRTIO_BLK_T_OUT ? OP_WRITE
											      : OP_FLUSH;
		req->pending++;
		ret = op_start(eng, req, kind, off, req->data_len);
		if (ret < 0)
			blk_req_op_done(req, ret);
		break;
	default: /* DISCARD, WRITE_ZEROES: validated ranges */
		kind = req->type == VIRTIO_BLK_T_DISCARD ? OP_DISCARD : OP_WRITE_ZEROES;
		for (unsigned int i = 0; i < req->nranges; i++) {
			const struct virtio_blk_discard_write_zeroes *r = &req->ranges[i];

			req->pending++;
			ret = op_start(eng, req, kind, r->sector << BLK_SECTOR_SHIFT,
				       (uint64_t)r->num_sectors << BLK_SECTOR_SHIFT);
			if (ret < 0)
				blk_req_op_done(req, ret);
		}
		break;
	}
	if (req->result)
		req->flush_after = false;
	blk_req_op_done(req, 0);
}

/* An operation came back (poller). */
static void finish(struct blk_engine *eng, struct rbd_op *op)
{
	struct blk_req *req = op->req;
	ssize_t res = op->res;
	int err;

	if (res < 0)
		err = (int)res;
	else if (op->kind == OP_READ && (size_t)res != req->data_len)
		err = -EIO;   /* short read: the image shrank under us */
	else
		err = 0;      /* writes and the others return 0 */
	op_put(eng, op);
	if (err == 0 && req->flush_after && req->pending == 1 && req->result == 0) {
		/* The last data operation: now make them durable. */
		req->flush_after = false;
		err = op_start(eng, req, OP_FLUSH, 0, 0);
		if (err == 0)
			return;
	}
	blk_req_op_done(req, err);
}

static void rbd_engine_submit(struct blk_engine *eng, struct blk_req *req)
{
	req->next_submit = NULL;
	*eng->queue_tail = req;
	eng->queue_tail = &req->next_submit;
}

static unsigned int rbd_engine_poll(struct vu_poll_source *src)
{
	struct blk_engine *eng = src_engine(src);
	struct rbd_op *list, *rev = NULL;
	unsigned int n = 0;

	if (eng->armed) {
		uint64_t v;

		eng->armed = false;
		__atomic_store_n(&eng->sleeping, 0, __ATOMIC_RELAXED);
		if (read(eng->efd, &v, sizeof(v)) < 0) {
			/* EAGAIN: not written */
		}
	}
	while (eng->queue_head) {
		struct blk_req *req = eng->queue_head;

		eng->queue_head = req->next_submit;
		issue(eng, req);
		n++;
	}
	eng->queue_tail = &eng->queue_head;

	list = __atomic_exchange_n(&eng->done, NULL, __ATOMIC_ACQUIRE);
	while (list) {            /* the stack is newest first: reverse it */
		struct rbd_op *next = list->next;

		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev) {
		struct rbd_op *next = rev->next;

		finish(eng, rev);
		rev = next;
		n++;
	}
	return n;
}

static bool rbd_engine_prepare_sleep(struct vu_poll_source *src)
{
	struct blk_engine *eng = src_engine(src);

	eng->armed = true;
	__atomic_store_n(&eng->sleeping, 1, __ATOMIC_SEQ_CST);
	return eng->queue_head || __atomic_load_n(&eng->done, __ATOMIC_SEQ_CST);
}

static struct blk_engine *rbd_engine_create(struct vu_poller *poller)
{
	struct blk_engine *eng = calloc(1, sizeof(*eng));
	int ret;

	if (!eng)
		return NULL;
	eng->queue_tail = &eng->queue_head;
	eng->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (eng->efd < 0) {
		free(eng);
		return NULL;
	}
	eng->src.poll = rbd_engine_poll;
	eng->src.prepare_sleep = rbd_engine_prepare_sleep;
	eng->src.fd = eng->efd;
	ret = vu_poller_add_source(poller, &eng->src);
	if (ret < 0) {
		vu_err("rbd engine: %s", strerror(-ret));
		close(eng->efd);
		free(eng);
		return NULL;
	}
	return eng;
}

/* After every image is closed: librbd completed all operations. */
static void rbd_engine_destroy(struct blk_engine *eng)
{
	struct rbd_op *lists[2], *op;

	if (!eng)
		return;
	lists[0] = eng->free_ops;
	lists[1] = __atomic_exchange_n(&eng->done, NULL, __ATOMIC_ACQUIRE);
	for (unsigned int i = 0; i < 2; i++)
		while ((op = lists[i])) {
			lists[i] = op->next;
			free(op);
		}
	close(eng->efd);
	free(eng);
}

const struct blk_engine_ops blk_engine_rbd_ops = {
	.name = "rbd",
	.open_disk = blk_rbd_open,
	.close_disk = blk_rbd_close,
	.refresh_size = blk_rbd_refresh_size,
	.create = rbd_engine_create,
	.destroy = rbd_engine_destroy,
	.submit = rbd_engine_submit,
};
