/* SPDX-License-Identifier: MIT */
/*
 * The vhost-user wire format (QEMU docs/interop/vhost-user.rst): message
 * header, payloads, request numbers, protocol feature bits, and the
 * socket I/O of one message with its SCM_RIGHTS file descriptors.
 *
 * Ring and device layouts come from the kernel's uapi headers; only what
 * the vhost-user spec adds is declared here.  This header is shared by
 * the backend library and the test frontend.
 */
#ifndef VU_MSG_H
#define VU_MSG_H

#include <stdint.h>
#include <linux/vhost_types.h>

#define VU_VERSION            0x1
#define VU_FLAG_VERSION_MASK  0x3
#define VU_FLAG_REPLY         (1u << 2)
#define VU_FLAG_NEED_REPLY    (1u << 3)

/* VHOST_USER_F_PROTOCOL_FEATURES: a virtio feature bit reused by the protocol. */
#define VU_F_PROTOCOL_FEATURES 30

enum vu_protocol_feature {
	VU_PROTOCOL_F_MQ = 0,
	VU_PROTOCOL_F_LOG_SHMFD = 1,
	VU_PROTOCOL_F_RARP = 2,
	VU_PROTOCOL_F_REPLY_ACK = 3,
	VU_PROTOCOL_F_NET_MTU = 4,
	VU_PROTOCOL_F_BACKEND_REQ = 5,
	VU_PROTOCOL_F_CROSS_ENDIAN = 6,
	VU_PROTOCOL_F_CRYPTO_SESSION = 7,
	VU_PROTOCOL_F_PAGEFAULT = 8,
	VU_PROTOCOL_F_CONFIG = 9,
	VU_PROTOCOL_F_BACKEND_SEND_FD = 10,
	VU_PROTOCOL_F_HOST_NOTIFIER = 11,
	VU_PROTOCOL_F_INFLIGHT_SHMFD = 12,
	VU_PROTOCOL_F_RESET_DEVICE = 13,
	VU_PROTOCOL_F_INBAND_NOTIFICATIONS = 14,
	VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS = 15,
	VU_PROTOCOL_F_STATUS = 16,
};

/* Front-end to back-end requests. */
enum vu_request {
	VU_REQ_NONE = 0,
	VU_REQ_GET_FEATURES = 1,
	VU_REQ_SET_FEATURES = 2,
	VU_REQ_SET_OWNER = 3,
	VU_REQ_RESET_OWNER = 4,
	VU_REQ_SET_MEM_TABLE = 5,
	VU_REQ_SET_LOG_BASE = 6,
	VU_REQ_SET_LOG_FD = 7,
	VU_REQ_SET_VRING_NUM = 8,
	VU_REQ_SET_VRING_ADDR = 9,
	VU_REQ_SET_VRING_BASE = 10,
	VU_REQ_GET_VRING_BASE = 11,
	VU_REQ_SET_VRING_KICK = 12,
	VU_REQ_SET_VRING_CALL = 13,
	VU_REQ_SET_VRING_ERR = 14,
	VU_REQ_GET_PROTOCOL_FEATURES = 15,
	VU_REQ_SET_PROTOCOL_FEATURES = 16,
	VU_REQ_GET_QUEUE_NUM = 17,
	VU_REQ_SET_VRING_ENABLE = 18,
	VU_REQ_SEND_RARP = 19,
	VU_REQ_NET_SET_MTU = 20,
	VU_REQ_SET_BACKEND_REQ_FD = 21,
	VU_REQ_IOTLB_MSG = 22,
	VU_REQ_SET_VRING_ENDIAN = 23,
	VU_REQ_GET_CONFIG = 24,
	VU_REQ_SET_CONFIG = 25,
	VU_REQ_CREATE_CRYPTO_SESSION = 26,
	VU_REQ_CLOSE_CRYPTO_SESSION = 27,
	VU_REQ_POSTCOPY_ADVISE = 28,
	VU_REQ_POSTCOPY_LISTEN = 29,
	VU_REQ_POSTCOPY_END = 30,
	VU_REQ_GET_INFLIGHT_FD = 31,
	VU_REQ_SET_INFLIGHT_FD = 32,
	VU_REQ_GPU_SET_SOCKET = 33,
	VU_REQ_RESET_DEVICE = 34,
	VU_REQ_VRING_KICK = 35,
	VU_REQ_GET_MAX_MEM_SLOTS = 36,
	VU_REQ_ADD_MEM_REG = 37,
	VU_REQ_REM_MEM_REG = 38,
	VU_REQ_SET_STATUS = 39,
	VU_REQ_GET_STATUS = 40,
	VU_REQ_GET_SHARED_OBJECT = 41,
	VU_REQ_SET_DEVICE_STATE_FD = 42,
	VU_REQ_CHECK_DEVICE_STATE = 43,
	VU_REQ_MAX
};

