// SPDX-License-Identifier: MIT
/*
 * The vhost-user message handlers, dispatched from one table indexed by
 * request number.
 *
 * Security model: the front-end is untrusted.  The dispatcher checks the
 * header version, the payload size and the number of descriptors against
 * the table before a handler runs; handlers check every index and value
 * before use; a message owns its descriptors and the dispatcher closes
 * whatever a handler did not take (SECURITY.md A.1-A.10).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "dev_priv.h"
#include "vu_poller.h"

struct handler {
	int (*fn)(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply);
	uint32_t size_min, size_max;   /* payload bytes accepted */
	uint8_t fds_min, fds_max;      /* descriptors accepted */
	bool owner;                    /* only after SET_OWNER */
	bool replies;                  /* answered even without REPLY_ACK */
};

static int reply_u64(struct vu_msg *reply, uint64_t v)
{
	reply->payload.u64 = v;
	reply->hdr.size = sizeof(uint64_t);
	return VU_HANDLED_REPLY;
}

/* The queue a message names, or NULL (logged) if out of range (A.4). */
static struct vu_vq *msg_vq(struct vu_dev *dev, uint64_t index, struct vu_msg *msg)
{
	if (index >= dev->num_queues) {
		vu_warn("%s: %s for queue %llu, but the device has %u queues", dev->name,
			vu_request_name(msg->hdr.request), (unsigned long long)index, dev->num_queues);
		return NULL;
	}
	return &dev->vqs[index];
}

static int h_get_features(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	(void)msg;
	return reply_u64(reply, dev->features_offered);
}

static int h_set_features(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	uint64_t f = msg->payload.u64, changed = f ^ dev->features;
	bool running = false;

	(void)reply;
	if (f & ~dev->features_offered) {
		vu_warn("%s: SET_FEATURES 0x%llx has bits 0x%llx that were not offered", dev->name,
			(unsigned long long)f, (unsigned long long)(f & ~dev->features_offered));
		return -EINVAL;
	}
	for (uint16_t i = 0; i < dev->num_queues; i++)
		running |= dev->vqs[i].started;
	/* Only dirty logging may change under running queues (A.10). */
	if (running && (changed & ~(1ull << VHOST_F_LOG_ALL))) {
		vu_warn("%s: SET_FEATURES changes 0x%llx while queues run", dev->name,
			(unsigned long long)changed);
		return -EBUSY;
	}
	vu_dev_pause(dev);
	dev->features = f;
	dev->features_set = true;
	if (dev->ops->features_set)
		dev->ops->features_set(dev, f);
	vu_dev_resume(dev);
	return VU_HANDLED;
}

static int h_set_owner(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	(void)msg;
	(void)reply;
	dev->owned = true;
	return VU_HANDLED;
}

static int h_reset_device(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	(void)msg;
	(void)reply;
	vu_dev_pause(dev);
	dev_reset_queues(dev);
	dev->features = 0;
	dev->features_set = false;
	dev->status = 0;
	vu_inflight_area_release(&dev->inflight);
	vu_dev_resume(dev);
	return VU_HANDLED;
}

static int h_get_protocol_features(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	(void)msg;
	return reply_u64(reply, dev->protocol_features_offered);
}

static int h_set_protocol_features(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	uint64_t f = msg->payload.u64;

	(void)reply;
	if (f & ~dev->protocol_features_offered) {
		vu_warn("%s: SET_PROTOCOL_FEATURES 0x%llx has bits 0x%llx that were not offered",
			dev->name, (unsigned long long)f,
			(unsigned long long)(f & ~dev->protocol_features_offered));
		return -EINVAL;
	}
	dev->protocol_features = f;
	return VU_HANDLED;
}

static int h_get_queue_num(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	(void)msg;
	return reply_u64(reply, dev->num_queues);
}

static int h_get_max_mem_slots(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	(void)dev;
	(void)msg;
	return reply_u64(reply, VU_MEM_MAX_SLOTS);
}

/*
 * Apply a change to the memory table with every queue paused and drained,
 * then translate every ring again: a ring left outside memory stays
 * unmapped and does not run (A.8).
 */
