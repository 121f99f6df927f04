// SPDX-License-Identifier: MIT
/* Fake guest memory and fake guest driver for the unit tests (see fake_guest.h). */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_guest.h"
#include "vu_util.h"

int fg_add_region(struct fake_guest *g, uint64_t gpa, uint64_t size, uint64_t uva,
		  uint64_t offset)
{
	struct vu_mem_region_desc d = {
		.guest_addr = gpa, .size = size, .user_addr = uva, .mmap_offset = offset,
	};
	struct fg_region *r;
	int fd, lib_fd, ret;
	void *map;

	assert_true(g->nregions < FG_MAX_REGIONS);
	fd = memfd_create("fake-guest", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)(offset + size)), 0);
	map = mmap(NULL, (size_t)(offset + size), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		   fd, 0);
	assert_true(map != MAP_FAILED);
	lib_fd = dup(fd);
	assert_true(lib_fd >= 0);
	close(fd);
	ret = vu_mem_add(g->dev->mem, &d, lib_fd);
	if (ret) {
		munmap(map, (size_t)(offset + size));
		return ret;
	}
	r = &g->regions[g->nregions++];
	r->gpa = gpa;
	r->size = size;
	r->uva = uva;
	r->offset = offset;
	r->map = map;
	r->map_len = (size_t)(offset + size);
	r->view = (uint8_t *)map + offset;
	return 0;
}

struct fake_guest *fg_create(void)
{
	struct fake_guest *g = calloc(1, sizeof(*g));

	assert_non_null(g);
	g->dev = calloc(1, sizeof(*g->dev));
	assert_non_null(g->dev);
	strcpy(g->dev->name, "fake-guest");
	g->dev->sock = g->dev->backend_req_fd = g->dev->log_call_fd = -1;
	g->dev->num_queues = 4;
	g->dev->max_queue_size = VU_VQ_MAX_SIZE;
	for (uint16_t i = 0; i < VU_DEV_MAX_QUEUES; i++)
		vu_vq_ctl_init(&g->dev->vqs[i], g->dev, i);
	g->dev->mem = vu_mem_create();
	assert_non_null(g->dev->mem);
	assert_int_equal(fg_add_region(g, FG_R0_GPA, FG_R0_SIZE, FG_R0_UVA, FG_R0_OFFSET), 0);
	assert_int_equal(fg_add_region(g, FG_R1_GPA, FG_R1_SIZE, FG_R1_UVA, 0), 0);
	assert_int_equal(fg_add_region(g, FG_R2_GPA, FG_R2_SIZE, FG_R2_UVA, 0), 0);
	return g;
}

void fg_destroy(struct fake_guest *g)
{
	if (!g)
		return;
	for (uint16_t i = 0; i < VU_DEV_MAX_QUEUES; i++)
		vu_vq_ctl_reset(&g->dev->vqs[i]);
	vu_dirty_log_release(&g->dev->log);
	vu_mem_destroy(g->dev->mem);
	for (unsigned int i = 0; i < g->nregions; i++)
		munmap(g->regions[i].map, g->regions[i].map_len);
	free(g->dev);
	free(g);
}

static const struct fg_region *region_of(const struct fake_guest *g, uint64_t gpa, uint64_t len)
{
	for (unsigned int i = 0; i < g->nregions; i++) {
		const struct fg_region *r = &g->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
			return r;
	}
	return NULL;
}

void *fg_ptr(const struct fake_guest *g, uint64_t gpa, uint64_t len)
{
	const struct fg_region *r = region_of(g, gpa, len);

	assert_non_null(r);
	return r->view + (gpa - r->gpa);
}

uint64_t fg_uva(const struct fake_guest *g, uint64_t gpa)
{
	const struct fg_region *r = region_of(g, gpa, 1);

	assert_non_null(r);
	return r->uva + (gpa - r->gpa);
}

bool fg_host_to_gpa(const struct fake_guest *g, const void *host, uint64_t *gpa)
{
	const struct vu_mem *mem = g->dev->mem;
	const uint8_t *p = host;

	for (unsigned int i = 0; i < mem->nregions; i++) {
		const struct vu_mem_region *r = &mem->regions[i];

		if (p >= r->host && (uint64_t)(p - r->host) < r->size) {
			*gpa = r->gpa + (uint64_t)(p - r->host);
			return true;
		}
	}
	return false;
}

int fg_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

int fg_eventfd(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

bool fg_eventfd_fired(int fd)
{
	uint64_t v;

	return read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v) && v > 0;
}

/* ---- split ring driver ---- */

