// SPDX-License-Identifier: MIT
/*
 * The split ring walker: takes chains from the available ring, returns
 * them through the used ring (virtio 1.2, 2.7).
 *
 * Every descriptor is copied out of guest memory once and only the copy
 * is used (SECURITY.md B.16).  Chains are bounded by the table they live
 * in: at most `size` descriptors in the ring's table, at most len / 16 in
 * an indirect table, so a loop cannot hang the poller (B.15).
 */
#include <string.h>

#include "vq_priv.h"

#define NO_HEAD 0xffff

/* Read a descriptor once into private memory. */
static inline void desc_copy(struct vring_desc *out, const struct vring_desc *gdesc)
{
	memcpy(out, gdesc, sizeof(*out));
	out->addr = le64toh(out->addr);
	out->len = le32toh(out->len);
	out->flags = le16toh(out->flags);
	out->next = le16toh(out->next);
}

/*
 * Walk an indirect table of n descriptors (already bounds-checked to lie
 * in one region).  Nested indirect and NEXT out of the table are errors.
 */
static int walk_indirect(struct vu_vq *vq, struct vu_chain *c,
			 const struct vring_desc *gtable, uint32_t n)
{
	uint32_t i = 0, count = 0;
	struct vring_desc d;
	int ret;

	for (;;) {
		if (vu_unlikely(++count > n)) {
			vq_report_bad_chain(vq, "indirect chain loops (more than %u descriptors)", n);
			return -ELOOP;
		}
		desc_copy(&d, &gtable[i]);
		if (vu_unlikely(d.flags & VRING_DESC_F_INDIRECT)) {
			vq_report_bad_chain(vq, "nested indirect descriptor");
			return -EINVAL;
		}
		ret = vq_chain_add(vq, c, d.addr, d.len, d.flags & VRING_DESC_F_WRITE);
		if (ret)
			return ret;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		if (vu_unlikely(d.next >= n)) {
			vq_report_bad_chain(vq, "indirect descriptor next %u beyond the table of %u", d.next, n);
			return -EINVAL;
		}
		i = d.next;
	}
}

/* Walk the chain starting at head into c.  0 or -errno (bad chain). */
static int walk_chain(struct vu_vq *vq, struct vu_chain *c, uint16_t head)
{
	uint32_t size = vq->size, count = 1;
	struct vring_desc d;
	int ret;

	desc_copy(&d, &vq->gdesc[head]);
	/* One direct descriptor, the usual case: no loop. */
	if (vu_likely(!(d.flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT))))
		return vq_chain_one(vq, c, d.addr, d.len, d.flags & VRING_DESC_F_WRITE);
	c->nout = c->nin = 0;
	c->out_len = c->in_len = 0;
	for (;;) {
		if (d.flags & VRING_DESC_F_INDIRECT) {
			const struct vring_desc *gtable;

			if (vu_unlikely(!vq->indirect)) {
				vq_report_bad_chain(vq, "indirect descriptor without INDIRECT_DESC");
				return -EINVAL;
			}
			if (vu_unlikely(d.flags & VRING_DESC_F_NEXT)) {
				vq_report_bad_chain(vq, "indirect descriptor with NEXT set");
				return -EINVAL;
			}
			if (vu_unlikely(d.len == 0 || d.len % sizeof(struct vring_desc))) {
				vq_report_bad_chain(vq, "indirect table length %u is not a non-zero multiple of 16", d.len);
				return -EINVAL;
			}
			if (vu_unlikely(c->nout || c->nin || c->out_len || c->in_len)) {
				vq_report_bad_chain(vq, "indirect descriptor after direct ones");
				return -EINVAL;
			}
			gtable = vu_mem_gpa_to_host(vq->dev->mem, d.addr, d.len);
			if (vu_unlikely(!gtable || ((uintptr_t)gtable & 7))) {
				vq_report_bad_chain(vq, "indirect table gpa 0x%llx len %u not in one region",
						    (unsigned long long)d.addr, d.len);
				return -EFAULT;
			}
			return walk_indirect(vq, c, gtable, d.len / sizeof(struct vring_desc));
		}
		ret = vq_chain_add(vq, c, d.addr, d.len, d.flags & VRING_DESC_F_WRITE);
		if (ret)
			return ret;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		if (vu_unlikely(d.next >= size)) {
			vq_report_bad_chain(vq, "descriptor next %u beyond the ring of %u", d.next, size);
			return -EINVAL;
		}
		if (vu_unlikely(++count > size)) {
			vq_report_bad_chain(vq, "chain at head %u loops (more than %u descriptors)", head, size);
			return -ELOOP;
		}
		desc_copy(&d, &vq->gdesc[d.next]);
	}
}

