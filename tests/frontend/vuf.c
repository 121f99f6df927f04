// SPDX-License-Identifier: MIT
/*
 * vuf: the vhost-user front-end used by the tests and the load generator
 * (see vuf.h for the contracts).  This file holds the connection and its
 * messages, guest memory, and the driver side of split and packed rings.
 *
 * The back-end under test is not trusted: every reply header is checked
 * against the request, every used-ring entry against the chains actually
 * in flight, and a protocol violation latches the queue broken with a
 * message naming the bad value instead of corrupting our state.
 *
 * Ring memory ordering, driver side (each pairs with the device's
 * counterpart):
 *  - descriptors and avail entry, then avail->idx / head flags with
 *    release (device: acquire of avail->idx / head flags);
 *  - avail->idx / head flags, full barrier, then read of the device's
 *    suppression state (device: sets avail_event / enables notifications,
 *    full barrier, re-reads the ring);
 *  - used->idx / used flags read with acquire before the entry
 *    (device: release when publishing);
 *  - used_event / driver event written, full barrier, then used->idx
 *    re-read before sleeping (device: publishes used, full barrier, reads
 *    the suppression state).
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vu_util.h"
#include "vuf.h"

#define VUF_PAGE_SIZE 4096ull
#define VUF_HUGE_PAGE_SIZE (2ull << 20)
/* Descriptors a raw message may carry (the kernel's SCM_MAX_FD). */
#define VUF_RAW_MAX_FDS 253
/* Back-off between connection attempts. */
#define VUF_CONNECT_RETRY_NS 10000000ull
/* state[].wlen of a chain posted raw: its descriptors are the caller's. */
#define VUF_WLEN_RAW UINT32_MAX

struct vuf_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t mmap_offset;
	uint8_t *host;          /* gpa maps here */
	int fd;
	bool shared;            /* the back-end has it */
	size_t bump;            /* bytes handed out by vuf_alloc */
};

struct vuf {
	int sock;
	char *path;
	int timeout_ms;
	bool reply_ack;
	uint64_t features;
	uint64_t protocol_features;

	struct vuf_region *regions;
	unsigned int nregions;
	bool mem_hot_added;     /* replay the table with ADD_MEM_REG */

	struct vuf_vq *vqs[VUF_MAX_QUEUES];

	int inflight_fd;
	void *inflight_map;
	size_t inflight_len;
	struct vu_inflight_desc inflight_desc;
	bool inflight_sent;

	int backend_fd;
	bool backend_channel;   /* opened once: reopened by vuf_reconnect */
	bool status_set;
	uint8_t status;
};

/* Private state of one chain, indexed by head (split) or buffer id (packed). */
struct vuf_chain_state {
	uint64_t cookie;
	uint32_t wlen;          /* writable bytes; VUF_WLEN_RAW: posted raw */
	uint16_t ndescs;        /* ring descriptors it holds; 0: not in flight */
	uint16_t link;          /* split: its last descriptor; packed: next free id */
};

struct vuf_vq {
	/* ---- data path: producer ---- */
	uint16_t size;
	uint16_t num_free;
	uint16_t free_head;     /* split: free descriptor list; packed: free id list */
	uint16_t avail_idx;     /* split: free-running avail idx; packed: next slot */
	uint16_t avail_pub;     /* split: the avail->idx last stored */
	uint32_t num_added;     /* entries (split) or slots (packed) since the last kick */
	bool avail_wrap;        /* packed */
	bool packed;
	bool event_idx;
	bool cb_enabled;
	/* ---- data path: consumer ---- */
	uint16_t last_used;     /* split: free-running; packed: next slot */
	uint16_t inflight;      /* chains posted and not reaped */
	bool used_wrap;         /* packed */
	bool broken;
	uint16_t indirect_max;  /* 0: no indirect tables */
	struct vuf_chain_state *state;
	uint16_t *next;         /* split: private copy of desc[].next */

	struct vring_desc *gdesc;
	struct vring_avail *gavail;
	struct vring_used *gused;
	uint16_t *gused_event;  /* &gavail->ring[size] */
	uint16_t *gavail_event; /* &gused->ring[size] */
	struct vring_packed_desc *gpdesc;
	struct vring_packed_desc_event *gdriver;
	struct vring_packed_desc_event *gdevice;
	uint8_t *gindirect;     /* size tables of indirect_max descriptors */
	uint64_t indirect_gpa;

	int kick_fd;
	int call_fd;
	int wait_fallback_ms;
	struct vuf_vq_stats stats;

