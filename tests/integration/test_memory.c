// SPDX-License-Identifier: MIT
/*
 * Integration: guest memory changes under running queues, and the dirty
 * log.
 *
 * Memory slots (CONFIGURE_MEM_SLOTS): the table is built with
 * ADD_MEM_REG as QEMU does, then regions come and go while two queues
 * carry traffic: buffers in a hot-added region work, removing a region
 * that holds no ring leaves traffic running, removing the region that
 * holds one queue's ring stops that queue only, without a crash
 * (SECURITY.md A.8: no stale host pointer survives a removal), and the
 * queue runs again once its ring is back in memory.
 *
 * Without memory slots, the whole table replaced under traffic.
 *
 * Dirty log (VHOST_F_LOG_ALL, SET_LOG_BASE): QEMU's migration sequence
 * on a running queue; the pages the device wrote (writable buffers, as
 * far as it wrote them, and the used ring) are marked, the pages it only
 * read are not, and logging stops when the front-end turns it off.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "it.h"

/* ==================================================================== */
/* Memory hot add / remove                                              */
/* ==================================================================== */

#define QSIZE 128
#define GPA_RQ0 0x00100000ull   /* queue 0's rings */
#define GPA_RQ1 0x00200000ull   /* queue 1's rings */
#define RQ_BYTES (1u << 20)
#define GPA_A   0x01000000ull   /* buffers at first */
#define GPA_B   0x02000000ull   /* buffers after the hot add */
#define DATA_BYTES (2 * IT_QUEUE_AREA(QSIZE))

/* Traffic on one queue in a thread of its own, until told to stop. */
struct bg {
	struct it_echo *e;
	pthread_t t;
	bool running;
	int stop;
	uint64_t want_area;     /* main: move the buffers here */
	uint64_t area;          /* thread: the area in use once nothing is in flight elsewhere */
	int ret;
};

static void *bg_main(void *arg)
{
	struct bg *b = arg;

	while (!__atomic_load_n(&b->stop, __ATOMIC_ACQUIRE)) {
		uint64_t want = __atomic_load_n(&b->want_area, __ATOMIC_ACQUIRE);
		int ret;

		if (want != b->area) {
			/* Nothing may be in flight in the old area when it goes. */
			b->ret = it_echo_drain(b->e, IT_TIMEOUT_MS);
			if (!b->ret)
				b->ret = it_echo_set_area(b->e, want);
			if (b->ret)
				return NULL;
			__atomic_store_n(&b->area, want, __ATOMIC_RELEASE);
		}
		ret = it_echo_post(b->e, 16, 0);
		if (ret >= 0)
			ret = it_echo_kick(b->e);
		if (ret >= 0)
			ret = it_echo_reap(b->e);
		if (ret < 0) {
			b->ret = ret;
			return NULL;
		}
		if (ret == 0) {
			/* A stopped queue just waits here. */
			ret = vuf_vq_wait(it_echo_vq(b->e), 20);
			if (ret && ret != -ETIMEDOUT) {
				b->ret = ret;
				return NULL;
			}
		}
	}
	return NULL;
}

/* Stop and join the threads (also from the teardown, after a failed assertion). */
static void bg_stop_all(void *arg)
{
	struct bg *bg = arg;

	for (unsigned int q = 0; q < 2; q++) {
		if (!bg[q].running)
			continue;
		__atomic_store_n(&bg[q].stop, 1, __ATOMIC_RELEASE);
		pthread_join(bg[q].t, NULL);
		bg[q].running = false;
	}
}

/* Wait until queue b completed n more chains; false on timeout or error. */
static bool bg_progress(struct bg *b, uint64_t n, int timeout_ms)
{
	uint64_t target = it_echo_completed(b->e) + n;

	for (int t = 0; t < timeout_ms; t++) {
		if (it_echo_completed(b->e) >= target)
			return true;
		if (__atomic_load_n(&b->ret, __ATOMIC_RELAXED))
			return false;
		it_sleep_ms(1);
	}
	return false;
}

static void bg_move(struct bg *b, uint64_t area)
{
	__atomic_store_n(&b->want_area, area, __ATOMIC_RELEASE);
	for (int t = 0; t < IT_TIMEOUT_MS; t++) {
		if (__atomic_load_n(&b->area, __ATOMIC_ACQUIRE) == area)
			return;
		if (__atomic_load_n(&b->ret, __ATOMIC_RELAXED))
			break;
		it_sleep_ms(1);
	}
	fail_msg("queue could not move its buffers: %s", it_echo_error(b->e));
}

