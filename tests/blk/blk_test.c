// SPDX-License-Identifier: MIT
/*
 * Shared helper of the vhost-blk integration tests: the daemon as a child
 * process, the vuf connection to it, and virtio-blk requests built in
 * guest memory.  See blk_test.h for the contracts.
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/io_uring.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blk_test.h"
#include "vu_inflight.h"
#include "vu_util.h"

#define PAGE 4096u
/* The last 64 KiB of region 1 and the first 64 KiB of region 2 are kept
 * out of the arena: tests put buffers that cross the boundary there. */
#define CROSS_GAP (64u << 10)

const char *blkt_daemon;

/* Can this process set up an io_uring (not disabled, not filtered)? */
static bool uring_available(void)
{
	struct io_uring_params p;
	int fd;

	memset(&p, 0, sizeof(p));
	fd = (int)syscall(__NR_io_uring_setup, 4, &p);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

void blkt_init(int argc, char **argv)
{
	if (argc < 2 || access(argv[1], X_OK) != 0) {
		fprintf(stderr, "usage: %s PATH-TO-vhost-blk\n", argv[0]);
		exit(1);
	}
	blkt_daemon = argv[1];
	if (!uring_available()) {
		/* The daemon's default engine cannot run here. */
		fprintf(stderr, "io_uring is not available (%s): vhost-blk tests skipped\n",
			strerror(errno));
		exit(77);
	}
	/* BLKT_FILTER=pattern runs only the matching tests (debugging). */
	if (getenv("BLKT_FILTER"))
		cmocka_set_test_filter(getenv("BLKT_FILTER"));
	/* Every helper reports through cmocka; make its output unbuffered
	 * so that it interleaves with the daemon's log dumps. */
	setvbuf(stdout, NULL, _IONBF, 0);
}

/* A debugging variable is set to a non-empty value. */
static bool env_set(const char *name)
{
	const char *v = getenv(name);

	return v && *v;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* Fixture                                                            */
/* ------------------------------------------------------------------ */

int blkt_setup(void **state)
{
	struct blkt *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	snprintf(t->dir, sizeof(t->dir), "/tmp/vhost-blk-test.XXXXXX");
	if (!mkdtemp(t->dir)) {
		fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
		free(t);
		return -1;
	}
	blkt_path(t, t->sock, sizeof(t->sock), "blk.sock");
	blkt_path(t, t->file, sizeof(t->file), "disk.img");
	blkt_path(t, t->log, sizeof(t->log), "daemon.log");
	*state = t;
	return 0;
}

static void free_argv(struct blkt *t)
{
	for (unsigned int i = 0; i < t->argc; i++)
		free(t->argv[i]);
	t->argc = 0;
	t->argv[0] = NULL;
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char p[PATH_MAX];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (unlink(p) < 0 && errno == EISDIR)
			rmdir(p);
	}
	closedir(d);
	rmdir(dir);
}

static void dump_log(const struct blkt *t, const char *why)
{
	char *log = blkt_read_log(t);

	fprintf(stderr, "---- vhost-blk log (%s) ----\n%s---- end of log ----\n", why,
		log ? log : "(none)\n");
	free(log);
}

/* The daemon's log holds a report of AddressSanitizer, LeakSanitizer or UBSan. */
static bool sanitizer_report(const struct blkt *t)
{
	char *log = blkt_read_log(t);
	bool found = log && (strstr(log, "runtime error:") || strstr(log, "Sanitizer"));

	free(log);
	return found;
}

int blkt_teardown(void **state)
{
	struct blkt *t = *state;
	int ret = 0, st;

	if (!t)
		return 0;
	vuf_close(t->vuf);
	t->vuf = NULL;
	/* Generous: under the sanitizers and a loaded machine the leak
	 * check at exit alone can take seconds. */
	st = blkt_stop(t, 10000);
	if (sanitizer_report(t)) {
		/* UBSan reports and goes on: its lines are the only trace. */
		dump_log(t, "sanitizer report");
		ret = -1;
	} else if (!t->passed) {
		dump_log(t, "the test failed");
	} else if (st != -1 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
		/* A clean shutdown on SIGTERM is part of every test; under
		 * the sanitizers this is also where leaks are reported. */
		fprintf(stderr, "vhost-blk did not exit cleanly on SIGTERM (%s %d)\n",
			WIFEXITED(st) ? "exit code" : "signal",
			WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		dump_log(t, "unclean exit");
		ret = -1;
	} else if (env_set("BLKT_VERBOSE")) {
		dump_log(t, "BLKT_VERBOSE");
	}
	if (env_set("BLKT_KEEP"))
		fprintf(stderr, "kept %s\n", t->dir);
	else
		remove_dir(t->dir);
	free_argv(t);
	free(t);
	*state = NULL;
	return ret;
}

void blkt_pass(struct blkt *t)
{
	assert_true(blkt_alive(t));
	for (unsigned int q = 0; q < BLKT_MAX_QUEUES; q++) {
		const struct vuf_vq_stats *s;

		if (!t->vq[q])
			continue;
		s = vuf_vq_stats(t->vq[q]);
		if (vuf_vq_error(t->vq[q]))
			fail_msg("queue %u broken: %s", q, vuf_vq_error(t->vq[q]));
		/* A completion found only by the wait's fallback: the daemon
		 * did not call although calls were enabled (SECURITY.md C.25). */
		if (s->wait_fallbacks)
			fail_msg("queue %u: %llu completions arrived without a call", q,
				 (unsigned long long)s->wait_fallbacks);
		if (s->bad_len)
			fail_msg("queue %u: %llu completions longer than their buffers", q,
				 (unsigned long long)s->bad_len);
	}
	t->passed = true;
}

void blkt_path(const struct blkt *t, char *buf, size_t size, const char *name)
{
	int n = snprintf(buf, size, "%s/%s", t->dir, name);

	assert_true(n > 0 && (size_t)n < size);
}

void blkt_make_file(const char *path, uint64_t bytes, uint64_t seed)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t chunk = 1u << 20;
	uint8_t *buf;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)bytes), 0);
	if (seed) {
		buf = malloc(chunk);
		assert_non_null(buf);
		for (uint64_t off = 0; off < bytes; off += chunk) {
			size_t n = bytes - off < chunk ? (size_t)(bytes - off) : chunk;

			blkt_pattern(buf, n, off, seed);
			assert_int_equal(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
		}
		free(buf);
	}
	close(fd);
}

