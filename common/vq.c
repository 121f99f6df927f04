// SPDX-License-Identifier: MIT
/*
 * Virtqueue operations common to split and packed rings: dispatch to the
 * walker of the negotiated layout, dirty logging of completed buffers,
 * notification control, and the control-thread setup of a queue.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vq_priv.h"

void vq_report_bad_chain(struct vu_vq *vq, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	if (vq->stats.bad_chains >= VQ_BAD_CHAIN_LOG_LIMIT)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	vu_warn("%s queue %u: bad chain: %s; returned with length 0%s", vq->dev->name, vq->index,
		why, vq->stats.bad_chains + 1 == VQ_BAD_CHAIN_LOG_LIMIT ?
		" (further bad chains of this queue are not logged)" : "");
}

void vu_vq_set_broken(struct vu_vq *vq, const char *why)
{
	if (vq->broken)
		return;
	vq->broken = true;
	vu_err("%s queue %u: marked broken (%s); it is not processed until reset",
	       vq->dev->name, vq->index, why);
}

void vq_log_written(struct vu_vq *vq, const struct vu_chain *c, uint32_t written)
{
	for (unsigned int i = c->nout; i < (unsigned int)c->nout + c->nin && written; i++) {
		uint32_t n = c->iov[i].iov_len < written ? (uint32_t)c->iov[i].iov_len : written;

		vu_dirty_log_write(&vq->dev->log, c->gpa[i], n);
		written -= n;
	}
}

void vu_vq_log_tail(struct vu_vq *vq, const struct vu_chain *c, uint32_t len)
{
	if (!vq_logging(vq))
		return;
	for (unsigned int i = (unsigned int)c->nout + c->nin; i-- > c->nout && len;) {
		uint32_t n = c->iov[i].iov_len < len ? (uint32_t)c->iov[i].iov_len : len;

		vu_dirty_log_write(&vq->dev->log, c->gpa[i] + c->iov[i].iov_len - n, n);
		len -= n;
	}
}

int vu_vq_pop(struct vu_vq *vq, struct vu_chain *chain)
{
	if (vu_unlikely(vq->broken))
		return -EIO;
	return vq->packed ? vq_packed_pop(vq, chain) : vq_split_pop(vq, chain);
}

void vu_vq_push(struct vu_vq *vq, const struct vu_chain *chain, uint32_t written)
{
	if (written > chain->in_len)
		written = chain->in_len;
	if (vq_logging(vq))
		vq_log_written(vq, chain, written);
	if (vq->packed)
		vq_packed_push(vq, chain, written);
	else
		vq_split_push(vq, chain, written);
}

void vu_vq_publish(struct vu_vq *vq)
{
	if (!vq->notify_pending)
		return;
	if (vq->packed)
		vq_packed_publish(vq);
	else
		vq_split_publish(vq);
}

void vu_vq_notify(struct vu_vq *vq)
{
	if (!vq->notify_pending)
		return;
	if (vq->packed)
		vq_packed_flush(vq);
	else
		vq_split_flush(vq);
}

bool vu_vq_has_work(struct vu_vq *vq)
{
	if (vq->broken)
		return false;
	return vq->packed ? vq_packed_has_work(vq) : vq_split_has_work(vq);
}

bool vu_vq_enable_notify(struct vu_vq *vq)
{
	vq->notify_enabled = true;
	if (vq->broken)
		return false;
	return vq->packed ? vq_packed_enable_notify(vq) : vq_split_enable_notify(vq);
}

void vu_vq_disable_notify(struct vu_vq *vq)
{
	vq->notify_enabled = false;
	if (vq->broken)
		return;
	if (vq->packed)
		vq_packed_disable_notify(vq);
	else
		vq_split_disable_notify(vq);
}

void vu_vq_ctl_init(struct vu_vq *vq, struct vu_dev *dev, uint16_t index)
{
	void *priv = vq->priv;
	struct vu_poller *poller = vq->poller;

	memset(vq, 0, sizeof(*vq));
	vq->dev = dev;
	vq->index = index;
	vq->priv = priv;
	vq->poller = poller;
	vq->kick_fd = vq->call_fd = vq->err_fd = -1;
	vq->avail_wrap = vq->used_wrap = true;
}

int vu_vq_ctl_map(struct vu_vq *vq)
{
	int ret;

	vu_vq_ctl_unmap(vq);
	if (!vq->addr_set || !vq->size || !vq->dev->mem)
		return -EINVAL;
	ret = vq->packed ? vq_packed_map(vq) : vq_split_map(vq);
	/* Aligned front-end addresses are not enough: a region whose address
	 * and file offset disagree modulo 16 misaligns the host pointers that
	 * ring fields are read through atomically (A.9). */
	if (ret == 0 && ((((uintptr_t)vq->gdesc | (uintptr_t)vq->gpdesc) & 15) ||
			 ((uintptr_t)vq->gavail & 1) ||
			 (((uintptr_t)vq->gused | (uintptr_t)vq->gdriver_event |
			   (uintptr_t)vq->gdevice_event) & 3))) {
		vu_warn("%s queue %u: ring addresses desc 0x%llx avail 0x%llx used 0x%llx lie in a region mapped at a misaligned offset",
			vq->dev->name, vq->index, (unsigned long long)vq->addr.desc_user_addr,
			(unsigned long long)vq->addr.avail_user_addr,
			(unsigned long long)vq->addr.used_user_addr);
		ret = -EINVAL;
	}
	if (ret)
		vu_vq_ctl_unmap(vq);
	return ret;
}

