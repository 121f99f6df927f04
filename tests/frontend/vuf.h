/* SPDX-License-Identifier: MIT */
/*
 * vuf: a small vhost-user front-end (the QEMU role) for integration
 * tests, hostile-input tests and the benchmark load generator.
 *
 * One struct vuf is one connection to a back-end: the control socket,
 * the guest memory it shares (memfds mapped here), the virtqueues it
 * drives and optionally the inflight area and the back-end channel.
 * Guest memory uses guest addresses (GPA) chosen by the caller and user
 * addresses (UVA) that are neither the GPA nor a pointer valid in this
 * process (UVA = GPA + VUF_UVA_OFFSET), so a back-end that mixes them up
 * fails instead of working by accident.
 *
 * Control path: every message helper sends one request and, when the
 * request has a reply or the REPLY_ACK flag is used, waits for it (with
 * the connection's timeout) and checks its header.  Helpers return 0 or
 * -errno; -EIO means the back-end answered a REPLY_ACK with a non-zero
 * value, -EPROTO a malformed or mismatched reply, -ETIMEDOUT no reply in
 * time.  Once REPLY_ACK is negotiated, helpers of requests without a
 * reply of their own set NEED_REPLY (vuf_set_reply_ack() turns that off),
 * so that a refused request is seen at the call that caused it.
 *
 * Data path (vuf_vq_*): no allocation and no system call per request;
 * the only system call is the kick, made when the back-end has not
 * suppressed it.  Descriptor state lives in private arrays; the shared
 * ring is written, never read back, except for the fields the device
 * owns.  Pointers into guest-shared memory carry a `g` prefix.
 *
 * Threading: one thread drives the control path of a struct vuf.  Each
 * queue's data path (post, kick, reap, wait) runs on one thread at a time,
 * which may differ from the control thread; control calls that touch a
 * queue (vuf_vq_start, vuf_reconnect, vuf_vq_destroy, vuf_get_vring_base)
 * must not run concurrently with that queue's data path.  Memory-table
 * changes (vuf_mem_add...) must not run concurrently with translations.
 *
 * Constructors returning a pointer return NULL and set errno on failure;
 * everything else returns 0 (or a count) or -errno.  Out-parameters are
 * written only on success.
 */
#ifndef VUF_H
#define VUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/vhost_types.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "vu_msg.h"

struct vuf;
struct vuf_vq;

/* UVA of a region = its GPA + this (not mapped in a usual process). */
#define VUF_UVA_OFFSET 0x5a5a00000000ull
/* Queues one connection can drive (the vring index of KICK/CALL is 8 bits). */
#define VUF_MAX_QUEUES 256
/* Default reply timeout of a connection. */
#define VUF_DEFAULT_TIMEOUT_MS 5000
/* Default capacity of one indirect table, in descriptors. */
#define VUF_INDIRECT_MAX_DEFAULT 32
/* Largest virtqueue (SECURITY.md A.5). */
#define VUF_VQ_MAX_SIZE 32768

/* ------------------------------------------------------------------ */
/* Connection                                                         */
/* ------------------------------------------------------------------ */

/*
 * Connect to the back-end's Unix socket at path, retrying while the
 * socket does not exist or refuses, until timeout_ms has passed.
 * Returns the connection or NULL with errno set (ETIMEDOUT, ENAMETOOLONG...).
 */
struct vuf *vuf_connect(const char *path, int timeout_ms);

/* Use an already connected stream socket; takes ownership of fd (also on error). */
struct vuf *vuf_connect_fd(int fd);

/*
 * A handle with no connection: guest memory and rings only, for ring
 * tests against an in-process device.  Message helpers return -ENOTCONN.
 */
struct vuf *vuf_create(void);

/*
 * Close the socket, the back-end channel, every queue's eventfds, the
 * inflight area and every memory region.  Sends nothing.  Accepts NULL.
 */
void vuf_close(struct vuf *vuf);

/* The control socket (-1 when not connected), for poll() or raw I/O. */
int vuf_sock(const struct vuf *vuf);

/* Reply timeout of this connection (default VUF_DEFAULT_TIMEOUT_MS). */
void vuf_set_timeout(struct vuf *vuf, int timeout_ms);

/* Whether helpers set NEED_REPLY once REPLY_ACK is negotiated (default on). */
void vuf_set_reply_ack(struct vuf *vuf, bool on);

