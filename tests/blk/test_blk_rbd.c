// SPDX-License-Identifier: MIT
/*
 * vhost-blk integration on Ceph: the rbd engine against a real one-node
 * cluster (tests/ceph/ceph-cluster.sh run starts it and sets CEPH_CONF
 * and VU_CEPH_DIR; without them every test is skipped).
 *
 * Each test makes its own image with the rbd tool, drives the daemon
 * with the vuf front-end, and checks what reached the cluster with
 * `rbd export`: every request type, read-back verification, discard and
 * write-zeroes reading zeroes, durability with the write cache off
 * (SIGKILL right after completion), resize by `rbd resize` seen as a
 * config change, read-only snapshots, a crash with writes in flight
 * (resubmitted after the restart, once the dead client's exclusive lock
 * has timed out), several disks on one cluster connection, and the
 * start-up errors that need a cluster (one line, exit code 2, no socket;
 * command-line errors are in test_blk_cli.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blk_test.h"
#include "vu_util.h"

#define IMAGE_MIB 64
/* Long enough for a dead client's exclusive lock to time out
 * (osd client watch timeout = 10 s in the fixture). */
#define LOCK_WAIT_MS 40000

static const char *ceph_conf;
static const char *ceph_dir;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Run the rbd tool on the test cluster; its exit status. */
static int __attribute__((format(printf, 1, 2))) rbd_tool(const char *fmt, ...)
{
	char args[1024], cmd[1400];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "rbd -c '%s' %s >/dev/null 2>&1", ceph_conf, args);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A fresh image of mib MiB, named after the test; spec is rbd/NAME. */
static void make_image(struct blkt *t, char *spec, size_t size, unsigned int mib)
{
	static unsigned int seq;

	snprintf(spec, size, "rbd/t%d-%u", (int)getpid(), seq++);
	if (rbd_tool("create %s --size %uM", spec, mib))
		fail_msg("rbd create %s failed", spec);
	(void)t;
}

/* The image's contents now, in a file of the test's directory. */
static void export_image(struct blkt *t, const char *spec, char *path, size_t size)
{
	blkt_path(t, path, size, "export.img");
	unlink(path);
	if (rbd_tool("export %s %s", spec, path))
		fail_msg("rbd export %s failed", spec);
}