/* Back-end to front-end requests (on the BACKEND_REQ channel). */
enum vu_backend_request {
	VU_BACKEND_REQ_IOTLB_MSG = 1,
	VU_BACKEND_REQ_CONFIG_CHANGE_MSG = 2,
	VU_BACKEND_REQ_VRING_HOST_NOTIFIER_MSG = 3,
};

/* Regions in one SET_MEM_TABLE message (fixed by the protocol). */
#define VU_MEM_TABLE_MAX_REGIONS 8
/* Largest config space a GET/SET_CONFIG message carries. */
#define VU_MAX_CONFIG_SIZE 256
/* File descriptors one message may carry. */
#define VU_MAX_FDS 8
/* Bit in a SET_VRING_KICK/CALL/ERR u64: no fd attached. */
#define VU_VRING_NOFD_MASK (1ull << 8)
#define VU_VRING_IDX_MASK  0xffull

struct vu_msg_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

struct vu_mem_region_desc {
	uint64_t guest_addr;
	uint64_t size;
	uint64_t user_addr;
	uint64_t mmap_offset;
};

struct vu_mem_table_desc {
	uint32_t nregions;
	uint32_t padding;
	struct vu_mem_region_desc regions[VU_MEM_TABLE_MAX_REGIONS];
};

struct vu_single_mem_region {
	uint64_t padding;
	struct vu_mem_region_desc region;
};

struct vu_log_desc {
	uint64_t mmap_size;
	uint64_t mmap_offset;
};

struct vu_config_desc {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t region[VU_MAX_CONFIG_SIZE];
};
#define VU_CONFIG_HDR_SIZE 12u

struct vu_inflight_desc {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
};

union vu_payload {
	uint64_t u64;
	struct vhost_vring_state state;
	struct vhost_vring_addr addr;
	struct vu_mem_table_desc mem;
	struct vu_single_mem_region mem_reg;
	struct vu_log_desc log;
	struct vhost_iotlb_msg iotlb;
	struct vu_config_desc config;
	struct vu_inflight_desc inflight;
};

/* Largest payload the library accepts; anything bigger is refused. */
#define VU_MAX_PAYLOAD sizeof(union vu_payload)

/*
 * One message with its attached descriptors.  The message owns fds[]
 * until a handler takes one (vu_msg_take_fd); vu_msg_close_fds() closes
 * whatever is left.
 */
struct vu_msg {
	struct vu_msg_hdr hdr;
	union vu_payload payload;
	int fds[VU_MAX_FDS];
	unsigned int nfds;
};

/* Name of a request for log lines ("UNKNOWN" for anything else). */
const char *vu_request_name(uint32_t request);

/*
 * Receive one message from a stream socket.  Returns 0 and fills *msg,
 * -ECONNRESET on orderly EOF before a header, -EBADMSG on a truncated or
 * oversized message (everything received is closed), other -errno on
 * socket errors.  Never trusts hdr.size beyond VU_MAX_PAYLOAD.
 */
int vu_msg_recv(int sock, struct vu_msg *msg);

/*
 * Send one message, with msg->nfds descriptors attached (the caller keeps
 * ownership of them).  Returns 0 or -errno.  Retries on EINTR; a partial
 * write on a blocking socket is completed.
 */
int vu_msg_send(int sock, const struct vu_msg *msg);

/* Take descriptor i out of the message (-1 if absent). */
int vu_msg_take_fd(struct vu_msg *msg, unsigned int i);

/* Close every descriptor the message still owns. */
void vu_msg_close_fds(struct vu_msg *msg);

#endif
