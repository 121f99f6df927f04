// SPDX-License-Identifier: MIT
/*
 * Helpers of the integration tests (see it.h): the daemon as a child
 * process, /proc probes, QEMU's start sequence, the echo workload.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "it.h"
#include "vu_util.h"

const char *it_testdev;

void it_sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static uint64_t now_ms(void)
{
	return vu_now_ns() / 1000000;
}

/* ==================================================================== */
/* The daemon                                                           */
/* ==================================================================== */

int it_daemon_start(struct it_daemon *d, const char *sock, const char *const *args,
		    bool wait_socket)
{
	const char *argv[32];
	unsigned int n = 0;
	uint64_t deadline;
	int logfd;
	pid_t pid;

	argv[n++] = it_testdev;
	argv[n++] = "--socket-path";
	argv[n++] = sock;
	for (unsigned int i = 0; args && args[i]; i++) {
		if (n + 1 >= VU_ARRAY_SIZE(argv))
			return -E2BIG;
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	logfd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(logfd);
		return -errno;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		if (null < 0 || dup2(null, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
			_exit(126);
		/* Only stdio: the daemon's fd count must not depend on ours. */
		syscall(SYS_close_range, 3, ~0u, 0);
		execv(it_testdev, (char *const *)argv);
		_exit(127);
	}
	close(logfd);
	d->pid = pid;
	d->status = 0;
	if (!wait_socket)
		return 0;
	deadline = now_ms() + IT_TIMEOUT_MS;
	for (;;) {
		struct stat st;

		if (stat(sock, &st) == 0 && S_ISSOCK(st.st_mode))
			return 0;
		if (!it_daemon_alive(d))
			return -ECHILD;
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		it_sleep_ms(1);
	}
}

static void describe_status(const char *what, int status)
{
	if (WIFEXITED(status))
		print_error("%s: exited with status %d\n", what, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		print_error("%s: killed by signal %d (%s)\n", what, WTERMSIG(status),
			    strsignal(WTERMSIG(status)));
}

bool it_daemon_alive(struct it_daemon *d)
{
	int status;

	if (!d->pid)
		return false;
	if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
		d->pid = 0;
		d->status = status;
		return false;
	}
	return true;
}

int it_daemon_wait_exit(struct it_daemon *d, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;

	while (it_daemon_alive(d)) {
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		it_sleep_ms(1);
	}
	return d->status;
}

int it_daemon_stop(struct it_daemon *d)
{
	int status;

	if (!d->pid) {
		if (d->status && !(WIFSIGNALED(d->status) && WTERMSIG(d->status) == SIGKILL)) {
			describe_status("vu-testdev (reaped earlier)", d->status);
			d->status = 0;
			return -1;
		}
		return 0;
	}
	kill(d->pid, SIGCONT);
	kill(d->pid, SIGTERM);
	status = it_daemon_wait_exit(d, 10000);
	if (status == -ETIMEDOUT) {
		print_error("vu-testdev %d: still running 10 s after SIGTERM; killed\n", d->pid);
		it_daemon_kill(d);
		return -1;
	}
	d->status = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		describe_status("vu-testdev after SIGTERM", status);
		return -1;
	}
	return 0;
}

void it_daemon_kill(struct it_daemon *d)
{
	if (!d->pid)
		return;
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &d->status, 0);
	d->pid = 0;
	d->status = 0;
}

