// SPDX-License-Identifier: MIT
/*
 * Integration: front-ends that come and go, at any point and in any
 * shape, and what they leave behind in the daemon (SECURITY.md D.29,
 * A.1-A.3).
 *
 *  - 1000 connect / negotiate / memory / queue / close cycles: the
 *    daemon's fd count, mappings and RSS end where they began.
 *  - A front-end that disconnects after each step of QEMU's handshake:
 *    the daemon survives, gives back every fd and mapping of that
 *    front-end, and serves the next one.
 *  - Hostile messages over the real socket: sizes that lie, truncated
 *    messages, too many fds, unknown requests, repeated requests.  The
 *    daemon refuses (REPLY_ACK nack) or closes the connection, as each
 *    case calls for, and keeps no fd.
 *  - A second front-end while one is attached is turned away; the first
 *    keeps working.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "it.h"

#define F(bit) (1ull << (bit))
#define CYCLES 1000
#define RSS_BOUND_KB 2048

/* What the daemon holds with no front-end. */
struct footprint {
	int fds;
	int maps;
	long rss_kb;
};

static struct footprint footprint(pid_t pid)
{
	struct footprint fp = { it_proc_fds(pid), it_proc_maps(pid), it_proc_rss_kb(pid) };

	assert_true(fp.fds > 0 && fp.maps > 0 && fp.rss_kb > 0);
	return fp;
}

/* A front-end with one queue and some traffic, then closed. */
static void full_cycle(struct it_fixture *f, unsigned int chains)
{
	struct it_fe_opts o = { .features = F(VIRTIO_RING_F_EVENT_IDX), .nqueues = 1 };
	struct it_fe *fe;

	fe = it_fe(f, &o);
	if (chains)
		it_assert_echo(fe->echo[0], it_echo_run(fe->echo[0], chains, IT_TIMEOUT_MS));
	it_fe_drop(f, fe);
}

static void run_steps(struct it_fixture *f, size_t upto);

/*
 * Start the daemon, warm it up with a front-end that goes through every
 * step below and one plain one, and measure it idle.  (An allocator maps
 * memory the first time a size is asked for, AddressSanitizer's in
 * particular: that belongs to the baseline, not to a leak.)
 */
static struct footprint start_and_measure(struct it_fixture *f)
{
	it_start(f, 0, NULL);
	run_steps(f, SIZE_MAX);
	full_cycle(f, 100);
	it_sleep_ms(50);
	return footprint(f->d[0].pid);
}

/* The disconnect is handled asynchronously: wait for the fd count and mappings. */
static void assert_back_to(struct it_fixture *f, const struct footprint *base, const char *when)
{
	pid_t pid = f->d[0].pid;
	int fds, maps = 0;

	assert_true(it_daemon_alive(&f->d[0]));
	fds = it_wait_fds(pid, base->fds, 2000);
	for (int t = 0; t < 2000 && (maps = it_proc_maps(pid)) != base->maps; t++)
		it_sleep_ms(1);
	if (fds != base->fds || maps != base->maps)
		fail_msg("%s: the daemon holds %d fds and %d mappings, %d and %d before", when, fds,
			 maps, base->fds, base->maps);
}

/* ==================================================================== */
/* 1000 cycles (D.29)                                                   */
/* ==================================================================== */

/*
 * Under AddressSanitizer, freed memory waits in a quarantine (256 MB by
 * default) before reuse, which RSS would count: this daemon runs without
 * it, so that RSS measures leaks in that build too.  Other options are
 * kept; without ASan the variable is ignored.
 */
static void asan_no_quarantine(void)
{
	const char *old = getenv("ASAN_OPTIONS");
	char opts[512];

	snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=0:thread_local_quarantine_size_kb=0",
		 old ? old : "", old && *old ? ":" : "");
	setenv("ASAN_OPTIONS", opts, 1);
}