static inline uint16_t *avail_event_ptr(struct vu_vq *vq)
{
	return (uint16_t *)&vq->gused->ring[vq->size];
}

/* Publish avail_event; it is part of the used ring, so it is logged too (A.7). */
static inline void set_avail_event(struct vu_vq *vq)
{
	vu_store_relaxed16(avail_event_ptr(vq), htole16(vq->last_avail_idx));
	vq_log_used(vq, offsetof(struct vring_used, ring) + vq->size * sizeof(struct vring_used_elem),
		    sizeof(uint16_t));
}

/* Heads whose descriptors are prefetched when the avail index moves. */
#define PREFETCH_HEADS 32

/*
 * Start loading the descriptors of the heads the driver just made
 * available.  Its CPU wrote them last: walking the chains one at a time
 * waits for each miss in turn, where these loads overlap.  A hint only,
 * whatever the index says (slots are masked, heads checked): take_head()
 * checks the index, and reads and checks every head again.
 */
static void prefetch_heads(const struct vu_vq *vq, uint16_t avail_idx)
{
	uint16_t n = (uint16_t)(avail_idx - vq->last_avail_idx);

	if (n > PREFETCH_HEADS)
		n = PREFETCH_HEADS;
	for (uint16_t i = 0; i < n; i++) {
		uint16_t slot = (uint16_t)(vq->last_avail_idx + i) & (uint16_t)(vq->size - 1);
		uint16_t head = le16toh(vu_load_relaxed16(&vq->gavail->ring[slot]));

		if (head < vq->size)
			__builtin_prefetch(&vq->gdesc[head]);
	}
}

/* How many heads ahead of the one taken an indirect table is prefetched. */
#define PREFETCH_TABLE_AHEAD 4

/*
 * Start loading the indirect table of the head `ahead` entries after the
 * next one, if the driver made it available: its address is only known
 * from its descriptor, and walking the tables one request at a time waits
 * for each miss in turn.  Linux guests put every request of more than one
 * segment in an indirect table.  A hint only: nothing read here is
 * trusted; walk_chain() reads the head, its descriptor and the table
 * again and checks them.
 */
static inline void prefetch_table(const struct vu_vq *vq, uint16_t ahead)
{
	uint16_t slot, head;
	const struct vring_desc *d;

	if ((uint16_t)(vq->shadow_avail_idx - vq->last_avail_idx) <= ahead)
		return;
	slot = (uint16_t)(vq->last_avail_idx + ahead) & (uint16_t)(vq->size - 1);
	head = le16toh(vu_load_relaxed16(&vq->gavail->ring[slot]));
	if (head >= vq->size)
		return;
	d = &vq->gdesc[head];
	if (!(le16toh(vu_load_relaxed16(&d->flags)) & VRING_DESC_F_INDIRECT))
		return;
	vq_prefetch_table(vq, le64toh(d->addr));
}