static void remap_queues(struct vu_dev *dev)
{
	for (uint16_t i = 0; i < dev->num_queues; i++) {
		struct vu_vq *vq = &dev->vqs[i];

		if (vq->addr_set && vu_vq_ctl_map(vq) && vq->started)
			vu_warn("%s queue %u: ring no longer in guest memory; queue stopped",
				dev->name, vq->index);
	}
	if (dev->ops->mem_changed)
		dev->ops->mem_changed(dev);
}

static int h_set_mem_table(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	const struct vu_mem_table_desc *t = &msg->payload.mem;
	struct vu_mem *mem, *old;
	int ret;

	(void)reply;
	if (t->nregions == 0 || t->nregions > VU_MEM_TABLE_MAX_REGIONS ||
	    msg->hdr.size < offsetof(struct vu_mem_table_desc, regions) +
				    t->nregions * sizeof(t->regions[0])) {
		vu_warn("%s: SET_MEM_TABLE with %u regions in %u bytes", dev->name, t->nregions,
			msg->hdr.size);
		return -EINVAL;
	}
	if (msg->nfds != t->nregions) {
		vu_warn("%s: SET_MEM_TABLE with %u regions but %u fds", dev->name, t->nregions,
			msg->nfds);
		return -EINVAL;
	}
	mem = vu_mem_create();
	if (!mem)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->nregions; i++) {
		ret = vu_mem_add(mem, &t->regions[i], vu_msg_take_fd(msg, i));
		if (ret) {
			vu_mem_destroy(mem);
			return ret;
		}
	}
	vu_dev_pause(dev);
	old = dev->mem;
	dev->mem = mem;
	remap_queues(dev);
	vu_dev_resume(dev);
	vu_mem_destroy(old);
	return VU_HANDLED;
}

static int h_add_mem_reg(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	int ret;

	(void)reply;
	if (!dev->mem) {
		dev->mem = vu_mem_create();
		if (!dev->mem)
			return -ENOMEM;
	}
	vu_dev_pause(dev);
	ret = vu_mem_add_ref(dev->mem, &msg->payload.mem_reg.region, vu_msg_take_fd(msg, 0));
	if (ret == 0)
		remap_queues(dev);
	vu_dev_resume(dev);
	return ret;
}

static int h_rem_mem_reg(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	int ret;

	(void)reply;
	if (!dev->mem)
		return -ENOENT;
	vu_dev_pause(dev);
	ret = vu_mem_remove(dev->mem, &msg->payload.mem_reg.region);
	if (ret == 0)
		remap_queues(dev);
	vu_dev_resume(dev);
	return ret;
}

static uint64_t mem_end(const struct vu_mem *mem)
{
	uint64_t end = 0;

	for (unsigned int i = 0; mem && i < mem->nregions; i++) {
		const struct vu_mem_region *r = &mem->regions[i];
		/* A region may end exactly at 2^64: saturate, never wrap. */
		uint64_t e = r->size > UINT64_MAX - r->gpa ? UINT64_MAX : r->gpa + r->size;

		if (e > end)
			end = e;
	}
	return end;
}

static int h_set_log_base(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	struct vu_dirty_log log = { 0 };
	int ret;

	ret = vu_dirty_log_set(&log, &msg->payload.log, vu_msg_take_fd(msg, 0), mem_end(dev->mem));
	if (ret)
		return ret;
	vu_dev_pause(dev);
	vu_dirty_log_release(&dev->log);
	dev->log = log;
	vu_dev_resume(dev);
	/* With LOG_SHMFD the front-end waits for an empty reply. */
	reply->hdr.size = 0;
	return VU_HANDLED_REPLY;
}

static int h_set_log_fd(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	(void)reply;
	vu_close_fd(&dev->log_call_fd);
	dev->log_call_fd = vu_msg_take_fd(msg, 0);
	return VU_HANDLED;
}

