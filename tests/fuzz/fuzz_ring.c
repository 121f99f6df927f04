// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the ring walkers (common/vq_split.c,
 * common/vq_packed.c, and the inflight tracking and dirty logging they
 * drive): the input fills the driver's side of one queue in fake guest
 * memory and then acts as the driver, between rounds in which the device
 * pops, completes and notifies (SECURITY.md B.11-B.17, B.20, C.26, A.6).
 *
 * Guest memory: one 128 KiB memfd mapped as two regions adjacent in guest
 * physical space (a buffer may span them: two iovecs) and far apart in
 * front-end virtual space:
 *   gpa 0x00000-0x0ffff  region 0: the ring (descriptors at 0x0000,
 *                        available ring / driver event area at 0x4000,
 *                        used ring / device event area at 0x5000)
 *   gpa 0x10000-0x1ffff  region 1: buffers and indirect tables
 * The queue is set up and torn down with real messages on every input.
 *
 * Input:
 *   u8  cfg       bit 0 packed, 1 EVENT_IDX, 2 INDIRECT_DESC, 3 dirty log,
 *                 4 inflight tracking, 5 a call eventfd
 *   u16 qsize     split: 1 << (qsize % 11); packed: 1 + qsize % 1024
 *   u32 base      SET_VRING_BASE (packed: wrap counters in bits 15, 31)
 *   u8  iovs      iovec capacity of a chain: 1 + iovs % 32
 *   then, each part as far as the input goes (the rest stays zero):
 *     the available ring (split) or driver event area (packed),
 *     the descriptor table,
 *     the used ring's flags and idx (split),
 *     the queue's inflight region (with inflight tracking),
 *     the first 1 KiB of region 1 (indirect tables),
 *   then 4-byte driver actions {u8 k, u8 x, u16 v} until the input ends:
 *     k & 3 == 0: a device round: pop up to x % 16 + 1 chains (held until
 *                 completed); if k & 4, complete every held chain, newest
 *                 first, with written = 0, in_len, in_len / 2 or v
 *                 (by k >> 3 & 3); notify
 *     k & 3 == 1: store v at u16 offset (k >> 2) << 8 | x of the driver
 *                 area (avail ring / driver event area)
 *     k & 3 == 2: store v at u16 offset (k >> 2) << 8 | x of the
 *                 descriptor table
 *     k & 3 == 3: the device enables notifications (before sleeping) and
 *                 disables them again if work is pending
 * Finally the device drains the queue, completes everything, stops it
 * (GET_VRING_BASE) and the front-end disconnects; nothing may leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "fuzz_dev.h"
#include "vu_dev.h"

#define R_SIZE        0x10000ull
#define R0_UVA        0x7e0000000000ull
#define R1_GPA        0x10000ull
#define R1_UVA        0x7e0000100000ull
#define GUEST_SIZE    (2 * R_SIZE)
#define DESC_GPA      0x0000ull
#define DRIVER_GPA    0x4000ull
#define DEVICE_GPA    0x5000ull
#define INDIRECT_LEN  0x400u
#define MAX_QSIZE     1024u
#define MAX_IOV       32
#define MAX_HELD      32
#define MAX_POPS      4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the device and its guest ----------------------------------------------- */

static struct {
	struct fuzz_dev d;      /* the guest's view: gpa g at d.gmem + g */
	struct vu_msg msg, reply;
} F;

static unsigned int r_queue_process(struct vu_dev *dev, struct vu_vq *vq, unsigned int budget)
{
	(void)dev;
	(void)vq;
	(void)budget;
	return 0;
}

static const struct vu_dev_ops ring_ops = {
	.features = 1ull << 1,
	.queue_process = r_queue_process,
};

static void init(void)
{
	struct vu_dev_config dc = { .name = "fuzz", .num_queues = 1,
				    .max_queue_size = MAX_QSIZE, .ops = &ring_ops };

	fuzz_dev_init(&F.d, &dc, GUEST_SIZE);
}

/* Send a message; returns vu_dev_handle_msg()'s result. */
static int send_msg(uint32_t req, const void *payload, uint32_t len, int fd)
{
	struct vu_msg *m = &F.msg;

	memset(&m->hdr, 0, sizeof(m->hdr));
	m->hdr.request = req;
	m->hdr.flags = VU_VERSION;
	m->hdr.size = len;
	if (len)
		memcpy(&m->payload, payload, len);
	m->nfds = 0;
	if (fd >= 0)
		m->fds[m->nfds++] = fd;
	return vu_dev_handle_msg(F.d.dev, m, &F.reply);
}