void vu_vq_ctl_unmap(struct vu_vq *vq)
{
	vq->gdesc = NULL;
	vq->gavail = NULL;
	vq->gused = NULL;
	vq->gpdesc = NULL;
	vq->gdriver_event = NULL;
	vq->gdevice_event = NULL;
}

int vu_vq_ctl_start(struct vu_vq *vq)
{
	int ret;

	/* Translate again even if mapped: the ring was checked for the size
	 * and layout of that moment, and SET_VRING_NUM or SET_FEATURES may
	 * have changed them since (SECURITY.md A.9). */
	ret = vu_vq_ctl_map(vq);
	if (ret)
		return ret;
	ret = vq->packed ? vq_packed_start(vq) : vq_split_start(vq);
	if (ret)
		return ret;
	/* Packed positions index the ring directly (split ones are masked);
	 * SET_VRING_BASE may have come before SET_VRING_NUM. */
	if (vq->packed && (vq->last_avail_idx >= vq->size || vq->used_idx >= vq->size)) {
		vu_warn("%s queue %u: packed ring position %u (used %u) beyond the ring of %u",
			vq->dev->name, vq->index, vq->last_avail_idx, vq->used_idx, vq->size);
		return -EINVAL;
	}
	vq->broken = false;
	vq->notify_pending = false;
	vq->started = true;
	/* A started queue is polled: the guest need not kick until its
	 * poller is about to sleep and asks for kicks again (try_sleep).
	 * Without this a busy-polled queue was kicked after every batch. */
	vu_vq_disable_notify(vq);
	return 0;
}

void vu_vq_ctl_set_base(struct vu_vq *vq, uint32_t num)
{
	if (vq->packed) {
		uint16_t used = (uint16_t)(num >> 16);

		vq->last_avail_idx = num & 0x7fff;
		vq->avail_wrap = num & 0x8000;
		if (!used)
			used = (uint16_t)num;
		vq->used_idx = used & 0x7fff;
		vq->used_wrap = used & 0x8000;
	} else {
		vq->last_avail_idx = (uint16_t)num;
		vq->used_idx = (uint16_t)num;
	}
}

uint32_t vu_vq_ctl_get_base(const struct vu_vq *vq)
{
	if (vq->packed) {
		uint32_t avail = vq->last_avail_idx | (uint32_t)vq->avail_wrap << 15;
		uint32_t used = vq->used_idx | (uint32_t)vq->used_wrap << 15;

		return avail | used << 16;
	}
	return vq->last_avail_idx;
}

void vu_vq_ctl_reset(struct vu_vq *vq)
{
	vu_close_fd(&vq->kick_fd);
	vu_close_fd(&vq->call_fd);
	vu_close_fd(&vq->err_fd);
	vu_vq_ctl_init(vq, vq->dev, vq->index);
}
