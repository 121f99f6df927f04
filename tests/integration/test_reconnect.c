// SPDX-License-Identifier: MIT
/*
 * Integration: the front-end going away and coming back, and the
 * daemon crashing under it.
 *
 * Reconnect (QEMU reconnect=1): the front-end drops the connection in
 * the middle of traffic and replays its whole state (memory as one
 * table, or as slots with ADD_MEM_REG); each queue resumes
 * at the index the used ring says, no chain lost or completed twice.
 * Chains posted and never kicked before the reconnect are found anyway
 * (SECURITY.md C.27: every queue is looked at once after a reconnect).
 *
 * Inflight tracking (INFLIGHT_SHMFD, SECURITY.md A.6): the daemon
 * (vu-testdev --hold) takes chains it never completes, is frozen with
 * SIGSTOP while more are posted, killed with SIGKILL, restarted on the
 * same socket; after the reconnect with the kept inflight area every
 * chain completes exactly once, the held ones through the device's
 * resubmission path.  Then the same with SIGKILL at random points of
 * busy traffic, many times over.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "it.h"
#include "vu_inflight.h"

#define F(bit) (1ull << (bit))

struct rc_case {
	bool packed;
	bool inflight;          /* with an inflight area, and memory as slots (ADD_MEM_REG) */
};

static uint64_t case_features(const struct rc_case *c)
{
	return F(VIRTIO_RING_F_EVENT_IDX) | (c->packed ? F(VIRTIO_F_RING_PACKED) : 0);
}

/* ---- reconnect in the middle of traffic ------------------------------ */

static void test_reconnect_mid_traffic(void **state)
{
	struct it_fixture *f = *state;
	const struct rc_case *c = f->priv_case;
	struct it_fe_opts o = { .features = case_features(c), .nqueues = 2, .inflight = c->inflight,
				.hot_add = c->inflight };
	struct it_fe *fe;

	it_start(f, 0, (const char *const[]){ "--num-queues", "2", NULL });
	fe = it_fe(f, &o);
	for (unsigned int round = 0; round < 20; round++) {
		for (unsigned int q = 0; q < 2; q++) {
			struct it_echo *e = fe->echo[q];

			/* A full ring, kicked, a few completions taken: the
			 * daemon is busy with the rest when the socket closes. */
			it_assert_echo(e, it_echo_post(e, ~0u, 0));
			assert_true(it_echo_kick(e) >= 0);
			it_assert_echo(e, it_echo_reap(e));
		}
		assert_int_equal(vuf_reconnect(fe->vuf, NULL, IT_TIMEOUT_MS), 0);
		for (unsigned int q = 0; q < 2; q++)
			it_assert_echo(fe->echo[q], it_echo_run(fe->echo[q], 50, IT_TIMEOUT_MS));
	}
	for (unsigned int q = 0; q < 2; q++) {
		it_assert_echo(fe->echo[q], it_echo_drain(fe->echo[q], IT_TIMEOUT_MS));
		it_assert_echo(fe->echo[q], it_echo_check_all_done(fe->echo[q]));
		assert_true(it_echo_completed(fe->echo[q]) >= 20 * 50);
	}
	assert_true(it_daemon_alive(&f->d[0]));
	assert_int_equal(it_log_count(&f->d[0], "front-end connected"), 21);
	it_pass(f);
}

/* ---- C.27: no kick needed after a reconnect -------------------------- */

