// SPDX-License-Identifier: MIT
/*
 * Unit tests of common/dirty.c, the dirty-page log of live migration
 * (SECURITY.md A.7), and of the logging done by vu_vq_push()/notify when
 * VHOST_F_LOG_ALL is negotiated: pages written into the guest's buffers
 * and the used ring (log_used, at log_guest_addr).
 *
 * Linked with -Wl,--wrap=mmap,--wrap=mmap64 to fail the log's mmap.
 * The log is read back through the test's own descriptor of the memfd,
 * as the front-end would.
 */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_guest.h"
#include "vu_dirty.h"
#include "vu_util.h"
#include "vu_vq.h"

/* mmap failure injection: mmap_inject.c (linked with --wrap=mmap,mmap64). */
#include "mmap_inject.h"

#define PAGE VU_LOG_PAGE
#define E64  UINT64_MAX

static int memfd_named(const char *name, uint64_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

static int memfd_of(uint64_t size)
{
	return memfd_named("test-dirty", size);
}

/* Is a memfd called name mapped in this process? */
static bool mapped(const char *name)
{
	char line[512], pat[64];
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "r");

	assert_non_null(f);
	snprintf(pat, sizeof(pat), "/memfd:%s ", name);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, pat) != NULL;
	fclose(f);
	return found;
}

static uint8_t file_byte(int fd, uint64_t off)
{
	uint8_t b;

	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	return b;
}

/* Is the bit of guest page `page` set in the log that starts at file offset `off`? */
static bool dirty(int fd, uint64_t off, uint64_t page)
{
	return file_byte(fd, off + page / 8) & (1u << (page % 8));
}

static void clear_log(int fd, uint64_t off, uint64_t size)
{
	static const uint8_t zero[4096];

	for (uint64_t done = 0, n; done < size; done += n) {
		n = size - done < sizeof(zero) ? size - done : sizeof(zero);
		assert_int_equal(pwrite(fd, zero, (size_t)n, (off_t)(off + done)), (ssize_t)n);
	}
}

/* Bits set in [off, off + size) of the file. */
static unsigned int count_dirty(int fd, uint64_t off, uint64_t size)
{
	uint8_t buf[4096];
	unsigned int bits = 0;

	for (uint64_t done = 0, n; done < size; done += n) {
		n = size - done < sizeof(buf) ? size - done : sizeof(buf);
		assert_int_equal(pread(fd, buf, (size_t)n, (off_t)(off + done)), (ssize_t)n);
		for (uint64_t i = 0; i < n; i++)
			bits += (unsigned int)__builtin_popcount(buf[i]);
	}
	return bits;
}

/* ---- vu_dirty_log_set: hostile descriptors ---- */

struct set_case {
	const char *name;
	uint64_t size, offset;   /* the SET_LOG_BASE payload */
	uint64_t file_size;      /* NO_FD: pass fd -1 */
	uint64_t mem_end;
	int ret;
	bool reaches_mmap;
};
#define NO_FD E64

static const struct set_case set_cases[] = {
	/* A.7: log of size 0 */
	{ "size 0", 0, 0, 0x1000, 0, -EINVAL, false },
	/* A.7: offset + size overflows 64 bits */
	{ "offset + size wraps", 0x100, E64 - 0x10, 0x1000, 0, -EINVAL, false },
	/* A.7: offset + size is exactly 2^64 */
	{ "offset + size = 2^64", 0x1000, E64 - 0xfff, 0x1000, 0, -EINVAL, false },
	/* A.7: size beyond the file */
	{ "size beyond file", 0x2000, 0, 0x1000, 0, -EINVAL, false },
	/* A.7: offset + size beyond the file */
	{ "offset + size beyond file", 0x1000, 0x1800, 0x2000, 0, -EINVAL, false },
	/* A.7: offset beyond the file */
	{ "offset beyond file", 0x10, 1ull << 40, 0x2000, 0, -EINVAL, false },
	/* A.7: log too small for the memory (1024 pages need 128 bytes) */
	{ "too small for mem_end", 127, 0, 0x1000, FG_MEM_END, -EINVAL, false },
	/* A.7: one byte of memory past a full bitmap byte needs one more byte */
	{ "too small for mem_end + 1", 128, 0, 0x1000, FG_MEM_END + 1, -EINVAL, false },
	/* A.7: no usable fd */
	{ "fd -1", 0x10, 0, NO_FD, 0, -EBADF, false },
	/* accepted: exactly the size mem_end needs */
	{ "exact size", 128, 0, 0x1000, FG_MEM_END, 0, true },
	/* accepted: unaligned offset */
	{ "unaligned offset", 129, 0x123, 0x1000, FG_MEM_END + 1, 0, true },
	/* accepted: offset + size = file size */
	{ "up to the end of file", 0x1000, 0x1000, 0x2000, 0, 0, true },
};

