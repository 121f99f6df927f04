// SPDX-License-Identifier: MIT
/*
 * vhost-blk integration: durability and restarts.
 *
 * - Writethrough (--write-cache off, or WCE cleared with SET_CONFIG): a
 *   write the guest saw completed is in the file even if the daemon is
 *   killed right after (SECURITY.md D.30).  Where the kernel has
 *   cachestat(2), the written pages are also checked clean, i.e. on
 *   stable storage, at completion; in writeback mode they stay dirty
 *   until FLUSH.
 * - Back-end crash with requests in flight: the daemon is stopped while
 *   it holds writes it took from the ring but did not complete, killed,
 *   started again; vuf_reconnect() hands it the inflight area, it
 *   resubmits those writes, every request completes and the data
 *   verifies (split and packed rings).
 * - Front-end reconnect to the same daemon: requests posted and not
 *   kicked before the reconnect are served without a kick (C.27).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blk_test.h"
#include "vu_inflight.h"
#include "vu_util.h"

#define CFG_OFF(field) ((uint32_t)offsetof(struct virtio_blk_config, field))

/* ---- cachestat(2) (Linux 6.5), declared here for older headers ---- */

#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif

struct cs_range {
	uint64_t off;
	uint64_t len;
};

struct cs {
	uint64_t nr_cache;
	uint64_t nr_dirty;
	uint64_t nr_writeback;
	uint64_t nr_evicted;
	uint64_t nr_recently_evicted;
};

/* Dirty + under-writeback pages of [off, off + len) of fd, or -errno. */
static long unstable_pages(int fd, uint64_t off, uint64_t len)
{
	struct cs_range r = { off, len };
	struct cs s;

	if (syscall(__NR_cachestat, fd, &r, &s, 0) < 0)
		return -errno;
	return (long)(s.nr_dirty + s.nr_writeback);
}

/* ---- durability ---- */

static void durability(struct blkt *t, const char *direct)
{
	const uint64_t bytes = 16u << 20;
	const uint8_t on = 1, off = 0;
	struct virtio_blk_config c;
	bool cachestat = false;
	struct statfs fs;
	long n;
	int fd;

	blkt_make_file(t->file, bytes, 0);
	blkt_spawn(t, (const char *[]){ "--write-cache", "off", "--direct", direct, NULL });
	blkt_connect(t, NULL);
	blkt_get_config(t, &c);
	assert_int_equal(c.wce, 0);
	fd = open(t->file, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);

	/* Writethrough: clean at completion. */
	assert_int_equal(blkt_write_pattern(t, 0, 0, 64, 11), VIRTIO_BLK_S_OK);
	n = unstable_pages(fd, 0, 64 * 512);
	if (fstatfs(fd, &fs) == 0 && fs.f_type == TMPFS_MAGIC) {
		/* tmpfs pages are never written back: no stable storage to check. */
		print_message("%s is on tmpfs: dirty-page checks skipped\n", t->dir);
	} else if (n == -ENOSYS || n == -EPERM) {
		print_message("cachestat(2) unavailable (%s): dirty-page checks skipped\n",
			      strerror((int)-n));
	} else {
		assert_true(n >= 0);
		assert_int_equal(n, 0);
		cachestat = true;
	}

	/* Writeback (WCE set by the driver): dirty until FLUSH, buffered only. */
	assert_int_equal(vuf_set_config(t->vuf, CFG_OFF(wce), &on, 1, 0), 0);
	assert_int_equal(blkt_write_pattern(t, 0, 1024, 64, 12), VIRTIO_BLK_S_OK);
	if (cachestat && !strcmp(direct, "off")) {
		n = unstable_pages(fd, 1024 * 512, 64 * 512);
		/* The check is meaningful only if writeback left pages dirty;
		 * the kernel may have written them back already. */
		if (n == 0)
			print_message("writeback pages already clean: FLUSH check not conclusive\n");
	}
	assert_int_equal(blkt_nodata(t, 0, VIRTIO_BLK_T_FLUSH, 0), VIRTIO_BLK_S_OK);
	if (cachestat)
		assert_int_equal(unstable_pages(fd, 1024 * 512, 64 * 512), 0);

	/* Back to writethrough through SET_CONFIG: clean at completion again. */
	assert_int_equal(vuf_set_config(t->vuf, CFG_OFF(wce), &off, 1, 0), 0);
	for (unsigned int i = 0; i < 8; i++)
		assert_int_equal(blkt_write_pattern(t, 0, 2048 + i * 128, 128, 20 + i), VIRTIO_BLK_S_OK);
	if (cachestat)
		assert_int_equal(unstable_pages(fd, 2048 * 512, 8 * 128 * 512), 0);
	/* Killed right after the last completion: nothing is lost. */
	blkt_kill(t);
	close(fd);
	blkt_check_file(t->file, 0, 64 * 512, 11);
	blkt_check_file(t->file, 1024 * 512, 64 * 512, 12);
	for (unsigned int i = 0; i < 8; i++)
		blkt_check_file(t->file, (2048 + i * 128) * 512, 128 * 512, 20 + i);
	t->passed = true;
}