static int h_set_vring_num(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	struct vu_vq *vq = msg_vq(dev, msg->payload.state.index, msg);
	uint32_t num = msg->payload.state.num;
	bool packed = vu_dev_has_feature(dev, VIRTIO_F_RING_PACKED);

	(void)reply;
	if (!vq)
		return -EINVAL;
	if (num == 0 || num > dev->max_queue_size || (!packed && (num & (num - 1)))) {
		vu_warn("%s queue %u: invalid ring size %u (max %u%s)", dev->name, vq->index, num,
			dev->max_queue_size, packed ? "" : ", power of two");
		return -EINVAL;
	}
	if (vq->started) {
		vu_warn("%s queue %u: SET_VRING_NUM while the queue runs", dev->name, vq->index);
		return -EBUSY;
	}
	vq->size = num;
	return VU_HANDLED;
}

static int h_set_vring_addr(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	const struct vhost_vring_addr *a = &msg->payload.addr;
	struct vu_vq *vq = msg_vq(dev, a->index, msg);
	int ret = 0;

	(void)reply;
	if (!vq)
		return -EINVAL;
	vu_dev_pause(dev);
	vq->addr = *a;
	vq->addr_set = true;
	vq->log_used = a->flags & (1u << VHOST_VRING_F_LOG);
	vq->log_guest_addr = a->log_guest_addr;
	vq->packed = vu_dev_has_feature(dev, VIRTIO_F_RING_PACKED);
	if (dev->mem && vq->size) {
		ret = vu_vq_ctl_map(vq);
		if (ret)
			vq->addr_set = false;
	}
	/* A kick fd that came first is not lost: start now (A.10). */
	if (ret == 0 && !vq->started && vq->kick_fd >= 0 && dev->mem && vq->size)
		ret = dev_queue_start(dev, vq);
	vu_dev_resume(dev);
	return ret;
}

static int h_set_vring_base(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	struct vu_vq *vq = msg_vq(dev, msg->payload.state.index, msg);

	(void)reply;
	if (!vq)
		return -EINVAL;
	if (vq->started) {
		vu_warn("%s queue %u: SET_VRING_BASE while the queue runs", dev->name, vq->index);
		return -EBUSY;
	}
	vq->packed = vu_dev_has_feature(dev, VIRTIO_F_RING_PACKED);
	vu_vq_ctl_set_base(vq, msg->payload.state.num);
	return VU_HANDLED;
}

static int h_get_vring_base(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	struct vu_vq *vq = msg_vq(dev, msg->payload.state.index, msg);

	if (!vq)
		return -EINVAL;
	/* Stopping drains the device's requests, so the base is exact. */
	vu_dev_pause(dev);
	dev_queue_stop(dev, vq);
	reply->payload.state.index = vq->index;
	reply->payload.state.num = vu_vq_ctl_get_base(vq);
	reply->hdr.size = sizeof(reply->payload.state);
	vu_close_fd(&vq->kick_fd);
	vu_close_fd(&vq->call_fd);
	vu_vq_ctl_unmap(vq);
	vu_dev_resume(dev);
	return VU_HANDLED_REPLY;
}

/* SET_VRING_KICK/CALL/ERR: u64 = index | NOFD flag; fd present iff no flag. */
static int vring_fd(struct vu_dev *dev, struct vu_msg *msg, struct vu_vq **vq, int *fd)
{
	uint64_t v = msg->payload.u64;
	bool nofd = v & VU_VRING_NOFD_MASK;

	if (v & ~(VU_VRING_IDX_MASK | VU_VRING_NOFD_MASK)) {
		vu_warn("%s: %s payload 0x%llx has unknown bits", dev->name,
			vu_request_name(msg->hdr.request), (unsigned long long)v);
		return -EINVAL;
	}
	*vq = msg_vq(dev, v & VU_VRING_IDX_MASK, msg);
	if (!*vq)
		return -EINVAL;
	if (nofd != (msg->nfds == 0)) {
		vu_warn("%s queue %u: %s with %u fds but NOFD %s", dev->name, (*vq)->index,
			vu_request_name(msg->hdr.request), msg->nfds, nofd ? "set" : "clear");
		return -EINVAL;
	}
	*fd = nofd ? -1 : vu_msg_take_fd(msg, 0);
	return 0;
}