/* Virtio features acknowledged with SET_FEATURES (the rings honour them). */
uint64_t vuf_features(const struct vuf *vuf);
/* Protocol features acknowledged with SET_PROTOCOL_FEATURES. */
uint64_t vuf_protocol_features(const struct vuf *vuf);
static inline bool vuf_has_protocol_feature(const struct vuf *vuf, unsigned int bit)
{
	return vuf_protocol_features(vuf) & (1ull << bit);
}

/*
 * Set the virtio features the rings honour without sending anything
 * (EVENT_IDX, INDIRECT_DESC, RING_PACKED): for handles from vuf_create().
 */
void vuf_set_local_features(struct vuf *vuf, uint64_t features);

/* ------------------------------------------------------------------ */
/* Raw messages                                                       */
/* ------------------------------------------------------------------ */

/*
 * True if `request` is answered even without NEED_REPLY, given what this
 * connection negotiated: the GET_* requests, SET_LOG_BASE with LOG_SHMFD,
 * IOTLB_MSG, POSTCOPY_ADVISE/END, CREATE_CRYPTO_SESSION and the device
 * state requests.
 */
bool vuf_request_has_reply(const struct vuf *vuf, uint32_t request);

/*
 * Send one message (flags: version 1, plus NEED_REPLY if need_reply) with
 * `size` payload bytes and nfds descriptors (still owned by the caller).
 * Then, if the request has a reply of its own or need_reply is set, wait
 * for one message and check that it is a reply (REPLY flag, version 1)
 * to the same request:
 *  - the request has a reply of its own: returns 0, and the reply is
 *    stored in *reply (the caller then owns its fds: vu_msg_close_fds);
 *    with reply NULL the reply is dropped and its fds closed;
 *  - only need_reply: the reply must carry a u64; returns 0 if it is 0,
 *    -EIO if it is not (the value is in reply->payload.u64 when reply is
 *    not NULL);
 *  - neither: returns 0 once sent; *reply is not touched.
 * -EPROTO on a malformed or mismatched reply, -ETIMEDOUT, -ECONNRESET if
 * the back-end closed the connection, -EINVAL if size > VU_MAX_PAYLOAD
 * or nfds > VU_MAX_FDS (use vuf_send_raw for those).
 */
int vuf_request(struct vuf *vuf, uint32_t request, const void *payload, uint32_t size,
		const int *fds, unsigned int nfds, bool need_reply, struct vu_msg *reply);

/*
 * Send arbitrary bytes on the control socket, with nfds descriptors
 * (caller keeps them) attached to the first byte.  For hostile-input
 * tests: nothing is checked.  0 or -errno.
 */
int vuf_send_raw(struct vuf *vuf, const void *bytes, size_t len, const int *fds,
		 unsigned int nfds);

/*
 * Receive one message from the back-end without any check (after
 * vuf_send_raw).  The caller owns msg's fds.  -ETIMEDOUT, -ECONNRESET on
 * EOF, -EBADMSG on a malformed message.
 */
int vuf_recv(struct vuf *vuf, struct vu_msg *msg, int timeout_ms);

/*
 * Wait up to timeout_ms for the back-end to close the connection,
 * dropping whatever it sends meanwhile.  Returns 1 if it closed, 0 if it
 * is still open, -errno on another error.
 */
int vuf_peer_closed(struct vuf *vuf, int timeout_ms);

/* ------------------------------------------------------------------ */
/* Request helpers (one message each)                                 */
/* ------------------------------------------------------------------ */

int vuf_get_features(struct vuf *vuf, uint64_t *features);
/* Also records the features as the ones the rings honour. */
int vuf_set_features(struct vuf *vuf, uint64_t features);
int vuf_get_protocol_features(struct vuf *vuf, uint64_t *features);
/* Also records them (REPLY_ACK takes effect for the following requests). */
int vuf_set_protocol_features(struct vuf *vuf, uint64_t features);
int vuf_set_owner(struct vuf *vuf);
int vuf_get_queue_num(struct vuf *vuf, uint64_t *num);
int vuf_get_max_mem_slots(struct vuf *vuf, uint64_t *slots);
/*
 * GET_CONFIG of size bytes at offset (size <= VU_MAX_CONFIG_SIZE) into buf.
 * -EIO if the back-end answers with an empty payload (its error signal),
 * -EPROTO if the reply's size, offset or length differ from the request.
 */
int vuf_get_config(struct vuf *vuf, uint32_t offset, void *buf, uint32_t size);
int vuf_set_config(struct vuf *vuf, uint32_t offset, const void *buf, uint32_t size,
		   uint32_t flags);