static void test_durable_buffered(void **state)
{
	durability(*state, "off");
}

static void test_durable_direct(void **state)
{
	durability(*state, "on");
}

/* ---- back-end crash with requests in flight ---- */

#define QSIZE 128
#define NW 32
#define WSECT 256              /* 128 KiB per write */
#define ATTEMPTS 50

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void post_writes(struct blkt *t, struct blkt_req *r, const struct blkt_buf *b,
			uint64_t seed)
{
	for (unsigned int i = 0; i < NW; i++) {
		uint8_t *p = vuf_gpa_to_ptr(t->vuf, b[i].gpa, b[i].len);

		blkt_pattern(p, b[i].len, (uint64_t)i * WSECT * 512, seed);
		blkt_req_build(&r[i], VIRTIO_BLK_T_OUT, (uint64_t)i * WSECT, &b[i], 1);
		assert_int_equal(vuf_vq_post(t->vq[0], r[i].seg, r[i].nseg, (uintptr_t)&r[i]), 0);
	}
	assert_true(vuf_vq_kick(t->vq[0]) >= 0);
}

static void wait_all(struct blkt *t, struct blkt_req *r)
{
	for (unsigned int i = 0; i < NW; i++) {
		blkt_wait_req(t, 0, &r[i]);
		if (blkt_req_status(&r[i]) != VIRTIO_BLK_S_OK || r[i].len != 1)
			fail_msg("write %u: status %u length %u", i, blkt_req_status(&r[i]), r[i].len);
	}
}

static void crash_restart(struct blkt *t, bool packed, bool mid)
{
	static struct blkt_req r[NW];
	struct blkt_buf b[NW];
	unsigned int k = 0, in_used = 0, attempt;
	uint64_t seed = 0;
	long n;

	blkt_make_file(t->file, (uint64_t)NW * WSECT * 512, 0);
	/* Writethrough on O_DIRECT: each write takes a while. */
	blkt_spawn(t, (const char *[]){ "--write-cache", "off", "--direct", "on", NULL });
	blkt_connect(t, &(struct blkt_conn_opts){ .packed = packed, .inflight = true,
						  .qsize = QSIZE });
	for (unsigned int i = 0; i < NW; i++) {
		blkt_req_init(t, &r[i]);
		b[i].len = WSECT * 512;
		blkt_data(t, b[i].len, 0, &b[i].gpa);
	}

	/*
	 * Stop the daemon while it holds taken, uncompleted writes.  The
	 * window is a write's latency; if every write completed before the
	 * stop landed, let them finish and try again.
	 */
	for (attempt = 0; attempt < ATTEMPTS; attempt++) {
		uint64_t deadline;
		int st;

		seed = 700 + attempt;
		post_writes(t, r, b, seed);
		deadline = now_us() + 2000000;
		/* Until the daemon took a write (mid: completed one, so that the
		 * crash comes with some writes done and some not). */
		while (!vuf_vq_pending(t->vq[0]) && (mid || blkt_inflight(t, QSIZE, &in_used) == 0) &&
		       now_us() < deadline)
			sched_yield();
		blkt_signal(t, SIGSTOP);
		assert_int_equal(waitpid(t->pid, &st, WUNTRACED), t->pid);
		if (!WIFSTOPPED(st)) {
			t->pid = 0;     /* reaped: teardown must not signal it */
			fail_msg("the daemon ended instead of stopping (status 0x%x)", st);
		}
		k = blkt_inflight(t, QSIZE, &in_used);
		if (k > in_used)
			break;
		blkt_signal(t, SIGCONT);
		wait_all(t, r);
	}
	if (attempt == ATTEMPTS)
		fail_msg("could not stop the daemon with a write in flight in %d attempts", ATTEMPTS);

	/* The crash: requests in flight are lost with the process. */
	blkt_kill(t);
	blkt_respawn(t);
	assert_int_equal(vuf_reconnect(t->vuf, NULL, BLKT_WAIT_MS), 0);
	/* No kick: the restarted daemon resubmits and reads the ring by itself. */
	wait_all(t, r);
	n = blkt_resubmitted(t);
	if (n < 1 || n > (long)k)
		fail_msg("%ld requests resubmitted; %u were in flight (%u of them completed)", n, k,
			 in_used);
	if (!packed)
		assert_int_equal(n, k - in_used);
	if (getenv("BLKT_VERBOSE"))
		print_message("attempt %u: %u in flight at the crash, %u of them in the used ring, %ld resubmitted\n",
			      attempt, k, in_used, n);
	for (unsigned int i = 0; i < NW; i++)
		blkt_check_read(t, 0, (uint64_t)i * WSECT, WSECT, seed);
	blkt_check_file(t->file, 0, (uint64_t)NW * WSECT * 512, seed);
	/* And the restarted daemon serves new requests. */
	assert_int_equal(blkt_write_pattern(t, 0, 8, 8, 99), VIRTIO_BLK_S_OK);
	blkt_check_read(t, 0, 8, 8, 99);
	blkt_pass(t);
}

