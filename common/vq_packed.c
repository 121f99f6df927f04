// SPDX-License-Identifier: MIT
/*
 * The packed ring walker (virtio 1.2, 2.8): one descriptor ring that the
 * driver marks available and the device marks used, with a wrap counter
 * on each side.
 *
 * Descriptors are copied once (SECURITY.md B.16); the head's flags are
 * read with acquire semantics before anything else of the chain (C.22).
 * A chain may span at most `size` descriptors; an indirect table at most
 * len / 16.  The wrap counters flip exactly when an index passes the end
 * of the ring, also for a chain of exactly `size` descriptors (C.26).
 */
#include <string.h>

#include "vq_priv.h"

static inline bool desc_is_avail(uint16_t flags, bool wrap)
{
	bool avail = flags & (1u << VRING_PACKED_DESC_F_AVAIL);
	bool used = flags & (1u << VRING_PACKED_DESC_F_USED);

	return avail == wrap && used != wrap;
}

static inline void desc_copy(struct vring_packed_desc *out, const struct vring_packed_desc *gdesc)
{
	memcpy(out, gdesc, sizeof(*out));
	out->addr = le64toh(out->addr);
	out->len = le32toh(out->len);
	out->id = le16toh(out->id);
	out->flags = le16toh(out->flags);
}

static inline void advance(uint16_t *idx, bool *wrap, uint16_t n, uint32_t size)
{
	uint32_t next = (uint32_t)*idx + n;

	if (next >= size) {
		next -= size;
		*wrap = !*wrap;
	}
	*idx = (uint16_t)next;
}