static void test_reconnect_checks_queues_without_kick(void **state)
{
	struct it_fixture *f = *state;
	const struct rc_case *c = f->priv_case;
	struct it_fe_opts o = { .features = case_features(c), .nqueues = 2 };
	struct it_fe *fe;

	/* A poller that sleeps as soon as a pass finds nothing: after the
	 * reconnect, only the daemon's own wake-up can find the chains. */
	it_start(f, 0, (const char *const[]){ "--num-queues", "2", "--poll", "never", NULL });
	fe = it_fe(f, &o);
	for (unsigned int q = 0; q < 2; q++)
		it_assert_echo(fe->echo[q], it_echo_run(fe->echo[q], 100, IT_TIMEOUT_MS));
	/* The poller is asleep: chains posted without a kick stay where they are. */
	it_sleep_ms(50);
	for (unsigned int q = 0; q < 2; q++)
		assert_int_equal(it_echo_post(fe->echo[q], 8, 0), 8);
	it_sleep_ms(100);
	for (unsigned int q = 0; q < 2; q++) {
		assert_false(vuf_vq_pending(fe->vq[q]));
		assert_int_equal(it_echo_inflight(fe->echo[q]), 8);
	}
	assert_int_equal(vuf_reconnect(fe->vuf, NULL, IT_TIMEOUT_MS), 0);
	for (unsigned int q = 0; q < 2; q++) {
		uint64_t kicks = vuf_vq_stats(fe->vq[q])->kicks;

		it_assert_echo(fe->echo[q], it_echo_wait_all(fe->echo[q], IT_TIMEOUT_MS));
		assert_int_equal(vuf_vq_stats(fe->vq[q])->kicks, kicks);
		it_assert_echo(fe->echo[q], it_echo_check_all_done(fe->echo[q]));
	}
	it_pass(f);
}

/* ---- inflight: held chains, SIGSTOP, SIGKILL, restart ----------------- */

/* Entries of queue q's region marked in flight (heads, for packed). */
static unsigned int region_inflight(struct it_fe *fe, unsigned int q, bool packed)
{
	size_t size;
	uint8_t *area = vuf_inflight_area(fe->vuf, &size);
	uint64_t rs = vu_inflight_queue_region_size((uint16_t)fe->qsize);
	unsigned int n = 0;

	assert_non_null(area);
	assert_true((q + 1) * rs <= size);
	for (unsigned int i = 0; i < fe->qsize; i++) {
		if (packed) {
			const struct vu_inflight_region_packed *r = (const void *)(area + q * rs);

			n += __atomic_load_n(&r->desc[i].inflight, __ATOMIC_RELAXED) != 0;
		} else {
			const struct vu_inflight_region_split *r = (const void *)(area + q * rs);

			n += __atomic_load_n(&r->desc[i].inflight, __ATOMIC_RELAXED) != 0;
		}
	}
	return n;
}

static void test_inflight_kill_restart_resubmits(void **state)
{
	struct it_fixture *f = *state;
	const struct rc_case *c = f->priv_case;
	struct it_fe_opts o = { .features = case_features(c), .nqueues = 1, .inflight = true };
	const char *const hold[] = { "--num-queues", "1", "--hold", NULL };
	const char *const plain[] = { "--num-queues", "1", NULL };
	struct it_fe *fe;
	struct it_echo *e;
	struct vuf_vq *vq;
	uint64_t done;

	it_start(f, 0, hold);
	fe = it_fe(f, &o);
	e = fe->echo[0];
	vq = fe->vq[0];
	it_assert_echo(e, it_echo_run(e, 300, IT_TIMEOUT_MS));

	/* Held chains between normal ones: taken, never completed. */
	assert_int_equal(it_echo_post(e, 3, IT_POST_HOLD), 3);
	assert_int_equal(it_echo_post(e, 10, 0), 10);
	assert_int_equal(it_echo_post(e, 2, IT_POST_HOLD), 2);
	assert_int_equal(it_echo_post(e, 10, 0), 10);
	it_assert_echo(e, it_echo_drain(e, IT_TIMEOUT_MS));
	assert_int_equal(it_echo_inflight(e), 5);
	assert_int_equal(region_inflight(fe, 0, c->packed), 5);

	/* Frozen, the daemon cannot take what comes now. */
	assert_int_equal(it_daemon_freeze(&f->d[0]), 0);
	done = it_echo_completed(e);
	assert_int_equal(it_echo_post(e, 10, 0), 10);
	assert_true(it_echo_kick(e) >= 0);
	it_sleep_ms(100);
	assert_int_equal(it_echo_reap(e), 0);
	if (!c->packed) {
		uint16_t avail = vuf_vq_avail_split(vq)->idx, used = vuf_vq_used_split(vq)->idx;

		assert_int_equal((uint16_t)(avail - used), 15);
	}
	assert_int_equal(it_echo_inflight(e), 15);
	it_daemon_kill(&f->d[0]);

	/* A new daemon on the stale socket; the front-end replays its
	 * state with the inflight area, and kicks nothing. */
	it_start(f, 0, plain);
	assert_int_equal(vuf_reconnect(fe->vuf, NULL, IT_TIMEOUT_MS), 0);
	it_assert_echo(e, it_echo_wait_all(e, IT_TIMEOUT_MS));
	assert_int_equal(it_echo_completed(e), done + 15);
	assert_int_equal(it_echo_held(e), 0);
	it_assert_echo(e, it_echo_check_all_done(e));
	assert_int_equal(it_log_count(&f->d[0], "resubmitting 5 in-flight requests"), 1);
	assert_int_equal(region_inflight(fe, 0, c->packed), 0);
	/* And the queue goes on from there. */
	it_assert_echo(e, it_echo_run(e, 500, IT_TIMEOUT_MS));
	it_assert_echo(e, it_echo_check_all_done(e));
	it_pass(f);
}