void fg_split_setup(struct fake_guest *g, struct fg_split *r, uint16_t index, uint32_t size,
		    uint64_t ring_gpa, uint16_t start, unsigned int flags)
{
	struct vu_vq *vq = &g->dev->vqs[index];
	uint64_t used_end;

	memset(r, 0, sizeof(*r));
	r->g = g;
	r->vq = vq;
	r->size = size;
	r->desc_gpa = ring_gpa;
	r->avail_gpa = ring_gpa + 16ull * size;
	r->used_gpa = VU_ALIGN_UP(r->avail_gpa + 6 + 2ull * size, 4096ull);
	used_end = r->used_gpa + 6 + 8ull * size;
	memset(fg_ptr(g, ring_gpa, used_end - ring_gpa), 0, used_end - ring_gpa);
	r->desc = fg_ptr(g, r->desc_gpa, 16ull * size);
	r->avail = fg_ptr(g, r->avail_gpa, 6 + 2ull * size);
	r->used = fg_ptr(g, r->used_gpa, 6 + 8ull * size);
	r->avail->idx = htole16(start);
	r->used->idx = htole16(start);
	r->avail_idx = start;
	r->last_used = start;

	vu_vq_ctl_reset(vq);
	vq->size = size;
	vq->packed = false;
	vq->event_idx = flags & FG_EVENT_IDX;
	vq->indirect = flags & FG_INDIRECT;
	vq->addr.desc_user_addr = fg_uva(g, r->desc_gpa);
	vq->addr.avail_user_addr = fg_uva(g, r->avail_gpa);
	vq->addr.used_user_addr = fg_uva(g, r->used_gpa);
	vq->addr_set = true;
	vu_vq_ctl_set_base(vq, start);
	assert_int_equal(vu_vq_ctl_start(vq), 0);
	vq->enabled = true;
	vq->call_fd = fg_eventfd();
}

void fg_split_teardown(struct fg_split *r)
{
	vu_vq_ctl_reset(r->vq);
}

void fg_desc_write(struct vring_desc *gd, uint64_t addr, uint32_t len, uint16_t flags,
		   uint16_t next)
{
	gd->addr = htole64(addr);
	gd->len = htole32(len);
	gd->flags = htole16(flags);
	gd->next = htole16(next);
}

void fg_split_desc(struct fg_split *r, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		   uint16_t next)
{
	assert_true(i < r->size);
	fg_desc_write(&r->desc[i], addr, len, flags, next);
}

void fg_split_publish(struct fg_split *r, uint16_t head)
{
	r->avail->ring[r->avail_idx & (r->size - 1)] = htole16(head);
	r->avail_idx++;
	/* Release: the ring entry and descriptors before the index. */
	__atomic_store_n(&r->avail->idx, htole16(r->avail_idx), __ATOMIC_RELEASE);
}

void fg_split_set_avail_idx(struct fg_split *r, uint16_t idx)
{
	r->avail_idx = idx;
	__atomic_store_n(&r->avail->idx, htole16(idx), __ATOMIC_RELEASE);
}

bool fg_split_get_used(struct fg_split *r, uint32_t *id, uint32_t *len)
{
	const struct vring_used_elem *e;

	if (fg_split_used_idx(r) == r->last_used)
		return false;
	e = &r->used->ring[r->last_used & (r->size - 1)];
	*id = le32toh(e->id);
	*len = le32toh(e->len);
	r->last_used++;
	return true;
}

uint16_t fg_split_used_idx(const struct fg_split *r)
{
	return le16toh(__atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE));
}

uint16_t fg_split_used_flags(const struct fg_split *r)
{
	return le16toh(__atomic_load_n(&r->used->flags, __ATOMIC_RELAXED));
}

