// SPDX-License-Identifier: MIT
/*
 * vhost-blk integration: multiqueue on two pollers.  The daemon runs
 * with --num-queues 4 --cpus 0,1 (queues 0 and 2 on one poller, 1 and 3
 * on the other); one test thread per queue keeps 16 requests in flight,
 * writes its own part of the disk with requests of random size, then
 * reads everything back and checks it, while the other queues do the
 * same.  The file is checked with pread() at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <endian.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "blk_test.h"
#include "vu_util.h"

#define NQ 4
#define DEPTH 16
#define MAX_SECT 64
#define OPS 256
#define AREA_SECT (OPS * MAX_SECT)
#define DISK_BYTES ((uint64_t)NQ * AREA_SECT * BLKT_SECTOR)

struct op {
	uint64_t sector;
	uint32_t nsect;
};

struct worker {
	struct blkt *t;
	unsigned int q;
	uint64_t seed;
	uint32_t rng;
	struct op ops[OPS];
	struct blkt_req req[DEPTH];
	struct blkt_buf buf[DEPTH];
	int slot_op[DEPTH];       /* op of the request in the slot, -1: free */
	unsigned int completed;
	pthread_t thread;
	char err[256];
};

static uint32_t xorshift(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

static void __attribute__((format(printf, 2, 3))) werr(struct worker *w, const char *fmt, ...)
{
	va_list ap;

	if (w->err[0])
		return;
	va_start(ap, fmt);
	vsnprintf(w->err, sizeof(w->err), fmt, ap);
	va_end(ap);
}

/* Handle the completions of finished slots; false on error. */
static bool collect(struct worker *w, bool reading)
{
	for (unsigned int s = 0; s < DEPTH; s++) {
		struct blkt_req *r = &w->req[s];
		int i = w->slot_op[s];

		if (i < 0 || !r->done)
			continue;
		w->slot_op[s] = -1;
		w->completed++;
		if (blkt_req_status(r) != VIRTIO_BLK_S_OK) {
			werr(w, "queue %u: %s of op %d: status %u", w->q, reading ? "read" : "write", i,
			     blkt_req_status(r));
			return false;
		}
		if (reading) {
			uint32_t len = w->ops[i].nsect * BLKT_SECTOR;
			const uint8_t *p = vuf_gpa_to_ptr(w->t->vuf, w->buf[s].gpa, len);
			long bad;

			if (r->len != len + 1) {
				werr(w, "queue %u: read of op %d: length %u, want %u", w->q, i, r->len,
				     len + 1);
				return false;
			}
			bad = blkt_pattern_diff(p, len, w->ops[i].sector * BLKT_SECTOR, w->seed);
			if (bad >= 0) {
				werr(w, "queue %u: read of op %d (sector %llu): byte %ld differs", w->q,
				     i, (unsigned long long)w->ops[i].sector, bad);
				return false;
			}
		}
	}
	return true;
}

static bool run_phase(struct worker *w, bool reading)
{
	unsigned int next = 0, inflight = 0;

	while (next < OPS || inflight) {
		int s = -1;

		if (next < OPS)
			for (unsigned int k = 0; k < DEPTH && s < 0; k++)
				if (w->slot_op[k] < 0)
					s = (int)k;
		if (s >= 0) {
			const struct op *o = &w->ops[next];
			struct blkt_buf b = { .gpa = w->buf[s].gpa, .len = o->nsect * BLKT_SECTOR };
			uint8_t *p = vuf_gpa_to_ptr(w->t->vuf, b.gpa, b.len);
			int ret;

			if (reading)
				memset(p, 0xa5, b.len);
			else
				blkt_pattern(p, b.len, o->sector * BLKT_SECTOR, w->seed);
			blkt_req_build(&w->req[s], reading ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT,
				       o->sector, &b, 1);
			/* Now and then through an indirect table. */
			w->req[s].post_flags = (next % 3 == 0) ? VUF_POST_INDIRECT : 0;
			ret = blkt_try_post(w->t, w->q, &w->req[s]);
			if (ret) {
				werr(w, "queue %u: post: %s", w->q, strerror(-ret));
				return false;
			}
			w->slot_op[s] = (int)next++;
			inflight++;
			continue;
		}
		int n = blkt_try_reap(w->t, w->q, BLKT_WAIT_MS);

		if (n < 0) {
			werr(w, "queue %u: waiting for completions (%u in flight): %s", w->q, inflight,
			     strerror(-n));
			return false;
		}
		unsigned int before = w->completed;

		if (!collect(w, reading))
			return false;
		inflight -= w->completed - before;
	}
	return true;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	if (run_phase(w, false))
		run_phase(w, true);
	return NULL;
}

/* Threads of pid pinned to exactly one CPU, per CPU 0 and 1. */
static void count_pinned(pid_t pid, unsigned int *on0, unsigned int *on1)
{
	char path[64];
	DIR *d;
	struct dirent *e;

	*on0 = *on1 = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d))) {
		char p[320], line[256];
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/proc/%d/task/%s/status", (int)pid, e->d_name);
		f = fopen(p, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			if (!strcmp(line, "Cpus_allowed_list:\t0\n"))
				(*on0)++;
			else if (!strcmp(line, "Cpus_allowed_list:\t1\n"))
				(*on1)++;
		}
		fclose(f);
	}
	closedir(d);
}

