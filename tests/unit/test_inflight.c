// SPDX-License-Identifier: MIT
/*
 * Unit tests of inflight tracking (common/inflight.c): area creation and
 * mapping, the split and packed bookkeeping, recovery after a "crash"
 * (the queue's private state is dropped and a new one attaches to the
 * same area), and recovery from regions the front-end corrupted
 * (SECURITY.md A.6), each hostile case a table row.
 *
 * The fixture is an area of 2 queues of 16 descriptors, used by rings of
 * 8 (the area may be bigger than the ring).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/virtio_ring.h>

#include "vu_inflight.h"
#include "vu_util.h"

#define NQ      2
#define AREA_QS 16
#define QS      8
#define WRAP    0x8000   /* bit 15 of a packed position */
#define NONE    0xffff

struct fx {
	struct vu_inflight_area area;
	struct vu_inflight_queue iq;
	struct vring_packed_desc ring[QS];   /* fake packed ring (flags only) */
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct vu_inflight_desc desc;

	if (!f)
		return -1;
	f->area.fd = -1;
	if (vu_inflight_area_create(&f->area, NQ, AREA_QS, &desc)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	vu_inflight_queue_detach(&f->iq);
	vu_inflight_area_release(&f->area);
	free(f);
	return 0;
}

/* Fixture for table-driven tests: a fresh one per row. */
static struct fx *fx_new(void)
{
	void *st = NULL;