static void test_thousand_cycles_leave_fds_maps_rss_flat(void **state)
{
	struct it_fixture *f = *state;
	char *saved = getenv("ASAN_OPTIONS") ? strdup(getenv("ASAN_OPTIONS")) : NULL;
	struct footprint base, end;
	unsigned int connected;
	uint64_t t0;

	asan_no_quarantine();
	base = start_and_measure(f);
	if (saved)
		setenv("ASAN_OPTIONS", saved, 1);
	else
		unsetenv("ASAN_OPTIONS");
	free(saved);
	/* Let the allocator settle before taking the RSS baseline. */
	for (unsigned int i = 0; i < 20; i++)
		full_cycle(f, 4);
	it_sleep_ms(50);
	assert_back_to(f, &base, "after the warm-up");
	base = footprint(f->d[0].pid);
	connected = it_log_count(&f->d[0], "front-end connected");
	t0 = vu_now_ns();
	for (unsigned int i = 0; i < CYCLES; i++)
		full_cycle(f, 4);
	print_message("%u cycles in %.1f s\n", CYCLES, (vu_now_ns() - t0) / 1e9);
	assert_back_to(f, &base, "after 1000 cycles");
	end = footprint(f->d[0].pid);
	print_message("fds %d -> %d, mappings %d -> %d, RSS %ld -> %ld kB\n", base.fds, end.fds,
		      base.maps, end.maps, base.rss_kb, end.rss_kb);
	if (end.rss_kb - base.rss_kb > RSS_BOUND_KB)
		fail_msg("RSS grew by %ld kB over %u cycles", end.rss_kb - base.rss_kb, CYCLES);
	/* Each cycle was served (none turned away). */
	assert_int_equal(it_log_count(&f->d[0], "front-end connected"), connected + CYCLES);
	it_pass(f);
}

/* ==================================================================== */
/* Disconnect at each step of the handshake (D.29, A.10)                */
/* ==================================================================== */

struct hs {
	struct vuf *vuf;
	struct vuf_vq *vq;
	struct it_echo *e;
};

static int s_get_features(struct hs *h)
{
	uint64_t v;

	return vuf_get_features(h->vuf, &v);
}

static int s_protocol_features(struct hs *h)
{
	uint64_t v;
	int ret = vuf_get_protocol_features(h->vuf, &v);

	return ret ? ret : vuf_set_protocol_features(h->vuf, v & IT_PROTOCOL_ALL);
}

static int s_backend_channel(struct hs *h)
{
	return vuf_open_backend_channel(h->vuf);
}

static int s_owner(struct hs *h)
{
	return vuf_set_owner(h->vuf);
}

static int s_get_inflight(struct hs *h)
{
	return vuf_get_inflight(h->vuf, 1, IT_QSIZE, NULL, NULL);
}

static int s_set_inflight(struct hs *h)
{
	return vuf_set_inflight(h->vuf, -1, NULL);
}

static int s_features(struct hs *h)
{
	return vuf_set_features(h->vuf, F(VIRTIO_F_VERSION_1) | F(VU_F_PROTOCOL_FEATURES) |
				F(VIRTIO_RING_F_EVENT_IDX));
}

static int s_mem_table(struct hs *h)
{
	struct vuf_vq_opts vo = { .index = 0, .size = IT_QSIZE };
	int ret = vuf_mem_add(h->vuf, IT_GPA_RING, IT_RING_BYTES, 0);

	if (!ret)
		ret = vuf_mem_add(h->vuf, IT_GPA_DATA, IT_DATA_BYTES, VUF_MEM_OFFSET);
	if (ret)
		return ret;
	h->vq = vuf_vq_create(h->vuf, &vo);
	if (!h->vq)
		return -errno;
	h->e = it_echo_create(h->vuf, h->vq, IT_GPA_DATA, 0, 9);
	if (!h->e)
		return -ENOMEM;
	return vuf_mem_commit(h->vuf);
}

static int s_log_base(struct hs *h)
{
	int fd = memfd_create("it-log", MFD_CLOEXEC), ret;

	if (fd < 0 || ftruncate(fd, 8192) < 0)
		return -errno;
	ret = vuf_set_log_base(h->vuf, fd, 8192, 0);
	close(fd);
	return ret;
}

static int s_vring_num(struct hs *h)
{
	return vuf_set_vring_num(h->vuf, 0, IT_QSIZE);
}