static int h_set_vring_kick(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	struct vu_vq *vq;
	int fd, old, ret;

	(void)reply;
	ret = vring_fd(dev, msg, &vq, &fd);
	if (ret)
		return ret;
	vu_dev_pause(dev);
	old = vq->kick_fd;
	vq->kick_fd = fd;
	if (vq->started)
		ret = vu_poller_update_kick(vq->poller, vq, old);
	else
		ret = dev_queue_start(dev, vq);
	if (old >= 0)
		close(old);
	vu_dev_resume(dev);
	return ret;
}

static int h_set_vring_call(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	struct vu_vq *vq;
	int fd, ret;

	(void)reply;
	ret = vring_fd(dev, msg, &vq, &fd);
	if (ret)
		return ret;
	vu_dev_pause(dev);
	vu_close_fd(&vq->call_fd);
	vq->call_fd = fd;
	vu_dev_resume(dev);
	return VU_HANDLED;
}

static int h_set_vring_err(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	struct vu_vq *vq;
	int fd, ret;

	(void)reply;
	ret = vring_fd(dev, msg, &vq, &fd);
	if (ret)
		return ret;
	vu_close_fd(&vq->err_fd);
	vq->err_fd = fd;
	return VU_HANDLED;
}

static int h_set_vring_enable(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	struct vu_vq *vq = msg_vq(dev, msg->payload.state.index, msg);
	uint32_t num = msg->payload.state.num;

	(void)reply;
	if (!vq)
		return -EINVAL;
	if (num > 1) {
		vu_warn("%s queue %u: SET_VRING_ENABLE %u", dev->name, vq->index, num);
		return -EINVAL;
	}
	vu_dev_pause(dev);
	vq->enabled = num;
	vu_dev_resume(dev);
	return VU_HANDLED;
}

static int h_vring_kick(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	struct vu_vq *vq = msg_vq(dev, msg->payload.state.index, msg);

	(void)reply;
	if (!vq)
		return -EINVAL;
	if (vq->started)
		vu_poller_wake(vq->poller);
	return VU_HANDLED;
}

static int h_send_rarp(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	uint8_t mac[6];

	(void)reply;
	if (!dev->ops->send_rarp)
		return -ENOTSUP;
	memcpy(mac, &msg->payload.u64, sizeof(mac));
	return dev->ops->send_rarp(dev, mac);
}

static int h_net_set_mtu(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	(void)reply;
	if (!dev->ops->set_mtu)
		return -ENOTSUP;
	if (msg->payload.u64 > UINT16_MAX)
		return -EINVAL;
	return dev->ops->set_mtu(dev, (uint16_t)msg->payload.u64);
}

static int h_set_backend_req_fd(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	int fd = vu_msg_take_fd(msg, 0), flags;

	(void)reply;
	/* Non-blocking: the control thread never waits for the front-end to
	 * read this channel (a stopped or hostile front-end would otherwise
	 * hang the control path, signals included, once the socket buffer
	 * is full).  A message that does not fit is dropped. */
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		vu_warn("%s: back-end channel fd: %s", dev->name, strerror(errno));
		close(fd);
		return -EINVAL;
	}
	vu_close_fd(&dev->backend_req_fd);
	dev->backend_req_fd = fd;
	return VU_HANDLED;
}

static int h_get_config(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	const struct vu_config_desc *c = &msg->payload.config;
	uint8_t space[VU_MAX_CONFIG_SIZE] = { 0 };
	uint32_t len;

	if (!dev->ops->get_config)
		return -ENOTSUP;
	if (c->size > VU_MAX_CONFIG_SIZE || c->offset > VU_MAX_CONFIG_SIZE - c->size) {
		vu_warn("%s: GET_CONFIG offset %u size %u outside the config space", dev->name,
			c->offset, c->size);
		return -EINVAL;
	}
	len = dev->ops->get_config(dev, space, sizeof(space));
	if (c->offset + c->size > len)
		vu_dp_debug("%s: GET_CONFIG reads past the %u bytes of config", dev->name, len);
	reply->payload.config.offset = c->offset;
	reply->payload.config.size = c->size;
	reply->payload.config.flags = c->flags;
	memcpy(reply->payload.config.region, space + c->offset, c->size);
	reply->hdr.size = VU_CONFIG_HDR_SIZE + c->size;
	return VU_HANDLED_REPLY;
}