/* Use up the rest of the last region, so the next queue's rings land in the next one. */
static void fill_regions(struct vuf *vuf)
{
	uint64_t gpa;

	while (vuf_alloc(vuf, 4096, 4096, &gpa))
		;
	while (vuf_alloc(vuf, 8, 8, &gpa))
		;
}

#define BG_CHECK(b, cond, what)                                                        \
	do {                                                                           \
		if (!(cond))                                                           \
			fail_msg("queue %u: %s: %s", (unsigned int)((b) - bg), what,   \
				 it_echo_error((b)->e));                               \
	} while (0)

static void test_mem_slots_hot_add_remove_under_traffic(void **state)
{
	struct it_fixture *f = *state;
	struct it_fe_opts o = { .features = 1ull << VIRTIO_RING_F_EVENT_IDX, .nqueues = 2,
				.qsize = QSIZE };
	static struct bg bg[2];
	struct it_fe *fe;
	uint16_t used;

	memset(bg, 0, sizeof(bg));

	it_start(f, 0, (const char *const[]){ "--num-queues", "2", NULL });
	assert_int_equal(it_fe_connect(f->sock, &o, &fe), 0);
	it_fe_register(f, fe);
	assert_true(vuf_has_protocol_feature(fe->vuf, VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS));
	/* Queue 0's rings alone in RQ0, queue 1's alone in RQ1. */
	assert_int_equal(vuf_mem_add(fe->vuf, GPA_RQ0, RQ_BYTES, 0), 0);
	assert_int_equal(it_fe_add_queue(fe, 0, 0), 0);
	fill_regions(fe->vuf);
	assert_int_equal(vuf_mem_add(fe->vuf, GPA_RQ1, RQ_BYTES, 0), 0);
	assert_int_equal(it_fe_add_queue(fe, 1, 0), 0);
	fill_regions(fe->vuf);
	assert_int_equal(vuf_mem_add(fe->vuf, GPA_A, DATA_BYTES, 0), 0);
	assert_int_equal(vuf_mem_add(fe->vuf, GPA_B, DATA_BYTES, VUF_MEM_OFFSET), 0);
	for (unsigned int q = 0; q < 2; q++) {
		fe->echo[q] = it_echo_create(fe->vuf, fe->vq[q], GPA_A + q * IT_QUEUE_AREA(QSIZE),
					     0, 77 + q);
		assert_non_null(fe->echo[q]);
		bg[q].e = fe->echo[q];
		bg[q].area = bg[q].want_area = GPA_A + q * IT_QUEUE_AREA(QSIZE);
	}
	/* The table as QEMU builds it with memory slots: one ADD_MEM_REG each. */
	assert_int_equal(vuf_mem_hot_add(fe->vuf, GPA_RQ0, RQ_BYTES, 0), 0);
	assert_int_equal(vuf_mem_hot_add(fe->vuf, GPA_RQ1, RQ_BYTES, 0), 0);
	assert_int_equal(vuf_mem_hot_add(fe->vuf, GPA_A, DATA_BYTES, 0), 0);
	for (unsigned int q = 0; q < 2; q++)
		assert_int_equal(vuf_vq_start(fe->vq[q]), 0);
	f->cleanup = bg_stop_all;
	f->cleanup_arg = bg;
	for (unsigned int q = 0; q < 2; q++) {
		assert_int_equal(pthread_create(&bg[q].t, NULL, bg_main, &bg[q]), 0);
		bg[q].running = true;
	}

	for (unsigned int q = 0; q < 2; q++)
		BG_CHECK(&bg[q], bg_progress(&bg[q], 300, IT_TIMEOUT_MS), "traffic in region A");

	/* Hot add B while both queues run; buffers move there. */
	assert_int_equal(vuf_mem_hot_add(fe->vuf, GPA_B, DATA_BYTES, VUF_MEM_OFFSET), 0);
	for (unsigned int q = 0; q < 2; q++)
		bg_move(&bg[q], GPA_B + q * IT_QUEUE_AREA(QSIZE));
	for (unsigned int q = 0; q < 2; q++)
		BG_CHECK(&bg[q], bg_progress(&bg[q], 300, IT_TIMEOUT_MS),
			 "traffic in the hot-added region B");

	/* Remove A (no ring, no buffer in flight): traffic goes on. */
	assert_int_equal(vuf_mem_hot_remove(fe->vuf, GPA_A), 0);
	for (unsigned int q = 0; q < 2; q++)
		BG_CHECK(&bg[q], bg_progress(&bg[q], 300, IT_TIMEOUT_MS),
			 "traffic after region A was removed");

	/* Remove RQ1, queue 1's rings (A.8): queue 1 stops, queue 0 does not. */
	assert_int_equal(vuf_mem_hot_remove(fe->vuf, GPA_RQ1), 0);
	/* Acked: the device no longer touches that ring. */
	used = __atomic_load_n(&vuf_vq_used_split(fe->vq[1])->idx, __ATOMIC_ACQUIRE);
	BG_CHECK(&bg[0], bg_progress(&bg[0], 500, IT_TIMEOUT_MS),
		 "queue 0 after queue 1's ring region was removed");
	it_sleep_ms(100);
	assert_true(it_daemon_alive(&f->d[0]));
	assert_int_equal(__atomic_load_n(&vuf_vq_used_split(fe->vq[1])->idx, __ATOMIC_ACQUIRE), used);
	assert_true(__atomic_load_n(&vuf_vq_avail_split(fe->vq[1])->idx, __ATOMIC_ACQUIRE) != used);
	assert_true(it_log_count(&f->d[0], "queue 1: ring no longer in guest memory") >= 1);
	assert_int_equal(__atomic_load_n(&bg[1].ret, __ATOMIC_RELAXED), 0);

	/* Its ring back in memory, queue 1 takes what was posted meanwhile. */
	assert_int_equal(vuf_mem_hot_add(fe->vuf, GPA_RQ1, RQ_BYTES, 0), 0);
	for (unsigned int q = 0; q < 2; q++)
		BG_CHECK(&bg[q], bg_progress(&bg[q], 300, IT_TIMEOUT_MS),
			 "traffic after queue 1's ring region came back");

	bg_stop_all(bg);
	for (unsigned int q = 0; q < 2; q++) {
		if (bg[q].ret)
			fail_msg("queue %u: %s", q, it_echo_error(bg[q].e));
		it_assert_echo(bg[q].e, it_echo_drain(bg[q].e, IT_TIMEOUT_MS));
		it_assert_echo(bg[q].e, it_echo_check_all_done(bg[q].e));
		assert_int_equal(vuf_vq_stats(fe->vq[q])->bad_len, 0);
		print_message("queue %u: %llu chains\n", q,
			      (unsigned long long)it_echo_completed(bg[q].e));
	}
	it_pass(f);
}