/* ------------------------------------------------------------------ */
/* The daemon                                                         */
/* ------------------------------------------------------------------ */

static pid_t spawn(char *const *argv, const char *out, const char *err)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		sigset_t none;
		int fd;

		/* The daemon must not outlive a test process that crashed. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int s = 1; s < 32; s++)
			if (s != SIGKILL && s != SIGSTOP)
				signal(s, SIG_DFL);
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
			dup2(fd, 0);
		fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0)
			dup2(fd, 1);
		fd = open(err, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		execv(blkt_daemon, argv);
		_exit(127);
	}
	return pid;
}

void blkt_spawn_argv(struct blkt *t, const char *const *argv)
{
	assert_int_equal(t->pid, 0);
	if (argv != (const char *const *)t->argv) {
		free_argv(t);
		t->argv[t->argc++] = strdup(blkt_daemon);
		for (unsigned int i = 1; argv[i]; i++) {
			assert_true(t->argc + 1 < VU_ARRAY_SIZE(t->argv));
			t->argv[t->argc++] = strdup(argv[i]);
		}
		t->argv[t->argc] = NULL;
	}
	t->pid = spawn(t->argv, t->log, t->log);
}

void blkt_spawn(struct blkt *t, const char *const *extra)
{
	const char *argv[64] = { "vhost-blk", "--socket-path", t->sock, "--blk-file", t->file,
				 "--cpus", "0", "--poll", "adaptive" };
	unsigned int n = 9;

	for (unsigned int i = 0; extra && extra[i]; i++) {
		assert_true(n + 1 < VU_ARRAY_SIZE(argv));
		argv[n++] = extra[i];
	}
	argv[n] = NULL;
	blkt_spawn_argv(t, argv);
}

int blkt_run(const char *const *argv, const char *out, const char *err, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	char *args[64];
	unsigned int n = 0;
	pid_t pid;
	int st;

	args[n++] = (char *)blkt_daemon;
	for (unsigned int i = 1; argv[i]; i++) {
		assert_true(n + 1 < VU_ARRAY_SIZE(args));
		args[n++] = (char *)argv[i];
	}
	args[n] = NULL;
	pid = spawn(args, out, err);
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return st;
		if (now_ms() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		usleep(2000);
	}
}

void blkt_respawn(struct blkt *t)
{
	assert_true(t->argc > 0);
	blkt_spawn_argv(t, (const char *const *)t->argv);
}

void blkt_signal(struct blkt *t, int sig)
{
	assert_true(t->pid > 0);
	assert_int_equal(kill(t->pid, sig), 0);
}

void blkt_kill(struct blkt *t)
{
	if (t->pid <= 0)
		return;
	kill(t->pid, SIGKILL);
	while (waitpid(t->pid, &t->wstatus, 0) < 0 && errno == EINTR)
		;
	t->pid = 0;
}

/* The process is in a stop (state T in /proc/PID/stat). */
static bool is_stopped(pid_t pid)
{
	char path[64], buf[512];
	const char *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold spaces and parentheses. */
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && (p[2] == 'T' || p[2] == 't');
}