static int walk_indirect(struct vu_vq *vq, struct vu_chain *c, const struct vring_packed_desc *d)
{
	const struct vring_packed_desc *gtable;
	struct vring_packed_desc e;
	uint32_t n;
	int ret;

	if (vu_unlikely(!vq->indirect)) {
		vq_report_bad_chain(vq, "indirect descriptor without INDIRECT_DESC");
		return -EINVAL;
	}
	if (vu_unlikely(d->len == 0 || d->len % sizeof(struct vring_packed_desc))) {
		vq_report_bad_chain(vq, "indirect table length %u is not a non-zero multiple of 16", d->len);
		return -EINVAL;
	}
	gtable = vu_mem_gpa_to_host(vq->dev->mem, d->addr, d->len);
	if (vu_unlikely(!gtable || ((uintptr_t)gtable & 7))) {
		vq_report_bad_chain(vq, "indirect table gpa 0x%llx len %u not in one region",
				    (unsigned long long)d->addr, d->len);
		return -EFAULT;
	}
	n = d->len / sizeof(struct vring_packed_desc);
	for (uint32_t i = 0; i < n; i++) {
		desc_copy(&e, &gtable[i]);
		if (vu_unlikely(e.flags & VRING_DESC_F_INDIRECT)) {
			vq_report_bad_chain(vq, "nested indirect descriptor");
			return -EINVAL;
		}
		ret = vq_chain_add(vq, c, e.addr, e.len, e.flags & VRING_DESC_F_WRITE);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Walk the chain whose head is at ring slot `idx` (already seen
 * available, and copied into *head).  Fills c, c->ndescs, c->id; saves
 * the copied descriptors in descs (for inflight tracking).  0 or -errno
 * (bad chain; c->ndescs and c->id still say how to return it).
 */
static int walk_chain(struct vu_vq *vq, struct vu_chain *c, const struct vring_packed_desc *head,
		      uint16_t idx, bool wrap, struct vring_packed_desc *descs,
		      uint16_t *ndescs_saved, uint16_t max_saved)
{
	struct vring_packed_desc d = *head;
	uint32_t count = 0;
	int err = 0;

	c->nout = c->nin = 0;
	c->out_len = c->in_len = 0;
	for (;;) {
		if (count == vq->size) {
			vq_report_bad_chain(vq, "chain longer than the ring (%u)", vq->size);
			err = -ELOOP;
			break;
		}
		if (count) {
			/* Later descriptors of a chain were written before the
			 * head was made available; they must be available too. */
			uint16_t f = le16toh(vu_load_relaxed16(&vq->gpdesc[idx].flags));

			if (vu_unlikely(!desc_is_avail(f, wrap))) {
				vq_report_bad_chain(vq, "chain continues into a descriptor not available");
				err = -EINVAL;
				break;
			}
			desc_copy(&d, &vq->gpdesc[idx]);
		}
		if (count < max_saved)
			descs[count] = d;
		count++;
		advance(&idx, &wrap, 1, vq->size);
		if (err == 0) {
			if (d.flags & VRING_DESC_F_INDIRECT) {
				if (vu_unlikely(count > 1 || (d.flags & VRING_DESC_F_NEXT))) {
					vq_report_bad_chain(vq, "indirect descriptor inside a chain");
					err = -EINVAL;
				} else {
					err = walk_indirect(vq, c, &d);
				}
			} else {
				err = vq_chain_add(vq, c, d.addr, d.len, d.flags & VRING_DESC_F_WRITE);
			}
		}
		/* Keep consuming the chain's slots even after an error, so the
		 * ring stays in step with the driver. */
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
	}
	c->ndescs = (uint16_t)count;
	c->id = d.id;          /* the buffer id is in the last descriptor */
	*ndescs_saved = (uint16_t)(count < max_saved ? count : max_saved);
	if (err == 0 && vu_unlikely(d.id >= vq->size)) {
		vq_report_bad_chain(vq, "buffer id %u >= queue size %u", d.id, vq->size);
		err = -EINVAL;
	}
	return err;
}

/* Rebuild a chain saved in the inflight region (after a reconnect). */
static int pop_resubmit(struct vu_vq *vq, struct vu_chain *c)
{
	struct vu_inflight_queue *iq = vq->inflight;
	const struct vu_inflight_desc_packed *e;
	uint16_t slot, n, i;
	int ret = 0;

	if (!vu_inflight_next_resubmit(iq, &slot))
		return 0;
	e = vu_inflight_packed_slot(iq, slot);
	if (!e)
		return -EINVAL;
	n = e->num;
	c->nout = c->nin = 0;
	c->out_len = c->in_len = 0;
	c->inflight_slot = slot;
	c->ndescs = n;
	for (i = 0; i < n && ret == 0; i++) {
		const struct vu_inflight_desc_packed *s = vu_inflight_packed_slot(iq, slot);

		if (!s)
			return -EINVAL;
		if (s->flags & VRING_DESC_F_INDIRECT) {
			struct vring_packed_desc d = { .addr = s->addr, .len = s->len, .flags = s->flags };

			ret = walk_indirect(vq, c, &d);
		} else {
			ret = vq_chain_add(vq, c, s->addr, s->len, s->flags & VRING_DESC_F_WRITE);
		}
		c->id = s->id;
		slot = s->next;
	}
	return ret ? ret : 1;
}

/* A chain of one direct descriptor d, the usual case: walk_chain() without the loop. */
static inline int chain_one(struct vu_vq *vq, struct vu_chain *c, const struct vring_packed_desc *d)
{
	int err = vq_chain_one(vq, c, d->addr, d->len, d->flags & VRING_DESC_F_WRITE);

	c->ndescs = 1;
	c->id = d->id;
	if (err == 0 && vu_unlikely(d->id >= vq->size)) {
		vq_report_bad_chain(vq, "buffer id %u >= queue size %u", d->id, vq->size);
		err = -EINVAL;
	}
	return err;
}

/*
 * The head at idx is indirect: start loading the tables of the available
 * indirect heads after it in the same cache line (already loaded with
 * it; lines further on are the driver's to write).  A hint only.
 */
static void prefetch_tables_in_line(const struct vu_vq *vq, uint16_t idx, bool wrap)
{
	for (uint32_t i = idx + 1u; i < vq->size && ((uintptr_t)&vq->gpdesc[i] & 63); i++) {
		const struct vring_packed_desc *d = &vq->gpdesc[i];
		uint16_t f = le16toh(vu_load_relaxed16(&d->flags));

		if (!desc_is_avail(f, wrap) || !(f & VRING_DESC_F_INDIRECT))
			return;
		vq_prefetch_table(vq, le64toh(d->addr));
	}
}

#define SAVED_MAX 64

int vq_packed_pop(struct vu_vq *vq, struct vu_chain *c)
{
	struct vring_packed_desc saved[SAVED_MAX], head;

	for (uint32_t tries = 0; tries <= vq->size; tries++) {
		uint16_t flags, nsaved, idx = vq->last_avail_idx;
		const struct vring_packed_desc *descs = saved;
		bool wrap = vq->avail_wrap;
		int ret;

		if (vq->inflight && vq->inflight->resubmit_pos < vq->inflight->nresubmit) {
			ret = pop_resubmit(vq, c);
			if (ret == 1) {
				vq->stats.popped++;
				return 1;
			}
			if (ret < 0) {
				vq->stats.bad_chains++;
				vq_packed_push(vq, c, 0);
			}
			continue;
		}
		/* Acquire: the rest of the chain is read after the head's
		 * flags (C.22; pairs with the driver's release of the flags). */
		flags = le16toh(vu_load_acquire16(&vq->gpdesc[idx].flags));
		if (!desc_is_avail(flags, wrap))
			return 0;
		desc_copy(&head, &vq->gpdesc[idx]);
		if (head.flags & VRING_DESC_F_INDIRECT)
			prefetch_tables_in_line(vq, idx, wrap);
		if (vu_likely(!(head.flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT)))) {
			ret = chain_one(vq, c, &head);
			descs = &head;
			nsaved = 1;
		} else {
			ret = walk_chain(vq, c, &head, idx, wrap, saved, &nsaved, SAVED_MAX);
		}
		advance(&vq->last_avail_idx, &vq->avail_wrap, c->ndescs, vq->size);
		if (vq->inflight) {
			if (c->ndescs > SAVED_MAX && ret == 0) {
				vq_report_bad_chain(vq, "chain of %u descriptors too long to track in flight",
						    c->ndescs);
				ret = -E2BIG;
			}
			c->inflight_slot = vu_inflight_packed_get(vq->inflight, descs, nsaved);
		}
		if (vu_likely(ret == 0)) {
			vq->stats.popped++;
			return 1;
		}
		vq->stats.bad_chains++;
		vq_packed_push(vq, c, 0);
	}
	return 0;
}

/* Mark the descriptor at slot used, in the device wrap counter wrap. */
static void used_write(struct vu_vq *vq, uint16_t slot, bool wrap, uint16_t id, uint32_t len)
{
	struct vring_packed_desc *gd = &vq->gpdesc[slot];
	uint16_t flags = wrap ? (1u << VRING_PACKED_DESC_F_AVAIL) | (1u << VRING_PACKED_DESC_F_USED) : 0;

	if (len)
		flags |= VRING_DESC_F_WRITE;
	__atomic_store_n(&gd->id, htole16(id), __ATOMIC_RELAXED);
	__atomic_store_n(&gd->len, htole32(len), __ATOMIC_RELAXED);
	/* Release: id and len visible before the flags that hand the
	 * descriptor to the driver (pairs with its acquire of flags). */
	vu_store_release16(&gd->flags, htole16(flags));
	vq_log_used(vq, (uint64_t)slot * sizeof(*gd), sizeof(*gd));
}

/* Write the pending IN_ORDER batch, if any. */
static inline void used_batch_write(struct vu_vq *vq)
{
	if (!vq->used_batch)
		return;
	vq->used_batch = false;
	used_write(vq, vq->used_batch_slot, vq->used_batch_wrap, vq->used_batch_id, 0);
}

/*
 * With VIRTIO_F_IN_ORDER the device may mark a batch of buffers used with
 * one descriptor: the last buffer's id in the first buffer's slot; the
 * driver skips the slots of the ones before it (virtio 1.2, 2.8.23).  It
 * says nothing of their lengths, so only zero-length completions (the
 * guest's buffers read, none written) are batched, until the flush or the
 * next completion with a length, which writes the batch first.  The
 * descriptor lines the driver reuses are then written once per batch, not
 * once per buffer.  A batch cannot outgrow a lap: the driver sees none of
 * it until the flush.  Not with inflight tracking, which records each
 * completion as it is made.
 */
void vq_packed_push(struct vu_vq *vq, const struct vu_chain *c, uint32_t len)
{
	if (vq->in_order && !len && !vq->inflight) {
		if (!vq->used_batch) {
			vq->used_batch = true;
			vq->used_batch_slot = vq->used_idx;
			vq->used_batch_wrap = vq->used_wrap;
		}
		vq->used_batch_id = c->id;
	} else {
		used_batch_write(vq);
		used_write(vq, vq->used_idx, vq->used_wrap, c->id, len);
	}
	advance(&vq->used_idx, &vq->used_wrap, c->ndescs, vq->size);
	/* Saturates just past a full ring: by then every slot was crossed. */
	if (vq->used_since_flush <= vq->size)
		vq->used_since_flush += c->ndescs;
	if (vq->inflight)
		vu_inflight_packed_put(vq->inflight, c->inflight_slot, vq->used_idx, vq->used_wrap);
	vq->notify_pending = true;
	vq->stats.completed++;
}

/* Used descriptors are visible as they are written: left to write are a
 * held IN_ORDER batch and the inflight record. */
void vq_packed_publish(struct vu_vq *vq)
{
	used_batch_write(vq);
	if (vq->inflight)
		vu_inflight_packed_commit(vq->inflight);
}

void vq_packed_flush(struct vu_vq *vq)
{
	uint16_t event_flags, new = vq->used_idx;
	uint32_t moved = vq->used_since_flush;
	bool notify;

	vq_packed_publish(vq);
	vq->notify_pending = false;
	vq->used_since_flush = 0;
	/* Full barrier: used descriptors visible before we read the
	 * driver's event suppression (C.23). */
	vu_smp_mb();
	event_flags = le16toh(vu_load_relaxed16(&vq->gdriver_event->flags));
	if (event_flags == VRING_PACKED_EVENT_FLAG_DESC && vq->event_idx) {
		uint16_t off_wrap = le16toh(vu_load_relaxed16(&vq->gdriver_event->off_wrap));
		uint16_t event = off_wrap & 0x7fff, old;

		if ((bool)(off_wrap >> 15) != vq->used_wrap)
			event -= (uint16_t)vq->size;
		/* Slots are ring positions, not free-running counters: old is
		 * where this batch started on the scale of new and event (in
		 * the previous lap it is "below zero"), so that a batch of
		 * exactly the ring size is not mistaken for an empty one.
		 * More than a lap since the last flush crossed every slot in
		 * either wrap (C.26). */
		old = (uint16_t)(new - moved);
		notify = !vq->signalled_used_valid || moved > vq->size ||
			 vring_need_event(event, new, old);
	} else {
		notify = event_flags != VRING_PACKED_EVENT_FLAG_DISABLE;
	}
	vq->signalled_used = new;
	vq->signalled_used_valid = true;
	if (notify)
		vq_signal(vq);
}

bool vq_packed_has_work(struct vu_vq *vq)
{
	if (vq->inflight && vq->inflight->resubmit_pos < vq->inflight->nresubmit)
		return true;
	return desc_is_avail(le16toh(vu_load_acquire16(&vq->gpdesc[vq->last_avail_idx].flags)),
			     vq->avail_wrap);
}

bool vq_packed_enable_notify(struct vu_vq *vq)
{
	if (vq->event_idx) {
		uint16_t off_wrap = vq->last_avail_idx | (uint16_t)(vq->avail_wrap << 15);

		vu_store_relaxed16(&vq->gdevice_event->off_wrap, htole16(off_wrap));
		vu_smp_wmb();
		vu_store_relaxed16(&vq->gdevice_event->flags, htole16(VRING_PACKED_EVENT_FLAG_DESC));
	} else {
		vu_store_relaxed16(&vq->gdevice_event->flags, htole16(VRING_PACKED_EVENT_FLAG_ENABLE));
	}
	/* Full barrier before re-checking the ring (C.25). */
	vu_smp_mb();
	return vq_packed_has_work(vq);
}

void vq_packed_disable_notify(struct vu_vq *vq)
{
	vu_store_relaxed16(&vq->gdevice_event->flags, htole16(VRING_PACKED_EVENT_FLAG_DISABLE));
}

int vq_packed_map(struct vu_vq *vq)
{
	const struct vu_mem *mem = vq->dev->mem;

	if ((vq->addr.desc_user_addr & 15) || (vq->addr.avail_user_addr & 3) ||
	    (vq->addr.used_user_addr & 3)) {
		vu_warn("%s queue %u: misaligned packed ring addresses", vq->dev->name, vq->index);
		return -EINVAL;
	}
	vq->gpdesc = vu_mem_uva_to_host(mem, vq->addr.desc_user_addr, 16ull * vq->size);
	vq->gdriver_event = vu_mem_uva_to_host(mem, vq->addr.avail_user_addr, 4);
	vq->gdevice_event = vu_mem_uva_to_host(mem, vq->addr.used_user_addr, 4);
	if (!vq->gpdesc || !vq->gdriver_event || !vq->gdevice_event ||
	    vu_mem_uva_to_gpa(mem, vq->addr.desc_user_addr, 16ull * vq->size, &vq->log_desc_gpa)) {
		vu_warn("%s queue %u: packed ring addresses desc 0x%llx (size %u) not in guest memory",
			vq->dev->name, vq->index, (unsigned long long)vq->addr.desc_user_addr, vq->size);
		return -EFAULT;
	}
	return 0;
}

int vq_packed_start(struct vu_vq *vq)
{
	int ret;

	vq->signalled_used_valid = false;
	vq->used_since_flush = 0;
	vq->used_batch = false;
	if (!vq->inflight)
		return 0;
	ret = vu_inflight_queue_attach(vq->inflight, &vq->dev->inflight, vq->index,
				       (uint16_t)vq->size, true,
				       (uint16_t)(vq->used_idx | (uint16_t)vq->used_wrap << 15), vq->gpdesc);
	if (ret)
		return ret;
	/* A recovered region knows where a crashed backend stopped. */
	vu_inflight_packed_ring_state(vq->inflight, &vq->used_idx, &vq->used_wrap,
				      &vq->last_avail_idx, &vq->avail_wrap);
	if (vq->inflight->nresubmit)
		vu_info("%s queue %u: resubmitting %u in-flight requests",
			vq->dev->name, vq->index, vq->inflight->nresubmit);
	return 0;
}
