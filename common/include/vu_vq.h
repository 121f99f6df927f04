/* SPDX-License-Identifier: MIT */
/*
 * Virtqueues: split and packed rings in guest memory, walked by the
 * poller that owns the queue.
 *
 * A device takes available chains with vu_vq_pop(), which copies every
 * descriptor out of shared memory once (SECURITY.md B.16), validates the
 * copy, follows indirect tables, and turns the chain into iovecs that
 * point into guest memory.  Malformed chains never reach the device: the
 * walker logs them and returns them to the used ring with length 0
 * (B.20), or latches the queue broken when even that is impossible.
 * vu_vq_push() completes a chain (in any order), and vu_vq_notify()
 * signals the guest once per batch, honouring EVENT_IDX and flag-based
 * suppression.  Inflight tracking and dirty logging are done here too.
 *
 * Pointers into guest-shared memory carry a `g` prefix.
 *
 * Threading: everything but the vu_vq_ctl_* functions runs on the owning
 * poller.  The control thread changes a queue only while it is quiesced
 * (see vu_poller.h).
 */
#ifndef VU_VQ_H
#define VU_VQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <linux/virtio_ring.h>

struct vu_dev;
struct vu_poller;
struct vu_inflight_queue;

/* Largest queue the protocol allows (SECURITY.md A.5). */
#define VU_VQ_MAX_SIZE 32768

/*
 * A chain taken from the ring.  The caller provides the iovec arrays
 * (vu_chain_init); readable segments come first (out), writable after (in).
 */
struct vu_chain {
	uint16_t id;         /* head index (split) or buffer id (packed) */
	uint16_t ndescs;     /* ring slots the chain used (packed) */
	uint16_t inflight_slot; /* packed: inflight-region slot tracking it */
	uint16_t nout;       /* device-readable iovecs: iov[0 .. nout) */
	uint16_t nin;        /* device-writable iovecs: iov[nout .. nout+nin) */
	uint32_t out_len;    /* bytes readable */
	uint32_t in_len;     /* bytes writable */
	uint16_t max;        /* capacity of iov[] and gpa[] */
	struct iovec *iov;
	uint64_t *gpa;       /* guest physical address of each iovec (logging) */
};

/* Give a chain its segment arrays (both of max entries). */
static inline void vu_chain_init(struct vu_chain *c, struct iovec *iov,
				 uint64_t *gpa, uint16_t max)
{
	c->iov = iov;
	c->gpa = gpa;
	c->max = max;
	c->nout = c->nin = 0;
	c->out_len = c->in_len = 0;
}

struct vu_vq_stats {
	uint64_t popped;
	uint64_t completed;
	uint64_t notified;
	uint64_t bad_chains;
};

struct vu_vq {
	/* ---- set by the control thread while the queue is quiesced ---- */
	struct vu_dev *dev;
	uint16_t index;
	uint32_t size;          /* SET_VRING_NUM; 0 = not set */
	bool packed;
	bool event_idx;
	bool indirect;
	bool in_order;          /* VIRTIO_F_IN_ORDER */
	bool log_used;          /* VHOST_VRING_F_LOG */
	uint64_t log_guest_addr; /* used ring's gpa for the dirty log */
	uint64_t log_desc_gpa;  /* packed: the descriptor ring's gpa */
	struct vhost_vring_addr addr; /* as received (UVAs) */
	bool addr_set;

	/* Split ring, translated from addr. */
	struct vring_desc *gdesc;
	struct vring_avail *gavail;
	struct vring_used *gused;
	/* Packed ring. */
	struct vring_packed_desc *gpdesc;
	struct vring_packed_desc_event *gdriver_event;
	struct vring_packed_desc_event *gdevice_event;

	int kick_fd;
	int call_fd;
	int err_fd;

	struct vu_inflight_queue *inflight; /* NULL unless INFLIGHT_SHMFD */
	struct vu_poller *poller;
	void *priv;             /* the device's per-queue state */

	/* States of the spec: stopped, started-disabled, started-enabled. */
	bool started;
	bool enabled;
	/* Read by the poller on every visit; written under quiesce. */
	bool runnable;
	/* Latched on a guest error that leaves the ring unusable. */
	bool broken;