int blkt_stop(struct blkt *t, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;

	if (t->pid <= 0)
		return -1;
	/*
	 * A daemon a test left stopped is continued first, never after the
	 * SIGTERM: a SIGCONT that lands during the sanitizer's leak check at
	 * exit cancels the SIGSTOP its tracer attaches with, and both hang.
	 */
	if (is_stopped(t->pid))
		kill(t->pid, SIGCONT);
	kill(t->pid, SIGTERM);
	for (;;) {
		pid_t r = waitpid(t->pid, &t->wstatus, WNOHANG);

		if (r == t->pid) {
			t->pid = 0;
			return t->wstatus;
		}
		if (r < 0 && errno != EINTR)
			break;
		if (now_ms() >= deadline) {
			fprintf(stderr, "vhost-blk did not exit %d ms after SIGTERM: SIGKILL\n",
				timeout_ms);
			break;
		}
		usleep(5000);
	}
	blkt_kill(t);
	return t->wstatus;
}

bool blkt_alive(struct blkt *t)
{
	pid_t r;

	if (t->pid <= 0)
		return false;
	r = waitpid(t->pid, &t->wstatus, WNOHANG);
	if (r == t->pid) {
		fprintf(stderr, "vhost-blk exited: %s %d\n",
			WIFEXITED(t->wstatus) ? "exit code" : "signal",
			WIFEXITED(t->wstatus) ? WEXITSTATUS(t->wstatus) : WTERMSIG(t->wstatus));
		t->pid = 0;
		return false;
	}
	return true;
}

char *blkt_read_log(const struct blkt *t)
{
	FILE *f = fopen(t->log, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf) {
		n = (long)fread(buf, 1, (size_t)n, f);
		buf[n] = '\0';
	}
	fclose(f);
	return buf;
}

/* ------------------------------------------------------------------ */
/* Connection                                                         */
/* ------------------------------------------------------------------ */