	/* ---- control ---- */
	struct vuf *vuf;
	unsigned int index;
	bool started;
	bool saved_base_valid;
	uint32_t saved_base;
	uint64_t desc_gpa;
	uint64_t driver_gpa;    /* split: avail ring; packed: driver event */
	uint64_t device_gpa;    /* split: used ring; packed: device event */
	char error[160];
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */
/* ------------------------------------------------------------------ */

static uint32_t vuf_load_relaxed32(const uint32_t *gp)
{
	return __atomic_load_n(gp, __ATOMIC_RELAXED);
}

/* Milliseconds left before deadline_ns (-1: no deadline), at least 0. */
static int ms_left(uint64_t deadline_ns)
{
	uint64_t now;

	if (deadline_ns == UINT64_MAX)
		return -1;
	now = vu_now_ns();
	if (now >= deadline_ns)
		return 0;
	return (int)((deadline_ns - now + 999999) / 1000000);
}

static uint64_t deadline_after(int timeout_ms)
{
	if (timeout_ms < 0)
		return UINT64_MAX;
	return vu_now_ns() + (uint64_t)timeout_ms * 1000000ull;
}

/* Wait until fd is readable (or hung up).  0, -ETIMEDOUT, -errno. */
static int wait_readable(int fd, int timeout_ms)
{
	uint64_t deadline = deadline_after(timeout_ms);
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	for (;;) {
		int n = poll(&pfd, 1, ms_left(deadline));

		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static void set_sock_timeouts(int fd, int timeout_ms)
{
	struct timeval tv = { 0, 0 };

	if (fd < 0)
		return;
	if (timeout_ms > 0) {
		tv.tv_sec = timeout_ms / 1000;
		tv.tv_usec = (timeout_ms % 1000) * 1000;
	}
	/* Failure only loses the stall protection; the requests still work. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static bool use_ack(const struct vuf *vuf)
{
	return vuf->reply_ack && (vuf->protocol_features & (1ull << VU_PROTOCOL_F_REPLY_ACK));
}

static bool protocol_features_acked(const struct vuf *vuf)
{
	return vuf->features & (1ull << VU_F_PROTOCOL_FEATURES);
}

/* ------------------------------------------------------------------ */
/* Connection                                                         */
/* ------------------------------------------------------------------ */

struct vuf *vuf_create(void)
{
	struct vuf *vuf = calloc(1, sizeof(*vuf));

	if (!vuf)
		return NULL;
	vuf->sock = -1;
	vuf->inflight_fd = -1;
	vuf->backend_fd = -1;
	vuf->timeout_ms = VUF_DEFAULT_TIMEOUT_MS;
	vuf->reply_ack = true;
	return vuf;
}

/* Connect to path, retrying while it is absent or refuses.  fd or -errno. */
static int connect_path(const char *path, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t deadline = deadline_after(timeout_ms);

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	for (;;) {
		struct timespec ts = { 0, VUF_CONNECT_RETRY_NS };
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int err;

		if (fd < 0)
			return -errno;
		if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		err = errno;
		close(fd);
		if (err != ENOENT && err != ECONNREFUSED && err != EAGAIN && err != EINTR)
			return -err;
		if (ms_left(deadline) == 0)
			return -ETIMEDOUT;
		nanosleep(&ts, NULL);
	}
}

struct vuf *vuf_connect_fd(int fd)
{
	struct vuf *vuf;

	if (fd < 0) {
		errno = EBADF;
		return NULL;
	}
	vuf = vuf_create();
	if (!vuf) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	vuf->sock = fd;
	set_sock_timeouts(fd, vuf->timeout_ms);
	return vuf;
}

struct vuf *vuf_connect(const char *path, int timeout_ms)
{
	struct vuf *vuf;
	char *copy;
	int fd;

	if (!path) {
		errno = EINVAL;
		return NULL;
	}
	copy = strdup(path);
	if (!copy) {
		errno = ENOMEM;
		return NULL;
	}
	fd = connect_path(path, timeout_ms);
	if (fd < 0) {
		free(copy);
		errno = -fd;
		return NULL;
	}
	vuf = vuf_connect_fd(fd);
	if (!vuf) {
		free(copy);
		return NULL;
	}
	vuf->path = copy;
	return vuf;
}

static void inflight_release(struct vuf *vuf)
{
	if (vuf->inflight_map)
		munmap(vuf->inflight_map, vuf->inflight_len);
	vuf->inflight_map = NULL;
	vuf->inflight_len = 0;
	vu_close_fd(&vuf->inflight_fd);
	vuf->inflight_sent = false;
}

void vuf_close(struct vuf *vuf)
{
	if (!vuf)
		return;
	for (unsigned int i = 0; i < VUF_MAX_QUEUES; i++)
		vuf_vq_destroy(vuf->vqs[i]);
	vu_close_fd(&vuf->sock);
	vu_close_fd(&vuf->backend_fd);
	inflight_release(vuf);
	for (unsigned int i = 0; i < vuf->nregions; i++) {
		struct vuf_region *r = &vuf->regions[i];

		munmap(r->host, r->size);
		vu_close_fd(&r->fd);
	}
	free(vuf->regions);
	free(vuf->path);
	free(vuf);
}

int vuf_sock(const struct vuf *vuf)
{
	return vuf->sock;
}

void vuf_set_timeout(struct vuf *vuf, int timeout_ms)
{
	vuf->timeout_ms = timeout_ms;
	set_sock_timeouts(vuf->sock, timeout_ms);
	set_sock_timeouts(vuf->backend_fd, timeout_ms);
}

void vuf_set_reply_ack(struct vuf *vuf, bool on)
{
	vuf->reply_ack = on;
}

uint64_t vuf_features(const struct vuf *vuf)
{
	return vuf->features;
}

uint64_t vuf_protocol_features(const struct vuf *vuf)
{
	return vuf->protocol_features;
}

void vuf_set_local_features(struct vuf *vuf, uint64_t features)
{
	vuf->features = features;
}

/* ------------------------------------------------------------------ */
/* Raw messages                                                       */
/* ------------------------------------------------------------------ */

bool vuf_request_has_reply(const struct vuf *vuf, uint32_t request)
{
	switch (request) {
	case VU_REQ_GET_FEATURES:
	case VU_REQ_GET_PROTOCOL_FEATURES:
	case VU_REQ_GET_VRING_BASE:
	case VU_REQ_GET_QUEUE_NUM:
	case VU_REQ_GET_CONFIG:
	case VU_REQ_GET_INFLIGHT_FD:
	case VU_REQ_GET_MAX_MEM_SLOTS:
	case VU_REQ_GET_STATUS:
	case VU_REQ_IOTLB_MSG:
	case VU_REQ_POSTCOPY_ADVISE:
	case VU_REQ_POSTCOPY_END:
	case VU_REQ_CREATE_CRYPTO_SESSION:
	case VU_REQ_GET_SHARED_OBJECT:
	case VU_REQ_SET_DEVICE_STATE_FD:
	case VU_REQ_CHECK_DEVICE_STATE:
		return true;
	case VU_REQ_SET_LOG_BASE:
		return vuf->protocol_features & (1ull << VU_PROTOCOL_F_LOG_SHMFD);
	default:
		return false;
	}
}

static int send_msg(struct vuf *vuf, uint32_t request, uint32_t flags, const void *payload,
		    uint32_t size, const int *fds, unsigned int nfds)
{
	struct vu_msg msg;

	if (vuf->sock < 0)
		return -ENOTCONN;
	if (size > VU_MAX_PAYLOAD || nfds > VU_MAX_FDS || (size && !payload) || (nfds && !fds))
		return -EINVAL;
	memset(&msg.hdr, 0, sizeof(msg.hdr));
	msg.hdr.request = request;
	msg.hdr.flags = VU_VERSION | flags;
	msg.hdr.size = size;
	if (size)
		memcpy(&msg.payload, payload, size);
	for (unsigned int i = 0; i < nfds; i++)
		msg.fds[i] = fds[i];
	msg.nfds = nfds;
	return vu_msg_send(vuf->sock, &msg);
}

/* Receive the reply to `request` and check its header.  0 or -errno. */
static int recv_reply(struct vuf *vuf, uint32_t request, struct vu_msg *reply)
{
	int ret = wait_readable(vuf->sock, vuf->timeout_ms);

	if (ret) {
		if (ret == -ETIMEDOUT)
			vu_err("vuf: no reply to %s within %d ms", vu_request_name(request),
			       vuf->timeout_ms);
		return ret;
	}
	ret = vu_msg_recv(vuf->sock, reply);
	if (ret)
		return ret;
	if (reply->hdr.request != request || !(reply->hdr.flags & VU_FLAG_REPLY) ||
	    (reply->hdr.flags & VU_FLAG_VERSION_MASK) != VU_VERSION) {
		vu_err("vuf: reply to %s has request %u (%s), flags 0x%x",
		       vu_request_name(request), reply->hdr.request,
		       vu_request_name(reply->hdr.request), reply->hdr.flags);
		vu_msg_close_fds(reply);
		return -EPROTO;
	}
	return 0;
}

int vuf_request(struct vuf *vuf, uint32_t request, const void *payload, uint32_t size,
		const int *fds, unsigned int nfds, bool need_reply, struct vu_msg *reply)
{
	bool natural = vuf_request_has_reply(vuf, request);
	struct vu_msg r;
	int ret;

	ret = send_msg(vuf, request, need_reply ? VU_FLAG_NEED_REPLY : 0, payload, size, fds, nfds);
	if (ret)
		return ret;
	if (!natural && !need_reply)
		return 0;
	ret = recv_reply(vuf, request, &r);
	if (ret)
		return ret;
	if (natural) {
		if (reply)
			*reply = r;
		else
			vu_msg_close_fds(&r);
		return 0;
	}
	vu_msg_close_fds(&r);
	if (r.hdr.size != sizeof(uint64_t)) {
		vu_err("vuf: REPLY_ACK of %s has %u payload bytes", vu_request_name(request),
		       r.hdr.size);
		return -EPROTO;
	}
	if (reply)
		*reply = r;
	if (r.payload.u64) {
		vu_info("vuf: %s refused (ack %llu)", vu_request_name(request),
			(unsigned long long)r.payload.u64);
		return -EIO;
	}
	return 0;
}

int vuf_send_raw(struct vuf *vuf, const void *bytes, size_t len, const int *fds,
		 unsigned int nfds)
{
	union {
		char buf[CMSG_SPACE(VUF_RAW_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = (void *)bytes, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (vuf->sock < 0)
		return -ENOTCONN;
	if (nfds > VUF_RAW_MAX_FDS || (nfds && (!fds || !len)) || (len && !bytes))
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	while (iov.iov_len) {
		ssize_t n = sendmsg(vuf->sock, &mh, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		iov.iov_base = (uint8_t *)iov.iov_base + n;
		iov.iov_len -= (size_t)n;
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
	}
	return 0;
}

int vuf_recv(struct vuf *vuf, struct vu_msg *msg, int timeout_ms)
{
	int ret;

	if (vuf->sock < 0)
		return -ENOTCONN;
	ret = wait_readable(vuf->sock, timeout_ms);
	if (ret)
		return ret;
	return vu_msg_recv(vuf->sock, msg);
}

int vuf_peer_closed(struct vuf *vuf, int timeout_ms)
{
	uint64_t deadline = deadline_after(timeout_ms);

	if (vuf->sock < 0)
		return 1;
	for (;;) {
		char buf[4096];
		ssize_t n;
		int ret = wait_readable(vuf->sock, ms_left(deadline));

		if (ret == -ETIMEDOUT)
			return 0;
		if (ret)
			return ret;
		/* No control buffer: descriptors sent along are closed by the kernel. */
		n = recv(vuf->sock, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0)
			return 1;
		if (n < 0) {
			if (errno == ECONNRESET || errno == EPIPE)
				return 1;
			if (errno != EAGAIN && errno != EINTR)
				return -errno;
		}
	}
}

/* ------------------------------------------------------------------ */
/* Request helpers                                                    */
/* ------------------------------------------------------------------ */

/* A request without payload whose reply is a u64. */
static int get_u64(struct vuf *vuf, uint32_t request, uint64_t *out)
{
	struct vu_msg r;
	int ret = vuf_request(vuf, request, NULL, 0, NULL, 0, false, &r);

	if (ret)
		return ret;
	vu_msg_close_fds(&r);
	if (r.hdr.size != sizeof(uint64_t)) {
		vu_err("vuf: reply to %s has %u payload bytes, expected 8",
		       vu_request_name(request), r.hdr.size);
		return -EPROTO;
	}
	*out = r.payload.u64;
	return 0;
}

static int set_u64(struct vuf *vuf, uint32_t request, uint64_t v)
{
	return vuf_request(vuf, request, &v, sizeof(v), NULL, 0, use_ack(vuf), NULL);
}

static int set_state(struct vuf *vuf, uint32_t request, unsigned int index, uint32_t num)
{
	struct vhost_vring_state s = { .index = index, .num = num };

	return vuf_request(vuf, request, &s, sizeof(s), NULL, 0, use_ack(vuf), NULL);
}

static int set_none(struct vuf *vuf, uint32_t request)
{
	return vuf_request(vuf, request, NULL, 0, NULL, 0, use_ack(vuf), NULL);
}

int vuf_get_features(struct vuf *vuf, uint64_t *features)
{
	return get_u64(vuf, VU_REQ_GET_FEATURES, features);
}

int vuf_set_features(struct vuf *vuf, uint64_t features)
{
	int ret = set_u64(vuf, VU_REQ_SET_FEATURES, features);

	if (ret == 0)
		vuf->features = features;
	return ret;
}

int vuf_get_protocol_features(struct vuf *vuf, uint64_t *features)
{
	return get_u64(vuf, VU_REQ_GET_PROTOCOL_FEATURES, features);
}

int vuf_set_protocol_features(struct vuf *vuf, uint64_t features)
{
	int ret = set_u64(vuf, VU_REQ_SET_PROTOCOL_FEATURES, features);

	if (ret == 0)
		vuf->protocol_features = features;
	return ret;
}

int vuf_set_owner(struct vuf *vuf)
{
	return set_none(vuf, VU_REQ_SET_OWNER);
}

int vuf_get_queue_num(struct vuf *vuf, uint64_t *num)
{
	return get_u64(vuf, VU_REQ_GET_QUEUE_NUM, num);
}

int vuf_get_max_mem_slots(struct vuf *vuf, uint64_t *slots)
{
	return get_u64(vuf, VU_REQ_GET_MAX_MEM_SLOTS, slots);
}

int vuf_get_config(struct vuf *vuf, uint32_t offset, void *buf, uint32_t size)
{
	struct vu_config_desc c = { .offset = offset, .size = size };
	struct vu_msg r;
	int ret;

	if (size > VU_MAX_CONFIG_SIZE || (size && !buf))
		return -EINVAL;
	ret = vuf_request(vuf, VU_REQ_GET_CONFIG, &c, VU_CONFIG_HDR_SIZE + size, NULL, 0, false, &r);
	if (ret)
		return ret;
	vu_msg_close_fds(&r);
	if (r.hdr.size == 0)
		return -EIO;
	if (r.hdr.size != VU_CONFIG_HDR_SIZE + size || r.payload.config.size != size ||
	    r.payload.config.offset != offset) {
		vu_err("vuf: GET_CONFIG reply: payload %u, offset %u, size %u; asked offset %u, size %u",
		       r.hdr.size, r.payload.config.offset, r.payload.config.size, offset, size);
		return -EPROTO;
	}
	memcpy(buf, r.payload.config.region, size);
	return 0;
}

int vuf_set_config(struct vuf *vuf, uint32_t offset, const void *buf, uint32_t size,
		   uint32_t flags)
{
	struct vu_config_desc c = { .offset = offset, .size = size, .flags = flags };

	if (size > VU_MAX_CONFIG_SIZE || (size && !buf))
		return -EINVAL;
	if (size)
		memcpy(c.region, buf, size);
	return vuf_request(vuf, VU_REQ_SET_CONFIG, &c, VU_CONFIG_HDR_SIZE + size, NULL, 0,
			   use_ack(vuf), NULL);
}

int vuf_set_status(struct vuf *vuf, uint8_t status)
{
	int ret = set_u64(vuf, VU_REQ_SET_STATUS, status);

	if (ret == 0) {
		vuf->status = status;
		vuf->status_set = true;
	}
	return ret;
}

int vuf_get_status(struct vuf *vuf, uint8_t *status)
{
	uint64_t v;
	int ret = get_u64(vuf, VU_REQ_GET_STATUS, &v);

	if (ret == 0)
		*status = (uint8_t)v;
	return ret;
}

int vuf_reset_device(struct vuf *vuf)
{
	int ret = set_none(vuf, VU_REQ_RESET_DEVICE);

	if (ret == 0)
		vuf->status_set = false;
	return ret;
}

int vuf_set_log_base(struct vuf *vuf, int fd, uint64_t size, uint64_t offset)
{
	struct vu_log_desc l = { .mmap_size = size, .mmap_offset = offset };

	return vuf_request(vuf, VU_REQ_SET_LOG_BASE, &l, sizeof(l), &fd, fd >= 0 ? 1 : 0,
			   use_ack(vuf), NULL);
}

int vuf_set_vring_num(struct vuf *vuf, unsigned int index, unsigned int num)
{
	return set_state(vuf, VU_REQ_SET_VRING_NUM, index, num);
}

int vuf_set_vring_addr(struct vuf *vuf, const struct vhost_vring_addr *addr)
{
	return vuf_request(vuf, VU_REQ_SET_VRING_ADDR, addr, sizeof(*addr), NULL, 0, use_ack(vuf),
			   NULL);
}

int vuf_set_vring_base(struct vuf *vuf, unsigned int index, uint32_t num)
{
	return set_state(vuf, VU_REQ_SET_VRING_BASE, index, num);
}

int vuf_get_vring_base(struct vuf *vuf, unsigned int index, uint32_t *num)
{
	struct vhost_vring_state s = { .index = index };
	struct vu_msg r;
	int ret = vuf_request(vuf, VU_REQ_GET_VRING_BASE, &s, sizeof(s), NULL, 0, false, &r);

	if (ret)
		return ret;
	vu_msg_close_fds(&r);
	if (r.hdr.size != sizeof(s) || r.payload.state.index != index) {
		vu_err("vuf: GET_VRING_BASE reply: %u bytes, index %u; asked index %u",
		       r.hdr.size, r.payload.state.index, index);
		return -EPROTO;
	}
	if (index < VUF_MAX_QUEUES && vuf->vqs[index]) {
		vuf->vqs[index]->saved_base = r.payload.state.num;
		vuf->vqs[index]->saved_base_valid = true;
	}
	*num = r.payload.state.num;
	return 0;
}

static int set_vring_fd(struct vuf *vuf, uint32_t request, unsigned int index, int fd)
{
	uint64_t v = index;

	if (index > VU_VRING_IDX_MASK)
		return -EINVAL;
	if (fd < 0)
		v |= VU_VRING_NOFD_MASK;
	return vuf_request(vuf, request, &v, sizeof(v), &fd, fd >= 0 ? 1 : 0, use_ack(vuf), NULL);
}

int vuf_set_vring_kick(struct vuf *vuf, unsigned int index, int fd)
{
	return set_vring_fd(vuf, VU_REQ_SET_VRING_KICK, index, fd);
}

int vuf_set_vring_call(struct vuf *vuf, unsigned int index, int fd)
{
	return set_vring_fd(vuf, VU_REQ_SET_VRING_CALL, index, fd);
}

int vuf_set_vring_err(struct vuf *vuf, unsigned int index, int fd)
{
	return set_vring_fd(vuf, VU_REQ_SET_VRING_ERR, index, fd);
}

int vuf_set_vring_enable(struct vuf *vuf, unsigned int index, bool enable)
{
	return set_state(vuf, VU_REQ_SET_VRING_ENABLE, index, enable ? 1 : 0);
}

int vuf_get_inflight(struct vuf *vuf, uint16_t num_queues, uint16_t queue_size, int *fd,
		     struct vu_inflight_desc *desc)
{
	struct vu_inflight_desc d = { .num_queues = num_queues, .queue_size = queue_size };
	const size_t min_size = offsetof(struct vu_inflight_desc, queue_size) + sizeof(uint16_t);
	struct vu_msg r;
	void *map;
	int ret, mfd;

	ret = vuf_request(vuf, VU_REQ_GET_INFLIGHT_FD, &d, sizeof(d), NULL, 0, false, &r);
	if (ret)
		return ret;
	mfd = vu_msg_take_fd(&r, 0);
	vu_msg_close_fds(&r);
	if (r.hdr.size < min_size || mfd < 0 || r.payload.inflight.mmap_size == 0 ||
	    r.payload.inflight.mmap_size > SIZE_MAX) {
		vu_err("vuf: GET_INFLIGHT_FD reply: %u bytes, %s fd, mmap_size %llu",
		       r.hdr.size, mfd < 0 ? "no" : "an",
		       (unsigned long long)r.payload.inflight.mmap_size);
		vu_close_fd(&mfd);
		return -EPROTO;
	}
	d = r.payload.inflight;
	map = mmap(NULL, (size_t)d.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd,
		   (off_t)d.mmap_offset);
	if (map == MAP_FAILED) {
		ret = -errno;
		vu_err("vuf: cannot map the inflight area (%llu bytes at %llu): %s",
		       (unsigned long long)d.mmap_size, (unsigned long long)d.mmap_offset,
		       strerror(-ret));
		close(mfd);
		return ret;
	}
	inflight_release(vuf);
	vuf->inflight_fd = mfd;
	vuf->inflight_map = map;
	vuf->inflight_len = (size_t)d.mmap_size;
	vuf->inflight_desc = d;
	if (fd)
		*fd = mfd;
	if (desc)
		*desc = d;
	return 0;
}

void *vuf_inflight_area(struct vuf *vuf, size_t *size)
{
	if (size)
		*size = vuf->inflight_len;
	return vuf->inflight_map;
}

int vuf_set_inflight(struct vuf *vuf, int fd, const struct vu_inflight_desc *desc)
{
	bool kept = fd < 0 && !desc;
	int ret;

	if (kept) {
		if (vuf->inflight_fd < 0)
			return -ENOENT;
		fd = vuf->inflight_fd;
		desc = &vuf->inflight_desc;
	} else if (fd < 0 || !desc) {
		return -EINVAL;
	}
	ret = vuf_request(vuf, VU_REQ_SET_INFLIGHT_FD, desc, sizeof(*desc), &fd, 1, use_ack(vuf),
			  NULL);
	if (ret == 0 && kept)
		vuf->inflight_sent = true;
	return ret;
}

/* ------------------------------------------------------------------ */
/* Guest memory                                                       */
/* ------------------------------------------------------------------ */

static void region_desc(const struct vuf_region *r, struct vu_mem_region_desc *d)
{
	d->guest_addr = r->gpa;
	d->size = r->size;
	d->user_addr = r->gpa + VUF_UVA_OFFSET;
	d->mmap_offset = r->mmap_offset;
}

static struct vuf_region *find_region(const struct vuf *vuf, uint64_t gpa)
{
	for (unsigned int i = 0; i < vuf->nregions; i++)
		if (vuf->regions[i].gpa == gpa)
			return &vuf->regions[i];
	return NULL;
}

int vuf_mem_add(struct vuf *vuf, uint64_t gpa, size_t size, unsigned int flags)
{
	const unsigned int known = VUF_MEM_HUGETLB | VUF_MEM_OFFSET | VUF_MEM_POPULATE;
	uint64_t page = (flags & VUF_MEM_HUGETLB) ? VUF_HUGE_PAGE_SIZE : VUF_PAGE_SIZE;
	uint64_t offset = (flags & VUF_MEM_OFFSET) ? page : 0;
	struct vuf_region *regions, *r;
	void *map;
	int fd, ret;

	if (size == 0 || (flags & ~known) || (gpa & (VUF_PAGE_SIZE - 1)))
		return -EINVAL;
	if (size > SIZE_MAX - page)
		return -EOVERFLOW;
	size = (size_t)VU_ALIGN_UP((uint64_t)size, page);
	if (gpa > UINT64_MAX - VUF_UVA_OFFSET - size)
		return -EOVERFLOW;
	for (unsigned int i = 0; i < vuf->nregions; i++) {
		r = &vuf->regions[i];
		if (gpa < r->gpa + r->size && r->gpa < gpa + size)
			return -EEXIST;
	}
	regions = realloc(vuf->regions, (vuf->nregions + 1) * sizeof(*regions));
	if (!regions)
		return -ENOMEM;
	vuf->regions = regions;

	fd = memfd_create("vuf-guest", MFD_CLOEXEC | ((flags & VUF_MEM_HUGETLB) ? MFD_HUGETLB : 0));
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)(offset + size)) < 0) {
		ret = -errno;
		goto err_close;
	}
	map = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_SHARED | ((flags & VUF_MEM_POPULATE) ? MAP_POPULATE : 0), fd, (off_t)offset);
	if (map == MAP_FAILED) {
		ret = -errno;
		goto err_close;
	}
	r = &vuf->regions[vuf->nregions++];
	memset(r, 0, sizeof(*r));
	r->gpa = gpa;
	r->size = size;
	r->mmap_offset = offset;
	r->host = map;
	r->fd = fd;
	return 0;

err_close:
	close(fd);
	return ret;
}

/* SET_MEM_TABLE with every region, or only the shared ones. */
static int send_mem_table(struct vuf *vuf, bool only_shared)
{
	struct vu_mem_table_desc t;
	int fds[VU_MEM_TABLE_MAX_REGIONS];
	unsigned int n = 0;
	int ret;

	memset(&t, 0, sizeof(t));
	for (unsigned int i = 0; i < vuf->nregions; i++) {
		const struct vuf_region *r = &vuf->regions[i];

		if (only_shared && !r->shared)
			continue;
		if (n == VU_MEM_TABLE_MAX_REGIONS)
			return -E2BIG;
		region_desc(r, &t.regions[n]);
		fds[n++] = r->fd;
	}
	t.nregions = n;
	ret = vuf_request(vuf, VU_REQ_SET_MEM_TABLE, &t,
			  (uint32_t)(offsetof(struct vu_mem_table_desc, regions) +
				     n * sizeof(t.regions[0])),
			  fds, n, use_ack(vuf), NULL);
	if (ret == 0 && !only_shared)
		for (unsigned int i = 0; i < vuf->nregions; i++)
			vuf->regions[i].shared = true;
	return ret;
}

int vuf_mem_commit(struct vuf *vuf)
{
	int ret = send_mem_table(vuf, false);

	if (ret == 0)
		vuf->mem_hot_added = false;
	return ret;
}

static int send_add_mem_reg(struct vuf *vuf, struct vuf_region *r)
{
	struct vu_single_mem_region m = { 0 };
	int ret;

	region_desc(r, &m.region);
	ret = vuf_request(vuf, VU_REQ_ADD_MEM_REG, &m, sizeof(m), &r->fd, 1, use_ack(vuf), NULL);
	if (ret == 0)
		r->shared = true;
	return ret;
}

int vuf_mem_hot_add(struct vuf *vuf, uint64_t gpa, size_t size, unsigned int flags)
{
	struct vuf_region *r;
	int ret;

	if (!(vuf->protocol_features & (1ull << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS)))
		return -EOPNOTSUPP;
	r = find_region(vuf, gpa);
	if (!r) {
		ret = vuf_mem_add(vuf, gpa, size, flags);
		if (ret)
			return ret;
		r = find_region(vuf, gpa);
	}
	ret = send_add_mem_reg(vuf, r);
	if (ret == 0)
		vuf->mem_hot_added = true;
	return ret;
}

int vuf_mem_hot_remove(struct vuf *vuf, uint64_t gpa)
{
	struct vu_single_mem_region m = { 0 };
	struct vuf_region *r;
	int ret;

	if (!(vuf->protocol_features & (1ull << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS)))
		return -EOPNOTSUPP;
	r = find_region(vuf, gpa);
	if (!r)
		return -ENOENT;
	region_desc(r, &m.region);
	ret = vuf_request(vuf, VU_REQ_REM_MEM_REG, &m, sizeof(m), NULL, 0, use_ack(vuf), NULL);
	if (ret == 0) {
		r->shared = false;
		vuf->mem_hot_added = true;
	}
	return ret;
}

unsigned int vuf_mem_nregions(const struct vuf *vuf)
{
	return vuf->nregions;
}

int vuf_mem_region(const struct vuf *vuf, unsigned int i, struct vu_mem_region_desc *desc,
		   int *fd)
{
	if (i >= vuf->nregions)
		return -ENOENT;
	if (desc)
		region_desc(&vuf->regions[i], desc);
	if (fd)
		*fd = vuf->regions[i].fd;
	return 0;
}

static const struct vuf_region *region_of(const struct vuf *vuf, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		len = 1;
	for (unsigned int i = 0; i < vuf->nregions; i++) {
		const struct vuf_region *r = &vuf->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
			return r;
	}
	return NULL;
}

void *vuf_gpa_to_ptr(const struct vuf *vuf, uint64_t gpa, uint64_t len)
{
	const struct vuf_region *r = region_of(vuf, gpa, len);

	return r ? r->host + (gpa - r->gpa) : NULL;
}

int vuf_ptr_to_gpa(const struct vuf *vuf, const void *p, uint64_t *gpa)
{
	uintptr_t a = (uintptr_t)p;

	for (unsigned int i = 0; i < vuf->nregions; i++) {
		const struct vuf_region *r = &vuf->regions[i];
		uintptr_t base = (uintptr_t)r->host;

		if (a >= base && a - base < r->size) {
			*gpa = r->gpa + (a - base);
			return 0;
		}
	}
	return -EFAULT;
}

int vuf_gpa_to_uva(const struct vuf *vuf, uint64_t gpa, uint64_t *uva)
{
	if (!region_of(vuf, gpa, 1))
		return -EFAULT;
	*uva = gpa + VUF_UVA_OFFSET;
	return 0;
}

void *vuf_alloc(struct vuf *vuf, size_t size, size_t align, uint64_t *gpa)
{
	if (align == 0)
		align = 8;
	if (size == 0 || (align & (align - 1)) || align > VUF_PAGE_SIZE) {
		errno = EINVAL;
		return NULL;
	}
	for (unsigned int i = 0; i < vuf->nregions; i++) {
		struct vuf_region *r = &vuf->regions[i];
		uint64_t off = VU_ALIGN_UP((uint64_t)r->bump, (uint64_t)align);

		if (off <= r->size && size <= r->size - off) {
			r->bump = (size_t)(off + size);
			memset(r->host + off, 0, size);
			*gpa = r->gpa + off;
			return r->host + off;
		}
	}
	errno = ENOMEM;
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Virtqueues: setup                                                  */
/* ------------------------------------------------------------------ */

static void vq_init_state(struct vuf_vq *vq)
{
	for (unsigned int i = 0; i < vq->size; i++) {
		vq->state[i].ndescs = 0;
		vq->state[i].link = (uint16_t)(i + 1);
		if (vq->next)
			vq->next[i] = (uint16_t)(i + 1);
	}
	vq->num_free = vq->size;
	vq->free_head = 0;
	vq->avail_idx = 0;
	vq->avail_pub = 0;
	vq->last_used = 0;
	vq->avail_wrap = true;
	vq->used_wrap = true;
	vq->inflight = 0;
	vq->num_added = 0;
}

struct vuf_vq *vuf_vq_create(struct vuf *vuf, const struct vuf_vq_opts *opts)
{
	unsigned int size = opts ? opts->size : 0;
	struct vuf_vq *vq;
	int err = ENOMEM;

	if (!opts || opts->index >= VUF_MAX_QUEUES || size == 0 || size > VUF_VQ_MAX_SIZE ||
	    (!opts->packed && (size & (size - 1))) || opts->indirect_max > 4096) {
		errno = EINVAL;
		return NULL;
	}
	if (vuf->vqs[opts->index]) {
		errno = EEXIST;
		return NULL;
	}
	/* RING_PACKED is a device feature: every queue has the negotiated layout. */
	if (opts->packed != !!(vuf->features & (1ull << VIRTIO_F_RING_PACKED))) {
		errno = opts->packed ? EOPNOTSUPP : EINVAL;
		return NULL;
	}
	vq = calloc(1, sizeof(*vq));
	if (!vq)
		goto err;
	vq->vuf = vuf;
	vq->index = opts->index;
	vq->size = (uint16_t)size;
	vq->packed = opts->packed;
	vq->event_idx = vuf->features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	vq->kick_fd = -1;
	vq->call_fd = -1;
	vq->wait_fallback_ms = 100;
	vq->state = calloc(size, sizeof(*vq->state));
	if (!vq->state)
		goto err_free;
	if (!vq->packed) {
		vq->next = calloc(size, sizeof(*vq->next));
		if (!vq->next)
			goto err_free;
		vq->gdesc = vuf_alloc(vuf, size * sizeof(struct vring_desc), 64, &vq->desc_gpa);
		/* flags, idx, ring[size], used_event */
		vq->gavail = vuf_alloc(vuf, (3 + size) * sizeof(uint16_t), 64, &vq->driver_gpa);
		/* flags, idx, ring[size], avail_event */
		vq->gused = vuf_alloc(vuf, 3 * sizeof(uint16_t) + size * sizeof(struct vring_used_elem),
				      64, &vq->device_gpa);
		if (!vq->gdesc || !vq->gavail || !vq->gused)
			goto err_free;
		vq->gused_event = (uint16_t *)&vq->gavail->ring[size];
		vq->gavail_event = (uint16_t *)&vq->gused->ring[size];
	} else {
		vq->gpdesc = vuf_alloc(vuf, size * sizeof(struct vring_packed_desc), 64,
				       &vq->desc_gpa);
		vq->gdriver = vuf_alloc(vuf, sizeof(*vq->gdriver), 64, &vq->driver_gpa);
		vq->gdevice = vuf_alloc(vuf, sizeof(*vq->gdevice), 64, &vq->device_gpa);
		if (!vq->gpdesc || !vq->gdriver || !vq->gdevice)
			goto err_free;
	}
	if (vuf->features & (1ull << VIRTIO_RING_F_INDIRECT_DESC)) {
		vq->indirect_max = (uint16_t)(opts->indirect_max ? opts->indirect_max
								: VUF_INDIRECT_MAX_DEFAULT);
		vq->gindirect = vuf_alloc(vuf, (size_t)size * vq->indirect_max * 16, 64,
					  &vq->indirect_gpa);
		if (!vq->gindirect)
			goto err_free;
	}
	vq->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	vq->call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (vq->kick_fd < 0 || vq->call_fd < 0) {
		err = errno;
		goto err_free;
	}
	vq_init_state(vq);
	/* Calls enabled, as a driver starts. */
	vq->cb_enabled = false;
	vuf_vq_enable_cb(vq);
	vuf->vqs[vq->index] = vq;
	return vq;

err_free:
	if (vq) {
		vu_close_fd(&vq->kick_fd);
		vu_close_fd(&vq->call_fd);
		free(vq->state);
		free(vq->next);
		free(vq);
	}
err:
	errno = err;
	return NULL;
}

void vuf_vq_destroy(struct vuf_vq *vq)
{
	if (!vq)
		return;
	if (vq->vuf->vqs[vq->index] == vq)
		vq->vuf->vqs[vq->index] = NULL;
	vu_close_fd(&vq->kick_fd);
	vu_close_fd(&vq->call_fd);
	free(vq->state);
	free(vq->next);
	free(vq);
}

static bool packed_desc_is_used(uint16_t flags, bool wrap)
{
	bool avail = flags & (1u << VRING_PACKED_DESC_F_AVAIL);
	bool used = flags & (1u << VRING_PACKED_DESC_F_USED);

	return avail == used && used == wrap;
}

uint32_t vuf_vq_base(struct vuf_vq *vq)
{
	uint16_t pos = vq->last_used;
	bool wrap = vq->used_wrap;
	uint32_t v;

	if (vq->saved_base_valid)
		return vq->saved_base;
	if (!vq->packed)
		return le16toh(vu_load_acquire16(&vq->gused->idx));
	/* Walk the used descriptors the device wrote and we did not reap. */
	for (unsigned int budget = vq->inflight; budget; budget--) {
		struct vring_packed_desc *d = &vq->gpdesc[pos];
		uint16_t id;

		if (!packed_desc_is_used(le16toh(vu_load_acquire16(&d->flags)), wrap))
			break;
		id = le16toh(vu_load_relaxed16(&d->id));
		if (id >= vq->size || !vq->state[id].ndescs)
			break;
		pos = (uint16_t)(pos + vq->state[id].ndescs);
		if (pos >= vq->size) {
			pos = (uint16_t)(pos - vq->size);
			wrap = !wrap;
		}
	}
	v = pos | ((uint32_t)wrap << 15);
	return v | (v << 16);
}

/* The start sequence of a queue, as QEMU's vhost_virtqueue_start sends it. */
static int vq_send_start(struct vuf_vq *vq)
{
	struct vuf *vuf = vq->vuf;
	struct vhost_vring_addr addr = {
		.index = vq->index,
		.desc_user_addr = vq->desc_gpa + VUF_UVA_OFFSET,
		.avail_user_addr = vq->driver_gpa + VUF_UVA_OFFSET,
		.used_user_addr = vq->device_gpa + VUF_UVA_OFFSET,
		.log_guest_addr = vq->device_gpa,
	};
	int ret;

	ret = vuf_set_vring_num(vuf, vq->index, vq->size);
	if (!ret)
		ret = vuf_set_vring_base(vuf, vq->index, vuf_vq_base(vq));
	if (!ret)
		ret = vuf_set_vring_addr(vuf, &addr);
	if (!ret)
		ret = vuf_set_vring_kick(vuf, vq->index, vq->kick_fd);
	if (!ret)
		ret = vuf_set_vring_call(vuf, vq->index, vq->call_fd);
	if (!ret && protocol_features_acked(vuf))
		ret = vuf_set_vring_enable(vuf, vq->index, true);
	if (ret)
		return ret;
	vq->started = true;
	vq->saved_base_valid = false;
	return 0;
}

int vuf_vq_start(struct vuf_vq *vq)
{
	return vq_send_start(vq);
}

struct vuf_vq *vuf_vq_setup(struct vuf *vuf, unsigned int index, unsigned int size, bool packed)
{
	struct vuf_vq_opts opts = { .index = index, .size = size, .packed = packed };
	struct vuf_vq *vq = vuf_vq_create(vuf, &opts);
	int ret;

	if (!vq)
		return NULL;
	ret = vuf_vq_start(vq);
	if (ret) {
		vuf_vq_destroy(vq);
		errno = -ret;
		return NULL;
	}
	return vq;
}

/* ------------------------------------------------------------------ */
/* Virtqueues: data path                                              */
/* ------------------------------------------------------------------ */

static void __attribute__((cold, format(printf, 2, 3)))
vq_set_broken(struct vuf_vq *vq, const char *fmt, ...)
{
	va_list ap;

	if (vq->broken)
		return;
	va_start(ap, fmt);
	vsnprintf(vq->error, sizeof(vq->error), fmt, ap);
	va_end(ap);
	vq->broken = true;
	vu_err("vuf: queue %u: %s", vq->index, vq->error);
}

static uint16_t packed_avail_bits(bool wrap)
{
	return wrap ? (uint16_t)(1u << VRING_PACKED_DESC_F_AVAIL)
		    : (uint16_t)(1u << VRING_PACKED_DESC_F_USED);
}

static uint32_t chain_wlen(const struct vuf_seg *segs, unsigned int nsegs)
{
	uint64_t w = 0;

	for (unsigned int i = 0; i < nsegs; i++)
		if (segs[i].writable)
			w += segs[i].len;
	return w >= VUF_WLEN_RAW ? VUF_WLEN_RAW - 1 : (uint32_t)w;
}

/* Fill an indirect table; the caller points a ring descriptor at it. */
static void fill_indirect(struct vuf_vq *vq, uint16_t slot, const struct vuf_seg *segs,
			  unsigned int nsegs, bool packed, uint64_t *gpa)
{
	size_t off = (size_t)slot * vq->indirect_max * 16;

	if (!packed) {
		struct vring_desc *gt = (struct vring_desc *)(vq->gindirect + off);

		for (unsigned int i = 0; i < nsegs; i++) {
			uint16_t f = (segs[i].writable ? VRING_DESC_F_WRITE : 0) |
				     (i + 1 < nsegs ? VRING_DESC_F_NEXT : 0);

			gt[i].addr = htole64(segs[i].gpa);
			gt[i].len = htole32(segs[i].len);
			gt[i].flags = htole16(f);
			gt[i].next = htole16((uint16_t)(i + 1));
		}
	} else {
		struct vring_packed_desc *gt = (struct vring_packed_desc *)(vq->gindirect + off);

		for (unsigned int i = 0; i < nsegs; i++) {
			gt[i].addr = htole64(segs[i].gpa);
			gt[i].len = htole32(segs[i].len);
			gt[i].id = 0;
			gt[i].flags = htole16(segs[i].writable ? VRING_DESC_F_WRITE : 0);
		}
	}
	*gpa = vq->indirect_gpa + off;
}

/*
 * VUF_POST_BATCH chains on a split ring are published at the kick, or
 * once this many wait: one index store per batch, and the device can
 * start on a long batch before it is all posted.  (vu-blkgen at QD 32
 * against vhost-blk null: per chain 3.7, per kick 5.1, every 8 5.8 M
 * IOPS with the CPUs on different L3s; 14.2, 13.0 and 14.7 on one.)
 */
#define VUF_BATCH_PUBLISH 8

/* Descriptors and ring entries before the index (device: acquire of avail->idx). */
static void split_publish(struct vuf_vq *vq)
{
	if (vq->avail_pub != vq->avail_idx) {
		vu_store_release16(&vq->gavail->idx, htole16(vq->avail_idx));
		vq->avail_pub = vq->avail_idx;
	}
}

static int split_post(struct vuf_vq *vq, const struct vuf_seg *segs, unsigned int nsegs,
		      uint64_t cookie, bool indirect, bool batch)
{
	unsigned int n = indirect ? 1 : nsegs;
	uint16_t head = vq->free_head, idx = head, last = head;
	struct vuf_chain_state *st;

	if (vu_unlikely(n > vq->num_free))
		return -ENOSPC;
	if (indirect) {
		struct vring_desc *d = &vq->gdesc[head];
		uint64_t table;

		fill_indirect(vq, head, segs, nsegs, false, &table);
		d->addr = htole64(table);
		d->len = htole32(nsegs * 16);
		d->flags = htole16(VRING_DESC_F_INDIRECT);
		d->next = htole16(vq->next[head]);
		idx = vq->next[head];
	} else {
		for (unsigned int i = 0; i < nsegs; i++) {
			struct vring_desc *d = &vq->gdesc[idx];
			uint16_t f = (segs[i].writable ? VRING_DESC_F_WRITE : 0) |
				     (i + 1 < nsegs ? VRING_DESC_F_NEXT : 0);

			d->addr = htole64(segs[i].gpa);
			d->len = htole32(segs[i].len);
			d->flags = htole16(f);
			d->next = htole16(vq->next[idx]);
			last = idx;
			idx = vq->next[idx];
		}
	}
	vq->free_head = idx;
	vq->num_free = (uint16_t)(vq->num_free - n);
	st = &vq->state[head];
	st->cookie = cookie;
	st->wlen = chain_wlen(segs, nsegs);
	st->ndescs = (uint16_t)n;
	st->link = last;

	vq->gavail->ring[vq->avail_idx & (vq->size - 1)] = htole16(head);
	vq->avail_idx++;
	if (!batch || (uint16_t)(vq->avail_idx - vq->avail_pub) >= VUF_BATCH_PUBLISH)
		split_publish(vq);
	vq->num_added++;
	return 0;
}

static int packed_post(struct vuf_vq *vq, const struct vuf_seg *segs, unsigned int nsegs,
		       uint64_t cookie, bool indirect)
{
	unsigned int n = indirect ? 1 : nsegs;
	uint16_t head = vq->avail_idx, idx = head, id, head_flags = 0;
	bool wrap = vq->avail_wrap;
	struct vuf_chain_state *st;

	if (vu_unlikely(n > vq->num_free))
		return -ENOSPC;
	/* Free ids >= free slots >= 1: the id list cannot be empty here. */
	id = vq->free_head;
	vq->free_head = vq->state[id].link;
	if (indirect) {
		struct vring_packed_desc *d = &vq->gpdesc[head];
		uint64_t table;

		fill_indirect(vq, id, segs, nsegs, true, &table);
		d->addr = htole64(table);
		d->len = htole32(nsegs * 16);
		d->id = htole16(id);
		head_flags = VRING_DESC_F_INDIRECT | packed_avail_bits(wrap);
		if (++idx == vq->size) {
			idx = 0;
			wrap = !wrap;
		}
	} else {
		for (unsigned int i = 0; i < nsegs; i++) {
			struct vring_packed_desc *d = &vq->gpdesc[idx];
			uint16_t f = (segs[i].writable ? VRING_DESC_F_WRITE : 0) |
				     (i + 1 < nsegs ? VRING_DESC_F_NEXT : 0) | packed_avail_bits(wrap);

			d->addr = htole64(segs[i].gpa);
			d->len = htole32(segs[i].len);
			d->id = htole16(id);
			if (i == 0)
				head_flags = f;
			else
				vu_store_relaxed16(&d->flags, htole16(f));
			if (++idx == vq->size) {
				idx = 0;
				wrap = !wrap;
			}
		}
	}
	vq->avail_idx = idx;
	vq->avail_wrap = wrap;
	vq->num_free = (uint16_t)(vq->num_free - n);
	st = &vq->state[id];
	st->cookie = cookie;
	st->wlen = chain_wlen(segs, nsegs);
	st->ndescs = (uint16_t)n;
	/* The whole chain before its head flags (device: acquire of the head flags). */
	vu_store_release16(&vq->gpdesc[head].flags, htole16(head_flags));
	vq->num_added += n;
	return 0;
}

int vuf_vq_post_flags(struct vuf_vq *vq, const struct vuf_seg *segs, unsigned int nsegs,
		      uint64_t cookie, unsigned int flags)
{
	bool indirect;
	int ret;

	if (vu_unlikely(vq->broken))
		return -EIO;
	if (vu_unlikely(nsegs == 0 || !segs))
		return -EINVAL;
	indirect = (flags & VUF_POST_INDIRECT) && nsegs <= vq->indirect_max;
	if (vu_unlikely(!indirect && nsegs > vq->size))
		return -EINVAL;
	ret = vq->packed ? packed_post(vq, segs, nsegs, cookie, indirect)
			 : split_post(vq, segs, nsegs, cookie, indirect, flags & VUF_POST_BATCH);
	if (vu_likely(ret == 0)) {
		vq->inflight++;
		vq->stats.posted++;
	}
	return ret;
}

int vuf_vq_kick_force(struct vuf_vq *vq)
{
	uint64_t one = 1;

	vq->num_added = 0;
	if (vq->kick_fd < 0)
		return -EBADF;
	while (write(vq->kick_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, so the device has a kick pending. */
		if (errno == EAGAIN)
			break;
		if (errno != EINTR)
			return -errno;
	}
	vq->stats.kicks++;
	return 0;
}

static bool split_need_kick(struct vuf_vq *vq)
{
	uint16_t new_idx = vq->avail_idx;
	uint16_t old_idx = (uint16_t)(new_idx - vq->num_added);

	if (!vq->event_idx)
		return !(le16toh(vu_load_relaxed16(&vq->gused->flags)) & VRING_USED_F_NO_NOTIFY);
	if (vq->num_added >= 0xffff)
		return true;
	return vring_need_event(le16toh(vu_load_relaxed16(vq->gavail_event)), new_idx, old_idx);
}

static bool packed_need_kick(struct vuf_vq *vq)
{
	uint32_t raw = __atomic_load_n((uint32_t *)vq->gdevice, __ATOMIC_RELAXED);
	struct vring_packed_desc_event ev;
	uint16_t flags, off;
	uint32_t ring2 = 2u * vq->size, pos_new, pos_ev;

	memcpy(&ev, &raw, sizeof(ev));
	flags = le16toh(ev.flags);
	if (flags == VRING_PACKED_EVENT_FLAG_DISABLE)
		return false;
	if (flags != VRING_PACKED_EVENT_FLAG_DESC || !vq->event_idx)
		return true;
	if (vq->num_added >= vq->size)
		return true;
	/*
	 * Positions modulo twice the ring size: slot + size when the wrap
	 * counter is 0.  Kick if the event slot is among the ones made
	 * available since the last kick, [new - num_added, new).
	 */
	off = le16toh(ev.off_wrap);
	if ((off & 0x7fff) >= vq->size)
		return true;
	pos_new = vq->avail_idx + (vq->avail_wrap ? 0 : vq->size);
	pos_ev = (off & 0x7fff) + ((off >> VRING_PACKED_EVENT_F_WRAP_CTR) ? 0 : vq->size);
	return (pos_new + ring2 - pos_ev - 1) % ring2 < vq->num_added;
}

int vuf_vq_kick(struct vuf_vq *vq)
{
	bool need;
	int ret;

	if (!vq->num_added)
		return 0;
	if (!vq->packed)
		split_publish(vq);
	/* Publish the ring before reading the device's suppression state (C.23). */
	vu_smp_mb();
	need = vq->packed ? packed_need_kick(vq) : split_need_kick(vq);
	if (!need) {
		vq->num_added = 0;
		vq->stats.kicks_suppressed++;
		return 0;
	}
	ret = vuf_vq_kick_force(vq);
	return ret ? ret : 1;
}

static int split_reap(struct vuf_vq *vq, struct vuf_completion *out, unsigned int max)
{
	uint16_t used_idx = le16toh(vu_load_acquire16(&vq->gused->idx));
	uint16_t n = (uint16_t)(used_idx - vq->last_used);
	unsigned int k;

	if (!n)
		return 0;
	if (vu_unlikely(n > vq->inflight)) {
		vq_set_broken(vq, "device moved used->idx from %u to %u with %u chains in flight",
			      vq->last_used, used_idx, vq->inflight);
		return -EIO;
	}
	if (n > max)
		n = (uint16_t)max;
	for (k = 0; k < n; k++) {
		struct vring_used_elem *e = &vq->gused->ring[vq->last_used & (vq->size - 1)];
		uint32_t id = le32toh(vuf_load_relaxed32(&e->id));
		uint32_t len = le32toh(vuf_load_relaxed32(&e->len));
		struct vuf_chain_state *st;

		if (vu_unlikely(id >= vq->size || !vq->state[id].ndescs)) {
			vq_set_broken(vq, "used ring entry %u has id %u, %s", vq->last_used, id,
				      id >= vq->size ? "beyond the ring" : "not in flight");
			break;
		}
		st = &vq->state[id];
		out[k].cookie = st->cookie;
		out[k].len = len;
		out[k].id = (uint16_t)id;
		if (st->wlen != VUF_WLEN_RAW) {
			if (vu_unlikely(len > st->wlen))
				vq->stats.bad_len++;
			vq->next[st->link] = vq->free_head;
			vq->free_head = (uint16_t)id;
			vq->num_free = (uint16_t)(vq->num_free + st->ndescs);
		}
		st->ndescs = 0;
		vq->inflight--;
		vq->last_used++;
	}
	if (vq->cb_enabled && vq->event_idx)
		vu_store_relaxed16(vq->gused_event, htole16(vq->last_used));
	vq->stats.completed += k;
	return k ? (int)k : -EIO;
}

static int packed_reap(struct vuf_vq *vq, struct vuf_completion *out, unsigned int max)
{
	unsigned int k;

	for (k = 0; k < max; k++) {
		struct vring_packed_desc *d = &vq->gpdesc[vq->last_used];
		uint16_t flags = le16toh(vu_load_acquire16(&d->flags));
		struct vuf_chain_state *st;
		uint16_t id;

		if (!packed_desc_is_used(flags, vq->used_wrap))
			break;
		id = le16toh(vu_load_relaxed16(&d->id));
		if (vu_unlikely(id >= vq->size || !vq->state[id].ndescs)) {
			vq_set_broken(vq, "used descriptor at slot %u has id %u, %s", vq->last_used,
				      id, id >= vq->size ? "beyond the ring" : "not in flight");
			if (k == 0)
				return -EIO;
			break;
		}
		st = &vq->state[id];
		out[k].cookie = st->cookie;
		out[k].len = le32toh(vuf_load_relaxed32(&d->len));
		out[k].id = id;
		if (st->wlen != VUF_WLEN_RAW && vu_unlikely(out[k].len > st->wlen))
			vq->stats.bad_len++;
		vq->last_used = (uint16_t)(vq->last_used + st->ndescs);
		if (vq->last_used >= vq->size) {
			vq->last_used = (uint16_t)(vq->last_used - vq->size);
			vq->used_wrap = !vq->used_wrap;
		}
		vq->num_free = (uint16_t)(vq->num_free + st->ndescs);
		if (st->wlen != VUF_WLEN_RAW) {
			st->link = vq->free_head;
			vq->free_head = id;
		}
		st->ndescs = 0;
		vq->inflight--;
	}
	if (k && vq->cb_enabled && vq->event_idx)
		vu_store_relaxed16(&vq->gdriver->off_wrap,
				   htole16(vq->last_used | (uint16_t)(vq->used_wrap << 15)));
	vq->stats.completed += k;
	return (int)k;
}

int vuf_vq_reap(struct vuf_vq *vq, struct vuf_completion *out, unsigned int max)
{
	if (vu_unlikely(vq->broken))
		return -EIO;
	if (vu_unlikely(!max))
		return 0;
	return vq->packed ? packed_reap(vq, out, max) : split_reap(vq, out, max);
}

bool vuf_vq_pending(struct vuf_vq *vq)
{
	if (vq->packed)
		return packed_desc_is_used(le16toh(vu_load_acquire16(&vq->gpdesc[vq->last_used].flags)),
					   vq->used_wrap);
	return le16toh(vu_load_acquire16(&vq->gused->idx)) != vq->last_used;
}

bool vuf_vq_enable_cb(struct vuf_vq *vq)
{
	if (vq->packed) {
		if (vq->event_idx) {
			vu_store_relaxed16(&vq->gdriver->off_wrap,
					   htole16(vq->last_used | (uint16_t)(vq->used_wrap << 15)));
			vu_store_release16(&vq->gdriver->flags, htole16(VRING_PACKED_EVENT_FLAG_DESC));
		} else {
			vu_store_release16(&vq->gdriver->flags, htole16(VRING_PACKED_EVENT_FLAG_ENABLE));
		}
	} else if (vq->event_idx) {
		vu_store_relaxed16(vq->gused_event, htole16(vq->last_used));
	} else {
		vu_store_relaxed16(&vq->gavail->flags, 0);
	}
	vq->cb_enabled = true;
	/* The request visible before re-reading the used ring (C.23, C.25). */
	vu_smp_mb();
	return vuf_vq_pending(vq);
}

void vuf_vq_disable_cb(struct vuf_vq *vq)
{
	if (vq->packed)
		vu_store_relaxed16(&vq->gdriver->flags, htole16(VRING_PACKED_EVENT_FLAG_DISABLE));
	else if (vq->event_idx)
		/* An event index just behind us: the device will not reach it soon. */
		vu_store_relaxed16(vq->gused_event, htole16((uint16_t)(vq->last_used - 1)));
	else
		vu_store_relaxed16(&vq->gavail->flags, htole16(VRING_AVAIL_F_NO_INTERRUPT));
	vq->cb_enabled = false;
}

static void drain_eventfd(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

int vuf_vq_wait(struct vuf_vq *vq, int timeout_ms)
{
	uint64_t deadline = deadline_after(timeout_ms);
	bool was_enabled = vq->cb_enabled;
	int ret = 0;

	if (vq->broken)
		return -EIO;
	if (vuf_vq_pending(vq))
		return 0;
	for (;;) {
		struct pollfd pfd = { .fd = vq->call_fd, .events = POLLIN };
		int left, slice, n;

		if (vuf_vq_enable_cb(vq))
			break;
		left = ms_left(deadline);
		if (left == 0) {
			ret = -ETIMEDOUT;
			break;
		}
		slice = left;
		if (vq->wait_fallback_ms > 0 && (slice < 0 || slice > vq->wait_fallback_ms))
			slice = vq->wait_fallback_ms;
		n = poll(&pfd, vq->call_fd >= 0 ? 1 : 0, vq->call_fd >= 0 ? slice : 1);
		if (n > 0) {
			drain_eventfd(vq->call_fd);
			vq->stats.calls++;
			continue;
		}
		if (n < 0 && errno != EINTR) {
			ret = -errno;
			break;
		}
		if (n == 0 && vuf_vq_pending(vq)) {
			vq->stats.wait_fallbacks++;
			break;
		}
	}
	if (!was_enabled)
		vuf_vq_disable_cb(vq);
	return ret;
}

void vuf_vq_set_wait_fallback(struct vuf_vq *vq, int fallback_ms)
{
	vq->wait_fallback_ms = fallback_ms < 0 ? 0 : fallback_ms;
}

int vuf_vq_wait_call(struct vuf_vq *vq, int timeout_ms)
{
	int ret;

	if (vq->call_fd < 0)
		return -EBADF;
	ret = wait_readable(vq->call_fd, timeout_ms);
	if (ret)
		return ret;
	drain_eventfd(vq->call_fd);
	vq->stats.calls++;
	return 0;
}

unsigned int vuf_vq_index(const struct vuf_vq *vq)
{
	return vq->index;
}

unsigned int vuf_vq_size(const struct vuf_vq *vq)
{
	return vq->size;
}

bool vuf_vq_is_packed(const struct vuf_vq *vq)
{
	return vq->packed;
}

unsigned int vuf_vq_num_free(const struct vuf_vq *vq)
{
	return vq->num_free;
}

unsigned int vuf_vq_inflight(const struct vuf_vq *vq)
{
	return vq->inflight;
}

int vuf_vq_kick_fd(const struct vuf_vq *vq)
{
	return vq->kick_fd;
}

int vuf_vq_call_fd(const struct vuf_vq *vq)
{
	return vq->call_fd;
}

const struct vuf_vq_stats *vuf_vq_stats(const struct vuf_vq *vq)
{
	return &vq->stats;
}

const char *vuf_vq_error(const struct vuf_vq *vq)
{
	return vq->broken ? vq->error : NULL;
}

void vuf_vq_ring_gpas(const struct vuf_vq *vq, uint64_t *desc, uint64_t *driver,
		      uint64_t *device)
{
	if (desc)
		*desc = vq->desc_gpa;
	if (driver)
		*driver = vq->driver_gpa;
	if (device)
		*device = vq->device_gpa;
}

struct vring_desc *vuf_vq_desc_split(struct vuf_vq *vq)
{
	return vq->gdesc;
}

struct vring_avail *vuf_vq_avail_split(struct vuf_vq *vq)
{
	return vq->gavail;
}

struct vring_used *vuf_vq_used_split(struct vuf_vq *vq)
{
	return vq->gused;
}

struct vring_packed_desc *vuf_vq_desc_packed(struct vuf_vq *vq)
{
	return vq->gpdesc;
}

struct vring_packed_desc_event *vuf_vq_driver_event(struct vuf_vq *vq)
{
	return vq->gdriver;
}

struct vring_packed_desc_event *vuf_vq_device_event(struct vuf_vq *vq)
{
	return vq->gdevice;
}

int vuf_vq_post_raw_head(struct vuf_vq *vq, uint16_t head, uint64_t cookie)
{
	if (vq->packed)
		return -EINVAL;
	if (head < vq->size && !vq->state[head].ndescs) {
		struct vuf_chain_state *st = &vq->state[head];

		st->cookie = cookie;
		st->wlen = VUF_WLEN_RAW;
		st->ndescs = 1;
		vq->inflight++;
	}
	vq->gavail->ring[vq->avail_idx & (vq->size - 1)] = htole16(head);
	vq->avail_idx++;
	split_publish(vq);
	vq->num_added++;
	vq->stats.posted++;
	return 0;
}

/* Take id out of the free id list (raw posts only: linear). */
static bool packed_take_id(struct vuf_vq *vq, uint16_t id)
{
	uint16_t *link = &vq->free_head;

	for (unsigned int i = 0; i < vq->size && *link < vq->size; i++) {
		if (*link == id) {
			*link = vq->state[id].link;
			return true;
		}
		link = &vq->state[*link].link;
	}
	return false;
}

int vuf_vq_post_raw_packed(struct vuf_vq *vq, const struct vring_packed_desc *descs,
			   unsigned int n, uint64_t cookie, bool keep_flags)
{
	uint16_t head = vq->avail_idx, idx = head, head_flags = 0, id;
	bool wrap = vq->avail_wrap;

	if (!vq->packed || n == 0 || !descs)
		return -EINVAL;
	if (n > vq->num_free)
		return -ENOSPC;
	for (unsigned int i = 0; i < n; i++) {
		struct vring_packed_desc *d = &vq->gpdesc[idx];
		uint16_t f = le16toh(descs[i].flags);

		if (!keep_flags) {
			f &= (uint16_t)~((1u << VRING_PACKED_DESC_F_AVAIL) |
					 (1u << VRING_PACKED_DESC_F_USED));
			f |= packed_avail_bits(wrap);
		}
		d->addr = descs[i].addr;
		d->len = descs[i].len;
		d->id = descs[i].id;
		if (i == 0)
			head_flags = f;
		else
			vu_store_relaxed16(&d->flags, htole16(f));
		if (++idx == vq->size) {
			idx = 0;
			wrap = !wrap;
		}
	}
	vq->avail_idx = idx;
	vq->avail_wrap = wrap;
	vq->num_free = (uint16_t)(vq->num_free - n);
	id = le16toh(descs[n - 1].id);
	if (id < vq->size && !vq->state[id].ndescs && packed_take_id(vq, id)) {
		struct vuf_chain_state *st = &vq->state[id];

		st->cookie = cookie;
		st->wlen = 0;
		st->ndescs = (uint16_t)n;
		vq->inflight++;
	}
	vu_store_release16(&vq->gpdesc[head].flags, htole16(head_flags));
	vq->num_added += n;
	vq->stats.posted++;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Handshake and reconnection                                         */
/* ------------------------------------------------------------------ */

int vuf_negotiate(struct vuf *vuf, uint64_t wanted_features, uint64_t wanted_protocol_features,
		  uint64_t *negotiated)
{
	const uint64_t pf = 1ull << VU_F_PROTOCOL_FEATURES;
	uint64_t offered, poffered, acked;
	int ret;

	ret = vuf_get_features(vuf, &offered);
	if (ret)
		return ret;
	if (offered & pf) {
		ret = vuf_get_protocol_features(vuf, &poffered);
		if (!ret)
			ret = vuf_set_protocol_features(vuf, poffered & wanted_protocol_features);
		if (ret)
			return ret;
	}
	ret = vuf_set_owner(vuf);
	if (ret)
		return ret;
	acked = (offered & wanted_features) | (offered & pf);
	ret = vuf_set_features(vuf, acked);
	if (ret)
		return ret;
	if (negotiated)
		*negotiated = acked;
	return 0;
}

int vuf_open_backend_channel(struct vuf *vuf)
{
	int sv[2], ret;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	ret = vuf_request(vuf, VU_REQ_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1, use_ack(vuf), NULL);
	close(sv[1]);
	if (ret) {
		close(sv[0]);
		return ret;
	}
	vu_close_fd(&vuf->backend_fd);
	vuf->backend_fd = sv[0];
	vuf->backend_channel = true;
	set_sock_timeouts(vuf->backend_fd, vuf->timeout_ms);
	return 0;
}

int vuf_backend_channel_fd(const struct vuf *vuf)
{
	return vuf->backend_fd;
}

int vuf_backend_channel_recv(struct vuf *vuf, struct vu_msg *msg, int timeout_ms)
{
	struct vu_msg m;
	int ret;

	if (vuf->backend_fd < 0)
		return -ENOTCONN;
	ret = wait_readable(vuf->backend_fd, timeout_ms);
	if (!ret)
		ret = vu_msg_recv(vuf->backend_fd, &m);
	if (ret)
		return ret;
	if (m.hdr.flags & VU_FLAG_NEED_REPLY) {
		struct vu_msg reply;

		memset(&reply, 0, sizeof(reply));
		reply.hdr.request = m.hdr.request;
		reply.hdr.flags = VU_VERSION | VU_FLAG_REPLY;
		reply.hdr.size = sizeof(uint64_t);
		reply.payload.u64 = 0;
		ret = vu_msg_send(vuf->backend_fd, &reply);
		if (ret) {
			vu_msg_close_fds(&m);
			return ret;
		}
	}
	*msg = m;
	return 0;
}

int vuf_reconnect(struct vuf *vuf, const char *path, int timeout_ms)
{
	const uint64_t pf = 1ull << VU_F_PROTOCOL_FEATURES;
	uint64_t features = vuf->features, proto = vuf->protocol_features, offered;
	bool any_shared = false;
	char *copy;
	int fd, ret;

	if (!path)
		path = vuf->path;
	if (!path)
		return -EINVAL;
	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	vu_close_fd(&vuf->sock);
	fd = connect_path(copy, timeout_ms);
	if (fd < 0) {
		free(copy);
		return fd;
	}
	free(vuf->path);
	vuf->path = copy;
	vuf->sock = fd;
	set_sock_timeouts(fd, vuf->timeout_ms);
	/* The old channel's peer is gone; a new one is opened below. */
	vu_close_fd(&vuf->backend_fd);
	/* No REPLY_ACK until it is negotiated again. */
	vuf->protocol_features = 0;

	ret = vuf_get_features(vuf, &offered);
	if (ret)
		goto err;
	if ((offered & features) != features) {
		vu_err("vuf: restarted back-end offers features 0x%llx, 0x%llx were negotiated",
		       (unsigned long long)offered, (unsigned long long)features);
		ret = -EPROTO;
		goto err;
	}
	if (features & pf) {
		ret = vuf_get_protocol_features(vuf, &offered);
		if (ret)
			goto err;
		if ((offered & proto) != proto) {
			vu_err("vuf: restarted back-end offers protocol features 0x%llx, 0x%llx were negotiated",
			       (unsigned long long)offered, (unsigned long long)proto);
			ret = -EPROTO;
			goto err;
		}
		ret = vuf_set_protocol_features(vuf, proto);
		if (ret)
			goto err;
	}
	ret = vuf_set_owner(vuf);
	if (!ret && vuf->backend_channel)
		ret = vuf_open_backend_channel(vuf);
	if (!ret)
		ret = vuf_set_features(vuf, features);
	if (!ret && vuf->inflight_sent)
		ret = vuf_set_inflight(vuf, -1, NULL);
	if (ret)
		goto err;

	for (unsigned int i = 0; i < vuf->nregions; i++)
		any_shared |= vuf->regions[i].shared;
	if (vuf->mem_hot_added && (proto & (1ull << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS))) {
		for (unsigned int i = 0; i < vuf->nregions && !ret; i++)
			if (vuf->regions[i].shared)
				ret = send_add_mem_reg(vuf, &vuf->regions[i]);
	} else if (any_shared) {
		ret = send_mem_table(vuf, true);
	}
	if (ret)
		goto err;

	for (unsigned int i = 0; i < VUF_MAX_QUEUES; i++) {
		struct vuf_vq *vq = vuf->vqs[i];

		if (vq && vq->started) {
			ret = vq_send_start(vq);
			if (ret)
				goto err;
		}
	}
	if (vuf->status_set)
		ret = vuf_set_status(vuf, vuf->status);
	if (ret)
		goto err;
	return 0;

err:
	/* Keep what was negotiated, so that another vuf_reconnect can replay it. */
	vuf->features = features;
	vuf->protocol_features = proto;
	return ret;
}
