/* SPDX-License-Identifier: MIT */
/*
 * Inflight I/O tracking (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD): a shared
 * region, kept by the front-end across back-end restarts, that records
 * which chains were taken but not completed, so that a restarted backend
 * resubmits them in the order they were first taken.  Split and packed
 * layouts as in QEMU's docs/interop/vhost-user.rst.
 *
 * The region is writable by the front-end: every index read from it is
 * checked against the queue size before use (SECURITY.md A.6).
 */
#ifndef VU_INFLIGHT_H
#define VU_INFLIGHT_H

#include <stdbool.h>
#include <stdint.h>

#include "vu_msg.h"

struct vu_inflight_desc_split {
	uint8_t inflight;
	uint8_t padding[5];
	uint16_t next;
	uint64_t counter;
};

struct vu_inflight_region_split {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t last_batch_head;
	uint16_t used_idx;
	struct vu_inflight_desc_split desc[];
};

struct vu_inflight_desc_packed {
	uint8_t inflight;
	uint8_t padding;
	uint16_t next;
	uint16_t last;
	uint16_t num;
	uint64_t counter;
	uint16_t id;
	uint16_t flags;
	uint32_t len;
	uint64_t addr;
};

struct vu_inflight_region_packed {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t free_head;
	uint16_t old_free_head;
	uint16_t used_idx;
	uint16_t old_used_idx;
	uint8_t used_wrap_counter;
	uint8_t old_used_wrap_counter;
	uint8_t padding[7];
	struct vu_inflight_desc_packed desc[];
};

/* Per-queue tracking state, private to the backend. */
struct vu_inflight_queue {
	void *gregion;            /* shared region of this queue */
	uint16_t desc_num;
	bool packed;
	uint64_t counter;         /* next value of desc[].counter */
	/* Chains to resubmit after a reconnect, in their original order. */
	uint16_t *resubmit;
	uint16_t nresubmit;
	uint16_t resubmit_pos;
};

/* The shared area of a device (all queues), as mapped from the fd. */
struct vu_inflight_area {
	void *map;
	size_t map_len;
	int fd;
	uint16_t num_queues;
	uint16_t queue_size;
	uint64_t queue_region_size;
};

/* Bytes one queue's region takes for a queue of queue_size descriptors. */
uint64_t vu_inflight_queue_region_size(uint16_t queue_size);

/*
 * GET_INFLIGHT_FD: create a zeroed memfd area for num_queues queues of
 * queue_size.  Fills *area and *desc (mmap_size, offset 0).  0 or -errno.
 */
int vu_inflight_area_create(struct vu_inflight_area *area, uint16_t num_queues,
			    uint16_t queue_size, struct vu_inflight_desc *desc);

/*
 * SET_INFLIGHT_FD: map the front-end's area, taking ownership of fd.
 * Checks that mmap_size covers num_queues regions of queue_size, that
 * offset + size does not overflow and lies inside the file.  0 or -errno.
 */
int vu_inflight_area_map(struct vu_inflight_area *area, const struct vu_inflight_desc *desc, int fd);

/* Unmap and close.  Accepts an area never mapped. */
void vu_inflight_area_release(struct vu_inflight_area *area);

/*
 * Attach queue `index` of the area to iq, for a ring of ring_size
 * descriptors.  A fresh region (version 0) is initialised; otherwise the
 * recovery procedure of the spec runs (used_idx is the used ring's idx
 * for split rings, the wrap state for packed comes from the region) and
 * the chains to resubmit are collected, ordered by counter.  Returns 0,
 * -EINVAL if the region disagrees with the ring, -ENOMEM.
 */
int vu_inflight_queue_attach(struct vu_inflight_queue *iq, struct vu_inflight_area *area,
			     uint16_t index, uint16_t ring_size, bool packed,
			     uint16_t split_used_idx);
void vu_inflight_queue_detach(struct vu_inflight_queue *iq);

/*
 * Split ring: a head was taken (get); a head was completed into the used
 * ring (put, linking it into the current batch); the batch became
 * visible with used->idx = used_idx (commit).
 */
void vu_inflight_split_get(struct vu_inflight_queue *iq, uint16_t head);
void vu_inflight_split_put(struct vu_inflight_queue *iq, uint16_t head);
void vu_inflight_split_commit(struct vu_inflight_queue *iq, uint16_t used_idx);

/*
 * Packed ring: record a chain taken from the ring (its descriptors, as
 * copied); returns the slot that tracks it, to hand back at completion.
 * put links the slot back into the free list of the batch; commit makes
 * the batch final once its used descriptors are visible.
 */
struct vring_packed_desc;
uint16_t vu_inflight_packed_get(struct vu_inflight_queue *iq,
				const struct vring_packed_desc *descs, uint16_t n);
void vu_inflight_packed_put(struct vu_inflight_queue *iq, uint16_t slot,
			    uint16_t used_idx, bool used_wrap);
void vu_inflight_packed_commit(struct vu_inflight_queue *iq);

/*
 * Packed ring after a reconnect: the ring position the recovered region
 * implies (next used slot and wrap; next available slot and wrap).
 */
void vu_inflight_packed_ring_state(const struct vu_inflight_queue *iq, uint16_t *used_idx,
				   bool *used_wrap, uint16_t *avail_idx, bool *avail_wrap);

/* Descriptors saved for a packed slot (to rebuild the chain). */
const struct vu_inflight_desc_packed *vu_inflight_packed_slot(const struct vu_inflight_queue *iq,
							       uint16_t slot);

/*
 * Next chain to resubmit: split: its head index; packed: the slot whose
 * saved descriptors describe it.  Returns false when none is left.
 */
bool vu_inflight_next_resubmit(struct vu_inflight_queue *iq, uint16_t *out);

#endif