	if (fx_setup(&st) != 0 || !st) {
		fail_msg("fixture setup failed");
		abort();        /* not reached (tells the static analyzer) */
	}
	return st;
}

static void fx_free(struct fx *f)
{
	void *st = f;

	fx_teardown(&st);
}

static void *region(struct fx *f, uint16_t q)
{
	return (char *)f->area.map + q * f->area.queue_region_size;
}

static struct vu_inflight_region_split *rsplit(struct fx *f)
{
	return region(f, 0);
}

static struct vu_inflight_region_packed *rpacked(struct fx *f)
{
	return region(f, 0);
}

/* The backend dies: its private state is gone, the area stays. */
static void crash(struct fx *f)
{
	vu_inflight_queue_detach(&f->iq);
}

static void expect_resubmit(struct vu_inflight_queue *iq, const uint16_t *want, uint16_t n)
{
	uint16_t got;

	assert_int_equal(iq->nresubmit, n);
	for (uint16_t i = 0; i < n; i++) {
		assert_true(vu_inflight_next_resubmit(iq, &got));
		assert_int_equal(got, want[i]);
	}
	assert_false(vu_inflight_next_resubmit(iq, &got));
}

/* ---- area ---------------------------------------------------------- */

static void test_region_size(void **state)
{
	(void)state;
	/* 32-byte header + 8 * 32, rounded up to 64 */
	assert_int_equal(vu_inflight_queue_region_size(8), 320);
	assert_int_equal(vu_inflight_queue_region_size(256), 8256);
	assert_int_equal(vu_inflight_queue_region_size(32768), 32 + 32768ull * 32 + 32);
	for (uint32_t qs = 1; qs <= 1024; qs++) {
		uint64_t sz = vu_inflight_queue_region_size((uint16_t)qs);

		assert_int_equal(sz % 64, 0);
		assert_true(sz >= offsetof(struct vu_inflight_region_packed, desc) +
				  qs * sizeof(struct vu_inflight_desc_packed));
		assert_true(sz >= offsetof(struct vu_inflight_region_split, desc) +
				  qs * sizeof(struct vu_inflight_desc_split));
	}
}

static void test_area_create(void **state)
{
	struct vu_inflight_area a = { .fd = -1 };
	struct vu_inflight_desc desc;
	static const struct { uint16_t nq, qs; } bad[] = {
		{ 0, 8 },       /* SECURITY.md A.6: no queues */
		{ 1, 0 },       /* SECURITY.md A.6: queue size 0 */
		{ 1, 32769 },   /* SECURITY.md A.6: queue size above 32768 */
	};
	int seals;

	(void)state;
	for (size_t i = 0; i < VU_ARRAY_SIZE(bad); i++) {
		assert_int_equal(vu_inflight_area_create(&a, bad[i].nq, bad[i].qs, &desc), -EINVAL);
		assert_null(a.map);
	}
	assert_int_equal(vu_inflight_area_create(&a, 3, 256, &desc), 0);
	assert_non_null(a.map);
	assert_true(a.fd >= 0);
	assert_int_equal(desc.mmap_size, 3 * 8256);
	assert_int_equal(desc.mmap_offset, 0);
	assert_int_equal(desc.num_queues, 3);
	assert_int_equal(desc.queue_size, 256);
	assert_int_equal(lseek(a.fd, 0, SEEK_END), 3 * 8256);
	seals = fcntl(a.fd, F_GET_SEALS);
	assert_true(seals & F_SEAL_SHRINK);
	assert_int_equal(ftruncate(a.fd, 4096), -1);   /* the front-end cannot shrink it */
	for (size_t i = 0; i < desc.mmap_size; i++)
		assert_int_equal(((uint8_t *)a.map)[i], 0);
	/* GET_INFLIGHT_FD again (A.3): the old area is replaced, not leaked. */
	assert_int_equal(vu_inflight_area_create(&a, 1, 8, &desc), 0);
	assert_int_equal(a.num_queues, 1);
	vu_inflight_area_release(&a);
	vu_inflight_area_release(&a);
	assert_null(a.map);
	assert_int_equal(a.fd, -1);
}

static void test_area_map_roundtrip(void **state)
{
	struct vu_inflight_area a = { .fd = -1 }, b = { .fd = -1 };
	struct vu_inflight_desc desc;

	(void)state;
	assert_int_equal(vu_inflight_area_create(&a, 2, 8, &desc), 0);
	assert_int_equal(vu_inflight_area_map(&b, &desc, dup(a.fd)), 0);
	assert_int_equal(b.num_queues, 2);
	assert_int_equal(b.queue_size, 8);
	assert_int_equal(b.queue_region_size, 320);
	((uint8_t *)a.map)[330] = 0x5a;
	assert_int_equal(((uint8_t *)b.map)[330], 0x5a);
	/* SET_INFLIGHT_FD again (A.3): replaced, the old mapping released. */
	assert_int_equal(vu_inflight_area_map(&b, &desc, dup(a.fd)), 0);
	assert_int_equal(((uint8_t *)b.map)[330], 0x5a);
	vu_inflight_area_release(&b);
	vu_inflight_area_release(&a);
	assert_null(b.map);
	assert_int_equal(b.fd, -1);
	/* A zeroed area: nothing to unmap (and its fd 0 is not closed). */
	memset(&b, 0, sizeof(b));
	vu_inflight_area_release(&b);
	assert_int_equal(b.fd, -1);
}

struct map_case {
	const char *what;
	uint64_t file_size;
	struct vu_inflight_desc desc;
};

static void test_area_map_hostile(void **state)
{
	const uint64_t need = 2ull * 320;   /* 2 queues of 8 */
	const struct map_case cases[] = {
		/* SECURITY.md A.6: region too small for num_queues * queue_size */
		{ "too small", 8192, { need - 64, 0, 2, 8 } },
		/* SECURITY.md A.6: num_queues 0 */
		{ "no queues", 8192, { need, 0, 0, 8 } },
		/* SECURITY.md A.6: queue_size 0 */
		{ "queue size 0", 8192, { need, 0, 2, 0 } },
		/* SECURITY.md A.6: queue_size above 32768 */
		{ "queue size 32769", 8192, { 1ull << 32, 0, 1, 32769 } },
		/* SECURITY.md A.6: more queues than the region holds */
		{ "num_queues mismatch", 8192, { need, 0, 3, 8 } },
		/* SECURITY.md A.6 (A.7 class): offset + size overflows 64 bits */
		{ "offset overflow", 8192, { need, 0xffffffffffffff00ull, 2, 8 } },
		/* SECURITY.md A.6: offset + size past off_t */
		{ "offset past off_t", 8192, { need + 0x10000, 0x7ffffffffffff000ull, 2, 8 } },
		/* SECURITY.md A.6: offset + size beyond the file */
		{ "beyond the file", 4096, { need, 4096, 2, 8 } },
		/* SECURITY.md A.6: size beyond the file */
		{ "file too short", 100, { need, 0, 2, 8 } },
		/* SECURITY.md A.6: offset not page aligned */
		{ "misaligned offset", 8192, { need, 100, 2, 8 } },
	};
	struct vu_inflight_area a = { .fd = -1 };
	struct vu_inflight_desc good = { need, 0, 2, 8 };
	int gfd;

	(void)state;
	/* A mapped area must survive a bad SET_INFLIGHT_FD unchanged. */
	gfd = memfd_create("good", MFD_CLOEXEC);
	assert_int_equal(ftruncate(gfd, 8192), 0);
	assert_int_equal(vu_inflight_area_map(&a, &good, gfd), 0);
	for (size_t i = 0; i < VU_ARRAY_SIZE(cases); i++) {
		int fd = memfd_create("hostile", MFD_CLOEXEC);

		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, (off_t)cases[i].file_size), 0);
		print_message("  %s\n", cases[i].what);
		assert_int_equal(vu_inflight_area_map(&a, &cases[i].desc, fd), -EINVAL);
		/* A.2: the fd was taken and closed on the error path. */
		assert_int_equal(fcntl(fd, F_GETFD), -1);
		assert_int_equal(errno, EBADF);
		assert_int_equal(a.fd, gfd);
		assert_int_equal(a.num_queues, 2);
	}
	assert_int_equal(vu_inflight_area_map(&a, &good, -1), -EBADF);
	vu_inflight_area_release(&a);
}

/* ---- attach -------------------------------------------------------- */

static void poke_desc_num(struct fx *f)
{
	rsplit(f)->version = 1;
	rsplit(f)->desc_num = QS * 2;
}

static void poke_version(struct fx *f)
{
	rsplit(f)->version = 7;
}

static void poke_packed_used(struct fx *f)
{
	struct vu_inflight_region_packed *g = rpacked(f);

	g->version = 1;
	g->desc_num = QS;
	g->used_idx = g->old_used_idx = 200;
}

static void poke_packed_free_head(struct fx *f)
{
	struct vu_inflight_region_packed *g = rpacked(f);

	g->version = 1;
	g->desc_num = QS;
	g->free_head = g->old_free_head = 0xfff0;
}

struct attach_case {
	const char *what;
	void (*poke)(struct fx *f);
	uint16_t index, ring_size;
	bool packed;
	uint16_t used;
	int ret;
};