static int s_vring_base(struct hs *h)
{
	return vuf_set_vring_base(h->vuf, 0, 0);
}

static int s_vring_addr(struct hs *h)
{
	uint64_t desc, driver, device;
	struct vhost_vring_addr a = { .index = 0 };

	vuf_vq_ring_gpas(h->vq, &desc, &driver, &device);
	a.desc_user_addr = desc + VUF_UVA_OFFSET;
	a.avail_user_addr = driver + VUF_UVA_OFFSET;
	a.used_user_addr = device + VUF_UVA_OFFSET;
	a.log_guest_addr = device;
	return vuf_set_vring_addr(h->vuf, &a);
}

static int s_vring_kick(struct hs *h)
{
	return vuf_set_vring_kick(h->vuf, 0, vuf_vq_kick_fd(h->vq));
}

static int s_vring_call(struct hs *h)
{
	return vuf_set_vring_call(h->vuf, 0, vuf_vq_call_fd(h->vq));
}

static int s_vring_enable(struct hs *h)
{
	return vuf_set_vring_enable(h->vuf, 0, true);
}

static int s_status(struct hs *h)
{
	return vuf_set_status(h->vuf, IT_STATUS_DRIVER_OK);
}

static int s_traffic(struct hs *h)
{
	return it_echo_run(h->e, 200, IT_TIMEOUT_MS);
}

static int s_posted_not_kicked(struct hs *h)
{
	int ret = it_echo_post(h->e, 8, 0);

	return ret < 0 ? ret : 0;
}

static int s_ring_full_kicked(struct hs *h)
{
	int ret = it_echo_post(h->e, ~0u, 0);

	return ret < 0 ? ret : (it_echo_kick(h->e) < 0 ? -EIO : 0);
}

static int s_add_mem_reg(struct hs *h)
{
	return vuf_mem_hot_add(h->vuf, 0x08000000, 1 << 20, 0);
}

static int s_get_vring_base(struct hs *h)
{
	uint32_t base;

	return vuf_get_vring_base(h->vuf, 0, &base);
}

static int s_reset_device(struct hs *h)
{
	return vuf_reset_device(h->vuf);
}

struct step {
	const char *name;
	int (*fn)(struct hs *h);
};

/* QEMU's order (vhost-user-blk with inflight and a backend channel), then traffic. */
static const struct step steps[] = {
	{ "get_features", s_get_features },
	{ "set_protocol_features", s_protocol_features },
	{ "set_backend_req_fd", s_backend_channel },
	{ "set_owner", s_owner },
	{ "get_inflight_fd", s_get_inflight },
	{ "set_inflight_fd", s_set_inflight },
	{ "set_features", s_features },
	{ "set_mem_table", s_mem_table },
	{ "set_log_base", s_log_base },
	{ "set_vring_num", s_vring_num },
	{ "set_vring_base", s_vring_base },
	{ "set_vring_addr", s_vring_addr },
	{ "set_vring_kick", s_vring_kick },
	{ "set_vring_call", s_vring_call },
	{ "set_vring_enable", s_vring_enable },
	{ "set_status", s_status },
	{ "some_traffic", s_traffic },
	{ "posting_without_kick", s_posted_not_kicked },
	{ "kicking_a_full_ring", s_ring_full_kicked },
	{ "add_mem_reg", s_add_mem_reg },
	{ "get_vring_base", s_get_vring_base },
	{ "reset_device", s_reset_device },
};

/* A front-end that goes through steps[0..upto] and leaves. */
static void run_steps(struct it_fixture *f, size_t upto)
{
	struct hs h = { 0 };

	h.vuf = vuf_connect(f->sock, IT_TIMEOUT_MS);
	assert_non_null(h.vuf);
	for (size_t i = 0; i < VU_ARRAY_SIZE(steps) && i <= upto; i++) {
		int ret = steps[i].fn(&h);

		if (ret) {
			print_error("step %s: %d (%s)\n", steps[i].name, ret,
				    h.e ? it_echo_error(h.e) : strerror(-ret));
			it_echo_destroy(h.e);
			vuf_close(h.vuf);
			fail();
		}
	}
	it_echo_destroy(h.e);
	vuf_close(h.vuf);
}