/* SET_MEM_TABLE with an fd of the guest memory file for each region. */
static int send_mem_table(const struct vu_mem_table_desc *t)
{
	struct vu_msg *m = &F.msg;

	memset(&m->hdr, 0, sizeof(m->hdr));
	m->hdr.request = VU_REQ_SET_MEM_TABLE;
	m->hdr.flags = VU_VERSION;
	m->hdr.size = (uint32_t)(offsetof(struct vu_mem_table_desc, regions) +
				 t->nregions * sizeof(t->regions[0]));
	memcpy(&m->payload.mem, t, m->hdr.size);
	for (m->nfds = 0; m->nfds < t->nregions; m->nfds++)
		m->fds[m->nfds] = dup(F.d.guest_fd);
	return vu_dev_handle_msg(F.d.dev, m, &F.reply);
}

static int send_u64(uint32_t req, uint64_t v, int fd)
{
	return send_msg(req, &v, sizeof(v), fd);
}

static int send_state(uint32_t req, unsigned int index, unsigned int num)
{
	struct vhost_vring_state s = { .index = index, .num = num };

	return send_msg(req, &s, sizeof(s), -1);
}

/* ---- input ------------------------------------------------------------------- */

struct input {
	const uint8_t *p;
	size_t left;
};

static size_t take(struct input *in, void *dst, size_t n)
{
	if (n > in->left)
		n = in->left;
	memcpy(dst, in->p, n);
	in->p += n;
	in->left -= n;
	return n;
}