static void test_attach_hostile(void **state)
{
	const struct attach_case cases[] = {
		/* SECURITY.md A.6: queue index beyond the area's num_queues */
		{ "num_queues mismatch", NULL, NQ, QS, false, 0, -EINVAL },
		/* SECURITY.md A.6: ring larger than the area's queue_size */
		{ "ring bigger than area", NULL, 0, AREA_QS + 1, false, 0, -EINVAL },
		/* SECURITY.md A.6: ring of size 0 */
		{ "ring size 0", NULL, 0, 0, true, 0, -EINVAL },
		/* SECURITY.md A.6: region desc_num disagrees with the ring (split) */
		{ "desc_num mismatch split", poke_desc_num, 0, QS, false, 0, -EINVAL },
		/* SECURITY.md A.6: region desc_num disagrees with the ring (packed) */
		{ "desc_num mismatch packed", poke_desc_num, 0, QS, true, 0, -EINVAL },
		/* SECURITY.md A.6: unknown region version */
		{ "unknown version", poke_version, 0, QS, false, 0, -EINVAL },
		/* SECURITY.md A.6: packed used index beyond the ring */
		{ "packed used_idx out of range", poke_packed_used, 0, QS, true, 0, -EINVAL },
		/* SECURITY.md A.6: packed start position beyond the ring (fresh) */
		{ "packed start out of range", NULL, 0, QS, true, WRAP | QS, -EINVAL },
		/* SECURITY.md A.6: free_head out of range: empty list, rebuilt */
		{ "packed free_head out of range", poke_packed_free_head, 0, QS, true, 0, 0 },
	};
	for (size_t i = 0; i < VU_ARRAY_SIZE(cases); i++) {
		struct fx *f = fx_new();

		print_message("  %s\n", cases[i].what);
		if (cases[i].poke)
			cases[i].poke(f);
		assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, cases[i].index,
							  cases[i].ring_size, cases[i].packed,
							  cases[i].used, NULL), cases[i].ret);
		if (cases[i].ret) {
			assert_null(f->iq.gregion);
			assert_int_equal(f->iq.nresubmit, 0);
		}
		(void)state;
		fx_free(f);
	}
}

/* ---- split --------------------------------------------------------- */

static void test_split_fresh(void **state)
{
	struct fx *f = *state;
	struct vu_inflight_region_split *g = rsplit(f);

	memset(g, 0xab, f->area.queue_region_size);   /* version 0 is all that counts */
	g->version = 0;
	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, false, 5, NULL), 0);
	assert_int_equal(g->version, 1);
	assert_int_equal(g->desc_num, QS);
	assert_int_equal(g->used_idx, 5);
	assert_int_equal(g->features, 0);
	for (int i = 0; i < QS; i++)
		assert_int_equal(g->desc[i].inflight, 0);
	assert_int_equal(f->iq.nresubmit, 0);
	/* The other queue's region is untouched. */
	assert_int_equal(((struct vu_inflight_region_split *)region(f, 1))->version, 0);
	/* Restart without anything in flight: nothing to resubmit. */
	crash(f);
	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, false, 5, NULL), 0);
	assert_int_equal(f->iq.nresubmit, 0);
}

static void test_split_crash_resubmit(void **state)
{
	struct fx *f = *state;
	struct vu_inflight_region_split *g = rsplit(f);
	static const uint16_t want[] = { 5, 3 };
	uint64_t c5, c3;

	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, false, 0, NULL), 0);
	vu_inflight_split_get(&f->iq, 5);
	vu_inflight_split_get(&f->iq, 1);
	vu_inflight_split_get(&f->iq, 3);
	assert_int_equal(g->desc[5].inflight, 1);
	assert_true(g->desc[5].counter < g->desc[1].counter);
	assert_true(g->desc[1].counter < g->desc[3].counter);
	c5 = g->desc[5].counter;
	c3 = g->desc[3].counter;
	/* Complete 1: used->idx goes 0 -> 1, then commit. */
	vu_inflight_split_put(&f->iq, 1);
	vu_inflight_split_commit(&f->iq, 1);
	assert_int_equal(g->desc[1].inflight, 0);
	assert_int_equal(g->used_idx, 1);

	crash(f);
	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, false, 1, NULL), 0);
	assert_true(f->iq.counter > c3 && f->iq.counter > c5);
	expect_resubmit(&f->iq, want, 2);

	/* The resubmitted ones complete normally; a later crash has none. */
	vu_inflight_split_put(&f->iq, 3);
	vu_inflight_split_put(&f->iq, 5);
	vu_inflight_split_commit(&f->iq, 3);
	crash(f);
	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, false, 3, NULL), 0);
	assert_int_equal(f->iq.nresubmit, 0);
}

