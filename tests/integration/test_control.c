// SPDX-License-Identifier: MIT
/*
 * Integration: device-level control requests on a live daemon.
 *
 *  - CONFIG: GET_CONFIG / SET_CONFIG round trip on vu-testdev's 16-byte
 *    config space (a completion counter and a writable word); a write the
 *    device refuses is nacked; SIGHUP makes the daemon bump the word and
 *    send CONFIG_CHANGE_MSG on the back-end channel (and survive without one).
 *  - STATUS: SET_STATUS / GET_STATUS round trip; RESET_DEVICE stops the
 *    queues and clears the status, and traffic works after a new setup.
 *  - VM stop / cont as QEMU does it: GET_VRING_BASE stops each queue and
 *    reports where it stopped; the queue restarts there, nothing lost.
 *  - Kick and call fds replaced on a running queue; a queue disabled and
 *    enabled again, with a kick in between (A.10).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "it.h"

#define F(bit) (1ull << (bit))

static void get_config(struct vuf *vuf, uint64_t cfg[2])
{
	assert_int_equal(vuf_get_config(vuf, 0, cfg, 16), 0);
}

static void test_config_round_trip(void **state)
{
	struct it_fixture *f = *state;
	struct it_fe_opts o = { .features = F(VIRTIO_RING_F_EVENT_IDX), .nqueues = 2 };
	const uint64_t word = 0x1122334455667788ull, zero = 0;
	uint64_t cfg[2], part;
	struct it_fe *fe;

	it_start(f, 0, NULL);
	fe = it_fe(f, &o);
	assert_true(vuf_has_protocol_feature(fe->vuf, VU_PROTOCOL_F_CONFIG));
	get_config(fe->vuf, cfg);
	assert_int_equal(cfg[0], 0);
	assert_int_equal(cfg[1], 0);
	it_assert_echo(fe->echo[0], it_echo_run(fe->echo[0], 300, IT_TIMEOUT_MS));
	it_assert_echo(fe->echo[1], it_echo_run(fe->echo[1], 200, IT_TIMEOUT_MS));
	get_config(fe->vuf, cfg);
	assert_int_equal(cfg[0], 500);          /* chains the device completed */

	assert_int_equal(vuf_set_config(fe->vuf, 8, &word, 8, 0), 0);
	get_config(fe->vuf, cfg);
	assert_int_equal(cfg[1], word);
	assert_int_equal(vuf_get_config(fe->vuf, 8, &part, 8), 0);
	assert_int_equal(part, word);
	assert_int_equal(vuf_get_config(fe->vuf, 12, &part, 4), 0);
	assert_int_equal((uint32_t)part, (uint32_t)(word >> 32));
	/* The counter is read-only: refused, and nothing changed. */
	assert_int_equal(vuf_set_config(fe->vuf, 0, &zero, 8, 0), -EIO);
	get_config(fe->vuf, cfg);
	assert_int_equal(cfg[0], 500);
	assert_int_equal(cfg[1], word);
	it_pass(f);
}

static void test_sighup_config_change_msg(void **state)
{
	struct it_fixture *f = *state;
	struct it_fe_opts o = { .features = F(VIRTIO_RING_F_EVENT_IDX), .nqueues = 1 };
	struct it_fe *fe;
	uint64_t cfg[2];
	struct vu_msg m;

	it_start(f, 0, NULL);
	fe = it_fe(f, &o);
	assert_true(vuf_backend_channel_fd(fe->vuf) >= 0);
	for (uint64_t gen = 1; gen <= 3; gen++) {
		assert_int_equal(kill(f->d[0].pid, SIGHUP), 0);
		assert_int_equal(vuf_backend_channel_recv(fe->vuf, &m, IT_TIMEOUT_MS), 0);
		vu_msg_close_fds(&m);
		assert_int_equal(m.hdr.request, VU_BACKEND_REQ_CONFIG_CHANGE_MSG);
		assert_int_equal(m.hdr.flags & VU_FLAG_VERSION_MASK, VU_VERSION);
		get_config(fe->vuf, cfg);
		assert_int_equal(cfg[1], gen);
	}
	it_assert_echo(fe->echo[0], it_echo_run(fe->echo[0], 200, IT_TIMEOUT_MS));
	it_fe_drop(f, fe);

	/* A front-end without a back-end channel: SIGHUP changes the config
	 * and the daemon goes on. */
	o.protocol = IT_PROTOCOL_ALL & ~F(VU_PROTOCOL_F_BACKEND_REQ);
	fe = it_fe(f, &o);
	assert_int_equal(vuf_backend_channel_fd(fe->vuf), -1);
	assert_int_equal(kill(f->d[0].pid, SIGHUP), 0);
	it_sleep_ms(50);
	assert_true(it_daemon_alive(&f->d[0]));
	get_config(fe->vuf, cfg);
	assert_int_equal(cfg[1], 4);
	it_assert_echo(fe->echo[0], it_echo_run(fe->echo[0], 200, IT_TIMEOUT_MS));
	it_pass(f);
}