static void mq_traffic(struct blkt *t, bool packed)
{
	static struct worker w[NQ];
	unsigned int on0, on1;

	blkt_make_file(t->file, DISK_BYTES, 0);
	blkt_spawn(t, (const char *[]){ "--num-queues", "4", "--cpus", "0,1", NULL });
	blkt_connect(t, &(struct blkt_conn_opts){ .nq = NQ, .packed = packed });
	/* The pollers pin themselves when they start: give them a moment. */
	for (unsigned int i = 0; i < 200; i++) {
		count_pinned(t->pid, &on0, &on1);
		if (on0 >= 1 && on1 >= 1)
			break;
		usleep(10000);
	}
	if (on0 < 1 || on1 < 1)
		fail_msg("expected a poller pinned to CPU 0 and one to CPU 1 (found %u and %u)", on0, on1);

	memset(w, 0, sizeof(w));
	for (unsigned int q = 0; q < NQ; q++) {
		struct worker *x = &w[q];

		x->t = t;
		x->q = q;
		x->seed = 500 + q + (packed ? 10 : 0);
		x->rng = 0x9e3779b9u * (q + 1);
		for (unsigned int i = 0; i < OPS; i++) {
			x->ops[i].sector = (uint64_t)q * AREA_SECT + (uint64_t)i * MAX_SECT;
			x->ops[i].nsect = 1 + xorshift(&x->rng) % MAX_SECT;
		}
		for (unsigned int s = 0; s < DEPTH; s++) {
			blkt_req_init(t, &x->req[s]);
			blkt_data(t, MAX_SECT * BLKT_SECTOR, 0, &x->buf[s].gpa);
			x->slot_op[s] = -1;
		}
	}
	for (unsigned int q = 0; q < NQ; q++)
		assert_int_equal(pthread_create(&w[q].thread, NULL, worker_main, &w[q]), 0);
	for (unsigned int q = 0; q < NQ; q++)
		pthread_join(w[q].thread, NULL);
	for (unsigned int q = 0; q < NQ; q++)
		if (w[q].err[0])
			fail_msg("%s", w[q].err);
	for (unsigned int q = 0; q < NQ; q++) {
		assert_int_equal(w[q].completed, 2 * OPS);
		for (unsigned int i = 0; i < OPS; i++)
			blkt_check_file(t->file, w[q].ops[i].sector * BLKT_SECTOR,
					w[q].ops[i].nsect * BLKT_SECTOR, w[q].seed);
	}
	blkt_pass(t);
}

static void test_mq_split(void **state)
{
	mq_traffic(*state, false);
}

static void test_mq_packed(void **state)
{
	mq_traffic(*state, true);
}

