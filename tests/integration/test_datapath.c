// SPDX-License-Identifier: MIT
/*
 * Integration: the data path of the library in a real daemon.  QEMU's
 * negotiation, then thousands of echo chains of random shape on two
 * queues served by two pollers, for every ring layout and notification
 * scheme (split/packed, EVENT_IDX on/off, indirect on/off), every byte
 * checked; and the notification contract of the pollers: an idle
 * adaptive or `never` poller sleeps (CPU time from /proc) and a kick
 * wakes it, an `always` poller spins (as much as a busy loop of ours
 * gets at the same time: the machine may be shared).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "it.h"

#define CHAINS_PER_QUEUE 10000
#define RUN_TIMEOUT_MS 30000

/* The daemon's two pollers pinned to CPUs 0 and 1 when this process may use both. */
static const char *const *two_pollers_args(void)
{
	static const char *const pinned[] = { "--num-queues", "2", "--pollers", "2",
					      "--cpus", "0,1", NULL };
	static const char *const unpinned[] = { "--num-queues", "2", "--pollers", "2", NULL };
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_ISSET(0, &set) &&
	    CPU_ISSET(1, &set))
		return pinned;
	print_message("CPUs 0 and 1 not both available: pollers not pinned\n");
	return unpinned;
}

/* ---- negotiation ------------------------------------------------------- */