void blkt_connect(struct blkt *t, const struct blkt_conn_opts *o)
{
	static const struct blkt_conn_opts defaults;
	const uint64_t proto = (1ull << VU_PROTOCOL_F_MQ) | (1ull << VU_PROTOCOL_F_REPLY_ACK) |
			       (1ull << VU_PROTOCOL_F_CONFIG) | (1ull << VU_PROTOCOL_F_STATUS) |
			       (1ull << VU_PROTOCOL_F_BACKEND_REQ) |
			       (1ull << VU_PROTOCOL_F_INFLIGHT_SHMFD) |
			       (1ull << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |
			       (1ull << VU_PROTOCOL_F_RESET_DEVICE);
	uint64_t wanted, negotiated;
	unsigned int nq, qsize;
	int ret;

	if (!o)
		o = &defaults;
	nq = o->nq ? o->nq : 1;
	qsize = o->qsize ? o->qsize : 128;
	assert_true(nq <= BLKT_MAX_QUEUES);
	t->vuf = vuf_connect(o->sock ? o->sock : t->sock, BLKT_WAIT_MS);
	if (!t->vuf)
		fail_msg("cannot connect to %s: %s", o->sock ? o->sock : t->sock, strerror(errno));
	/* Everything offered but the dirty log, and the ring layout asked for. */
	wanted = ~o->drop_features & ~(1ull << VHOST_F_LOG_ALL);
	if (!o->packed)
		wanted &= ~(1ull << VIRTIO_F_RING_PACKED);
	ret = vuf_negotiate(t->vuf, wanted, proto, &negotiated);
	assert_int_equal(ret, 0);
	assert_true(negotiated & (1ull << VIRTIO_F_VERSION_1));
	if (o->packed)
		assert_true(negotiated & (1ull << VIRTIO_F_RING_PACKED));
	if (o->backend_channel)
		assert_int_equal(vuf_open_backend_channel(t->vuf), 0);

	assert_int_equal(vuf_mem_add(t->vuf, BLKT_GPA_RING, BLKT_RING_SIZE, 0), 0);
	assert_int_equal(vuf_mem_add(t->vuf, BLKT_GPA_DATA, BLKT_DATA_SIZE, 0), 0);
	/* Mapped one page into its memfd: a non-zero mmap_offset. */
	assert_int_equal(vuf_mem_add(t->vuf, BLKT_GPA_DATA2, BLKT_DATA2_SIZE, VUF_MEM_OFFSET), 0);
	assert_int_equal(vuf_mem_commit(t->vuf), 0);
	t->data_used = 0;

	if (o->inflight) {
		assert_int_equal(vuf_get_inflight(t->vuf, (uint16_t)nq, (uint16_t)qsize, NULL, NULL), 0);
		assert_int_equal(vuf_set_inflight(t->vuf, -1, NULL), 0);
	}
	for (unsigned int q = 0; q < nq; q++) {
		struct vuf_vq_opts vo = {
			.index = q, .size = qsize, .packed = o->packed,
			.indirect_max = o->indirect_max ? o->indirect_max : 128,
		};

		t->vq[q] = vuf_vq_create(t->vuf, &vo);
		if (!t->vq[q])
			fail_msg("queue %u: %s", q, strerror(errno));
		assert_int_equal(vuf_vq_start(t->vq[q]), 0);
		/* Strict: a completion must come with a call (checked in blkt_pass). */
		vuf_vq_set_wait_fallback(t->vq[q], 0);
	}
	t->nq = nq;
	t->packed = o->packed;
	if (vuf_has_protocol_feature(t->vuf, VU_PROTOCOL_F_STATUS))
		assert_int_equal(vuf_set_status(t->vuf, VIRTIO_CONFIG_S_ACKNOWLEDGE |
						 VIRTIO_CONFIG_S_DRIVER |
						 VIRTIO_CONFIG_S_FEATURES_OK |
						 VIRTIO_CONFIG_S_DRIVER_OK), 0);
}

void blkt_disconnect(struct blkt *t)
{
	vuf_close(t->vuf);
	t->vuf = NULL;
	memset(t->vq, 0, sizeof(t->vq));
	t->nq = 0;
}

/* ------------------------------------------------------------------ */
/* Guest memory                                                       */
/* ------------------------------------------------------------------ */

void *blkt_data(struct blkt *t, size_t len, size_t align, uint64_t *gpa)
{
	const uint64_t end1 = BLKT_DATA_SIZE - CROSS_GAP;
	const uint64_t start2 = BLKT_DATA_SIZE + CROSS_GAP;
	const uint64_t end2 = BLKT_DATA_SIZE + BLKT_DATA2_SIZE;
	uint64_t off;
	void *p;

	if (!align)
		align = PAGE;
	off = VU_ALIGN_UP(t->data_used, (uint64_t)align);
	if (off < end1 && off + len > end1)
		off = start2;
	if (off >= end1 && off < start2)
		off = start2;
	if (off + len > end2)
		fail_msg("data arena exhausted (%zu bytes more)", len);
	t->data_used = off + len;
	*gpa = BLKT_GPA_DATA + off;
	p = vuf_gpa_to_ptr(t->vuf, *gpa, len);
	assert_non_null(p);
	memset(p, 0, len);
	return p;
}

void blkt_data_reset(struct blkt *t)
{
	t->data_used = 0;
}

static void gcopy(struct blkt *t, uint64_t gpa, uint8_t *buf, size_t len, bool to_guest)
{
	while (len) {
		size_t n = PAGE - (size_t)(gpa & (PAGE - 1));
		uint8_t *p;

		if (n > len)
			n = len;
		p = vuf_gpa_to_ptr(t->vuf, gpa, n);
		assert_non_null(p);
		if (to_guest)
			memcpy(p, buf, n);
		else
			memcpy(buf, p, n);
		gpa += n;
		buf += n;
		len -= n;
	}
}

void blkt_gwrite(struct blkt *t, uint64_t gpa, const void *src, size_t len)
{
	gcopy(t, gpa, (uint8_t *)src, len, true);
}

void blkt_gread(struct blkt *t, uint64_t gpa, void *dst, size_t len)
{
	gcopy(t, gpa, dst, len, false);
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint8_t pattern_byte(uint64_t off, uint64_t seed)
{
	return (uint8_t)(mix((off >> 3) ^ (seed * 0x2545f4914f6cdd1dull)) >> ((off & 7) * 8));
}

void blkt_pattern(void *buf, size_t len, uint64_t disk_off, uint64_t seed)
{
	uint8_t *b = buf;

	if (!seed) {
		memset(buf, 0, len);
		return;
	}
	if (!(disk_off & 7) && !(len & 7)) {
		for (size_t i = 0; i < len; i += 8) {
			uint64_t w = htole64(mix(((disk_off + i) >> 3) ^ (seed * 0x2545f4914f6cdd1dull)));

			memcpy(b + i, &w, 8);
		}
		return;
	}
	for (size_t i = 0; i < len; i++)
		b[i] = pattern_byte(disk_off + i, seed);
}

long blkt_pattern_diff(const void *buf, size_t len, uint64_t disk_off, uint64_t seed)
{
	const uint8_t *b = buf;
	uint8_t tmp[4096];

	for (size_t i = 0; i < len; i += sizeof(tmp)) {
		size_t n = len - i < sizeof(tmp) ? len - i : sizeof(tmp);

		blkt_pattern(tmp, n, disk_off + i, seed);
		if (memcmp(tmp, b + i, n)) {
			for (size_t j = 0; j < n; j++)
				if (tmp[j] != b[i + j])
					return (long)(i + j);
		}
	}
	return -1;
}

/* ------------------------------------------------------------------ */
/* Requests                                                           */
/* ------------------------------------------------------------------ */

void blkt_req_init(struct blkt *t, struct blkt_req *r)
{
	uint8_t *p;
	uint64_t gpa;

	memset(r, 0, sizeof(*r));
	/* Header and status in one 32-byte cell of region 0. */
	p = vuf_alloc(t->vuf, 32, 32, &gpa);
	assert_non_null(p);
	r->ghdr = (struct virtio_blk_outhdr *)p;
	r->hdr_gpa = gpa;
	r->gstatus = p + 16;
	r->status_gpa = gpa + 16;
}

void blkt_req_build(struct blkt_req *r, uint32_t type, uint64_t sector,
		    const struct blkt_buf *data, unsigned int n)
{
	bool writable = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;

	r->ghdr->type = htole32(type);
	r->ghdr->ioprio = 0;
	r->ghdr->sector = htole64(sector);
	*(volatile uint8_t *)r->gstatus = 0xff;
	r->seg[0] = (struct vuf_seg){ .gpa = r->hdr_gpa, .len = 16, .writable = false };
	for (unsigned int i = 0; i < n && i < BLKT_MAX_SEGS; i++)
		r->seg[1 + i] = (struct vuf_seg){ .gpa = data[i].gpa, .len = data[i].len,
						  .writable = writable };
	r->seg[n + 1] = (struct vuf_seg){ .gpa = r->status_gpa, .len = 1, .writable = true };
	r->nseg = n + 2;
	r->done = false;
	r->len = 0;
}

uint8_t blkt_req_status(const struct blkt_req *r)
{
	return *(const volatile uint8_t *)r->gstatus;
}

int blkt_try_post(struct blkt *t, unsigned int q, struct blkt_req *r)
{
	int ret;

	r->done = false;
	r->len = 0;
	ret = vuf_vq_post_flags(t->vq[q], r->seg, r->nseg, (uint64_t)(uintptr_t)r, r->post_flags);
	if (ret)
		return ret;
	ret = vuf_vq_kick(t->vq[q]);
	return ret < 0 ? ret : 0;
}

int blkt_try_reap(struct blkt *t, unsigned int q, int timeout_ms)
{
	struct vuf_completion c[64];
	int n = vuf_vq_reap(t->vq[q], c, VU_ARRAY_SIZE(c));

	if (n == 0) {
		int ret = vuf_vq_wait(t->vq[q], timeout_ms);

		if (ret)
			return ret;
		n = vuf_vq_reap(t->vq[q], c, VU_ARRAY_SIZE(c));
	}
	for (int i = 0; i < n; i++) {
		struct blkt_req *r = (struct blkt_req *)(uintptr_t)c[i].cookie;

		r->len = c[i].len;
		r->done = true;
	}
	return n;
}

void blkt_wait_req(struct blkt *t, unsigned int q, struct blkt_req *r)
{
	while (!r->done) {
		int n = blkt_try_reap(t, q, BLKT_WAIT_MS);

		if (n < 0) {
			const struct vuf_vq_stats *s = vuf_vq_stats(t->vq[q]);

			fail_msg("queue %u: no completion of type %u sector %llu: %s%s%s "
				 "(posted %llu completed %llu kicks %llu suppressed %llu calls %llu, %s)",
				 q, le32toh(r->ghdr->type), (unsigned long long)le64toh(r->ghdr->sector),
				 strerror(-n), vuf_vq_error(t->vq[q]) ? ": " : "",
				 vuf_vq_error(t->vq[q]) ? vuf_vq_error(t->vq[q]) : "",
				 (unsigned long long)s->posted, (unsigned long long)s->completed,
				 (unsigned long long)s->kicks, (unsigned long long)s->kicks_suppressed,
				 (unsigned long long)s->calls,
				 vuf_vq_pending(t->vq[q]) ? "a completion is in the used ring" :
				 "nothing in the used ring");
		}
	}
}

uint8_t blkt_do(struct blkt *t, unsigned int q, struct blkt_req *r)
{
	int ret = blkt_try_post(t, q, r);

	if (ret)
		fail_msg("queue %u: post of %u segments: %s", q, r->nseg, strerror(-ret));
	blkt_wait_req(t, q, r);
	return blkt_req_status(r);
}

uint8_t blkt_rw(struct blkt *t, unsigned int q, uint32_t type, uint64_t sector, uint64_t gpa,
		uint32_t len, uint32_t *done_len)
{
	struct blkt_req r;
	struct blkt_buf b = { .gpa = gpa, .len = len };
	uint8_t st;

	blkt_req_init(t, &r);
	blkt_req_build(&r, type, sector, &b, len ? 1 : 0);
	st = blkt_do(t, q, &r);
	if (done_len)
		*done_len = r.len;
	return st;
}

uint8_t blkt_nodata(struct blkt *t, unsigned int q, uint32_t type, uint64_t sector)
{
	uint32_t len;
	uint8_t st = blkt_rw(t, q, type, sector, 0, 0, &len);

	/* Nothing but the status byte is written. */
	assert_int_equal(len, 1);
	return st;
}

uint8_t blkt_write_pattern(struct blkt *t, unsigned int q, uint64_t sector, uint32_t nsect,
			   uint64_t seed)
{
	uint32_t len = nsect * BLKT_SECTOR, done;
	uint64_t gpa;
	void *p = blkt_data(t, len, 0, &gpa);
	uint8_t st;

	blkt_pattern(p, len, sector * BLKT_SECTOR, seed);
	st = blkt_rw(t, q, VIRTIO_BLK_T_OUT, sector, gpa, len, &done);
	assert_int_equal(done, 1);
	return st;
}

void blkt_check_read(struct blkt *t, unsigned int q, uint64_t sector, uint32_t nsect,
		     uint64_t seed)
{
	uint32_t len = nsect * BLKT_SECTOR, done;
	uint64_t gpa;
	uint8_t *p = blkt_data(t, len, 0, &gpa);
	long bad;

	/* Poison: a read that transfers nothing must not pass as zeroes. */
	memset(p, 0xa5, len);
	assert_int_equal(blkt_rw(t, q, VIRTIO_BLK_T_IN, sector, gpa, len, &done), VIRTIO_BLK_S_OK);
	assert_int_equal(done, len + 1);
	bad = blkt_pattern_diff(p, len, sector * BLKT_SECTOR, seed);
	if (bad >= 0)
		fail_msg("read of %u sectors at sector %llu: byte %ld differs (seed %llu)", nsect,
			 (unsigned long long)sector, bad, (unsigned long long)seed);
}

uint8_t blkt_ranges(struct blkt *t, unsigned int q, uint32_t type,
		    const struct virtio_blk_discard_write_zeroes *ranges, unsigned int n)
{
	struct virtio_blk_discard_write_zeroes *g;
	struct blkt_req r;
	struct blkt_buf b;
	uint8_t st;

	assert_true(n > 0);
	g = blkt_data(t, n * sizeof(*g), 16, &b.gpa);
	b.len = (uint32_t)(n * sizeof(*g));
	for (unsigned int i = 0; i < n; i++) {
		g[i].sector = htole64(ranges[i].sector);
		g[i].num_sectors = htole32(ranges[i].num_sectors);
		g[i].flags = htole32(ranges[i].flags);
	}
	blkt_req_init(t, &r);
	blkt_req_build(&r, type, 0, &b, 1);
	st = blkt_do(t, q, &r);
	assert_int_equal(r.len, 1);
	return st;
}

void blkt_check_file(const char *path, uint64_t off, uint64_t len, uint64_t seed)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t chunk = 1u << 20;
	uint8_t *buf = malloc(chunk);

	assert_true(fd >= 0);
	assert_non_null(buf);
	for (uint64_t done = 0; done < len; done += chunk) {
		size_t n = len - done < chunk ? (size_t)(len - done) : chunk;
		long bad;

		assert_int_equal(pread(fd, buf, n, (off_t)(off + done)), (ssize_t)n);
		bad = blkt_pattern_diff(buf, n, off + done, seed);
		if (bad >= 0)
			fail_msg("%s: byte at offset %llu differs from the pattern of seed %llu",
				 path, (unsigned long long)(off + done + (uint64_t)bad),
				 (unsigned long long)seed);
	}
	free(buf);
	close(fd);
}

void blkt_get_config(struct blkt *t, struct virtio_blk_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	assert_int_equal(vuf_get_config(t->vuf, 0, cfg, sizeof(*cfg)), 0);
}

unsigned int blkt_inflight(struct blkt *t, unsigned int qsize, unsigned int *in_used)
{
	size_t size;
	uint8_t *area = vuf_inflight_area(t->vuf, &size);
	unsigned int n = 0;

	assert_non_null(area);
	assert_true(size >= vu_inflight_queue_region_size(qsize));
	*in_used = 0;
	if (!t->packed) {
		struct vu_inflight_region_split *g = (void *)area;
		uint16_t used = le16toh(vu_load_acquire16(&vuf_vq_used_split(t->vq[0])->idx));

		for (unsigned int i = 0; i < qsize; i++)
			n += __atomic_load_n(&g->desc[i].inflight, __ATOMIC_ACQUIRE) == 1;
		*in_used = (uint16_t)(used - vu_load_acquire16(&g->used_idx));
	} else {
		struct vu_inflight_region_packed *g = (void *)area;

		for (unsigned int i = 0; i < qsize; i++)
			n += __atomic_load_n(&g->desc[i].inflight, __ATOMIC_ACQUIRE) == 1;
	}
	return n;
}

long blkt_resubmitted(const struct blkt *t)
{
	char *log = blkt_read_log(t), *p, *last = NULL;
	long n = -1;

	for (p = log; p && (p = strstr(p, "resubmitting ")); p++)
		last = p;
	if (last)
		n = strtol(last + strlen("resubmitting "), NULL, 10);
	free(log);
	return n;
}