/*
 * Without memory slots, QEMU sends the whole table again when guest
 * memory changes.  Under traffic on two queues, the table is replaced
 * by one with a region more, five times: each time the daemon maps the
 * new table, translates the rings again and unmaps the old one only
 * when no poller uses it (A.3, A.8); traffic and buffers stay intact.
 */
static void test_mem_table_replaced_under_traffic(void **state)
{
	struct it_fixture *f = *state;
	struct it_fe_opts o = { .features = 1ull << VIRTIO_RING_F_EVENT_IDX, .nqueues = 2,
				.protocol = IT_PROTOCOL_ALL & ~(1ull << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS) };
	static struct bg bg[2];
	struct it_fe *fe;
	int maps;

	memset(bg, 0, sizeof(bg));
	it_start(f, 0, (const char *const[]){ "--num-queues", "2", NULL });
	fe = it_fe(f, &o);
	for (unsigned int q = 0; q < 2; q++) {
		bg[q].e = fe->echo[q];
		bg[q].area = bg[q].want_area = IT_GPA_DATA + q * IT_QUEUE_AREA(fe->qsize);
	}
	f->cleanup = bg_stop_all;
	f->cleanup_arg = bg;
	for (unsigned int q = 0; q < 2; q++) {
		assert_int_equal(pthread_create(&bg[q].t, NULL, bg_main, &bg[q]), 0);
		bg[q].running = true;
	}
	maps = it_proc_maps(f->d[0].pid);
	for (unsigned int i = 0; i < 5; i++) {
		for (unsigned int q = 0; q < 2; q++)
			BG_CHECK(&bg[q], bg_progress(&bg[q], 200, IT_TIMEOUT_MS), "traffic");
		assert_int_equal(vuf_mem_add(fe->vuf, 0x40000000ull + i * 0x100000ull, 1 << 20, 0), 0);
		assert_int_equal(vuf_mem_commit(fe->vuf), 0);
	}
	for (unsigned int q = 0; q < 2; q++)
		BG_CHECK(&bg[q], bg_progress(&bg[q], 200, IT_TIMEOUT_MS), "traffic after the last table");
	bg_stop_all(bg);
	/* The old tables' mappings are gone: one more per region added. */
	assert_int_equal(it_proc_maps(f->d[0].pid), maps + 5);
	for (unsigned int q = 0; q < 2; q++) {
		if (bg[q].ret)
			fail_msg("queue %u: %s", q, it_echo_error(bg[q].e));
		it_assert_echo(bg[q].e, it_echo_drain(bg[q].e, IT_TIMEOUT_MS));
		it_assert_echo(bg[q].e, it_echo_check_all_done(bg[q].e));
	}
	it_pass(f);
}