/* Start the daemon on spec, plus NULL-terminated extra arguments. */
static void spawn_rbd(struct blkt *t, const char *spec, const char *const *extra)
{
	const char *argv[64] = { "vhost-blk", "--socket-path", t->sock, "--rbd", spec,
				 "--ceph-conf", ceph_conf, "--cpus", "0", "--poll", "adaptive" };
	unsigned int n = 11;

	for (unsigned int i = 0; extra && extra[i]; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	blkt_spawn_argv(t, argv);
}

/* Write seed's pattern with a request of nseg segments of seg bytes. */
static uint8_t write_segs(struct blkt *t, uint64_t sector, unsigned int nseg, uint32_t seg,
			  uint64_t seed)
{
	struct blkt_buf b[BLKT_MAX_SEGS];
	struct blkt_req r;

	blkt_req_init(t, &r);
	for (unsigned int i = 0; i < nseg; i++) {
		void *p;

		b[i].len = seg;
		p = blkt_data(t, seg, 512, &b[i].gpa);
		blkt_pattern(p, seg, sector * 512 + (uint64_t)i * seg, seed);
	}
	blkt_req_build(&r, VIRTIO_BLK_T_OUT, sector, b, nseg);
	return blkt_do(t, 0, &r);
}

static void io_all_types(struct blkt *t, bool packed)
{
	char spec[64], file[160];
	struct virtio_blk_config c;
	const uint64_t cap = (uint64_t)IMAGE_MIB << 11;

	make_image(t, spec, sizeof(spec), IMAGE_MIB);
	spawn_rbd(t, spec, NULL);
	blkt_connect(t, &(struct blkt_conn_opts){ .packed = packed });
	blkt_get_config(t, &c);
	assert_int_equal(le64toh(c.capacity), cap);

	/* One sector, 1 MiB in one segment, 32 segments of 4 KiB, the last sector. */
	assert_int_equal(blkt_write_pattern(t, 0, 0, 1, 11), VIRTIO_BLK_S_OK);
	assert_int_equal(blkt_write_pattern(t, 0, 8, 2048, 12), VIRTIO_BLK_S_OK);
	assert_int_equal(write_segs(t, 4096, 32, 4096, 13), VIRTIO_BLK_S_OK);
	assert_int_equal(blkt_write_pattern(t, 0, cap - 1, 1, 14), VIRTIO_BLK_S_OK);
	assert_int_equal(blkt_nodata(t, 0, VIRTIO_BLK_T_FLUSH, 0), VIRTIO_BLK_S_OK);
	blkt_check_read(t, 0, 0, 1, 11);
	blkt_check_read(t, 0, 8, 2048, 12);
	blkt_check_read(t, 0, 4096, 256, 13);
	blkt_check_read(t, 0, cap - 1, 1, 14);
	/* Never written: zeroes. */
	blkt_check_read(t, 0, 40000, 16, 0);
	/* Past the end: refused by the device, never reaches librbd. */
	assert_int_equal(blkt_write_pattern(t, 0, cap, 1, 1), VIRTIO_BLK_S_IOERR);

	/* What the cluster holds. */
	export_image(t, spec, file, sizeof(file));
	blkt_check_file(file, 0, 512, 11);
	blkt_check_file(file, 8 * 512, 2048 * 512, 12);
	blkt_check_file(file, 4096 * 512, 256 * 512, 13);
	blkt_check_file(file, (cap - 1) * 512, 512, 14);
	blkt_pass(t);
}

static void test_io_split(void **state)
{
	io_all_types(*state, false);
}

static void test_io_packed(void **state)
{
	io_all_types(*state, true);
}

/* GET_ID: the image's name, or --serial. */
static void get_id(struct blkt *t, char *id)
{
	uint64_t gpa;
	uint8_t *p = blkt_data(t, 20, 0, &gpa);
	uint32_t len;

	memset(p, 0xee, 20);
	assert_int_equal(blkt_rw(t, 0, VIRTIO_BLK_T_GET_ID, 0, gpa, 20, &len), VIRTIO_BLK_S_OK);
	memcpy(id, p, 20);
	id[20] = '\0';
}

static void test_get_id(void **state)
{
	struct blkt *t = *state;
	char spec[64], id[21];

	make_image(t, spec, sizeof(spec), 4);
	spawn_rbd(t, spec, NULL);
	blkt_connect(t, NULL);
	get_id(t, id);
	assert_string_equal(id, strchr(spec, '/') + 1);
	blkt_disconnect(t);
	assert_int_equal(blkt_stop(t, 10000), 0);
	spawn_rbd(t, spec, (const char *[]){ "--serial", "my-serial", NULL });
	blkt_connect(t, NULL);
	get_id(t, id);
	assert_string_equal(id, "my-serial");
	blkt_pass(t);
}

static void test_discard_write_zeroes(void **state)
{
	struct blkt *t = *state;
	char spec[64], file[160];
	/* Object size 4 MiB: sectors 8192..16383 are the second object. */
	struct virtio_blk_discard_write_zeroes wz[2] = {
		{ .sector = 3, .num_sectors = 100 },
		{ .sector = 5000, .num_sectors = 7, .flags = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP },
	};
	struct virtio_blk_discard_write_zeroes dc = { .sector = 8192, .num_sectors = 8192 };
	struct virtio_blk_discard_write_zeroes bad = { .sector = 3, .num_sectors = 1, .flags = 1 };

	make_image(t, spec, sizeof(spec), 16);
	spawn_rbd(t, spec, NULL);
	blkt_connect(t, NULL);
	for (unsigned int i = 0; i < 16; i++)
		assert_int_equal(blkt_write_pattern(t, 0, i * 2048, 2048, 21), VIRTIO_BLK_S_OK);
	assert_int_equal(blkt_ranges(t, 0, VIRTIO_BLK_T_WRITE_ZEROES, wz, 2), VIRTIO_BLK_S_OK);
	assert_int_equal(blkt_ranges(t, 0, VIRTIO_BLK_T_DISCARD, &dc, 1), VIRTIO_BLK_S_OK);
	/* DISCARD takes no flags. */
	assert_int_equal(blkt_ranges(t, 0, VIRTIO_BLK_T_DISCARD, &bad, 1), VIRTIO_BLK_S_UNSUPP);
	blkt_check_read(t, 0, 0, 3, 21);
	blkt_check_read(t, 0, 3, 100, 0);
	blkt_check_read(t, 0, 103, 100, 21);
	blkt_check_read(t, 0, 5000, 7, 0);
	blkt_check_read(t, 0, 5007, 1, 21);
	blkt_check_read(t, 0, 8192, 2048, 0);
	blkt_check_read(t, 0, 14336, 2048, 0);
	blkt_check_read(t, 0, 16384, 2048, 21);
	export_image(t, spec, file, sizeof(file));
	blkt_check_file(file, 3 * 512, 100 * 512, 0);
	blkt_check_file(file, 8192 * 512, 8192 * 512, 0);
	blkt_check_file(file, 16384 * 512, 2048 * 512, 21);
	blkt_pass(t);
}

/*
 * Write cache off: a completed write is in the cluster even if the
 * daemon dies right after.  The FLUSH first takes librbd's cache out of
 * its writethrough-until-flush start, so that writes would sit in it.
 */
static void test_writethrough_durable(void **state)
{
	struct blkt *t = *state;
	char spec[64], file[160];

	make_image(t, spec, sizeof(spec), 16);
	spawn_rbd(t, spec, (const char *[]){ "--write-cache", "off", NULL });
	blkt_connect(t, NULL);
	assert_int_equal(blkt_nodata(t, 0, VIRTIO_BLK_T_FLUSH, 0), VIRTIO_BLK_S_OK);
	for (unsigned int i = 0; i < 8; i++)
		assert_int_equal(blkt_write_pattern(t, 0, i * 64 + 1, 64, 31), VIRTIO_BLK_S_OK);
	blkt_kill(t);
	export_image(t, spec, file, sizeof(file));
	blkt_check_file(file, 512, 8 * 64 * 512, 31);
	/* Reads need no exclusive lock: a new daemon serves them at once. */
	blkt_disconnect(t);
	blkt_respawn(t);
	blkt_connect(t, NULL);
	blkt_check_read(t, 0, 1, 8 * 64, 31);
	blkt_pass(t);
}

static void test_resize(void **state)
{
	struct blkt *t = *state;
	char spec[64];
	struct virtio_blk_config c;
	struct vu_msg m;

	make_image(t, spec, sizeof(spec), 8);
	spawn_rbd(t, spec, NULL);
	blkt_connect(t, &(struct blkt_conn_opts){ .backend_channel = true });
	blkt_get_config(t, &c);
	assert_int_equal(le64toh(c.capacity), 8 << 11);
	assert_int_equal(blkt_write_pattern(t, 0, 8 << 11, 8, 41), VIRTIO_BLK_S_IOERR);

	assert_int_equal(rbd_tool("resize %s --size 24M", spec), 0);
	memset(&m, 0, sizeof(m));
	assert_int_equal(vuf_backend_channel_recv(t->vuf, &m, BLKT_WAIT_MS), 0);
	vu_msg_close_fds(&m);
	assert_int_equal(m.hdr.request, VU_BACKEND_REQ_CONFIG_CHANGE_MSG);
	blkt_get_config(t, &c);
	assert_int_equal(le64toh(c.capacity), 24 << 11);
	assert_int_equal(blkt_write_pattern(t, 0, (24 << 11) - 8, 8, 41), VIRTIO_BLK_S_OK);
	blkt_check_read(t, 0, (24 << 11) - 8, 8, 41);

	assert_int_equal(rbd_tool("resize %s --size 4M --allow-shrink", spec), 0);
	memset(&m, 0, sizeof(m));
	assert_int_equal(vuf_backend_channel_recv(t->vuf, &m, BLKT_WAIT_MS), 0);
	vu_msg_close_fds(&m);
	blkt_get_config(t, &c);
	assert_int_equal(le64toh(c.capacity), 4 << 11);
	assert_int_equal(blkt_write_pattern(t, 0, 4 << 11, 8, 41), VIRTIO_BLK_S_IOERR);
	blkt_pass(t);
}

/* A snapshot, and --read-only on the image: served read-only. */
static void test_read_only(void **state)
{
	struct blkt *t = *state;
	char spec[64], snap[80], file[160];
	struct virtio_blk_discard_write_zeroes dc = { .sector = 0, .num_sectors = 8 };
	uint64_t f;

	make_image(t, spec, sizeof(spec), 8);
	blkt_path(t, file, sizeof(file), "seed.img");
	blkt_make_file(file, 8u << 20, 51);
	assert_int_equal(rbd_tool("import --no-progress %s %s-src", file, spec), 0);
	snprintf(snap, sizeof(snap), "%s-src@s1", spec);
	assert_int_equal(rbd_tool("snap create %s", snap), 0);
	/* The image moves on; the snapshot keeps seed 51. */
	blkt_make_file(file, 8u << 20, 52);
	assert_int_equal(rbd_tool("import --no-progress %s %s-other", file, spec), 0);

	spawn_rbd(t, snap, NULL);
	blkt_connect(t, NULL);
	assert_int_equal(vuf_get_features(t->vuf, &f), 0);
	assert_true(f & (1ull << VIRTIO_BLK_F_RO));
	blkt_check_read(t, 0, 100, 64, 51);
	assert_int_equal(blkt_write_pattern(t, 0, 0, 8, 53), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blkt_ranges(t, 0, VIRTIO_BLK_T_DISCARD, &dc, 1), VIRTIO_BLK_S_IOERR);
	blkt_check_read(t, 0, 0, 8, 51);
	blkt_disconnect(t);
	assert_int_equal(blkt_stop(t, 10000), 0);

	snprintf(snap, sizeof(snap), "%s-other", spec);
	spawn_rbd(t, snap, (const char *[]){ "--read-only", NULL });
	blkt_connect(t, NULL);
	assert_int_equal(vuf_get_features(t->vuf, &f), 0);
	assert_true(f & (1ull << VIRTIO_BLK_F_RO));
	assert_int_equal(blkt_write_pattern(t, 0, 0, 8, 53), VIRTIO_BLK_S_IOERR);
	blkt_check_read(t, 0, 0, 64, 52);
	blkt_pass(t);
}

/* Two queues on two pollers, writes on both, each read back from the other. */
static void test_two_queues(void **state)
{
	struct blkt *t = *state;
	char spec[64];

	make_image(t, spec, sizeof(spec), 16);
	spawn_rbd(t, spec, (const char *[]){ "--num-queues", "2", "--cpus", "0,1", NULL });
	blkt_connect(t, &(struct blkt_conn_opts){ .nq = 2 });
	for (unsigned int i = 0; i < 32; i++) {
		struct blkt_req r;
		struct blkt_buf b = { .len = 8192 };
		void *p = blkt_data(t, b.len, 0, &b.gpa);

		blkt_pattern(p, b.len, (uint64_t)i * 64 * 512, 61);
		blkt_req_init(t, &r);
		blkt_req_build(&r, VIRTIO_BLK_T_OUT, i * 64, &b, 1);
		assert_int_equal(blkt_do(t, i % 2, &r), VIRTIO_BLK_S_OK);
	}
	for (unsigned int i = 0; i < 32; i++)
		blkt_check_read(t, (i + 1) % 2, i * 64, 16, 61);
	blkt_pass(t);
}

/* Two disks on the same cluster share one connection; both serve I/O. */
static void test_two_disks(void **state)
{
	struct blkt *t = *state;
	char spec[2][64], arg[2][400], sock2[160], *log, *p;
	unsigned int connects = 0;

	make_image(t, spec[0], sizeof(spec[0]), 4);
	make_image(t, spec[1], sizeof(spec[1]), 4);
	blkt_path(t, sock2, sizeof(sock2), "second.sock");
	snprintf(arg[0], sizeof(arg[0]), "socket-path=%s,rbd=%s,ceph-conf=%s", t->sock, spec[0],
		 ceph_conf);
	snprintf(arg[1], sizeof(arg[1]), "socket-path=%s,rbd=%s,ceph-conf=%s,serial=second", sock2,
		 spec[1], ceph_conf);
	blkt_spawn_argv(t, (const char *[]){ "vhost-blk", "--disk", arg[0], "--disk", arg[1],
					     "--cpus", "0", NULL });
	for (unsigned int d = 0; d < 2; d++) {
		blkt_connect(t, &(struct blkt_conn_opts){ .sock = d ? sock2 : NULL });
		assert_int_equal(blkt_write_pattern(t, 0, 16, 16, 71 + d), VIRTIO_BLK_S_OK);
		blkt_check_read(t, 0, 16, 16, 71 + d);
		blkt_disconnect(t);
	}
	log = blkt_read_log(t);
	for (p = log; (p = strstr(p, "connected to the Ceph cluster")); p++)
		connects++;
	free(log);
	assert_int_equal(connects, 1);
	blkt_pass(t);
}

/* Wait for every request of r[0..n), longer than blkt_wait_req would. */
static void wait_long(struct blkt *t, struct blkt_req *r, unsigned int n, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;

	for (unsigned int i = 0; i < n; i++) {
		while (!r[i].done) {
			int ret = blkt_try_reap(t, 0, 1000);

			if (ret < 0 && ret != -ETIMEDOUT)
				fail_msg("reaping: %s", strerror(-ret));
			if (now_ms() > deadline)
				fail_msg("request %u not completed after %d ms", i, timeout_ms);
		}
		if (blkt_req_status(&r[i]) != VIRTIO_BLK_S_OK)
			fail_msg("request %u: status %u", i, blkt_req_status(&r[i]));
	}
}

/*
 * SIGKILL with writes in flight; the restarted daemon resubmits them from
 * the inflight area.  Its writes may wait for the dead client's exclusive
 * lock to time out; the time until they complete is printed.
 */
#define NW 32
#define WSECT 256
#define QSIZE 128
#define ATTEMPTS 50

static void post_writes(struct blkt *t, struct blkt_req *r, uint64_t seed)
{
	for (unsigned int i = 0; i < NW; i++) {
		const struct vuf_seg *data = &r[i].seg[1];
		uint8_t *p = vuf_gpa_to_ptr(t->vuf, data->gpa, data->len);

		blkt_pattern(p, data->len, (uint64_t)i * WSECT * 512, seed);
		r[i].done = false;
		*r[i].gstatus = 0xff;
		assert_int_equal(vuf_vq_post(t->vq[0], r[i].seg, r[i].nseg, (uintptr_t)&r[i]), 0);
	}
	assert_true(vuf_vq_kick(t->vq[0]) >= 0);
}

static void test_restart_inflight(void **state)
{
	struct blkt *t = *state;
	static struct blkt_req r[NW];
	char spec[64], file[160];
	unsigned int k = 0, in_used = 0, attempt;
	uint64_t t0, seed = 0;
	long n;

	make_image(t, spec, sizeof(spec), 16);
	spawn_rbd(t, spec, (const char *[]){ "--write-cache", "off", NULL });
	blkt_connect(t, &(struct blkt_conn_opts){ .inflight = true, .qsize = QSIZE });
	/* The daemon's client takes the exclusive lock with its first write. */
	assert_int_equal(blkt_write_pattern(t, 0, 0, 8, 80), VIRTIO_BLK_S_OK);
	for (unsigned int i = 0; i < NW; i++) {
		struct blkt_buf b = { .len = WSECT * 512 };

		blkt_data(t, b.len, 0, &b.gpa);
		blkt_req_init(t, &r[i]);
		blkt_req_build(&r[i], VIRTIO_BLK_T_OUT, (uint64_t)i * WSECT, &b, 1);
	}
	/* Stop the daemon while it holds writes librbd has not completed. */
	for (attempt = 0; attempt < ATTEMPTS; attempt++) {
		uint64_t deadline;
		int st;

		seed = 800 + attempt;
		post_writes(t, r, seed);
		deadline = now_ms() + 2000;
		while (blkt_inflight(t, QSIZE, &in_used) == 0 && now_ms() < deadline)
			;
		blkt_signal(t, SIGSTOP);
		assert_int_equal(waitpid(t->pid, &st, WUNTRACED), t->pid);
		assert_true(WIFSTOPPED(st));
		k = blkt_inflight(t, QSIZE, &in_used);
		if (k > in_used)
			break;
		blkt_signal(t, SIGCONT);
		wait_long(t, r, NW, BLKT_WAIT_MS);
	}
	if (attempt == ATTEMPTS)
		fail_msg("could not stop the daemon with a write in flight in %d attempts", ATTEMPTS);
	blkt_kill(t);
	t0 = now_ms();
	blkt_respawn(t);
	assert_int_equal(vuf_reconnect(t->vuf, NULL, BLKT_WAIT_MS), 0);
	wait_long(t, r, NW, LOCK_WAIT_MS);
	n = blkt_resubmitted(t);
	print_message("%u writes in flight at the crash, %ld resubmitted; all completed %llu ms "
		      "after the restart\n", k - in_used, n, (unsigned long long)(now_ms() - t0));
	assert_int_equal(n, k - in_used);
	for (unsigned int i = 0; i < NW; i++)
		blkt_check_read(t, 0, (uint64_t)i * WSECT, WSECT, seed);
	export_image(t, spec, file, sizeof(file));
	blkt_check_file(file, 0, (uint64_t)NW * WSECT * 512, seed);
	blkt_pass(t);
}

/* The daemon must refuse to start: exit 2, one line naming what, no socket. */
static void expect_start_error(struct blkt *t, const char *const *argv, const char *want,
			       int max_ms)
{
	char out[160], err[160], line[1024] = "";
	uint64_t t0 = now_ms();
	int st, lines = 0;
	FILE *f;

	blkt_path(t, out, sizeof(out), "out");
	blkt_path(t, err, sizeof(err), "err");
	unlink(out);
	unlink(err);
	st = blkt_run(argv, out, err, 30000);
	f = fopen(err, "r");
	assert_non_null(f);
	while (fgets(line + (lines ? strlen(line) : 0), (int)(sizeof(line) - strlen(line)), f))
		lines++;
	fclose(f);
	if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 2)
		fail_msg("%s: status 0x%x, expected exit 2; stderr: %s", want, st, line);
	if (!strstr(line, want))
		fail_msg("stderr '%s' does not mention '%s'", line, want);
	if (lines != 1)
		fail_msg("%d lines on stderr, expected one: %s", lines, line);
	if (now_ms() - t0 > (uint64_t)max_ms)
		fail_msg("%s: took %llu ms", want, (unsigned long long)(now_ms() - t0));
	assert_int_equal(access(t->sock, F_OK), -1);
}