/* Next head from the avail ring, NO_HEAD if empty, or -EIO (broken). */
static int take_head(struct vu_vq *vq)
{
	uint16_t avail_idx, head;

	if (vq->inflight && vq->inflight->resubmit_pos < vq->inflight->nresubmit) {
		vu_inflight_next_resubmit(vq->inflight, &head);
		return head;
	}
	/* Acquire orders the ring entries after the index (C.22; pairs with
	 * the driver's write barrier before it publishes avail->idx). */
	avail_idx = vq->shadow_avail_idx;
	if (avail_idx == vq->last_avail_idx) {
		avail_idx = le16toh(vu_load_acquire16(&vq->gavail->idx));
		if (avail_idx == vq->last_avail_idx)
			return NO_HEAD;
		vq->shadow_avail_idx = avail_idx;
		prefetch_heads(vq, avail_idx);
		/* The tables of the first new heads now (their descriptors'
		 * loads overlap); each take starts the one further ahead. */
		for (uint16_t k = 0; vq->indirect && k < PREFETCH_TABLE_AHEAD; k++)
			prefetch_table(vq, k);
	}
	if (vu_unlikely((uint16_t)(avail_idx - vq->last_avail_idx) > vq->size)) {
		vu_err("%s queue %u: guest moved avail index from %u to %u (queue size %u)",
		       vq->dev->name, vq->index, vq->last_avail_idx, avail_idx, vq->size);
		vu_vq_set_broken(vq, "avail index jumped");
		return -EIO;
	}
	if (vq->indirect)
		prefetch_table(vq, PREFETCH_TABLE_AHEAD);
	head = le16toh(vu_load_relaxed16(&vq->gavail->ring[vq->last_avail_idx & (vq->size - 1)]));
	vq->last_avail_idx++;
	if (vq->event_idx && vq->notify_enabled)
		set_avail_event(vq);
	if (vu_unlikely(head >= vq->size)) {
		vu_err("%s queue %u: guest put head %u in the avail ring (queue size %u)",
		       vq->dev->name, vq->index, head, vq->size);
		vu_vq_set_broken(vq, "head index out of range");
		return -EIO;
	}
	if (vq->inflight)
		vu_inflight_split_get(vq->inflight, head);
	return head;
}

int vq_split_pop(struct vu_vq *vq, struct vu_chain *c)
{
	/* At most one ring's worth of bad chains per call. */
	for (uint32_t tries = 0; tries <= vq->size; tries++) {
		int head = take_head(vq);

		if (head < 0)
			return head;
		if (head == NO_HEAD)
			return 0;
		c->id = (uint16_t)head;
		c->ndescs = 1;
		if (vu_likely(walk_chain(vq, c, (uint16_t)head) == 0)) {
			vq->stats.popped++;
			return 1;
		}
		vq->stats.bad_chains++;
		c->nout = c->nin = 0;
		c->in_len = 0;
		vq_split_push(vq, c, 0);
	}
	return 0;
}

void vq_split_push(struct vu_vq *vq, const struct vu_chain *c, uint32_t len)
{
	uint16_t slot = vq->used_idx & (uint16_t)(vq->size - 1);
	struct vring_used_elem *gelem = &vq->gused->ring[slot];

	__atomic_store_n(&gelem->id, htole32(c->id), __ATOMIC_RELAXED);
	__atomic_store_n(&gelem->len, htole32(len), __ATOMIC_RELAXED);
	vq_log_used(vq, offsetof(struct vring_used, ring) + slot * sizeof(*gelem), sizeof(*gelem));
	if (vq->inflight)
		vu_inflight_split_put(vq->inflight, c->id);
	vq->used_idx++;
	vq->notify_pending = true;
	vq->stats.completed++;
}

void vq_split_publish(struct vu_vq *vq)
{
	/* Release: used elements visible before the index (pairs with the
	 * driver's read barrier after it reads used->idx). */
	vu_store_release16(&vq->gused->idx, htole16(vq->used_idx));
	vq_log_used(vq, offsetof(struct vring_used, idx), sizeof(uint16_t));
	if (vq->inflight)
		vu_inflight_split_commit(vq->inflight, vq->used_idx);
}

/*
 * Publish the batch, then decide whether the guest wants an interrupt
 * for everything published since the last one (earlier vq_split_publish()
 * calls included: old is the index last signalled).
 */
void vq_split_flush(struct vu_vq *vq)
{
	uint16_t new = vq->used_idx, old = vq->signalled_used;
	bool notify;

	vq_split_publish(vq);
	vq->notify_pending = false;
	/* Full barrier: the index is visible before we read the guest's
	 * suppression state (C.23; pairs with the driver's mb between
	 * writing used_event / flags and re-reading used->idx). */
	vu_smp_mb();
	if (vq->event_idx) {
		uint16_t event = le16toh(vu_load_relaxed16(&vq->gavail->ring[vq->size]));

		notify = !vq->signalled_used_valid || vring_need_event(event, new, old);
		vq->signalled_used = new;
		vq->signalled_used_valid = true;
	} else {
		notify = !(le16toh(vu_load_relaxed16(&vq->gavail->flags)) & VRING_AVAIL_F_NO_INTERRUPT);
	}
	if (notify)
		vq_signal(vq);
}