/* State letter of a task from its stat file, or 0. */
static char task_state(const char *path)
{
	char buf[512], *p;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

int it_daemon_freeze(struct it_daemon *d)
{
	uint64_t deadline = now_ms() + IT_TIMEOUT_MS;
	char path[96];

	if (!d->pid || kill(d->pid, SIGSTOP))
		return -ESRCH;
	/* The signal reaches each thread in its own time: a poller may run
	 * on for a moment.  Stopped means every task in state T. */
	snprintf(path, sizeof(path), "/proc/%d/task", (int)d->pid);
	for (;;) {
		bool all = true;
		struct dirent *de;
		DIR *dir = opendir(path);

		if (!dir)
			return -errno;
		while ((de = readdir(dir))) {
			char stat[384];

			if (de->d_name[0] == '.')
				continue;
			snprintf(stat, sizeof(stat), "%s/%s/stat", path, de->d_name);
			if (task_state(stat) != 'T')
				all = false;
		}
		closedir(dir);
		if (all)
			return 0;
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		it_sleep_ms(1);
	}
}

unsigned int it_log_count(const struct it_daemon *d, const char *s)
{
	unsigned int n = 0;
	char line[2048];
	FILE *f = fopen(d->log, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, s))
			n++;
	fclose(f);
	return n;
}

static void dump_log(const char *path)
{
	char line[2048];
	long lines = 0, skip;
	FILE *f = fopen(path, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		lines++;
	skip = lines > 120 ? lines - 120 : 0;
	rewind(f);
	fprintf(stderr, "---- %s (%ld lines%s) ----\n", path, lines, skip ? ", last 120" : "");
	for (long i = 0; fgets(line, sizeof(line), f); i++)
		if (i >= skip)
			fputs(line, stderr);
	fprintf(stderr, "---- end of %s ----\n", path);
	fclose(f);
}

/* ==================================================================== */
/* /proc                                                                */
/* ==================================================================== */

int it_proc_fds(pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

int it_proc_maps(pid_t pid)
{
	char path[64], line[512];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (strchr(line, '\n'))
			n++;
	fclose(f);
	return n;
}

long it_proc_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

double it_proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long utime, stime;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* Fields after the command name, which may hold spaces: state is
	 * field 3, utime 14, stime 15. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &utime, &stime) != 2)
		return -1;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

int it_wait_fds(pid_t pid, int want, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	int n;

	while ((n = it_proc_fds(pid)) != want && now_ms() < deadline)
		it_sleep_ms(2);
	return n;
}

/* ==================================================================== */
/* Fixture                                                              */
/* ==================================================================== */

