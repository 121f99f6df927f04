/* SPDX-License-Identifier: MIT */
/*
 * The device state machine of a vhost-user backend: features, owner,
 * memory table, vring setup, enable/disable, status, reset, config space,
 * inflight area and dirty log.  One vu_dev per frontend connection slot;
 * a device (blk, net) plugs in through struct vu_dev_ops and sees only
 * started queues and chains.
 *
 * Message handlers live in device.c (state) and are dispatched from one
 * table in handlers.c indexed by request number.  Everything here runs
 * on the control thread unless said otherwise.
 */
#ifndef VU_DEV_H
#define VU_DEV_H

#include <stdbool.h>
#include <stdint.h>

#include "vu_dirty.h"
#include "vu_inflight.h"
#include "vu_mem.h"
#include "vu_msg.h"
#include "vu_vq.h"

struct vu_poller;

#define VU_DEV_MAX_QUEUES 64

struct vu_dev_ops {
	/* Virtio feature bits of the device; the library adds the transport
	 * bits it implements (VERSION_1, RING_PACKED, EVENT_IDX, INDIRECT_DESC,
	 * PROTOCOL_FEATURES, LOG_ALL) unless masked in transport_mask. */
	uint64_t features;
	uint64_t transport_mask;
	/* Protocol features the device adds (RARP, NET_MTU); the library
	 * offers its own set. */
	uint64_t protocol_features;

	/* Copy the config space (len bytes at most) into buf; returns its size. */
	uint32_t (*get_config)(struct vu_dev *dev, uint8_t *buf, uint32_t len);
	/* Front-end writes config; 0 or -errno.  NULL: writes refused. */
	int (*set_config)(struct vu_dev *dev, const uint8_t *data, uint32_t offset,
			  uint32_t size, uint32_t flags);
	/* SET_FEATURES accepted (optional). */
	void (*features_set)(struct vu_dev *dev, uint64_t features);

	/* A queue becomes runnable / stops (queue quiesced, on control thread).
	 * queue_start may refuse with -errno (the queue stays stopped). */
	int (*queue_start)(struct vu_dev *dev, struct vu_vq *vq);
	void (*queue_stop)(struct vu_dev *dev, struct vu_vq *vq);
	/* Poller: take and handle up to budget chains; returns the count. */
	unsigned int (*queue_process)(struct vu_dev *dev, struct vu_vq *vq, unsigned int budget);
	/* Any thread: requests of vq the device still holds (0 when idle). */
	unsigned int (*queue_inflight)(struct vu_dev *dev, struct vu_vq *vq);
	/* Poller, before it sleeps (optional): whether vq needs a kick to
	 * wake it.  If not, the guest is not asked to kick vq and buffers
	 * waiting there do not keep the poller awake (a net RX queue with
	 * nothing to deliver).  NULL: every queue does. */
	bool (*queue_needs_kick)(struct vu_dev *dev, struct vu_vq *vq);

	/* The memory table changed (all queues quiesced and drained); also
	 * after a disconnect, with dev->mem NULL. */
	void (*mem_changed)(struct vu_dev *dev);
	/* The front-end went away; device returns to its initial state. */
	void (*disconnected)(struct vu_dev *dev);

	/* Net only (optional). */
	int (*send_rarp)(struct vu_dev *dev, const uint8_t mac[6]);
	int (*set_mtu)(struct vu_dev *dev, uint16_t mtu);
};

struct vu_dev_config {
	const char *name;               /* for log lines */
	uint16_t num_queues;            /* queues offered */
	uint16_t max_queue_size;        /* largest SET_VRING_NUM accepted; 0 = 32768 */
	struct vu_poller **pollers;     /* queue i runs on pollers[i % npollers] */
	unsigned int npollers;
	const struct vu_dev_ops *ops;
	void *priv;
};

struct vu_dev {
	char name[64];
	const struct vu_dev_ops *ops;
	void *priv;
	struct vu_poller **pollers;
	unsigned int npollers;

	int sock;                  /* connection to the front-end, -1 if none */
	int backend_req_fd;        /* BACKEND_REQ channel, -1 if none */
	bool owned;                /* SET_OWNER received */
	uint64_t features_offered;
	uint64_t features;         /* acked by SET_FEATURES */
	bool features_set;
	uint64_t protocol_features_offered;
	uint64_t protocol_features;
	uint8_t status;

	struct vu_mem *mem;
	struct vu_dirty_log log;
	int log_call_fd;
	struct vu_inflight_area inflight;

	uint16_t num_queues;
	uint16_t max_queue_size;
	struct vu_vq vqs[VU_DEV_MAX_QUEUES];
	struct vu_inflight_queue ivqs[VU_DEV_MAX_QUEUES];
	bool paused;
};

/*
 * Create a device with its queues stopped.  Returns NULL with errno set
 * (EINVAL for a bad config, ENOMEM).
 */
struct vu_dev *vu_dev_create(const struct vu_dev_config *cfg);

/* Disconnect if connected, free everything.  Accepts NULL. */
void vu_dev_destroy(struct vu_dev *dev);

/*
 * Handle one message from the front-end and, where one is due, write the
 * reply into *reply (hdr.size, payload).  Returns:
 *   VU_HANDLED        nothing to send
 *   VU_HANDLED_REPLY  send *reply
 *   negative errno    protocol error that ends the connection
 * Unconsumed fds of msg are closed.  REPLY_ACK is handled here.
 */
#define VU_HANDLED 0
#define VU_HANDLED_REPLY 1
int vu_dev_handle_msg(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply);

/* A front-end connected on sock (the device does not own the socket). */
void vu_dev_connect(struct vu_dev *dev, int sock);

/*
 * The front-end disconnected: stop and drain every queue, release every
 * mapping and fd it gave (SECURITY.md D.29), return to the initial state.
 */
void vu_dev_disconnect(struct vu_dev *dev);

/*
 * Stop the pollers from touching any queue and wait until the device has
 * no request in flight; vu_dev_resume() lets the started queues run again
 * (each is checked once without waiting for a kick).  Nestable: no.
 */
void vu_dev_pause(struct vu_dev *dev);
void vu_dev_resume(struct vu_dev *dev);

/*
 * Tell the front-end the config space changed (CONFIG_CHANGE_MSG on the
 * BACKEND_REQ channel).  Never blocks.  Returns 0, -ENOTCONN without a
 * channel, -EAGAIN if the front-end left the channel full (the message
 * is dropped; it has unread ones), -errno.
 */
int vu_dev_notify_config_change(struct vu_dev *dev);

static inline bool vu_dev_has_feature(const struct vu_dev *dev, unsigned int bit)
{
	return dev->features & (1ull << bit);
}

static inline bool vu_dev_has_protocol_feature(const struct vu_dev *dev, unsigned int bit)
{
	return dev->protocol_features & (1ull << bit);
}

#endif