static void test_disconnect_after_step(void **state)
{
	struct it_fixture *f = *state;
	const struct step *last = f->priv_case;
	struct footprint base;

	base = start_and_measure(f);
	run_steps(f, (size_t)(last - steps));
	assert_back_to(f, &base, "after the front-end left");
	full_cycle(f, 200);
	assert_back_to(f, &base, "after the next front-end");
	it_pass(f);
}

/* ==================================================================== */
/* Hostile messages (A.1, A.2, A.3)                                     */
/* ==================================================================== */

/* Header (and payload) as raw bytes, with nfds fresh eventfds attached. */
static int send_msg(struct vuf *vuf, uint32_t request, uint32_t flags, uint32_t size,
		    const void *payload, uint32_t sent, unsigned int nfds)
{
	uint8_t buf[sizeof(struct vu_msg_hdr) + VU_MAX_PAYLOAD];
	struct vu_msg_hdr h = { request, flags, size };
	int fds[32];
	int ret;

	assert_true(nfds <= 32 && sent <= VU_MAX_PAYLOAD);
	memcpy(buf, &h, sizeof(h));
	if (sent)
		memcpy(buf + sizeof(h), payload, sent);
	for (unsigned int i = 0; i < nfds; i++) {
		fds[i] = eventfd(0, EFD_CLOEXEC);
		assert_true(fds[i] >= 0);
	}
	ret = vuf_send_raw(vuf, buf, sizeof(h) + sent, fds, nfds);
	for (unsigned int i = 0; i < nfds; i++)
		close(fds[i]);
	return ret;
}

/* The reply to a request sent with NEED_REPLY: its u64 (0 = accepted). */
static uint64_t ack_of(struct vuf *vuf, uint32_t request)
{
	struct vu_msg m;

	assert_int_equal(vuf_recv(vuf, &m, IT_TIMEOUT_MS), 0);
	vu_msg_close_fds(&m);
	assert_int_equal(m.hdr.request, request);
	assert_true(m.hdr.flags & VU_FLAG_REPLY);
	assert_int_equal(m.hdr.size, sizeof(uint64_t));
	return m.payload.u64;
}

/* The connection still answers. */
static void assert_usable(struct vuf *vuf)
{
	uint64_t v;

	assert_int_equal(vuf_get_features(vuf, &v), 0);
}

static struct vuf *negotiated(struct it_fixture *f)
{
	struct vuf *vuf = vuf_connect(f->sock, IT_TIMEOUT_MS);

	assert_non_null(vuf);
	assert_int_equal(vuf_negotiate(vuf, F(VIRTIO_F_VERSION_1), IT_PROTOCOL_ALL, NULL), 0);
	assert_true(vuf_has_protocol_feature(vuf, VU_PROTOCOL_F_REPLY_ACK));
	return vuf;
}

#define V1 VU_VERSION
#define NEED (VU_VERSION | VU_FLAG_NEED_REPLY)

static void h_oversized_header(struct it_fixture *f, struct vuf *vuf, const struct footprint *b)
{
	(void)f;
	(void)b;
	assert_int_equal(send_msg(vuf, VU_REQ_GET_FEATURES, V1, 0xffffffffu, NULL, 0, 0), 0);
	assert_int_equal(vuf_peer_closed(vuf, IT_TIMEOUT_MS), 1);
}

static void h_size_one_above_max(struct it_fixture *f, struct vuf *vuf, const struct footprint *b)
{
	static uint8_t junk[VU_MAX_PAYLOAD];

	(void)f;
	(void)b;
	/* The payload is there (as much as fits): the daemon must not read it. */
	assert_int_equal(send_msg(vuf, VU_REQ_SET_MEM_TABLE, V1, VU_MAX_PAYLOAD + 1, junk,
				  VU_MAX_PAYLOAD, 0), 0);
	assert_int_equal(vuf_peer_closed(vuf, IT_TIMEOUT_MS), 1);
}