/* ==================================================================== */
/* Dirty log                                                            */
/* ==================================================================== */

#define PAGE 4096ull
#define LOG_OFFSET 4096u        /* the log starts one page into its memfd (A.7) */
/* One bit per page up to the end of the data region: exactly enough. */
#define LOG_BYTES ((uint32_t)(((IT_GPA_DATA + IT_DATA_BYTES - 1) / PAGE) / 8 + 1))
#define GPA_D (IT_GPA_DATA + IT_DATA_BYTES / 2)   /* away from the echo buffers */

static bool page_marked(const uint8_t *log, uint64_t gpa)
{
	uint64_t page = gpa / PAGE;

	return log[page / 8] & (1u << (page % 8));
}

/* One chain, kicked, completed with `len` bytes written. */
static void post_wait(struct vuf_vq *vq, const struct vuf_seg *segs, unsigned int n, uint32_t len)
{
	struct vuf_completion c;

	assert_int_equal(vuf_vq_post(vq, segs, n, 0xd1d1), 0);
	assert_true(vuf_vq_kick(vq) >= 0);
	assert_int_equal(vuf_vq_wait(vq, IT_TIMEOUT_MS), 0);
	assert_int_equal(vuf_vq_reap(vq, &c, 1), 1);
	assert_int_equal(c.cookie, 0xd1d1);
	assert_int_equal(c.len, len);
}

/* SET_VRING_ADDR of a running queue with or without VHOST_VRING_F_LOG, as QEMU's vhost_dev_set_log. */
static void set_vring_log(struct vuf *vuf, struct vuf_vq *vq, bool on)
{
	uint64_t desc, driver, device;
	struct vhost_vring_addr a = { .index = vuf_vq_index(vq) };

	vuf_vq_ring_gpas(vq, &desc, &driver, &device);
	a.desc_user_addr = desc + VUF_UVA_OFFSET;
	a.avail_user_addr = driver + VUF_UVA_OFFSET;
	a.used_user_addr = device + VUF_UVA_OFFSET;
	a.log_guest_addr = device;
	a.flags = on ? 1u << VHOST_VRING_F_LOG : 0;
	assert_int_equal(vuf_set_vring_addr(vuf, &a), 0);
}

/*
 * QEMU's migration on a running queue: SET_LOG_BASE, SET_FEATURES with
 * LOG_ALL, SET_VRING_ADDR with the log flag.  Then three chains with
 * known buffers: exactly the data pages the device wrote are marked (not
 * the ones it only read, nor writable bytes beyond what it wrote), and
 * in guest memory outside the data, only pages of the ring the device
 * writes (split: the used ring; packed: the descriptor ring).  Logging
 * off again: nothing is marked.
 */
