// SPDX-License-Identifier: MIT
/*
 * Unit tests of common/mem.c: the memory table (SECURITY.md A.8) and the
 * translation of guest addresses (B.11).
 *
 * Linked with -Wl,--wrap=mmap,--wrap=mmap64 (the library calls mmap64
 * when built with large-file support): the wrappers count calls and fail
 * on demand, to reach the mmap error path of vu_mem_add() and to check
 * that bad descriptors are refused before anything is mapped.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_guest.h"
#include "vu_mem.h"
#include "vu_util.h"

/* mmap failure injection: mmap_inject.c (linked with --wrap=mmap,mmap64). */
#include "mmap_inject.h"

static int memfd_of(uint64_t size)
{
	int fd = memfd_create("test-mem", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

static int add(struct vu_mem *mem, uint64_t gpa, uint64_t size, uint64_t uva, uint64_t off,
	       uint64_t file_size)
{
	struct vu_mem_region_desc d = {
		.guest_addr = gpa, .size = size, .user_addr = uva, .mmap_offset = off,
	};

	return vu_mem_add(mem, &d, memfd_of(file_size));
}

/* ---- vu_mem_add: hostile region descriptors ---- */

/* The table these rows are added to holds one region: */
#define A_GPA  0x100000ull
#define A_SIZE 0x100000ull
#define A_UVA  0x10000000ull
#define E64    UINT64_MAX

struct add_case {
	const char *name;
	struct vu_mem_region_desc d;   /* guest_addr, size, user_addr, mmap_offset */
	uint64_t file_size;            /* of the memfd; NO_FD: pass fd -1 */
	int ret;
	bool reaches_mmap;
};
#define NO_FD E64

static const struct add_case add_cases[] = {
	/* A.8: zero-sized region */
	{ "size 0", { 0x400000, 0, 0x40000000, 0 }, 0x1000, -EINVAL, false },
	/* A.8: gpa + size overflow */
	{ "gpa + size wraps", { E64 - 0xfff, 0x2000, 0x40000000, 0 }, 0x2000, -EINVAL, false },
	/* A.8: uva + size overflow */
	{ "uva + size wraps", { 0x400000, 0x2000, E64 - 0xfff, 0 }, 0x2000, -EINVAL, false },
	/* A.8: offset + size overflow */
	{ "offset + size wraps", { 0x400000, 0x2000, 0x40000000, E64 - 0xfff }, 0x2000, -EINVAL, false },
	/* A.8: offset + size is exactly 2^64 (sums to 0): offset beyond the file */
	{ "offset + size = 2^64", { 0x400000, 0x1000, 0x40000000, E64 - 0xfff }, 0x2000, -EINVAL, false },
	/* A.8: offset at the end of the file */
	{ "offset = file size", { 0x400000, 0x1000, 0x40000000, 0x2000 }, 0x2000, -EINVAL, false },
	/* A.8: offset far beyond the file */
	{ "offset beyond file", { 0x400000, 0x1000, 0x40000000, 1ull << 40 }, 0x2000, -EINVAL, false },
	/* A.8: offset inside the file, offset + size beyond it */
	{ "end beyond file", { 0x400000, 0x2000, 0x40000000, 0x1000 }, 0x2000, -EINVAL, false },
	/* A.8: size larger than the whole file */
	{ "size beyond file", { 0x400000, 0x3000, 0x40000000, 0 }, 0x2000, -EINVAL, false },
	/* A.8: gpa overlap, same start */
	{ "gpa same start", { A_GPA, 0x1000, 0x40000000, 0 }, 0x1000, -EINVAL, false },
	/* A.8: gpa overlap, starts on the last byte */
	{ "gpa starts inside", { A_GPA + A_SIZE - 1, 0x1000, 0x40000000, 0 }, 0x1000, -EINVAL, false },
	/* A.8: gpa overlap, ends on the first byte */
	{ "gpa ends inside", { A_GPA - 0xfff, 0x1000, 0x40000000, 0 }, 0x1000, -EINVAL, false },
	/* A.8: gpa overlap, contains the region */
	{ "gpa contains", { 0, 0x400000, 0x40000000, 0 }, 0x400000, -EINVAL, false },
	/* A.8: gpa overlap, inside the region */
	{ "gpa inside", { A_GPA + 0x1000, 0x1000, 0x40000000, 0 }, 0x1000, -EINVAL, false },
	/* A.8: uva overlap (gpa distinct) */
	{ "uva starts inside", { 0x400000, 0x1000, A_UVA + A_SIZE - 1, 0 }, 0x1000, -EINVAL, false },
	/* A.8: uva overlap, contains the region (gpa distinct) */
	{ "uva contains", { 0x400000, 0x400000, A_UVA - 0x1000, 0 }, 0x400000, -EINVAL, false },
	/* A.8: no usable fd */
	{ "fd -1", { 0x400000, 0x1000, 0x40000000, 0 }, NO_FD, -EBADF, false },
	/* accepted: adjacent below in gpa and uva */
	{ "adjacent below", { A_GPA - 0x1000, 0x1000, A_UVA - 0x1000, 0 }, 0x1000, 0, true },
	/* accepted: adjacent above in gpa and uva, unaligned offset */
	{ "adjacent above", { A_GPA + A_SIZE, 0x1000, A_UVA + A_SIZE, 0x10 }, 0x1010, 0, true },
};

static void test_add_rejects(void **state)
{
	(void)state;
	for (size_t i = 0; i < VU_ARRAY_SIZE(add_cases); i++) {
		const struct add_case *c = &add_cases[i];
		struct vu_mem *mem = vu_mem_create();
		int fds, fd, ret;

		print_message("add: %s\n", c->name);
		assert_non_null(mem);
		assert_int_equal(add(mem, A_GPA, A_SIZE, A_UVA, 0, A_SIZE), 0);
		fds = fg_count_fds();
		fd = c->file_size == NO_FD ? -1 : memfd_of(c->file_size);
		mmap_calls = 0;
		ret = vu_mem_add(mem, &c->d, fd);
		assert_int_equal(ret, c->ret);
		assert_int_equal(mmap_calls > 0, c->reaches_mmap);
		if (ret) {
			/* Refused: the fd was closed, the table is unchanged. */
			assert_int_equal(fg_count_fds(), fds);
			assert_int_equal(mem->nregions, 1);
		} else {
			/* Accepted: the table keeps the fd, sorted by gpa. */
			assert_int_equal(fg_count_fds(), fds + 1);
			assert_int_equal(mem->nregions, 2);
			assert_true(mem->regions[0].gpa < mem->regions[1].gpa);
			assert_non_null(vu_mem_gpa_to_host(mem, c->d.guest_addr + c->d.size - 1, 1));
		}
		vu_mem_destroy(mem);
		assert_int_equal(fg_count_fds(), fds - 1);
	}
}

/* A.8: more regions than VU_MEM_MAX_SLOTS */
static void test_add_table_full(void **state)
{
	struct rlimit rl;
	struct vu_mem *mem;
	int fds, model;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < VU_MEM_MAX_SLOTS + 64) {
		rl.rlim_cur = rl.rlim_max;
		if (rl.rlim_cur < VU_MEM_MAX_SLOTS + 64 || setrlimit(RLIMIT_NOFILE, &rl)) {
			print_message("skipped: RLIMIT_NOFILE too low for %u regions\n",
				      VU_MEM_MAX_SLOTS);
			skip();
		}
	}
	mem = vu_mem_create();
	assert_non_null(mem);
	fds = fg_count_fds();
	model = memfd_of(0x1000);
	/* Fill in decreasing gpa order so every insertion moves the table. */
	for (unsigned int i = 0; i < VU_MEM_MAX_SLOTS; i++) {
		uint64_t base = (uint64_t)(VU_MEM_MAX_SLOTS - i) * 0x2000;
		struct vu_mem_region_desc d = {
			.guest_addr = base, .size = 0x1000, .user_addr = 0x10000000 + base,
		};

		assert_int_equal(vu_mem_add(mem, &d, dup(model)), 0);
	}
	assert_int_equal(mem->nregions, VU_MEM_MAX_SLOTS);
	for (unsigned int i = 1; i < mem->nregions; i++)
		assert_true(mem->regions[i - 1].gpa < mem->regions[i].gpa);
	assert_int_equal(fg_count_fds(), fds + 1 + VU_MEM_MAX_SLOTS);

	/* A.8: table full, the fd of the refused region is closed */
	{
		struct vu_mem_region_desc d = {
			.guest_addr = 1ull << 40, .size = 0x1000, .user_addr = 1ull << 41,
		};

		mmap_calls = 0;
		assert_int_equal(vu_mem_add(mem, &d, dup(model)), -ENOSPC);
		assert_int_equal(mmap_calls, 0);
		assert_int_equal(fg_count_fds(), fds + 1 + VU_MEM_MAX_SLOTS);
	}
	close(model);
	vu_mem_destroy(mem);
	assert_int_equal(fg_count_fds(), fds);
}

/* A.8: mmap failure: -errno, fd closed, table unchanged */
static void test_add_mmap_fails(void **state)
{
	struct vu_mem *mem = vu_mem_create();
	int fds, ret;

	(void)state;
	assert_non_null(mem);
	fds = fg_count_fds();
	mmap_calls = 0;
	mmap_fail = true;
	ret = add(mem, 0x1000, 0x1000, 0x2000, 0, 0x1000);
	mmap_fail = false;
	assert_int_equal(ret, -ENOMEM);
	assert_int_equal(mmap_calls, 1);
	assert_int_equal(fg_count_fds(), fds);
	assert_int_equal(mem->nregions, 0);
	assert_null(vu_mem_gpa_to_host(mem, 0x1000, 1));

	/* The same region maps once mmap works again. */
	assert_int_equal(add(mem, 0x1000, 0x1000, 0x2000, 0, 0x1000), 0);
	assert_int_equal(fg_count_fds(), fds + 1);
	vu_mem_destroy(mem);
	assert_int_equal(fg_count_fds(), fds);
}

/* ---- removal ---- */

static void test_remove(void **state)
{
	struct fake_guest *g = *state;
	struct vu_mem *mem = g->dev->mem;
	struct vu_mem_region_desc r1 = {
		.guest_addr = FG_R1_GPA, .size = FG_R1_SIZE, .user_addr = FG_R1_UVA,
	};
	static const struct vu_mem_region_desc absent[] = {
		/* A.8: remove a region that does not exist: nothing there */
		{ .guest_addr = FG_HOLE_GPA, .size = FG_HOLE_SIZE, .user_addr = 0x1000 },
		/* A.8: right gpa and uva, wrong size */
		{ .guest_addr = FG_R1_GPA, .size = FG_R1_SIZE / 2, .user_addr = FG_R1_UVA },
		/* A.8: right gpa and size, wrong uva */
		{ .guest_addr = FG_R1_GPA, .size = FG_R1_SIZE, .user_addr = FG_R2_UVA },
		/* A.8: right size and uva, wrong gpa */
		{ .guest_addr = FG_R1_GPA + 0x1000, .size = FG_R1_SIZE, .user_addr = FG_R1_UVA },
	};
	int fds = fg_count_fds();

	for (size_t i = 0; i < VU_ARRAY_SIZE(absent); i++) {
		assert_int_equal(vu_mem_remove(mem, &absent[i]), -ENOENT);
		assert_int_equal(mem->nregions, 3);
	}
	assert_int_equal(fg_count_fds(), fds);

	assert_int_equal(vu_mem_remove(mem, &r1), 0);
	assert_int_equal(mem->nregions, 2);
	assert_int_equal(fg_count_fds(), fds - 1);
	assert_null(vu_mem_gpa_to_host(mem, FG_R1_GPA, 1));
	assert_null(vu_mem_uva_to_host(mem, FG_R1_UVA, 1));
	assert_non_null(vu_mem_gpa_to_host(mem, FG_R2_GPA, FG_R2_SIZE));
	assert_non_null(vu_mem_gpa_to_host(mem, FG_R0_GPA, FG_R0_SIZE));
	/* Removed twice: the second time there is nothing. */
	assert_int_equal(vu_mem_remove(mem, &r1), -ENOENT);
}

/*
 * ADD_MEM_REG of a region equal to an existing one (QEMU before 8.0 sends
 * the table once per queue pair): one more reference, no new mapping;
 * each REM_MEM_REG drops one, the last removes the region.
 */
static void test_add_ref(void **state)
{
	struct fake_guest *g = *state;
	struct vu_mem *mem = g->dev->mem;
	const struct vu_mem_region *r = vu_mem_find_gpa(mem, FG_R1_GPA);
	struct vu_mem_region_desc d, moved;
	uint8_t *host;
	int fds = fg_count_fds();

	assert_non_null(r);
	d = (struct vu_mem_region_desc){ .guest_addr = r->gpa, .size = r->size,
					 .user_addr = r->uva, .mmap_offset = r->mmap_offset };
	host = r->host;
	assert_int_equal(vu_mem_add_ref(mem, &d, memfd_of(r->mmap_offset + r->size)), 0);
	assert_int_equal(vu_mem_add_ref(mem, &d, memfd_of(r->mmap_offset + r->size)), 0);
	assert_int_equal(mem->nregions, 3);
	assert_int_equal(fg_count_fds(), fds);
	assert_ptr_equal(vu_mem_gpa_to_host(mem, FG_R1_GPA, 1), host);
	/* Not equal (another offset): an overlap, refused as ever (A.8). */
	moved = d;
	moved.mmap_offset += 0x1000;
	assert_int_equal(vu_mem_add_ref(mem, &moved, memfd_of(r->mmap_offset + r->size + 0x1000)),
			 -EINVAL);
	assert_int_equal(fg_count_fds(), fds);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(vu_mem_remove(mem, &d), 0);
		assert_int_equal(mem->nregions, 3);
		assert_ptr_equal(vu_mem_gpa_to_host(mem, FG_R1_GPA, 1), host);
	}
	assert_int_equal(vu_mem_remove(mem, &d), 0);
	assert_int_equal(mem->nregions, 2);
	assert_int_equal(fg_count_fds(), fds - 1);
	assert_null(vu_mem_gpa_to_host(mem, FG_R1_GPA, 1));
	assert_int_equal(vu_mem_remove(mem, &d), -ENOENT);
}