int vuf_set_status(struct vuf *vuf, uint8_t status);
int vuf_get_status(struct vuf *vuf, uint8_t *status);
int vuf_reset_device(struct vuf *vuf);
/*
 * SET_LOG_BASE with the log fd (caller keeps it): the area is `size`
 * bytes at `offset` of fd.  Waits for the back-end's reply when
 * LOG_SHMFD is negotiated, as QEMU does.
 */
int vuf_set_log_base(struct vuf *vuf, int fd, uint64_t size, uint64_t offset);

int vuf_set_vring_num(struct vuf *vuf, unsigned int index, unsigned int num);
int vuf_set_vring_addr(struct vuf *vuf, const struct vhost_vring_addr *addr);
/* num as sent: split: next avail index; packed: QEMU's encoding (see vuf_vq_base). */
int vuf_set_vring_base(struct vuf *vuf, unsigned int index, uint32_t num);
/* GET_VRING_BASE (stops the ring); also remembered by the queue, if any, for its next start. */
int vuf_get_vring_base(struct vuf *vuf, unsigned int index, uint32_t *num);
/* fd < 0 sends the NOFD flag instead of a descriptor.  The caller keeps fd. */
int vuf_set_vring_kick(struct vuf *vuf, unsigned int index, int fd);
int vuf_set_vring_call(struct vuf *vuf, unsigned int index, int fd);
int vuf_set_vring_err(struct vuf *vuf, unsigned int index, int fd);
int vuf_set_vring_enable(struct vuf *vuf, unsigned int index, bool enable);

/*
 * GET_INFLIGHT_FD for num_queues queues of queue_size.  On success the
 * connection keeps the returned fd and a shared mapping of the area
 * (replacing any previous one); *fd (if not NULL) receives the fd, which
 * stays owned by the connection, and *desc (if not NULL) the back-end's
 * description.  -EPROTO if the reply carries no fd or a short payload.
 */
int vuf_get_inflight(struct vuf *vuf, uint16_t num_queues, uint16_t queue_size, int *fd,
		     struct vu_inflight_desc *desc);
/* The mapping of the area kept by vuf_get_inflight (NULL if none); *size its length. */
void *vuf_inflight_area(struct vuf *vuf, size_t *size);
/*
 * SET_INFLIGHT_FD.  fd < 0 and desc NULL send the area kept by
 * vuf_get_inflight, which vuf_reconnect() then sends again; otherwise
 * fd and desc are sent as given (hostile tests; the caller keeps fd).
 */
int vuf_set_inflight(struct vuf *vuf, int fd, const struct vu_inflight_desc *desc);

/* ------------------------------------------------------------------ */
/* Handshake and reconnection                                         */
/* ------------------------------------------------------------------ */

/*
 * The QEMU handshake: GET_FEATURES; if VHOST_USER_F_PROTOCOL_FEATURES
 * (bit 30) is offered, GET_PROTOCOL_FEATURES and SET_PROTOCOL_FEATURES
 * with offered & wanted_protocol_features; SET_OWNER; SET_FEATURES with
 * offered & wanted_features, plus bit 30 when offered.  *negotiated (may
 * be NULL) receives what SET_FEATURES sent.
 */
int vuf_negotiate(struct vuf *vuf, uint64_t wanted_features, uint64_t wanted_protocol_features,
		  uint64_t *negotiated);

/*
 * Reconnect to a restarted back-end (path NULL: the path of vuf_connect)
 * and send the whole state again, as QEMU does with reconnect=1: the
 * handshake with the features and protocol features negotiated before
 * (-EPROTO if the back-end no longer offers them), the back-end channel
 * if one was open, SET_FEATURES, SET_INFLIGHT_FD with the kept area,
 * the memory table (SET_MEM_TABLE, or ADD_MEM_REG per region if regions
 * were hot-added), every started queue (NUM, BASE, ADDR, KICK, CALL,
 * ENABLE) with the base of vuf_vq_base(), and the last status set.
 * Guest memory, rings, eventfds and requests in flight are kept.  The
 * queues are not kicked: the back-end must look at them on its own
 * (SECURITY.md C.27).
 */
int vuf_reconnect(struct vuf *vuf, const char *path, int timeout_ms);

/* ------------------------------------------------------------------ */
/* Guest memory                                                       */
/* ------------------------------------------------------------------ */