int it_setup(void **state)
{
	struct it_fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->priv_case = *state;
	snprintf(f->dir, sizeof(f->dir), "/tmp/vu-it-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->sock, sizeof(f->sock), "%s/vu.sock", f->dir);
	for (unsigned int i = 0; i < VU_ARRAY_SIZE(f->d); i++)
		snprintf(f->d[i].log, sizeof(f->d[i].log), "%s/daemon%u.log", f->dir, i);
	*state = f;
	return 0;
}

int it_teardown(void **state)
{
	struct it_fixture *f = *state;
	char cmd[128];
	int ret = 0;

	if (f->cleanup)
		f->cleanup(f->cleanup_arg);
	for (unsigned int i = 0; i < IT_MAX_FE; i++) {
		it_fe_close(f->fe[i]);
		f->fe[i] = NULL;
	}
	for (unsigned int i = 0; i < VU_ARRAY_SIZE(f->d); i++)
		if (it_daemon_stop(&f->d[i]))
			ret = -1;
	if (ret || !f->passed || getenv("IT_VERBOSE"))
		for (unsigned int i = 0; i < VU_ARRAY_SIZE(f->d); i++)
			dump_log(f->d[i].log);
	/* The directory holds only what we created there. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		print_error("cannot remove %s\n", f->dir);
	free(f);
	return ret;
}

void it_start(struct it_fixture *f, unsigned int i, const char *const *args)
{
	int ret = it_daemon_start(&f->d[i], f->sock, args, true);

	if (ret)
		fail_msg("vu-testdev did not start: %s", strerror(-ret));
}

/* ==================================================================== */
/* Front-end                                                            */
/* ==================================================================== */

static int fe_negotiate(struct it_fe *fe, const struct it_fe_opts *o)
{
	const uint64_t pf = 1ull << VU_F_PROTOCOL_FEATURES;
	uint64_t wanted_proto = o->protocol ? o->protocol : IT_PROTOCOL_ALL;
	uint64_t offered, poffered, num;
	uint8_t config[16];
	int ret;

	/* vhost_user_backend_init */
	ret = vuf_get_features(fe->vuf, &offered);
	if (ret)
		return ret;
	if (!(offered & pf))
		return -EPROTO;
	ret = vuf_get_protocol_features(fe->vuf, &poffered);
	if (!ret)
		ret = vuf_set_protocol_features(fe->vuf, poffered & wanted_proto);
	if (!ret && vuf_has_protocol_feature(fe->vuf, VU_PROTOCOL_F_MQ)) {
		ret = vuf_get_queue_num(fe->vuf, &num);
		if (!ret && num < fe->nqueues)
			ret = -ERANGE;
	}
	if (!ret && vuf_has_protocol_feature(fe->vuf, VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS))
		ret = vuf_get_max_mem_slots(fe->vuf, &num);
	if (!ret && vuf_has_protocol_feature(fe->vuf, VU_PROTOCOL_F_BACKEND_REQ))
		ret = vuf_open_backend_channel(fe->vuf);
	/* vhost_dev_init */
	if (!ret)
		ret = vuf_set_owner(fe->vuf);
	if (!ret)
		ret = vuf_get_features(fe->vuf, &offered);
	/* vhost-user-blk realize */
	if (!ret && vuf_has_protocol_feature(fe->vuf, VU_PROTOCOL_F_CONFIG))
		ret = vuf_get_config(fe->vuf, 0, config, sizeof(config));
	/* vhost-user-blk start: the inflight area before vhost_dev_start */
	if (!ret && o->inflight)
		ret = vuf_get_inflight(fe->vuf, (uint16_t)fe->nqueues, (uint16_t)fe->qsize, NULL,
				       NULL);
	if (!ret && o->inflight)
		ret = vuf_set_inflight(fe->vuf, -1, NULL);
	if (ret)
		return ret;
	fe->features = (offered & (o->features | (1ull << VIRTIO_F_VERSION_1))) | pf;
	return vuf_set_features(fe->vuf, fe->features);
}

/* Negotiate on vuf (taken, closed on error) into a new it_fe. */
static int fe_create(struct vuf *vuf, const struct it_fe_opts *o, struct it_fe **out)
{
	struct it_fe *fe;
	int ret;

	if (!vuf)
		return -errno;
	if (o->nqueues > IT_MAX_QUEUES) {
		vuf_close(vuf);
		return -EINVAL;
	}
	fe = calloc(1, sizeof(*fe));
	if (!fe) {
		vuf_close(vuf);
		return -ENOMEM;
	}
	fe->vuf = vuf;
	fe->nqueues = o->nqueues;
	fe->qsize = o->qsize ? o->qsize : IT_QSIZE;
	ret = fe_negotiate(fe, o);
	if (ret) {
		it_fe_close(fe);
		return ret;
	}
	*out = fe;
	return 0;
}

int it_fe_connect(const char *sock, const struct it_fe_opts *o, struct it_fe **out)
{
	return fe_create(vuf_connect(sock, IT_TIMEOUT_MS), o, out);
}

int it_fe_add_queue(struct it_fe *fe, unsigned int i, uint64_t area)
{
	struct vuf_vq_opts vo = {
		.index = i, .size = fe->qsize,
		.packed = fe->features & (1ull << VIRTIO_F_RING_PACKED),
	};
	bool indirect = fe->features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);

	if (i >= IT_MAX_QUEUES || fe->vq[i])
		return -EINVAL;
	fe->vq[i] = vuf_vq_create(fe->vuf, &vo);
	if (!fe->vq[i])
		return -errno;
	if (!area)
		return 0;
	fe->echo[i] = it_echo_create(fe->vuf, fe->vq[i], area, indirect ? IT_ECHO_INDIRECT : 0,
				     0x1234567u + i);
	if (!fe->echo[i])
		return -errno;
	return 0;
}

/* it_fe_start after the negotiation. */
static int fe_start(struct it_fe *fe, const struct it_fe_opts *o)
{
	int ret;

	ret = vuf_mem_add(fe->vuf, IT_GPA_RING, IT_RING_BYTES, 0);
	if (!ret)
		ret = vuf_mem_add(fe->vuf, IT_GPA_DATA, IT_DATA_BYTES, 0);
	for (unsigned int i = 0; i < fe->nqueues && !ret; i++)
		ret = it_fe_add_queue(fe, i, IT_GPA_DATA + i * IT_QUEUE_AREA(fe->qsize));
	if (ret)
		return ret;
	/* vhost_dev_start */
	if (o->hot_add) {
		ret = vuf_mem_hot_add(fe->vuf, IT_GPA_RING, IT_RING_BYTES, 0);
		if (!ret)
			ret = vuf_mem_hot_add(fe->vuf, IT_GPA_DATA, IT_DATA_BYTES, 0);
	} else {
		ret = vuf_mem_commit(fe->vuf);
	}
	for (unsigned int i = 0; i < fe->nqueues && !ret; i++)
		ret = vuf_vq_start(fe->vq[i]);
	if (!ret && vuf_has_protocol_feature(fe->vuf, VU_PROTOCOL_F_STATUS))
		ret = vuf_set_status(fe->vuf, IT_STATUS_DRIVER_OK);
	return ret;
}

int it_fe_start(const char *sock, const struct it_fe_opts *o, struct it_fe **out)
{
	struct it_fe *fe;
	int ret;

	ret = it_fe_connect(sock, o, &fe);
	if (ret)
		return ret;
	ret = fe_start(fe, o);
	if (ret) {
		it_fe_close(fe);
		return ret;
	}
	*out = fe;
	return 0;
}

int it_fe_start_fd(int fd, const struct it_fe_opts *o, struct it_fe **out)
{
	struct it_fe *fe;
	int ret;

	ret = fe_create(vuf_connect_fd(fd), o, &fe);
	if (ret)
		return ret;
	ret = fe_start(fe, o);
	if (ret) {
		it_fe_close(fe);
		return ret;
	}
	*out = fe;
	return 0;
}

void it_fe_close(struct it_fe *fe)
{
	if (!fe)
		return;
	for (unsigned int i = 0; i < IT_MAX_QUEUES; i++)
		it_echo_destroy(fe->echo[i]);
	vuf_close(fe->vuf);
	free(fe);
}

void it_fe_register(struct it_fixture *f, struct it_fe *fe)
{
	unsigned int i;

	for (i = 0; i < IT_MAX_FE && f->fe[i]; i++)
		;
	assert_true(i < IT_MAX_FE);
	f->fe[i] = fe;
}

struct it_fe *it_fe(struct it_fixture *f, const struct it_fe_opts *o)
{
	struct it_fe *fe = NULL;
	int ret;

	ret = it_fe_start(f->sock, o, &fe);
	if (ret)
		fail_msg("front-end start sequence failed: %d (%s)", ret, strerror(-ret));
	it_fe_register(f, fe);
	return fe;
}

void it_fe_drop(struct it_fixture *f, struct it_fe *fe)
{
	for (unsigned int i = 0; i < IT_MAX_FE; i++)
		if (f->fe[i] == fe)
			f->fe[i] = NULL;
	it_fe_close(fe);
}

/* ==================================================================== */
/* Echo workload                                                        */
/* ==================================================================== */

#define HALF (IT_SLOT_SIZE / 2)
#define MAX_SEGS 3
#define GAP 16
#define POISON 0xa5

struct echo_slot {
	uint64_t seq;
	uint64_t gpa;           /* slot's buffers */
	uint8_t *p;
	uint32_t out_len, in_len;
	uint16_t out_seg[MAX_SEGS], in_seg[MAX_SEGS];
	uint8_t nout, nin;
	bool busy;
	bool hold;
};

struct it_echo {
	struct vuf *vuf;
	struct vuf_vq *vq;
	unsigned int nslots;
	unsigned int flags;
	uint64_t gpa;
	uint8_t *area;
	uint32_t rng;
	struct echo_slot *slot;
	unsigned int *free;
	unsigned int nfree;
	uint64_t seq;           /* next sequence number (= chains posted) */
	uint64_t completed;
	unsigned int held;      /* held chains in flight */
	uint8_t *done;          /* completions per seq */
	uint64_t done_cap;
	uint8_t *expect;        /* scratch: the readable bytes regenerated */
	char err[512];
	/* async run */
	pthread_t thread;
	uint64_t async_n;
	int async_timeout;
	int async_ret;
};

static uint32_t xorshift(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

static void __attribute__((format(printf, 2, 3))) echo_fail(struct it_echo *e, const char *fmt, ...)
{
	va_list ap;

	if (e->err[0])
		return;
	va_start(ap, fmt);
	vsnprintf(e->err, sizeof(e->err), fmt, ap);
	va_end(ap);
}

/* The readable bytes of chain seq. */
static void gen_data(uint8_t *buf, uint32_t len, uint64_t seq, bool hold)
{
	uint32_t s = (uint32_t)(seq * 2654435761u) ^ (uint32_t)(seq >> 32) ^ 0x9e3779b9u;
	uint32_t i = 0;

	if (!s)
		s = 1;
	for (; i + 4 <= len; i += 4) {
		uint32_t v = xorshift(&s);

		memcpy(buf + i, &v, 4);
	}
	if (i < len) {
		uint32_t v = xorshift(&s);

		memcpy(buf + i, &v, len - i);
	}
	if (hold)
		memcpy(buf, "HOLDHOLD", 8);
}

struct it_echo *it_echo_create(struct vuf *vuf, struct vuf_vq *vq, uint64_t gpa,
			       unsigned int flags, uint32_t seed)
{
	struct it_echo *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->vuf = vuf;
	e->vq = vq;
	e->nslots = vuf_vq_size(vq);
	e->flags = flags;
	e->rng = seed ? seed : 1;
	e->slot = calloc(e->nslots, sizeof(*e->slot));
	e->free = calloc(e->nslots, sizeof(*e->free));
	e->expect = malloc(HALF);
	e->done_cap = 1 << 16;
	e->done = calloc(e->done_cap, 1);
	if (!e->slot || !e->free || !e->expect || !e->done || it_echo_set_area(e, gpa)) {
		it_echo_destroy(e);
		errno = ENOMEM;
		return NULL;
	}
	for (unsigned int i = 0; i < e->nslots; i++)
		e->free[e->nfree++] = e->nslots - 1 - i;
	return e;
}

void it_echo_destroy(struct it_echo *e)
{
	if (!e)
		return;
	free(e->slot);
	free(e->free);
	free(e->expect);
	free(e->done);
	free(e);
}

int it_echo_set_area(struct it_echo *e, uint64_t gpa)
{
	uint8_t *p = vuf_gpa_to_ptr(e->vuf, gpa, IT_QUEUE_AREA(e->nslots));

	if (!p)
		return -EFAULT;
	e->gpa = gpa;
	e->area = p;
	return 0;
}

/* Split len into n random non-zero parts. */
static void split_len(struct it_echo *e, uint32_t len, uint8_t n, uint16_t *parts)
{
	uint32_t left = len;

	for (uint8_t k = 0; k + 1 < n; k++) {
		uint32_t max = left - (uint32_t)(n - 1 - k);

		parts[k] = (uint16_t)(1 + xorshift(&e->rng) % max);
		left -= parts[k];
	}
	parts[n - 1] = (uint16_t)left;
}

static void chain_shape(struct it_echo *e, struct echo_slot *s, bool hold)
{
	uint32_t r = xorshift(&e->rng);

	s->out_len = xorshift(&e->rng) % 4097;
	if (hold && s->out_len < 8)
		s->out_len = 8;
	if ((r & 15) == 0 && !hold) {
		s->out_len = 0;         /* writable only */
	}
	if ((r >> 4 & 15) == 0 && s->out_len) {
		s->in_len = 0;          /* readable only */
	} else {
		/* Usually room for the echo, sometimes less (truncated). */
		uint32_t extra = xorshift(&e->rng) % 257;

		s->in_len = (r >> 8 & 7) == 0 ? (s->out_len > extra ? s->out_len - extra : 1)
					     : s->out_len + extra;
		if (!s->in_len)
			s->in_len = 1;
	}
	s->nout = s->out_len ? (uint8_t)(1 + (r >> 12) % MAX_SEGS) : 0;
	if (hold)
		s->nout = 1;
	if (s->nout > s->out_len)
		s->nout = (uint8_t)s->out_len;
	s->nin = s->in_len ? (uint8_t)(1 + (r >> 16) % MAX_SEGS) : 0;
	if (s->nin > s->in_len)
		s->nin = (uint8_t)s->in_len;
	if (s->nout)
		split_len(e, s->out_len, s->nout, s->out_seg);
	if (s->nin)
		split_len(e, s->in_len, s->nin, s->in_seg);
	s->hold = hold;
}

int it_echo_post(struct it_echo *e, unsigned int max, unsigned int flags)
{
	unsigned int posted = 0;

	while (posted < max && e->nfree) {
		unsigned int idx = e->free[e->nfree - 1];
		struct echo_slot *s = &e->slot[idx];
		struct vuf_seg segs[2 * MAX_SEGS];
		unsigned int n = 0, pflags = 0;
		uint64_t off = 0;
		int ret;

		if (e->seq >= e->done_cap) {
			uint8_t *d = realloc(e->done, e->done_cap * 2);

			if (!d)
				return -ENOMEM;
			memset(d + e->done_cap, 0, e->done_cap);
			e->done = d;
			e->done_cap *= 2;
		}
		s->gpa = e->gpa + (uint64_t)idx * IT_SLOT_SIZE;
		s->p = e->area + (uint64_t)idx * IT_SLOT_SIZE;
		s->seq = e->seq;
		chain_shape(e, s, flags & IT_POST_HOLD);
		gen_data(s->p, s->out_len, s->seq, s->hold);
		memset(s->p + HALF, POISON, HALF);
		for (uint8_t k = 0; k < s->nout; k++) {
			segs[n++] = (struct vuf_seg){ .gpa = s->gpa + off, .len = s->out_seg[k] };
			off += s->out_seg[k];
		}
		off = HALF;
		for (uint8_t k = 0; k < s->nin; k++) {
			segs[n++] = (struct vuf_seg){ .gpa = s->gpa + off, .len = s->in_seg[k],
						      .writable = true };
			off += s->in_seg[k] + GAP;
		}
		if ((e->flags & IT_ECHO_INDIRECT) && (xorshift(&e->rng) & 1))
			pflags |= VUF_POST_INDIRECT;
		ret = vuf_vq_post_flags(e->vq, segs, n, (s->seq << 16) | idx, pflags);
		if (ret == -ENOSPC)
			break;
		if (ret) {
			echo_fail(e, "posting chain %llu: %s", (unsigned long long)s->seq,
				  strerror(-ret));
			return ret;
		}
		s->busy = true;
		if (s->hold)
			e->held++;
		e->nfree--;
		e->seq++;
		posted++;
	}
	return (int)posted;
}

int it_echo_kick(struct it_echo *e)
{
	return vuf_vq_kick(e->vq);
}

static int check_completion(struct it_echo *e, const struct vuf_completion *c)
{
	uint64_t seq = c->cookie >> 16;
	unsigned int idx = (unsigned int)(c->cookie & 0xffff);
	struct echo_slot *s;
	uint32_t written, pos = 0;
	const uint8_t *in;

	if (idx >= e->nslots || !e->slot[idx].busy || e->slot[idx].seq != seq) {
		echo_fail(e, "completion of cookie 0x%llx: not a chain in flight",
			  (unsigned long long)c->cookie);
		return -EBADMSG;
	}
	s = &e->slot[idx];
	if (e->done[seq]++) {
		echo_fail(e, "chain %llu completed twice", (unsigned long long)seq);
		return -EBADMSG;
	}
	written = s->out_len < s->in_len ? s->out_len : s->in_len;
	if (c->len != written) {
		echo_fail(e, "chain %llu (%u readable in %u, %u writable in %u%s) completed with %u bytes, expected %u",
			  (unsigned long long)seq, s->out_len, s->nout, s->in_len, s->nin,
			  s->hold ? ", held" : "", c->len, written);
		return -EBADMSG;
	}
	gen_data(e->expect, s->out_len, seq, s->hold);
	if (memcmp(s->p, e->expect, s->out_len)) {
		echo_fail(e, "chain %llu: the device changed its readable buffer",
			  (unsigned long long)seq);
		return -EBADMSG;
	}
	in = s->p + HALF;
	for (uint8_t k = 0; k < s->nin; k++) {
		uint32_t len = s->in_seg[k];
		uint32_t echo = pos < written ? (written - pos < len ? written - pos : len) : 0;

		if (memcmp(in, e->expect + pos, echo)) {
			echo_fail(e, "chain %llu: writable segment %u of %u bytes does not hold the echo at offset %u",
				  (unsigned long long)seq, k, len, pos);
			return -EBADMSG;
		}
		/* Past the echo, and the gap after the segment: untouched. */
		for (uint32_t j = echo; j < len + GAP; j++) {
			if (in[j] != POISON) {
				echo_fail(e, "chain %llu: byte %u of writable segment %u (%u bytes, %u echoed) was written",
					  (unsigned long long)seq, j, k, len, echo);
				return -EBADMSG;
			}
		}
		in += len + GAP;
		pos += len;
	}
	s->busy = false;
	if (s->hold)
		e->held--;
	e->free[e->nfree++] = idx;
	/* Read by other threads (it_echo_completed). */
	__atomic_store_n(&e->completed, e->completed + 1, __ATOMIC_RELAXED);
	return 0;
}

int it_echo_reap(struct it_echo *e)
{
	struct vuf_completion c[64];
	int total = 0;

	for (;;) {
		int n = vuf_vq_reap(e->vq, c, VU_ARRAY_SIZE(c));

		if (n < 0) {
			echo_fail(e, "reap: %s", vuf_vq_error(e->vq) ? vuf_vq_error(e->vq) : strerror(-n));
			return n;
		}
		for (int i = 0; i < n; i++)
			if (check_completion(e, &c[i]))
				return -EBADMSG;
		total += n;
		if (n < (int)VU_ARRAY_SIZE(c))
			return total;
	}
}

int it_echo_run(struct it_echo *e, uint64_t n, int timeout_ms)
{
	uint64_t target = e->completed + n, to_post = n;
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;

	while (e->completed < target) {
		int ret;

		if (to_post) {
			ret = it_echo_post(e, to_post > UINT32_MAX ? UINT32_MAX : (unsigned int)to_post, 0);
			if (ret < 0)
				return ret;
			to_post -= (unsigned int)ret;
		}
		ret = it_echo_kick(e);
		if (ret < 0) {
			echo_fail(e, "kick: %s", strerror(-ret));
			return ret;
		}
		ret = it_echo_reap(e);
		if (ret < 0)
			return ret;
		if (ret)
			continue;
		if (now_ms() > deadline) {
			echo_fail(e, "timeout: %llu of %llu chains completed, %u in flight",
				  (unsigned long long)(n - (target - e->completed)),
				  (unsigned long long)n, vuf_vq_inflight(e->vq));
			return -ETIMEDOUT;
		}
		ret = vuf_vq_wait(e->vq, 200);
		if (ret && ret != -ETIMEDOUT) {
			echo_fail(e, "wait: %s", strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* Reap until at most `left` chains are in flight. */
static int wait_inflight(struct it_echo *e, unsigned int left, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	int ret;

	while (vuf_vq_inflight(e->vq) > left) {
		ret = it_echo_reap(e);
		if (ret < 0)
			return ret;
		if (ret)
			continue;
		if (now_ms() > deadline) {
			echo_fail(e, "timeout: %u chains still in flight (%u of them held)",
				  vuf_vq_inflight(e->vq), e->held);
			return -ETIMEDOUT;
		}
		ret = vuf_vq_wait(e->vq, 200);
		if (ret && ret != -ETIMEDOUT) {
			echo_fail(e, "wait: %s", strerror(-ret));
			return ret;
		}
	}
	return 0;
}

int it_echo_drain(struct it_echo *e, int timeout_ms)
{
	int ret = vuf_vq_kick(e->vq);

	if (ret < 0)
		return ret;
	return wait_inflight(e, e->held, timeout_ms);
}

int it_echo_wait_all(struct it_echo *e, int timeout_ms)
{
	return wait_inflight(e, 0, timeout_ms);
}

unsigned int it_echo_held(const struct it_echo *e)
{
	return e->held;
}

int it_echo_check_all_done(struct it_echo *e)
{
	for (uint64_t s = 0; s < e->seq; s++) {
		if (e->done[s] != 1) {
			echo_fail(e, "chain %llu of %llu completed %u times",
				  (unsigned long long)s, (unsigned long long)e->seq, e->done[s]);
			return -EBADMSG;
		}
	}
	return 0;
}

static void *echo_thread(void *arg)
{
	struct it_echo *e = arg;

	e->async_ret = it_echo_run(e, e->async_n, e->async_timeout);
	return NULL;
}

int it_echo_run_async(struct it_echo *e, uint64_t n, int timeout_ms)
{
	e->async_n = n;
	e->async_timeout = timeout_ms;
	return -pthread_create(&e->thread, NULL, echo_thread, e);
}

int it_echo_join(struct it_echo *e)
{
	pthread_join(e->thread, NULL);
	return e->async_ret;
}

uint64_t it_echo_posted(const struct it_echo *e)
{
	return e->seq;
}

uint64_t it_echo_completed(const struct it_echo *e)
{
	return __atomic_load_n(&e->completed, __ATOMIC_RELAXED);
}

unsigned int it_echo_inflight(const struct it_echo *e)
{
	return vuf_vq_inflight(e->vq);
}

const char *it_echo_error(const struct it_echo *e)
{
	return e->err[0] ? e->err : "no error recorded";
}

struct vuf_vq *it_echo_vq(const struct it_echo *e)
{
	return e->vq;
}

/* ==================================================================== */
/* main                                                                 */
/* ==================================================================== */

int it_main(int argc, char **argv, const char *name, const struct CMUnitTest *tests, size_t n)
{
	if (argc < 2 || access(argv[1], X_OK)) {
		fprintf(stderr, "usage: %s PATH-TO-vu-testdev\n", argv[0]);
		return 2;
	}
	it_testdev = argv[1];
	/* A daemon that dies must not take us with it through a write. */
	signal(SIGPIPE, SIG_IGN);
	return _cmocka_run_group_tests(name, tests, n, NULL, NULL);
}
