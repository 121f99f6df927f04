// SPDX-License-Identifier: MIT
/*
 * Inflight I/O tracking (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD), as in
 * QEMU's docs/interop/vhost-user.rst, "Inflight I/O tracking": the area
 * (one region per queue, memfd created for GET_INFLIGHT_FD or mapped from
 * SET_INFLIGHT_FD), the split and packed bookkeeping done as chains are
 * taken and completed, and the recovery that runs when a queue starts on
 * a region a previous backend left behind.
 *
 * Security model (SECURITY.md A.6): the region is writable by the
 * front-end at any time, and whatever a crashed backend left in it is no
 * better.  It is read only at attach, into private memory (a snapshot for
 * packed, one load per field for split), and every index, count and link
 * is validated on that copy: walks are bounded by desc_num and stop on a
 * cycle, corrupt entries are dropped with a warning.  After attach the
 * region is only written; the private shadow in vu_inflight_queue is
 * what the data path trusts.
 *
 * Crash consistency: the backend may die between any two stores.  Each
 * operation writes its record first and the field that makes it count
 * (inflight, free_head, used_idx, old_*) last, with a release store, so
 * that the compiler (and a concurrent reader) sees them in that order; the
 * comments at each step say what a crash there leaves and why recovery
 * copes.  A chain taken but not yet recorded as in flight is not lost:
 * recovery places the ring's next available position right after the
 * chains it resubmits, where that chain still is.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/virtio_ring.h>

#include "vu_inflight.h"
#include "vu_util.h"

#define INFLIGHT_VERSION   1
#define INFLIGHT_ALIGN     64
#define INFLIGHT_MAX_QSIZE 32768

_Static_assert(sizeof(struct vu_inflight_desc_split) == 16, "DescStateSplit layout");
_Static_assert(offsetof(struct vu_inflight_region_split, desc) == 16, "QueueRegionSplit layout");
_Static_assert(sizeof(struct vu_inflight_desc_packed) == 32, "DescStatePacked layout");
_Static_assert(offsetof(struct vu_inflight_region_packed, desc) == 32, "QueueRegionPacked layout");
_Static_assert(sizeof(struct vu_inflight_desc_split) <= sizeof(struct vu_inflight_desc_packed) &&
	       offsetof(struct vu_inflight_region_split, desc) <=
	       offsetof(struct vu_inflight_region_packed, desc),
	       "a packed-sized region holds the split layout");

/* State of a packed entry, private to the backend. */
enum {
	SLOT_FREE,     /* in the free list */
	SLOT_MEMBER,   /* second or later descriptor of a chain in flight */
	SLOT_HEAD,     /* head of a chain in flight */
	SLOT_PENDING,  /* head of a chain put since the last commit */
};

struct vu_inflight_slot {
	uint16_t next;   /* shadow of desc[].next */
	uint16_t last;   /* heads: last entry of the chain */
	uint16_t num;    /* heads: entries in the chain */
	uint8_t state;
	bool saved;      /* member of a chain to resubmit: iq->saved is valid */
};

/*
 * Stores to the shared region.  Single accesses, never torn or merged;
 * the release variants order every earlier store of this thread before
 * them (the crash-consistency points).
 */
static inline void gstore8(uint8_t *gp, uint8_t v)
{
	__atomic_store_n(gp, v, __ATOMIC_RELAXED);
}

static inline void gstore8_release(uint8_t *gp, uint8_t v)
{
	__atomic_store_n(gp, v, __ATOMIC_RELEASE);
}

static inline void gstore32(uint32_t *gp, uint32_t v)
{
	__atomic_store_n(gp, v, __ATOMIC_RELAXED);
}

static inline void gstore64(uint64_t *gp, uint64_t v)
{
	__atomic_store_n(gp, v, __ATOMIC_RELAXED);
}

static inline uint8_t gload8(const uint8_t *gp)
{
	return __atomic_load_n(gp, __ATOMIC_RELAXED);
}

static inline uint64_t gload64(const uint64_t *gp)
{
	return __atomic_load_n(gp, __ATOMIC_RELAXED);
}

/* Data-path complaints: the first one per attach is logged (no log flood
 * from a misbehaving driver). */
#define iq_warn_once(iq, fmt, ...)						\
	do {									\
		if (!(iq)->warned) {						\
			(iq)->warned = true;					\
			vu_warn("inflight queue %u: " fmt, (iq)->index, __VA_ARGS__); \
		}								\
	} while (0)

static inline struct vu_inflight_region_split *gsplit(const struct vu_inflight_queue *iq)
{
	return iq->gregion;
}

static inline struct vu_inflight_region_packed *gpacked(const struct vu_inflight_queue *iq)
{
	return iq->gregion;
}

