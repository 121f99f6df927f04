// SPDX-License-Identifier: MIT
/*
 * Integration: the daemon's socket (SECURITY.md D.28).
 *
 * Server mode: the socket is created owner-only whatever the umask; a
 * stale socket file nobody listens on is replaced; a path that is not a
 * socket is left alone and the daemon refuses to start; a path where
 * another daemon listens is refused (the second daemon exits non-zero,
 * the first keeps its socket and its front-end).  Client mode (QEMU with
 * server=on): the daemon connects to the test's listening socket, waits
 * for it if it is not there yet, and comes back after the test closes
 * the connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "it.h"

#define F(bit) (1ull << (bit))

static void traffic(struct it_fixture *f, unsigned int chains)
{
	struct it_fe_opts o = { .features = F(VIRTIO_RING_F_EVENT_IDX), .nqueues = 1 };
	struct it_fe *fe = it_fe(f, &o);

	it_assert_echo(fe->echo[0], it_echo_run(fe->echo[0], chains, IT_TIMEOUT_MS));
	it_fe_drop(f, fe);
}

/* A Unix socket bound at path; listening unless `listening` is false. */
static int unix_socket(const char *path, bool listening)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(strlen(path) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (listening)
		assert_int_equal(listen(fd, 4), 0);
	return fd;
}

static void test_socket_created_owner_only(void **state)
{
	struct it_fixture *f = *state;
	mode_t old = umask(0);
	struct stat st;

	/* Whatever the umask says, the socket is the owner's only. */
	it_start(f, 0, NULL);
	umask(old);
	assert_int_equal(stat(f->sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, getuid());
	traffic(f, 100);
	it_pass(f);
}

static void test_stale_socket_replaced(void **state)
{
	struct it_fixture *f = *state;
	struct stat st;

	/* A socket file left by a dead process: nobody listens. */
	close(unix_socket(f->sock, false));
	assert_int_equal(stat(f->sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	it_start(f, 0, NULL);
	traffic(f, 100);
	it_pass(f);
}

static void test_regular_file_not_replaced(void **state)
{
	struct it_fixture *f = *state;
	int fd, status;
	char buf[8] = { 0 };

	fd = open(f->sock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "data", 4), 4);
	close(fd);
	assert_int_equal(it_daemon_start(&f->d[0], f->sock, NULL, false), 0);
	status = it_daemon_wait_exit(&f->d[0], IT_TIMEOUT_MS);
	assert_true(status >= 0);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
	f->d[0].status = 0;     /* the exit status was the point */
	fd = open(f->sock, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 4);
	close(fd);
	assert_string_equal(buf, "data");
	it_pass(f);
}

static void test_path_with_listener_refused(void **state)
{
	struct it_fixture *f = *state;
	struct it_fe_opts o = { .features = F(VIRTIO_RING_F_EVENT_IDX), .nqueues = 1 };
	struct stat before, after;
	struct it_fe *fe;
	int status;

	it_start(f, 0, NULL);
	assert_int_equal(stat(f->sock, &before), 0);
	/* Once with the first daemon idle, once with a front-end attached. */
	for (unsigned int round = 0; round < 2; round++) {
		fe = round ? it_fe(f, &o) : NULL;
		assert_int_equal(it_daemon_start(&f->d[1], f->sock, NULL, false), 0);
		status = it_daemon_wait_exit(&f->d[1], IT_TIMEOUT_MS);
		assert_true(status >= 0);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
		f->d[1].status = 0;
		assert_true(it_log_count(&f->d[1], "another process listens there") == round + 1);
		/* The first daemon's socket is the same file, and it serves. */
		assert_int_equal(stat(f->sock, &after), 0);
		assert_int_equal(after.st_ino, before.st_ino);
		assert_true(it_daemon_alive(&f->d[0]));
		if (fe) {
			it_assert_echo(fe->echo[0], it_echo_run(fe->echo[0], 500, IT_TIMEOUT_MS));
			it_fe_drop(f, fe);
		}
		traffic(f, 100);
	}
	it_pass(f);
}

/* Accept one connection on lfd within timeout_ms, or -1. */
static int accept_within(int lfd, int timeout_ms)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

static void close_fd(void *arg)
{
	close(*(int *)arg);
}

static void test_client_mode_connects_and_reconnects(void **state)
{
	struct it_fixture *f = *state;
	struct it_fe_opts o = { .features = F(VIRTIO_RING_F_EVENT_IDX), .nqueues = 2 };
	static int lfd;
	int cfd;

	/* The daemon comes first and retries until the front-end listens. */
	assert_int_equal(it_daemon_start(&f->d[0], f->sock,
					 (const char *const[]){ "--client", NULL }, false), 0);
	it_sleep_ms(300);
	assert_true(it_daemon_alive(&f->d[0]));
	lfd = unix_socket(f->sock, true);
	f->cleanup = close_fd;
	f->cleanup_arg = &lfd;
	for (unsigned int round = 0; round < 3; round++) {
		struct it_fe *fe;

		cfd = accept_within(lfd, IT_TIMEOUT_MS);
		if (cfd < 0)
			fail_msg("round %u: the daemon did not connect", round);
		assert_int_equal(it_fe_start_fd(cfd, &o, &fe), 0);
		it_fe_register(f, fe);
		for (unsigned int q = 0; q < 2; q++)
			it_assert_echo(fe->echo[q], it_echo_run(fe->echo[q], 300, IT_TIMEOUT_MS));
		/* We close; it comes back. */
		it_fe_drop(f, fe);
	}
	close(lfd);
	f->cleanup = NULL;
	assert_int_equal(it_log_count(&f->d[0], "front-end connected"), 3);
	it_pass(f);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		{ "socket_created_owner_only_0600_whatever_the_umask_D28",
		  test_socket_created_owner_only, it_setup, it_teardown, NULL },
		{ "stale_socket_without_listener_replaced_D28",
		  test_stale_socket_replaced, it_setup, it_teardown, NULL },
		{ "regular_file_at_socket_path_left_alone_daemon_exits_nonzero_D28",
		  test_regular_file_not_replaced, it_setup, it_teardown, NULL },
		{ "path_with_listener_refused_second_daemon_exits_first_serves_D28",
		  test_path_with_listener_refused, it_setup, it_teardown, NULL },
		{ "client_mode_connects_to_listener_and_reconnects_after_close",
		  test_client_mode_connects_and_reconnects, it_setup, it_teardown, NULL },
	};

	return it_main(argc, argv, "integration_socket", tests, VU_ARRAY_SIZE(tests));
}
