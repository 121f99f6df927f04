/* SPDX-License-Identifier: MIT */
/*
 * vhost-blk internals: the backing disk, the virtio-blk device built on
 * the vhost-user library, requests, and the engine interface that the
 * I/O engines (io_uring, null) implement as peers.
 */
#ifndef BLK_H
#define BLK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <linux/virtio_blk.h>

#include "vu_dev.h"
#include "vu_poller.h"

#define BLK_SECTOR_SHIFT 9
#define BLK_SECTOR_SIZE 512u
/* Data segments a request may have (config seg_max). */
#define BLK_SEG_MAX 126
/* iovecs per chain: header, data, status, plus splits at region ends. */
#define BLK_CHAIN_IOV 256
/* Largest data segment (config size_max). */
#define BLK_SIZE_MAX (1u << 20)
/* Discard / write-zeroes limits advertised in config space. */
#define BLK_MAX_DISCARD_SECTORS (1u << 22)
#define BLK_MAX_DISCARD_SEG 32
#define BLK_SERIAL_LEN 20          /* VIRTIO_BLK_ID_BYTES */

/* Which guest memory the io_uring engine registers as fixed buffers. */
enum blk_fixed_mode {
	BLK_FIXED_AUTO,           /* hugetlbfs-backed regions: resident anyway */
	BLK_FIXED_ON,             /* every region (pins all guest memory) */
	BLK_FIXED_OFF,
};

/* Largest fixed buffer the kernel accepts, and chunks one device may use. */
#define BLK_FIXED_CHUNK_MAX (1ull << 30)
#define BLK_FIXED_MAX_CHUNKS 128

struct blk_fixed_chunk {
	uint8_t *base;
	uint64_t len;
	uint16_t index;           /* the engine's buffer slot */
};

/* The fixed buffers of one device in one engine; read by the poller. */
struct blk_fixed_map {
	unsigned int n;
	struct blk_fixed_chunk chunk[BLK_FIXED_MAX_CHUNKS];
};

enum blk_engine_kind {
	BLK_ENGINE_URING,
	BLK_ENGINE_NULL,
	BLK_ENGINE_RBD,
	BLK_ENGINE_COUNT,
};

/* One backing store, as the command line gave it. */
struct blk_disk_config {
	const char *socket_path;
	int socket_fd;            /* --fd, or -1 */
	bool client;
	const char *file;         /* io_uring, null: file or block device */
	const char *rbd;          /* rbd: POOL[/NAMESPACE]/IMAGE[@SNAP] */
	const char *ceph_conf;    /* rbd: NULL = Ceph's default search */
	const char *ceph_id;      /* rbd: client name without "client.", NULL = admin */
	const char *serial;
	bool read_only;
	bool direct;              /* O_DIRECT (default) */
	bool writeback;           /* initial WCE */
	enum blk_fixed_mode fixed;
	uint16_t num_queues;
	enum blk_engine_kind engine;
	bool engine_given;        /* command line: --engine was given */
	bool file_options;        /* command line: --direct or --fixed-buffers was given */
};

struct blk_disk {
	struct blk_disk_config cfg;
	const char *name;         /* the file or the image, for messages */
	int change_fd;            /* eventfd the store signals on a resize, or -1 */
	void *store;              /* the rbd engine's image */
	int fd;                   /* O_DIRECT when available */
	int fd_buffered;          /* for requests O_DIRECT refuses */
	bool is_blockdev;
	bool direct;              /* fd really is O_DIRECT */
	uint64_t capacity;        /* in 512-byte sectors; atomic access */
	uint32_t blk_size;        /* logical block size */
	uint8_t physical_block_exp;
	char serial[BLK_SERIAL_LEN];
	uint8_t wce;              /* guest-visible writeback cache; atomic */
	bool sync_rw;             /* in memory (tmpfs): read/write inline */
};

/* The file store of the io_uring and null engines (disk.c). */
int blk_file_open(struct blk_disk *disk, const struct blk_disk_config *cfg);
void blk_file_close(struct blk_disk *disk);
bool blk_file_refresh_size(struct blk_disk *disk);

/* Defaults every store starts from (serial, WCE, no change_fd). */
void blk_disk_init(struct blk_disk *disk, const struct blk_disk_config *cfg, const char *name);
/* Store a new capacity in bytes; true (and a log line) if it changed. */
bool blk_disk_set_size(struct blk_disk *disk, uint64_t bytes);