void fg_split_set_used_event(struct fg_split *r, uint16_t v)
{
	__atomic_store_n(&r->avail->ring[r->size], htole16(v), __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

uint16_t fg_split_avail_event(const struct fg_split *r)
{
	return le16toh(__atomic_load_n((const uint16_t *)&r->used->ring[r->size], __ATOMIC_RELAXED));
}

void fg_split_set_avail_flags(struct fg_split *r, uint16_t flags)
{
	__atomic_store_n(&r->avail->flags, htole16(flags), __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* ---- packed ring driver ---- */

void fg_packed_setup(struct fake_guest *g, struct fg_packed *r, uint16_t index, uint32_t size,
		     uint64_t ring_gpa, unsigned int flags)
{
	struct vu_vq *vq = &g->dev->vqs[index];
	uint64_t end;

	memset(r, 0, sizeof(*r));
	r->g = g;
	r->vq = vq;
	r->size = size;
	r->desc_gpa = ring_gpa;
	r->drv_gpa = ring_gpa + 16ull * size;
	r->dev_gpa = r->drv_gpa + 4;
	end = r->dev_gpa + 4;
	memset(fg_ptr(g, ring_gpa, end - ring_gpa), 0, end - ring_gpa);
	r->desc = fg_ptr(g, r->desc_gpa, 16ull * size);
	r->drv = fg_ptr(g, r->drv_gpa, 4);
	r->devev = fg_ptr(g, r->dev_gpa, 4);
	r->avail_wrap = r->used_wrap = true;

	vu_vq_ctl_reset(vq);
	vq->size = size;
	vq->packed = true;
	vq->event_idx = flags & FG_EVENT_IDX;
	vq->indirect = flags & FG_INDIRECT;
	vq->in_order = flags & FG_IN_ORDER;
	vq->addr.desc_user_addr = fg_uva(g, r->desc_gpa);
	vq->addr.avail_user_addr = fg_uva(g, r->drv_gpa);
	vq->addr.used_user_addr = fg_uva(g, r->dev_gpa);
	vq->addr_set = true;
	vu_vq_ctl_set_base(vq, 0x8000);   /* slot 0, wrap counters 1 */
	assert_int_equal(vu_vq_ctl_start(vq), 0);
	vq->enabled = true;
	vq->call_fd = fg_eventfd();
}

void fg_packed_teardown(struct fg_packed *r)
{
	vu_vq_ctl_reset(r->vq);
}

uint16_t fg_packed_avail_flags(bool wrap)
{
	return wrap ? (1u << VRING_PACKED_DESC_F_AVAIL) : (1u << VRING_PACKED_DESC_F_USED);
}

uint16_t fg_packed_add(struct fg_packed *r, const struct fg_buf *bufs, unsigned int n,
		       uint16_t id)
{
	uint16_t head = r->next_avail, head_flags = 0;

	assert_true(n > 0 && n <= r->size);
	for (unsigned int i = 0; i < n; i++) {
		struct vring_packed_desc *gd = &r->desc[r->next_avail];
		uint16_t flags = bufs[i].flags | fg_packed_avail_flags(r->avail_wrap);

		if (i + 1 < n)
			flags |= VRING_DESC_F_NEXT;
		gd->addr = htole64(bufs[i].addr);
		gd->len = htole32(bufs[i].len);
		gd->id = htole16(id);
		if (i == 0)
			head_flags = flags;
		else
			__atomic_store_n(&gd->flags, htole16(flags), __ATOMIC_RELAXED);
		if (++r->next_avail == r->size) {
			r->next_avail = 0;
			r->avail_wrap = !r->avail_wrap;
		}
	}
	r->chain_len[id] = (uint16_t)n;
	r->order[r->order_tail++] = id;
	/* Release: the whole chain before the head's flags. */
	__atomic_store_n(&r->desc[head].flags, htole16(head_flags), __ATOMIC_RELEASE);
	return head;
}

/* The used descriptor at next_used, if the device marked it used. */
static bool packed_used_at_next(const struct fg_packed *r, uint16_t *id, uint32_t *len)
{
	const struct vring_packed_desc *gd = &r->desc[r->next_used];
	uint16_t flags = le16toh(__atomic_load_n(&gd->flags, __ATOMIC_ACQUIRE));
	bool avail = flags & (1u << VRING_PACKED_DESC_F_AVAIL);
	bool used = flags & (1u << VRING_PACKED_DESC_F_USED);

	if (avail != used || used != r->used_wrap)
		return false;
	*id = le16toh(gd->id);
	*len = le32toh(gd->len);
	return true;
}

/* Move next_used past the slots of the chain with this id. */
static void packed_skip_chain(struct fg_packed *r, uint16_t id)
{
	uint32_t n = r->chain_len[id] ? r->chain_len[id] : 1;

	r->next_used = (uint16_t)(r->next_used + n);
	if (r->next_used >= r->size) {
		r->next_used = (uint16_t)(r->next_used - r->size);
		r->used_wrap = !r->used_wrap;
	}
}

bool fg_packed_get_used(struct fg_packed *r, uint16_t *id, uint32_t *len)
{
	if (!packed_used_at_next(r, id, len))
		return false;
	packed_skip_chain(r, *id);
	return true;
}

unsigned int fg_packed_get_used_batch(struct fg_packed *r, uint16_t *id, uint32_t *len)
{
	unsigned int n = 0;
	uint16_t cur;

	if (!packed_used_at_next(r, id, len))
		return 0;
	do {
		assert_true(r->order_head != r->order_tail);
		cur = r->order[r->order_head++];
		packed_skip_chain(r, cur);
		n++;
	} while (cur != *id);
	return n;
}

void fg_packed_set_driver_event(struct fg_packed *r, uint16_t flags, uint16_t off, bool wrap)
{
	uint16_t off_wrap = (uint16_t)(off | (wrap ? 1u << VRING_PACKED_EVENT_F_WRAP_CTR : 0));

	__atomic_store_n(&r->drv->off_wrap, htole16(off_wrap), __ATOMIC_RELAXED);
	__atomic_store_n(&r->drv->flags, htole16(flags), __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}