static void test_split_crash_mid_batch(void **state)
{
	struct fx *f = *state;
	struct vu_inflight_region_split *g = rsplit(f);
	static const uint16_t all[] = { 0, 1, 2, 3 };
	static const uint16_t rest[] = { 0, 3 };

	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, false, 10, NULL), 0);
	for (uint16_t h = 0; h < 4; h++)
		vu_inflight_split_get(&f->iq, h);
	/* One earlier batch, committed: 4 is taken and completed. */
	vu_inflight_split_get(&f->iq, 4);
	vu_inflight_split_put(&f->iq, 4);
	vu_inflight_split_commit(&f->iq, 11);
	/* Batch {1, 2} put; the backend dies before used->idx moves. */
	vu_inflight_split_put(&f->iq, 1);
	vu_inflight_split_put(&f->iq, 2);
	crash(f);
	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, false, 11, NULL), 0);
	expect_resubmit(&f->iq, all, 4);

	/* Again, but used->idx was published (11 -> 13) and the commit lost:
	 * the batch is not resubmitted, the earlier batch (4) untouched. */
	vu_inflight_split_put(&f->iq, 1);
	vu_inflight_split_put(&f->iq, 2);
	crash(f);
	assert_int_equal(g->used_idx, 11);
	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, false, 13, NULL), 0);
	assert_int_equal(g->used_idx, 13);
	expect_resubmit(&f->iq, rest, 2);
}

/* Split regions corrupted by the front-end: each row sets up the region
 * after heads 0..5 were taken (counters 1..6) and the batch {1, 2} put,
 * then recovery runs with the ring's used idx 2 (region's 0). */
struct split_case {
	const char *what;
	void (*poke)(struct vu_inflight_region_split *g);
	uint16_t ring_used;
	uint16_t want[QS];
	uint16_t nwant;
};

static void sp_none(struct vu_inflight_region_split *g)
{
	(void)g;
}

static void sp_head_oob(struct vu_inflight_region_split *g)
{
	g->last_batch_head = 200;
}

static void sp_cycle(struct vu_inflight_region_split *g)
{
	g->last_batch_head = 3;
	g->desc[3].next = 4;
	g->desc[4].next = 3;
}

static void sp_next_oob(struct vu_inflight_region_split *g)
{
	g->desc[2].next = 0x7777;
}

static void sp_counters_equal(struct vu_inflight_region_split *g)
{
	for (int i = 0; i < QS; i++)
		g->desc[i].counter = 42;
}

static void sp_counters_reversed(struct vu_inflight_region_split *g)
{
	for (int i = 0; i < QS; i++)
		g->desc[i].counter = UINT64_MAX - (uint64_t)i;
}

static void sp_inflight_ff(struct vu_inflight_region_split *g)
{
	g->desc[7].inflight = 0xff;
	g->desc[7].counter = 0;
}

static void test_split_hostile(void **state)
{
	const struct split_case cases[] = {
		/* baseline: batch {1, 2} cleared */
		{ "baseline", sp_none, 2, { 0, 3, 4, 5 }, 4 },
		/* SECURITY.md A.6: last_batch_head beyond desc_num: nothing cleared */
		{ "last_batch_head out of range", sp_head_oob, 2, { 0, 1, 2, 3, 4, 5 }, 6 },
		/* SECURITY.md A.6: cyclic next links: walk stops on the loop */
		{ "cyclic next links", sp_cycle, 5, { 0, 1, 2, 5 }, 4 },
		/* SECURITY.md A.6: next link beyond desc_num mid-walk */
		{ "next out of range", sp_next_oob, 3, { 0, 1, 3, 4, 5 }, 5 },
		/* SECURITY.md A.6: used idx jumped more than the queue size: the
		 * walk is capped (and runs past the batch: 2, 1, then 0) */
		{ "used idx jump", sp_none, 1000, { 3, 4, 5 }, 3 },
		/* SECURITY.md A.6: counters all equal: ties broken by index */
		{ "counters all equal", sp_counters_equal, 2, { 0, 3, 4, 5 }, 4 },
		/* SECURITY.md A.6: huge counters, reversed order */
		{ "counters reversed", sp_counters_reversed, 2, { 5, 4, 3, 0 }, 4 },
		/* SECURITY.md A.6: inflight byte neither 0 nor 1 counts as 1 */
		{ "inflight 0xff", sp_inflight_ff, 2, { 7, 0, 3, 4, 5 }, 5 },
	};
	(void)state;
	for (size_t i = 0; i < VU_ARRAY_SIZE(cases); i++) {
		struct fx *f = fx_new();

		print_message("  %s\n", cases[i].what);
		assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, false, 0, NULL), 0);
		for (uint16_t h = 0; h < 6; h++)
			vu_inflight_split_get(&f->iq, h);
		vu_inflight_split_put(&f->iq, 1);
		vu_inflight_split_put(&f->iq, 2);
		crash(f);
		cases[i].poke(rsplit(f));
		assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, false,
							  cases[i].ring_used, NULL), 0);
		expect_resubmit(&f->iq, cases[i].want, cases[i].nwant);
		fx_free(f);
	}
}

static void test_split_data_path_hostile(void **state)
{
	struct fx *f = *state;
	struct vu_inflight_region_split *g = rsplit(f);

	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, false, 0, NULL), 0);
	/* Heads beyond the ring are refused, nothing written past it. */
	vu_inflight_split_get(&f->iq, QS);
	vu_inflight_split_put(&f->iq, 0xffff);
	assert_int_equal(g->desc[QS].inflight, 0);
	/* A head taken twice and put 2*QS times: the batch array holds. */
	vu_inflight_split_get(&f->iq, 0);
	for (int i = 0; i < 2 * QS; i++)
		vu_inflight_split_put(&f->iq, 0);
	vu_inflight_split_commit(&f->iq, 2 * QS);
	assert_int_equal(g->desc[0].inflight, 0);
	assert_int_equal(f->iq.nbatch, 0);
}

