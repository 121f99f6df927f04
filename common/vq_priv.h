/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the split and packed ring walkers (vq_split.c,
 * vq_packed.c) and the common queue code (vq.c).  Poller context only.
 */
#ifndef VU_VQ_PRIV_H
#define VU_VQ_PRIV_H

#include <endian.h>
#include <errno.h>
#include <unistd.h>

#include "vu_dev.h"
#include "vu_util.h"
#include "vu_vq.h"

/* Bad chains reported per queue before the log falls silent. */
#define VQ_BAD_CHAIN_LOG_LIMIT 16

void vq_report_bad_chain(struct vu_vq *vq, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Map a buffer into c->iov[*n...].  Fast path: the whole buffer lies in
 * the region of the previous one (the usual case), with the same checks
 * as vu_mem_map_iov() (B.12); otherwise the full lookup.
 */
static inline int vq_map_buffer(struct vu_vq *vq, struct vu_chain *c, uint64_t addr,
				uint32_t len, unsigned int *n)
{
	const struct vu_mem *mem = vq->dev->mem;
	const struct vu_mem_region *r = &mem->regions[vq->mem_hint];
	const struct vu_mem_region *f;

	if (vu_likely(vq->mem_hint < mem->nregions && addr - r->gpa < r->size &&
		      len <= r->size - (addr - r->gpa) && *n < c->max)) {
		c->iov[*n].iov_base = r->host + (addr - r->gpa);
		c->iov[*n].iov_len = len;
		c->gpa[*n] = addr;
		(*n)++;
		return 0;
	}
	f = vu_mem_find_gpa(mem, addr);
	if (f)
		vq->mem_hint = (uint16_t)(f - mem->regions);
	return vu_mem_map_iov(mem, addr, len, c->iov, c->gpa, n, c->max);
}

/*
 * Map a non-empty buffer after the chain's segments and count it as
 * readable or writable (the length is already counted).  0, or -errno
 * reported as a bad chain.
 */
static inline int vq_chain_map(struct vu_vq *vq, struct vu_chain *c, uint64_t addr, uint32_t len,
			       bool writable)
{
	unsigned int n = (unsigned int)c->nout + c->nin;
	int ret = vq_map_buffer(vq, c, addr, len, &n);

	if (vu_unlikely(ret)) {
		vq_report_bad_chain(vq, "buffer gpa 0x%llx len %u %s", (unsigned long long)addr, len,
				    ret == -ENOBUFS ? "needs more segments than the device takes"
						    : "is outside guest memory");
		return ret;
	}
	if (writable)
		c->nin = (uint16_t)(n - c->nout);
	else
		c->nout = (uint16_t)n;
	return 0;
}

/*
 * Append a buffer of a descriptor to the chain after checking it: a
 * readable buffer may not follow a writable one, lengths may not overflow
 * 32 bits, every byte must be in guest memory.  0 or -errno (bad chain).
 */
static inline int vq_chain_add(struct vu_vq *vq, struct vu_chain *c, uint64_t addr,
			       uint32_t len, bool writable)
{
	if (writable) {
		if (vu_unlikely(len > UINT32_MAX - c->in_len))
			goto overflow;
		c->in_len += len;
	} else {
		if (vu_unlikely(c->nin)) {
			vq_report_bad_chain(vq, "readable descriptor after a writable one");
			return -EINVAL;
		}
		if (vu_unlikely(len > UINT32_MAX - c->out_len))
			goto overflow;
		c->out_len += len;
	}
	if (len == 0)
		return 0;
	return vq_chain_map(vq, c, addr, len, writable);

overflow:
	vq_report_bad_chain(vq, "total %s length exceeds 4 GiB (B.17)", writable ? "writable" : "readable");
	return -EOVERFLOW;
}

/*
 * Make c the chain of one direct descriptor (the usual case for network
 * buffers): vq_chain_add() into an empty chain, inline.  Nothing can
 * precede the buffer or overflow; it must be in guest memory.  0 or
 * -errno (bad chain).
 */
static inline __attribute__((always_inline)) int vq_chain_one(struct vu_vq *vq, struct vu_chain *c,
							      uint64_t addr, uint32_t len,
							      bool writable)
{
	c->nout = c->nin = 0;
	c->out_len = writable ? 0 : len;
	c->in_len = writable ? len : 0;
	if (len == 0)
		return 0;
	/* One segment, or more where the buffer spans regions. */
	return vq_chain_map(vq, c, addr, len, writable);
}

/*
 * Start loading the indirect table a descriptor points at (gpa as the
 * guest wrote it, untrusted): a hint only, skipped if gpa is not in guest
 * memory; the walker translates and checks the table again.
 */
static inline void vq_prefetch_table(const struct vu_vq *vq, uint64_t gpa)
{
	const void *table = vu_mem_gpa_to_host(vq->dev->mem, gpa, 1);

	if (table)
		__builtin_prefetch(table);
}

/* Dirty-log the bytes written into a completed chain's writable part. */
void vq_log_written(struct vu_vq *vq, const struct vu_chain *c, uint32_t written);

/*
 * Dirty-log a write to the used ring at byte offset off, len bytes.
 * Split: relative to log_guest_addr, as the spec says.  Packed: used
 * entries are written into the descriptor ring, so they are logged at
 * its guest address (front-ends disagree on what log_guest_addr points
 * to for packed rings: QEMU sends the device area, DPDK assumes the ring).
 */
static inline void vq_log_used(struct vu_vq *vq, uint64_t off, uint64_t len)
{
	if (vu_unlikely(vq->log_used) && vq->dev->log.glog)
		vu_dirty_log_write(&vq->dev->log,
				   (vq->packed ? vq->log_desc_gpa : vq->log_guest_addr) + off, len);
}

static inline bool vq_logging(const struct vu_vq *vq)
{
	return vu_unlikely(vq->dev->features & (1ull << VHOST_F_LOG_ALL)) && vq->dev->log.glog;
}

static inline void vq_signal(struct vu_vq *vq)
{
	static const uint64_t one = 1;

	if (vq->call_fd >= 0) {
		ssize_t r = write(vq->call_fd, &one, sizeof(one));
		(void)r;
	}
	vq->stats.notified++;
}

/* Split ring walker (vq_split.c). */
int vq_split_pop(struct vu_vq *vq, struct vu_chain *c);
void vq_split_push(struct vu_vq *vq, const struct vu_chain *c, uint32_t len);
void vq_split_publish(struct vu_vq *vq);
void vq_split_flush(struct vu_vq *vq);
bool vq_split_has_work(struct vu_vq *vq);
bool vq_split_enable_notify(struct vu_vq *vq);
void vq_split_disable_notify(struct vu_vq *vq);
int vq_split_map(struct vu_vq *vq);
int vq_split_start(struct vu_vq *vq);

/* Packed ring walker (vq_packed.c). */
int vq_packed_pop(struct vu_vq *vq, struct vu_chain *c);
void vq_packed_push(struct vu_vq *vq, const struct vu_chain *c, uint32_t len);
void vq_packed_publish(struct vu_vq *vq);
void vq_packed_flush(struct vu_vq *vq);
bool vq_packed_has_work(struct vu_vq *vq);
bool vq_packed_enable_notify(struct vu_vq *vq);
void vq_packed_disable_notify(struct vu_vq *vq);
int vq_packed_map(struct vu_vq *vq);
int vq_packed_start(struct vu_vq *vq);

#endif