/*
 * A front-end that never reads its back-end channel (a stopped QEMU):
 * config changes pile up there.  The daemon's control thread must not
 * block on that channel: the control path keeps answering, and SIGTERM
 * still ends the daemon cleanly.
 */
static void test_unread_backend_channel_does_not_block_daemon(void **state)
{
	struct it_fixture *f = *state;
	struct it_fe_opts o = { .features = F(VIRTIO_RING_F_EVENT_IDX), .nqueues = 1 };
	struct it_fe *fe;
	uint8_t status;
	uint64_t cfg[2];
	struct vu_msg m;
	unsigned int n;

	it_start(f, 0, NULL);
	fe = it_fe(f, &o);
	vuf_set_timeout(fe->vuf, 2000);
	for (n = 1; n <= 3000; n++) {
		assert_int_equal(kill(f->d[0].pid, SIGHUP), 0);
		/* Answered: the daemon handled that SIGHUP and is free again. */
		if (vuf_get_status(fe->vuf, &status))
			fail_msg("the control path stopped answering after %u config changes nobody read", n);
	}
	/* Most of them handled (pending SIGHUPs coalesce), far more than
	 * the channel holds: the rest were dropped. */
	get_config(fe->vuf, cfg);
	assert_true(cfg[1] >= 1000 && cfg[1] <= 3000);
	assert_true(it_log_count(&f->d[0], "CONFIG_CHANGE_MSG dropped") > 0);
	/* What was queued is whole messages; once read, the channel works again. */
	for (n = 0; vuf_backend_channel_recv(fe->vuf, &m, 0) == 0; n++) {
		vu_msg_close_fds(&m);
		assert_int_equal(m.hdr.request, VU_BACKEND_REQ_CONFIG_CHANGE_MSG);
		assert_int_equal(m.hdr.size, 0);
	}
	assert_true(n > 0);
	assert_int_equal(kill(f->d[0].pid, SIGHUP), 0);
	assert_int_equal(vuf_backend_channel_recv(fe->vuf, &m, IT_TIMEOUT_MS), 0);
	assert_int_equal(m.hdr.request, VU_BACKEND_REQ_CONFIG_CHANGE_MSG);
	it_assert_echo(fe->echo[0], it_echo_run(fe->echo[0], 200, IT_TIMEOUT_MS));
	it_pass(f);
}

static void test_status_and_reset_device(void **state)
{
	struct it_fixture *f = *state;
	const bool packed = f->priv_case != NULL;
	struct it_fe_opts o = { .features = F(VIRTIO_RING_F_EVENT_IDX) |
					    (packed ? F(VIRTIO_F_RING_PACKED) : 0),
				.nqueues = 1 };
	struct it_fe *fe;
	struct it_echo *e;
	uint8_t status;

	it_start(f, 0, NULL);
	fe = it_fe(f, &o);
	assert_int_equal(vuf_get_status(fe->vuf, &status), 0);
	assert_int_equal(status, IT_STATUS_DRIVER_OK);
	for (unsigned int v = 0; v < 256; v += 51) {
		assert_int_equal(vuf_set_status(fe->vuf, (uint8_t)v), 0);
		assert_int_equal(vuf_get_status(fe->vuf, &status), 0);
		assert_int_equal(status, v);
	}
	assert_int_equal(vuf_set_status(fe->vuf, IT_STATUS_DRIVER_OK), 0);
	it_assert_echo(fe->echo[0], it_echo_run(fe->echo[0], 500, IT_TIMEOUT_MS));

	/* Reset: the status is 0 and the queue does nothing any more. */
	assert_int_equal(vuf_reset_device(fe->vuf), 0);
	assert_int_equal(vuf_get_status(fe->vuf, &status), 0);
	assert_int_equal(status, 0);
	e = fe->echo[0];
	assert_int_equal(it_echo_post(e, 4, 0), 4);
	assert_int_equal(vuf_vq_kick_force(fe->vq[0]), 0);
	it_sleep_ms(100);
	assert_int_equal(it_echo_reap(e), 0);
	assert_true(it_daemon_alive(&f->d[0]));

	/* A new setup on the same connection, as a driver does after a reset. */
	it_echo_destroy(fe->echo[0]);
	fe->echo[0] = NULL;
	vuf_vq_destroy(fe->vq[0]);
	fe->vq[0] = NULL;
	assert_int_equal(vuf_set_features(fe->vuf, fe->features), 0);
	assert_int_equal(it_fe_add_queue(fe, 0, IT_GPA_DATA + IT_QUEUE_AREA(fe->qsize)), 0);
	assert_int_equal(vuf_mem_commit(fe->vuf), 0);
	assert_int_equal(vuf_vq_start(fe->vq[0]), 0);
	assert_int_equal(vuf_set_status(fe->vuf, IT_STATUS_DRIVER_OK), 0);
	it_assert_echo(fe->echo[0], it_echo_run(fe->echo[0], 1000, IT_TIMEOUT_MS));
	it_assert_echo(fe->echo[0], it_echo_check_all_done(fe->echo[0]));
	it_pass(f);
}