/* ---- translation ---- */

enum xlat { GPA, UVA };

struct xlat_case {
	const char *name;
	enum xlat kind;
	uint64_t addr, len;
	bool ok;
	uint64_t gpa;    /* expected gpa of the result */
};

static const struct xlat_case xlat_cases[] = {
	/* B.11: first byte of a region */
	{ "gpa r0 first byte", GPA, FG_R0_GPA, 1, true, FG_R0_GPA },
	/* B.11: last byte of a region */
	{ "gpa r0 last byte", GPA, FG_R0_GPA + FG_R0_SIZE - 1, 1, true, FG_R0_GPA + FG_R0_SIZE - 1 },
	/* B.11: len 0 is one byte */
	{ "gpa r0 last byte, len 0", GPA, FG_R0_GPA + FG_R0_SIZE - 1, 0, true, FG_R0_GPA + FG_R0_SIZE - 1 },
	/* B.11: one past the end of a region (hole) */
	{ "gpa r0 one past", GPA, FG_R0_GPA + FG_R0_SIZE, 1, false, 0 },
	/* B.11: len 0 one past the end */
	{ "gpa r0 one past, len 0", GPA, FG_R0_GPA + FG_R0_SIZE, 0, false, 0 },
	/* B.11: range crossing a region end into the hole */
	{ "gpa r0 end into hole", GPA, FG_R0_GPA + FG_R0_SIZE - 1, 2, false, 0 },
	/* B.11: the whole region */
	{ "gpa r1 whole", GPA, FG_R1_GPA, FG_R1_SIZE, true, FG_R1_GPA },
	/* B.11: the whole region and one byte */
	{ "gpa r1 whole + 1", GPA, FG_R1_GPA, FG_R1_SIZE + 1, false, 0 },
	/* B.11: range crossing into an adjacent region (not one region) */
	{ "gpa r1 into r2", GPA, FG_R2_GPA - 1, 2, false, 0 },
	/* B.11: last byte before an adjacent region */
	{ "gpa r1 last byte", GPA, FG_R2_GPA - 1, 1, true, FG_R2_GPA - 1 },
	/* B.11: first byte of the adjacent region */
	{ "gpa r2 first byte", GPA, FG_R2_GPA, 1, true, FG_R2_GPA },
	/* B.11: inside the hole */
	{ "gpa hole", GPA, FG_HOLE_GPA + 0x800, 1, false, 0 },
	/* B.11: last byte of the hole */
	{ "gpa hole last byte", GPA, FG_R1_GPA - 1, 1, false, 0 },
	/* B.11: beyond all memory */
	{ "gpa past memory", GPA, FG_MEM_END, 1, false, 0 },
	/* B.11: addr + len overflows 64 bits */
	{ "gpa len 2^64-1", GPA, FG_R1_GPA + 0x10, E64, false, 0 },
	/* B.11: addr 2^64-1 */
	{ "gpa 2^64-1", GPA, E64, 1, false, 0 },
	/* B.11: UVA, first byte */
	{ "uva r1 first byte", UVA, FG_R1_UVA, 1, true, FG_R1_GPA },
	/* B.11: UVA, last byte */
	{ "uva r0 last byte", UVA, FG_R0_UVA + FG_R0_SIZE - 1, 1, true, FG_R0_GPA + FG_R0_SIZE - 1 },
	/* B.11: UVA, one past the end */
	{ "uva r0 one past", UVA, FG_R0_UVA + FG_R0_SIZE, 1, false, 0 },
	/* B.11: UVA, range crossing the end */
	{ "uva r2 end cross", UVA, FG_R2_UVA + FG_R2_SIZE - 4, 8, false, 0 },
	/* B.11: UVA, whole region */
	{ "uva r2 whole", UVA, FG_R2_UVA, FG_R2_SIZE, true, FG_R2_GPA },
	/* B.11: UVA, one byte before a region */
	{ "uva before r1", UVA, FG_R1_UVA - 1, 1, false, 0 },
	/* B.11: UVA, addr + len overflows */
	{ "uva len 2^64-1", UVA, FG_R1_UVA + 0x10, E64, false, 0 },
	/* B.11: a gpa used as a uva */
	{ "uva = a gpa", UVA, FG_R1_GPA, 1, false, 0 },
};