static void test_set_rejects(void **state)
{
	(void)state;
	for (size_t i = 0; i < VU_ARRAY_SIZE(set_cases); i++) {
		const struct set_case *c = &set_cases[i];
		struct vu_log_desc d = { .mmap_size = c->size, .mmap_offset = c->offset };
		struct vu_dirty_log log = { 0 }, prev;
		int fds, fd, ret;

		print_message("log set: %s\n", c->name);
		/* A log in place, to see that a refused one leaves it alone. */
		d.mmap_size = 16;
		d.mmap_offset = 0;
		assert_int_equal(vu_dirty_log_set(&log, &d, memfd_of(0x1000), 0), 0);
		prev = log;
		d.mmap_size = c->size;
		d.mmap_offset = c->offset;

		fds = fg_count_fds();
		fd = c->file_size == NO_FD ? -1 : memfd_of(c->file_size);
		mmap_calls = 0;
		ret = vu_dirty_log_set(&log, &d, fd, c->mem_end);
		assert_int_equal(ret, c->ret);
		assert_int_equal(mmap_calls > 0, c->reaches_mmap);
		/* The fd is closed in every case (the mapping keeps the memory). */
		assert_int_equal(fg_count_fds(), fds);
		if (ret) {
			assert_memory_equal(&log, &prev, sizeof(log));
		} else {
			assert_ptr_equal(log.glog, (uint8_t *)log.map + c->offset);
			assert_int_equal(log.size, c->size);
			assert_int_equal(log.map_len, c->offset + c->size);
		}
		vu_dirty_log_release(&log);
		assert_null(log.glog);
	}
}

/* A.7: mmap failure: -errno, fd closed, the previous log kept */
static void test_set_mmap_fails(void **state)
{
	struct vu_log_desc d = { .mmap_size = 128 };
	struct vu_dirty_log log = { 0 }, prev;
	int fds, ret;

	(void)state;
	assert_int_equal(vu_dirty_log_set(&log, &d, memfd_of(0x1000), FG_MEM_END), 0);
	prev = log;
	fds = fg_count_fds();
	mmap_fail = true;
	ret = vu_dirty_log_set(&log, &d, memfd_of(0x1000), FG_MEM_END);
	mmap_fail = false;
	assert_int_equal(ret, -ENOMEM);
	assert_int_equal(fg_count_fds(), fds);
	assert_memory_equal(&log, &prev, sizeof(log));
	vu_dirty_log_release(&log);
	/* Released twice, and a log never set: no-ops. */
	vu_dirty_log_release(&log);
	vu_dirty_log_write(&log, 0, PAGE);
}

/* ---- vu_dirty_log_write ---- */

struct write_case {
	const char *name;
	uint64_t gpa, len;
	uint64_t first, last;    /* pages expected dirty; first > last: none */
};

static const struct write_case write_cases[] = {
	/* A.7: one byte */
	{ "one byte of page 5", 5 * PAGE + 10, 1, 5, 5 },
	/* A.7: a range crossing into the next bitmap byte */
	{ "pages 7-8", 8 * PAGE - 1, 2, 7, 8 },
	/* A.7: a whole page, aligned: one bit */
	{ "page 3 exactly", 3 * PAGE, PAGE, 3, 3 },
	/* A.7: length 0 marks nothing */
	{ "len 0", 2 * PAGE, 0, 1, 0 },
	/* A.7: last page covered by the log, the rest beyond it ignored */
	{ "pages 15-17, log ends at 15", 15 * PAGE, 3 * PAGE, 15, 15 },
	/* A.7: entirely beyond the log */
	{ "beyond the log", 1ull << 40, PAGE, 1, 0 },
	/* A.7: gpa + len wraps 64 bits */
	{ "wraps", E64 - 10, 100, 1, 0 },
};

