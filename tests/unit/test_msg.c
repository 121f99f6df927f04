// SPDX-License-Identifier: MIT
/*
 * Unit tests of message I/O (common/msg.c): vu_msg_recv() and
 * vu_msg_send() over a Unix socketpair, with recvmsg() wrapped
 * (-Wl,--wrap=recvmsg) to see the descriptors the kernel delivered and to
 * inject short reads, truncated control data and errors.
 *
 * The rule under test (SECURITY.md A.1, A.2): a message that is truncated,
 * oversized or carries too many descriptors is refused, and every
 * descriptor that arrived with it is closed, so that a hostile front-end
 * cannot exhaust ours.  Each test also checks that the process has as
 * many open fds at the end as at the start.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "vu_msg.h"
#include "vu_util.h"

/* ---- recvmsg() wrapper ----------------------------------------------------- */

ssize_t __real_recvmsg(int sock, struct msghdr *mh, int flags);
ssize_t __wrap_recvmsg(int sock, struct msghdr *mh, int flags);

enum inject {
	INJ_NONE,
	INJ_EINTR,      /* fail with EINTR once, then behave */
	INJ_EIO,        /* fail with EIO */
	INJ_SHORT,      /* read at most short_len bytes */
	INJ_CTRUNC,     /* report the control data as truncated */
};

static enum inject inject;
static size_t short_len;
static unsigned int recvmsg_calls;
/* Descriptors the kernel handed over in the last recvmsg(). */
static int got_fds[64];
static unsigned int ngot_fds;

ssize_t __wrap_recvmsg(int sock, struct msghdr *mh, int flags)
{
	size_t saved_len = 0;
	ssize_t n;

	recvmsg_calls++;
	switch (inject) {
	case INJ_EINTR:
		inject = INJ_NONE;
		errno = EINTR;
		return -1;
	case INJ_EIO:
		errno = EIO;
		return -1;
	case INJ_SHORT:
		saved_len = mh->msg_iov[0].iov_len;
		if (short_len < saved_len)
			mh->msg_iov[0].iov_len = short_len;
		break;
	default:
		break;
	}
	n = __real_recvmsg(sock, mh, flags);
	if (inject == INJ_SHORT)
		mh->msg_iov[0].iov_len = saved_len;
	ngot_fds = 0;
	if (n >= 0) {
		for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t i = 0; i < k && ngot_fds < VU_ARRAY_SIZE(got_fds); i++)
				memcpy(&got_fds[ngot_fds++], CMSG_DATA(c) + i * sizeof(int),
				       sizeof(int));
		}
		if (inject == INJ_CTRUNC)
			mh->msg_flags |= MSG_CTRUNC;
	}
	return n;
}

/* ---- helpers --------------------------------------------------------------- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

static bool fd_is_closed(int fd)
{
	return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

struct fx {
	int sv[2];              /* sv[0]: the back-end's end, sv[1]: the front-end's */
	int fds[16];            /* descriptors the front-end sends (ours) */
	unsigned int nfds;
	int base_fds;
	struct vu_msg msg;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->base_fds = count_fds();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f->sv), 0);
	inject = INJ_NONE;
	recvmsg_calls = 0;
	ngot_fds = 0;
	*state = f;
	return 0;
}

/* Every fd the test made is closed by now; so must be every fd received. */
static int teardown(void **state)
{
	struct fx *f = *state;

	for (unsigned int i = 0; i < f->nfds; i++)
		close(f->fds[i]);
	close(f->sv[0]);
	close(f->sv[1]);
	assert_int_equal(count_fds(), f->base_fds);
	free(f);
	return 0;
}

static void make_fds(struct fx *f, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		f->fds[f->nfds] = eventfd(0, EFD_CLOEXEC);
		assert_true(f->fds[f->nfds] >= 0);
		f->nfds++;
	}
}