static void test_translate(void **state)
{
	struct fake_guest *g = *state;
	const struct vu_mem *mem = g->dev->mem;

	for (size_t i = 0; i < VU_ARRAY_SIZE(xlat_cases); i++) {
		const struct xlat_case *c = &xlat_cases[i];
		uint64_t gpa = 0;
		uint8_t *host;

		print_message("translate: %s\n", c->name);
		if (c->kind == GPA) {
			host = vu_mem_gpa_to_host(mem, c->addr, c->len);
		} else {
			int ret = vu_mem_uva_to_gpa(mem, c->addr, c->len, &gpa);

			host = vu_mem_uva_to_host(mem, c->addr, c->len);
			assert_int_equal(ret, c->ok ? 0 : -EFAULT);
			if (c->ok)
				assert_int_equal(gpa, c->gpa);
		}
		if (!c->ok) {
			assert_null(host);
			continue;
		}
		assert_non_null(host);
		assert_true(fg_host_to_gpa(g, host, &gpa));
		assert_int_equal(gpa, c->gpa);
		/* The library's pointer and the guest's view are one byte. */
		*(volatile uint8_t *)fg_ptr(g, c->gpa, 1) = (uint8_t)(0xa5 + i);
		assert_int_equal(*(volatile uint8_t *)host, (uint8_t)(0xa5 + i));
	}
	assert_ptr_equal(vu_mem_find_gpa(mem, FG_R1_GPA + 5), &mem->regions[1]);
	assert_null(vu_mem_find_gpa(mem, FG_HOLE_GPA));
}