static void h_truncated_header(struct it_fixture *f, struct vuf *vuf, const struct footprint *b)
{
	uint32_t half[2] = { VU_REQ_GET_FEATURES, V1 };

	(void)f;
	(void)b;
	assert_int_equal(vuf_send_raw(vuf, half, 6, NULL, 0), 0);
}

static void h_truncated_payload(struct it_fixture *f, struct vuf *vuf, const struct footprint *b)
{
	uint64_t v = 0;

	(void)f;
	(void)b;
	assert_int_equal(send_msg(vuf, VU_REQ_SET_FEATURES, V1, 8, &v, 4, 2), 0);
}

static void h_payload_size_mismatch(struct it_fixture *f, struct vuf *vuf, const struct footprint *b)
{
	uint32_t v = 0;

	(void)f;
	(void)b;
	assert_int_equal(send_msg(vuf, VU_REQ_SET_FEATURES, NEED, 4, &v, 4, 0), 0);
	assert_int_equal(ack_of(vuf, VU_REQ_SET_FEATURES), EINVAL);
	assert_usable(vuf);
}

static void h_unknown_request(struct it_fixture *f, struct vuf *vuf, const struct footprint *b)
{
	uint64_t v = 0;

	(void)f;
	(void)b;
	assert_int_equal(send_msg(vuf, 99, NEED, 8, &v, 8, 0), 0);
	assert_true(ack_of(vuf, 99) != 0);
	assert_int_equal(send_msg(vuf, 0x7fffffffu, V1, 8, &v, 8, 0), 0);
	assert_usable(vuf);
}

static void h_unsupported_must_reply(struct it_fixture *f, struct vuf *vuf, const struct footprint *b)
{
	uint8_t uuid[16] = { 0 };

	(void)f;
	(void)b;
	/* GET_SHARED_OBJECT expects an answer; none can be right. */
	assert_int_equal(send_msg(vuf, VU_REQ_GET_SHARED_OBJECT, V1, 16, uuid, 16, 0), 0);
	assert_int_equal(vuf_peer_closed(vuf, IT_TIMEOUT_MS), 1);
}

static void h_bad_version(struct it_fixture *f, struct vuf *vuf, const struct footprint *b)
{
	(void)f;
	(void)b;
	assert_int_equal(send_msg(vuf, VU_REQ_SET_OWNER, 2 | VU_FLAG_NEED_REPLY, 0, NULL, 0, 0), 0);
	assert_true(ack_of(vuf, VU_REQ_SET_OWNER) != 0);
	assert_usable(vuf);
}

static void h_twenty_fds(struct it_fixture *f, struct vuf *vuf, const struct footprint *b)
{
	(void)f;
	(void)b;
	assert_int_equal(send_msg(vuf, VU_REQ_SET_OWNER, NEED, 0, NULL, 0, 20), 0);
	assert_int_equal(vuf_peer_closed(vuf, IT_TIMEOUT_MS), 1);
}

static void h_fds_on_request_taking_none(struct it_fixture *f, struct vuf *vuf,
					 const struct footprint *b)
{
	assert_int_equal(send_msg(vuf, VU_REQ_SET_OWNER, NEED, 0, NULL, 0, 8), 0);
	assert_true(ack_of(vuf, VU_REQ_SET_OWNER) != 0);
	/* Closed at once, not at the disconnect: the connection is all it holds. */
	assert_int_equal(it_proc_fds(f->d[0].pid), b->fds + 1);
	assert_usable(vuf);
}

static void h_two_fds_on_vring_call(struct it_fixture *f, struct vuf *vuf,
				    const struct footprint *b)
{
	uint64_t index = 0;

	assert_int_equal(send_msg(vuf, VU_REQ_SET_VRING_CALL, NEED, 8, &index, 8, 2), 0);
	assert_true(ack_of(vuf, VU_REQ_SET_VRING_CALL) != 0);
	assert_int_equal(it_proc_fds(f->d[0].pid), b->fds + 1);
	assert_usable(vuf);
}