/* ---- area ---------------------------------------------------------- */

uint64_t vu_inflight_queue_region_size(uint16_t queue_size)
{
	uint64_t n = offsetof(struct vu_inflight_region_packed, desc) +
		     (uint64_t)queue_size * sizeof(struct vu_inflight_desc_packed);

	return VU_ALIGN_UP(n, (uint64_t)INFLIGHT_ALIGN);
}

static bool queue_geometry_ok(uint16_t num_queues, uint16_t queue_size)
{
	return num_queues && queue_size && queue_size <= INFLIGHT_MAX_QSIZE;
}

int vu_inflight_area_create(struct vu_inflight_area *area, uint16_t num_queues,
			    uint16_t queue_size, struct vu_inflight_desc *desc)
{
	uint64_t region, size;
	void *map;
	int fd, ret;

	if (!queue_geometry_ok(num_queues, queue_size)) {
		vu_warn("inflight: refusing an area of %u queues of %u descriptors",
			num_queues, queue_size);
		return -EINVAL;
	}
	region = vu_inflight_queue_region_size(queue_size);
	size = num_queues * region;    /* < 2^16 * 2^21: no overflow */
	if ((size_t)size != size)
		return -ENOMEM;

	fd = memfd_create("vu-inflight", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		ret = -errno;
		vu_err("inflight: memfd_create: %s", strerror(-ret));
		return ret;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		ret = -errno;
		vu_err("inflight: ftruncate to %llu bytes: %s", (unsigned long long)size,
		       strerror(-ret));
		goto err_close;
	}
	/* The front-end gets this fd: it must not shrink the file under our
	 * mapping (SIGBUS on access). */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		ret = -errno;
		vu_err("inflight: sealing the area: %s", strerror(-ret));
		goto err_close;
	}
	map = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		ret = -errno;
		vu_err("inflight: mmap of %llu bytes: %s", (unsigned long long)size, strerror(-ret));
		goto err_close;
	}

	vu_inflight_area_release(area);
	area->map = map;
	area->map_len = (size_t)size;
	area->fd = fd;
	area->num_queues = num_queues;
	area->queue_size = queue_size;
	area->queue_region_size = region;

	memset(desc, 0, sizeof(*desc));
	desc->mmap_size = size;
	desc->mmap_offset = 0;
	desc->num_queues = num_queues;
	desc->queue_size = queue_size;
	return 0;

err_close:
	close(fd);
	return ret;
}

int vu_inflight_area_map(struct vu_inflight_area *area, const struct vu_inflight_desc *desc, int fd)
{
	uint64_t region, need, end;
	long page = sysconf(_SC_PAGESIZE);
	struct stat st;
	void *map;
	int ret;

	if (fd < 0)
		return -EBADF;
	if (!queue_geometry_ok(desc->num_queues, desc->queue_size)) {
		vu_warn("inflight: SET_INFLIGHT_FD with %u queues of %u descriptors",
			desc->num_queues, desc->queue_size);
		ret = -EINVAL;
		goto err_close;
	}
	region = vu_inflight_queue_region_size(desc->queue_size);
	need = desc->num_queues * region;
	if (desc->mmap_size < need) {
		vu_warn("inflight: area of %llu bytes too small for %u queues of %u descriptors (%llu bytes)",
			(unsigned long long)desc->mmap_size, desc->num_queues, desc->queue_size,
			(unsigned long long)need);
		ret = -EINVAL;
		goto err_close;
	}
	if (desc->mmap_offset > UINT64_MAX - desc->mmap_size ||
	    desc->mmap_offset + desc->mmap_size > (uint64_t)INT64_MAX) {
		vu_warn("inflight: area offset 0x%llx + size 0x%llx overflows",
			(unsigned long long)desc->mmap_offset, (unsigned long long)desc->mmap_size);
		ret = -EINVAL;
		goto err_close;
	}
	if (page <= 0 || desc->mmap_offset % (uint64_t)page) {
		vu_warn("inflight: area offset 0x%llx is not page aligned",
			(unsigned long long)desc->mmap_offset);
		ret = -EINVAL;
		goto err_close;
	}
	end = desc->mmap_offset + desc->mmap_size;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		vu_warn("inflight: fstat of the area fd: %s", strerror(-ret));
		goto err_close;
	}
	if (st.st_size < 0 || (uint64_t)st.st_size < end) {
		vu_warn("inflight: area offset 0x%llx + size 0x%llx beyond the file's %lld bytes",
			(unsigned long long)desc->mmap_offset, (unsigned long long)desc->mmap_size,
			(long long)st.st_size);
		ret = -EINVAL;
		goto err_close;
	}
	/* Only what the queues use is mapped (need <= mmap_size). */
	map = mmap(NULL, (size_t)need, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		   (off_t)desc->mmap_offset);
	if (map == MAP_FAILED) {
		ret = -errno;
		vu_warn("inflight: mmap of %llu bytes at 0x%llx: %s", (unsigned long long)need,
			(unsigned long long)desc->mmap_offset, strerror(-ret));
		goto err_close;
	}

	vu_inflight_area_release(area);
	area->map = map;
	area->map_len = (size_t)need;
	area->fd = fd;
	area->num_queues = desc->num_queues;
	area->queue_size = desc->queue_size;
	area->queue_region_size = region;
	return 0;