/*
 * Bursts larger than the engine's submission queue: a thousand writes
 * made available at once, then write-zeroes requests of max_write_zeroes_seg
 * ranges each (one engine operation per range, plus a sync in
 * writethrough mode): every request completes, and completes right.
 */
#define BURST 1000
#define WZ_REQS 64

static void burst(struct blkt *t, bool packed)
{
	static struct blkt_req r[BURST];
	struct virtio_blk_config c;
	uint32_t nr;

	blkt_make_file(t->file, (BURST + 8) * 8 * BLKT_SECTOR, 0);
	blkt_spawn(t, (const char *[]){ "--write-cache", "off", NULL });
	blkt_connect(t, &(struct blkt_conn_opts){ .packed = packed, .qsize = 1024 });
	blkt_get_config(t, &c);
	nr = le32toh(c.max_write_zeroes_seg);
	assert_true(nr >= 1 && nr * WZ_REQS <= BURST * 8);

	for (unsigned int i = 0; i < BURST; i++) {
		struct blkt_buf b = { .len = 8 * BLKT_SECTOR };
		uint8_t *p = blkt_data(t, b.len, 512, &b.gpa);

		blkt_pattern(p, b.len, (uint64_t)i * b.len, 1100);
		blkt_req_init(t, &r[i]);
		blkt_req_build(&r[i], VIRTIO_BLK_T_OUT, (uint64_t)i * 8, &b, 1);
		assert_int_equal(vuf_vq_post_flags(t->vq[0], r[i].seg, r[i].nseg, (uintptr_t)&r[i],
						   VUF_POST_INDIRECT), 0);
	}
	assert_true(vuf_vq_kick(t->vq[0]) >= 0);
	for (unsigned int i = 0; i < BURST; i++) {
		blkt_wait_req(t, 0, &r[i]);
		if (blkt_req_status(&r[i]) != VIRTIO_BLK_S_OK)
			fail_msg("write %u of the burst: status %u", i, blkt_req_status(&r[i]));
	}
	blkt_check_file(t->file, 0, (uint64_t)BURST * 8 * BLKT_SECTOR, 1100);

	/* Zero every other sector of the first nr * WZ_REQS * 2 sectors. */
	blkt_data_reset(t);
	for (unsigned int i = 0; i < WZ_REQS; i++) {
		struct blkt_buf b = { .len = nr * 16 };
		struct virtio_blk_discard_write_zeroes *g = blkt_data(t, b.len, 16, &b.gpa);

		for (unsigned int k = 0; k < nr; k++) {
			g[k].sector = htole64(((uint64_t)i * nr + k) * 2);
			g[k].num_sectors = htole32(1);
			g[k].flags = htole32(k % 2 ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0);
		}
		blkt_req_init(t, &r[i]);
		blkt_req_build(&r[i], VIRTIO_BLK_T_WRITE_ZEROES, 0, &b, 1);
		assert_int_equal(vuf_vq_post_flags(t->vq[0], r[i].seg, r[i].nseg, (uintptr_t)&r[i],
						   VUF_POST_INDIRECT), 0);
	}
	assert_true(vuf_vq_kick(t->vq[0]) >= 0);
	for (unsigned int i = 0; i < WZ_REQS; i++) {
		blkt_wait_req(t, 0, &r[i]);
		if (blkt_req_status(&r[i]) != VIRTIO_BLK_S_OK)
			fail_msg("write-zeroes %u: status %u", i, blkt_req_status(&r[i]));
	}
	for (uint64_t s = 0; s < (uint64_t)nr * WZ_REQS * 2; s++)
		blkt_check_file(t->file, s * BLKT_SECTOR, BLKT_SECTOR, s % 2 ? 1100 : 0);
	blkt_pass(t);
}

static void test_burst_split(void **state)
{
	burst(*state, false);
}

static void test_burst_packed(void **state)
{
	burst(*state, true);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mq_split, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_mq_packed, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_burst_split, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_burst_packed, blkt_setup, blkt_teardown),
	};

	blkt_init(argc, argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