/* ---- vu_mem_map_iov ---- */

struct iov_case {
	const char *name;
	uint64_t gpa, len;
	unsigned int n0, max;     /* entries already used, capacity */
	int ret;
	unsigned int n;           /* entries used after the call */
	uint64_t seg_gpa[2], seg_len[2];   /* expected new segments */
};

static const struct iov_case iov_cases[] = {
	/* B.11: inside one region: one segment */
	{ "one region", FG_R1_GPA + 0x10, 0x100, 0, 4, 0, 1, { FG_R1_GPA + 0x10 }, { 0x100 } },
	/* B.11: buffer spanning two adjacent regions: split in two */
	{ "spans r1 and r2", FG_R2_GPA - 0x100, 0x300, 0, 4, 0, 2,
	  { FG_R2_GPA - 0x100, FG_R2_GPA }, { 0x100, 0x200 } },
	/* B.11: the split is appended after entries already in use */
	{ "spans, appended", FG_R2_GPA - 1, 2, 2, 4, 0, 4, { FG_R2_GPA - 1, FG_R2_GPA }, { 1, 1 } },
	/* B.11: all of r1 and r2 */
	{ "r1 + r2 whole", FG_R1_GPA, FG_R1_SIZE + FG_R2_SIZE, 0, 2, 0, 2,
	  { FG_R1_GPA, FG_R2_GPA }, { FG_R1_SIZE, FG_R2_SIZE } },
	/* B.11: len 0 adds nothing */
	{ "len 0", FG_R1_GPA, 0, 0, 4, 0, 0, { 0 }, { 0 } },
	/* B.11: the iov array is full when the second segment is due */
	{ "spans, max 1", FG_R2_GPA - 0x100, 0x300, 0, 1, -ENOBUFS, 1, { FG_R2_GPA - 0x100 }, { 0x100 } },
	/* B.11: the iov array is full on entry */
	{ "full on entry", FG_R1_GPA, 0x10, 3, 3, -ENOBUFS, 3, { 0 }, { 0 } },
	/* B.11: buffer in the hole */
	{ "in the hole", FG_HOLE_GPA + 0x10, 0x10, 0, 4, -EFAULT, 0, { 0 }, { 0 } },
	/* B.11: buffer running from a region into the hole */
	{ "r0 into hole", FG_R0_GPA + FG_R0_SIZE - 0x10, 0x20, 0, 4, -EFAULT, 1,
	  { FG_R0_GPA + FG_R0_SIZE - 0x10 }, { 0x10 } },
	/* B.11: buffer running past the end of memory */
	{ "r2 past end", FG_MEM_END - 0x10, 0x20, 0, 4, -EFAULT, 1, { FG_MEM_END - 0x10 }, { 0x10 } },
	/* B.11: gpa + len wraps 64 bits */
	{ "wraps", FG_R2_GPA, E64, 0, 4, -EFAULT, 1, { FG_R2_GPA }, { FG_R2_SIZE } },
};