static int h_set_config(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	const struct vu_config_desc *c = &msg->payload.config;

	(void)reply;
	if (c->size > VU_MAX_CONFIG_SIZE || c->offset > VU_MAX_CONFIG_SIZE - c->size ||
	    msg->hdr.size < VU_CONFIG_HDR_SIZE + c->size) {
		vu_warn("%s: SET_CONFIG offset %u size %u in %u bytes", dev->name, c->offset,
			c->size, msg->hdr.size);
		return -EINVAL;
	}
	if (!dev->ops->set_config)
		return -ENOTSUP;
	return dev->ops->set_config(dev, c->region, c->offset, c->size, c->flags);
}

/*
 * A started queue tracks its requests in the current inflight area, which
 * must not be unmapped under it (A.3): the area is replaced only while
 * every queue is stopped, as QEMU does.
 */
static int inflight_area_busy(struct vu_dev *dev, const struct vu_msg *msg)
{
	for (uint16_t i = 0; i < dev->num_queues; i++) {
		if (dev->vqs[i].started) {
			vu_warn("%s: %s while queue %u runs", dev->name,
				vu_request_name(msg->hdr.request), i);
			return -EBUSY;
		}
	}
	return 0;
}

static int h_get_inflight_fd(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	const struct vu_inflight_desc *d = &msg->payload.inflight;
	struct vu_inflight_area area = { .fd = -1 };
	int ret;

	if (d->num_queues == 0 || d->num_queues > dev->num_queues || d->queue_size == 0 ||
	    d->queue_size > dev->max_queue_size) {
		vu_warn("%s: GET_INFLIGHT_FD for %u queues of %u (device: %u queues of at most %u)",
			dev->name, d->num_queues, d->queue_size, dev->num_queues, dev->max_queue_size);
		return -EINVAL;
	}
	ret = inflight_area_busy(dev, msg);
	if (ret)
		return ret;
	ret = vu_inflight_area_create(&area, d->num_queues, d->queue_size, &reply->payload.inflight);
	if (ret)
		return ret;
	vu_dev_pause(dev);
	vu_inflight_area_release(&dev->inflight);
	dev->inflight = area;
	vu_dev_resume(dev);
	reply->hdr.size = sizeof(reply->payload.inflight);
	reply->fds[0] = area.fd;       /* still ours: sent, not given away */
	reply->nfds = 1;
	return VU_HANDLED_REPLY;
}

static int h_set_inflight_fd(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	const struct vu_inflight_desc *d = &msg->payload.inflight;
	struct vu_inflight_area area = { .fd = -1 };
	int ret;

	(void)reply;
	if (d->num_queues == 0 || d->num_queues > dev->num_queues || d->queue_size == 0 ||
	    d->queue_size > dev->max_queue_size) {
		vu_warn("%s: SET_INFLIGHT_FD for %u queues of %u (device: %u queues of at most %u)",
			dev->name, d->num_queues, d->queue_size, dev->num_queues, dev->max_queue_size);
		return -EINVAL;
	}
	ret = inflight_area_busy(dev, msg);
	if (ret)
		return ret;
	ret = vu_inflight_area_map(&area, d, vu_msg_take_fd(msg, 0));
	if (ret)
		return ret;
	vu_dev_pause(dev);
	vu_inflight_area_release(&dev->inflight);
	dev->inflight = area;
	vu_dev_resume(dev);
	return VU_HANDLED;
}

static int h_set_status(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	(void)reply;
	if (msg->payload.u64 > UINT8_MAX)
		return -EINVAL;
	dev->status = (uint8_t)msg->payload.u64;
	return VU_HANDLED;
}

static int h_get_status(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	(void)msg;
	return reply_u64(reply, dev->status);
}

#define U64 sizeof(uint64_t), sizeof(uint64_t)
#define STATE sizeof(struct vhost_vring_state), sizeof(struct vhost_vring_state)
#define NONE 0, 0