static void h_mem_table_fd_mismatch(struct it_fixture *f, struct vuf *vuf,
				    const struct footprint *b)
{
	struct vu_mem_table_desc t = { .nregions = 2 };
	uint32_t size = offsetof(struct vu_mem_table_desc, regions) + 2 * sizeof(t.regions[0]);

	t.regions[0] = (struct vu_mem_region_desc){ 0, 4096, 0x10000, 0 };
	t.regions[1] = (struct vu_mem_region_desc){ 8192, 4096, 0x20000, 0 };
	assert_int_equal(send_msg(vuf, VU_REQ_SET_MEM_TABLE, NEED, size, &t, size, 1), 0);
	assert_true(ack_of(vuf, VU_REQ_SET_MEM_TABLE) != 0);
	assert_int_equal(it_proc_fds(f->d[0].pid), b->fds + 1);
	assert_usable(vuf);
}

/* The same request 50 times: no fd or mapping piles up (A.3). */
static void h_repeated_requests(struct it_fixture *f, struct vuf *vuf, const struct footprint *b)
{
	pid_t pid = f->d[0].pid;
	int fds = 0, maps = 0, logfd;

	(void)b;
	assert_int_equal(vuf_mem_add(vuf, IT_GPA_RING, 1 << 20, 0), 0);
	assert_int_equal(vuf_mem_add(vuf, IT_GPA_DATA, 1 << 20, 0), 0);
	logfd = memfd_create("it-log", MFD_CLOEXEC);
	assert_true(logfd >= 0 && ftruncate(logfd, 4096) == 0);
	for (unsigned int i = 0; i < 50; i++) {
		int call = eventfd(0, EFD_CLOEXEC);

		assert_int_equal(vuf_mem_commit(vuf), 0);
		assert_int_equal(vuf_set_log_base(vuf, logfd, 4096, 0), 0);
		assert_int_equal(vuf_set_vring_call(vuf, 0, call), 0);
		assert_int_equal(vuf_set_vring_kick(vuf, 1, call), -EIO);  /* no ring: refused */
		assert_int_equal(vuf_get_inflight(vuf, 1, 64, NULL, NULL), 0);
		assert_int_equal(vuf_set_inflight(vuf, -1, NULL), 0);
		close(call);
		if (i == 0) {
			fds = it_proc_fds(pid);
			maps = it_proc_maps(pid);
		}
	}
	assert_int_equal(it_proc_fds(pid), fds);
	assert_int_equal(it_proc_maps(pid), maps);
	close(logfd);
	assert_usable(vuf);
}

struct hostile {
	const char *name;
	bool negotiate;         /* REPLY_ACK negotiated first */
	void (*fn)(struct it_fixture *f, struct vuf *vuf, const struct footprint *base);
};

static const struct hostile hostile_cases[] = {
	{ "hostile_header_size_0xffffffff_closes_A1", false, h_oversized_header },
	{ "hostile_header_size_above_max_payload_closes_A1", true, h_size_one_above_max },
	{ "hostile_truncated_header_then_close_A1", false, h_truncated_header },
	{ "hostile_truncated_payload_with_fds_then_close_A1_A2", true, h_truncated_payload },
	{ "hostile_payload_size_wrong_for_request_refused_A1", true, h_payload_size_mismatch },
	{ "hostile_unknown_request_refused_A1", true, h_unknown_request },
	{ "hostile_unsupported_request_that_needs_a_reply_closes_A1", true, h_unsupported_must_reply },
	{ "hostile_bad_header_version_refused_A1", true, h_bad_version },
	{ "hostile_twenty_fds_attached_closes_A2", true, h_twenty_fds },
	{ "hostile_fds_on_request_taking_none_closed_at_once_A2", true, h_fds_on_request_taking_none },
	{ "hostile_two_fds_on_set_vring_call_closed_at_once_A2", true, h_two_fds_on_vring_call },
	{ "hostile_mem_table_regions_fds_mismatch_closed_A2", true, h_mem_table_fd_mismatch },
	{ "hostile_repeated_requests_hold_no_extra_fd_or_map_A3", true, h_repeated_requests },
};