static void test_errors(void **state)
{
	struct blkt *t = *state;
	char spec[64], unreachable[300], badkey[160], env[200];
	FILE *f;

	make_image(t, spec, sizeof(spec), 4);
#define RUN(want, ms, ...) expect_start_error(t, (const char *[]){ "vhost-blk", "--socket-path", \
				t->sock, __VA_ARGS__, NULL }, want, ms)
	RUN("no such pool", 15000, "--rbd", "nopool/img", "--ceph-conf", ceph_conf);
	RUN("no such image", 15000, "--rbd", "rbd/nosuchimage", "--ceph-conf", ceph_conf);
	{
		char snap[80];

		snprintf(snap, sizeof(snap), "%s@nosnap", spec);
		RUN("no such image or snapshot", 15000, "--rbd", snap, "--ceph-conf", ceph_conf);
	}
	RUN("is not POOL", 5000, "--rbd", "rbd/", "--ceph-conf", ceph_conf);
	RUN("cannot read the Ceph configuration", 5000, "--rbd", spec, "--ceph-conf",
	    "/nonexistent/ceph.conf");
	/* A client the cluster does not know. */
	RUN("cannot connect", 20000, "--rbd", spec, "--ceph-conf", ceph_conf, "--ceph-id", "nosuch");
	/* A known client with a wrong key. */
	blkt_path(t, badkey, sizeof(badkey), "bad.keyring");
	f = fopen(badkey, "w");
	assert_non_null(f);
	fprintf(f, "[client.admin]\n\tkey = AQBZ3l5lAAAAABAAtR+q6tJ7m3Q0A3n2cQ6A1w==\n");
	fclose(f);
	snprintf(env, sizeof(env), "--keyring %s", badkey);
	setenv("CEPH_ARGS", env, 1);
	RUN("cannot connect", 20000, "--rbd", spec, "--ceph-conf", ceph_conf);
	unsetenv("CEPH_ARGS");
	/* Nothing answers: fails within the mount timeout of that configuration. */
	snprintf(unreachable, sizeof(unreachable), "%s/ceph-unreachable.conf", ceph_dir);
	RUN("cannot connect", 20000, "--rbd", spec, "--ceph-conf", unreachable);
#undef RUN
	t->passed = true;         /* no daemon to check: none may start */
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_io_split, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_io_packed, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_get_id, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_discard_write_zeroes, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_writethrough_durable, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_resize, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_read_only, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_two_queues, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_two_disks, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_errors, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_restart_inflight, blkt_setup, blkt_teardown),
	};

	blkt_init(argc, argv);
	ceph_conf = getenv("CEPH_CONF");
	ceph_dir = getenv("VU_CEPH_DIR");
	if (!ceph_conf || !ceph_dir) {
		fprintf(stderr, "no Ceph cluster (CEPH_CONF, VU_CEPH_DIR unset; run under "
				"tests/ceph/ceph-cluster.sh run): skipped\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