struct blk_queue;
struct blk_engine;

/* Virtio feature bits the device offers for this disk. */
uint64_t blk_device_features(const struct blk_disk *disk);

/* One request: a chain and what was parsed out of it. */
struct blk_req {
	struct blk_queue *q;
	struct vu_chain chain;
	uint32_t type;
	uint64_t sector;
	uint32_t data_len;
	unsigned int ndata;
	uint8_t *status;          /* host pointer to the guest's status byte */
	int pending;              /* engine operations outstanding */
	int result;               /* first error (-errno) of those */
	bool retried_buffered;
	bool flush_after;         /* rbd: make durable once the data ops are done */
	struct blk_req *next_submit; /* engine: requests queued in this pass */
	uint16_t next_free;
	struct iovec data[BLK_CHAIN_IOV];
	struct iovec iov[BLK_CHAIN_IOV];
	uint64_t gpa[BLK_CHAIN_IOV];
	/* DISCARD / WRITE_ZEROES ranges, copied out of guest memory. */
	struct virtio_blk_discard_write_zeroes ranges[BLK_MAX_DISCARD_SEG];
	unsigned int nranges;
};

struct blk_engine_ops {
	const char *name;
	/* Open the disk's backing store on the control thread, before any
	 * device or socket exists: fills capacity, block size, serial,
	 * read-only.  0, or -errno with a one-line message printed. */
	int (*open_disk)(struct blk_disk *disk, const struct blk_disk_config *cfg);
	void (*close_disk)(struct blk_disk *disk);
	/* Re-read the size (control thread); true if the capacity changed. */
	bool (*refresh_size)(struct blk_disk *disk);
	/* Create the engine of one poller (on the control thread). */
	struct blk_engine *(*create)(struct vu_poller *poller);
	void (*destroy)(struct blk_engine *eng);
	/* Optional: make a disk usable by this engine (register its files);
	 * returns the handle requests of that disk use (>= 0) or -errno. */
	int (*attach_disk)(struct blk_engine *eng, struct blk_disk *disk);
	/* The guest memory of a device changed (its queues drained, not
	 * running): replace the device's fixed buffers in map with the
	 * regions of mem (NULL: none) that mode selects.  Control thread. */
	void (*mem_changed)(struct blk_engine *eng, const struct vu_mem *mem,
			    enum blk_fixed_mode mode, struct blk_fixed_map *map);
	/* Poller: start a request; completion comes via blk_req_done(). */
	void (*submit)(struct blk_engine *eng, struct blk_req *req);
};

extern const struct blk_engine_ops blk_engine_uring_ops;
extern const struct blk_engine_ops blk_engine_null_ops;
extern const struct blk_engine_ops blk_engine_rbd_ops;

/* Per-queue state, allocated when the queue starts. */
struct blk_queue {
	struct vu_vq *vq;
	struct blk_disk *disk;
	struct blk_engine *engine;
	const struct blk_engine_ops *eops;
	int disk_handle;          /* from attach_disk, for this queue's engine */
	const struct blk_fixed_map *fixed; /* guest memory registered there */
	/* Requests popped, not completed.  Only the queue's poller writes it
	 * (engines complete on the poller), with plain atomic stores, no
	 * read-modify-write; the control thread reads it (queue_inflight). */
	unsigned int inflight;
	uint16_t free_head;
	uint16_t nreqs;
	struct blk_req *reqs;
};

/*
 * Engine: the operation for req finished with res (bytes or -errno).
 * Poller context.  When the last outstanding operation of the request
 * is done, the request completes to the guest.
 */
void blk_req_op_done(struct blk_req *req, int res);

/* The disk's device: one vhost-user device per disk. */
struct blk_device {
	struct blk_disk disk;
	struct vu_dev *vdev;
	struct vu_endpoint *ep;
	struct vu_dev_ops ops;         /* blk_dev_ops with this disk's features */
	const struct blk_engine_ops *eops;
	struct blk_engine **engines;   /* this device's engine, per poller */
	int *disk_handles;             /* the disk's handle in each engine */
	struct blk_fixed_map *fixed;   /* the device's fixed buffers, per engine */
	struct blk_queue queues[VU_DEV_MAX_QUEUES];
};

extern const struct vu_dev_ops blk_dev_ops;

#endif