static void test_vm_stop_cont(void **state)
{
	struct it_fixture *f = *state;
	const bool packed = f->priv_case != NULL;
	struct it_fe_opts o = { .features = F(VIRTIO_RING_F_EVENT_IDX) | F(VIRTIO_RING_F_INDIRECT_DESC) |
					    (packed ? F(VIRTIO_F_RING_PACKED) : 0),
				.nqueues = 2 };
	struct it_fe *fe;

	it_start(f, 0, NULL);
	fe = it_fe(f, &o);
	for (unsigned int round = 0; round < 10; round++) {
		for (unsigned int q = 0; q < 2; q++) {
			struct it_echo *e = fe->echo[q];
			uint32_t base;

			/* Stopped with chains in flight, some not even kicked. */
			it_assert_echo(e, it_echo_run(e, 100, IT_TIMEOUT_MS));
			it_assert_echo(e, it_echo_post(e, 16, 0));
			assert_true(it_echo_kick(e) >= 0);
			it_assert_echo(e, it_echo_post(e, 8, 0));
			assert_int_equal(vuf_get_vring_base(fe->vuf, q, &base), 0);
			if (!packed)
				assert_int_equal((uint16_t)base,
						 vuf_vq_used_split(fe->vq[q])->idx);
		}
		/* Stopped: nothing moves. */
		for (unsigned int q = 0; q < 2; q++)
			it_assert_echo(fe->echo[q], it_echo_reap(fe->echo[q]));
		for (unsigned int q = 0; q < 2; q++) {
			unsigned int inflight = it_echo_inflight(fe->echo[q]);

			assert_int_equal(vuf_vq_kick_force(fe->vq[q]), 0);
			it_sleep_ms(20);
			assert_int_equal(it_echo_reap(fe->echo[q]), 0);
			assert_int_equal(it_echo_inflight(fe->echo[q]), inflight);
			assert_int_equal(vuf_vq_start(fe->vq[q]), 0);
		}
		for (unsigned int q = 0; q < 2; q++)
			it_assert_echo(fe->echo[q], it_echo_drain(fe->echo[q], IT_TIMEOUT_MS));
	}
	for (unsigned int q = 0; q < 2; q++)
		it_assert_echo(fe->echo[q], it_echo_check_all_done(fe->echo[q]));
	it_pass(f);
}

/* Reads an eventfd that must have been written within timeout_ms. */
static bool eventfd_signalled(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;

	if (poll(&p, 1, timeout_ms) != 1)
		return false;
	return read(fd, &v, sizeof(v)) == sizeof(v) && v > 0;
}

/*
 * QEMU sends SET_VRING_CALL (and may send SET_VRING_KICK) again on a
 * running queue when the guest's notifiers change.  The daemon must
 * signal the new call fd, wake up on the new kick fd, and no longer
 * listen to the old one.  The poller sleeps after every empty pass
 * (`never`), so each chain needs its kick.
 */
