// SPDX-License-Identifier: MIT
/*
 * Device lifecycle: creation, queue start/stop, pause/resume around
 * changes that running queues would see, reset and disconnect, and the
 * CONFIG_CHANGE_MSG sender.  The message handlers are in handlers.c.
 *
 * Rule (DESIGN.md, "Threads and safety"): a queue is on its poller's list
 * only while started; anything a running queue reads is changed only
 * between vu_dev_pause() and vu_dev_resume().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dev_priv.h"
#include "vu_poller.h"

#define LIB_TRANSPORT_FEATURES                                                         \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_PACKED) |                 \
	 (1ull << VIRTIO_RING_F_EVENT_IDX) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |    \
	 (1ull << VU_F_PROTOCOL_FEATURES) | (1ull << VHOST_F_LOG_ALL))

#define LIB_PROTOCOL_FEATURES                                                          \
	((1ull << VU_PROTOCOL_F_MQ) | (1ull << VU_PROTOCOL_F_LOG_SHMFD) |               \
	 (1ull << VU_PROTOCOL_F_REPLY_ACK) | (1ull << VU_PROTOCOL_F_BACKEND_REQ) |      \
	 (1ull << VU_PROTOCOL_F_INFLIGHT_SHMFD) | (1ull << VU_PROTOCOL_F_RESET_DEVICE) | \
	 (1ull << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS) | (1ull << VU_PROTOCOL_F_STATUS))

struct vu_dev *vu_dev_create(const struct vu_dev_config *cfg)
{
	const struct vu_dev_ops *ops = cfg->ops;
	struct vu_dev *dev;

	if (!ops || !ops->queue_process || !cfg->num_queues ||
	    cfg->num_queues > VU_DEV_MAX_QUEUES || !cfg->pollers || !cfg->npollers) {
		errno = EINVAL;
		return NULL;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return NULL;
	snprintf(dev->name, sizeof(dev->name), "%s", cfg->name ? cfg->name : "vu");
	dev->ops = ops;
	dev->priv = cfg->priv;
	dev->pollers = cfg->pollers;
	dev->npollers = cfg->npollers;
	dev->num_queues = cfg->num_queues;
	dev->max_queue_size = cfg->max_queue_size ? cfg->max_queue_size : VU_VQ_MAX_SIZE;
	dev->sock = -1;
	dev->backend_req_fd = -1;
	dev->log_call_fd = -1;
	dev->inflight.fd = -1;
	dev->features_offered = (ops->features | LIB_TRANSPORT_FEATURES) & ~ops->transport_mask;
	dev->protocol_features_offered = LIB_PROTOCOL_FEATURES | ops->protocol_features;
	if (ops->get_config)
		dev->protocol_features_offered |= 1ull << VU_PROTOCOL_F_CONFIG;
	for (uint16_t i = 0; i < dev->num_queues; i++) {
		dev->vqs[i].poller = cfg->pollers[i % cfg->npollers];
		vu_vq_ctl_init(&dev->vqs[i], dev, i);
	}
	return dev;
}

void vu_dev_destroy(struct vu_dev *dev)
{
	if (!dev)
		return;
	vu_dev_disconnect(dev);
	free(dev);
}

void vu_dev_connect(struct vu_dev *dev, int sock)
{
	dev->sock = sock;
}

static bool vq_mapped(const struct vu_vq *vq)
{
	return vq->gdesc || vq->gpdesc;
}

static void wait_drained(struct vu_dev *dev)
{
	uint64_t start = vu_now_ns(), next_report = 5000000000ull;

	if (!dev->ops->queue_inflight)
		return;
	for (;;) {
		unsigned int busy = 0;

		for (uint16_t i = 0; i < dev->num_queues; i++)
			if (dev->vqs[i].started)
				busy += dev->ops->queue_inflight(dev, &dev->vqs[i]);
		if (!busy)
			return;
		if (vu_now_ns() - start > next_report) {
			vu_warn("%s: still waiting for %u requests in flight to complete", dev->name, busy);
			next_report += 5000000000ull;
		}
		struct timespec ts = { 0, 20000 };
		nanosleep(&ts, NULL);
	}
}

static void quiesce_pollers(struct vu_dev *dev)
{
	for (unsigned int i = 0; i < dev->npollers; i++)
		vu_poller_quiesce(dev->pollers[i]);
}

void vu_dev_pause(struct vu_dev *dev)
{
	for (uint16_t i = 0; i < dev->num_queues; i++)
		__atomic_store_n(&dev->vqs[i].runnable, false, __ATOMIC_SEQ_CST);
	quiesce_pollers(dev);
	wait_drained(dev);
	/* The pass that completed the last request also notified for it. */
	quiesce_pollers(dev);
	dev->paused = true;
}

void vu_dev_resume(struct vu_dev *dev)
{
	dev->paused = false;
	for (uint16_t i = 0; i < dev->num_queues; i++) {
		struct vu_vq *vq = &dev->vqs[i];
		bool run = vq->started && vq->enabled && !vq->broken && vq_mapped(vq);

		/* A queue that runs again is polled at once: a kick that came
		 * while it was stopped or disabled is not lost (A.10, C.27). */
		__atomic_store_n(&vq->runnable, run, __ATOMIC_SEQ_CST);
		if (run)
			vu_poller_wake(vq->poller);
	}
}