static void test_crash_split(void **state)
{
	crash_restart(*state, false, false);
}

static void test_crash_packed(void **state)
{
	crash_restart(*state, true, false);
}

static void test_crash_split_mid(void **state)
{
	crash_restart(*state, false, true);
}

static void test_crash_packed_mid(void **state)
{
	crash_restart(*state, true, true);
}

/* ---- front-end reconnect to the same daemon ---- */

#define RECONNECTS 100

static unsigned int count_fds(pid_t pid)
{
	char path[64];
	unsigned int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void frontend_reconnect(struct blkt *t, bool packed)
{
	static struct blkt_req r[16];
	struct blkt_buf b[16];
	unsigned int fds;

	blkt_make_file(t->file, 8u << 20, 0);
	blkt_spawn(t, NULL);
	blkt_connect(t, &(struct blkt_conn_opts){ .packed = packed, .inflight = true });
	for (unsigned int i = 0; i < 16; i++) {
		uint8_t *p;

		blkt_req_init(t, &r[i]);
		b[i].len = 8 * 512;
		p = blkt_data(t, b[i].len, 0, &b[i].gpa);
		blkt_pattern(p, b[i].len, (uint64_t)i * 64 * 512, 31);
		blkt_req_build(&r[i], VIRTIO_BLK_T_OUT, (uint64_t)i * 64, &b[i], 1);
	}
	/* Half kicked, half only made available; then the front-end goes away. */
	for (unsigned int i = 0; i < 8; i++)
		assert_int_equal(blkt_try_post(t, 0, &r[i]), 0);
	for (unsigned int i = 8; i < 16; i++)
		assert_int_equal(vuf_vq_post(t->vq[0], r[i].seg, r[i].nseg, (uintptr_t)&r[i]), 0);
	assert_int_equal(vuf_reconnect(t->vuf, NULL, BLKT_WAIT_MS), 0);
	for (unsigned int i = 0; i < 16; i++) {
		blkt_wait_req(t, 0, &r[i]);
		assert_int_equal(blkt_req_status(&r[i]), VIRTIO_BLK_S_OK);
	}
	for (unsigned int i = 0; i < 16; i++)
		blkt_check_read(t, 0, (uint64_t)i * 64, 8, 31);
	/*
	 * Many quick reconnects, each with I/O: nothing leaks into the next
	 * connection, and the daemon's descriptors stay flat (D.29).
	 */
	fds = count_fds(t->pid);
	for (unsigned int j = 0; j < RECONNECTS; j++) {
		int ret = vuf_reconnect(t->vuf, NULL, BLKT_WAIT_MS);

		if (ret)
			fail_msg("reconnect %u: %s", j, strerror(-ret));
		assert_int_equal(blkt_write_pattern(t, 0, 1000 + (j % 64) * 8, 8, 40 + j), VIRTIO_BLK_S_OK);
		blkt_check_read(t, 0, 1000 + (j % 64) * 8, 8, 40 + j);
		blkt_data_reset(t);
	}
	assert_int_equal(count_fds(t->pid), fds);
	blkt_pass(t);
}

static void test_reconnect_split(void **state)
{
	frontend_reconnect(*state, false);
}

static void test_reconnect_packed(void **state)
{
	frontend_reconnect(*state, true);
}

/*
 * GET_VRING_BASE while writes are in flight stops the queue after
 * draining it: what the device took is completed, what it did not take
 * is served once the queue starts again from the returned base, without
 * a kick (SECURITY.md A.10, C.27).
 */
static void stop_start(struct blkt *t, bool packed)
{
	static struct blkt_req r[16];
	struct blkt_buf b[16];

	blkt_make_file(t->file, 8u << 20, 0);
	blkt_spawn(t, (const char *[]){ "--write-cache", "off", NULL });
	blkt_connect(t, &(struct blkt_conn_opts){ .packed = packed });
	for (unsigned int i = 0; i < 16; i++) {
		blkt_req_init(t, &r[i]);
		b[i].len = 64 * 512;
		blkt_data(t, b[i].len, 0, &b[i].gpa);
	}
	for (unsigned int round = 0; round < 10; round++) {
		uint64_t seed = 800 + round;
		uint32_t base;

		for (unsigned int i = 0; i < 16; i++) {
			blkt_pattern(vuf_gpa_to_ptr(t->vuf, b[i].gpa, b[i].len), b[i].len,
				     (uint64_t)i * 64 * 512, seed);
			blkt_req_build(&r[i], VIRTIO_BLK_T_OUT, (uint64_t)i * 64, &b[i], 1);
			assert_int_equal(vuf_vq_post(t->vq[0], r[i].seg, r[i].nseg, (uintptr_t)&r[i]), 0);
			if (i == 7)
				assert_true(vuf_vq_kick(t->vq[0]) >= 0);
			/* Stop at a different point each round. */
			if (i == round)
				assert_int_equal(vuf_get_vring_base(t->vuf, 0, &base), 0);
		}
		assert_int_equal(vuf_vq_start(t->vq[0]), 0);
		for (unsigned int i = 0; i < 16; i++) {
			blkt_wait_req(t, 0, &r[i]);
			if (blkt_req_status(&r[i]) != VIRTIO_BLK_S_OK)
				fail_msg("round %u write %u: status %u", round, i, blkt_req_status(&r[i]));
		}
		blkt_check_file(t->file, 0, 16 * 64 * 512, seed);
	}
	blkt_check_read(t, 0, 0, 16 * 64, 809);
	blkt_pass(t);
}

static void test_stop_start_split(void **state)
{
	stop_start(*state, false);
}

static void test_stop_start_packed(void **state)
{
	stop_start(*state, true);
}

/*
 * RESET_DEVICE (a guest reboot) with writes in flight: they complete
 * before the reset takes effect; the driver then negotiates again, here
 * with the other ring layout, and the device serves the new queues.
 */
static void test_reset_device(void **state)
{
	struct blkt *t = *state;
	static struct blkt_req r[8];
	struct blkt_buf b[8];
	uint64_t features;

	blkt_make_file(t->file, 8u << 20, 0);
	blkt_spawn(t, NULL);
	blkt_connect(t, NULL);
	assert_true(vuf_has_protocol_feature(t->vuf, VU_PROTOCOL_F_RESET_DEVICE));
	for (unsigned int i = 0; i < 8; i++) {
		uint8_t *p;

		blkt_req_init(t, &r[i]);
		b[i].len = 64 * 512;
		p = blkt_data(t, b[i].len, 0, &b[i].gpa);
		blkt_pattern(p, b[i].len, (uint64_t)i * 64 * 512, 900);
		blkt_req_build(&r[i], VIRTIO_BLK_T_OUT, (uint64_t)i * 64, &b[i], 1);
		assert_int_equal(blkt_try_post(t, 0, &r[i]), 0);
	}
	assert_int_equal(vuf_reset_device(t->vuf), 0);
	/* What the device took is in the used ring, completed; the rest is dropped. */
	{
		struct vuf_completion c[8];
		int n = vuf_vq_reap(t->vq[0], c, 8);

		assert_true(n >= 0);
		for (int i = 0; i < n; i++) {
			struct blkt_req *x = (struct blkt_req *)(uintptr_t)c[i].cookie;

			assert_int_equal(blkt_req_status(x), VIRTIO_BLK_S_OK);
			blkt_check_file(t->file, le64toh(x->ghdr->sector) * 512, 64 * 512, 900);
		}
	}
	vuf_vq_destroy(t->vq[0]);
	t->vq[0] = NULL;

	/* The driver starts over: features (now packed), then the queue. */
	features = vuf_features(t->vuf) | (1ull << VIRTIO_F_RING_PACKED);
	assert_int_equal(vuf_set_features(t->vuf, features), 0);
	t->vq[0] = vuf_vq_setup(t->vuf, 0, 64, true);
	assert_non_null(t->vq[0]);
	vuf_vq_set_wait_fallback(t->vq[0], 0);
	for (unsigned int i = 0; i < 8; i++) {
		assert_int_equal(blkt_write_pattern(t, 0, (uint64_t)i * 64, 64, 901), VIRTIO_BLK_S_OK);
		blkt_check_read(t, 0, (uint64_t)i * 64, 64, 901);
	}
	blkt_pass(t);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_durable_buffered, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_durable_direct, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_crash_split, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_crash_packed, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_crash_split_mid, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_crash_packed_mid, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_reconnect_split, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_reconnect_packed, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_stop_start_split, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_stop_start_packed, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_reset_device, blkt_setup, blkt_teardown),
	};

	blkt_init(argc, argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