#define VUF_MEM_HUGETLB (1u << 0) /* memfd on hugetlbfs (size rounded to 2 MiB) */
#define VUF_MEM_OFFSET  (1u << 1) /* region starts one page into its memfd (mmap_offset != 0) */
#define VUF_MEM_POPULATE (1u << 2) /* fault the pages in now (MAP_POPULATE), for benchmarks */

/*
 * Create a region of size bytes (rounded up to the page size) at gpa
 * (page aligned): a memfd (MFD_CLOEXEC), mapped shared here.  It is only
 * known locally until vuf_mem_commit or vuf_mem_hot_add.  -EINVAL on a
 * bad size or alignment, -EEXIST if it overlaps another region, -errno
 * of memfd_create/ftruncate/mmap (hugetlb: usually -ENOMEM or -EINVAL).
 */
int vuf_mem_add(struct vuf *vuf, uint64_t gpa, size_t size, unsigned int flags);

/* SET_MEM_TABLE with every region (at most VU_MEM_TABLE_MAX_REGIONS, else -E2BIG). */
int vuf_mem_commit(struct vuf *vuf);

/*
 * ADD_MEM_REG for the region at gpa, creating it (vuf_mem_add with
 * size and flags) if there is none.  -EOPNOTSUPP unless
 * CONFIGURE_MEM_SLOTS was negotiated.
 */
int vuf_mem_hot_add(struct vuf *vuf, uint64_t gpa, size_t size, unsigned int flags);

/*
 * REM_MEM_REG for the region at gpa (no fd attached).  The local mapping
 * and its allocations stay; vuf_mem_hot_add(gpa) shares it again.
 */
int vuf_mem_hot_remove(struct vuf *vuf, uint64_t gpa);

unsigned int vuf_mem_nregions(const struct vuf *vuf);
/* Description (as sent) and memfd (still owned by vuf) of region i; -ENOENT. */
int vuf_mem_region(const struct vuf *vuf, unsigned int i, struct vu_mem_region_desc *desc,
		   int *fd);

/* Local pointer for [gpa, gpa + len) inside one region, or NULL. */
void *vuf_gpa_to_ptr(const struct vuf *vuf, uint64_t gpa, uint64_t len);
/* GPA of a local pointer into a region; -EFAULT if it is in none. */
int vuf_ptr_to_gpa(const struct vuf *vuf, const void *p, uint64_t *gpa);
/* UVA (as sent to the back-end) of a GPA; -EFAULT. */
int vuf_gpa_to_uva(const struct vuf *vuf, uint64_t gpa, uint64_t *uva);

/*
 * Bump allocator in guest memory: size bytes aligned to align (a power
 * of two; 0 means 8), taken from the first region with room.  Returns
 * the local pointer (zeroed memory) and *gpa, or NULL with errno ENOMEM.
 * Nothing is ever freed before vuf_close.
 */
void *vuf_alloc(struct vuf *vuf, size_t size, size_t align, uint64_t *gpa);

/* ------------------------------------------------------------------ */
/* Virtqueues                                                         */
/* ------------------------------------------------------------------ */

struct vuf_vq_opts {
	unsigned int index;
	unsigned int size;        /* split: power of two; both: 1..32768 */
	bool packed;              /* must match VIRTIO_F_RING_PACKED in the features */
	unsigned int indirect_max; /* per indirect table; 0: VUF_INDIRECT_MAX_DEFAULT */
};

/* One buffer of a chain: readable segments must come before writable ones. */
struct vuf_seg {
	uint64_t gpa;
	uint32_t len;
	bool writable;
};

struct vuf_completion {
	uint64_t cookie;
	uint32_t len;             /* bytes the device says it wrote */
	uint16_t id;              /* split: head index; packed: buffer id */
};

struct vuf_vq_stats {
	uint64_t posted;
	uint64_t completed;
	uint64_t kicks;
	uint64_t kicks_suppressed;
	uint64_t calls;           /* call eventfd wake-ups consumed */
	uint64_t wait_fallbacks;  /* completions found by the poll fallback, no call seen */
	uint64_t bad_len;         /* completions reporting more than the writable length */
};

/*
 * Allocate a queue in guest memory (split: descriptor table, avail and
 * used rings; packed: descriptor ring and both event structures; plus
 * one indirect table per descriptor when INDIRECT_DESC is in the
 * features) and create its kick and call eventfds.  Sends nothing.
 * NULL with errno: EINVAL (size, index, or a split queue while
 * VIRTIO_F_RING_PACKED is negotiated: the layout is per device), EEXIST
 * (index in use), EOPNOTSUPP (packed not negotiated), ENOMEM (guest
 * memory).  A hostile test that wants the other layout anyway can
 * change the features the rings honour with vuf_set_local_features().
 */