static void test_kick_call_replaced_while_running(void **state)
{
	struct it_fixture *f = *state;
	struct it_fe_opts o = { .features = F(VIRTIO_RING_F_EVENT_IDX), .nqueues = 1 };
	const uint64_t one = 1;
	struct it_fe *fe;
	struct it_echo *e;
	struct vuf_vq *vq;
	int kick, call;

	it_start(f, 0, (const char *const[]){ "--poll", "never", NULL });
	fe = it_fe(f, &o);
	e = fe->echo[0];
	vq = fe->vq[0];
	it_assert_echo(e, it_echo_run(e, 300, IT_TIMEOUT_MS));
	kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(kick >= 0 && call >= 0);
	assert_int_equal(vuf_set_vring_call(fe->vuf, 0, call), 0);
	assert_int_equal(vuf_set_vring_kick(fe->vuf, 0, kick), 0);
	for (unsigned int i = 0; i < 3; i++) {
		it_sleep_ms(20);
		assert_int_equal(it_echo_post(e, 1, 0), 1);
		/* The old kick fd is not listened to any more... */
		assert_int_equal(vuf_vq_kick_force(vq), 0);
		it_sleep_ms(50);
		assert_false(vuf_vq_pending(vq));
		/* ...the new one is, and the new call fd is signalled. */
		assert_int_equal(write(kick, &one, sizeof(one)), sizeof(one));
		assert_true(eventfd_signalled(call, IT_TIMEOUT_MS));
		assert_int_equal(it_echo_reap(e), 1);
	}
	/* Back to the driver's own fds: traffic as before, every completion signalled. */
	assert_int_equal(vuf_set_vring_call(fe->vuf, 0, vuf_vq_call_fd(vq)), 0);
	assert_int_equal(vuf_set_vring_kick(fe->vuf, 0, vuf_vq_kick_fd(vq)), 0);
	close(kick);
	close(call);
	it_assert_echo(e, it_echo_run(e, 1000, IT_TIMEOUT_MS));
	assert_int_equal(vuf_vq_stats(vq)->wait_fallbacks, 0);
	it_assert_echo(e, it_echo_check_all_done(e));
	it_pass(f);
}

/*
 * SET_VRING_ENABLE 0 stops a queue without resetting it; a kick while
 * it is disabled is not lost once it is enabled again (A.10), and the
 * other queue is not affected.
 */
static void test_vring_disable_enable(void **state)
{
	struct it_fixture *f = *state;
	struct it_fe_opts o = { .features = F(VIRTIO_RING_F_EVENT_IDX), .nqueues = 2 };
	struct it_fe *fe;
	struct it_echo *e;

	it_start(f, 0, (const char *const[]){ "--poll", "never", NULL });
	fe = it_fe(f, &o);
	e = fe->echo[1];
	for (unsigned int round = 0; round < 5; round++) {
		it_assert_echo(e, it_echo_run(e, 100, IT_TIMEOUT_MS));
		assert_int_equal(vuf_set_vring_enable(fe->vuf, 1, false), 0);
		assert_int_equal(it_echo_post(e, 8, 0), 8);
		assert_int_equal(vuf_vq_kick_force(fe->vq[1]), 0);
		it_assert_echo(fe->echo[0], it_echo_run(fe->echo[0], 200, IT_TIMEOUT_MS));
		it_sleep_ms(20);
		assert_int_equal(it_echo_reap(e), 0);
		assert_int_equal(vuf_set_vring_enable(fe->vuf, 1, true), 0);
		it_assert_echo(e, it_echo_wait_all(e, IT_TIMEOUT_MS));
	}
	it_assert_echo(e, it_echo_check_all_done(e));
	it_assert_echo(fe->echo[0], it_echo_check_all_done(fe->echo[0]));
	it_pass(f);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		{ "config_get_set_round_trip_readonly_word_refused", test_config_round_trip,
		  it_setup, it_teardown, NULL },
		{ "sighup_sends_config_change_msg_on_backend_channel", test_sighup_config_change_msg,
		  it_setup, it_teardown, NULL },
		{ "unread_backend_channel_does_not_block_the_daemon",
		  test_unread_backend_channel_does_not_block_daemon, it_setup, it_teardown, NULL },
		{ "status_round_trip_reset_device_stops_queue_split", test_status_and_reset_device,
		  it_setup, it_teardown, NULL },
		{ "status_round_trip_reset_device_stops_queue_packed", test_status_and_reset_device,
		  it_setup, it_teardown, (void *)1 },
		{ "vm_stop_cont_get_vring_base_restart_split", test_vm_stop_cont, it_setup,
		  it_teardown, NULL },
		{ "vm_stop_cont_get_vring_base_restart_packed", test_vm_stop_cont, it_setup,
		  it_teardown, (void *)1 },
		{ "kick_and_call_fds_replaced_while_running", test_kick_call_replaced_while_running,
		  it_setup, it_teardown, NULL },
		{ "vring_disable_enable_kick_while_disabled_not_lost_A10", test_vring_disable_enable,
		  it_setup, it_teardown, NULL },
	};

	return it_main(argc, argv, "integration_control", tests, VU_ARRAY_SIZE(tests));
}
