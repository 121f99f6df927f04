// SPDX-License-Identifier: MIT
/*
 * Unit tests of the vhost-user message handlers (common/handlers.c and the
 * device state machine in common/device.c): vu_dev_handle_msg() driven
 * directly with crafted messages, no socket.
 *
 * The device has two queues, a 60-byte config space and one real poller
 * that is never run (quiescing a poller that does not run returns at
 * once).  Guest memory is one memfd holding two 64 KiB regions, whose
 * front-end addresses (UVAs) are not contiguous; kick and call fds are
 * eventfds.
 *
 * Every hostile message of SECURITY.md A.1-A.10 that concerns the library
 * is a row of the table `rows` below, named after its class.  A row that
 * must be refused is checked for:
 *   - the outcome: an ack with a non-zero value (REPLY_ACK negotiated and
 *     NEED_REPLY set), or a negative return (the connection is closed) for
 *     requests whose front-end waits for a reply;
 *   - every fd passed with the message being closed, and the process's
 *     count of open fds and of memfd mappings being unchanged (A.2);
 *   - no change to the device or its queues (a queue index that does not
 *     exist must not alias one that does, A.4; a bad table keeps the old
 *     one, A.8);
 *   - a log line.
 * Every test ends with a disconnect after which the process has exactly
 * the fds and memfd mappings it had before the test (D.29).
 *
 * Sequences that take more than one message (repeated messages, ring
 * re-translation, order of messages, the QEMU negotiation) are tests of
 * their own.  libc failures are injected with -Wl,--wrap=mmap,mmap64,
 * calloc,malloc (with _FILE_OFFSET_BITS=64 the library calls mmap64).
 *
 * Set VU_TEST_VERBOSE=1 in the environment to see the library's log lines.
 */
#include <dirent.h>
#include <endian.h>
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
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "vu_dev.h"
#include "vu_poller.h"
#include "vu_util.h"

/* ---- libc failure injection (-Wl,--wrap=...) ------------------------- */

/* With _FILE_OFFSET_BITS=64 glibc's headers turn mmap() into mmap64(). */
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__real_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);

/* Fail the n-th call from now (1 = the next one); 0: never. */
static int mmap_fail_at, alloc_fail_at;
/* Set when an armed failure was injected. */
static bool mmap_failed, alloc_failed;

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (mmap_fail_at > 0 && --mmap_fail_at == 0) {
		mmap_failed = true;
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return __real_mmap(addr, len, prot, flags, fd, off);
}

void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (mmap_fail_at > 0 && --mmap_fail_at == 0) {
		mmap_failed = true;
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return __real_mmap64(addr, len, prot, flags, fd, off);
}

void *__wrap_calloc(size_t n, size_t size)
{
	if (alloc_fail_at > 0 && --alloc_fail_at == 0) {
		alloc_failed = true;
		errno = ENOMEM;
		return NULL;
	}
	return __real_calloc(n, size);
}

void *__wrap_malloc(size_t size)
{
	if (alloc_fail_at > 0 && --alloc_fail_at == 0) {
		alloc_failed = true;
		errno = ENOMEM;
		return NULL;
	}
	return __real_malloc(size);
}

/* ---- the device and its guest ---------------------------------------- */

#define NQ            2
#define CONFIG_SIZE   60
#define RING_SIZE     256
/* Feature bits of the test device (the library knows nothing of them). */
#define DEV_FEATURES  ((1ull << 1) | (1ull << 2))

/* Guest memory: one memfd, two regions, UVAs not contiguous. */
#define R_SIZE        0x10000ull
#define R0_GPA        0x0ull
#define R0_UVA        0x7f0000000000ull
#define R1_GPA        0x10000ull
#define R1_UVA        0x7f0000200000ull
#define GUEST_SIZE    (2 * R_SIZE)
#define REG0 { .guest_addr = R0_GPA, .size = R_SIZE, .user_addr = R0_UVA, .mmap_offset = 0 }
#define REG1 { .guest_addr = R1_GPA, .size = R_SIZE, .user_addr = R1_UVA, .mmap_offset = R_SIZE }

/* Ring of queue q in region 0: descriptors, available ring, used ring. */
#define RING_GPA(q)   (0x1000ull + (uint64_t)(q) * 0x4000ull)
#define DESC_UVA(q)   (R0_UVA + RING_GPA(q))
#define AVAIL_UVA(q)  (DESC_UVA(q) + 0x1000)
#define USED_UVA(q)   (DESC_UVA(q) + 0x2000)
#define VRING_ADDR(q) { .index = (q), .desc_user_addr = DESC_UVA(q), \
			.avail_user_addr = AVAIL_UVA(q), .used_user_addr = USED_UVA(q), \
			.log_guest_addr = RING_GPA(q) + 0x2000 }
/* Buffers in region 1. */
#define BUF_GPA       (R1_GPA + 0x100)

#define PROTO_FEATURES                                                                  \
	((1ull << VU_PROTOCOL_F_MQ) | (1ull << VU_PROTOCOL_F_LOG_SHMFD) |                \
	 (1ull << VU_PROTOCOL_F_REPLY_ACK) | (1ull << VU_PROTOCOL_F_CONFIG) |            \
	 (1ull << VU_PROTOCOL_F_INFLIGHT_SHMFD) | (1ull << VU_PROTOCOL_F_RESET_DEVICE) | \
	 (1ull << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS) | (1ull << VU_PROTOCOL_F_STATUS))
#define SPLIT_FEATURES                                                                  \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX) |              \
	 (1ull << VIRTIO_RING_F_INDIRECT_DESC) | (1ull << VU_F_PROTOCOL_FEATURES) |      \
	 DEV_FEATURES)
#define PACKED_FEATURES (SPLIT_FEATURES | (1ull << VIRTIO_F_RING_PACKED))

#define SZ_U64   ((uint32_t)sizeof(uint64_t))
#define SZ_STATE ((uint32_t)sizeof(struct vhost_vring_state))
#define SZ_ADDR  ((uint32_t)sizeof(struct vhost_vring_addr))
#define SZ_MEM(n) ((uint32_t)(offsetof(struct vu_mem_table_desc, regions) + \
			      (n) * sizeof(struct vu_mem_region_desc)))
#define SZ_LOG   ((uint32_t)sizeof(struct vu_log_desc))
#define SZ_INFL  ((uint32_t)sizeof(struct vu_inflight_desc))
#define SZ_REG   ((uint32_t)sizeof(struct vu_single_mem_region))

/* States a row starts from; each includes the ones before it. */
enum stage {
	ST_FRESH,     /* nothing received */
	ST_PROTO,     /* protocol features acked, REPLY_ACK among them */
	ST_OWNER,     /* + SET_OWNER */
	ST_FEATURES,  /* + SET_FEATURES (split ring, or packed) */
	ST_MEM,       /* + SET_MEM_TABLE with both regions */
	ST_NUM,       /* + queue 0: SET_VRING_NUM 256, SET_VRING_BASE 0 */
	ST_ADDR,      /* + queue 0: SET_VRING_ADDR */
	ST_RUNNING,   /* + queue 0: SET_VRING_KICK, CALL, ENABLE: started */
};

enum expect {
	EXP_OK,         /* ack 0 */
	EXP_ERR,        /* refused: ack with a non-zero value */
	EXP_CLOSE,      /* refused: negative return, connection closed */
	EXP_DROP,       /* refused without REPLY_ACK negotiated: nothing sent */
	EXP_REPLY,      /* a reply of reply_size bytes */
};

enum fd_kind {
	FD_EVENT,     /* an eventfd */
	FD_GUEST,     /* the guest memory file (a dup) */
	FD_LOG,       /* a 4 KiB memfd */
	FD_INFL,      /* a memfd sized for 2 inflight queues of 256 */
};

struct row {
	const char *what;       /* SECURITY.md class: case */
	enum stage stage;
	bool packed;            /* features with VIRTIO_F_RING_PACKED */
	uint32_t request;
	bool raw_flags;         /* use flags as is (else VERSION | NEED_REPLY) */
	uint32_t flags;
	uint32_t size;
	union vu_payload p;
	uint8_t nfds;
	enum fd_kind fdk;
	int infl_size;          /* inflight rows: 1 = exact mmap_size, -1 = 1 byte short */
	enum expect expect;
	uint32_t reply_size;    /* EXP_REPLY */
	bool keeps_fds;         /* on success the handler owns the fds */
	bool quiet;             /* refused without a log line: a device option
				 * that is absent (ENOTSUP) */
};

struct fx {
	struct vu_poller *poller;
	struct vu_dev *dev;
	int memfd;                   /* guest memory */
	uint8_t *gmem;               /* the guest's view of it: gpa g at gmem + g */
	uint8_t config[CONFIG_SIZE];
	unsigned int starts[NQ], stops[NQ];
	int start_error;             /* queue_start fails with this if set */
	struct vu_msg msg, reply;
	int base_fds, base_maps;
	const struct row *row;
};

/* ---- process accounting ---------------------------------------------- */

/* Open fds of this process. */
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
	return n - 1;           /* the directory's own fd */
}

/*
 * Memfd mappings of this process (/proc/self/maps lines naming a memfd).
 * Guest memory, dirty logs and inflight areas are all memfds; counting
 * only those keeps the sanitizers' own mappings out of the count.
 */
static int count_memfd_maps(void)
{
	FILE *fp = fopen("/proc/self/maps", "re");
	char line[512];
	int n = 0;

	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp))
		if (strstr(line, "/memfd:"))
			n++;
	fclose(fp);
	return n;
}

static bool fd_is_closed(int fd)
{
	return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

static int new_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	assert_true(fd >= 0);
	return fd;
}