err_close:
	close(fd);
	return ret;
}

void vu_inflight_area_release(struct vu_inflight_area *area)
{
	if (area->map) {
		munmap(area->map, area->map_len);
		vu_close_fd(&area->fd);
	}
	area->map = NULL;
	area->map_len = 0;
	area->fd = -1;
	area->num_queues = 0;
	area->queue_size = 0;
	area->queue_region_size = 0;
}

/* ---- attach / detach ----------------------------------------------- */

void vu_inflight_queue_detach(struct vu_inflight_queue *iq)
{
	free(iq->resubmit);
	free(iq->batch);
	free(iq->slots);
	free(iq->saved);
	memset(iq, 0, sizeof(*iq));
}

struct order {
	uint64_t counter;
	uint16_t idx;
};

static int order_cmp(const void *a, const void *b)
{
	const struct order *x = a, *y = b;

	if (x->counter != y->counter)
		return x->counter < y->counter ? -1 : 1;
	return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Fresh split region: everything zero but the header. */
static void split_init(struct vu_inflight_queue *iq, uint16_t ring_used_idx)
{
	struct vu_inflight_region_split *g = gsplit(iq);

	memset(g->desc, 0, iq->desc_num * sizeof(g->desc[0]));
	gstore64(&g->features, 0);
	vu_store_relaxed16(&g->desc_num, iq->desc_num);
	vu_store_relaxed16(&g->last_batch_head, 0);
	/* used_idx must match the ring, or the first recovery would take
	 * the difference for a batch and clear entries still in flight. */
	vu_store_relaxed16(&g->used_idx, ring_used_idx);
	/* Release: a crash before this leaves version 0, initialised again. */
	vu_store_release16(&g->version, INFLIGHT_VERSION);
	iq->last_batch_head = 0;
	iq->counter = 1;
}

/*
 * The used ring moved past the region's used_idx: the backend died
 * between publishing a batch and committing it.  Clear the inflight flag
 * of that batch's entries (the list starting at last_batch_head).
 */
static int split_clear_last_batch(struct vu_inflight_queue *iq, uint16_t head, uint16_t count)
{
	struct vu_inflight_region_split *g = gsplit(iq);
	uint16_t n = iq->desc_num, idx = head;
	uint8_t *seen;

	seen = calloc(n, 1);
	if (!seen)
		return -ENOMEM;
	for (uint32_t k = 0; k < count; k++) {
		if (idx >= n) {
			vu_warn("inflight queue %u: entry %u of the last batch is %u, beyond %u descriptors",
				iq->index, k, idx, n);
			break;
		}
		if (seen[idx]) {
			vu_warn("inflight queue %u: last batch list loops back to %u after %u entries",
				iq->index, idx, k);
			break;
		}
		seen[idx] = 1;
		gstore8(&g->desc[idx].inflight, 0);
		idx = vu_load_relaxed16(&g->desc[idx].next);
	}
	free(seen);
	return 0;
}

static int split_recover(struct vu_inflight_queue *iq, uint16_t ring_used_idx)
{
	struct vu_inflight_region_split *g = gsplit(iq);
	uint16_t n = iq->desc_num;
	uint16_t region_used = vu_load_relaxed16(&g->used_idx);
	uint16_t head = vu_load_relaxed16(&g->last_batch_head);
	uint64_t max = 0;
	struct order *v;
	uint16_t m = 0;
	int ret;

	if (region_used != ring_used_idx) {
		uint16_t count = (uint16_t)(ring_used_idx - region_used);

		if (count > n) {
			vu_warn("inflight queue %u: used ring idx %u is %u past the region's %u, more than the %u descriptors",
				iq->index, ring_used_idx, count, region_used, n);
			count = n;
		}
		ret = split_clear_last_batch(iq, head, count);
		if (ret)
			return ret;
		/* Release: the batch's flags are clear before used_idx says so;
		 * a crash before this repeats the (idempotent) clearing. */
		vu_store_release16(&g->used_idx, ring_used_idx);
	}
	iq->last_batch_head = head < n ? head : 0;

	v = malloc(n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (uint16_t i = 0; i < n; i++) {
		if (!gload8(&g->desc[i].inflight))
			continue;
		v[m].counter = gload64(&g->desc[i].counter);
		v[m].idx = i;
		if (v[m].counter > max)
			max = v[m].counter;
		m++;
	}
	iq->counter = m ? max + 1 : 1;
	if (m) {
		qsort(v, m, sizeof(*v), order_cmp);
		iq->resubmit = malloc(m * sizeof(*iq->resubmit));
		if (!iq->resubmit) {
			free(v);
			return -ENOMEM;
		}
		for (uint16_t i = 0; i < m; i++)
			iq->resubmit[i] = v[i].idx;
		iq->nresubmit = m;
	}
	free(v);
	return 0;
}

static int split_attach(struct vu_inflight_queue *iq, uint16_t ring_used_idx)
{
	struct vu_inflight_region_split *g = gsplit(iq);
	uint16_t version, desc_num;

	iq->batch = calloc(iq->desc_num, sizeof(*iq->batch));
	if (!iq->batch)
		return -ENOMEM;
	version = vu_load_acquire16(&g->version);
	if (version == 0) {
		split_init(iq, ring_used_idx);
		return 0;
	}
	if (version != INFLIGHT_VERSION) {
		vu_warn("inflight queue %u: region version %u unknown", iq->index, version);
		return -EINVAL;
	}
	desc_num = vu_load_relaxed16(&g->desc_num);
	if (desc_num != iq->desc_num) {
		vu_warn("inflight queue %u: region has %u descriptors, the ring %u",
			iq->index, desc_num, iq->desc_num);
		return -EINVAL;
	}
	return split_recover(iq, ring_used_idx);
}

/* Packed: the shadow of a free list made of every entry marked free,
 * in index order, written to the region too. */
static void packed_link_free(struct vu_inflight_queue *iq)
{
	struct vu_inflight_region_packed *g = gpacked(iq);
	uint16_t n = iq->desc_num, first = n, prev = n;

	iq->nfree = 0;
	for (uint16_t i = 0; i < n; i++) {
		if (iq->slots[i].state != SLOT_FREE)
			continue;
		if (prev == n)
			first = i;
		else
			iq->slots[prev].next = i;
		prev = i;
		iq->nfree++;
	}
	if (prev != n)
		iq->slots[prev].next = n;     /* n ends the list */
	for (uint16_t i = 0; i < n; i++)
		if (iq->slots[i].state == SLOT_FREE)
			vu_store_relaxed16(&g->desc[i].next, iq->slots[i].next);
	iq->free_head = first;
	iq->pending_head = n;
	iq->pending_tail = n;
}

/* Write the recovered (or initial) position and free head to the region. */
static void packed_write_header(struct vu_inflight_queue *iq)
{
	struct vu_inflight_region_packed *g = gpacked(iq);

	vu_store_relaxed16(&g->free_head, iq->free_head);
	vu_store_relaxed16(&g->old_free_head, iq->free_head);
	gstore8(&g->used_wrap_counter, iq->used_wrap);
	gstore8(&g->old_used_wrap_counter, iq->used_wrap);
	vu_store_relaxed16(&g->used_idx, iq->used_idx);
	vu_store_release16(&g->old_used_idx, iq->used_idx);
}

static void packed_init(struct vu_inflight_queue *iq)
{
	struct vu_inflight_region_packed *g = gpacked(iq);
	uint16_t n = iq->desc_num;

	memset(g->desc, 0, n * sizeof(g->desc[0]));
	for (uint16_t i = 0; i < n; i++)
		iq->slots[i].state = SLOT_FREE;
	packed_link_free(iq);               /* 0 -> 1 -> ... -> n-1 */
	gstore64(&g->features, 0);
	vu_store_relaxed16(&g->desc_num, n);
	packed_write_header(iq);
	/* Release: a crash before this leaves version 0, initialised again. */
	vu_store_release16(&g->version, INFLIGHT_VERSION);
	iq->counter = 1;
}

/*
 * Spec, reconnect step 1: a batch was being completed (used position
 * moved since the last commit).  Did its used descriptors reach the
 * driver?  The descriptor at old_used_idx still carrying the available
 * flags of old_used_wrap_counter says no: roll back.  Without the ring,
 * roll forward (put is called after the used descriptor is written).
 */
static bool packed_batch_reached_driver(const struct vring_packed_desc *gpring, uint16_t n,
					uint16_t old_used_idx, bool old_wrap)
{
	const uint16_t mask = (1u << VRING_PACKED_DESC_F_AVAIL) | (1u << VRING_PACKED_DESC_F_USED);
	uint16_t avail, flags;

	if (!gpring || old_used_idx >= n)
		return true;
	avail = old_wrap ? (1u << VRING_PACKED_DESC_F_AVAIL) : (1u << VRING_PACKED_DESC_F_USED);
	flags = le16toh(vu_load_relaxed16((const uint16_t *)&gpring[old_used_idx].flags));
	return (flags & mask) != avail;
}

/* Marks of packed recovery: entries claimed by the free list or by an
 * accepted chain; candidate k marks its walk with CAND_BASE + k. */
enum { MARK_NONE, MARK_FREE, MARK_CHAIN, CAND_BASE };

/*
 * Check the chain of candidate head h (number k in counter order) on the
 * snapshot: 1..n entries, each link inside the region, no entry of the
 * free list or of an accepted chain, no loop, ending at `last`, with a
 * buffer id inside the ring.  On success its entries are claimed.
 */
static bool packed_chain_ok(struct vu_inflight_queue *iq, const struct vu_inflight_desc_packed *snap,
			    uint32_t *mark, uint16_t h, uint32_t k)
{
	uint16_t n = iq->desc_num, num = snap[h].num, last = snap[h].last, s = h;

	if (num == 0 || num > n) {
		vu_warn("inflight queue %u: entry %u has a chain of %u descriptors (ring of %u), dropped",
			iq->index, h, num, n);
		return false;
	}
	if (last >= n) {
		vu_warn("inflight queue %u: entry %u ends at %u, beyond %u descriptors, dropped",
			iq->index, h, last, n);
		return false;
	}
	for (uint16_t j = 0; j < num; j++) {
		if (s >= n) {
			vu_warn("inflight queue %u: chain at %u links to %u, beyond %u descriptors, dropped",
				iq->index, h, s, n);
			return false;
		}
		if (mark[s] == CAND_BASE + k) {
			vu_warn("inflight queue %u: chain at %u loops back to %u, dropped", iq->index, h, s);
			return false;
		}
		if (mark[s] == MARK_FREE || mark[s] == MARK_CHAIN) {
			vu_warn("inflight queue %u: chain at %u shares entry %u with the free list or another chain, dropped",
				iq->index, h, s);
			return false;
		}
		mark[s] = CAND_BASE + k;
		if (j + 1 < num)
			s = snap[s].next;
	}
	if (s != last) {
		vu_warn("inflight queue %u: chain at %u of %u descriptors ends at %u, not at its last %u, dropped",
			iq->index, h, num, s, last);
		return false;
	}
	if (snap[last].id >= n) {
		vu_warn("inflight queue %u: chain at %u has buffer id %u (ring of %u), dropped",
			iq->index, h, snap[last].id, n);
		return false;
	}
	for (uint16_t j = 0, t = h; j < num; j++, t = snap[t].next) {
		mark[t] = MARK_CHAIN;
		iq->slots[t].state = j ? SLOT_MEMBER : SLOT_HEAD;
		iq->slots[t].next = snap[t].next;
		iq->slots[t].saved = true;
	}
	iq->slots[h].num = num;
	iq->slots[h].last = last;
	return true;
}

static int packed_recover(struct vu_inflight_queue *iq, const struct vring_packed_desc *gpring)
{
	struct vu_inflight_region_packed *g = gpacked(iq);
	uint16_t n = iq->desc_num, free_head, used_idx;
	uint16_t old_free_head, old_used_idx, m = 0, nres = 0;
	struct vu_inflight_desc_packed *snap;
	bool used_wrap, old_used_wrap;
	struct order *cand = NULL;
	uint32_t *mark = NULL;
	uint64_t max = 0;
	int ret = -ENOMEM;

	/* One read of everything; only the copy is used below. */
	snap = malloc(n * sizeof(*snap));
	if (!snap)
		return -ENOMEM;
	memcpy(snap, g->desc, n * sizeof(*snap));
	free_head = vu_load_relaxed16(&g->free_head);
	old_free_head = vu_load_relaxed16(&g->old_free_head);
	used_idx = vu_load_relaxed16(&g->used_idx);
	old_used_idx = vu_load_relaxed16(&g->old_used_idx);
	used_wrap = gload8(&g->used_wrap_counter) != 0;
	old_used_wrap = gload8(&g->old_used_wrap_counter) != 0;

	/* Step 1 (the wrap too: a chain of exactly n descriptors brings
	 * used_idx back to where it was, with the wrap counter flipped). */
	if ((used_idx != old_used_idx || used_wrap != old_used_wrap) &&
	    packed_batch_reached_driver(gpring, n, old_used_idx, old_used_wrap)) {
		old_free_head = free_head;
		old_used_idx = used_idx;
		old_used_wrap = used_wrap;
	}
	/* Step 2: roll back whatever else was in progress. */
	free_head = old_free_head;
	used_idx = old_used_idx;
	used_wrap = old_used_wrap;
	if (used_idx >= n) {
		vu_warn("inflight queue %u: region's used index %u is beyond the ring of %u",
			iq->index, used_idx, n);
		ret = -EINVAL;
		goto out;
	}

	mark = calloc(n, sizeof(*mark));
	cand = malloc(n * sizeof(*cand));
	if (!mark || !cand)
		goto out;
	/* Step 3: the free list, bounded; its entries are not in flight.
	 * Any link beyond the region ends it (n is the normal end). */
	for (uint16_t s = free_head, k = 0;; s = snap[s].next, k++) {
		if (s >= n) {
			if (s != n)
				vu_warn("inflight queue %u: free list ends with a link to %u, beyond %u descriptors",
					iq->index, s, n);
			break;
		}
		if (mark[s]) {
			vu_warn("inflight queue %u: free list loops back to %u after %u entries",
				iq->index, s, k);
			break;
		}
		mark[s] = MARK_FREE;
		snap[s].inflight = 0;
	}
	/* Step 4: heads in flight, oldest first; an older chain wins an
	 * entry two chains claim. */
	for (uint16_t i = 0; i < n; i++) {
		if (mark[i] == MARK_FREE || !snap[i].inflight)
			continue;
		cand[m].counter = snap[i].counter;
		cand[m].idx = i;
		m++;
	}
	qsort(cand, m, sizeof(*cand), order_cmp);
	for (uint16_t k = 0; k < m; k++) {
		uint16_t h = cand[k].idx;

		if (!packed_chain_ok(iq, snap, mark, h, k)) {
			/* Not a head any more (it may sit inside an
			 * accepted chain, which the clearing below skips). */
			snap[h].inflight = 0;
			gstore8(&g->desc[h].inflight, 0);
			continue;
		}
		cand[nres++] = cand[k];     /* nres <= k: in place */
		if (snap[h].counter > max)
			max = snap[h].counter;
	}

	if (nres) {
		iq->resubmit = malloc(nres * sizeof(*iq->resubmit));
		if (!iq->resubmit)
			goto out;
		for (uint16_t k = 0; k < nres; k++)
			iq->resubmit[k] = cand[k].idx;
		iq->nresubmit = nres;
	}
	iq->counter = nres ? max + 1 : 1;
	iq->used_idx = used_idx;
	iq->used_wrap = used_wrap;

	/*
	 * Every entry not in an accepted chain is free: the free list is
	 * rebuilt rather than trusted (this also takes back entries a
	 * crash or the front-end left in no list).  Flags are cleared
	 * before any link changes, and links before the header, so a crash
	 * in here leaves a region that recovers the same way.
	 */
	for (uint16_t i = 0; i < n; i++) {
		if (mark[i] == MARK_CHAIN)
			continue;
		iq->slots[i].state = SLOT_FREE;
		gstore8(&g->desc[i].inflight, 0);
	}
	packed_link_free(iq);
	packed_write_header(iq);

	if (nres) {
		iq->saved = snap;
		snap = NULL;
	}
	ret = 0;
out:
	free(cand);
	free(mark);
	free(snap);
	return ret;
}

static int packed_attach(struct vu_inflight_queue *iq, uint16_t start, const struct vring_packed_desc *gpring)
{
	struct vu_inflight_region_packed *g = gpacked(iq);
	uint16_t version, desc_num;

	iq->slots = calloc(iq->desc_num, sizeof(*iq->slots));
	iq->batch = calloc(iq->desc_num, sizeof(*iq->batch));
	if (!iq->slots || !iq->batch)
		return -ENOMEM;
	version = vu_load_acquire16(&g->version);
	if (version == 0) {
		iq->used_idx = start & 0x7fff;
		iq->used_wrap = start >> 15;
		if (iq->used_idx >= iq->desc_num) {
			vu_warn("inflight queue %u: used index %u beyond the ring of %u",
				iq->index, iq->used_idx, iq->desc_num);
			return -EINVAL;
		}
		packed_init(iq);
		return 0;
	}
	if (version != INFLIGHT_VERSION) {
		vu_warn("inflight queue %u: region version %u unknown", iq->index, version);
		return -EINVAL;
	}
	desc_num = vu_load_relaxed16(&g->desc_num);
	if (desc_num != iq->desc_num) {
		vu_warn("inflight queue %u: region has %u descriptors, the ring %u",
			iq->index, desc_num, iq->desc_num);
		return -EINVAL;
	}
	return packed_recover(iq, gpring);
}

int vu_inflight_queue_attach(struct vu_inflight_queue *iq, struct vu_inflight_area *area,
			     uint16_t index, uint16_t ring_size, bool packed,
			     uint16_t used_idx, const struct vring_packed_desc *gpring)
{
	int ret;

	vu_inflight_queue_detach(iq);
	if (!area->map || index >= area->num_queues) {
		vu_warn("inflight: queue %u, but the area has %u queues", index, area->num_queues);
		return -EINVAL;
	}
	if (ring_size == 0 || ring_size > area->queue_size) {
		vu_warn("inflight queue %u: ring of %u descriptors, the area holds %u",
			index, ring_size, area->queue_size);
		return -EINVAL;
	}
	iq->gregion = (char *)area->map + index * area->queue_region_size;
	iq->desc_num = ring_size;
	iq->index = index;
	iq->packed = packed;
	ret = packed ? packed_attach(iq, used_idx, gpring) : split_attach(iq, used_idx);
	if (ret)
		vu_inflight_queue_detach(iq);
	return ret;
}

/* ---- split data path ----------------------------------------------- */

void vu_inflight_split_get(struct vu_inflight_queue *iq, uint16_t head)
{
	struct vu_inflight_desc_split *gd;

	if (vu_unlikely(head >= iq->desc_num)) {
		iq_warn_once(iq, "head %u beyond %u descriptors", head, iq->desc_num);
		return;
	}
	gd = &gsplit(iq)->desc[head];
	gstore64(&gd->counter, iq->counter++);
	/* Release: counter before inflight.  A crash in between leaves the
	 * head not in flight; recovery then starts the avail ring right at
	 * it (used idx + chains resubmitted), so it is read again. */
	gstore8_release(&gd->inflight, 1);
}

void vu_inflight_split_put(struct vu_inflight_queue *iq, uint16_t head)
{
	struct vu_inflight_region_split *g = gsplit(iq);

	if (vu_unlikely(head >= iq->desc_num)) {
		iq_warn_once(iq, "head %u beyond %u descriptors", head, iq->desc_num);
		return;
	}
	vu_store_relaxed16(&g->desc[head].next, iq->last_batch_head);
	/* Release: the link before the head that makes it reachable.  The
	 * list only matters once used->idx moves, after this. */
	vu_store_release16(&g->last_batch_head, head);
	iq->last_batch_head = head;
	if (vu_likely(iq->nbatch < iq->desc_num))
		iq->batch[iq->nbatch++] = head;
	else    /* only a head taken twice can do this; after a crash that
		 * head may be resubmitted although completed */
		iq_warn_once(iq, "more than %u completions in one batch", iq->desc_num);
}

void vu_inflight_split_commit(struct vu_inflight_queue *iq, uint16_t used_idx)
{
	struct vu_inflight_region_split *g = gsplit(iq);

	for (uint16_t i = 0; i < iq->nbatch; i++)
		gstore8(&g->desc[iq->batch[i]].inflight, 0);
	/* Release: the batch's flags are clear before used_idx catches up
	 * with the ring.  A crash before this: recovery sees used->idx past
	 * used_idx and clears the same batch (from last_batch_head). */
	vu_store_release16(&g->used_idx, used_idx);
	iq->nbatch = 0;
}

/* ---- packed data path ---------------------------------------------- */

uint16_t vu_inflight_packed_get(struct vu_inflight_queue *iq,
				const struct vring_packed_desc *descs, uint16_t n)
{
	struct vu_inflight_region_packed *g = gpacked(iq);
	uint16_t head = iq->free_head, s = head, last = head;
	struct vu_inflight_desc_packed *gd;

	if (vu_unlikely(n == 0 || n > iq->nfree)) {
		iq_warn_once(iq, "chain of %u descriptors, %u entries free: not tracked", n, iq->nfree);
		return VU_INFLIGHT_NO_SLOT;
	}
	/* The private free list is consistent by construction: n entries
	 * are there, all below desc_num. */
	for (uint16_t i = 0; i < n; i++) {
		gd = &g->desc[s];
		gstore64(&gd->addr, descs[i].addr);
		gstore32(&gd->len, descs[i].len);
		vu_store_relaxed16(&gd->id, descs[i].id);
		vu_store_relaxed16(&gd->flags, descs[i].flags);
		iq->slots[s].state = i ? SLOT_MEMBER : SLOT_HEAD;
		last = s;
		s = iq->slots[s].next;
	}
	/* s: the new front of the free list (desc_num if empty). */
	gd = &g->desc[head];
	vu_store_relaxed16(&gd->num, n);
	vu_store_relaxed16(&gd->last, last);
	gstore64(&gd->counter, iq->counter++);
	/* Release: the record is complete before it counts as in flight.
	 * Until the unlink below, head is still in the free list: a crash
	 * leaves it cleared by recovery and the chain is read again from
	 * the ring, where it still is. */
	gstore8_release(&gd->inflight, 1);
	if (iq->pending_head == iq->desc_num) {
		vu_store_release16(&g->free_head, s);
	} else {
		/* Chains put since the last commit stay in front of the free
		 * list (a rollback drops them from it); the oldest one now
		 * links past this chain. */
		vu_store_release16(&g->desc[iq->pending_tail].next, s);
		iq->slots[iq->pending_tail].next = s;
	}
	/* Either order of the two unlinking stores recovers to head being
	 * free (chain read again) or in flight (resubmitted). */
	vu_store_release16(&g->old_free_head, s);
	iq->slots[head].num = n;
	iq->slots[head].last = last;
	iq->free_head = s;
	iq->nfree -= n;
	return head;
}

void vu_inflight_packed_put(struct vu_inflight_queue *iq, uint16_t slot,
			    uint16_t used_idx, bool used_wrap)
{
	struct vu_inflight_region_packed *g = gpacked(iq);
	uint16_t last, front;

	if (vu_unlikely(slot >= iq->desc_num || iq->slots[slot].state != SLOT_HEAD)) {
		if (slot != VU_INFLIGHT_NO_SLOT)
			iq_warn_once(iq, "completion of slot %u, not a chain in flight", slot);
		return;
	}
	last = iq->slots[slot].last;
	front = iq->pending_head != iq->desc_num ? iq->pending_head : iq->free_head;
	/* Spec steps 3-4, then the used position; the commit point is
	 * used_idx/wrap differing from old_used_idx/wrap (recovery step 1).
	 * A crash before that rolls back to old_free_head: the chain is in
	 * flight again. */
	vu_store_relaxed16(&g->desc[last].next, front);
	vu_store_release16(&g->free_head, slot);
	gstore8(&g->used_wrap_counter, used_wrap);
	vu_store_release16(&g->used_idx, used_idx);

	iq->slots[last].next = front;
	if (iq->pending_head == iq->desc_num)
		iq->pending_tail = last;
	iq->pending_head = slot;
	iq->slots[slot].state = SLOT_PENDING;
	iq->batch[iq->nbatch++] = slot;     /* each slot at most once: <= desc_num */
	iq->used_idx = used_idx;
	iq->used_wrap = used_wrap;
}

void vu_inflight_packed_commit(struct vu_inflight_queue *iq)
{
	struct vu_inflight_region_packed *g = gpacked(iq);

	if (!iq->nbatch)
		return;
	for (uint16_t i = 0; i < iq->nbatch; i++) {
		uint16_t h = iq->batch[i], s = h;

		gstore8(&g->desc[h].inflight, 0);
		for (uint16_t j = 0; j < iq->slots[h].num; j++) {
			iq->slots[s].state = SLOT_FREE;
			iq->slots[s].saved = false;
			s = iq->slots[s].next;
		}
		iq->nfree += iq->slots[h].num;
	}
	/* The pending chains already lead to the committed front. */
	iq->free_head = iq->pending_head;
	iq->pending_head = iq->desc_num;
	iq->pending_tail = iq->desc_num;
	iq->nbatch = 0;
	/* Release: the flags are clear before old_* catch up.  A crash in
	 * between: used != old_used, the batch reached the driver, recovery
	 * rolls forward and clears the same flags. */
	vu_store_release16(&g->old_free_head, iq->free_head);
	gstore8(&g->old_used_wrap_counter, iq->used_wrap);
	vu_store_release16(&g->old_used_idx, iq->used_idx);
}

void vu_inflight_packed_ring_state(const struct vu_inflight_queue *iq, uint16_t *used_idx,
				   bool *used_wrap, uint16_t *avail_idx, bool *avail_wrap)
{
	uint32_t total = 0, pos;
	bool wrap = iq->used_wrap;

	/* Chains to resubmit hold distinct entries: total <= desc_num. */
	for (uint16_t i = 0; i < iq->nresubmit; i++)
		total += iq->slots[iq->resubmit[i]].num;
	pos = (uint32_t)iq->used_idx + total;
	if (pos >= iq->desc_num) {
		pos -= iq->desc_num;
		wrap = !wrap;
	}
	*used_idx = iq->used_idx;
	*used_wrap = iq->used_wrap;
	*avail_idx = (uint16_t)pos;
	*avail_wrap = wrap;
}

const struct vu_inflight_desc_packed *vu_inflight_packed_slot(const struct vu_inflight_queue *iq,
							       uint16_t slot)
{
	if (!iq->saved || slot >= iq->desc_num || !iq->slots[slot].saved)
		return NULL;
	return &iq->saved[slot];
}

bool vu_inflight_next_resubmit(struct vu_inflight_queue *iq, uint16_t *out)
{
	if (iq->resubmit_pos >= iq->nresubmit)
		return false;
	*out = iq->resubmit[iq->resubmit_pos++];
	return true;
}