static void test_map_iov(void **state)
{
	struct fake_guest *g = *state;

	for (size_t i = 0; i < VU_ARRAY_SIZE(iov_cases); i++) {
		const struct iov_case *c = &iov_cases[i];
		struct iovec iov[4] = { { 0 } };
		uint64_t gpas[4] = { 0 };
		unsigned int n = c->n0;
		int ret;

		print_message("map_iov: %s\n", c->name);
		ret = vu_mem_map_iov(g->dev->mem, c->gpa, c->len, iov, gpas, &n, c->max);
		assert_int_equal(ret, c->ret);
		assert_int_equal(n, c->n);
		for (unsigned int k = 0; k < c->n0; k++)
			assert_null(iov[k].iov_base);    /* entries in use untouched */
		for (unsigned int k = c->n0; k < n; k++) {
			uint64_t gpa;

			assert_int_equal(gpas[k], c->seg_gpa[k - c->n0]);
			assert_int_equal(iov[k].iov_len, c->seg_len[k - c->n0]);
			assert_true(fg_host_to_gpa(g, iov[k].iov_base, &gpa));
			assert_int_equal(gpa, c->seg_gpa[k - c->n0]);
		}
	}
	/* gpas may be NULL */
	{
		struct iovec iov[2];
		unsigned int n = 0;

		assert_int_equal(vu_mem_map_iov(g->dev->mem, FG_R2_GPA - 1, 2, iov, NULL, &n, 2), 0);
		assert_int_equal(n, 2);
	}
}

static int setup_guest(void **state)
{
	*state = fg_create();
	return 0;
}

static int teardown_guest(void **state)
{
	fg_destroy(*state);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_rejects),
		cmocka_unit_test(test_add_table_full),
		cmocka_unit_test(test_add_mmap_fails),
		cmocka_unit_test_setup_teardown(test_remove, setup_guest, teardown_guest),
		cmocka_unit_test_setup_teardown(test_add_ref, setup_guest, teardown_guest),
		cmocka_unit_test_setup_teardown(test_translate, setup_guest, teardown_guest),
		cmocka_unit_test_setup_teardown(test_map_iov, setup_guest, teardown_guest),
	};

	/* Refusals are logged; keep the output to errors. */
	vu_log_set_level(VU_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