/* ---- packed -------------------------------------------------------- */

/* Chain of n descriptors for buffer id `id`: addr id<<16 | i, len 100+i. */
static uint16_t take(struct vu_inflight_queue *iq, uint16_t id, uint16_t n)
{
	struct vring_packed_desc d[QS + 1];

	for (uint16_t i = 0; i < n && i <= QS; i++) {
		d[i].addr = ((uint64_t)id << 16) | i;
		d[i].len = 100u + i;
		d[i].id = id;
		d[i].flags = i + 1 < n ? VRING_DESC_F_NEXT : 0;
	}
	return vu_inflight_packed_get(iq, d, n);
}

/* Resubmitted slot: its saved chain is chain `id` of n descriptors. */
static void expect_chain(struct vu_inflight_queue *iq, uint16_t slot, uint16_t id, uint16_t n)
{
	const struct vu_inflight_desc_packed *e = vu_inflight_packed_slot(iq, slot);
	uint16_t s = slot;

	assert_non_null(e);
	assert_int_equal(e->num, n);
	for (uint16_t i = 0; i < n; i++) {
		const struct vu_inflight_desc_packed *d = vu_inflight_packed_slot(iq, s);

		assert_non_null(d);
		assert_int_equal(d->addr, ((uint64_t)id << 16) | i);
		assert_int_equal(d->len, 100u + i);
		assert_int_equal(d->id, id);
		assert_int_equal(d->flags, i + 1 < n ? VRING_DESC_F_NEXT : 0);
		if (i + 1 == n)
			assert_int_equal(s, e->last);
		s = d->next;
	}
}

static void expect_ring_state(struct vu_inflight_queue *iq, uint16_t used, bool uwrap,
			      uint16_t avail, bool awrap)
{
	uint16_t u, a;
	bool uw, aw;

	vu_inflight_packed_ring_state(iq, &u, &uw, &a, &aw);
	assert_int_equal(u, used);
	assert_int_equal(uw, uwrap);
	assert_int_equal(a, avail);
	assert_int_equal(aw, awrap);
}

/* Every free entry can be taken, and not one more. */
static void expect_free(struct vu_inflight_queue *iq, uint16_t nfree)
{
	assert_int_equal(iq->nfree, nfree);
	for (uint16_t i = 0; i < nfree; i++)
		assert_int_not_equal(take(iq, i, 1), NONE);
	assert_int_equal(take(iq, 0, 1), NONE);
}

static void test_packed_fresh(void **state)
{
	struct fx *f = *state;
	struct vu_inflight_region_packed *g = rpacked(f);

	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, WRAP, NULL), 0);
	assert_int_equal(g->version, 1);
	assert_int_equal(g->desc_num, QS);
	assert_int_equal(g->free_head, 0);
	assert_int_equal(g->old_free_head, 0);
	assert_int_equal(g->used_wrap_counter, 1);
	assert_int_equal(g->old_used_wrap_counter, 1);
	assert_int_equal(g->used_idx, 0);
	for (int i = 0; i < QS; i++)
		assert_int_equal(g->desc[i].next, i + 1);
	expect_ring_state(&f->iq, 0, true, 0, true);
	expect_free(&f->iq, QS);
}

static void test_packed_crash_resubmit(void **state)
{
	struct fx *f = *state;
	struct vu_inflight_region_packed *g = rpacked(f);
	uint16_t a, b, c, want[2];

	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, WRAP, NULL), 0);
	/* Ring slots: A at 0, B at 1..3, C at 4. */
	a = take(&f->iq, 1, 1);
	b = take(&f->iq, 2, 3);
	c = take(&f->iq, 3, 1);
	assert_int_equal(a, 0);
	assert_int_equal(b, 1);
	assert_int_equal(c, 4);
	assert_int_equal(g->desc[b].num, 3);
	assert_int_equal(g->desc[b].last, 3);
	assert_int_equal(g->free_head, 5);
	/* B completes: its used descriptor at 0, the used position 0 -> 3. */
	vu_inflight_packed_put(&f->iq, b, 3, true);
	vu_inflight_packed_commit(&f->iq);
	assert_int_equal(g->desc[b].inflight, 0);
	assert_int_equal(g->old_used_idx, 3);

	crash(f);
	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, 0, NULL), 0);
	want[0] = a;
	want[1] = c;
	assert_int_equal(f->iq.nresubmit, 2);
	expect_chain(&f->iq, a, 1, 1);
	expect_chain(&f->iq, c, 3, 1);
	assert_null(vu_inflight_packed_slot(&f->iq, b));   /* not resubmitted */
	assert_null(vu_inflight_packed_slot(&f->iq, QS));
	assert_null(vu_inflight_packed_slot(&f->iq, NONE));
	expect_ring_state(&f->iq, 3, true, 5, true);
	expect_resubmit(&f->iq, want, 2);

	/* Resubmitted chains complete normally, their entries come back. */
	vu_inflight_packed_put(&f->iq, c, 4, true);
	vu_inflight_packed_put(&f->iq, a, 5, true);
	vu_inflight_packed_commit(&f->iq);
	assert_null(vu_inflight_packed_slot(&f->iq, a));
	expect_free(&f->iq, QS);
}