bool vq_split_has_work(struct vu_vq *vq)
{
	if (vq->inflight && vq->inflight->resubmit_pos < vq->inflight->nresubmit)
		return true;
	return le16toh(vu_load_acquire16(&vq->gavail->idx)) != vq->last_avail_idx;
}

bool vq_split_enable_notify(struct vu_vq *vq)
{
	if (vq->event_idx) {
		set_avail_event(vq);
	} else {
		vu_store_relaxed16(&vq->gused->flags, 0);
		vq_log_used(vq, offsetof(struct vring_used, flags), sizeof(uint16_t));
	}
	/* Full barrier: the request to kick is visible before we look at the
	 * ring again, so a buffer added meanwhile is seen or kicked (C.25). */
	vu_smp_mb();
	return vq_split_has_work(vq);
}

void vq_split_disable_notify(struct vu_vq *vq)
{
	/* With EVENT_IDX, leaving avail_event behind is what stops kicks. */
	if (!vq->event_idx) {
		vu_store_relaxed16(&vq->gused->flags, htole16(VRING_USED_F_NO_NOTIFY));
		vq_log_used(vq, offsetof(struct vring_used, flags), sizeof(uint16_t));
	}
}

int vq_split_map(struct vu_vq *vq)
{
	const struct vu_mem *mem = vq->dev->mem;
	uint64_t n = vq->size;

	if (vq->size & (vq->size - 1)) {
		vu_warn("%s queue %u: split ring size %u is not a power of two",
			vq->dev->name, vq->index, vq->size);
		return -EINVAL;
	}
	if ((vq->addr.desc_user_addr & 15) || (vq->addr.avail_user_addr & 1) ||
	    (vq->addr.used_user_addr & 3)) {
		vu_warn("%s queue %u: misaligned ring addresses desc 0x%llx avail 0x%llx used 0x%llx",
			vq->dev->name, vq->index, (unsigned long long)vq->addr.desc_user_addr,
			(unsigned long long)vq->addr.avail_user_addr,
			(unsigned long long)vq->addr.used_user_addr);
		return -EINVAL;
	}
	vq->gdesc = vu_mem_uva_to_host(mem, vq->addr.desc_user_addr, 16 * n);
	vq->gavail = vu_mem_uva_to_host(mem, vq->addr.avail_user_addr, 4 + 2 * n + 2);
	vq->gused = vu_mem_uva_to_host(mem, vq->addr.used_user_addr, 4 + 8 * n + 2);
	if (!vq->gdesc || !vq->gavail || !vq->gused) {
		vu_warn("%s queue %u: ring addresses desc 0x%llx avail 0x%llx used 0x%llx (size %u) are not in guest memory",
			vq->dev->name, vq->index, (unsigned long long)vq->addr.desc_user_addr,
			(unsigned long long)vq->addr.avail_user_addr,
			(unsigned long long)vq->addr.used_user_addr, vq->size);
		return -EFAULT;
	}
	return 0;
}

int vq_split_start(struct vu_vq *vq)
{
	uint16_t used = le16toh(vu_load_acquire16(&vq->gused->idx));
	int ret;

	vq->used_idx = used;
	vq->shadow_avail_idx = vq->last_avail_idx;
	vq->signalled_used_valid = false;
	if (!vq->inflight)
		return 0;
	ret = vu_inflight_queue_attach(vq->inflight, &vq->dev->inflight, vq->index,
				       (uint16_t)vq->size, false, used, NULL);
	if (ret)
		return ret;
	/* Chains taken = chains completed + chains still in flight. */
	if (vq->inflight->nresubmit) {
		vq->last_avail_idx = (uint16_t)(used + vq->inflight->nresubmit);
		vq->shadow_avail_idx = vq->last_avail_idx;
		vu_info("%s queue %u: resubmitting %u in-flight requests",
			vq->dev->name, vq->index, vq->inflight->nresubmit);
	}
	return 0;
}