/* QEMU's handshake order; what the daemon offers and accepts. */
static void test_qemu_handshake_negotiates_offered_features(void **state)
{
	struct it_fixture *f = *state;
	struct it_fe_opts o = {
		.features = (1ull << VIRTIO_RING_F_EVENT_IDX) | (1ull << VIRTIO_RING_F_INDIRECT_DESC),
		.nqueues = 2, .inflight = true,
	};
	struct it_fe *fe;
	uint64_t v, offered;
	uint8_t status;

	it_start(f, 0, (const char *const[]){ "--num-queues", "2", NULL });
	fe = it_fe(f, &o);
	/* Every protocol feature the tests ask for is offered. */
	assert_int_equal(vuf_protocol_features(fe->vuf), IT_PROTOCOL_ALL);
	assert_int_equal(vuf_get_features(fe->vuf, &offered), 0);
	assert_true(offered & (1ull << VIRTIO_F_VERSION_1));
	assert_true(offered & (1ull << VIRTIO_F_RING_PACKED));
	assert_true(offered & (1ull << VHOST_F_LOG_ALL));
	assert_int_equal(fe->features, (1ull << VIRTIO_F_VERSION_1) | (1ull << VU_F_PROTOCOL_FEATURES) |
				       (1ull << VIRTIO_RING_F_EVENT_IDX) |
				       (1ull << VIRTIO_RING_F_INDIRECT_DESC));
	assert_int_equal(vuf_get_queue_num(fe->vuf, &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(vuf_get_max_mem_slots(fe->vuf, &v), 0);
	assert_true(v >= 8);
	assert_int_equal(vuf_get_status(fe->vuf, &status), 0);
	assert_int_equal(status, 0x0f);
	it_assert_echo(fe->echo[0], it_echo_run(fe->echo[0], 100, RUN_TIMEOUT_MS));
	it_assert_echo(fe->echo[1], it_echo_run(fe->echo[1], 100, RUN_TIMEOUT_MS));
	it_pass(f);
}

/* ---- echo traffic ---------------------------------------------------- */

struct traffic {
	const char *name;
	uint64_t features;
	unsigned int qsize;     /* 0: IT_QSIZE */
};

#define F(bit) (1ull << (bit))

static const struct traffic traffic_cases[] = {
	{ "split", 0 },
	{ "split_event_idx", F(VIRTIO_RING_F_EVENT_IDX) },
	{ "split_indirect", F(VIRTIO_RING_F_INDIRECT_DESC) },
	{ "split_event_idx_indirect", F(VIRTIO_RING_F_EVENT_IDX) | F(VIRTIO_RING_F_INDIRECT_DESC) },
	{ "packed", F(VIRTIO_F_RING_PACKED) },
	{ "packed_event_idx", F(VIRTIO_F_RING_PACKED) | F(VIRTIO_RING_F_EVENT_IDX) },
	{ "packed_indirect", F(VIRTIO_F_RING_PACKED) | F(VIRTIO_RING_F_INDIRECT_DESC) },
	{ "packed_event_idx_indirect",
	  F(VIRTIO_F_RING_PACKED) | F(VIRTIO_RING_F_EVENT_IDX) | F(VIRTIO_RING_F_INDIRECT_DESC) },
	/* Packed rings need not be a power of two: indexes wrap at 200. */
	{ "packed_event_idx_size_200", F(VIRTIO_F_RING_PACKED) | F(VIRTIO_RING_F_EVENT_IDX), 200 },
	{ "split_size_64", F(VIRTIO_RING_F_EVENT_IDX) | F(VIRTIO_RING_F_INDIRECT_DESC), 64 },
};

/*
 * Two queues on two pollers, one driver thread each: every chain
 * completes once with its echo, and every completion was signalled (no
 * completion found only by the driver's poll fallback: C.23).
 */
static void test_echo_two_queues_two_pollers(void **state)
{
	struct it_fixture *f = *state;
	const struct traffic *t = f->priv_case;
	struct it_fe_opts o = { .features = t->features, .nqueues = 2, .qsize = t->qsize };
	struct it_fe *fe;
	int ret[2];

	it_start(f, 0, two_pollers_args());
	fe = it_fe(f, &o);
	assert_int_equal(fe->features & t->features, t->features);
	for (unsigned int q = 0; q < 2; q++)
		assert_int_equal(it_echo_run_async(fe->echo[q], CHAINS_PER_QUEUE, RUN_TIMEOUT_MS), 0);
	for (unsigned int q = 0; q < 2; q++)
		ret[q] = it_echo_join(fe->echo[q]);
	for (unsigned int q = 0; q < 2; q++) {
		const struct vuf_vq_stats *st = vuf_vq_stats(fe->vq[q]);

		if (ret[q])
			fail_msg("%s queue %u: %s", t->name, q, it_echo_error(fe->echo[q]));
		it_assert_echo(fe->echo[q], it_echo_check_all_done(fe->echo[q]));
		assert_int_equal(st->completed, CHAINS_PER_QUEUE);
		assert_int_equal(st->bad_len, 0);
		if (st->wait_fallbacks)
			fail_msg("%s queue %u: %llu completions were not signalled", t->name, q,
				 (unsigned long long)st->wait_fallbacks);
	}
	it_pass(f);
}

/* ---- notifications and CPU use --------------------------------------- */

struct poll_case {
	const char *mode;
	bool sleeps;
};

struct spinner {
	pthread_t t;
	int stop;
	double share;           /* of one core, over its run */
};

static double thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A busy loop: what one spinning thread gets on this machine right now. */
static void *spin(void *arg)
{
	struct spinner *s = arg;
	uint64_t t0 = vu_now_ns();
	double c0 = thread_cpu_s();

	while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED))
		;
	s->share = (thread_cpu_s() - c0) / ((vu_now_ns() - t0) / 1e9);
	return NULL;
}

/* The daemon's CPU share over ms, and a reference spinner's over the same time. */
static double idle_cpu_share(pid_t pid, unsigned int ms, double *reference)
{
	struct spinner s = { 0 };
	double before, after;

	assert_int_equal(pthread_create(&s.t, NULL, spin, &s), 0);
	before = it_proc_cpu_s(pid);
	it_sleep_ms(ms);
	after = it_proc_cpu_s(pid);
	__atomic_store_n(&s.stop, 1, __ATOMIC_RELAXED);
	pthread_join(s.t, NULL);
	assert_true(before >= 0 && after >= before);
	*reference = s.share;
	return (after - before) / (ms / 1000.0);
}

/*
 * After traffic stops, a sleeping poller costs (almost) nothing over 2 s
 * and a chain posted without a kick waits for the kick, which wakes the
 * poller (the device re-enabled notifications before sleeping) and is
 * signalled back; a spinning poller burns a core and needs no kick.
 */