static void test_packed_resubmit_chain_of_3(void **state)
{
	struct fx *f = *state;
	uint16_t a, b, c;

	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, WRAP, NULL), 0);
	a = take(&f->iq, 1, 1);
	b = take(&f->iq, 2, 3);
	c = take(&f->iq, 3, 1);
	vu_inflight_packed_put(&f->iq, c, 1, true);
	vu_inflight_packed_put(&f->iq, a, 2, true);
	vu_inflight_packed_commit(&f->iq);
	crash(f);
	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, 0, NULL), 0);
	assert_int_equal(f->iq.nresubmit, 1);
	expect_chain(&f->iq, b, 2, 3);
	expect_ring_state(&f->iq, 2, true, 5, true);
	expect_resubmit(&f->iq, &b, 1);
	expect_free(&f->iq, QS - 3);
}

static void test_packed_wrap(void **state)
{
	struct fx *f = *state;
	uint16_t x, y;

	/* Start at slot 6: X takes ring slots 6, 7, 0 (avail wrap flips). */
	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, WRAP | 6, NULL), 0);
	expect_ring_state(&f->iq, 6, true, 6, true);
	x = take(&f->iq, 1, 3);
	y = take(&f->iq, 2, 1);           /* ring slot 1 */
	vu_inflight_packed_put(&f->iq, x, 1, false);   /* 6 + 3 = 9: slot 1, wrap 0 */
	vu_inflight_packed_commit(&f->iq);
	crash(f);
	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, 0, NULL), 0);
	expect_ring_state(&f->iq, 1, false, 2, false);
	expect_resubmit(&f->iq, &y, 1);

	/* Resubmitted chains reaching past the end of the ring. */
	vu_inflight_packed_put(&f->iq, y, 2, false);
	vu_inflight_packed_commit(&f->iq);
	x = take(&f->iq, 3, 4);           /* ring slots 2..5 */
	y = take(&f->iq, 4, 3);           /* ring slots 6, 7, 0 */
	crash(f);
	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, 0, NULL), 0);
	expect_ring_state(&f->iq, 2, false, 1, true);
	expect_chain(&f->iq, x, 3, 4);
	expect_chain(&f->iq, y, 4, 3);
}

/* A chain of exactly the ring size: used_idx comes back to where it was,
 * only the wrap counter tells the batch moved (SECURITY.md C.26). */
static void test_packed_full_ring_chain(void **state)
{
	struct fx *f = *state;
	uint16_t x;

	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, WRAP, NULL), 0);
	x = take(&f->iq, 1, QS);
	assert_int_equal(x, 0);
	assert_int_equal(take(&f->iq, 2, 1), NONE);
	vu_inflight_packed_put(&f->iq, x, 0, false);
	crash(f);   /* before commit: used 0/0, old_used 0/1 */
	/* Without the ring, the batch counts as delivered. */
	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, 0, NULL), 0);
	assert_int_equal(f->iq.nresubmit, 0);
	expect_ring_state(&f->iq, 0, false, 0, false);

	/* Same, but the ring shows slot 0 still available in wrap 1: roll back. */
	vu_inflight_queue_detach(&f->iq);
	memset(f->area.map, 0, f->area.map_len);
	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, WRAP, NULL), 0);
	x = take(&f->iq, 1, QS);
	vu_inflight_packed_put(&f->iq, x, 0, false);
	crash(f);
	f->ring[0].flags = htole16(1u << VRING_PACKED_DESC_F_AVAIL);
	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, 0, f->ring), 0);
	expect_ring_state(&f->iq, 0, true, 0, false);
	expect_chain(&f->iq, x, 1, QS);
	expect_resubmit(&f->iq, &x, 1);
}

/* Crash between put and commit: the spec's flags check decides. */
static void test_packed_rollback(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *what;
		uint16_t flags;       /* ring slot 0 (old_used_idx), wrap 1 */
		bool use_ring;
		uint16_t nres;        /* 2: A and B; 1: B */
	} cases[] = {
		{ "used descriptor written", (1u << VRING_PACKED_DESC_F_AVAIL) | (1u << VRING_PACKED_DESC_F_USED), true, 1 },
		{ "already reused by the driver (wrap 0 avail)", 1u << VRING_PACKED_DESC_F_USED, true, 1 },
		{ "still available", 1u << VRING_PACKED_DESC_F_AVAIL, true, 2 },
		{ "no ring given", 1u << VRING_PACKED_DESC_F_AVAIL, false, 1 },
	};

	for (size_t i = 0; i < VU_ARRAY_SIZE(cases); i++) {
		uint16_t a, b, want[2];

		print_message("  %s\n", cases[i].what);
		vu_inflight_queue_detach(&f->iq);
		memset(f->area.map, 0, f->area.map_len);
		assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, WRAP, NULL), 0);
		a = take(&f->iq, 1, 1);
		b = take(&f->iq, 2, 2);
		vu_inflight_packed_put(&f->iq, a, 1, true);
		crash(f);
		f->ring[0].flags = htole16(cases[i].flags);
		assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, 0,
							  cases[i].use_ring ? f->ring : NULL), 0);
		if (cases[i].nres == 2) {
			want[0] = a;
			want[1] = b;
			expect_ring_state(&f->iq, 0, true, 3, true);
		} else {
			want[0] = b;
			expect_ring_state(&f->iq, 1, true, 3, true);
		}
		expect_resubmit(&f->iq, want, cases[i].nres);
		expect_free(&f->iq, (uint16_t)(QS - (cases[i].nres == 2 ? 3 : 2)));
	}
	(void)state;
}