struct vuf_vq *vuf_vq_create(struct vuf *vuf, const struct vuf_vq_opts *opts);

/*
 * Start the queue on the back-end: SET_VRING_NUM, SET_VRING_BASE,
 * SET_VRING_ADDR (UVAs, log_guest_addr = GPA of the used ring),
 * SET_VRING_KICK, SET_VRING_CALL, and SET_VRING_ENABLE(1) if protocol
 * features were negotiated.  The base is vuf_vq_base().
 */
int vuf_vq_start(struct vuf_vq *vq);

/* vuf_vq_create + vuf_vq_start (destroyed again if the start fails). */
struct vuf_vq *vuf_vq_setup(struct vuf *vuf, unsigned int index, unsigned int size, bool packed);

/* Close the eventfds and free the queue's private state; sends nothing.  Accepts NULL. */
void vuf_vq_destroy(struct vuf_vq *vq);

/*
 * The SET_VRING_BASE value for (re)starting: the value of the last
 * GET_VRING_BASE if one was made since the last start; otherwise the
 * position the device has reached in the used ring (split: used->idx;
 * packed, in QEMU's encoding: (pos | wrap << 15) in both the low
 * (avail) and high (used) 16 bits), which is what QEMU sends after a
 * back-end crash.  A fresh queue gives 0 (split) or 0x80008000 (packed).
 */
uint32_t vuf_vq_base(struct vuf_vq *vq);

#define VUF_POST_INDIRECT (1u << 0) /* one indirect descriptor, if negotiated and it fits */
/* Split ring: the chain becomes visible to the device at the next
 * vuf_vq_kick() or post without this flag, or once a few such chains wait:
 * one avail->idx store per batch instead of one per chain (a store to a line
 * the device keeps reading).  Packed rings make every chain visible at once. */
#define VUF_POST_BATCH (1u << 1)

/*
 * Make a chain of nsegs segments available (not kicked; see VUF_POST_BATCH).  With
 * VUF_POST_INDIRECT and INDIRECT_DESC negotiated and nsegs <= the
 * indirect capacity, the chain takes a single ring descriptor.  Returns
 * 0, -ENOSPC if the ring has no room now, -EINVAL if it never will (nsegs
 * 0 or above the ring size), -EIO once the queue is broken.
 */
int vuf_vq_post_flags(struct vuf_vq *vq, const struct vuf_seg *segs, unsigned int nsegs,
		      uint64_t cookie, unsigned int flags);

static inline int vuf_vq_post(struct vuf_vq *vq, const struct vuf_seg *segs, unsigned int nsegs,
			      uint64_t cookie)
{
	return vuf_vq_post_flags(vq, segs, nsegs, cookie, 0);
}

/*
 * Notify the back-end of the chains posted since the last kick, unless
 * it suppressed notifications (split: VRING_USED_F_NO_NOTIFY, or
 * avail_event with EVENT_IDX; packed: device event suppression).
 * Returns 1 if it kicked, 0 if not needed, -errno if the eventfd write
 * failed.
 */
int vuf_vq_kick(struct vuf_vq *vq);
/* Kick unconditionally.  0 or -errno. */
int vuf_vq_kick_force(struct vuf_vq *vq);

/*
 * Take up to max completions from the used ring (in the order the device
 * wrote them), freeing their descriptors.  Returns the count (0 if none),
 * or -EIO if the device broke the protocol (id out of range or not in
 * flight, used index moved past what was posted); the queue is then
 * latched broken and vuf_vq_error() says why.
 */
int vuf_vq_reap(struct vuf_vq *vq, struct vuf_completion *out, unsigned int max);

/* True if a completion is waiting in the used ring. */
bool vuf_vq_pending(struct vuf_vq *vq);

/*
 * Ask the device for a call on the next completion (split: clear
 * VRING_AVAIL_F_NO_INTERRUPT or set used_event; packed: driver event
 * ENABLE or DESC).  Returns true if completions are already waiting, in
 * which case the caller must not sleep.  Queues start with calls enabled.
 */
bool vuf_vq_enable_cb(struct vuf_vq *vq);
/* Ask the device not to call (polling mode). */
void vuf_vq_disable_cb(struct vuf_vq *vq);