static void test_write(void **state)
{
	const uint64_t offsets[] = { 0x1000, 0x123 };

	(void)state;
	for (size_t o = 0; o < VU_ARRAY_SIZE(offsets); o++) {
		/* A 2-byte log (16 pages) at offset in a larger file. */
		const uint64_t off = offsets[o], size = 2;
		struct vu_log_desc d = { .mmap_size = size, .mmap_offset = off };
		struct vu_dirty_log log = { 0 };
		int fd = memfd_of(0x3000);

		assert_int_equal(vu_dirty_log_set(&log, &d, dup(fd), 16 * PAGE), 0);
		for (size_t i = 0; i < VU_ARRAY_SIZE(write_cases); i++) {
			const struct write_case *c = &write_cases[i];

			print_message("log write at offset 0x%llx: %s\n", (unsigned long long)off, c->name);
			clear_log(fd, 0, 0x3000);
			vu_dirty_log_write(&log, c->gpa, c->len);
			for (uint64_t p = 0; p < 16; p++)
				assert_int_equal(dirty(fd, off, p), p >= c->first && p <= c->last);
			/* A.7: the offset is applied once: nothing before the log,
			 * nothing after it (not at 2 * offset, not past size). */
			assert_int_equal(count_dirty(fd, 0, 0x3000),
					 c->first <= c->last ? c->last - c->first + 1 : 0);
		}
		vu_dirty_log_release(&log);
		close(fd);
	}
}

/* A.3, A.7: a new log replaces the old one, which is unmapped; writes go to the new one */
static void test_replace(void **state)
{
	struct vu_log_desc d = { .mmap_size = 128 };
	struct vu_dirty_log log = { 0 };
	int a = memfd_named("log-a", 0x1000), b = memfd_named("log-b", 0x1000);

	(void)state;
	assert_int_equal(vu_dirty_log_set(&log, &d, dup(a), FG_MEM_END), 0);
	assert_true(mapped("log-a"));
	vu_dirty_log_write(&log, 0, 1);
	d.mmap_offset = 0x100;
	assert_int_equal(vu_dirty_log_set(&log, &d, dup(b), FG_MEM_END), 0);
	assert_false(mapped("log-a"));
	assert_true(mapped("log-b"));
	vu_dirty_log_write(&log, 9 * PAGE, 1);
	assert_int_equal(count_dirty(a, 0, 0x1000), 1);
	assert_true(dirty(a, 0, 0));
	assert_int_equal(count_dirty(b, 0, 0x1000), 1);
	assert_true(dirty(b, 0x100, 9));
	vu_dirty_log_release(&log);
	assert_false(mapped("log-b"));
	close(a);
	close(b);
}

/* ---- logging by the queues (VHOST_F_LOG_ALL) ---- */

#define LOG_OFF 0x40     /* the log starts at this offset of its file */

struct t {
	struct fake_guest *g;
	int logfd;
	struct vu_chain c;
	struct iovec iov[16];
	uint64_t gpa[16];
};

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));
	struct vu_log_desc d = { .mmap_size = FG_MEM_END / PAGE / 8, .mmap_offset = LOG_OFF };

	assert_non_null(t);
	t->g = fg_create();
	t->logfd = memfd_of(0x1000);
	assert_int_equal(vu_dirty_log_set(&t->g->dev->log, &d, dup(t->logfd), FG_MEM_END), 0);
	t->g->dev->features |= 1ull << VHOST_F_LOG_ALL;
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;

	fg_destroy(t->g);
	close(t->logfd);
	free(t);
	return 0;
}

static bool page_dirty(struct t *t, uint64_t gpa)
{
	return dirty(t->logfd, LOG_OFF, gpa / PAGE);
}

