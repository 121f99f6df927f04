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

/* vu_inflight_packed_get() could not track the chain (no free entry). */
#define VU_INFLIGHT_NO_SLOT 0xffff

struct vu_inflight_slot;

/*
 * Per-queue tracking state, private to the backend.  Zero it (or detach
 * it) before the first attach.  After attach the shared region is only
 * written, never read back: the shadow below is authoritative, so a
 * front-end scribbling on the region cannot steer the backend; it only
 * changes what a later recovery sees, and recovery re-validates all.
 * Used by the queue's owner only (attach while the queue is stopped).
 */
struct vu_inflight_queue {
	void *gregion;            /* shared region of this queue */
	uint16_t desc_num;
	uint16_t index;           /* queue index, for log lines */
	bool packed;
	uint64_t counter;         /* next value of desc[].counter */
	/* Chains to resubmit after a reconnect, in their original order. */
	uint16_t *resubmit;
	uint16_t nresubmit;
	uint16_t resubmit_pos;
	/* Completed since the last commit: heads (split) or slots (packed). */
	uint16_t *batch;
	uint16_t nbatch;
	bool warned;              /* a data-path error was logged (once per attach) */
	uint16_t last_batch_head; /* split */
	/* Packed: next/last/num/state of every entry; free list (committed
	 * part), chains put since the last commit, used position. */
	struct vu_inflight_slot *slots;
	struct vu_inflight_desc_packed *saved; /* validated copy for resubmission */
	uint16_t free_head;
	uint16_t nfree;
	uint16_t pending_head;
	uint16_t pending_tail;    /* last entry of the oldest pending chain */
	uint16_t used_idx;
	bool used_wrap;
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
 * GET_INFLIGHT_FD: create a zeroed memfd area (sealed against shrinking)
 * for num_queues queues of queue_size (1..32768).  Fills *area and *desc
 * (mmap_size, offset 0); the reply carries area->fd, which the area keeps
 * owning.  An area already mapped is released first, on success
 * only.  0 or -errno.
 */
int vu_inflight_area_create(struct vu_inflight_area *area, uint16_t num_queues,
			    uint16_t queue_size, struct vu_inflight_desc *desc);

/*
 * SET_INFLIGHT_FD: map the front-end's area, taking ownership of fd (it is
 * closed on error too).  Checks num_queues and queue_size (1..32768), that
 * mmap_size covers num_queues regions of queue_size, that offset + size
 * does not overflow and lies inside the file.  An area already mapped is
 * replaced on success and kept on error.  0 or -errno.
 */
int vu_inflight_area_map(struct vu_inflight_area *area, const struct vu_inflight_desc *desc, int fd);

/*
 * Unmap and close.  Accepts an area zeroed, never mapped or already
 * released (the fd is closed only if the area was mapped).  For create, map and release: caller is the control
 * thread and must have detached every queue of the area.
 */
void vu_inflight_area_release(struct vu_inflight_area *area);

/*
 * Attach queue `index` of the area to iq, for a ring of ring_size
 * descriptors (ring_size may be below the area's queue_size).  Attaching
 * an attached iq detaches it first.
 *
 * used_idx: split: the used ring's idx as read from the ring;
 * packed: the used position the queue starts from (bits 0-14 the index,
 * bit 15 the wrap counter, as in GET_VRING_BASE), recorded in a fresh
 * region; a recovered region keeps its own position (the front-end does
 * not know where a crashed backend stopped): read it back with
 * vu_inflight_packed_ring_state() after every packed attach.
 * gpring (packed, may be NULL): the descriptor ring, to tell whether a
 * batch that was being completed at the crash reached the driver (the
 * spec's flags check); without it that batch is taken as completed,
 * which is exact when put is called after the used descriptor is
 * written, as vq_packed.c does.
 *
 * A fresh region (version 0) is initialised; otherwise the recovery
 * procedure of the spec runs and the chains to resubmit are collected,
 * ordered by counter.  Corrupt entries (SECURITY.md A.6) are dropped with
 * a warning.  Returns 0, -EINVAL if the region disagrees with the ring or
 * its header is unusable, -ENOMEM.  Called by the queue's owner while the
 * queue is stopped; the area must stay mapped until detach.
 */
struct vring_packed_desc;
int vu_inflight_queue_attach(struct vu_inflight_queue *iq, struct vu_inflight_area *area,
			     uint16_t index, uint16_t ring_size, bool packed,
			     uint16_t used_idx, const struct vring_packed_desc *gpring);
/* Free iq's private memory.  Idempotent; does not touch the region. */
void vu_inflight_queue_detach(struct vu_inflight_queue *iq);

/*
 * Split ring: a head was taken (get); a head was completed into the used
 * ring (put, linking it into the current batch; before used->idx moves);
 * the batch became visible with used->idx = used_idx (commit, right after
 * the store of used->idx).  Heads >= desc_num are ignored with a warning.
 */
void vu_inflight_split_get(struct vu_inflight_queue *iq, uint16_t head);
void vu_inflight_split_put(struct vu_inflight_queue *iq, uint16_t head);
void vu_inflight_split_commit(struct vu_inflight_queue *iq, uint16_t used_idx);

/*
 * Packed ring: record a chain taken from the ring (its n descriptors, as
 * copied, host byte order); returns the slot that tracks it, to hand back
 * at completion, or VU_INFLIGHT_NO_SLOT (chain not tracked) if n is 0 or
 * larger than the free entries.  put links the chain back into the free
 * list of the batch, with the ring's used position after its used
 * descriptor (VU_INFLIGHT_NO_SLOT and slots not in flight are ignored);
 * commit makes the batch final once its used descriptors are visible.
 * Entries freed by put are reused only after commit.
 */
uint16_t vu_inflight_packed_get(struct vu_inflight_queue *iq,
				const struct vring_packed_desc *descs, uint16_t n);
void vu_inflight_packed_put(struct vu_inflight_queue *iq, uint16_t slot,
			    uint16_t used_idx, bool used_wrap);
void vu_inflight_packed_commit(struct vu_inflight_queue *iq);

/*
 * Packed ring, right after attach: the ring position the region implies
 * (next used slot and wrap; next available slot and wrap, past the
 * descriptors of every chain to resubmit).  For a fresh region, the
 * position given to attach.
 */
void vu_inflight_packed_ring_state(const struct vu_inflight_queue *iq, uint16_t *used_idx,
				   bool *used_wrap, uint16_t *avail_idx, bool *avail_wrap);

/*
 * Descriptors saved for a packed slot of a chain being resubmitted (to
 * rebuild it): a copy validated at attach, so its num and next links stay
 * inside the region whatever the front-end writes later.  NULL if slot is
 * out of range or not part of a chain to resubmit (any more).
 */
const struct vu_inflight_desc_packed *vu_inflight_packed_slot(const struct vu_inflight_queue *iq,
							       uint16_t slot);

/*
 * Next chain to resubmit: split: its head index; packed: the slot whose
 * saved descriptors describe it.  Returns false when none is left.
 */
bool vu_inflight_next_resubmit(struct vu_inflight_queue *iq, uint16_t *out);

#endif