	/* ---- owned by the poller ---- */
	uint16_t last_avail_idx;  /* split: next avail entry; packed: next desc */
	uint16_t shadow_avail_idx; /* split: avail->idx as last read */
	uint16_t mem_hint;        /* region of the last translated buffer */
	uint16_t used_idx;        /* split: shadow used->idx; packed: next used slot */
	bool avail_wrap;          /* packed: driver wrap counter we expect */
	bool used_wrap;           /* packed: device wrap counter */
	uint16_t signalled_used;  /* used idx at the last notification */
	bool signalled_used_valid;
	/* Packed: ring slots used since the last flush.  used_idx is a slot
	 * number, so only this count tells how far it moved (C.26). */
	uint32_t used_since_flush;
	bool notify_pending;      /* completions not yet signalled */
	/* Packed with IN_ORDER: zero-length completions since the last
	 * flush, to be marked used together by one descriptor, the last
	 * one's id in the first one's slot (vq_packed.c). */
	bool used_batch;
	bool used_batch_wrap;
	uint16_t used_batch_slot;
	uint16_t used_batch_id;
	bool notify_enabled;      /* guest kicks requested (sleeping mode) */
	struct vu_vq_stats stats;
};

/*
 * Take the next available chain.  Returns 1 with *chain filled, 0 when
 * the ring is empty, -EIO once the queue is broken.  Chains the guest
 * built badly are completed with length 0 and skipped.
 */
int vu_vq_pop(struct vu_vq *vq, struct vu_chain *chain);

/*
 * Return a chain to the guest with `written` bytes written into its
 * writable part (clamped to in_len).  Logs dirty pages if the front-end
 * asked for it, clears the inflight entry.  Does not notify.
 */
void vu_vq_push(struct vu_vq *vq, const struct vu_chain *chain, uint32_t written);

/*
 * Dirty-log the last len writable bytes of a chain (a status byte the
 * device wrote past the length it reports).  No-op without logging.
 */
void vu_vq_log_tail(struct vu_vq *vq, const struct vu_chain *chain, uint32_t len);

/*
 * Make the completions pushed so far visible to the driver (split: the
 * used index; packed: a held IN_ORDER batch), without signalling it.  A
 * device that completes a long run of requests in one pass calls this
 * between parts of the run, so that the driver can reuse those buffers
 * while the device works on the rest; vu_vq_notify() still decides on
 * one signal for all of them.
 */
void vu_vq_publish(struct vu_vq *vq);

/* Publish, then signal the guest if it has not suppressed it. */
void vu_vq_notify(struct vu_vq *vq);

/* True if the guest made buffers available that were not popped yet. */
bool vu_vq_has_work(struct vu_vq *vq);

/*
 * Ask the guest to kick on new buffers (before sleeping) or to stop
 * kicking (while polling).  vu_vq_enable_notify() returns true if work
 * arrived meanwhile, in which case the caller must not sleep (C.25).
 */
bool vu_vq_enable_notify(struct vu_vq *vq);
void vu_vq_disable_notify(struct vu_vq *vq);

/* Latch the queue broken with a log line; it is not processed again. */
void vu_vq_set_broken(struct vu_vq *vq, const char *why);

/* ---- control thread, queue quiesced ---- */

/* Initialise a queue of a device (no ring, no fds, stopped). */
void vu_vq_ctl_init(struct vu_vq *vq, struct vu_dev *dev, uint16_t index);

/*
 * Translate the ring addresses of vq->addr in the current memory table
 * and check size, alignment and that each ring lies inside one region
 * (SECURITY.md A.9).  Returns 0 or -EINVAL/-EFAULT; on error the ring
 * pointers are cleared.
 */
int vu_vq_ctl_map(struct vu_vq *vq);

/* Forget ring pointers (after the memory table changed, before remap). */
void vu_vq_ctl_unmap(struct vu_vq *vq);

/*
 * Set the next index (SET_VRING_BASE).  Packed: bits 0-14 the next
 * available slot, bit 15 its wrap counter, and in bits 16-31 the used
 * position in the same form (QEMU); 0 there means "same as available".
 */
void vu_vq_ctl_set_base(struct vu_vq *vq, uint32_t num);

/* The index to report with GET_VRING_BASE (same form as set_base). */
uint32_t vu_vq_ctl_get_base(const struct vu_vq *vq);

/*
 * Start processing: map the ring (if not yet), set up the shadow state
 * and inflight recovery.  0 or -errno (the queue stays stopped).
 */
int vu_vq_ctl_start(struct vu_vq *vq);

/* Close the queue's fds and return it to the initial state. */
void vu_vq_ctl_reset(struct vu_vq *vq);

#endif