static int new_memfd(const char *name, uint64_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

static uint64_t infl_size(void)
{
	return NQ * vu_inflight_queue_region_size(RING_SIZE);
}

static int make_fd(struct fx *f, enum fd_kind k)
{
	int fd;

	switch (k) {
	case FD_GUEST:
		fd = dup(f->memfd);
		assert_true(fd >= 0);
		return fd;
	case FD_LOG:
		return new_memfd("log", 4096);
	case FD_INFL:
		return new_memfd("inflight", infl_size());
	case FD_EVENT:
	default:
		return new_eventfd();
	}
}

/* ---- log capture: the library writes its lines to fd 2 ----------------- */

static char logbuf[16384];
static int cap_fd = -1, saved_stderr = -1;

static void capture_start(void)
{
	logbuf[0] = '\0';
	fflush(stderr);
	cap_fd = memfd_create("log-capture", MFD_CLOEXEC);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(cap_fd >= 0 && saved_stderr >= 0);
	dup2(cap_fd, STDERR_FILENO);
}

static void capture_stop(void)
{
	ssize_t n;

	if (cap_fd < 0)
		return;
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	n = pread(cap_fd, logbuf, sizeof(logbuf) - 1, 0);
	logbuf[n > 0 ? n : 0] = '\0';
	close(cap_fd);
	cap_fd = saved_stderr = -1;
	if (getenv("VU_TEST_VERBOSE"))
		fputs(logbuf, stderr);
}

/* ---- device callbacks ---------------------------------------------------- */

static uint32_t t_get_config(struct vu_dev *dev, uint8_t *buf, uint32_t len)
{
	struct fx *f = dev->priv;
	uint32_t n = len < CONFIG_SIZE ? len : CONFIG_SIZE;

	memcpy(buf, f->config, n);
	return n;
}

static int t_queue_start(struct vu_dev *dev, struct vu_vq *vq)
{
	struct fx *f = dev->priv;

	if (f->start_error)
		return f->start_error;
	f->starts[vq->index]++;
	return 0;
}

static void t_queue_stop(struct vu_dev *dev, struct vu_vq *vq)
{
	struct fx *f = dev->priv;

	f->stops[vq->index]++;
}

static unsigned int t_queue_process(struct vu_dev *dev, struct vu_vq *vq, unsigned int budget)
{
	(void)dev;
	(void)vq;
	(void)budget;
	return 0;
}

static const struct vu_dev_ops test_ops = {
	.features = DEV_FEATURES,
	.get_config = t_get_config,
	.queue_start = t_queue_start,
	.queue_stop = t_queue_stop,
	.queue_process = t_queue_process,
};

/* ---- fixture ---------------------------------------------------------------- */

static struct fx *fx_create(void)
{
	struct vu_poller_config pc = { .name = "test", .mode = VU_POLL_NEVER, .cpu = -1 };
	struct fx *f = calloc(1, sizeof(*f));
	struct vu_dev_config dc = {
		.name = "test", .num_queues = NQ, .npollers = 1, .ops = &test_ops,
	};

	assert_non_null(f);
	f->poller = vu_poller_create(&pc);
	assert_non_null(f->poller);
	dc.pollers = &f->poller;
	dc.priv = f;
	f->dev = vu_dev_create(&dc);
	assert_non_null(f->dev);
	f->memfd = new_memfd("guest", GUEST_SIZE);
	f->gmem = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
	assert_true(f->gmem != MAP_FAILED);
	for (unsigned int i = 0; i < CONFIG_SIZE; i++)
		f->config[i] = (uint8_t)(0xc0 + i);
	f->base_fds = count_fds();
	f->base_maps = count_memfd_maps();
	return f;
}

/* Disconnect, check that nothing leaked (D.29), free. */
static void fx_destroy(struct fx *f)
{
	mmap_fail_at = alloc_fail_at = 0;
	capture_stop();
	vu_dev_disconnect(f->dev);
	assert_int_equal(count_fds(), f->base_fds);
	assert_int_equal(count_memfd_maps(), f->base_maps);
	vu_dev_destroy(f->dev);
	vu_poller_destroy(f->poller);
	munmap(f->gmem, GUEST_SIZE);
	close(f->memfd);
	free(f);
}

static int setup(void **state)
{
	*state = fx_create();
	return 0;
}

static int teardown(void **state)
{
	fx_destroy(*state);
	return 0;
}

/* ---- messages --------------------------------------------------------------- */

/* Start a message in f->msg: version 1, NEED_REPLY, payload copied. */
static struct vu_msg *mk(struct fx *f, uint32_t req, const void *payload, uint32_t size)
{
	struct vu_msg *m = &f->msg;

	memset(m, 0, sizeof(*m));
	m->hdr.request = req;
	m->hdr.flags = VU_VERSION | VU_FLAG_NEED_REPLY;
	m->hdr.size = size;
	if (payload)
		memcpy(&m->payload, payload, size);
	return m;
}

static struct vu_msg *mk_u64(struct fx *f, uint32_t req, uint64_t v)
{
	return mk(f, req, &v, SZ_U64);
}

static struct vu_msg *mk_state(struct fx *f, uint32_t req, unsigned int index, unsigned int num)
{
	struct vhost_vring_state s = { .index = index, .num = num };

	return mk(f, req, &s, SZ_STATE);
}

static int add_fd(struct fx *f, int fd)
{
	f->msg.fds[f->msg.nfds++] = fd;
	return fd;
}

static int go(struct fx *f)
{
	return vu_dev_handle_msg(f->dev, &f->msg, &f->reply);
}

/* Handle f->msg, expect an ack (REPLY_ACK negotiated) and return its value. */
static uint64_t go_ack(struct fx *f)
{
	int ret = go(f);

	assert_int_equal(ret, VU_HANDLED_REPLY);
	assert_int_equal(f->reply.hdr.size, SZ_U64);
	assert_int_equal(f->reply.hdr.request, f->msg.hdr.request);
	assert_int_equal(f->reply.hdr.flags, VU_VERSION | VU_FLAG_REPLY);
	return f->reply.payload.u64;
}

/* Handle f->msg and expect success: ack 0, or no reply without REPLY_ACK. */
static void go_ok(struct fx *f)
{
	if (!vu_dev_has_protocol_feature(f->dev, VU_PROTOCOL_F_REPLY_ACK)) {
		assert_int_equal(go(f), VU_HANDLED);
		return;
	}
	assert_int_equal(go_ack(f), 0);
}

/* Handle f->msg, a request answered with a payload of size bytes. */
static void go_reply(struct fx *f, uint32_t size)
{
	assert_int_equal(go(f), VU_HANDLED_REPLY);
	assert_int_equal(f->reply.hdr.request, f->msg.hdr.request);
	assert_int_equal(f->reply.hdr.flags, VU_VERSION | VU_FLAG_REPLY);
	assert_int_equal(f->reply.hdr.size, size);
}

static void send_mem_table(struct fx *f)
{
	struct vu_mem_table_desc t = { .nregions = 2, .regions = { REG0, REG1 } };

	mk(f, VU_REQ_SET_MEM_TABLE, &t, SZ_MEM(2));
	add_fd(f, dup(f->memfd));
	add_fd(f, dup(f->memfd));
}

static void send_vring_addr(struct fx *f, unsigned int q)
{
	struct vhost_vring_addr a = VRING_ADDR(q);

	mk(f, VU_REQ_SET_VRING_ADDR, &a, SZ_ADDR);
}

/* Bring the device to stage st (every step must succeed). */
static void reach(struct fx *f, enum stage st, bool packed)
{
	if (st >= ST_PROTO) {
		mk_u64(f, VU_REQ_SET_PROTOCOL_FEATURES, PROTO_FEATURES);
		f->msg.hdr.flags = VU_VERSION;
		assert_int_equal(go(f), VU_HANDLED);
	}
	if (st >= ST_OWNER) {
		mk(f, VU_REQ_SET_OWNER, NULL, 0);
		go_ok(f);
	}
	if (st >= ST_FEATURES) {
		mk_u64(f, VU_REQ_SET_FEATURES, packed ? PACKED_FEATURES : SPLIT_FEATURES);
		go_ok(f);
	}
	if (st >= ST_MEM) {
		send_mem_table(f);
		go_ok(f);
	}
	if (st >= ST_NUM) {
		mk_state(f, VU_REQ_SET_VRING_NUM, 0, RING_SIZE);
		go_ok(f);
		mk_state(f, VU_REQ_SET_VRING_BASE, 0, 0);
		go_ok(f);
	}
	if (st >= ST_ADDR) {
		send_vring_addr(f, 0);
		go_ok(f);
	}
	if (st >= ST_RUNNING) {
		mk_u64(f, VU_REQ_SET_VRING_KICK, 0);
		add_fd(f, new_eventfd());
		go_ok(f);
		mk_u64(f, VU_REQ_SET_VRING_CALL, 0);
		add_fd(f, new_eventfd());
		go_ok(f);
		mk_state(f, VU_REQ_SET_VRING_ENABLE, 0, 1);
		go_ok(f);
		assert_true(f->dev->vqs[0].started);
		assert_true(f->dev->vqs[0].runnable);
	}
}

/* ---- state snapshots: a refused message changes nothing ----------------- */

struct vq_snap {
	uint32_t size;
	bool addr_set, started, enabled, runnable, broken, packed;
	int kick_fd, call_fd, err_fd;
	uint16_t last_avail_idx, used_idx;
	const void *gdesc, *gavail, *gused, *gpdesc;
	uint64_t desc_uva;
};

struct dev_snap {
	bool owned, features_set;
	uint64_t features, protocol_features;
	uint8_t status;
	const struct vu_mem *mem;
	unsigned int nregions;
	const void *log, *inflight;
	int log_call_fd, backend_req_fd, inflight_fd;
	struct vq_snap q[NQ];
	unsigned int starts[NQ], stops[NQ];
};

static void snap_take(const struct fx *f, struct dev_snap *s)
{
	const struct vu_dev *d = f->dev;

	memset(s, 0, sizeof(*s));
	s->owned = d->owned;
	s->features_set = d->features_set;
	s->features = d->features;
	s->protocol_features = d->protocol_features;
	s->status = d->status;
	s->mem = d->mem;
	s->nregions = d->mem ? d->mem->nregions : 0;
	s->log = d->log.glog;
	s->inflight = d->inflight.map;
	s->log_call_fd = d->log_call_fd;
	s->backend_req_fd = d->backend_req_fd;
	s->inflight_fd = d->inflight.fd;
	for (unsigned int i = 0; i < NQ; i++) {
		const struct vu_vq *vq = &d->vqs[i];
		struct vq_snap *q = &s->q[i];

		q->size = vq->size;
		q->addr_set = vq->addr_set;
		q->started = vq->started;
		q->enabled = vq->enabled;
		q->runnable = vq->runnable;
		q->broken = vq->broken;
		q->packed = vq->packed;
		q->kick_fd = vq->kick_fd;
		q->call_fd = vq->call_fd;
		q->err_fd = vq->err_fd;
		q->last_avail_idx = vq->last_avail_idx;
		q->used_idx = vq->used_idx;
		q->gdesc = vq->gdesc;
		q->gavail = vq->gavail;
		q->gused = vq->gused;
		q->gpdesc = vq->gpdesc;
		q->desc_uva = vq->addr_set ? vq->addr.desc_user_addr : 0;
		s->starts[i] = f->starts[i];
		s->stops[i] = f->stops[i];
	}
}

/* ---- the table of hostile messages ------------------------------------------ */

#define NOFD VU_VRING_NOFD_MASK

static const struct row rows[] = {
	/* A.1: payload size that does not match the request */
	{ "A.1 SET_FEATURES with a 4-byte payload", ST_OWNER, false, VU_REQ_SET_FEATURES,
	  .size = 4, .p.u64 = SPLIT_FEATURES, .expect = EXP_ERR },
	{ "A.1 SET_FEATURES with a 16-byte payload", ST_OWNER, false, VU_REQ_SET_FEATURES,
	  .size = 16, .p.u64 = SPLIT_FEATURES, .expect = EXP_ERR },
	{ "A.1 SET_PROTOCOL_FEATURES without payload", ST_PROTO, false,
	  VU_REQ_SET_PROTOCOL_FEATURES, .size = 0, .expect = EXP_ERR },
	{ "A.1 SET_OWNER with a payload", ST_PROTO, false, VU_REQ_SET_OWNER,
	  .size = 8, .expect = EXP_ERR },
	{ "A.1 RESET_OWNER with a payload", ST_MEM, false, VU_REQ_RESET_OWNER,
	  .size = 8, .expect = EXP_ERR },
	{ "A.1 SET_MEM_TABLE shorter than one region", ST_MEM, false, VU_REQ_SET_MEM_TABLE,
	  .size = SZ_MEM(1) - 1, .p.mem = { .nregions = 1, .regions = { REG0 } },
	  .nfds = 1, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.1 SET_MEM_TABLE with 2 regions in the bytes of 1", ST_MEM, false,
	  VU_REQ_SET_MEM_TABLE, .size = SZ_MEM(1),
	  .p.mem = { .nregions = 2, .regions = { REG0, REG1 } },
	  .nfds = 2, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.1 SET_MEM_TABLE of VU_MAX_PAYLOAD bytes (more than a table)", ST_MEM, false,
	  VU_REQ_SET_MEM_TABLE, .size = VU_MAX_PAYLOAD,
	  .p.mem = { .nregions = 2, .regions = { REG0, REG1 } },
	  .nfds = 2, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.1 SET_LOG_BASE with an 8-byte payload", ST_MEM, false, VU_REQ_SET_LOG_BASE,
	  .size = 8, .p.log = { .mmap_size = 4096 }, .nfds = 1, .fdk = FD_LOG,
	  .expect = EXP_CLOSE },
	{ "A.1 SET_LOG_FD with a 16-byte payload", ST_OWNER, false, VU_REQ_SET_LOG_FD,
	  .size = 16, .nfds = 1, .expect = EXP_ERR },
	{ "A.1 SET_VRING_NUM with a 4-byte payload", ST_MEM, false, VU_REQ_SET_VRING_NUM,
	  .size = 4, .p.state = { 0, RING_SIZE }, .expect = EXP_ERR },
	{ "A.1 SET_VRING_NUM with a 12-byte payload", ST_MEM, false, VU_REQ_SET_VRING_NUM,
	  .size = 12, .p.state = { 0, RING_SIZE }, .expect = EXP_ERR },
	{ "A.1 SET_VRING_ADDR with 32 bytes", ST_NUM, false, VU_REQ_SET_VRING_ADDR,
	  .size = 32, .p.addr = VRING_ADDR(0), .expect = EXP_ERR },
	{ "A.1 SET_VRING_ADDR with 48 bytes", ST_NUM, false, VU_REQ_SET_VRING_ADDR,
	  .size = 48, .p.addr = VRING_ADDR(0), .expect = EXP_ERR },
	{ "A.1 SET_VRING_BASE without payload", ST_NUM, false, VU_REQ_SET_VRING_BASE,
	  .size = 0, .expect = EXP_ERR },
	{ "A.1 GET_VRING_BASE with a 4-byte payload", ST_RUNNING, false,
	  VU_REQ_GET_VRING_BASE, .size = 4, .expect = EXP_CLOSE },
	{ "A.1 SET_VRING_KICK with a 4-byte payload", ST_ADDR, false, VU_REQ_SET_VRING_KICK,
	  .size = 4, .nfds = 1, .expect = EXP_ERR },
	{ "A.1 SET_VRING_CALL with a 9-byte payload", ST_ADDR, false, VU_REQ_SET_VRING_CALL,
	  .size = 9, .nfds = 1, .expect = EXP_ERR },
	{ "A.1 SET_VRING_ERR without payload", ST_ADDR, false, VU_REQ_SET_VRING_ERR,
	  .size = 0, .expect = EXP_ERR },
	{ "A.1 SET_VRING_ENABLE with 16 bytes", ST_RUNNING, false, VU_REQ_SET_VRING_ENABLE,
	  .size = 16, .p.state = { 0, 0 }, .expect = EXP_ERR },
	{ "A.1 SET_VRING_ENABLE with num 2", ST_RUNNING, false, VU_REQ_SET_VRING_ENABLE,
	  .size = SZ_STATE, .p.state = { 0, 2 }, .expect = EXP_ERR },
	{ "A.1 VRING_KICK with 4 bytes", ST_RUNNING, false, VU_REQ_VRING_KICK,
	  .size = 4, .expect = EXP_ERR },
	{ "A.1 GET_FEATURES with a payload", ST_FRESH, false, VU_REQ_GET_FEATURES,
	  .size = 8, .expect = EXP_CLOSE },
	{ "A.1 GET_PROTOCOL_FEATURES with a payload", ST_FRESH, false,
	  VU_REQ_GET_PROTOCOL_FEATURES, .size = 8, .expect = EXP_CLOSE },
	{ "A.1 GET_QUEUE_NUM with 1 byte", ST_PROTO, false, VU_REQ_GET_QUEUE_NUM,
	  .size = 1, .expect = EXP_CLOSE },
	{ "A.1 GET_MAX_MEM_SLOTS with 8 bytes", ST_PROTO, false, VU_REQ_GET_MAX_MEM_SLOTS,
	  .size = 8, .expect = EXP_CLOSE },
	{ "A.1 GET_STATUS with 8 bytes", ST_PROTO, false, VU_REQ_GET_STATUS,
	  .size = 8, .expect = EXP_CLOSE },
	{ "A.1 SET_STATUS with 1 byte", ST_PROTO, false, VU_REQ_SET_STATUS,
	  .size = 1, .expect = EXP_ERR },
	/* A failing GET_CONFIG gets the spec's error answer: an empty payload. */
	{ "A.1 GET_CONFIG shorter than its header", ST_PROTO, false, VU_REQ_GET_CONFIG,
	  .size = VU_CONFIG_HDR_SIZE - 1, .expect = EXP_REPLY, .reply_size = 0 },
	{ "A.1 GET_CONFIG of VU_MAX_PAYLOAD + 1 bytes", ST_PROTO, false, VU_REQ_GET_CONFIG,
	  .size = VU_MAX_PAYLOAD + 1, .p.config = { .size = 4 }, .expect = EXP_REPLY, .reply_size = 0 },
	{ "A.1 GET_CONFIG past the largest config space", ST_PROTO, false, VU_REQ_GET_CONFIG,
	  .size = VU_CONFIG_HDR_SIZE, .p.config = { .offset = 250, .size = 10 },
	  .expect = EXP_REPLY, .reply_size = 0 },
	{ "A.1 GET_CONFIG whose offset + size wraps", ST_PROTO, false, VU_REQ_GET_CONFIG,
	  .size = VU_CONFIG_HDR_SIZE, .p.config = { .offset = 0xfffffff0u, .size = 0x20 },
	  .expect = EXP_REPLY, .reply_size = 0 },
	{ "A.1 GET_CONFIG of 300 bytes", ST_PROTO, false, VU_REQ_GET_CONFIG,
	  .size = VU_CONFIG_HDR_SIZE, .p.config = { .size = 300 }, .expect = EXP_REPLY, .reply_size = 0 },
	{ "A.1 SET_CONFIG shorter than its header", ST_PROTO, false, VU_REQ_SET_CONFIG,
	  .size = VU_CONFIG_HDR_SIZE - 1, .expect = EXP_ERR },
	{ "A.1 SET_CONFIG with fewer bytes than config.size", ST_PROTO, false,
	  VU_REQ_SET_CONFIG, .size = VU_CONFIG_HDR_SIZE + 10,
	  .p.config = { .size = CONFIG_SIZE }, .expect = EXP_ERR },
	{ "A.1 SET_CONFIG of 64 KiB", ST_PROTO, false, VU_REQ_SET_CONFIG,
	  .size = 0x10000, .p.config = { .size = 4 }, .expect = EXP_ERR },
	{ "A.1 SET_CONFIG on a device without set_config", ST_PROTO, false, VU_REQ_SET_CONFIG,
	  .size = VU_CONFIG_HDR_SIZE + 4, .p.config = { .size = 4 }, .expect = EXP_ERR,
	  .quiet = true },
	{ "A.1 GET_INFLIGHT_FD without payload", ST_MEM, false, VU_REQ_GET_INFLIGHT_FD,
	  .size = 0, .expect = EXP_CLOSE },
	{ "A.1 SET_INFLIGHT_FD with 16 bytes", ST_MEM, false, VU_REQ_SET_INFLIGHT_FD,
	  .size = 16, .p.inflight = { .num_queues = NQ, .queue_size = RING_SIZE },
	  .infl_size = 1, .nfds = 1, .fdk = FD_INFL, .expect = EXP_ERR },
	{ "A.1 ADD_MEM_REG with 32 bytes", ST_MEM, false, VU_REQ_ADD_MEM_REG,
	  .size = 32, .nfds = 1, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.1 REM_MEM_REG with 48 bytes", ST_MEM, false, VU_REQ_REM_MEM_REG,
	  .size = 48, .p.mem_reg = { .region = REG1 }, .expect = EXP_ERR },
	{ "A.1 SET_BACKEND_REQ_FD with 16 bytes", ST_PROTO, false, VU_REQ_SET_BACKEND_REQ_FD,
	  .size = 16, .nfds = 1, .expect = EXP_ERR },
	{ "A.1 SEND_RARP with 4 bytes", ST_OWNER, false, VU_REQ_SEND_RARP,
	  .size = 4, .expect = EXP_ERR },
	{ "A.1 NET_SET_MTU without payload", ST_OWNER, false, VU_REQ_NET_SET_MTU,
	  .size = 0, .expect = EXP_ERR },
	/* A.1: header size larger than any payload */
	{ "A.1 SET_FEATURES with size 0xffffffff", ST_OWNER, false, VU_REQ_SET_FEATURES,
	  .size = 0xffffffffu, .p.u64 = SPLIT_FEATURES, .expect = EXP_ERR },
	{ "A.1 SET_VRING_ADDR with size VU_MAX_PAYLOAD + 1", ST_NUM, false,
	  VU_REQ_SET_VRING_ADDR, .size = VU_MAX_PAYLOAD + 1, .p.addr = VRING_ADDR(0),
	  .expect = EXP_ERR },
	/* A.1: unknown request numbers */
	{ "A.1 request 0 (NONE)", ST_PROTO, false, VU_REQ_NONE, .expect = EXP_ERR },
	{ "A.1 request VU_REQ_MAX", ST_PROTO, false, VU_REQ_MAX, .expect = EXP_ERR },
	{ "A.1 request 0xffffffff with 3 fds", ST_PROTO, false, 0xffffffffu,
	  .size = 8, .nfds = 3, .expect = EXP_ERR },
	{ "A.1 known request without a handler (SET_VRING_ENDIAN)", ST_OWNER, false,
	  VU_REQ_SET_VRING_ENDIAN, .size = SZ_STATE, .expect = EXP_ERR },
	{ "A.1 request without a handler whose front-end waits for a reply (IOTLB_MSG)",
	  ST_OWNER, false, VU_REQ_IOTLB_MSG, .size = sizeof(struct vhost_iotlb_msg),
	  .expect = EXP_CLOSE },
	{ "A.1 SET_DEVICE_STATE_FD (not supported, waits for a reply) with an fd", ST_OWNER,
	  false, VU_REQ_SET_DEVICE_STATE_FD, .size = SZ_STATE, .nfds = 1, .expect = EXP_CLOSE },
	{ "A.1 unknown request 1000 with an fd, nothing negotiated", ST_FRESH, false, 1000,
	  .nfds = 1, .expect = EXP_DROP },
	/* A.1: version bits other than 1 */
	{ "A.1 SET_FEATURES with version 0", ST_OWNER, false, VU_REQ_SET_FEATURES,
	  .raw_flags = true, .flags = VU_FLAG_NEED_REPLY, .size = SZ_U64,
	  .p.u64 = SPLIT_FEATURES, .expect = EXP_ERR },
	{ "A.1 SET_VRING_NUM with version 2", ST_MEM, false, VU_REQ_SET_VRING_NUM,
	  .raw_flags = true, .flags = 2 | VU_FLAG_NEED_REPLY, .size = SZ_STATE,
	  .p.state = { 0, RING_SIZE }, .expect = EXP_ERR },
	{ "A.1 SET_VRING_NUM with version 3", ST_MEM, false, VU_REQ_SET_VRING_NUM,
	  .raw_flags = true, .flags = 3 | VU_FLAG_NEED_REPLY, .size = SZ_STATE,
	  .p.state = { 0, RING_SIZE }, .expect = EXP_ERR },
	{ "A.1 GET_FEATURES with version 0", ST_PROTO, false, VU_REQ_GET_FEATURES,
	  .raw_flags = true, .flags = 0, .expect = EXP_CLOSE },
	{ "A.1 SET_MEM_TABLE with version 2: fds closed, table kept", ST_MEM, false,
	  VU_REQ_SET_MEM_TABLE, .raw_flags = true, .flags = 2 | VU_FLAG_NEED_REPLY,
	  .size = SZ_MEM(2), .p.mem = { .nregions = 2, .regions = { REG0, REG1 } },
	  .nfds = 2, .fdk = FD_GUEST, .expect = EXP_ERR },

	/* A.2: more or fewer fds than the request takes */
	{ "A.2 SET_FEATURES with an fd", ST_OWNER, false, VU_REQ_SET_FEATURES,
	  .size = SZ_U64, .p.u64 = SPLIT_FEATURES, .nfds = 1, .expect = EXP_ERR },
	{ "A.2 SET_OWNER with 8 fds", ST_PROTO, false, VU_REQ_SET_OWNER,
	  .nfds = 8, .expect = EXP_ERR },
	{ "A.2 GET_FEATURES with an fd", ST_PROTO, false, VU_REQ_GET_FEATURES,
	  .nfds = 1, .expect = EXP_CLOSE },
	{ "A.2 SET_MEM_TABLE: 2 regions, 1 fd", ST_MEM, false, VU_REQ_SET_MEM_TABLE,
	  .size = SZ_MEM(2), .p.mem = { .nregions = 2, .regions = { REG0, REG1 } },
	  .nfds = 1, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.2 SET_MEM_TABLE: 1 region, 3 fds", ST_MEM, false, VU_REQ_SET_MEM_TABLE,
	  .size = SZ_MEM(1), .p.mem = { .nregions = 1, .regions = { REG0 } },
	  .nfds = 3, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.2 SET_MEM_TABLE: 1 region, 8 fds", ST_MEM, false, VU_REQ_SET_MEM_TABLE,
	  .size = SZ_MEM(1), .p.mem = { .nregions = 1, .regions = { REG0 } },
	  .nfds = 8, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.2 SET_MEM_TABLE: 2 regions, no fd", ST_MEM, false, VU_REQ_SET_MEM_TABLE,
	  .size = SZ_MEM(2), .p.mem = { .nregions = 2, .regions = { REG0, REG1 } },
	  .expect = EXP_ERR },
	{ "A.2 SET_LOG_BASE without fd", ST_MEM, false, VU_REQ_SET_LOG_BASE,
	  .size = SZ_LOG, .p.log = { .mmap_size = 4096 }, .expect = EXP_CLOSE },
	{ "A.2 SET_LOG_BASE with 2 fds", ST_MEM, false, VU_REQ_SET_LOG_BASE,
	  .size = SZ_LOG, .p.log = { .mmap_size = 4096 }, .nfds = 2, .fdk = FD_LOG,
	  .expect = EXP_CLOSE },
	{ "A.2 SET_LOG_FD without fd", ST_OWNER, false, VU_REQ_SET_LOG_FD,
	  .size = SZ_U64, .expect = EXP_ERR },
	{ "A.2 SET_VRING_KICK with 2 fds", ST_ADDR, false, VU_REQ_SET_VRING_KICK,
	  .size = SZ_U64, .p.u64 = 0, .nfds = 2, .expect = EXP_ERR },
	{ "A.2 SET_VRING_KICK with an fd and NOFD set", ST_ADDR, false, VU_REQ_SET_VRING_KICK,
	  .size = SZ_U64, .p.u64 = NOFD, .nfds = 1, .expect = EXP_ERR },
	{ "A.2 SET_VRING_KICK without fd and NOFD clear", ST_ADDR, false,
	  VU_REQ_SET_VRING_KICK, .size = SZ_U64, .p.u64 = 0, .expect = EXP_ERR },
	{ "A.2 SET_VRING_CALL with 2 fds", ST_RUNNING, false, VU_REQ_SET_VRING_CALL,
	  .size = SZ_U64, .p.u64 = 0, .nfds = 2, .expect = EXP_ERR },
	{ "A.2 SET_VRING_ERR with an fd and NOFD set", ST_ADDR, false, VU_REQ_SET_VRING_ERR,
	  .size = SZ_U64, .p.u64 = NOFD, .nfds = 1, .expect = EXP_ERR },
	{ "A.2 SET_VRING_NUM with an fd", ST_MEM, false, VU_REQ_SET_VRING_NUM,
	  .size = SZ_STATE, .p.state = { 0, RING_SIZE }, .nfds = 1, .expect = EXP_ERR },
	{ "A.2 SET_VRING_ENABLE with an fd", ST_RUNNING, false, VU_REQ_SET_VRING_ENABLE,
	  .size = SZ_STATE, .p.state = { 0, 0 }, .nfds = 1, .expect = EXP_ERR },
	{ "A.2 SET_INFLIGHT_FD without fd", ST_MEM, false, VU_REQ_SET_INFLIGHT_FD,
	  .size = SZ_INFL, .p.inflight = { .num_queues = NQ, .queue_size = RING_SIZE },
	  .infl_size = 1, .expect = EXP_ERR },
	{ "A.2 SET_INFLIGHT_FD with 3 fds", ST_MEM, false, VU_REQ_SET_INFLIGHT_FD,
	  .size = SZ_INFL, .p.inflight = { .num_queues = NQ, .queue_size = RING_SIZE },
	  .infl_size = 1, .nfds = 3, .fdk = FD_INFL, .expect = EXP_ERR },
	{ "A.2 GET_INFLIGHT_FD with an fd", ST_MEM, false, VU_REQ_GET_INFLIGHT_FD,
	  .size = SZ_INFL, .p.inflight = { .num_queues = NQ, .queue_size = RING_SIZE },
	  .nfds = 1, .expect = EXP_CLOSE },
	{ "A.2 ADD_MEM_REG without fd", ST_MEM, false, VU_REQ_ADD_MEM_REG,
	  .size = SZ_REG, .p.mem_reg = { .region = { 0x40000, 0x1000, 0x7f0000400000, 0 } },
	  .expect = EXP_ERR },
	{ "A.2 ADD_MEM_REG with 2 fds", ST_MEM, false, VU_REQ_ADD_MEM_REG,
	  .size = SZ_REG, .p.mem_reg = { .region = { 0x40000, 0x1000, 0x7f0000400000, 0 } },
	  .nfds = 2, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.2 REM_MEM_REG with 2 fds", ST_MEM, false, VU_REQ_REM_MEM_REG,
	  .size = SZ_REG, .p.mem_reg = { .region = REG1 }, .nfds = 2, .fdk = FD_GUEST,
	  .expect = EXP_ERR },
	{ "A.2 REM_MEM_REG with the region's fd (as QEMU sends it): fd closed", ST_MEM, false,
	  VU_REQ_REM_MEM_REG, .size = SZ_REG, .p.mem_reg = { .region = REG1 },
	  .nfds = 1, .fdk = FD_GUEST, .expect = EXP_OK },
	{ "A.2 SET_BACKEND_REQ_FD with 2 fds", ST_PROTO, false, VU_REQ_SET_BACKEND_REQ_FD,
	  .size = 0, .nfds = 2, .expect = EXP_ERR },

	/* A.4: queue index out of range, or aliasing a valid one once truncated */
	{ "A.4 SET_VRING_NUM for queue 2 of 2", ST_MEM, false, VU_REQ_SET_VRING_NUM,
	  .size = SZ_STATE, .p.state = { 2, RING_SIZE }, .expect = EXP_ERR },
	{ "A.4 SET_VRING_NUM for queue 0x10000 (0 in 16 bits)", ST_MEM, false,
	  VU_REQ_SET_VRING_NUM, .size = SZ_STATE, .p.state = { 0x10000, RING_SIZE },
	  .expect = EXP_ERR },
	{ "A.4 SET_VRING_NUM for queue 0x100 (0 in 8 bits)", ST_MEM, false,
	  VU_REQ_SET_VRING_NUM, .size = SZ_STATE, .p.state = { 0x100, RING_SIZE },
	  .expect = EXP_ERR },
	{ "A.4 SET_VRING_NUM for queue 0xffffffff", ST_MEM, false, VU_REQ_SET_VRING_NUM,
	  .size = SZ_STATE, .p.state = { 0xffffffffu, RING_SIZE }, .expect = EXP_ERR },
	{ "A.4 SET_VRING_BASE for queue 0x10001 (1 in 16 bits)", ST_NUM, false,
	  VU_REQ_SET_VRING_BASE, .size = SZ_STATE, .p.state = { 0x10001, 7 },
	  .expect = EXP_ERR },
	{ "A.4 SET_VRING_ADDR for queue 0x10000 (0 in 16 bits)", ST_NUM, false,
	  VU_REQ_SET_VRING_ADDR, .size = SZ_ADDR,
	  .p.addr = { .index = 0x10000, .desc_user_addr = DESC_UVA(0),
		      .avail_user_addr = AVAIL_UVA(0), .used_user_addr = USED_UVA(0) },
	  .expect = EXP_ERR },
	{ "A.4 SET_VRING_ADDR for queue 64", ST_NUM, false, VU_REQ_SET_VRING_ADDR,
	  .size = SZ_ADDR,
	  .p.addr = { .index = 64, .desc_user_addr = DESC_UVA(0),
		      .avail_user_addr = AVAIL_UVA(0), .used_user_addr = USED_UVA(0) },
	  .expect = EXP_ERR },
	{ "A.4 GET_VRING_BASE for queue 0x10000 (0 in 16 bits)", ST_RUNNING, false,
	  VU_REQ_GET_VRING_BASE, .size = SZ_STATE, .p.state = { 0x10000, 0 },
	  .expect = EXP_CLOSE },
	{ "A.4 GET_VRING_BASE for queue 2 of 2", ST_RUNNING, false, VU_REQ_GET_VRING_BASE,
	  .size = SZ_STATE, .p.state = { 2, 0 }, .expect = EXP_CLOSE },
	{ "A.4 SET_VRING_KICK for queue 2 of 2", ST_ADDR, false, VU_REQ_SET_VRING_KICK,
	  .size = SZ_U64, .p.u64 = 2, .nfds = 1, .expect = EXP_ERR },
	{ "A.4 SET_VRING_KICK for queue 255", ST_ADDR, false, VU_REQ_SET_VRING_KICK,
	  .size = SZ_U64, .p.u64 = 255, .nfds = 1, .expect = EXP_ERR },
	{ "A.4 SET_VRING_KICK index 0x200 (0 in 8 bits)", ST_ADDR, false,
	  VU_REQ_SET_VRING_KICK, .size = SZ_U64, .p.u64 = 0x200, .nfds = 1, .expect = EXP_ERR },
	{ "A.4 SET_VRING_KICK index 1 << 32 (0 in 32 bits)", ST_ADDR, false,
	  VU_REQ_SET_VRING_KICK, .size = SZ_U64, .p.u64 = 1ull << 32, .nfds = 1,
	  .expect = EXP_ERR },
	{ "A.4 SET_VRING_CALL index 0x10000 (0 in 16 bits)", ST_RUNNING, false,
	  VU_REQ_SET_VRING_CALL, .size = SZ_U64, .p.u64 = 0x10000, .nfds = 1,
	  .expect = EXP_ERR },
	{ "A.4 SET_VRING_CALL with bit 63 set", ST_RUNNING, false, VU_REQ_SET_VRING_CALL,
	  .size = SZ_U64, .p.u64 = 1ull << 63, .nfds = 1, .expect = EXP_ERR },
	{ "A.4 SET_VRING_ERR for queue 64", ST_ADDR, false, VU_REQ_SET_VRING_ERR,
	  .size = SZ_U64, .p.u64 = 64 | NOFD, .expect = EXP_ERR },
	{ "A.4 SET_VRING_ENABLE for queue 0x10000 (0 in 16 bits)", ST_RUNNING, false,
	  VU_REQ_SET_VRING_ENABLE, .size = SZ_STATE, .p.state = { 0x10000, 0 },
	  .expect = EXP_ERR },
	{ "A.4 VRING_KICK for queue 0x10000 (0 in 16 bits)", ST_RUNNING, false,
	  VU_REQ_VRING_KICK, .size = SZ_STATE, .p.state = { 0x10000, 0 }, .expect = EXP_ERR },

	/* A.5: SET_VRING_NUM values */
	{ "A.5 SET_VRING_NUM 0", ST_MEM, false, VU_REQ_SET_VRING_NUM,
	  .size = SZ_STATE, .p.state = { 0, 0 }, .expect = EXP_ERR },
	{ "A.5 SET_VRING_NUM 32769", ST_MEM, false, VU_REQ_SET_VRING_NUM,
	  .size = SZ_STATE, .p.state = { 0, 32769 }, .expect = EXP_ERR },
	{ "A.5 SET_VRING_NUM 65536 (0 in 16 bits)", ST_MEM, false, VU_REQ_SET_VRING_NUM,
	  .size = SZ_STATE, .p.state = { 0, 65536 }, .expect = EXP_ERR },
	{ "A.5 SET_VRING_NUM 0x80000100 (256 in 16 bits)", ST_MEM, false,
	  VU_REQ_SET_VRING_NUM, .size = SZ_STATE, .p.state = { 0, 0x80000100u },
	  .expect = EXP_ERR },
	{ "A.5 SET_VRING_NUM 100 on a split ring (not a power of two)", ST_MEM, false,
	  VU_REQ_SET_VRING_NUM, .size = SZ_STATE, .p.state = { 0, 100 }, .expect = EXP_ERR },
	{ "A.5 SET_VRING_NUM 256", ST_MEM, false, VU_REQ_SET_VRING_NUM,
	  .size = SZ_STATE, .p.state = { 0, 256 }, .expect = EXP_OK },
	{ "A.5 SET_VRING_NUM 32768", ST_MEM, false, VU_REQ_SET_VRING_NUM,
	  .size = SZ_STATE, .p.state = { 1, 32768 }, .expect = EXP_OK },
	{ "A.5 SET_VRING_NUM 100 on a packed ring", ST_MEM, true, VU_REQ_SET_VRING_NUM,
	  .size = SZ_STATE, .p.state = { 0, 100 }, .expect = EXP_OK },
	{ "A.5 SET_VRING_NUM 32769 on a packed ring", ST_MEM, true, VU_REQ_SET_VRING_NUM,
	  .size = SZ_STATE, .p.state = { 0, 32769 }, .expect = EXP_ERR },
	{ "A.5 SET_VRING_NUM while the queue runs", ST_RUNNING, false, VU_REQ_SET_VRING_NUM,
	  .size = SZ_STATE, .p.state = { 0, 128 }, .expect = EXP_ERR },

	/* A.6: SET_INFLIGHT_FD / GET_INFLIGHT_FD geometry */
	{ "A.6 SET_INFLIGHT_FD for 3 queues (device has 2)", ST_MEM, false,
	  VU_REQ_SET_INFLIGHT_FD, .size = SZ_INFL,
	  .p.inflight = { .num_queues = 3, .queue_size = RING_SIZE, .mmap_size = 1 << 20 },
	  .nfds = 1, .fdk = FD_INFL, .expect = EXP_ERR },
	{ "A.6 SET_INFLIGHT_FD for 0 queues", ST_MEM, false, VU_REQ_SET_INFLIGHT_FD,
	  .size = SZ_INFL, .p.inflight = { .num_queues = 0, .queue_size = RING_SIZE },
	  .infl_size = 1, .nfds = 1, .fdk = FD_INFL, .expect = EXP_ERR },
	{ "A.6 SET_INFLIGHT_FD with queue size 0", ST_MEM, false, VU_REQ_SET_INFLIGHT_FD,
	  .size = SZ_INFL, .p.inflight = { .num_queues = NQ, .queue_size = 0 },
	  .infl_size = 1, .nfds = 1, .fdk = FD_INFL, .expect = EXP_ERR },
	{ "A.6 SET_INFLIGHT_FD with queue size 32769", ST_MEM, false, VU_REQ_SET_INFLIGHT_FD,
	  .size = SZ_INFL, .p.inflight = { .num_queues = 1, .queue_size = 32769 },
	  .infl_size = 1, .nfds = 1, .fdk = FD_INFL, .expect = EXP_ERR },
	{ "A.6 SET_INFLIGHT_FD area one byte too small", ST_MEM, false,
	  VU_REQ_SET_INFLIGHT_FD, .size = SZ_INFL,
	  .p.inflight = { .num_queues = NQ, .queue_size = RING_SIZE },
	  .infl_size = -1, .nfds = 1, .fdk = FD_INFL, .expect = EXP_ERR },
	{ "A.6 SET_INFLIGHT_FD offset beyond the file", ST_MEM, false, VU_REQ_SET_INFLIGHT_FD,
	  .size = SZ_INFL,
	  .p.inflight = { .num_queues = NQ, .queue_size = RING_SIZE, .mmap_offset = 1 << 20 },
	  .infl_size = 1, .nfds = 1, .fdk = FD_INFL, .expect = EXP_ERR },
	{ "A.6 SET_INFLIGHT_FD offset + size wraps", ST_MEM, false, VU_REQ_SET_INFLIGHT_FD,
	  .size = SZ_INFL,
	  .p.inflight = { .num_queues = NQ, .queue_size = RING_SIZE,
			  .mmap_offset = 0xfffffffffffff000ull },
	  .infl_size = 1, .nfds = 1, .fdk = FD_INFL, .expect = EXP_ERR },
	{ "A.6 SET_INFLIGHT_FD on an eventfd", ST_MEM, false, VU_REQ_SET_INFLIGHT_FD,
	  .size = SZ_INFL, .p.inflight = { .num_queues = NQ, .queue_size = RING_SIZE },
	  .infl_size = 1, .nfds = 1, .fdk = FD_EVENT, .expect = EXP_ERR },
	{ "A.6 SET_INFLIGHT_FD valid", ST_MEM, false, VU_REQ_SET_INFLIGHT_FD,
	  .size = SZ_INFL, .p.inflight = { .num_queues = NQ, .queue_size = RING_SIZE },
	  .infl_size = 1, .nfds = 1, .fdk = FD_INFL, .expect = EXP_OK, .keeps_fds = true },
	{ "A.6 GET_INFLIGHT_FD for 3 queues (device has 2)", ST_MEM, false,
	  VU_REQ_GET_INFLIGHT_FD, .size = SZ_INFL,
	  .p.inflight = { .num_queues = 3, .queue_size = RING_SIZE }, .expect = EXP_CLOSE },
	{ "A.6 GET_INFLIGHT_FD with queue size 0", ST_MEM, false, VU_REQ_GET_INFLIGHT_FD,
	  .size = SZ_INFL, .p.inflight = { .num_queues = NQ, .queue_size = 0 },
	  .expect = EXP_CLOSE },
	{ "A.6 GET_INFLIGHT_FD with queue size 40000", ST_MEM, false, VU_REQ_GET_INFLIGHT_FD,
	  .size = SZ_INFL, .p.inflight = { .num_queues = NQ, .queue_size = 40000 },
	  .expect = EXP_CLOSE },
	{ "A.6 GET_INFLIGHT_FD valid", ST_MEM, false, VU_REQ_GET_INFLIGHT_FD,
	  .size = SZ_INFL, .p.inflight = { .num_queues = NQ, .queue_size = RING_SIZE },
	  .expect = EXP_REPLY, .reply_size = SZ_INFL },

	/* A.7: SET_LOG_BASE (memory ends at 128 KiB: 32 pages, 4 bytes of log) */
	{ "A.7 SET_LOG_BASE of size 0", ST_MEM, false, VU_REQ_SET_LOG_BASE,
	  .size = SZ_LOG, .p.log = { .mmap_size = 0 }, .nfds = 1, .fdk = FD_LOG,
	  .expect = EXP_CLOSE },
	{ "A.7 SET_LOG_BASE offset + size wraps", ST_MEM, false, VU_REQ_SET_LOG_BASE,
	  .size = SZ_LOG, .p.log = { .mmap_size = 4096, .mmap_offset = UINT64_MAX - 100 },
	  .nfds = 1, .fdk = FD_LOG, .expect = EXP_CLOSE },
	{ "A.7 SET_LOG_BASE of size 2^64 - 1 at offset 1", ST_MEM, false, VU_REQ_SET_LOG_BASE,
	  .size = SZ_LOG, .p.log = { .mmap_size = UINT64_MAX, .mmap_offset = 1 },
	  .nfds = 1, .fdk = FD_LOG, .expect = EXP_CLOSE },
	{ "A.7 SET_LOG_BASE too small for the memory (2 bytes for 32 pages)", ST_MEM, false,
	  VU_REQ_SET_LOG_BASE, .size = SZ_LOG, .p.log = { .mmap_size = 2 },
	  .nfds = 1, .fdk = FD_LOG, .expect = EXP_CLOSE },
	{ "A.7 SET_LOG_BASE larger than its file", ST_MEM, false, VU_REQ_SET_LOG_BASE,
	  .size = SZ_LOG, .p.log = { .mmap_size = 8192 }, .nfds = 1, .fdk = FD_LOG,
	  .expect = EXP_CLOSE },
	{ "A.7 SET_LOG_BASE offset beyond its file", ST_MEM, false, VU_REQ_SET_LOG_BASE,
	  .size = SZ_LOG, .p.log = { .mmap_size = 4096, .mmap_offset = 4096 },
	  .nfds = 1, .fdk = FD_LOG, .expect = EXP_CLOSE },
	{ "A.7 SET_LOG_BASE on an eventfd", ST_MEM, false, VU_REQ_SET_LOG_BASE,
	  .size = SZ_LOG, .p.log = { .mmap_size = 4096 }, .nfds = 1, .fdk = FD_EVENT,
	  .expect = EXP_CLOSE },
	{ "A.7 SET_LOG_BASE valid", ST_MEM, false, VU_REQ_SET_LOG_BASE,
	  .size = SZ_LOG, .p.log = { .mmap_size = 4096 }, .nfds = 1, .fdk = FD_LOG,
	  .expect = EXP_REPLY, .reply_size = 0, .keeps_fds = false },

	/* A.8: memory tables (the old table must be kept) */
	{ "A.8 SET_MEM_TABLE with 0 regions", ST_MEM, false, VU_REQ_SET_MEM_TABLE,
	  .size = SZ_MEM(1), .p.mem = { .nregions = 0, .regions = { REG0 } },
	  .nfds = 1, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.8 SET_MEM_TABLE with 9 regions", ST_MEM, false, VU_REQ_SET_MEM_TABLE,
	  .size = SZ_MEM(8), .p.mem = { .nregions = 9, .regions = { REG0, REG1 } },
	  .nfds = 8, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.8 zero-sized region", ST_MEM, false, VU_REQ_SET_MEM_TABLE,
	  .size = SZ_MEM(2),
	  .p.mem = { .nregions = 2, .regions = { REG0, { R1_GPA, 0, R1_UVA, R_SIZE } } },
	  .nfds = 2, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.8 region whose gpa + size wraps", ST_MEM, false, VU_REQ_SET_MEM_TABLE,
	  .size = SZ_MEM(1),
	  .p.mem = { .nregions = 1, .regions = { { UINT64_MAX - 0xfff, 0x2000, R0_UVA, 0 } } },
	  .nfds = 1, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.8 region whose uva + size wraps", ST_MEM, false, VU_REQ_SET_MEM_TABLE,
	  .size = SZ_MEM(1),
	  .p.mem = { .nregions = 1, .regions = { { R0_GPA, 0x2000, UINT64_MAX - 0xfff, 0 } } },
	  .nfds = 1, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.8 region whose mmap_offset + size wraps", ST_MEM, false, VU_REQ_SET_MEM_TABLE,
	  .size = SZ_MEM(1),
	  .p.mem = { .nregions = 1,
		     .regions = { { R0_GPA, 0x2000, R0_UVA, UINT64_MAX - 0xfff } } },
	  .nfds = 1, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.8 region whose mmap_offset + size is exactly 2^64", ST_MEM, false,
	  VU_REQ_SET_MEM_TABLE, .size = SZ_MEM(1),
	  .p.mem = { .nregions = 1,
		     .regions = { { R0_GPA, 0x10000, R0_UVA, 0xffffffffffff0000ull } } },
	  .nfds = 1, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.8 mmap_offset beyond the memfd's size", ST_MEM, false, VU_REQ_SET_MEM_TABLE,
	  .size = SZ_MEM(1),
	  .p.mem = { .nregions = 1, .regions = { { R0_GPA, 0x1000, R0_UVA, GUEST_SIZE } } },
	  .nfds = 1, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.8 region larger than its memfd", ST_MEM, false, VU_REQ_SET_MEM_TABLE,
	  .size = SZ_MEM(1),
	  .p.mem = { .nregions = 1, .regions = { { R0_GPA, 2 * GUEST_SIZE, R0_UVA, 0 } } },
	  .nfds = 1, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.8 regions overlapping in gpa", ST_MEM, false, VU_REQ_SET_MEM_TABLE,
	  .size = SZ_MEM(2),
	  .p.mem = { .nregions = 2,
		     .regions = { REG0, { R0_GPA + 0x8000, R_SIZE, R1_UVA, R_SIZE } } },
	  .nfds = 2, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.8 regions overlapping in uva", ST_MEM, false, VU_REQ_SET_MEM_TABLE,
	  .size = SZ_MEM(2),
	  .p.mem = { .nregions = 2,
		     .regions = { REG0, { R1_GPA, R_SIZE, R0_UVA + 0xf000, R_SIZE } } },
	  .nfds = 2, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.8 the same region twice", ST_MEM, false, VU_REQ_SET_MEM_TABLE,
	  .size = SZ_MEM(2), .p.mem = { .nregions = 2, .regions = { REG1, REG1 } },
	  .nfds = 2, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.8 region backed by an eventfd", ST_MEM, false, VU_REQ_SET_MEM_TABLE,
	  .size = SZ_MEM(1), .p.mem = { .nregions = 1, .regions = { REG0 } },
	  .nfds = 1, .fdk = FD_EVENT, .expect = EXP_ERR },
	{ "A.8 SET_MEM_TABLE valid replacement", ST_MEM, false, VU_REQ_SET_MEM_TABLE,
	  .size = SZ_MEM(2), .p.mem = { .nregions = 2, .regions = { REG1, REG0 } },
	  .nfds = 2, .fdk = FD_GUEST, .expect = EXP_OK, .keeps_fds = true },
	{ "A.8 ADD_MEM_REG of a zero-sized region", ST_MEM, false, VU_REQ_ADD_MEM_REG,
	  .size = SZ_REG, .p.mem_reg = { .region = { 0x40000, 0, 0x7f0000400000, 0 } },
	  .nfds = 1, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.8 ADD_MEM_REG overlapping region 0", ST_MEM, false, VU_REQ_ADD_MEM_REG,
	  .size = SZ_REG, .p.mem_reg = { .region = { 0xf000, 0x2000, 0x7f0000400000, 0 } },
	  .nfds = 1, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.8 ADD_MEM_REG beyond its memfd", ST_MEM, false, VU_REQ_ADD_MEM_REG,
	  .size = SZ_REG,
	  .p.mem_reg = { .region = { 0x40000, 0x1000, 0x7f0000400000, GUEST_SIZE } },
	  .nfds = 1, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.8 ADD_MEM_REG of region 0 again (QEMU < 8.0, per queue pair)", ST_MEM, false,
	  VU_REQ_ADD_MEM_REG, .size = SZ_REG, .p.mem_reg = { .region = REG0 },
	  .nfds = 1, .fdk = FD_GUEST, .expect = EXP_OK },
	{ "A.8 ADD_MEM_REG valid", ST_MEM, false, VU_REQ_ADD_MEM_REG,
	  .size = SZ_REG, .p.mem_reg = { .region = { 0x40000, 0x1000, 0x7f0000400000, 0 } },
	  .nfds = 1, .fdk = FD_GUEST, .expect = EXP_OK, .keeps_fds = true },
	{ "A.8 REM_MEM_REG of a region that does not exist", ST_MEM, false,
	  VU_REQ_REM_MEM_REG, .size = SZ_REG,
	  .p.mem_reg = { .region = { 0x40000, 0x1000, 0x7f0000400000, 0 } }, .expect = EXP_ERR },
	{ "A.8 REM_MEM_REG with region 1's gpa but another size", ST_MEM, false,
	  VU_REQ_REM_MEM_REG, .size = SZ_REG,
	  .p.mem_reg = { .region = { R1_GPA, 0x1000, R1_UVA, R_SIZE } }, .expect = EXP_ERR },

	/* A.9: ring addresses (queue 0 has 256 entries) */
	{ "A.9 descriptor table not in guest memory", ST_NUM, false, VU_REQ_SET_VRING_ADDR,
	  .size = SZ_ADDR,
	  .p.addr = { .desc_user_addr = 0x1000, .avail_user_addr = AVAIL_UVA(0),
		      .used_user_addr = USED_UVA(0) },
	  .expect = EXP_ERR },
	{ "A.9 descriptor table in the uva hole between the regions", ST_NUM, false,
	  VU_REQ_SET_VRING_ADDR, .size = SZ_ADDR,
	  .p.addr = { .desc_user_addr = R0_UVA + R_SIZE + 0x1000,
		      .avail_user_addr = AVAIL_UVA(0), .used_user_addr = USED_UVA(0) },
	  .expect = EXP_ERR },
	{ "A.9 descriptor table crossing the end of region 0", ST_NUM, false,
	  VU_REQ_SET_VRING_ADDR, .size = SZ_ADDR,
	  .p.addr = { .desc_user_addr = R0_UVA + R_SIZE - 0x800,
		      .avail_user_addr = AVAIL_UVA(0), .used_user_addr = USED_UVA(0) },
	  .expect = EXP_ERR },
	{ "A.9 available ring crossing the end of region 0", ST_NUM, false,
	  VU_REQ_SET_VRING_ADDR, .size = SZ_ADDR,
	  .p.addr = { .desc_user_addr = DESC_UVA(0), .avail_user_addr = R0_UVA + R_SIZE - 0x100,
		      .used_user_addr = USED_UVA(0) },
	  .expect = EXP_ERR },
	{ "A.9 used ring crossing the end of region 0", ST_NUM, false, VU_REQ_SET_VRING_ADDR,
	  .size = SZ_ADDR,
	  .p.addr = { .desc_user_addr = DESC_UVA(0), .avail_user_addr = AVAIL_UVA(0),
		      .used_user_addr = R0_UVA + R_SIZE - 0x400 },
	  .expect = EXP_ERR },
	{ "A.9 used ring whose uva + size wraps", ST_NUM, false, VU_REQ_SET_VRING_ADDR,
	  .size = SZ_ADDR,
	  .p.addr = { .desc_user_addr = DESC_UVA(0), .avail_user_addr = AVAIL_UVA(0),
		      .used_user_addr = (UINT64_MAX - 0xff) & ~3ull },
	  .expect = EXP_ERR },
	{ "A.9 descriptor table misaligned (8)", ST_NUM, false, VU_REQ_SET_VRING_ADDR,
	  .size = SZ_ADDR,
	  .p.addr = { .desc_user_addr = DESC_UVA(0) + 8, .avail_user_addr = AVAIL_UVA(0),
		      .used_user_addr = USED_UVA(0) },
	  .expect = EXP_ERR },
	{ "A.9 available ring at an odd address", ST_NUM, false, VU_REQ_SET_VRING_ADDR,
	  .size = SZ_ADDR,
	  .p.addr = { .desc_user_addr = DESC_UVA(0), .avail_user_addr = AVAIL_UVA(0) + 1,
		      .used_user_addr = USED_UVA(0) },
	  .expect = EXP_ERR },
	{ "A.9 used ring misaligned (2)", ST_NUM, false, VU_REQ_SET_VRING_ADDR,
	  .size = SZ_ADDR,
	  .p.addr = { .desc_user_addr = DESC_UVA(0), .avail_user_addr = AVAIL_UVA(0),
		      .used_user_addr = USED_UVA(0) + 2 },
	  .expect = EXP_ERR },
	{ "A.9 packed: descriptor ring misaligned (8)", ST_NUM, true, VU_REQ_SET_VRING_ADDR,
	  .size = SZ_ADDR,
	  .p.addr = { .desc_user_addr = DESC_UVA(0) + 8, .avail_user_addr = AVAIL_UVA(0),
		      .used_user_addr = USED_UVA(0) },
	  .expect = EXP_ERR },
	{ "A.9 packed: driver event area just past the end of region 0", ST_NUM, true,
	  VU_REQ_SET_VRING_ADDR, .size = SZ_ADDR,
	  .p.addr = { .desc_user_addr = DESC_UVA(0), .avail_user_addr = R0_UVA + R_SIZE,
		      .used_user_addr = USED_UVA(0) },
	  .expect = EXP_ERR },
	{ "A.9 packed: descriptor ring crossing the end of region 1", ST_NUM, true,
	  VU_REQ_SET_VRING_ADDR, .size = SZ_ADDR,
	  .p.addr = { .desc_user_addr = R1_UVA + R_SIZE - 0x800,
		      .avail_user_addr = AVAIL_UVA(0), .used_user_addr = USED_UVA(0) },
	  .expect = EXP_ERR },
	{ "A.9 SET_VRING_ADDR valid", ST_NUM, false, VU_REQ_SET_VRING_ADDR,
	  .size = SZ_ADDR, .p.addr = VRING_ADDR(0), .expect = EXP_OK },

	/* A.10: messages out of order */
	{ "A.10 SET_MEM_TABLE before SET_OWNER", ST_PROTO, false, VU_REQ_SET_MEM_TABLE,
	  .size = SZ_MEM(2), .p.mem = { .nregions = 2, .regions = { REG0, REG1 } },
	  .nfds = 2, .fdk = FD_GUEST, .expect = EXP_ERR },
	{ "A.10 SET_MEM_TABLE before SET_OWNER, REPLY_ACK not negotiated", ST_FRESH, false,
	  VU_REQ_SET_MEM_TABLE, .size = SZ_MEM(2),
	  .p.mem = { .nregions = 2, .regions = { REG0, REG1 } },
	  .nfds = 2, .fdk = FD_GUEST, .expect = EXP_DROP },
	{ "A.10 SET_FEATURES before SET_OWNER", ST_PROTO, false, VU_REQ_SET_FEATURES,
	  .size = SZ_U64, .p.u64 = SPLIT_FEATURES, .expect = EXP_ERR },
	{ "A.10 SET_VRING_NUM before SET_OWNER", ST_PROTO, false, VU_REQ_SET_VRING_NUM,
	  .size = SZ_STATE, .p.state = { 0, RING_SIZE }, .expect = EXP_ERR },
	{ "A.10 SET_VRING_KICK before SET_OWNER", ST_PROTO, false, VU_REQ_SET_VRING_KICK,
	  .size = SZ_U64, .p.u64 = 0, .nfds = 1, .expect = EXP_ERR },
	{ "A.10 SET_LOG_BASE before SET_OWNER", ST_PROTO, false, VU_REQ_SET_LOG_BASE,
	  .size = SZ_LOG, .p.log = { .mmap_size = 4096 }, .nfds = 1, .fdk = FD_LOG,
	  .expect = EXP_CLOSE },
	{ "A.10 GET_VRING_BASE before SET_OWNER", ST_PROTO, false, VU_REQ_GET_VRING_BASE,
	  .size = SZ_STATE, .expect = EXP_CLOSE },
	{ "A.10 GET_INFLIGHT_FD before SET_OWNER", ST_PROTO, false, VU_REQ_GET_INFLIGHT_FD,
	  .size = SZ_INFL, .p.inflight = { .num_queues = NQ, .queue_size = RING_SIZE },
	  .expect = EXP_CLOSE },
	{ "A.10 ADD_MEM_REG before SET_OWNER", ST_PROTO, false, VU_REQ_ADD_MEM_REG,
	  .size = SZ_REG, .p.mem_reg = { .region = REG0 }, .nfds = 1, .fdk = FD_GUEST,
	  .expect = EXP_ERR },
	{ "A.10 SET_FEATURES with bit 63, not offered", ST_OWNER, false, VU_REQ_SET_FEATURES,
	  .size = SZ_U64, .p.u64 = SPLIT_FEATURES | 1ull << 63, .expect = EXP_ERR },
	{ "A.10 SET_FEATURES with device bit 0, not offered", ST_OWNER, false,
	  VU_REQ_SET_FEATURES, .size = SZ_U64, .p.u64 = SPLIT_FEATURES | 1, .expect = EXP_ERR },
	{ "A.10 SET_PROTOCOL_FEATURES with bit 63, not offered", ST_PROTO, false,
	  VU_REQ_SET_PROTOCOL_FEATURES, .size = SZ_U64,
	  .p.u64 = PROTO_FEATURES | 1ull << 63, .expect = EXP_ERR },
	{ "A.10 SET_FEATURES switching to packed rings while a queue runs", ST_RUNNING, false,
	  VU_REQ_SET_FEATURES, .size = SZ_U64, .p.u64 = PACKED_FEATURES, .expect = EXP_ERR },
	{ "A.10 SET_FEATURES dropping EVENT_IDX while a queue runs", ST_RUNNING, false,
	  VU_REQ_SET_FEATURES, .size = SZ_U64,
	  .p.u64 = SPLIT_FEATURES & ~(1ull << VIRTIO_RING_F_EVENT_IDX), .expect = EXP_ERR },
	{ "A.10 SET_FEATURES adding LOG_ALL while a queue runs (allowed)", ST_RUNNING, false,
	  VU_REQ_SET_FEATURES, .size = SZ_U64,
	  .p.u64 = SPLIT_FEATURES | 1ull << VHOST_F_LOG_ALL, .expect = EXP_OK },
	{ "A.10 SET_VRING_BASE while the queue runs", ST_RUNNING, false,
	  VU_REQ_SET_VRING_BASE, .size = SZ_STATE, .p.state = { 0, 9 }, .expect = EXP_ERR },
	{ "A.10 GET_CONFIG of the whole 60-byte config space", ST_PROTO, false,
	  VU_REQ_GET_CONFIG, .size = VU_CONFIG_HDR_SIZE,
	  .p.config = { .size = CONFIG_SIZE }, .expect = EXP_REPLY,
	  .reply_size = VU_CONFIG_HDR_SIZE + CONFIG_SIZE },
};

/* Fail the row with its name and the library's log lines. */
#define row_check(f, cond)                                                           \
	do {                                                                          \
		if (!(cond)) {                                                        \
			capture_stop();                                               \
			fail_msg("%s: check failed at line %d: %s\n--- log:\n%s",      \
				 (f)->row->what, __LINE__, #cond, logbuf);             \
		}                                                                     \
	} while (0)

static void check_snap_equal(struct fx *f, const struct dev_snap *a, const struct dev_snap *b)
{
	row_check(f, a->owned == b->owned && a->features_set == b->features_set);
	row_check(f, a->features == b->features);
	row_check(f, a->protocol_features == b->protocol_features);
	row_check(f, a->status == b->status);
	row_check(f, a->mem == b->mem && a->nregions == b->nregions);
	row_check(f, a->log == b->log && a->inflight == b->inflight);
	row_check(f, a->log_call_fd == b->log_call_fd && a->backend_req_fd == b->backend_req_fd);
	row_check(f, a->inflight_fd == b->inflight_fd);
	for (unsigned int i = 0; i < NQ; i++) {
		const struct vq_snap *x = &a->q[i], *y = &b->q[i];

		row_check(f, x->size == y->size && x->addr_set == y->addr_set);
		row_check(f, x->started == y->started && x->enabled == y->enabled);
		row_check(f, x->runnable == y->runnable && x->broken == y->broken);
		row_check(f, x->kick_fd == y->kick_fd && x->call_fd == y->call_fd &&
			     x->err_fd == y->err_fd);
		row_check(f, x->last_avail_idx == y->last_avail_idx && x->used_idx == y->used_idx);
		row_check(f, x->gdesc == y->gdesc && x->gavail == y->gavail &&
			     x->gused == y->gused && x->gpdesc == y->gpdesc);
		row_check(f, x->desc_uva == y->desc_uva);
		row_check(f, a->starts[i] == b->starts[i] && a->stops[i] == b->stops[i]);
	}
}

static void run_row(void **state)
{
	struct fx *f = *state;
	const struct row *r = f->row;
	struct vu_msg *m = &f->msg;
	int passed[VU_MAX_FDS], fds_before, maps_before, ret;
	struct dev_snap before, after;
	bool refused;

	reach(f, r->stage, r->packed);
	snap_take(f, &before);
	fds_before = count_fds();
	maps_before = count_memfd_maps();

	memset(m, 0, sizeof(*m));
	m->hdr.request = r->request;
	m->hdr.flags = r->raw_flags ? r->flags : VU_VERSION | VU_FLAG_NEED_REPLY;
	m->hdr.size = r->size;
	m->payload = r->p;
	if (r->infl_size)
		m->payload.inflight.mmap_size = infl_size() - (r->infl_size < 0);
	for (unsigned int i = 0; i < r->nfds; i++)
		passed[i] = add_fd(f, make_fd(f, r->fdk));

	capture_start();
	ret = go(f);
	capture_stop();

	switch (r->expect) {
	case EXP_OK:
		row_check(f, ret == VU_HANDLED_REPLY && f->reply.hdr.size == SZ_U64);
		row_check(f, f->reply.payload.u64 == 0);
		break;
	case EXP_ERR:
		row_check(f, ret == VU_HANDLED_REPLY && f->reply.hdr.size == SZ_U64);
		row_check(f, f->reply.payload.u64 != 0);
		break;
	case EXP_CLOSE:
		row_check(f, ret < 0);
		break;
	case EXP_DROP:
		row_check(f, ret == VU_HANDLED);
		break;
	case EXP_REPLY:
		row_check(f, ret == VU_HANDLED_REPLY && f->reply.hdr.size == r->reply_size);
		break;
	}
	if (ret == VU_HANDLED_REPLY) {
		row_check(f, f->reply.hdr.request == r->request);
		row_check(f, f->reply.hdr.flags == (VU_VERSION | VU_FLAG_REPLY));
	}
	refused = r->expect == EXP_ERR || r->expect == EXP_CLOSE || r->expect == EXP_DROP;
	if (refused || !r->keeps_fds)
		for (unsigned int i = 0; i < r->nfds; i++)
			row_check(f, fd_is_closed(passed[i]));
	row_check(f, m->nfds == 0);
	if (!refused)
		return;
	/* A refused message leaves nothing behind and changes nothing. */
	row_check(f, count_fds() == fds_before);
	row_check(f, count_memfd_maps() == maps_before);
	snap_take(f, &after);
	check_snap_equal(f, &before, &after);
	row_check(f, r->quiet || strstr(logbuf, "warning: ") || strstr(logbuf, "error: "));
}

static int row_setup(void **state)
{
	const struct row *r = *state;
	struct fx *f = fx_create();

	f->row = r;
	*state = f;
	return 0;
}

/* ---- the negotiation of QEMU ------------------------------------------------ */

/* Split ring of queue q as the guest sees it. */
static struct vring_desc *g_desc(struct fx *f, unsigned int q)
{
	return (struct vring_desc *)(f->gmem + RING_GPA(q));
}

static struct vring_avail *g_avail(struct fx *f, unsigned int q)
{
	return (struct vring_avail *)(f->gmem + RING_GPA(q) + 0x1000);
}

static struct vring_used *g_used(struct fx *f, unsigned int q)
{
	return (struct vring_used *)(f->gmem + RING_GPA(q) + 0x2000);
}

/*
 * The messages QEMU sends to bring up a vhost-user-blk device, queue q
 * starting at index base[q].  strict: check every answer (else ignore
 * failures: used with injected allocation failures).  kick/call: fds for
 * each queue (taken); the inflight fd the device returns is left in
 * *inflight_fd (owned by the device).
 */
static void negotiate(struct fx *f, bool strict, const uint16_t base[NQ], int kick[NQ],
		      int call[NQ])
{
	struct vu_inflight_desc infl = { .num_queues = NQ, .queue_size = RING_SIZE };
	uint64_t features;
	int ret;

#define STEP_OK()                                                  \
	do {                                                       \
		if (strict)                                        \
			go_ok(f);                                  \
		else                                               \
			(void)go(f);                               \
	} while (0)

	mk(f, VU_REQ_GET_FEATURES, NULL, 0);
	f->msg.hdr.flags = VU_VERSION;
	ret = go(f);
	features = f->reply.payload.u64;
	if (strict) {
		assert_int_equal(ret, VU_HANDLED_REPLY);
		assert_int_equal(f->reply.hdr.size, SZ_U64);
		assert_true(features & 1ull << VIRTIO_F_VERSION_1);
		assert_true(features & 1ull << VU_F_PROTOCOL_FEATURES);
		assert_true((features & DEV_FEATURES) == DEV_FEATURES);
	}
	mk(f, VU_REQ_GET_PROTOCOL_FEATURES, NULL, 0);
	f->msg.hdr.flags = VU_VERSION;
	ret = go(f);
	if (strict) {
		assert_int_equal(ret, VU_HANDLED_REPLY);
		assert_true((f->reply.payload.u64 & PROTO_FEATURES) == PROTO_FEATURES);
	}
	mk_u64(f, VU_REQ_SET_PROTOCOL_FEATURES, PROTO_FEATURES);
	f->msg.hdr.flags = VU_VERSION;
	ret = go(f);
	if (strict)
		assert_int_equal(ret, VU_HANDLED);
	mk(f, VU_REQ_GET_QUEUE_NUM, NULL, 0);
	ret = go(f);
	if (strict) {
		assert_int_equal(ret, VU_HANDLED_REPLY);
		assert_int_equal(f->reply.payload.u64, NQ);
	}
	mk(f, VU_REQ_GET_MAX_MEM_SLOTS, NULL, 0);
	ret = go(f);
	if (strict) {
		assert_int_equal(ret, VU_HANDLED_REPLY);
		assert_int_equal(f->reply.payload.u64, VU_MEM_MAX_SLOTS);
	}
	mk(f, VU_REQ_SET_OWNER, NULL, 0);
	STEP_OK();
	mk_u64(f, VU_REQ_SET_FEATURES, SPLIT_FEATURES);
	STEP_OK();
	send_mem_table(f);
	STEP_OK();
	mk(f, VU_REQ_GET_INFLIGHT_FD, &infl, SZ_INFL);
	ret = go(f);
	if (strict) {
		assert_int_equal(ret, VU_HANDLED_REPLY);
		assert_int_equal(f->reply.hdr.size, SZ_INFL);
		assert_int_equal(f->reply.nfds, 1);
		assert_int_equal(f->reply.payload.inflight.mmap_size, infl_size());
		assert_int_equal(f->reply.payload.inflight.num_queues, NQ);
		assert_int_equal(f->reply.payload.inflight.queue_size, RING_SIZE);
	}
	if (ret == VU_HANDLED_REPLY && f->reply.nfds == 1) {
		struct vu_inflight_desc d = f->reply.payload.inflight;
		int fd = dup(f->reply.fds[0]);

		assert_true(fd >= 0);
		mk(f, VU_REQ_SET_INFLIGHT_FD, &d, SZ_INFL);
		add_fd(f, fd);
		STEP_OK();
	}
	for (unsigned int q = 0; q < NQ; q++) {
		g_used(f, q)->idx = htole16(base[q]);
		g_avail(f, q)->idx = htole16(base[q]);
		mk_state(f, VU_REQ_SET_VRING_NUM, q, RING_SIZE);
		STEP_OK();
		mk_state(f, VU_REQ_SET_VRING_BASE, q, base[q]);
		STEP_OK();
		send_vring_addr(f, q);
		STEP_OK();
		mk_u64(f, VU_REQ_SET_VRING_KICK, q);
		add_fd(f, kick[q]);
		STEP_OK();
		mk_u64(f, VU_REQ_SET_VRING_CALL, q);
		add_fd(f, call[q]);
		STEP_OK();
	}
	for (unsigned int q = 0; q < NQ; q++) {
		mk_state(f, VU_REQ_SET_VRING_ENABLE, q, 1);
		STEP_OK();
	}
#undef STEP_OK
}

/* The full bring-up in the order QEMU uses, chains through queue 0, stop. */
static void test_qemu_negotiation(void **state)
{
	struct fx *f = *state;
	const uint16_t base[NQ] = { 5, 0 };
	int kick[NQ], call[NQ], my_call;
	struct vu_vq *vq = &f->dev->vqs[0];
	struct iovec iov[4];
	uint64_t gpa[4], v;
	struct vu_chain c;

	for (unsigned int q = 0; q < NQ; q++) {
		kick[q] = new_eventfd();
		call[q] = new_eventfd();
	}
	my_call = dup(call[0]);
	negotiate(f, true, base, kick, call);
	for (unsigned int q = 0; q < NQ; q++) {
		assert_true(f->dev->vqs[q].started);
		assert_true(f->dev->vqs[q].enabled);
		assert_true(f->dev->vqs[q].runnable);
		assert_int_equal(f->starts[q], 1);
		assert_int_equal(f->stops[q], 0);
	}
	assert_non_null(vq->inflight);

	/* Config space. */
	mk(f, VU_REQ_GET_CONFIG, NULL, VU_CONFIG_HDR_SIZE);
	f->msg.payload.config.size = CONFIG_SIZE;
	go_reply(f, VU_CONFIG_HDR_SIZE + CONFIG_SIZE);
	assert_memory_equal(f->reply.payload.config.region, f->config, CONFIG_SIZE);

	/* The guest makes three 256-byte writable buffers available. */
	for (uint16_t i = 0; i < 3; i++) {
		struct vring_desc *d = &g_desc(f, 0)[i];

		d->addr = htole64(BUF_GPA + i * 0x100u);
		d->len = htole32(0x100);
		d->flags = htole16(VRING_DESC_F_WRITE);
		g_avail(f, 0)->ring[(base[0] + i) % RING_SIZE] = htole16(i);
	}
	g_avail(f, 0)->idx = htole16(base[0] + 3);
	for (uint16_t i = 0; i < 3; i++) {
		vu_chain_init(&c, iov, gpa, 4);
		assert_int_equal(vu_vq_pop(vq, &c), 1);
		assert_int_equal(c.id, i);
		assert_int_equal(c.nout, 0);
		assert_int_equal(c.nin, 1);
		assert_int_equal(c.in_len, 0x100);
		memset(iov[0].iov_base, 0xa0 + i, 100);
		vu_vq_push(vq, &c, 100);
	}
	vu_chain_init(&c, iov, gpa, 4);
	assert_int_equal(vu_vq_pop(vq, &c), 0);
	vu_vq_notify(vq);
	assert_int_equal(read(my_call, &v, sizeof(v)), (ssize_t)sizeof(v));
	close(my_call);
	assert_int_equal(le16toh(g_used(f, 0)->idx), base[0] + 3);
	for (uint16_t i = 0; i < 3; i++) {
		struct vring_used_elem *e = &g_used(f, 0)->ring[(base[0] + i) % RING_SIZE];

		assert_int_equal(le32toh(e->id), i);
		assert_int_equal(le32toh(e->len), 100);
		assert_int_equal(f->gmem[BUF_GPA + i * 0x100u + 99], 0xa0 + i);
	}

	/* Stop: the queue is stopped and reports where it is. */
	mk_state(f, VU_REQ_GET_VRING_BASE, 0, 0);
	go_reply(f, SZ_STATE);
	assert_int_equal(f->reply.payload.state.index, 0);
	assert_int_equal(f->reply.payload.state.num, base[0] + 3);
	assert_false(vq->started);
	assert_false(vq->runnable);
	assert_int_equal(f->stops[0], 1);
	assert_int_equal(vq->kick_fd, -1);
	assert_int_equal(vq->call_fd, -1);
	mk_state(f, VU_REQ_GET_VRING_BASE, 1, 0);
	go_reply(f, SZ_STATE);
	assert_int_equal(f->reply.payload.state.index, 1);
	assert_int_equal(f->reply.payload.state.num, base[1]);
	assert_int_equal(f->stops[1], 1);
	assert_int_equal(f->starts[0], 1);
	assert_int_equal(f->starts[1], 1);
}

/* REPLY_ACK: acks only when negotiated and asked for; GETs answer anyway. */
static void test_reply_ack(void **state)
{
	struct fx *f = *state;

	/* NEED_REPLY without REPLY_ACK negotiated: no reply. */
	mk(f, VU_REQ_SET_OWNER, NULL, 0);
	assert_int_equal(go(f), VU_HANDLED);
	mk_state(f, VU_REQ_SET_VRING_NUM, 0, 0);
	assert_int_equal(go(f), VU_HANDLED);

	mk_u64(f, VU_REQ_SET_PROTOCOL_FEATURES, PROTO_FEATURES);
	f->msg.hdr.flags = VU_VERSION;
	assert_int_equal(go(f), VU_HANDLED);
	/* Negotiated but not asked for: no reply, even for a failure. */
	mk_state(f, VU_REQ_SET_VRING_NUM, 0, 0);
	f->msg.hdr.flags = VU_VERSION;
	assert_int_equal(go(f), VU_HANDLED);
	mk_state(f, VU_REQ_SET_VRING_NUM, 0, RING_SIZE);
	f->msg.hdr.flags = VU_VERSION;
	assert_int_equal(go(f), VU_HANDLED);
	/* Asked for: 0 on success, the errno on failure. */
	mk_state(f, VU_REQ_SET_VRING_NUM, 0, RING_SIZE);
	assert_int_equal(go_ack(f), 0);
	mk_state(f, VU_REQ_SET_VRING_NUM, 0, 0);
	assert_int_equal(go_ack(f), EINVAL);
	mk_state(f, VU_REQ_SET_VRING_NUM, 7, RING_SIZE);
	assert_int_equal(go_ack(f), EINVAL);
	/* A GET with NEED_REPLY gets its answer, not an ack. */
	mk(f, VU_REQ_GET_QUEUE_NUM, NULL, 0);
	go_reply(f, SZ_U64);
	assert_int_equal(f->reply.payload.u64, NQ);
	mk(f, VU_REQ_GET_STATUS, NULL, 0);
	go_reply(f, SZ_U64);
	/* A failing GET closes the connection: no answer would be right. */
	mk_state(f, VU_REQ_GET_VRING_BASE, 9, 0);
	assert_true(go(f) < 0);
	mk(f, VU_REQ_GET_INFLIGHT_FD, NULL, SZ_INFL);
	assert_true(go(f) < 0);
	/* ... except GET_CONFIG, whose error answer is an empty payload. */
	mk(f, VU_REQ_GET_CONFIG, NULL, VU_CONFIG_HDR_SIZE);
	f->msg.payload.config.size = VU_MAX_CONFIG_SIZE + 1;
	assert_int_equal(go(f), VU_HANDLED_REPLY);
	assert_int_equal(f->reply.hdr.size, 0);
}

/* ---- A.3: repeated messages leak nothing and unmap nothing in use ----------- */

#define REPEAT 100

/* A.3 SET_MEM_TABLE x100 under a running queue: rings re-translated each time. */
static void test_repeat_set_mem_table(void **state)
{
	struct fx *f = *state;
	struct vu_vq *vq = &f->dev->vqs[0];
	int fds, maps;

	reach(f, ST_RUNNING, false);
	fds = count_fds();
	maps = count_memfd_maps();
	for (int i = 0; i < REPEAT; i++) {
		struct iovec iov[2];
		uint64_t gpa[2];
		struct vu_chain c;

		send_mem_table(f);
		go_ok(f);
		/* The ring points into the new table, not the unmapped old one. */
		assert_ptr_equal(vq->gdesc, vu_mem_uva_to_host(f->dev->mem, DESC_UVA(0), 16));
		assert_ptr_equal(vq->gused, vu_mem_uva_to_host(f->dev->mem, USED_UVA(0), 4));
		assert_true(vq->runnable);
		vu_chain_init(&c, iov, gpa, 2);
		assert_int_equal(vu_vq_pop(vq, &c), 0);
	}
	assert_int_equal(count_fds(), fds);
	assert_int_equal(count_memfd_maps(), maps);
}

/* A.3 SET_LOG_BASE x100: one log mapped, no fd kept. */
static void test_repeat_set_log_base(void **state)
{
	struct fx *f = *state;
	struct vu_log_desc d = { .mmap_size = 4096 };
	int fds, maps;

	reach(f, ST_MEM, false);
	fds = count_fds();
	maps = count_memfd_maps();
	for (int i = 0; i < REPEAT; i++) {
		mk(f, VU_REQ_SET_LOG_BASE, &d, SZ_LOG);
		add_fd(f, new_memfd("log", 4096));
		go_reply(f, 0);
	}
	assert_non_null(f->dev->log.glog);
	assert_int_equal(count_fds(), fds);
	assert_int_equal(count_memfd_maps(), maps + 1);
}

/* A.3 GET_INFLIGHT_FD x100: one area (its fd and mapping) at a time. */
static void test_repeat_get_inflight_fd(void **state)
{
	struct fx *f = *state;
	struct vu_inflight_desc d = { .num_queues = NQ, .queue_size = RING_SIZE };
	int fds, maps;

	reach(f, ST_MEM, false);
	fds = count_fds();
	maps = count_memfd_maps();
	for (int i = 0; i < REPEAT; i++) {
		mk(f, VU_REQ_GET_INFLIGHT_FD, &d, SZ_INFL);
		go_reply(f, SZ_INFL);
		assert_int_equal(f->reply.nfds, 1);
		assert_int_equal(f->reply.fds[0], f->dev->inflight.fd);
	}
	assert_int_equal(count_fds(), fds + 1);
	assert_int_equal(count_memfd_maps(), maps + 1);
}

/* A.3 SET_INFLIGHT_FD x100: the previous area is released each time. */
static void test_repeat_set_inflight_fd(void **state)
{
	struct fx *f = *state;
	struct vu_inflight_desc d = { .num_queues = NQ, .queue_size = RING_SIZE };
	int fds, maps;

	reach(f, ST_MEM, false);
	d.mmap_size = infl_size();
	fds = count_fds();
	maps = count_memfd_maps();
	for (int i = 0; i < REPEAT; i++) {
		mk(f, VU_REQ_SET_INFLIGHT_FD, &d, SZ_INFL);
		add_fd(f, new_memfd("inflight", infl_size()));
		go_ok(f);
	}
	assert_int_equal(count_fds(), fds + 1);
	assert_int_equal(count_memfd_maps(), maps + 1);
}

/* A.3 SET_VRING_KICK/CALL/ERR x100 on a running queue, with and without fds. */
static void test_repeat_vring_fds(void **state)
{
	struct fx *f = *state;
	struct vu_vq *vq = &f->dev->vqs[0];
	int fds;

	reach(f, ST_RUNNING, false);
	fds = count_fds();
	for (int i = 0; i < REPEAT; i++) {
		static const uint32_t reqs[] = {
			VU_REQ_SET_VRING_KICK, VU_REQ_SET_VRING_CALL, VU_REQ_SET_VRING_ERR,
		};
		bool nofd = i % 10 == 5;

		for (unsigned int j = 0; j < VU_ARRAY_SIZE(reqs); j++) {
			mk_u64(f, reqs[j], nofd ? NOFD : 0);
			if (!nofd)
				add_fd(f, new_eventfd());
			go_ok(f);
		}
		assert_true(vq->started);
		assert_int_equal(vq->kick_fd < 0, nofd);
	}
	/* The last round had fds; the err fd is new. */
	assert_int_equal(count_fds(), fds + 1);
	assert_int_equal(f->starts[0], 1);
}

/* A.3 ADD_MEM_REG / REM_MEM_REG x100. */
static void test_repeat_add_rem_mem_reg(void **state)
{
	struct fx *f = *state;
	struct vu_single_mem_region r = { .region = { 0x40000, 0x1000, 0x7f0000400000, 0x1000 } };
	int fds, maps;

	reach(f, ST_RUNNING, false);
	fds = count_fds();
	maps = count_memfd_maps();
	for (int i = 0; i < REPEAT; i++) {
		mk(f, VU_REQ_ADD_MEM_REG, &r, SZ_REG);
		add_fd(f, dup(f->memfd));
		go_ok(f);
		assert_int_equal(f->dev->mem->nregions, 3);
		mk(f, VU_REQ_REM_MEM_REG, &r, SZ_REG);
		if (i & 1)
			add_fd(f, dup(f->memfd));
		go_ok(f);
		assert_int_equal(f->dev->mem->nregions, 2);
		assert_true(f->dev->vqs[0].runnable);
	}
	assert_int_equal(count_fds(), fds);
	assert_int_equal(count_memfd_maps(), maps);
}

/* A.3 SET_LOG_FD and SET_BACKEND_REQ_FD x100: one fd kept each. */
static void test_repeat_fd_requests(void **state)
{
	struct fx *f = *state;
	int fds;

	reach(f, ST_OWNER, false);
	fds = count_fds();
	for (int i = 0; i < REPEAT; i++) {
		mk(f, VU_REQ_SET_LOG_FD, NULL, 0);
		add_fd(f, new_eventfd());
		go_ok(f);
		mk(f, VU_REQ_SET_BACKEND_REQ_FD, NULL, 0);
		add_fd(f, new_eventfd());
		go_ok(f);
	}
	assert_int_equal(count_fds(), fds + 2);
}

/* ---- A.8, A.9: ring translation follows the memory table ------------------- */

/* A.8 REM_MEM_REG of the ring's region stops the queue; ADD_MEM_REG resumes it. */
static void test_rem_mem_reg_under_ring(void **state)
{
	struct fx *f = *state;
	struct vu_single_mem_region r0 = { .region = REG0 };
	struct vu_vq *vq = &f->dev->vqs[0];

	reach(f, ST_RUNNING, false);
	mk(f, VU_REQ_REM_MEM_REG, &r0, SZ_REG);
	go_ok(f);
	assert_null(vq->gdesc);
	assert_null(vq->gavail);
	assert_null(vq->gused);
	assert_false(vq->runnable);

	mk(f, VU_REQ_ADD_MEM_REG, &r0, SZ_REG);
	add_fd(f, dup(f->memfd));
	go_ok(f);
	assert_ptr_equal(vq->gdesc, vu_mem_uva_to_host(f->dev->mem, DESC_UVA(0), 16));
	assert_true(vq->runnable);
}

/* A.8 a table without the ring's region leaves no stale pointer. */
static void test_set_mem_table_without_ring(void **state)
{
	struct fx *f = *state;
	struct vu_mem_table_desc t = { .nregions = 1, .regions = { REG1 } };
	struct vu_vq *vq = &f->dev->vqs[0];

	reach(f, ST_RUNNING, false);
	mk(f, VU_REQ_SET_MEM_TABLE, &t, SZ_MEM(1));
	add_fd(f, dup(f->memfd));
	go_ok(f);
	assert_null(vq->gdesc);
	assert_false(vq->runnable);
	send_mem_table(f);
	go_ok(f);
	assert_ptr_equal(vq->gdesc, vu_mem_uva_to_host(f->dev->mem, DESC_UVA(0), 16));
	assert_true(vq->runnable);
}

/*
 * A.9 the ring is checked for the size it starts with: SET_VRING_ADDR
 * validated for 16 entries, then SET_VRING_NUM 256 makes the descriptor
 * table cross the end of region 0.  The kick must not start the queue.
 */
static void test_vring_num_grown_after_addr(void **state)
{
	struct fx *f = *state;
	struct vhost_vring_addr a = {
		.desc_user_addr = R0_UVA + R_SIZE - 16 * 16,
		.avail_user_addr = R0_UVA + 0xe000,
		.used_user_addr = R0_UVA + 0xd000,
	};
	struct vu_vq *vq = &f->dev->vqs[0];

	reach(f, ST_MEM, false);
	mk_state(f, VU_REQ_SET_VRING_NUM, 0, 16);
	go_ok(f);
	mk(f, VU_REQ_SET_VRING_ADDR, &a, SZ_ADDR);
	go_ok(f);
	mk_state(f, VU_REQ_SET_VRING_NUM, 0, RING_SIZE);
	go_ok(f);
	mk_u64(f, VU_REQ_SET_VRING_KICK, 0);
	add_fd(f, new_eventfd());
	assert_int_not_equal(go_ack(f), 0);
	assert_false(vq->started);
	assert_int_equal(f->starts[0], 0);
}

/* A.9 addresses sent before the size are checked when the queue starts. */
static void test_vring_addr_before_num(void **state)
{
	struct fx *f = *state;
	struct vhost_vring_addr a = {
		.desc_user_addr = R0_UVA + R_SIZE - 0x800,
		.avail_user_addr = AVAIL_UVA(0),
		.used_user_addr = USED_UVA(0),
	};
	struct vu_vq *vq = &f->dev->vqs[0];

	reach(f, ST_MEM, false);
	mk(f, VU_REQ_SET_VRING_ADDR, &a, SZ_ADDR);
	go_ok(f);                       /* no size yet: nothing to check */
	mk_state(f, VU_REQ_SET_VRING_NUM, 0, RING_SIZE);
	go_ok(f);
	mk_u64(f, VU_REQ_SET_VRING_KICK, 0);
	add_fd(f, new_eventfd());
	assert_int_not_equal(go_ack(f), 0);
	assert_false(vq->started);
	assert_null(vq->gdesc);
}

/*
 * A.9 a region whose front-end address and file offset disagree modulo 16:
 * ring addresses aligned as front-end addresses land on misaligned host
 * addresses, which ring fields cannot be read through atomically.
 */
static void test_ring_misaligned_on_host(void **state)
{
	struct fx *f = *state;
	struct vu_mem_table_desc t = {
		.nregions = 1,
		.regions = { { .guest_addr = R0_GPA, .size = R_SIZE, .user_addr = R0_UVA + 1 } },
	};
	struct vhost_vring_addr a = {
		.desc_user_addr = R0_UVA + 0x1000, .avail_user_addr = R0_UVA + 0x2000,
		.used_user_addr = R0_UVA + 0x3000,
	};

	reach(f, ST_FEATURES, false);
	mk(f, VU_REQ_SET_MEM_TABLE, &t, SZ_MEM(1));
	add_fd(f, dup(f->memfd));
	go_ok(f);
	mk_state(f, VU_REQ_SET_VRING_NUM, 0, RING_SIZE);
	go_ok(f);
	mk(f, VU_REQ_SET_VRING_ADDR, &a, SZ_ADDR);
	assert_int_not_equal(go_ack(f), 0);
	assert_null(f->dev->vqs[0].gdesc);
	assert_false(f->dev->vqs[0].addr_set);
}

/*
 * A.5 packed ring positions from SET_VRING_BASE beyond the ring (they
 * index it directly): the queue does not start.  Bits 0-14 the next
 * available slot, 16-30 the next used slot; wrap counters in 15 and 31.
 */
static void test_packed_base_beyond_ring(void **state)
{
	static const uint32_t bases[] = {
		0x8000 | RING_SIZE,                     /* available slot == size */
		0x8000 | 0x7fff,                        /* the largest 15 bits */
		0x8000 | (0x8000u | RING_SIZE) << 16,   /* used slot == size */
		0x8000 | (0x8000u | 300) << 16,
	};
	struct fx *f = *state;
	struct vu_vq *vq = &f->dev->vqs[0];

	reach(f, ST_ADDR, true);
	for (unsigned int i = 0; i < VU_ARRAY_SIZE(bases); i++) {
		mk_state(f, VU_REQ_SET_VRING_BASE, 0, bases[i]);
		go_ok(f);
		mk_u64(f, VU_REQ_SET_VRING_KICK, 0);
		add_fd(f, new_eventfd());
		assert_int_not_equal(go_ack(f), 0);
		assert_false(vq->started);
	}
	/* The last slot is fine. */
	mk_state(f, VU_REQ_SET_VRING_BASE, 0, 0x8000 | (RING_SIZE - 1));
	go_ok(f);
	mk_u64(f, VU_REQ_SET_VRING_KICK, 0);
	add_fd(f, new_eventfd());
	go_ok(f);
	assert_true(vq->started);
	mk_state(f, VU_REQ_GET_VRING_BASE, 0, 0);
	go_reply(f, SZ_STATE);
	assert_int_equal(f->reply.payload.state.num & 0x7fff, RING_SIZE - 1);
}

/* ---- A.6: the inflight area ---------------------------------------------- */

static void start_queue0_with_inflight(struct fx *f)
{
	struct vu_inflight_desc d = { .num_queues = NQ, .queue_size = RING_SIZE };

	reach(f, ST_MEM, false);
	mk(f, VU_REQ_GET_INFLIGHT_FD, &d, SZ_INFL);
	go_reply(f, SZ_INFL);
	d = f->reply.payload.inflight;
	mk(f, VU_REQ_SET_INFLIGHT_FD, &d, SZ_INFL);
	add_fd(f, dup(f->reply.fds[0]));
	go_ok(f);
	mk_state(f, VU_REQ_SET_VRING_NUM, 0, RING_SIZE);
	go_ok(f);
	send_vring_addr(f, 0);
	go_ok(f);
	mk_u64(f, VU_REQ_SET_VRING_KICK, 0);
	add_fd(f, new_eventfd());
	go_ok(f);
	assert_true(f->dev->vqs[0].started);
	assert_non_null(f->dev->vqs[0].inflight);
}

/* The queue's inflight region lies in the device's current area. */
static void check_inflight_region_mapped(struct fx *f)
{
	const struct vu_vq *vq = &f->dev->vqs[0];
	const uint8_t *map = f->dev->inflight.map, *g;

	if (!vq->started || !vq->inflight)
		return;
	g = vq->inflight->gregion;
	assert_non_null(map);
	assert_true(g >= map && g < map + f->dev->inflight.map_len);
}

/* Pop and complete one chain of queue 0 (touches the inflight region). */
static void cycle_one_chain(struct fx *f)
{
	struct vu_vq *vq = &f->dev->vqs[0];
	uint16_t idx = le16toh(g_avail(f, 0)->idx);
	struct iovec iov[2];
	uint64_t gpa[2];
	struct vu_chain c;

	g_desc(f, 0)[0].addr = htole64(BUF_GPA);
	g_desc(f, 0)[0].len = htole32(64);
	g_desc(f, 0)[0].flags = htole16(VRING_DESC_F_WRITE);
	g_avail(f, 0)->ring[idx % RING_SIZE] = 0;
	g_avail(f, 0)->idx = htole16(idx + 1);
	vu_chain_init(&c, iov, gpa, 2);
	assert_int_equal(vu_vq_pop(vq, &c), 1);
	vu_vq_push(vq, &c, 64);
	vu_vq_notify(vq);
}

/*
 * A.3/A.6 GET_INFLIGHT_FD and SET_INFLIGHT_FD while a queue tracks its
 * requests in the current area: the area must not be unmapped under it.
 */
static void test_inflight_fd_while_running(void **state)
{
	struct fx *f = *state;
	struct vu_inflight_desc d = { .num_queues = NQ, .queue_size = RING_SIZE };

	start_queue0_with_inflight(f);
	cycle_one_chain(f);

	mk(f, VU_REQ_GET_INFLIGHT_FD, &d, SZ_INFL);
	(void)go(f);
	check_inflight_region_mapped(f);
	cycle_one_chain(f);

	d.mmap_size = infl_size();
	mk(f, VU_REQ_SET_INFLIGHT_FD, &d, SZ_INFL);
	add_fd(f, new_memfd("inflight", infl_size()));
	(void)go(f);
	check_inflight_region_mapped(f);
	cycle_one_chain(f);
}

/* A.6 an area for smaller queues than the ring: the queue does not start. */
static void test_inflight_area_smaller_than_ring(void **state)
{
	struct fx *f = *state;
	struct vu_inflight_desc d = { .num_queues = NQ, .queue_size = 128 };
	struct vu_vq *vq = &f->dev->vqs[0];

	reach(f, ST_MEM, false);
	d.mmap_size = NQ * vu_inflight_queue_region_size(128);
	mk(f, VU_REQ_SET_INFLIGHT_FD, &d, SZ_INFL);
	add_fd(f, new_memfd("inflight", d.mmap_size));
	go_ok(f);
	mk_state(f, VU_REQ_SET_VRING_NUM, 0, RING_SIZE);
	go_ok(f);
	send_vring_addr(f, 0);
	go_ok(f);
	mk_u64(f, VU_REQ_SET_VRING_KICK, 0);
	add_fd(f, new_eventfd());
	assert_int_not_equal(go_ack(f), 0);
	assert_false(vq->started);
	assert_int_equal(f->starts[0], 0);
}

/*
 * A.6/D.29 the device refuses to start a queue whose inflight tracking was
 * attached: the tracking state is freed (the sanitizer build checks for
 * the leak), and a later start works.
 */
static void test_queue_start_refused_with_inflight(void **state)
{
	struct fx *f = *state;
	struct vu_inflight_desc d = { .num_queues = NQ, .queue_size = RING_SIZE };
	struct vu_vq *vq = &f->dev->vqs[0];
	const struct vu_inflight_queue zero = { 0 };

	reach(f, ST_MEM, false);
	mk(f, VU_REQ_GET_INFLIGHT_FD, &d, SZ_INFL);
	go_reply(f, SZ_INFL);
	mk_state(f, VU_REQ_SET_VRING_NUM, 0, RING_SIZE);
	go_ok(f);
	send_vring_addr(f, 0);
	go_ok(f);
	f->start_error = -EIO;
	for (int i = 0; i < 3; i++) {
		mk_u64(f, VU_REQ_SET_VRING_KICK, 0);
		add_fd(f, new_eventfd());
		assert_int_equal(go_ack(f), EIO);
		assert_false(vq->started);
		assert_null(vq->inflight);
		assert_memory_equal(&f->dev->ivqs[0], &zero, sizeof(zero));
	}
	f->start_error = 0;
	mk_u64(f, VU_REQ_SET_VRING_KICK, 0);
	add_fd(f, new_eventfd());
	go_ok(f);
	assert_true(vq->started);
	assert_non_null(vq->inflight);
	cycle_one_chain(f);
}

/* ---- A.7: the dirty log --------------------------------------------------- */

/* A.7 the log offset is applied once: page 0 dirty sets bit 0 at file offset 4096. */
static void test_log_offset_applied_once(void **state)
{
	struct fx *f = *state;
	struct vu_log_desc d = { .mmap_size = 4096, .mmap_offset = 4096 };
	int fd = new_memfd("log", 8192);
	uint8_t b[2] = { 0xff, 0xff };

	reach(f, ST_MEM, false);
	mk(f, VU_REQ_SET_LOG_BASE, &d, SZ_LOG);
	add_fd(f, dup(fd));
	go_reply(f, 0);
	assert_int_equal(f->dev->log.size, 4096);
	vu_dirty_log_write(&f->dev->log, R1_GPA, 1);
	assert_int_equal(pread(fd, &b[0], 1, 0), 1);
	assert_int_equal(pread(fd, &b[1], 1, 4096 + R1_GPA / VU_LOG_PAGE / 8), 1);
	assert_int_equal(b[0], 0);
	assert_int_equal(b[1], 1u << (R1_GPA / VU_LOG_PAGE % 8));
	close(fd);
}

/* ---- A.10: order of messages --------------------------------------------------- */

/* A.10 a kick before the memory table: no crash, the queue waits, fd kept. */
static void test_kick_before_memory(void **state)
{
	struct fx *f = *state;
	struct vu_vq *vq = &f->dev->vqs[0];

	reach(f, ST_FEATURES, false);
	mk_u64(f, VU_REQ_SET_VRING_KICK, 0);
	add_fd(f, new_eventfd());
	assert_int_not_equal(go_ack(f), 0);
	assert_false(vq->started);
	assert_true(vq->kick_fd >= 0);
	mk(f, VU_REQ_VRING_KICK, NULL, SZ_STATE);
	assert_int_equal(go_ack(f), 0);
	/* Once everything is there the queue starts with the kick fd it
	 * kept; a later SET_VRING_KICK only replaces the fd. */
	send_mem_table(f);
	go_ok(f);
	mk_state(f, VU_REQ_SET_VRING_NUM, 0, RING_SIZE);
	go_ok(f);
	assert_false(vq->started);
	send_vring_addr(f, 0);
	go_ok(f);
	assert_true(vq->started);
	mk_u64(f, VU_REQ_SET_VRING_KICK, 0);
	add_fd(f, new_eventfd());
	go_ok(f);
	assert_true(vq->started);
}

/* A.10 a kick with the size and memory but no addresses: no crash. */
static void test_kick_before_addresses(void **state)
{
	struct fx *f = *state;
	struct vu_vq *vq = &f->dev->vqs[0];
	struct iovec iov[2];
	uint64_t gpa[2];
	struct vu_chain c;

	reach(f, ST_NUM, false);
	mk_u64(f, VU_REQ_SET_VRING_KICK, NOFD);
	assert_int_not_equal(go_ack(f), 0);
	assert_false(vq->started);
	assert_false(vq->runnable);
	assert_null(vq->gdesc);
	/* The poller would not call this; the walker still must not crash
	 * if the queue is marked broken. */
	vq->broken = true;
	vu_chain_init(&c, iov, gpa, 2);
	assert_int_equal(vu_vq_pop(vq, &c), -EIO);
	vq->broken = false;
}

/* A.10 a started queue runs only once enabled; enabling it polls it at once. */
static void test_enable_after_kick(void **state)
{
	struct fx *f = *state;
	struct vu_vq *vq = &f->dev->vqs[0];

	reach(f, ST_ADDR, false);
	mk_u64(f, VU_REQ_SET_VRING_KICK, 0);
	add_fd(f, new_eventfd());
	go_ok(f);
	assert_true(vq->started);
	assert_false(vq->enabled);
	assert_false(vq->runnable);
	mk_state(f, VU_REQ_SET_VRING_ENABLE, 0, 1);
	go_ok(f);
	assert_true(vq->runnable);
	mk_state(f, VU_REQ_SET_VRING_ENABLE, 0, 0);
	go_ok(f);
	assert_false(vq->runnable);
	assert_true(vq->started);
}

/* A.10 disconnect right after SET_FEATURES, then a full negotiation again. */
static void test_disconnect_after_set_features(void **state)
{
	struct fx *f = *state;
	const uint16_t base[NQ] = { 0, 0 };
	int kick[NQ], call[NQ];

	reach(f, ST_FEATURES, false);
	vu_dev_disconnect(f->dev);
	assert_false(f->dev->owned);
	assert_int_equal(f->dev->features, 0);
	assert_int_equal(count_fds(), f->base_fds);
	for (unsigned int q = 0; q < NQ; q++) {
		kick[q] = new_eventfd();
		call[q] = new_eventfd();
	}
	negotiate(f, true, base, kick, call);
	assert_true(f->dev->vqs[1].started);
}

/* D.29 connect/negotiate/disconnect cycles leave fds and mappings flat. */
static void test_reconnect_cycles(void **state)
{
	struct fx *f = *state;
	const uint16_t base[NQ] = { 3, 4 };

	for (int i = 0; i < 50; i++) {
		int kick[NQ], call[NQ];

		for (unsigned int q = 0; q < NQ; q++) {
			kick[q] = new_eventfd();
			call[q] = new_eventfd();
		}
		negotiate(f, true, base, kick, call);
		vu_dev_disconnect(f->dev);
		assert_int_equal(count_fds(), f->base_fds);
		assert_int_equal(count_memfd_maps(), f->base_maps);
	}
	assert_int_equal(f->starts[0], 50);
	assert_int_equal(f->stops[0], 50);
}

/* ---- libc failures ------------------------------------------------------------ */

/* A.8 mmap of region `which` fails: every fd closed, the old table kept. */
static void mmap_fails_in_set_mem_table(struct fx *f, int which)
{
	struct vu_vq *vq = &f->dev->vqs[0];
	const struct vu_mem *old;
	int fds, maps, passed[2];

	reach(f, ST_RUNNING, false);
	old = f->dev->mem;
	fds = count_fds();
	maps = count_memfd_maps();
	send_mem_table(f);
	passed[0] = f->msg.fds[0];
	passed[1] = f->msg.fds[1];
	mmap_failed = false;
	mmap_fail_at = which;
	assert_int_equal(go_ack(f), ENOMEM);
	assert_true(mmap_failed);
	assert_true(fd_is_closed(passed[0]));
	assert_true(fd_is_closed(passed[1]));
	assert_int_equal(count_fds(), fds);
	assert_int_equal(count_memfd_maps(), maps);
	assert_ptr_equal(f->dev->mem, old);
	assert_int_equal(f->dev->mem->nregions, 2);
	assert_true(vq->runnable);
	assert_ptr_equal(vq->gdesc, vu_mem_uva_to_host(old, DESC_UVA(0), 16));
}

static void test_mmap_fails_first_region(void **state)
{
	mmap_fails_in_set_mem_table(*state, 1);
}

static void test_mmap_fails_second_region(void **state)
{
	mmap_fails_in_set_mem_table(*state, 2);
}

/* A.8 calloc fails in vu_mem_create (SET_MEM_TABLE): -ENOMEM, nothing leaked. */
static void test_calloc_fails_in_set_mem_table(void **state)
{
	struct fx *f = *state;
	const struct vu_mem *old;
	int fds, maps, passed[2];

	reach(f, ST_MEM, false);
	old = f->dev->mem;
	fds = count_fds();
	maps = count_memfd_maps();
	send_mem_table(f);
	passed[0] = f->msg.fds[0];
	passed[1] = f->msg.fds[1];
	alloc_failed = false;
	alloc_fail_at = 1;
	assert_int_equal(go_ack(f), ENOMEM);
	assert_true(alloc_failed);
	assert_true(fd_is_closed(passed[0]) && fd_is_closed(passed[1]));
	assert_int_equal(count_fds(), fds);
	assert_int_equal(count_memfd_maps(), maps);
	assert_ptr_equal(f->dev->mem, old);
}

/* A.8 calloc fails in vu_mem_create (first ADD_MEM_REG): fd closed. */
static void test_calloc_fails_in_add_mem_reg(void **state)
{
	struct fx *f = *state;
	struct vu_single_mem_region r = { .region = REG0 };
	int fds, fd;

	reach(f, ST_FEATURES, false);
	fds = count_fds();
	mk(f, VU_REQ_ADD_MEM_REG, &r, SZ_REG);
	fd = add_fd(f, dup(f->memfd));
	alloc_failed = false;
	alloc_fail_at = 1;
	assert_int_equal(go_ack(f), ENOMEM);
	assert_true(alloc_failed);
	assert_true(fd_is_closed(fd));
	assert_int_equal(count_fds(), fds);
	assert_null(f->dev->mem);
}

/*
 * Fail the n-th allocation (or mmap) of the whole negotiation, for every
 * n until the negotiation completes without reaching it: no crash, and
 * after a disconnect nothing is left (fx_destroy checks).
 */
static void failure_sweep(int *fail_at, bool *failed)
{
	for (int n = 1;; n++) {
		struct fx *f = fx_create();
		const uint16_t base[NQ] = { 0, 0 };
		int kick[NQ], call[NQ];

		for (unsigned int q = 0; q < NQ; q++) {
			kick[q] = new_eventfd();
			call[q] = new_eventfd();
		}
		*failed = false;
		*fail_at = n;
		capture_start();
		negotiate(f, false, base, kick, call);
		for (unsigned int q = 0; q < NQ; q++) {
			mk_state(f, VU_REQ_GET_VRING_BASE, q, 0);
			(void)go(f);
		}
		capture_stop();
		*fail_at = 0;
		fx_destroy(f);
		if (!*failed) {
			assert_true(n > 1);
			break;
		}
	}
}

static void test_allocation_failure_sweep(void **state)
{
	(void)state;
	failure_sweep(&alloc_fail_at, &alloc_failed);
}

static void test_mmap_failure_sweep(void **state)
{
	(void)state;
	failure_sweep(&mmap_fail_at, &mmap_failed);
}

int main(void)
{
	const struct CMUnitTest sequences[] = {
		cmocka_unit_test_setup_teardown(test_qemu_negotiation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repeat_set_mem_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repeat_set_log_base, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repeat_get_inflight_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repeat_set_inflight_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repeat_vring_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repeat_add_rem_mem_reg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repeat_fd_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rem_mem_reg_under_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_mem_table_without_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vring_num_grown_after_addr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vring_addr_before_num, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_misaligned_on_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_packed_base_beyond_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inflight_fd_while_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inflight_area_smaller_than_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_start_refused_with_inflight, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_log_offset_applied_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kick_before_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kick_before_addresses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enable_after_kick, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disconnect_after_set_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect_cycles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mmap_fails_first_region, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mmap_fails_second_region, setup, teardown),
		cmocka_unit_test_setup_teardown(test_calloc_fails_in_set_mem_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_calloc_fails_in_add_mem_reg, setup, teardown),
		cmocka_unit_test(test_allocation_failure_sweep),
		cmocka_unit_test(test_mmap_failure_sweep),
	};
	struct CMUnitTest table[VU_ARRAY_SIZE(rows)];
	int failed;

	if (!getenv("VU_TEST_VERBOSE"))
		vu_log_set_level(VU_LOG_WARN);
	for (size_t i = 0; i < VU_ARRAY_SIZE(rows); i++)
		table[i] = (struct CMUnitTest){
			.name = rows[i].what,
			.test_func = run_row,
			.setup_func = row_setup,
			.teardown_func = teardown,
			.initial_state = (void *)&rows[i],
		};
	failed = cmocka_run_group_tests_name("handlers: sequences", sequences, NULL, NULL);
	failed += _cmocka_run_group_tests("handlers: hostile messages (SECURITY.md A.1-A.10)",
					  table, VU_ARRAY_SIZE(rows), NULL, NULL);
	return failed ? 1 : 0;
}