/* Gets between put and commit never reuse the entries just put. */
static void test_packed_interleave(void **state)
{
	struct fx *f = *state;
	struct vu_inflight_region_packed *g = rpacked(f);
	uint16_t a, b, c, d, want[2];

	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, WRAP, NULL), 0);
	a = take(&f->iq, 1, 2);          /* entries 0, 1 */
	b = take(&f->iq, 2, 1);          /* 2 */
	vu_inflight_packed_put(&f->iq, a, 2, true);
	c = take(&f->iq, 3, 2);          /* 3, 4: not 0, 1 */
	assert_int_equal(c, 3);
	assert_int_equal(g->free_head, a);              /* pending chain first */
	assert_int_equal(g->desc[1].next, 5);           /* ...then the free list */
	assert_int_equal(g->old_free_head, 5);
	vu_inflight_packed_commit(&f->iq);
	assert_int_equal(g->old_free_head, a);
	d = take(&f->iq, 4, 1);          /* now 0 is reused */
	assert_int_equal(d, 0);
	vu_inflight_packed_put(&f->iq, d, 3, true);
	crash(f);                        /* d put, not committed */
	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, 0, NULL), 0);
	want[0] = b;
	want[1] = c;
	expect_resubmit(&f->iq, want, 2);
	expect_ring_state(&f->iq, 3, true, 6, true);
	expect_free(&f->iq, QS - 3);
	/* A second recovery of the rebuilt region finds the same. */
	crash(f);
	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, 0, NULL), 0);
	assert_int_equal(f->iq.nresubmit, QS - 1);   /* + the QS - 3 taken above */
}

static void test_packed_data_path_hostile(void **state)
{
	struct fx *f = *state;
	uint16_t a;

	assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, WRAP, NULL), 0);
	assert_int_equal(take(&f->iq, 1, 0), NONE);        /* empty chain */
	assert_int_equal(take(&f->iq, 1, QS + 1), NONE);   /* more than the ring */
	a = take(&f->iq, 1, 2);
	vu_inflight_packed_put(&f->iq, NONE, 1, true);      /* untracked chain */
	vu_inflight_packed_put(&f->iq, 1, 1, true);         /* member, not a head */
	vu_inflight_packed_put(&f->iq, 5, 1, true);         /* free entry */
	vu_inflight_packed_put(&f->iq, QS, 1, true);        /* out of range */
	assert_int_equal(f->iq.nbatch, 0);
	vu_inflight_packed_put(&f->iq, a, 2, true);
	vu_inflight_packed_put(&f->iq, a, 4, true);         /* twice */
	assert_int_equal(f->iq.nbatch, 1);
	vu_inflight_packed_commit(&f->iq);
	vu_inflight_packed_commit(&f->iq);
	expect_free(&f->iq, QS);
}

/*
 * Packed regions corrupted by the front-end.  Each row starts from:
 * A = chain of 1 at entry 0 (counter 1), B = chain of 3 at 1..3 (2),
 * C = chain of 2 at 4..5 (3), all in flight; 6, 7 free; then pokes.
 */
struct packed_case {
	const char *what;
	void (*poke)(struct vu_inflight_region_packed *g);
	uint16_t want[QS];
	uint16_t nwant;
	uint16_t nfree;
};

static void pp_none(struct vu_inflight_region_packed *g)
{
	(void)g;
}

static void pp_num_big(struct vu_inflight_region_packed *g)
{
	g->desc[1].num = QS + 1;
}

static void pp_num_huge(struct vu_inflight_region_packed *g)
{
	g->desc[1].num = 0xffff;
}

static void pp_num_zero(struct vu_inflight_region_packed *g)
{
	g->desc[1].num = 0;
}

static void pp_last_oob(struct vu_inflight_region_packed *g)
{
	g->desc[1].last = 0x4000;
}

static void pp_last_wrong(struct vu_inflight_region_packed *g)
{
	g->desc[1].last = 2;
}

static void pp_next_oob(struct vu_inflight_region_packed *g)
{
	g->desc[2].next = 0x9000;
}

static void pp_chain_loop(struct vu_inflight_region_packed *g)
{
	g->desc[2].next = 1;
}

static void pp_free_cycle(struct vu_inflight_region_packed *g)
{
	g->desc[7].next = 6;
}

static void pp_free_into_chain(struct vu_inflight_region_packed *g)
{
	g->desc[7].next = 4;       /* free list runs into C */
}

static void pp_overlap(struct vu_inflight_region_packed *g)
{
	g->desc[3].next = 4;       /* B's chain now runs 1, 2, 3 ... */
	g->desc[1].num = 4;        /* ... into C's head */
	g->desc[1].last = 4;
	g->desc[4].id = 2;
}

static void pp_id_oob(struct vu_inflight_region_packed *g)
{
	g->desc[3].id = QS;
}

static void pp_free_head_oob(struct vu_inflight_region_packed *g)
{
	g->free_head = g->old_free_head = 0x7777;
}

static void pp_inflight_free(struct vu_inflight_region_packed *g)
{
	g->desc[6].inflight = 1;   /* a free entry claiming to be in flight */
	g->desc[6].num = 1;
	g->desc[6].last = 6;
}

