// SPDX-License-Identifier: MIT
/*
 * The io_uring engine: one ring per poller.  Requests become readv/writev
 * straight on the guest's iovecs (no copy), fsync for FLUSH and fallocate
 * for DISCARD / WRITE_ZEROES, so the poller never blocks.  Submissions of
 * a pass go to the kernel in one io_uring_submit() when the poller polls
 * this engine's source, right after the queues; completions are reaped in
 * the same pass.
 *
 * While the poller busy-polls, the ring's eventfd is switched off (no
 * wake-ups to pay for); before it sleeps it is switched on and the CQ
 * checked once more, so a completion is never missed.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include "blk.h"
#include "vu_util.h"

#define URING_ENTRIES 1024
#define URING_MAX_FILES 128
#define URING_MAX_BUFS 1024

struct blk_engine {
	struct io_uring ring;
	struct vu_poll_source src;
	int efd;
	bool efd_armed;
	unsigned int queued;       /* SQEs prepared, not submitted */
	unsigned int nfiles;       /* registered file slots in use */
	bool warned_buffered;
	bool bufs_registered;      /* the sparse buffer table exists */
	bool buf_used[URING_MAX_BUFS];
};

static inline struct blk_engine *src_engine(struct vu_poll_source *src)
{
	return (struct blk_engine *)((char *)src - offsetof(struct blk_engine, src));
}

/* An SQE, submitting what is queued if the SQ is full. */
static struct io_uring_sqe *get_sqe(struct blk_engine *eng)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&eng->ring);

	if (vu_unlikely(!sqe)) {
		io_uring_submit(&eng->ring);
		eng->queued = 0;
		sqe = io_uring_get_sqe(&eng->ring);
	}
	if (sqe)
		eng->queued++;
	return sqe;
}

/* The registered chunk holding the request's only data segment, or NULL. */
static const struct blk_fixed_chunk *fixed_chunk(const struct blk_req *req)
{
	const struct blk_fixed_map *map = req->q->fixed;
	uintptr_t a = (uintptr_t)req->data[0].iov_base;
	size_t len = req->data[0].iov_len;

	for (unsigned int i = 0; i < map->n; i++) {
		uintptr_t b = (uintptr_t)map->chunk[i].base;

		if (a >= b && a - b < map->chunk[i].len && len <= map->chunk[i].len - (a - b))
			return &map->chunk[i];
	}
	return NULL;
}

static void prep_rw(struct blk_engine *eng, struct blk_req *req, struct io_uring_sqe *sqe)
{
	int slot = req->q->disk_handle + (req->retried_buffered ? 1 : 0);
	uint64_t off = req->sector << BLK_SECTOR_SHIFT;

	const struct blk_fixed_chunk *fc = req->ndata == 1 ? fixed_chunk(req) : NULL;

	if (fc) {
		/* One segment inside registered memory: no page pinning per I/O. */
		if (req->type == VIRTIO_BLK_T_IN)
			io_uring_prep_read_fixed(sqe, slot, req->data[0].iov_base,
						 (unsigned int)req->data[0].iov_len, off, fc->index);
		else
			io_uring_prep_write_fixed(sqe, slot, req->data[0].iov_base,
						  (unsigned int)req->data[0].iov_len, off, fc->index);
	} else if (req->type == VIRTIO_BLK_T_IN) {
		io_uring_prep_readv(sqe, slot, req->data, req->ndata, off);
	} else {
		io_uring_prep_writev(sqe, slot, req->data, req->ndata, off);
	}
	if (req->type == VIRTIO_BLK_T_OUT) {
		/* Writethrough: complete only once durable (SECURITY.md D.30). */
		if (!__atomic_load_n(&req->q->disk->wce, __ATOMIC_RELAXED))
			sqe->rw_flags = RWF_DSYNC;
	}
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, req);
	(void)eng;
}