static const struct handler handlers[VU_REQ_MAX] = {
	[VU_REQ_GET_FEATURES]          = { h_get_features, NONE, 0, 0, false, true },
	[VU_REQ_SET_FEATURES]          = { h_set_features, U64, 0, 0, true, false },
	[VU_REQ_SET_OWNER]             = { h_set_owner, NONE, 0, 0, false, false },
	[VU_REQ_RESET_OWNER]           = { h_reset_device, NONE, 0, 0, false, false },
	[VU_REQ_SET_MEM_TABLE]         = { h_set_mem_table, 8 + sizeof(struct vu_mem_region_desc),
					   sizeof(struct vu_mem_table_desc), 1, VU_MEM_TABLE_MAX_REGIONS,
					   true, false },
	[VU_REQ_SET_LOG_BASE]          = { h_set_log_base, sizeof(struct vu_log_desc),
					   sizeof(struct vu_log_desc), 1, 1, true, true },
	[VU_REQ_SET_LOG_FD]            = { h_set_log_fd, 0, sizeof(uint64_t), 1, 1, true, false },
	[VU_REQ_SET_VRING_NUM]         = { h_set_vring_num, STATE, 0, 0, true, false },
	[VU_REQ_SET_VRING_ADDR]        = { h_set_vring_addr, sizeof(struct vhost_vring_addr),
					   sizeof(struct vhost_vring_addr), 0, 0, true, false },
	[VU_REQ_SET_VRING_BASE]        = { h_set_vring_base, STATE, 0, 0, true, false },
	[VU_REQ_GET_VRING_BASE]        = { h_get_vring_base, STATE, 0, 0, true, true },
	[VU_REQ_SET_VRING_KICK]        = { h_set_vring_kick, U64, 0, 1, true, false },
	[VU_REQ_SET_VRING_CALL]        = { h_set_vring_call, U64, 0, 1, true, false },
	[VU_REQ_SET_VRING_ERR]         = { h_set_vring_err, U64, 0, 1, true, false },
	[VU_REQ_GET_PROTOCOL_FEATURES] = { h_get_protocol_features, NONE, 0, 0, false, true },
	[VU_REQ_SET_PROTOCOL_FEATURES] = { h_set_protocol_features, U64, 0, 0, false, false },
	[VU_REQ_GET_QUEUE_NUM]         = { h_get_queue_num, NONE, 0, 0, false, true },
	[VU_REQ_SET_VRING_ENABLE]      = { h_set_vring_enable, STATE, 0, 0, true, false },
	[VU_REQ_SEND_RARP]             = { h_send_rarp, U64, 0, 0, true, false },
	[VU_REQ_NET_SET_MTU]           = { h_net_set_mtu, U64, 0, 0, true, false },
	[VU_REQ_SET_BACKEND_REQ_FD]    = { h_set_backend_req_fd, 0, sizeof(uint64_t), 1, 1, false, false },
	[VU_REQ_GET_CONFIG]            = { h_get_config, VU_CONFIG_HDR_SIZE, sizeof(struct vu_config_desc),
					   0, 0, false, true },
	[VU_REQ_SET_CONFIG]            = { h_set_config, VU_CONFIG_HDR_SIZE, sizeof(struct vu_config_desc),
					   0, 0, false, false },
	[VU_REQ_GET_INFLIGHT_FD]       = { h_get_inflight_fd, sizeof(struct vu_inflight_desc),
					   sizeof(struct vu_inflight_desc), 0, 0, true, true },
	[VU_REQ_SET_INFLIGHT_FD]       = { h_set_inflight_fd, sizeof(struct vu_inflight_desc),
					   sizeof(struct vu_inflight_desc), 1, 1, true, false },
	[VU_REQ_RESET_DEVICE]          = { h_reset_device, NONE, 0, 0, false, false },
	[VU_REQ_VRING_KICK]            = { h_vring_kick, STATE, 0, 0, true, false },
	[VU_REQ_GET_MAX_MEM_SLOTS]     = { h_get_max_mem_slots, NONE, 0, 0, false, true },
	[VU_REQ_ADD_MEM_REG]           = { h_add_mem_reg, sizeof(struct vu_single_mem_region),
					   sizeof(struct vu_single_mem_region), 1, 1, true, false },
	[VU_REQ_REM_MEM_REG]           = { h_rem_mem_reg, sizeof(struct vu_single_mem_region),
					   sizeof(struct vu_single_mem_region), 0, 1, true, false },
	[VU_REQ_SET_STATUS]            = { h_set_status, U64, 0, 0, false, false },
	[VU_REQ_GET_STATUS]            = { h_get_status, NONE, 0, 0, false, true },
	/* Refused (not offered), but the front-end waits for their answer. */
	[VU_REQ_IOTLB_MSG]             = { .replies = true },
	[VU_REQ_POSTCOPY_ADVISE]       = { .replies = true },
	[VU_REQ_GET_SHARED_OBJECT]     = { .replies = true },
	[VU_REQ_SET_DEVICE_STATE_FD]   = { .replies = true },
	[VU_REQ_CHECK_DEVICE_STATE]    = { .replies = true },
};