static void pp_stray_head(struct vu_inflight_region_packed *g)
{
	g->free_head = g->old_free_head = QS;   /* 6, 7 in no list */
	g->desc[7].inflight = 1;   /* ...and 7 a plausible chain of its own */
	g->desc[7].num = 1;
	g->desc[7].last = 7;
	g->desc[7].counter = 0;
}

static void pp_counters_equal(struct vu_inflight_region_packed *g)
{
	for (int i = 0; i < QS; i++)
		g->desc[i].counter = 7;
}

static void test_packed_hostile(void **state)
{
	const struct packed_case cases[] = {
		/* baseline */
		{ "baseline", pp_none, { 0, 1, 4 }, 3, 2 },
		/* SECURITY.md A.6: packed num > desc_num */
		{ "num > desc_num", pp_num_big, { 0, 4 }, 2, 5 },
		/* SECURITY.md A.6: packed num 0xffff */
		{ "num 0xffff", pp_num_huge, { 0, 4 }, 2, 5 },
		/* SECURITY.md A.6: packed num 0 */
		{ "num 0", pp_num_zero, { 0, 4 }, 2, 5 },
		/* SECURITY.md A.6: packed last out of range */
		{ "last out of range", pp_last_oob, { 0, 4 }, 2, 5 },
		/* SECURITY.md A.6: packed last not where the chain ends */
		{ "last mismatch", pp_last_wrong, { 0, 4 }, 2, 5 },
		/* SECURITY.md A.6: packed next link out of range inside a chain */
		{ "next out of range", pp_next_oob, { 0, 4 }, 2, 5 },
		/* SECURITY.md A.6: packed chain looping on itself */
		{ "chain loop", pp_chain_loop, { 0, 4 }, 2, 5 },
		/* SECURITY.md A.6: packed free list cycle */
		{ "free list cycle", pp_free_cycle, { 0, 1, 4 }, 3, 2 },
		/* SECURITY.md A.6: packed free list running into a chain */
		{ "free list into a chain", pp_free_into_chain, { 0, 1 }, 2, 4 },
		/* SECURITY.md A.6: two chains claim one entry: the older wins */
		{ "overlapping chains", pp_overlap, { 0, 1 }, 2, 3 },
		/* SECURITY.md A.6 (B.13 class): buffer id beyond the ring */
		{ "buffer id out of range", pp_id_oob, { 0, 4 }, 2, 5 },
		/* SECURITY.md A.6: free_head beyond desc_num: rebuilt */
		{ "free_head out of range", pp_free_head_oob, { 0, 1, 4 }, 3, 2 },
		/* SECURITY.md A.6: inflight flag on a free-list entry */
		{ "inflight on a free entry", pp_inflight_free, { 0, 1, 4 }, 3, 2 },
		/* SECURITY.md A.6: entries in no list, one a valid chain */
		{ "stray chain", pp_stray_head, { 7, 0, 1, 4 }, 4, 1 },
		/* SECURITY.md A.6: counters all equal: ties broken by index */
		{ "counters all equal", pp_counters_equal, { 0, 1, 4 }, 3, 2 },
	};
	(void)state;
	for (size_t i = 0; i < VU_ARRAY_SIZE(cases); i++) {
		struct fx *f = fx_new();

		print_message("  %s\n", cases[i].what);
		assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, WRAP, NULL), 0);
		assert_int_equal(take(&f->iq, 1, 1), 0);
		assert_int_equal(take(&f->iq, 2, 3), 1);
		assert_int_equal(take(&f->iq, 3, 2), 4);
		crash(f);
		cases[i].poke(rpacked(f));
		assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, 0, NULL), 0);
		assert_int_equal(f->iq.nresubmit, cases[i].nwant);
		for (uint16_t k = 0; k < cases[i].nwant; k++) {
			const struct vu_inflight_desc_packed *e =
				vu_inflight_packed_slot(&f->iq, cases[i].want[k]);

			assert_non_null(e);
			assert_true(e->num >= 1 && e->num <= QS);
		}
		expect_resubmit(&f->iq, cases[i].want, cases[i].nwant);
		/* The region is consistent again: a second recovery agrees. */
		crash(f);
		assert_int_equal(vu_inflight_queue_attach(&f->iq, &f->area, 0, QS, true, 0, NULL), 0);
		expect_resubmit(&f->iq, cases[i].want, cases[i].nwant);
		expect_free(&f->iq, cases[i].nfree);
		fx_free(f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_region_size),
		cmocka_unit_test(test_area_create),
		cmocka_unit_test(test_area_map_roundtrip),
		cmocka_unit_test(test_area_map_hostile),
		cmocka_unit_test(test_attach_hostile),
		cmocka_unit_test_setup_teardown(test_split_fresh, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_split_crash_resubmit, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_split_crash_mid_batch, fx_setup, fx_teardown),
		cmocka_unit_test(test_split_hostile),
		cmocka_unit_test_setup_teardown(test_split_data_path_hostile, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_packed_fresh, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_packed_crash_resubmit, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_packed_resubmit_chain_of_3, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_packed_wrap, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_packed_full_ring_chain, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_packed_rollback, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_packed_interleave, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_packed_data_path_hostile, fx_setup, fx_teardown),
		cmocka_unit_test(test_packed_hostile),
	};

	/* Hostile rows log a warning each; VU_TEST_VERBOSE=1 shows them. */
	if (!getenv("VU_TEST_VERBOSE"))
		vu_log_set_level(VU_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