static void test_poller_idle_cpu_and_kick(void **state)
{
	struct it_fixture *f = *state;
	const struct poll_case *c = f->priv_case;
	struct it_fe_opts o = { .features = F(VIRTIO_RING_F_EVENT_IDX), .nqueues = 1 };
	struct it_fe *fe;
	struct it_echo *e;
	struct vuf_vq *vq;
	double share, ref;
	int kicked;

	it_start(f, 0, (const char *const[]){ "--num-queues", "1", "--poll", c->mode, NULL });
	fe = it_fe(f, &o);
	e = fe->echo[0];
	vq = fe->vq[0];
	it_assert_echo(e, it_echo_run(e, 2000, RUN_TIMEOUT_MS));
	it_sleep_ms(200);
	share = idle_cpu_share(f->d[0].pid, 2000, &ref);
	print_message("poll %s: the idle daemon used %.1f%% of a core over 2 s (a busy loop got %.1f%%)\n",
		      c->mode, share * 100, ref * 100);
	if (c->sleeps && share >= 0.10)
		fail_msg("poll %s: the idle daemon used %.0f%% of a core", c->mode, share * 100);
	/* A spinning poller gets what a busy loop gets (a whole core on an
	 * idle machine; less on a loaded one, hence the reference). */
	if (!c->sleeps && (share < 0.10 || share < 0.6 * ref))
		fail_msg("poll %s: the idle daemon used only %.0f%% of a core, a busy loop %.0f%%",
			 c->mode, share * 100, ref * 100);

	/* One chain, no kick. */
	assert_int_equal(it_echo_post(e, 1, 0), 1);
	it_sleep_ms(200);
	assert_int_equal(it_echo_reap(e), c->sleeps ? 0 : 1);
	if (c->sleeps) {
		kicked = it_echo_kick(e);
		assert_int_equal(kicked, 1);        /* the sleeping device asked for kicks */
		vuf_vq_set_wait_fallback(vq, 0);
		assert_int_equal(vuf_vq_wait(vq, IT_TIMEOUT_MS), 0);
		assert_int_equal(vuf_vq_stats(vq)->wait_fallbacks, 0);
		assert_int_equal(it_echo_reap(e), 1);
	}
	it_assert_echo(e, it_echo_check_all_done(e));
	it_pass(f);
}

static const struct poll_case poll_cases[] = {
	{ "adaptive", true },
	{ "never", true },
	{ "always", false },
};

int main(int argc, char **argv)
{
	static char names[VU_ARRAY_SIZE(traffic_cases) + VU_ARRAY_SIZE(poll_cases)][96];
	struct CMUnitTest tests[1 + VU_ARRAY_SIZE(traffic_cases) + VU_ARRAY_SIZE(poll_cases)];
	size_t n = 0, k = 0;

	tests[n++] = (struct CMUnitTest)cmocka_unit_test_setup_teardown(
		test_qemu_handshake_negotiates_offered_features, it_setup, it_teardown);
	for (size_t i = 0; i < VU_ARRAY_SIZE(traffic_cases); i++, k++) {
		snprintf(names[k], sizeof(names[k]), "echo_%s_two_queues_two_pollers",
			 traffic_cases[i].name);
		tests[n++] = (struct CMUnitTest){ names[k], test_echo_two_queues_two_pollers,
						  it_setup, it_teardown, (void *)&traffic_cases[i] };
	}
	for (size_t i = 0; i < VU_ARRAY_SIZE(poll_cases); i++, k++) {
		snprintf(names[k], sizeof(names[k]), "poll_%s_idle_cpu_%s", poll_cases[i].mode,
			 poll_cases[i].sleeps ? "low_and_kick_wakes" : "one_core_no_kick_needed");
		tests[n++] = (struct CMUnitTest){ names[k], test_poller_idle_cpu_and_kick,
						  it_setup, it_teardown, (void *)&poll_cases[i] };
	}
	return it_main(argc, argv, "integration_datapath", tests, n);
}