static void test_hostile(void **state)
{
	struct it_fixture *f = *state;
	const struct hostile *c = f->priv_case;
	struct footprint base;
	struct vuf *vuf;

	base = start_and_measure(f);
	if (c->negotiate) {
		vuf = negotiated(f);
	} else {
		vuf = vuf_connect(f->sock, IT_TIMEOUT_MS);
		assert_non_null(vuf);
	}
	/* Registered nowhere: closed here, also when an assertion fails. */
	f->cleanup = (void (*)(void *))vuf_close;
	f->cleanup_arg = vuf;
	c->fn(f, vuf, &base);
	f->cleanup = NULL;
	vuf_close(vuf);
	assert_back_to(f, &base, "after the hostile front-end left");
	full_cycle(f, 200);
	assert_back_to(f, &base, "after the next front-end");
	it_pass(f);
}

/* ==================================================================== */
/* A second front-end                                                   */
/* ==================================================================== */

static void test_second_frontend_refused_first_keeps_working(void **state)
{
	struct it_fixture *f = *state;
	struct it_fe_opts o = { .features = F(VIRTIO_RING_F_EVENT_IDX), .nqueues = 1 };
	struct footprint base;
	struct it_fe *fe;
	struct vuf *second;
	uint8_t status;

	base = start_and_measure(f);
	fe = it_fe(f, &o);
	it_assert_echo(fe->echo[0], it_echo_run(fe->echo[0], 500, IT_TIMEOUT_MS));
	for (unsigned int i = 0; i < 3; i++) {
		second = vuf_connect(f->sock, IT_TIMEOUT_MS);
		assert_non_null(second);
		assert_int_equal(vuf_peer_closed(second, IT_TIMEOUT_MS), 1);
		vuf_close(second);
		/* Meanwhile the first one carries on. */
		it_assert_echo(fe->echo[0], it_echo_run(fe->echo[0], 500, IT_TIMEOUT_MS));
		assert_int_equal(vuf_get_status(fe->vuf, &status), 0);
		assert_int_equal(status, IT_STATUS_DRIVER_OK);
	}
	assert_true(it_log_count(&f->d[0], "refusing a second front-end") >= 3);
	it_assert_echo(fe->echo[0], it_echo_check_all_done(fe->echo[0]));
	it_fe_drop(f, fe);
	assert_back_to(f, &base, "after the first front-end left");
	full_cycle(f, 100);
	it_pass(f);
}

/* A plain connected socket (the daemon's listen backlog takes it while frozen). */
static int connect_raw(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0 && strlen(path) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/*
 * A front-end that left before the daemon even accepted it (a probe, a
 * crashed QEMU) must not make the daemon turn away the next one: both
 * wait in the backlog while the daemon is frozen; the first is accepted
 * and gone, the second must be served.
 */
static void test_frontend_after_one_gone_before_accept_is_served(void **state)
{
	struct it_fixture *f = *state;
	struct it_fe_opts o = { .features = F(VIRTIO_RING_F_EVENT_IDX), .nqueues = 1 };
	struct footprint base;
	struct vuf *gone;
	struct it_fe *fe;
	int fd;

	base = start_and_measure(f);
	for (unsigned int round = 0; round < 2; round++) {
		assert_int_equal(it_daemon_freeze(&f->d[0]), 0);
		gone = vuf_connect(f->sock, IT_TIMEOUT_MS);
		assert_non_null(gone);
		/* The first time it leaves without a word, then after a message. */
		if (round)
			assert_int_equal(vuf_set_owner(gone), 0);
		vuf_close(gone);
		fd = connect_raw(f->sock);
		assert_int_equal(kill(f->d[0].pid, SIGCONT), 0);
		if (it_fe_start_fd(fd, &o, &fe))
			fail_msg("round %u: the front-end after the one that left was refused", round);
		it_fe_register(f, fe);
		it_assert_echo(fe->echo[0], it_echo_run(fe->echo[0], 200, IT_TIMEOUT_MS));
		it_fe_drop(f, fe);
		assert_back_to(f, &base, "after both left");
	}
	it_pass(f);
}

struct pump {
	struct it_echo *e;
	pthread_t t;
	int stop;
};

/* Traffic until told to stop; errors are expected once the daemon is gone. */
static void *pump_main(void *arg)
{
	struct pump *p = arg;

	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		if (it_echo_post(p->e, 16, 0) < 0 || it_echo_kick(p->e) < 0 || it_echo_reap(p->e) < 0)
			break;
		vuf_vq_wait(it_echo_vq(p->e), 5);
	}
	return NULL;
}