/*
 * Block until at least one completion is waiting: enables calls, sleeps
 * on the call eventfd, restores the previous call state.  Every
 * fallback_ms (vuf_vq_set_wait_fallback; default 100; 0: only once, at
 * the deadline) the ring is looked at even without a call; a completion
 * found that way counts in stats.wait_fallbacks (with 0, a non-zero
 * count means the back-end failed to call).  Returns 0, -ETIMEDOUT,
 * -EIO if the queue is broken.
 */
int vuf_vq_wait(struct vuf_vq *vq, int timeout_ms);
void vuf_vq_set_wait_fallback(struct vuf_vq *vq, int fallback_ms);

/*
 * Wait for the call eventfd itself (without looking at the ring) and
 * consume it: to check that the back-end signals.  0 or -ETIMEDOUT.
 */
int vuf_vq_wait_call(struct vuf_vq *vq, int timeout_ms);

/* Accessors. */
unsigned int vuf_vq_index(const struct vuf_vq *vq);
unsigned int vuf_vq_size(const struct vuf_vq *vq);
bool vuf_vq_is_packed(const struct vuf_vq *vq);
/* Ring descriptors free now. */
unsigned int vuf_vq_num_free(const struct vuf_vq *vq);
/* Chains posted and not yet reaped. */
unsigned int vuf_vq_inflight(const struct vuf_vq *vq);
int vuf_vq_kick_fd(const struct vuf_vq *vq);
int vuf_vq_call_fd(const struct vuf_vq *vq);
const struct vuf_vq_stats *vuf_vq_stats(const struct vuf_vq *vq);
/* Why the queue was latched broken, or NULL. */
const char *vuf_vq_error(const struct vuf_vq *vq);
/* Ring GPAs (split: desc, avail, used; packed: desc, driver event, device event). */
void vuf_vq_ring_gpas(const struct vuf_vq *vq, uint64_t *desc, uint64_t *driver,
		      uint64_t *device);

/*
 * Raw access for hostile tests and in-process fake devices.  A queue on
 * which the caller writes descriptors itself must not also be used with
 * vuf_vq_post: the descriptor table then belongs to the caller.
 */
struct vring_desc *vuf_vq_desc_split(struct vuf_vq *vq);
struct vring_avail *vuf_vq_avail_split(struct vuf_vq *vq);
struct vring_used *vuf_vq_used_split(struct vuf_vq *vq);
struct vring_packed_desc *vuf_vq_desc_packed(struct vuf_vq *vq);
struct vring_packed_desc_event *vuf_vq_driver_event(struct vuf_vq *vq);
struct vring_packed_desc_event *vuf_vq_device_event(struct vuf_vq *vq);

/*
 * Split: publish `head` in the avail ring (any value, even out of
 * range).  A head below the ring size is tracked, so that its completion
 * is reaped with `cookie` (its descriptors are not freed).  Not kicked.
 */
int vuf_vq_post_raw_head(struct vuf_vq *vq, uint16_t head, uint64_t cookie);

/*
 * Packed: write n descriptors to the next ring slots, as given, head
 * flags last.  Unless keep_flags, the AVAIL/USED bits of each are set
 * for the current wrap counter.  The id of the last descriptor, when
 * below the ring size and not in flight, is tracked with `cookie`.
 * -ENOSPC if fewer than n slots are free.  Not kicked.
 */
int vuf_vq_post_raw_packed(struct vuf_vq *vq, const struct vring_packed_desc *descs,
			   unsigned int n, uint64_t cookie, bool keep_flags);

/* ------------------------------------------------------------------ */
/* Back-end channel                                                   */
/* ------------------------------------------------------------------ */

/*
 * Create a socketpair and send one end with SET_BACKEND_REQ_FD; the
 * connection keeps the other (replacing a previous one).
 */
int vuf_open_backend_channel(struct vuf *vuf);

/* Our end of the back-end channel, or -1. */
int vuf_backend_channel_fd(const struct vuf *vuf);

/*
 * Receive one back-end initiated message (CONFIG_CHANGE_MSG...).  If it
 * has NEED_REPLY set, a u64 0 reply is sent before returning.  The
 * caller owns msg's fds.  0, -ETIMEDOUT, -ENOTCONN (no channel),
 * -ECONNRESET, -EBADMSG.
 */
int vuf_backend_channel_recv(struct vuf *vuf, struct vu_msg *msg, int timeout_ms);

#endif