static int falloc_mode(const struct blk_req *req, const struct virtio_blk_discard_write_zeroes *r)
{
	bool blockdev = req->q->disk->is_blockdev;

	if (req->type == VIRTIO_BLK_T_DISCARD)
		return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE |
		       (blockdev ? FALLOC_FL_NO_HIDE_STALE : 0);
	if (!blockdev && (r->flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP))
		return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	return FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
}

static void uring_submit(struct blk_engine *eng, struct blk_req *req)
{
	int slot = req->q->disk_handle;
	struct io_uring_sqe *sqe;
	bool sync = !__atomic_load_n(&req->q->disk->wce, __ATOMIC_RELAXED);

	switch (req->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (req->q->disk->sync_rw) {
			/* io_uring would hand this to an io-wq thread on our own
			 * core; the copy inline is cheaper and never blocks. */
			int fd = req->q->disk->fd_buffered;
			off_t off = (off_t)(req->sector << BLK_SECTOR_SHIFT);
			ssize_t r = req->type == VIRTIO_BLK_T_IN
				? preadv(fd, req->data, (int)req->ndata, off)
				: pwritev2(fd, req->data, (int)req->ndata, off, sync ? RWF_DSYNC : 0);

			req->pending = 1;
			blk_req_op_done(req, r < 0 ? -errno : (uint32_t)r == req->data_len ? 0 : -EIO);
			return;
		}
		sqe = get_sqe(eng);
		if (!sqe)
			goto busy;
		req->pending = 1;
		prep_rw(eng, req, sqe);
		return;
	case VIRTIO_BLK_T_FLUSH:
		sqe = get_sqe(eng);
		if (!sqe)
			goto busy;
		req->pending = 1;
		io_uring_prep_fsync(sqe, slot, IORING_FSYNC_DATASYNC);
		sqe->flags |= IOSQE_FIXED_FILE;
		io_uring_sqe_set_data(sqe, req);
		return;
	default: /* DISCARD, WRITE_ZEROES: one fallocate per range */
		req->pending = 0;
		for (unsigned int i = 0; i < req->nranges; i++) {
			const struct virtio_blk_discard_write_zeroes *r = &req->ranges[i];

			sqe = get_sqe(eng);
			if (!sqe) {
				/* Ranges left undone: the request must fail. */
				req->result = -EBUSY;
				sync = false;
				break;
			}
			io_uring_prep_fallocate(sqe, slot, falloc_mode(req, r),
						r->sector << BLK_SECTOR_SHIFT,
						(uint64_t)r->num_sectors << BLK_SECTOR_SHIFT);
			sqe->flags |= IOSQE_FIXED_FILE;
			io_uring_sqe_set_data(sqe, req);
			req->pending++;
		}
		if (sync && !(sqe = get_sqe(eng)))
			req->result = -EBUSY;   /* cannot make it durable */
		else if (sync) {
			/* Not linked: fallocate is durable after the sync
			 * only if it ran first, so drain before it. */
			io_uring_prep_fsync(sqe, slot, IORING_FSYNC_DATASYNC);
			sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_DRAIN;
			io_uring_sqe_set_data(sqe, req);
			req->pending++;
		}
		if (req->pending)
			return;
		goto busy;
	}
busy:
	req->pending = 1;
	blk_req_op_done(req, -EBUSY);
}

/* Handle one completion; returns true if the request was resubmitted. */
static bool complete_one(struct blk_engine *eng, struct blk_req *req, int res)
{
	bool rw = req->type == VIRTIO_BLK_T_IN || req->type == VIRTIO_BLK_T_OUT;

	if (rw && res == -EINVAL && req->q->disk->direct && !req->retried_buffered) {
		/* O_DIRECT refuses buffers or offsets not aligned to the
		 * device's block: redo it through the page cache. */
		struct io_uring_sqe *sqe = get_sqe(eng);

		if (sqe) {
			if (!eng->warned_buffered) {
				vu_warn("%s: unaligned request retried without O_DIRECT (logged once)",
					req->q->disk->name);
				eng->warned_buffered = true;
			}
			req->retried_buffered = true;
			prep_rw(eng, req, sqe);
			return true;
		}
	}
	if (rw && res >= 0 && (uint32_t)res != req->data_len)
		res = -EIO;   /* short transfer: the file shrank under us */
	blk_req_op_done(req, res < 0 ? res : 0);
	return false;
}