static int check_msg(struct vu_dev *dev, const struct vu_msg *msg, const struct handler *h)
{
	const char *name = vu_request_name(msg->hdr.request);

	if ((msg->hdr.flags & VU_FLAG_VERSION_MASK) != VU_VERSION) {
		vu_warn("%s: %s with version %u", dev->name, name,
			msg->hdr.flags & VU_FLAG_VERSION_MASK);
		return -EPROTO;
	}
	if (!h->fn) {
		vu_warn("%s: request %s (%u) is not supported", dev->name, name, msg->hdr.request);
		return -ENOTSUP;
	}
	if (msg->hdr.size < h->size_min || msg->hdr.size > h->size_max) {
		vu_warn("%s: %s with a payload of %u bytes (expected %u..%u)", dev->name, name,
			msg->hdr.size, h->size_min, h->size_max);
		return -EINVAL;
	}
	if (msg->nfds < h->fds_min || msg->nfds > h->fds_max) {
		vu_warn("%s: %s with %u fds (expected %u..%u)", dev->name, name, msg->nfds,
			h->fds_min, h->fds_max);
		return -EINVAL;
	}
	if (h->owner && !dev->owned) {
		vu_warn("%s: %s before SET_OWNER", dev->name, name);
		return -EPERM;
	}
	return 0;
}

int vu_dev_handle_msg(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	uint32_t req = msg->hdr.request;
	static const struct handler none;
	const struct handler *h = req < VU_REQ_MAX ? &handlers[req] : &none;
	bool ack = (msg->hdr.flags & VU_FLAG_NEED_REPLY) &&
		   vu_dev_has_protocol_feature(dev, VU_PROTOCOL_F_REPLY_ACK);
	int ret;

	memset(&reply->hdr, 0, sizeof(reply->hdr));
	reply->nfds = 0;
	ret = check_msg(dev, msg, h);
	if (ret == 0)
		ret = h->fn(dev, msg, reply);
	vu_msg_close_fds(msg);

	reply->hdr.request = req;
	reply->hdr.flags = VU_VERSION | VU_FLAG_REPLY;
	if (ret == VU_HANDLED_REPLY)
		return VU_HANDLED_REPLY;
	if (ret < 0 && req == VU_REQ_GET_CONFIG) {
		/* The spec's error answer: an empty payload. */
		reply->hdr.size = 0;
		return VU_HANDLED_REPLY;
	}
	if (ret < 0 && h->replies) {
		/* No answer can be right: end the connection (A.1). */
		vu_warn("%s: %s failed (%s); closing the connection", dev->name,
			vu_request_name(req), strerror(-ret));
		return ret;
	}
	if (ret < 0 && ret != -ENOTSUP && !ack)
		vu_warn("%s: %s failed: %s", dev->name, vu_request_name(req), strerror(-ret));
	if (ack)
		return reply_u64(reply, ret < 0 ? (uint64_t)-ret : 0);
	return VU_HANDLED;
}