int dev_queue_start(struct vu_dev *dev, struct vu_vq *vq)
{
	int ret;

	if (vq->started)
		return 0;
	if (!vq->size || !vq->addr_set || !dev->mem) {
		vu_warn("%s queue %u: kicked before its size, addresses and memory were set",
			dev->name, vq->index);
		return -EINVAL;
	}
	vq->packed = vu_dev_has_feature(dev, VIRTIO_F_RING_PACKED);
	vq->event_idx = vu_dev_has_feature(dev, VIRTIO_RING_F_EVENT_IDX);
	vq->indirect = vu_dev_has_feature(dev, VIRTIO_RING_F_INDIRECT_DESC);
	vq->in_order = vu_dev_has_feature(dev, VIRTIO_F_IN_ORDER);
	vq->inflight = vu_dev_has_protocol_feature(dev, VU_PROTOCOL_F_INFLIGHT_SHMFD) &&
		       dev->inflight.map ? &dev->ivqs[vq->index] : NULL;
	ret = vu_vq_ctl_start(vq);
	if (ret) {
		vu_warn("%s queue %u: cannot start: %s", dev->name, vq->index, strerror(-ret));
		goto err_ring;
	}
	if (!vu_dev_has_feature(dev, VU_F_PROTOCOL_FEATURES))
		vq->enabled = true;
	if (dev->ops->queue_start) {
		ret = dev->ops->queue_start(dev, vq);
		if (ret)
			goto err_started;
	}
	ret = vu_poller_add_queue(vq->poller, vq);
	if (ret)
		goto err_device;
	vu_info("%s queue %u: started (%s ring of %u%s%s)", dev->name, vq->index,
		vq->packed ? "packed" : "split", vq->size, vq->event_idx ? ", event idx" : "",
		vq->inflight ? ", inflight tracking" : "");
	return 0;

err_device:
	if (dev->ops->queue_stop)
		dev->ops->queue_stop(dev, vq);
err_started:
	vq->started = false;
err_ring:
	/* A stopped queue is never stopped again: free the tracking state
	 * the start attached, or nothing would. */
	vu_inflight_queue_detach(&dev->ivqs[vq->index]);
	vq->inflight = NULL;
	return ret;
}

void dev_queue_stop(struct vu_dev *dev, struct vu_vq *vq)
{
	if (!vq->started)
		return;
	/* Caller paused the device: nothing of vq is in flight. */
	vu_poller_remove_queue(vq->poller, vq);
	if (dev->ops->queue_stop)
		dev->ops->queue_stop(dev, vq);
	vq->started = false;
	vq->runnable = false;
	vu_inflight_queue_detach(&dev->ivqs[vq->index]);
	vq->inflight = NULL;
}

void dev_reset_queues(struct vu_dev *dev)
{
	for (uint16_t i = 0; i < dev->num_queues; i++) {
		dev_queue_stop(dev, &dev->vqs[i]);
		vu_vq_ctl_reset(&dev->vqs[i]);
	}
}

void vu_dev_disconnect(struct vu_dev *dev)
{
	struct vu_mem *old_mem;

	vu_dev_pause(dev);
	dev_reset_queues(dev);
	old_mem = dev->mem;
	dev->mem = NULL;
	if (old_mem && dev->ops->mem_changed)
		dev->ops->mem_changed(dev);
	vu_mem_destroy(old_mem);
	vu_dirty_log_release(&dev->log);
	vu_inflight_area_release(&dev->inflight);
	vu_close_fd(&dev->log_call_fd);
	vu_close_fd(&dev->backend_req_fd);
	dev->owned = false;
	dev->features = 0;
	dev->features_set = false;
	dev->protocol_features = 0;
	dev->status = 0;
	dev->sock = -1;
	dev->paused = false;
	if (dev->ops->disconnected)
		dev->ops->disconnected(dev);
}

int vu_dev_notify_config_change(struct vu_dev *dev)
{
	struct vu_msg msg = {
		.hdr = { .request = VU_BACKEND_REQ_CONFIG_CHANGE_MSG, .flags = VU_VERSION },
	};
	int ret;

	if (dev->backend_req_fd < 0 || !vu_dev_has_protocol_feature(dev, VU_PROTOCOL_F_BACKEND_REQ))
		return -ENOTCONN;
	/* No reply is requested: the control thread must not block on the
	 * front-end, which may itself be waiting for us.  The channel is
	 * non-blocking (h_set_backend_req_fd); a Unix stream socket takes a
	 * message this small whole or not at all.  Dropping it when full
	 * loses nothing: the front-end has change messages left to read. */
	ret = vu_msg_send(dev->backend_req_fd, &msg);
	if (ret == -EAGAIN)
		vu_warn("%s: the front-end does not read its back-end channel: CONFIG_CHANGE_MSG dropped",
			dev->name);
	else if (ret)
		vu_warn("%s: CONFIG_CHANGE_MSG failed: %s", dev->name, strerror(-ret));
	return ret;
}