static unsigned int ndirty(struct t *t)
{
	return count_dirty(t->logfd, 0, 0x1000);
}

static void clear(struct t *t)
{
	clear_log(t->logfd, 0, 0x1000);
}

/* A.7: the bytes written into the writable buffers, and the used ring */
static void test_push_split(void **state)
{
	struct t *t = *state;
	struct fg_split r;
	const uint64_t b = FG_BUF_GPA;   /* page 0x80 */

	fg_split_setup(t->g, &r, 0, 8, FG_RING_GPA, 0, 0);
	r.vq->log_used = true;
	r.vq->log_guest_addr = r.used_gpa;
	assert_int_equal(r.used_gpa, PAGE);   /* the used ring has page 1 to itself */

	fg_split_desc(&r, 0, b, 0x100, VRING_DESC_F_NEXT, 1);                        /* readable */
	fg_split_desc(&r, 1, b + 3 * PAGE - 0x10, 0x20, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	fg_split_desc(&r, 2, FG_R2_GPA - 0x10, 0x20, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
	fg_split_desc(&r, 3, b + 6 * PAGE, 2 * PAGE, VRING_DESC_F_WRITE, 0);
	fg_split_publish(&r, 0);
	clear(t);
	vu_chain_init(&t->c, t->iov, t->gpa, 16);
	assert_int_equal(vu_vq_pop(r.vq, &t->c), 1);
	assert_int_equal(t->c.nin, 4);
	assert_int_equal(ndirty(t), 0);         /* taking a chain writes nothing */

	/* Written: both 0x20 buffers and the first 0x10 bytes of the last. */
	vu_vq_push(r.vq, &t->c, 0x50);
	assert_false(page_dirty(t, b));                  /* readable buffer */
	assert_true(page_dirty(t, b + 2 * PAGE));        /* 0x20 across pages 0x82, 0x83 */
	assert_true(page_dirty(t, b + 3 * PAGE));
	assert_true(page_dirty(t, FG_R2_GPA - 1));       /* last page of r1 */
	assert_true(page_dirty(t, FG_R2_GPA));           /* first page of r2 */
	assert_true(page_dirty(t, b + 6 * PAGE));        /* written part */
	assert_false(page_dirty(t, b + 7 * PAGE));       /* not written */
	assert_true(page_dirty(t, r.used_gpa));          /* the used element */
	assert_int_equal(ndirty(t), 6);

	/* Publishing used->idx is logged too. */
	clear(t);
	vu_vq_notify(r.vq);
	assert_true(page_dirty(t, r.used_gpa));
	assert_int_equal(ndirty(t), 1);

	/* A chain returned with nothing written logs only the used ring. */
	fg_split_publish(&r, 0);
	vu_chain_init(&t->c, t->iov, t->gpa, 16);
	assert_int_equal(vu_vq_pop(r.vq, &t->c), 1);
	clear(t);
	vu_vq_push(r.vq, &t->c, 0);
	assert_int_equal(ndirty(t), 1);
	assert_true(page_dirty(t, r.used_gpa));

	/* Without log_used, the used ring is not logged; buffers still are. */
	r.vq->log_used = false;
	fg_split_publish(&r, 0);
	vu_chain_init(&t->c, t->iov, t->gpa, 16);
	assert_int_equal(vu_vq_pop(r.vq, &t->c), 1);
	clear(t);
	vu_vq_push(r.vq, &t->c, 1);
	vu_vq_notify(r.vq);
	assert_int_equal(ndirty(t), 1);
	assert_true(page_dirty(t, b + 2 * PAGE));

	/* Without VHOST_F_LOG_ALL, buffers are not logged. */
	t->g->dev->features &= ~(1ull << VHOST_F_LOG_ALL);
	fg_split_publish(&r, 0);
	vu_chain_init(&t->c, t->iov, t->gpa, 16);
	assert_int_equal(vu_vq_pop(r.vq, &t->c), 1);
	clear(t);
	vu_vq_push(r.vq, &t->c, 0x50);
	assert_int_equal(ndirty(t), 0);
	fg_split_teardown(&r);
}

/* A.7: log_guest_addr, not the ring's own translation, places the used ring in the log */
static void test_log_guest_addr(void **state)
{
	struct t *t = *state;
	struct fg_split r;

	fg_split_setup(t->g, &r, 0, 8, FG_RING_GPA, 0, 0);
	r.vq->log_used = true;
	r.vq->log_guest_addr = FG_R2_GPA;
	fg_split_desc(&r, 0, FG_BUF_GPA, 0x10, 0, 0);
	fg_split_publish(&r, 0);
	vu_chain_init(&t->c, t->iov, t->gpa, 16);
	assert_int_equal(vu_vq_pop(r.vq, &t->c), 1);
	clear(t);
	vu_vq_push(r.vq, &t->c, 0);
	vu_vq_notify(r.vq);
	assert_int_equal(ndirty(t), 1);
	assert_true(page_dirty(t, FG_R2_GPA));
	fg_split_teardown(&r);
}

/* A.7: every write to the used ring is logged, avail_event included */
static void test_avail_event_logged(void **state)
{
	struct t *t = *state;
	struct fg_split r;
	uint64_t avail_event;

	/* 512 entries: the used ring's tail (avail_event) is on its own page. */
	fg_split_setup(t->g, &r, 0, 512, FG_RING_GPA, 0, FG_EVENT_IDX);
	r.vq->log_used = true;
	r.vq->log_guest_addr = r.used_gpa;
	avail_event = r.used_gpa + 4 + 8 * 512;
	assert_int_not_equal(avail_event / PAGE, r.used_gpa / PAGE);

	clear(t);
	assert_false(vu_vq_enable_notify(r.vq));
	assert_true(page_dirty(t, avail_event));
	assert_int_equal(ndirty(t), 1);

	/* Taking a chain while notifications are on moves avail_event. */
	fg_split_desc(&r, 0, FG_BUF_GPA, 0x10, 0, 0);
	fg_split_publish(&r, 0);
	clear(t);
	vu_chain_init(&t->c, t->iov, t->gpa, 16);
	assert_int_equal(vu_vq_pop(r.vq, &t->c), 1);
	assert_int_equal(fg_split_avail_event(&r), 1);
	assert_true(page_dirty(t, avail_event));
	fg_split_teardown(&r);
}

/* A.7: packed ring: used descriptors logged at log_guest_addr + slot offset */
static void test_push_packed(void **state)
{
	struct t *t = *state;
	struct fg_packed *r = calloc(1, sizeof(*r));
	static const struct fg_buf bufs[] = {
		{ FG_BUF_GPA, 0x10, 0 },
		{ FG_BUF_GPA + 4 * PAGE, 0x100, VRING_DESC_F_WRITE },
	};
	uint16_t id;
	uint32_t len;

	assert_non_null(r);
	/* 512 slots: slot 256 is on the ring's second page. */
	fg_packed_setup(t->g, r, 0, 512, FG_RING_GPA, 0);
	r->vq->log_used = true;
	r->vq->log_guest_addr = r->desc_gpa;
	for (unsigned int k = 0; k < 257; k++) {
		fg_packed_add(r, bufs, 2, (uint16_t)(k % 512));
		vu_chain_init(&t->c, t->iov, t->gpa, 16);
		assert_int_equal(vu_vq_pop(r->vq, &t->c), 1);
		clear(t);
		vu_vq_push(r->vq, &t->c, 0x80);
		assert_true(fg_packed_get_used(r, &id, &len));
		assert_int_equal(len, 0x80);
		/* The used descriptor's slot (2 per chain) and the written page. */
		assert_true(page_dirty(t, r->desc_gpa + 2ull * k * 16 % (512 * 16)));
		assert_true(page_dirty(t, FG_BUF_GPA + 4 * PAGE));
		assert_int_equal(ndirty(t), 2);
	}
	fg_packed_teardown(r);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_rejects),
		cmocka_unit_test(test_set_mmap_fails),
		cmocka_unit_test(test_write),
		cmocka_unit_test(test_replace),
		cmocka_unit_test_setup_teardown(test_push_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_guest_addr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_avail_event_logged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_push_packed, setup, teardown),
	};

	vu_log_set_level(VU_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