static uint64_t take_le(struct input *in, unsigned int bytes)
{
	uint8_t b[8] = { 0 };
	uint64_t v = 0;

	take(in, b, bytes);
	for (unsigned int i = 0; i < bytes; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

/* ---- the device's side ----------------------------------------------------- */

struct held {
	struct vu_chain c;
	struct iovec iov[MAX_IOV];
	uint64_t gpa[MAX_IOV];
};

static struct held held[MAX_HELD];
static unsigned int nheld, pops;

static void complete_all(struct vu_vq *vq, unsigned int how, uint16_t v)
{
	while (nheld) {
		struct vu_chain *c = &held[--nheld].c;
		uint32_t written = how == 0 ? 0 : how == 1 ? c->in_len : how == 2 ? c->in_len / 2 : v;

		if (c->nin) {
			const struct iovec *w = &c->iov[c->nout + c->nin - 1];

			((uint8_t *)w->iov_base)[w->iov_len - 1] = 0xa5;
		}
		vu_vq_push(vq, c, written);
	}
}

/* Pop up to budget chains; 0 when the ring is empty or broken. */
static unsigned int device_pop(struct vu_vq *vq, unsigned int budget, unsigned int niov)
{
	unsigned int n = 0;

	while (n < budget && nheld < MAX_HELD && pops < MAX_POPS) {
		struct held *h = &held[nheld];

		vu_chain_init(&h->c, h->iov, h->gpa, (uint16_t)niov);
		pops++;
		if (vu_vq_pop(vq, &h->c) != 1)
			break;
		fuzz_check_chain(vq, &h->c);
		if (F.d.verbose)
			fprintf(stderr, "fuzz_ring: chain id %u: %u+%u iovecs, %u+%u bytes\n",
				h->c.id, h->c.nout, h->c.nin, h->c.out_len, h->c.in_len);
		nheld++;
		n++;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct vu_mem_table_desc mt = {
		.nregions = 2,
		.regions = {
			{ .guest_addr = 0, .size = R_SIZE, .user_addr = R0_UVA, .mmap_offset = 0 },
			{ .guest_addr = R1_GPA, .size = R_SIZE, .user_addr = R1_UVA,
			  .mmap_offset = R_SIZE },
		},
	};
	uint64_t features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VU_F_PROTOCOL_FEATURES);
	uint64_t pfeatures = (1ull << VU_PROTOCOL_F_LOG_SHMFD) |
			     (1ull << VU_PROTOCOL_F_INFLIGHT_SHMFD);
	struct vhost_vring_addr addr = {
		.desc_user_addr = R0_UVA + DESC_GPA,
		.avail_user_addr = R0_UVA + DRIVER_GPA,
		.used_user_addr = R0_UVA + DEVICE_GPA,
		.log_guest_addr = DEVICE_GPA,
	};
	unsigned int cfg, qsize, niov, driver_len;
	uint32_t base;
	struct vu_vq *vq;
	bool packed;

	if (!F.d.dev)
		init();
	if (size < 8)
		return 0;
	vq = &F.d.dev->vqs[0];
	memset(F.d.gmem, 0, GUEST_SIZE);
	nheld = pops = 0;

	cfg = (unsigned int)take_le(&in, 1);
	qsize = (unsigned int)take_le(&in, 2);
	base = (uint32_t)take_le(&in, 4);
	niov = 1 + (unsigned int)take_le(&in, 1) % MAX_IOV;
	packed = cfg & 1;
	qsize = packed ? 1 + qsize % MAX_QSIZE : 1u << (qsize % 11);
	if (packed)
		features |= 1ull << VIRTIO_F_RING_PACKED;
	if (cfg & 2)
		features |= 1ull << VIRTIO_RING_F_EVENT_IDX;
	if (cfg & 4)
		features |= 1ull << VIRTIO_RING_F_INDIRECT_DESC;
	if (cfg & 8) {
		features |= 1ull << VHOST_F_LOG_ALL;
		addr.flags = 1u << VHOST_VRING_F_LOG;
	}

	/* The driver's side of the ring, as far as the input goes. */
	driver_len = packed ? 4 : 4 + 2 * qsize + 2;
	take(&in, F.d.gmem + DRIVER_GPA, driver_len);
	take(&in, F.d.gmem + DESC_GPA, 16 * qsize);
	if (!packed)
		take(&in, F.d.gmem + DEVICE_GPA, 4);

	/* Bring the queue up as a front-end would. */
	if (send_u64(VU_REQ_SET_PROTOCOL_FEATURES, pfeatures, -1) ||
	    send_msg(VU_REQ_SET_OWNER, NULL, 0, -1) ||
	    send_u64(VU_REQ_SET_FEATURES, features, -1) ||
	    send_mem_table(&mt) || !F.d.dev->mem || F.d.dev->mem->nregions != 2)
		fuzz_fail("negotiation failed");
	if (cfg & 8) {
		struct vu_log_desc log = { .mmap_size = 4096 };

		if (send_msg(VU_REQ_SET_LOG_BASE, &log, sizeof(log), fuzz_memfd("log", 4096)) !=
		    VU_HANDLED_REPLY)
			fuzz_fail("SET_LOG_BASE failed");
	}
	if (cfg & 16) {
		struct vu_inflight_desc d = { .num_queues = 1, .queue_size = (uint16_t)qsize };
		uint64_t region = vu_inflight_queue_region_size((uint16_t)qsize);
		uint8_t *area;

		if (send_msg(VU_REQ_GET_INFLIGHT_FD, &d, sizeof(d), -1) != VU_HANDLED_REPLY)
			fuzz_fail("GET_INFLIGHT_FD failed");
		/* The front-end's view of the area: whatever it holds at a restart. */
		area = mmap(NULL, region, PROT_READ | PROT_WRITE, MAP_SHARED, F.reply.fds[0], 0);
		if (area == MAP_FAILED)
			abort();
		take(&in, area, region);
		munmap(area, region);
	}
	take(&in, F.d.gmem + R1_GPA, INDIRECT_LEN);

	send_state(VU_REQ_SET_VRING_NUM, 0, qsize);
	send_state(VU_REQ_SET_VRING_BASE, 0, base);
	send_msg(VU_REQ_SET_VRING_ADDR, &addr, sizeof(addr), -1);
	send_u64(VU_REQ_SET_VRING_KICK, VU_VRING_NOFD_MASK, -1);
	if (cfg & 32)
		send_u64(VU_REQ_SET_VRING_CALL, 0, dup(F.d.event_fd));
	send_state(VU_REQ_SET_VRING_ENABLE, 0, 1);

	/* The driver acts, the device follows. */
	while (vq->started && in.left >= 4) {
		unsigned int k = (unsigned int)take_le(&in, 1), x = (unsigned int)take_le(&in, 1);
		uint16_t v = (uint16_t)take_le(&in, 2);
		unsigned int off = (k >> 2) << 8 | x;

		switch (k & 3) {
		case 0:
			device_pop(vq, x % 16 + 1, niov);
			if (k & 4)
				complete_all(vq, k >> 3 & 3, v);
			vu_vq_notify(vq);
			break;
		case 1:
			memcpy(F.d.gmem + DRIVER_GPA + (2 * off) % (driver_len & ~1u), &v, 2);
			break;
		case 2:
			memcpy(F.d.gmem + DESC_GPA + (2 * off) % (16 * qsize), &v, 2);
			break;
		default:
			if (!vq->broken && vu_vq_enable_notify(vq))
				vu_vq_disable_notify(vq);
			break;
		}
	}
	/* Drain, complete, stop. */
	if (vq->started) {
		while (device_pop(vq, 16, niov))
			complete_all(vq, 1, 0);
		complete_all(vq, 1, 0);
		vu_vq_notify(vq);
	}
	send_state(VU_REQ_GET_VRING_BASE, 0, 0);
	if (vq->started)
		fuzz_fail("queue still started after GET_VRING_BASE");
	vu_dev_disconnect(F.d.dev);
	fuzz_dev_check_leaks(&F.d);
	return 0;
}