static void pumps_stop(void *arg)
{
	struct pump *p = arg;

	for (unsigned int q = 0; q < 2; q++) {
		if (!p[q].e)
			continue;
		__atomic_store_n(&p[q].stop, 1, __ATOMIC_RELEASE);
		pthread_join(p[q].t, NULL);
		p[q].e = NULL;
	}
}

/* systemd stops the daemon while a guest is busy: a clean exit all the same. */
static void test_sigterm_under_traffic_exits_cleanly(void **state)
{
	struct it_fixture *f = *state;
	struct it_fe_opts o = { .features = F(VIRTIO_RING_F_EVENT_IDX), .nqueues = 2 };
	static struct pump p[2];
	struct it_fe *fe;
	int status;

	memset(p, 0, sizeof(p));
	it_start(f, 0, (const char *const[]){ "--pollers", "2", NULL });
	fe = it_fe(f, &o);
	f->cleanup = pumps_stop;
	f->cleanup_arg = p;
	for (unsigned int q = 0; q < 2; q++) {
		p[q].e = fe->echo[q];
		assert_int_equal(pthread_create(&p[q].t, NULL, pump_main, &p[q]), 0);
	}
	it_sleep_ms(200);
	assert_true(it_echo_completed(fe->echo[0]) > 0 && it_echo_completed(fe->echo[1]) > 0);
	assert_int_equal(kill(f->d[0].pid, SIGTERM), 0);
	status = it_daemon_wait_exit(&f->d[0], IT_TIMEOUT_MS);
	pumps_stop(p);
	if (status < 0)
		fail_msg("the daemon did not exit within %d ms of SIGTERM", IT_TIMEOUT_MS);
	f->d[0].status = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the daemon's exit after SIGTERM under traffic: wait status 0x%x", status);
	it_pass(f);
}

int main(int argc, char **argv)
{
	static char names[VU_ARRAY_SIZE(steps)][64];
	struct CMUnitTest tests[4 + VU_ARRAY_SIZE(steps) + VU_ARRAY_SIZE(hostile_cases)];
	size_t n = 0;

	tests[n++] = (struct CMUnitTest){ "thousand_cycles_leave_fds_maps_rss_flat_D29",
					  test_thousand_cycles_leave_fds_maps_rss_flat, it_setup,
					  it_teardown, NULL };
	for (size_t i = 0; i < VU_ARRAY_SIZE(steps); i++) {
		snprintf(names[i], sizeof(names[i]), "disconnect_after_%s_D29", steps[i].name);
		tests[n++] = (struct CMUnitTest){ names[i], test_disconnect_after_step, it_setup,
						  it_teardown, (void *)&steps[i] };
	}
	for (size_t i = 0; i < VU_ARRAY_SIZE(hostile_cases); i++)
		tests[n++] = (struct CMUnitTest){ hostile_cases[i].name, test_hostile, it_setup,
						  it_teardown, (void *)&hostile_cases[i] };
	tests[n++] = (struct CMUnitTest){ "second_frontend_refused_first_keeps_working",
					  test_second_frontend_refused_first_keeps_working,
					  it_setup, it_teardown, NULL };
	tests[n++] = (struct CMUnitTest){ "frontend_after_one_gone_before_accept_is_served_D29",
					  test_frontend_after_one_gone_before_accept_is_served,
					  it_setup, it_teardown, NULL };
	tests[n++] = (struct CMUnitTest){ "sigterm_under_traffic_exits_cleanly",
					  test_sigterm_under_traffic_exits_cleanly, it_setup,
					  it_teardown, NULL };
	return it_main(argc, argv, "integration_lifecycle", tests, n);
}