static unsigned int uring_poll(struct vu_poll_source *src)
{
	struct blk_engine *eng = src_engine(src);
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	if (eng->efd_armed) {
		uint64_t v;

		io_uring_cq_eventfd_toggle(&eng->ring, false);
		eng->efd_armed = false;
		if (read(eng->efd, &v, sizeof(v)) < 0) {
			/* EAGAIN: not signalled */
		}
	}
	if (eng->queued) {
		io_uring_submit(&eng->ring);
		eng->queued = 0;
	}
	io_uring_for_each_cqe(&eng->ring, head, cqe) {
		complete_one(eng, io_uring_cqe_get_data(cqe), cqe->res);
		n++;
	}
	io_uring_cq_advance(&eng->ring, n);
	/* Resubmissions made while reaping go out in this pass too. */
	if (eng->queued) {
		io_uring_submit(&eng->ring);
		eng->queued = 0;
	}
	return n;
}

static bool uring_prepare_sleep(struct vu_poll_source *src)
{
	struct blk_engine *eng = src_engine(src);

	io_uring_cq_eventfd_toggle(&eng->ring, true);
	eng->efd_armed = true;
	/* Full barrier: the flag is visible to the kernel before we read
	 * the CQ tail (pairs with the kernel's barrier after posting). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	/* A completion posted before the eventfd was armed signalled nothing. */
	return eng->queued || io_uring_cq_ready(&eng->ring);
}

static struct blk_engine *uring_create(struct vu_poller *poller)
{
	struct blk_engine *eng = calloc(1, sizeof(*eng));
	int ret;

	if (!eng)
		return NULL;
	eng->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ret = io_uring_queue_init(URING_ENTRIES, &eng->ring, 0);
	if (ret < 0 || eng->efd < 0) {
		vu_err("io_uring setup failed: %s", strerror(ret < 0 ? -ret : errno));
		if (eng->efd >= 0)
			close(eng->efd);
		if (ret == 0)
			io_uring_queue_exit(&eng->ring);
		free(eng);
		return NULL;
	}
	ret = io_uring_register_files_sparse(&eng->ring, URING_MAX_FILES);
	if (ret == 0)
		ret = io_uring_register_eventfd(&eng->ring, eng->efd);
	if (ret == 0)
		ret = io_uring_cq_eventfd_toggle(&eng->ring, false);
	if (ret == 0) {
		eng->src.poll = uring_poll;
		eng->src.prepare_sleep = uring_prepare_sleep;
		eng->src.fd = eng->efd;
		ret = vu_poller_add_source(poller, &eng->src);
	}
	if (ret < 0) {
		vu_err("io_uring registration failed: %s", strerror(-ret));
		io_uring_queue_exit(&eng->ring);
		close(eng->efd);
		free(eng);
		return NULL;
	}
	return eng;
}

static void uring_destroy(struct blk_engine *eng)
{
	if (!eng)
		return;
	io_uring_queue_exit(&eng->ring);
	close(eng->efd);
	free(eng);
}

/*
 * A file in memory (tmpfs, ramfs) has no non-blocking I/O: io_uring would
 * hand every request to a worker thread on the poller's own core, while
 * the copy done inline is a memcpy that cannot block on a device.  Other
 * filesystems without non-blocking I/O (NFS, FUSE) may block: they stay
 * on io_uring.
 */
static bool disk_in_memory(const struct blk_disk *disk)
{
	struct statfs sfs;

	return !disk->is_blockdev && fstatfs(disk->fd_buffered, &sfs) == 0 &&
	       (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC);
}