static void test_dirty_log_marks_written_pages(void **state)
{
	struct it_fixture *f = *state;
	const bool packed = f->priv_case != NULL;
	struct it_fe_opts o = { .features = 1ull << VIRTIO_RING_F_EVENT_IDX, .nqueues = 1 };
	uint64_t desc, driver, device, ring_lo, ring_hi;
	const struct vuf_seg a[] = {
		{ GPA_D, 100, false },
		{ GPA_D + 3 * PAGE - 50, 100, true },     /* pages 2, 3: written */
		{ GPA_D + 6 * PAGE, 4096, true },         /* page 6: not reached */
	};
	const struct vuf_seg b[] = {
		{ GPA_D + 10 * PAGE, 5000, false },       /* pages 10, 11: read only */
		{ GPA_D + 20 * PAGE, 4000, true },        /* page 20 */
		{ GPA_D + 22 * PAGE, 4000, true },        /* page 22: 1000 bytes */
	};
	const struct vuf_seg c[] = { { GPA_D + 30 * PAGE, 100, false } };
	const unsigned int written[] = { 2, 3, 20, 22 };
	struct it_fe *fe;
	struct vuf_vq *vq;
	uint8_t *map, *log;
	unsigned int nmarked = 0;
	int fd;

	if (packed)
		o.features |= 1ull << VIRTIO_F_RING_PACKED;
	it_start(f, 0, NULL);
	fe = it_fe(f, &o);
	vq = fe->vq[0];
	assert_true(vuf_has_protocol_feature(fe->vuf, VU_PROTOCOL_F_LOG_SHMFD));
	it_assert_echo(fe->echo[0], it_echo_run(fe->echo[0], 200, IT_TIMEOUT_MS));

	fd = memfd_create("it-log", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, LOG_OFFSET + LOG_BYTES), 0);
	map = mmap(NULL, LOG_OFFSET + LOG_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	log = map + LOG_OFFSET;
	assert_int_equal(vuf_set_log_base(fe->vuf, fd, LOG_BYTES, LOG_OFFSET), 0);
	close(fd);
	assert_int_equal(vuf_set_features(fe->vuf, fe->features | (1ull << VHOST_F_LOG_ALL)), 0);
	set_vring_log(fe->vuf, vq, true);

	memset(map, 0, LOG_OFFSET + LOG_BYTES);
	memset(vuf_gpa_to_ptr(fe->vuf, GPA_D, 32 * PAGE), 0x3c, 32 * PAGE);
	post_wait(vq, a, 3, 100);
	post_wait(vq, b, 3, 5000);
	post_wait(vq, c, 1, 0);

	/* The offset is applied once: nothing before the log. */
	for (unsigned int i = 0; i < LOG_OFFSET; i++)
		assert_int_equal(map[i], 0);
	/* Data: exactly the pages written. */
	for (uint64_t g = IT_GPA_DATA; g < IT_GPA_DATA + IT_DATA_BYTES; g += PAGE) {
		bool want = false;

		for (unsigned int i = 0; i < VU_ARRAY_SIZE(written); i++)
			want |= g == GPA_D + written[i] * PAGE;
		if (page_marked(log, g) != want)
			fail_msg("data page at gpa 0x%llx (D + %lld pages) %s marked",
				 (unsigned long long)g, (long long)((int64_t)(g - GPA_D) / (int64_t)PAGE),
				 want ? "not" : "wrongly");
	}
	/* Ring memory: only pages of the ring area the device writes. */
	vuf_vq_ring_gpas(vq, &desc, &driver, &device);
	if (packed) {
		/* Used descriptors are written into the descriptor ring. */
		ring_lo = desc;
		ring_hi = desc + 16ull * vuf_vq_size(vq);
	} else {
		ring_lo = device;
		ring_hi = device + 6 + 8ull * vuf_vq_size(vq);
	}
	for (uint64_t g = IT_GPA_RING & ~(PAGE - 1); g < IT_GPA_RING + IT_RING_BYTES; g += PAGE) {
		bool in_ring = g + PAGE > ring_lo && g < ring_hi;

		if (page_marked(log, g)) {
			nmarked++;
			if (!in_ring)
				fail_msg("ring region page at gpa 0x%llx marked; the device writes only 0x%llx..0x%llx",
					 (unsigned long long)g, (unsigned long long)ring_lo,
					 (unsigned long long)ring_hi);
		}
	}
	assert_true(nmarked > 0);
	/* Split: the page of used->idx, written by every completion. */
	if (!packed)
		assert_true(page_marked(log, device));

	/* Logging off (QEMU: features, then ring addresses): nothing marked. */
	assert_int_equal(vuf_set_features(fe->vuf, fe->features), 0);
	set_vring_log(fe->vuf, vq, false);
	memset(map, 0, LOG_OFFSET + LOG_BYTES);
	post_wait(vq, b, 3, 5000);
	for (unsigned int i = 0; i < LOG_OFFSET + LOG_BYTES; i++)
		if (map[i])
			fail_msg("byte %u of the log file set after logging stopped", i);
	it_assert_echo(fe->echo[0], it_echo_run(fe->echo[0], 200, IT_TIMEOUT_MS));
	munmap(map, LOG_OFFSET + LOG_BYTES);
	it_pass(f);
}

/* ==================================================================== */

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		{ "mem_slots_hot_add_remove_under_traffic_ring_region_removal_stops_one_queue_A8",
		  test_mem_slots_hot_add_remove_under_traffic, it_setup, it_teardown, NULL },
		{ "mem_table_replaced_under_traffic_rings_remapped_old_unmapped",
		  test_mem_table_replaced_under_traffic, it_setup, it_teardown, NULL },
		{ "dirty_log_split_marks_written_pages_and_used_ring",
		  test_dirty_log_marks_written_pages, it_setup, it_teardown, NULL },
		{ "dirty_log_packed_marks_written_pages_and_used_descriptors",
		  test_dirty_log_marks_written_pages, it_setup, it_teardown, (void *)1 },
	};

	return it_main(argc, argv, "integration_memory", tests, VU_ARRAY_SIZE(tests));
}
