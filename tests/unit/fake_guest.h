/* SPDX-License-Identifier: MIT */
/*
 * Test fixture shared by the unit tests of common/: fake guest memory and
 * a fake guest driver.
 *
 * The guest's memory is three memfd-backed regions, mapped into the
 * library through the real vu_mem_add() (so the translation under test
 * is the real one) and mapped a second time here as the guest's own view.
 * Guest physical and front-end virtual addresses differ, region 0 starts
 * a few pages into its file, and there is a hole between regions 0 and 1;
 * regions 1 and 2 are adjacent, so that a buffer can span them:
 *
 *   gpa 0x000000 - 0x0fffff  region 0 (uva FG_R0_UVA, file offset 0x3000)
 *   gpa 0x100000 - 0x1fffff  hole
 *   gpa 0x200000 - 0x2fffff  region 1 (uva FG_R1_UVA)
 *   gpa 0x300000 - 0x3fffff  region 2 (uva FG_R2_UVA)
 *
 * The driver side writes rings as a little-endian guest would (virtio 1.x)
 * through the guest view, and the tests drive vu_vq_pop/push/notify
 * directly: no poller, no socket.  Each queue's call fd is a real
 * non-blocking eventfd so that a test can see whether the guest was
 * signalled.
 *
 * Helpers fail the running cmocka test on setup errors.
 */
#ifndef FAKE_GUEST_H
#define FAKE_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/virtio_ring.h>

#include "vu_dev.h"

#define FG_R0_GPA    0x000000ull
#define FG_R0_SIZE   0x100000ull
#define FG_R0_UVA    0x7f5000000000ull
#define FG_R0_OFFSET 0x3000ull
#define FG_HOLE_GPA  0x100000ull
#define FG_HOLE_SIZE 0x100000ull
#define FG_R1_GPA    0x200000ull
#define FG_R1_SIZE   0x100000ull
#define FG_R1_UVA    0x7f1000000000ull
#define FG_R2_GPA    0x300000ull
#define FG_R2_SIZE   0x100000ull
#define FG_R2_UVA    0x7f3000000000ull
#define FG_MEM_END   0x400000ull

/* Rings live at the start of region 0; buffers from FG_BUF_GPA on. */
#define FG_RING_GPA  0x000000ull
#define FG_RING2_GPA 0x040000ull  /* a second ring or indirect tables */
#define FG_BUF_GPA   0x080000ull

#define FG_MAX_REGIONS 8

struct fg_region {
	uint64_t gpa, size, uva, offset;
	uint8_t *view;      /* the guest's view of gpa */
	void *map;
	size_t map_len;
};

struct fake_guest {
	struct vu_dev *dev;  /* dev->mem is the library's table */
	struct fg_region regions[FG_MAX_REGIONS];
	unsigned int nregions;
};

/* Guest with the three standard regions and a bare device. */
struct fake_guest *fg_create(void);
void fg_destroy(struct fake_guest *g);

/*
 * Add a region: a memfd of offset + size bytes, handed to vu_mem_add()
 * (which owns the fd afterwards) and mapped here as the guest's view.
 * Returns vu_mem_add()'s result.
 */
int fg_add_region(struct fake_guest *g, uint64_t gpa, uint64_t size, uint64_t uva,
		  uint64_t offset);

/* The guest's view of [gpa, gpa + len); fails the test if not in one region. */
void *fg_ptr(const struct fake_guest *g, uint64_t gpa, uint64_t len);
/* The front-end virtual address of gpa. */
uint64_t fg_uva(const struct fake_guest *g, uint64_t gpa);
/* The gpa a library host pointer points at; false if none. */
bool fg_host_to_gpa(const struct fake_guest *g, const void *host, uint64_t *gpa);

/* Open file descriptors of this process (from /proc/self/fd). */
int fg_count_fds(void);
/* A non-blocking eventfd. */
int fg_eventfd(void);
/* Read and clear an eventfd: true if it had been signalled. */
bool fg_eventfd_fired(int fd);

/* ---- split ring driver ---- */

#define FG_EVENT_IDX (1u << 0)
#define FG_INDIRECT  (1u << 1)
#define FG_IN_ORDER  (1u << 2)   /* packed: VIRTIO_F_IN_ORDER negotiated */