/* ---- inflight: SIGKILL at random points of busy traffic ---------------- */

#define KILLS 12

static void test_inflight_random_kills_exactly_once(void **state)
{
	struct it_fixture *f = *state;
	const struct rc_case *c = f->priv_case;
	struct it_fe_opts o = { .features = case_features(c) | F(VIRTIO_RING_F_INDIRECT_DESC),
				.nqueues = 2, .inflight = true };
	const char *const args[] = { "--num-queues", "2", NULL };
	unsigned int seed = 0xc0ffee;
	struct it_fe *fe;

	it_start(f, 0, args);
	fe = it_fe(f, &o);
	for (unsigned int k = 0; k < KILLS; k++) {
		uint64_t until = vu_now_ns() + (5 + rand_r(&seed) % 30) * 1000000ull;

		while (vu_now_ns() < until) {
			for (unsigned int q = 0; q < 2; q++) {
				struct it_echo *e = fe->echo[q];

				it_assert_echo(e, it_echo_post(e, 32, 0));
				assert_true(it_echo_kick(e) >= 0);
				it_assert_echo(e, it_echo_reap(e));
			}
		}
		it_daemon_kill(&f->d[0]);
		it_start(f, 0, args);
		assert_int_equal(vuf_reconnect(fe->vuf, NULL, IT_TIMEOUT_MS), 0);
	}
	for (unsigned int q = 0; q < 2; q++) {
		struct it_echo *e = fe->echo[q];

		it_assert_echo(e, it_echo_wait_all(e, IT_TIMEOUT_MS));
		it_assert_echo(e, it_echo_check_all_done(e));
		it_assert_echo(e, it_echo_run(e, 200, IT_TIMEOUT_MS));
		print_message("queue %u: %llu chains across %u kills\n", q,
			      (unsigned long long)it_echo_completed(e), KILLS);
	}
	print_message("%u restarts resubmitted requests\n",
		      it_log_count(&f->d[0], "in-flight requests"));
	it_pass(f);
}

static const struct rc_case split = { false, false }, packed = { true, false };
static const struct rc_case split_inflight = { false, true }, packed_inflight = { true, true };

#define T(name, fn, c) { name, fn, it_setup, it_teardown, (void *)&(c) }

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T("reconnect_mid_traffic_split_resumes_at_used_index", test_reconnect_mid_traffic, split),
		T("reconnect_mid_traffic_packed_resumes_at_used_index", test_reconnect_mid_traffic, packed),
		T("reconnect_mid_traffic_split_inflight_area_mem_slots", test_reconnect_mid_traffic,
		  split_inflight),
		T("reconnect_mid_traffic_packed_inflight_area_mem_slots", test_reconnect_mid_traffic,
		  packed_inflight),
		T("reconnect_split_checks_queues_without_kick_C27",
		  test_reconnect_checks_queues_without_kick, split),
		T("reconnect_packed_checks_queues_without_kick_C27",
		  test_reconnect_checks_queues_without_kick, packed),
		T("inflight_split_sigkill_restart_resubmits_held_A6",
		  test_inflight_kill_restart_resubmits, split),
		T("inflight_packed_sigkill_restart_resubmits_held_A6",
		  test_inflight_kill_restart_resubmits, packed),
		T("inflight_split_random_sigkill_each_chain_completes_once_A6",
		  test_inflight_random_kills_exactly_once, split),
		T("inflight_packed_random_sigkill_each_chain_completes_once_A6",
		  test_inflight_random_kills_exactly_once, packed),
	};

	return it_main(argc, argv, "integration_reconnect", tests, VU_ARRAY_SIZE(tests));
}
