// SPDX-License-Identifier: MIT
/*
 * Reading and writing vhost-user messages on a stream socket.
 *
 * Security model: nothing received is trusted.  The header's size is
 * checked against the largest payload before anything is read into the
 * payload; every descriptor that arrives is owned by the message and
 * closed by whoever fails, so that a hostile front-end cannot exhaust
 * our descriptors (SECURITY.md A.1, A.2).
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vu_msg.h"
#include "vu_util.h"

static const char *const request_names[VU_REQ_MAX] = {
#define N(x) [VU_REQ_##x] = #x
	N(NONE), N(GET_FEATURES), N(SET_FEATURES), N(SET_OWNER), N(RESET_OWNER),
	N(SET_MEM_TABLE), N(SET_LOG_BASE), N(SET_LOG_FD), N(SET_VRING_NUM),
	N(SET_VRING_ADDR), N(SET_VRING_BASE), N(GET_VRING_BASE), N(SET_VRING_KICK),
	N(SET_VRING_CALL), N(SET_VRING_ERR), N(GET_PROTOCOL_FEATURES),
	N(SET_PROTOCOL_FEATURES), N(GET_QUEUE_NUM), N(SET_VRING_ENABLE),
	N(SEND_RARP), N(NET_SET_MTU), N(SET_BACKEND_REQ_FD), N(IOTLB_MSG),
	N(SET_VRING_ENDIAN), N(GET_CONFIG), N(SET_CONFIG), N(CREATE_CRYPTO_SESSION),
	N(CLOSE_CRYPTO_SESSION), N(POSTCOPY_ADVISE), N(POSTCOPY_LISTEN),
	N(POSTCOPY_END), N(GET_INFLIGHT_FD), N(SET_INFLIGHT_FD), N(GPU_SET_SOCKET),
	N(RESET_DEVICE), N(VRING_KICK), N(GET_MAX_MEM_SLOTS), N(ADD_MEM_REG),
	N(REM_MEM_REG), N(SET_STATUS), N(GET_STATUS), N(GET_SHARED_OBJECT),
	N(SET_DEVICE_STATE_FD), N(CHECK_DEVICE_STATE),
#undef N
};

const char *vu_request_name(uint32_t request)
{
	if (request < VU_REQ_MAX && request_names[request])
		return request_names[request];
	return "UNKNOWN";
}

/* Read exactly len bytes; 0, -ECONNRESET on EOF, -errno. */
static int read_full(int sock, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = recv(sock, p, len, 0);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void vu_msg_close_fds(struct vu_msg *msg)
{
	for (unsigned int i = 0; i < msg->nfds; i++)
		vu_close_fd(&msg->fds[i]);
	msg->nfds = 0;
}

int vu_msg_take_fd(struct vu_msg *msg, unsigned int i)
{
	int fd;

	if (i >= msg->nfds)
		return -1;
	fd = msg->fds[i];
	msg->fds[i] = -1;
	return fd;
}

/* Collect SCM_RIGHTS descriptors; any beyond VU_MAX_FDS are closed. */
static int collect_fds(struct msghdr *mh, struct vu_msg *msg)
{
	int ret = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;
		int *fds = (int *)CMSG_DATA(c);

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, fds + i, sizeof(fd));
			if (msg->nfds < VU_MAX_FDS) {
				msg->fds[msg->nfds++] = fd;
			} else {
				close(fd);
				ret = -EBADMSG;
			}
		}
	}
	return ret;
}

int vu_msg_recv(int sock, struct vu_msg *msg)
{
	char control[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
	struct iovec iov = { .iov_base = &msg->hdr, .iov_len = sizeof(msg->hdr) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control, .msg_controllen = sizeof(control),
	};
	ssize_t n;
	int ret;

	msg->nfds = 0;
	for (unsigned int i = 0; i < VU_MAX_FDS; i++)
		msg->fds[i] = -1;
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	ret = collect_fds(&mh, msg);
	if (mh.msg_flags & MSG_CTRUNC) {
		vu_warn("message with more than %d fds: control data truncated", VU_MAX_FDS);
		ret = -EBADMSG;
	}
	if (ret == 0 && (size_t)n < sizeof(msg->hdr))
		ret = read_full(sock, (uint8_t *)&msg->hdr + n, sizeof(msg->hdr) - (size_t)n);
	if (ret == 0 && msg->hdr.size > VU_MAX_PAYLOAD) {
		vu_warn("%s: payload size %u exceeds the maximum %zu",
			vu_request_name(msg->hdr.request), msg->hdr.size, VU_MAX_PAYLOAD);
		ret = -EBADMSG;
	}
	if (ret == 0 && msg->hdr.size)
		ret = read_full(sock, &msg->payload, msg->hdr.size);
	if (ret < 0) {
		vu_msg_close_fds(msg);
		return ret == -ECONNRESET ? -EBADMSG : ret;
	}
	return 0;
}

int vu_msg_send(int sock, const struct vu_msg *msg)
{
	char control[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
	struct iovec iov[2] = {
		{ .iov_base = (void *)&msg->hdr, .iov_len = sizeof(msg->hdr) },
		{ .iov_base = (void *)&msg->payload, .iov_len = msg->hdr.size },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	size_t left = sizeof(msg->hdr) + msg->hdr.size;

	if (msg->hdr.size > VU_MAX_PAYLOAD || msg->nfds > VU_MAX_FDS)
		return -EINVAL;
	if (msg->nfds) {
		struct cmsghdr *c;

		memset(control, 0, sizeof(control));
		mh.msg_control = control;
		mh.msg_controllen = CMSG_SPACE(msg->nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(msg->nfds * sizeof(int));
		memcpy(CMSG_DATA(c), msg->fds, msg->nfds * sizeof(int));
	}
	while (left) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		left -= (size_t)n;
		/* Descriptors went with the first bytes; send the rest plainly. */
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		while (n > 0 && mh.msg_iovlen) {
			if ((size_t)n >= mh.msg_iov->iov_len) {
				n -= (ssize_t)mh.msg_iov->iov_len;
				mh.msg_iov++;
				mh.msg_iovlen--;
			} else {
				mh.msg_iov->iov_base = (uint8_t *)mh.msg_iov->iov_base + n;
				mh.msg_iov->iov_len -= (size_t)n;
				n = 0;
			}
		}
	}
	return 0;
}