/* Send len raw bytes with the test's fds attached (SCM_RIGHTS). */
static void send_raw(struct fx *f, const void *buf, size_t len, bool with_fds)
{
	char control[CMSG_SPACE(sizeof(f->fds))];
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (with_fds && f->nfds) {
		struct cmsghdr *c;

		memset(control, 0, sizeof(control));
		mh.msg_control = control;
		mh.msg_controllen = CMSG_SPACE(f->nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(f->nfds * sizeof(int));
		memcpy(CMSG_DATA(c), f->fds, f->nfds * sizeof(int));
	}
	assert_int_equal(sendmsg(f->sv[1], &mh, MSG_NOSIGNAL), (ssize_t)len);
}

static void hdr_bytes(uint8_t out[12], uint32_t request, uint32_t flags, uint32_t size)
{
	struct vu_msg_hdr h = { .request = request, .flags = flags, .size = size };

	memcpy(out, &h, sizeof(h));
}

/* Every descriptor the kernel delivered in the last recvmsg() is closed. */
static void assert_received_fds_closed(unsigned int expected)
{
	assert_int_equal(ngot_fds, expected);
	for (unsigned int i = 0; i < ngot_fds; i++)
		assert_true(fd_is_closed(got_fds[i]));
}

/* ---- tests ------------------------------------------------------------------- */

/* A message with two fds goes through send and recv unchanged. */
static void test_roundtrip(void **state)
{
	struct fx *f = *state;
	struct vu_msg out = { .hdr = { VU_REQ_SET_MEM_TABLE, VU_VERSION, 40 } };

	make_fds(f, 2);
	out.payload.mem.nregions = 1;
	out.payload.mem.regions[0].size = 0x1000;
	out.fds[0] = f->fds[0];
	out.fds[1] = f->fds[1];
	out.nfds = 2;
	assert_int_equal(vu_msg_send(f->sv[1], &out), 0);
	assert_int_equal(vu_msg_recv(f->sv[0], &f->msg), 0);
	assert_int_equal(f->msg.hdr.request, VU_REQ_SET_MEM_TABLE);
	assert_int_equal(f->msg.hdr.size, 40);
	assert_int_equal(f->msg.payload.mem.regions[0].size, 0x1000);
	assert_int_equal(f->msg.nfds, 2);
	for (unsigned int i = 0; i < 2; i++)
		assert_false(fd_is_closed(f->msg.fds[i]));
	vu_msg_close_fds(&f->msg);
	assert_received_fds_closed(2);
}

/* EOF before a header: an orderly disconnect. */
static void test_eof_before_header(void **state)
{
	struct fx *f = *state;

	shutdown(f->sv[1], SHUT_WR);
	assert_int_equal(vu_msg_recv(f->sv[0], &f->msg), -ECONNRESET);
	assert_int_equal(f->msg.nfds, 0);
}

/* A.1 truncated header (6 of 12 bytes, then EOF), with 3 fds: all closed. */
static void test_truncated_header(void **state)
{
	struct fx *f = *state;
	uint8_t h[12];

	make_fds(f, 3);
	hdr_bytes(h, VU_REQ_SET_OWNER, VU_VERSION, 0);
	send_raw(f, h, 6, true);
	shutdown(f->sv[1], SHUT_WR);
	assert_int_equal(vu_msg_recv(f->sv[0], &f->msg), -EBADMSG);
	assert_int_equal(f->msg.nfds, 0);
	assert_received_fds_closed(3);
}

/* A header that arrives in two pieces is completed. */
static void test_header_in_two_pieces(void **state)
{
	struct fx *f = *state;
	uint8_t buf[12 + 8];
	uint64_t v = 0x1234;

	hdr_bytes(buf, VU_REQ_SET_FEATURES, VU_VERSION, 8);
	memcpy(buf + 12, &v, 8);
	send_raw(f, buf, 5, false);
	send_raw(f, buf + 5, sizeof(buf) - 5, false);
	assert_int_equal(vu_msg_recv(f->sv[0], &f->msg), 0);
	assert_int_equal(f->msg.hdr.request, VU_REQ_SET_FEATURES);
	assert_int_equal(f->msg.payload.u64, 0x1234);
}

/* recvmsg() returning part of the header (injected): the rest is read, fds kept. */
static void test_short_recvmsg(void **state)
{
	struct fx *f = *state;
	struct vu_msg out = { .hdr = { VU_REQ_SET_VRING_KICK, VU_VERSION, 8 } };

	make_fds(f, 1);
	out.payload.u64 = 1;
	out.fds[0] = f->fds[0];
	out.nfds = 1;
	assert_int_equal(vu_msg_send(f->sv[1], &out), 0);
	inject = INJ_SHORT;
	short_len = 3;
	assert_int_equal(vu_msg_recv(f->sv[0], &f->msg), 0);
	assert_int_equal(f->msg.hdr.request, VU_REQ_SET_VRING_KICK);
	assert_int_equal(f->msg.payload.u64, 1);
	assert_int_equal(f->msg.nfds, 1);
	assert_false(fd_is_closed(f->msg.fds[0]));
	vu_msg_close_fds(&f->msg);
}

/* A.1 EOF in the middle of the payload, with an fd: refused, fd closed. */
static void test_eof_in_payload(void **state)
{
	struct fx *f = *state;
	uint8_t buf[12 + 10] = { 0 };

	make_fds(f, 1);
	hdr_bytes(buf, VU_REQ_SET_MEM_TABLE, VU_VERSION, 40);
	send_raw(f, buf, sizeof(buf), true);
	shutdown(f->sv[1], SHUT_WR);
	assert_int_equal(vu_msg_recv(f->sv[0], &f->msg), -EBADMSG);
	assert_int_equal(f->msg.nfds, 0);
	assert_received_fds_closed(1);
}

/* A.1 header size above VU_MAX_PAYLOAD, with 2 fds: refused before reading. */
static void test_oversized(void **state)
{
	static const uint32_t sizes[] = { VU_MAX_PAYLOAD + 1, 0x10000, 0xffffffffu };
	struct fx *f = *state;

	make_fds(f, 2);
	for (unsigned int i = 0; i < VU_ARRAY_SIZE(sizes); i++) {
		uint8_t h[12];

		hdr_bytes(h, VU_REQ_SET_CONFIG, VU_VERSION, sizes[i]);
		send_raw(f, h, sizeof(h), true);
		recvmsg_calls = 0;
		assert_int_equal(vu_msg_recv(f->sv[0], &f->msg), -EBADMSG);
		assert_int_equal(recvmsg_calls, 1);
		assert_int_equal(f->msg.nfds, 0);
		assert_received_fds_closed(2);
	}
}

/* The largest payload accepted is VU_MAX_PAYLOAD. */
static void test_max_payload(void **state)
{
	struct fx *f = *state;
	struct vu_msg out = { .hdr = { VU_REQ_SET_CONFIG, VU_VERSION, VU_MAX_PAYLOAD } };

	memset(&out.payload, 0x5a, sizeof(out.payload));
	assert_int_equal(vu_msg_send(f->sv[1], &out), 0);
	assert_int_equal(vu_msg_recv(f->sv[0], &f->msg), 0);
	assert_int_equal(f->msg.hdr.size, VU_MAX_PAYLOAD);
	assert_memory_equal(&f->msg.payload, &out.payload, VU_MAX_PAYLOAD);
}

/* A.2 nine fds where at most 8 are taken: refused, every one received closed. */
static void test_nine_fds(void **state)
{
	struct fx *f = *state;
	uint8_t h[12];

	make_fds(f, 9);
	hdr_bytes(h, VU_REQ_SET_MEM_TABLE, VU_VERSION, 0);
	send_raw(f, h, sizeof(h), true);
	assert_int_equal(vu_msg_recv(f->sv[0], &f->msg), -EBADMSG);
	assert_int_equal(f->msg.nfds, 0);
	/* The kernel passes what fits in our control buffer (8) and drops the
	 * rest; the 8 must be closed. */
	assert_true(ngot_fds >= 1 && ngot_fds <= VU_MAX_FDS);
	assert_received_fds_closed(ngot_fds);
}

/* A.2 control data reported truncated (injected): refused, fds closed. */
static void test_ctrunc(void **state)
{
	struct fx *f = *state;
	uint8_t h[12];

	make_fds(f, 2);
	hdr_bytes(h, VU_REQ_SET_OWNER, VU_VERSION, 0);
	send_raw(f, h, sizeof(h), true);
	inject = INJ_CTRUNC;
	assert_int_equal(vu_msg_recv(f->sv[0], &f->msg), -EBADMSG);
	assert_int_equal(f->msg.nfds, 0);
	assert_received_fds_closed(2);
}

/* A.2 fds attached to the payload bytes, not the header: not leaked. */
static void test_fds_with_payload(void **state)
{
	struct fx *f = *state;
	uint8_t h[12];
	uint64_t v = 7;

	make_fds(f, 3);
	hdr_bytes(h, VU_REQ_SET_FEATURES, VU_VERSION, 8);
	send_raw(f, h, sizeof(h), false);
	send_raw(f, &v, sizeof(v), true);
	assert_int_equal(vu_msg_recv(f->sv[0], &f->msg), 0);
	assert_int_equal(f->msg.payload.u64, 7);
	vu_msg_close_fds(&f->msg);
	/* teardown checks that no descriptor stayed open */
}

/* recvmsg() interrupted (injected): retried. */
static void test_eintr(void **state)
{
	struct fx *f = *state;
	struct vu_msg out = { .hdr = { VU_REQ_GET_FEATURES, VU_VERSION, 0 } };

	assert_int_equal(vu_msg_send(f->sv[1], &out), 0);
	inject = INJ_EINTR;
	assert_int_equal(vu_msg_recv(f->sv[0], &f->msg), 0);
	assert_int_equal(recvmsg_calls, 2);
	assert_int_equal(f->msg.hdr.request, VU_REQ_GET_FEATURES);
}

/* recvmsg() failing (injected): its errno, nothing received. */
static void test_recvmsg_error(void **state)
{
	struct fx *f = *state;

	inject = INJ_EIO;
	assert_int_equal(vu_msg_recv(f->sv[0], &f->msg), -EIO);
	assert_int_equal(f->msg.nfds, 0);
}

/* Two messages back to back are read one at a time. */
static void test_two_messages(void **state)
{
	struct fx *f = *state;
	struct vu_msg a = { .hdr = { VU_REQ_SET_FEATURES, VU_VERSION, 8 } };
	struct vu_msg b = { .hdr = { VU_REQ_SET_OWNER, VU_VERSION, 0 } };

	a.payload.u64 = 99;
	assert_int_equal(vu_msg_send(f->sv[1], &a), 0);
	assert_int_equal(vu_msg_send(f->sv[1], &b), 0);
	assert_int_equal(vu_msg_recv(f->sv[0], &f->msg), 0);
	assert_int_equal(f->msg.hdr.request, VU_REQ_SET_FEATURES);
	assert_int_equal(f->msg.payload.u64, 99);
	assert_int_equal(vu_msg_recv(f->sv[0], &f->msg), 0);
	assert_int_equal(f->msg.hdr.request, VU_REQ_SET_OWNER);
	assert_int_equal(f->msg.hdr.size, 0);
}

/* vu_msg_send refuses what vu_msg_recv would refuse. */
static void test_send_limits(void **state)
{
	struct fx *f = *state;
	struct vu_msg out = { .hdr = { VU_REQ_SET_OWNER, VU_VERSION, VU_MAX_PAYLOAD + 1 } };

	assert_int_equal(vu_msg_send(f->sv[1], &out), -EINVAL);
	out.hdr.size = 0;
	out.nfds = VU_MAX_FDS + 1;
	assert_int_equal(vu_msg_send(f->sv[1], &out), -EINVAL);
}

/* take_fd / close_fds: a taken fd is the caller's, the rest are closed. */
static void test_take_and_close(void **state)
{
	struct fx *f = *state;
	struct vu_msg m = { .nfds = 3 };
	int taken;

	make_fds(f, 3);
	for (unsigned int i = 0; i < 3; i++)
		m.fds[i] = dup(f->fds[i]);
	taken = vu_msg_take_fd(&m, 1);
	assert_true(taken >= 0);
	assert_int_equal(vu_msg_take_fd(&m, 1), -1);
	assert_int_equal(vu_msg_take_fd(&m, 3), -1);
	vu_msg_close_fds(&m);
	assert_int_equal(m.nfds, 0);
	assert_false(fd_is_closed(taken));
	close(taken);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof_before_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_in_two_pieces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_recvmsg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof_in_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nine_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctrunc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fds_with_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eintr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recvmsg_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_take_and_close, setup, teardown),
	};

	vu_log_set_level(getenv("VU_TEST_VERBOSE") ? VU_LOG_DEBUG : VU_LOG_ERR);
	return cmocka_run_group_tests_name("msg", tests, NULL, NULL);
}