/* Register the disk's two fds; the handle is the slot of the direct one. */
static int uring_attach_disk(struct blk_engine *eng, struct blk_disk *disk)
{
	int fds[2] = { disk->fd, disk->fd_buffered };
	unsigned int slot = eng->nfiles;
	int ret;

	if (slot + 2 > URING_MAX_FILES)
		return -ENOSPC;
	ret = io_uring_register_files_update(&eng->ring, slot, fds, 2);
	if (ret < 0)
		return ret;
	if (disk_in_memory(disk)) {
		disk->sync_rw = true;
		vu_info("%s: in memory (tmpfs): reads and writes done inline", disk->name);
	}
	eng->nfiles += 2;
	return (int)slot;
}

/* Clear the slots of map in the engine's buffer table. */
static void fixed_release(struct blk_engine *eng, struct blk_fixed_map *map)
{
	for (unsigned int i = 0; i < map->n; i++) {
		struct iovec none = { 0 };
		__u64 tag = 0;
		unsigned int slot = map->chunk[i].index;

		io_uring_register_buffers_update_tag(&eng->ring, slot, &none, &tag, 1);
		eng->buf_used[slot] = false;
	}
	map->n = 0;
}

static int fixed_add(struct blk_engine *eng, struct blk_fixed_map *map, uint8_t *base, uint64_t len)
{
	struct iovec iov = { .iov_base = base, .iov_len = (size_t)len };
	__u64 tag = 0;
	unsigned int slot;
	int ret;

	if (map->n == BLK_FIXED_MAX_CHUNKS)
		return -ENOSPC;
	for (slot = 0; slot < URING_MAX_BUFS && eng->buf_used[slot]; slot++)
		;
	if (slot == URING_MAX_BUFS)
		return -ENOSPC;
	ret = io_uring_register_buffers_update_tag(&eng->ring, slot, &iov, &tag, 1);
	if (ret < 0)
		return ret;
	eng->buf_used[slot] = true;
	map->chunk[map->n++] = (struct blk_fixed_chunk){ .base = base, .len = len,
							 .index = (uint16_t)slot };
	return 0;
}

static void uring_mem_changed(struct blk_engine *eng, const struct vu_mem *mem,
			      enum blk_fixed_mode mode, struct blk_fixed_map *map)
{
	int ret = 0;

	fixed_release(eng, map);
	if (!mem || mode == BLK_FIXED_OFF)
		return;
	if (!eng->bufs_registered) {
		ret = io_uring_register_buffers_sparse(&eng->ring, URING_MAX_BUFS);
		if (ret < 0) {
			vu_warn("io_uring: no fixed buffers (%s); using readv/writev", strerror(-ret));
			return;
		}
		eng->bufs_registered = true;
	}
	for (unsigned int r = 0; r < mem->nregions && ret == 0; r++) {
		const struct vu_mem_region *reg = &mem->regions[r];

		/* Registering pins every page: only memory resident anyway,
		 * unless asked (DESIGN.md, vhost-blk). */
		if (mode == BLK_FIXED_AUTO && !reg->hugepage)
			continue;
		for (uint64_t off = 0; off < reg->size && ret == 0; off += BLK_FIXED_CHUNK_MAX) {
			uint64_t len = reg->size - off < BLK_FIXED_CHUNK_MAX ? reg->size - off
									  : BLK_FIXED_CHUNK_MAX;

			ret = fixed_add(eng, map, reg->host + off, len);
		}
	}
	if (ret < 0) {
		vu_warn("io_uring: registering guest memory failed (%s); using readv/writev",
			strerror(-ret));
		fixed_release(eng, map);
	}
}

const struct blk_engine_ops blk_engine_uring_ops = {
	.name = "io_uring",
	.open_disk = blk_file_open,
	.close_disk = blk_file_close,
	.refresh_size = blk_file_refresh_size,
	.create = uring_create,
	.destroy = uring_destroy,
	.attach_disk = uring_attach_disk,
	.mem_changed = uring_mem_changed,
	.submit = uring_submit,
};