struct fg_split {
	struct fake_guest *g;
	struct vu_vq *vq;
	uint32_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct vring_desc *desc;    /* guest views */
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;         /* next avail->idx the driver publishes */
	uint16_t last_used;         /* next used entry the driver reads */
};

/*
 * Queue `index` of g->dev as a started split ring of size entries at
 * ring_gpa (descriptors, available ring, used ring on the next page
 * boundary), both indexes at start, features from flags, a fresh eventfd
 * as call fd.
 */
void fg_split_setup(struct fake_guest *g, struct fg_split *r, uint16_t index, uint32_t size,
		    uint64_t ring_gpa, uint16_t start, unsigned int flags);
void fg_split_teardown(struct fg_split *r);

/* Write a descriptor (little-endian) into a table in guest memory. */
void fg_desc_write(struct vring_desc *gd, uint64_t addr, uint32_t len, uint16_t flags,
		   uint16_t next);
/* Write descriptor i of the ring's table. */
void fg_split_desc(struct fg_split *r, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		   uint16_t next);
/* Put head into the available ring and publish the new avail->idx. */
void fg_split_publish(struct fg_split *r, uint16_t head);
/* Publish avail->idx = idx without writing ring entries. */
void fg_split_set_avail_idx(struct fg_split *r, uint16_t idx);
/* The next used element if used->idx moved past it. */
bool fg_split_get_used(struct fg_split *r, uint32_t *id, uint32_t *len);
uint16_t fg_split_used_idx(const struct fg_split *r);
uint16_t fg_split_used_flags(const struct fg_split *r);
/* EVENT_IDX fields: used_event (driver writes), avail_event (device writes). */
void fg_split_set_used_event(struct fg_split *r, uint16_t v);
uint16_t fg_split_avail_event(const struct fg_split *r);
void fg_split_set_avail_flags(struct fg_split *r, uint16_t flags);

/* ---- packed ring driver ---- */

struct fg_buf {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;   /* VRING_DESC_F_WRITE, VRING_DESC_F_INDIRECT */
};

struct fg_packed {
	struct fake_guest *g;
	struct vu_vq *vq;
	uint32_t size;
	uint64_t desc_gpa, drv_gpa, dev_gpa;
	struct vring_packed_desc *desc;           /* guest views */
	struct vring_packed_desc_event *drv;      /* driver event suppression */
	struct vring_packed_desc_event *devev;    /* device event suppression */
	uint16_t next_avail;
	bool avail_wrap;
	uint16_t next_used;
	bool used_wrap;
	uint16_t chain_len[65536];   /* descriptors of the chain with each id */
	uint16_t order[65536];       /* ids in the order made available (a FIFO) */
	uint16_t order_head, order_tail;
};

/*
 * Queue `index` of g->dev as a started packed ring of size descriptors
 * at ring_gpa (driver event area and device event area follow), both
 * wrap counters 1, positions 0.
 */
void fg_packed_setup(struct fake_guest *g, struct fg_packed *r, uint16_t index, uint32_t size,
		     uint64_t ring_gpa, unsigned int flags);
void fg_packed_teardown(struct fg_packed *r);
/* Descriptor flags that mark a descriptor available in wrap `wrap`. */
uint16_t fg_packed_avail_flags(bool wrap);
/*
 * Make a chain of n buffers available with buffer id `id` (written in
 * every descriptor); the head's flags are stored last, with release.
 * Returns the head's slot.
 */
uint16_t fg_packed_add(struct fg_packed *r, const struct fg_buf *bufs, unsigned int n,
		       uint16_t id);
/* The next used descriptor, if the device marked it used. */
bool fg_packed_get_used(struct fg_packed *r, uint16_t *id, uint32_t *len);
/*
 * IN_ORDER: the next used descriptor may stand for a batch, every buffer
 * made available up to the one with its id.  Returns how many buffers it
 * marks used (0 if none) and skips their slots; fails the test if its id
 * was not made available.
 */
unsigned int fg_packed_get_used_batch(struct fg_packed *r, uint16_t *id, uint32_t *len);
void fg_packed_set_driver_event(struct fg_packed *r, uint16_t flags, uint16_t off, bool wrap);

#endif
