// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the vhost-user message handlers: the input is a
 * sequence of messages fed to vu_dev_handle_msg() on one device, as the
 * control loop would after vu_msg_recv(), with a poller pass over the
 * queues after each message (SECURITY.md A.1-A.10, and B through the
 * rings the messages set up).
 *
 * Input: records until the input ends (at most MAX_RECORDS):
 *   u8  request   0x00-0x3f as is (0x2c-0x3f: unknown numbers); 0xff: a
 *                 guest memory write (below); anything else becomes
 *                 0xffffff00 | byte (unknown)
 *   u8  flags     the header's flags, as is (version, REPLY, NEED_REPLY)
 *   u8  fds       bits 0-3: descriptors attached (at most VU_MAX_FDS, as
 *                 vu_msg_recv() delivers); bits 4-5: which: 0 the guest
 *                 memory memfd, 1 an eventfd, 2 a small memfd, 3 both of
 *                 the first two, alternately
 *   u16 size      payload bytes that follow (little-endian)
 *   payload
 * A record whose size runs past the input, or exceeds VU_MAX_PAYLOAD, is
 * what vu_msg_recv() refuses: the connection drops (vu_dev_disconnect)
 * and the records after it are a new connection, as after a negative
 * return from vu_dev_handle_msg().
 * Memory write (request 0xff): payload = u32 offset + bytes, written into
 * the guest memory file at offset (clamped), for rings and buffers.
 *
 * Guest memory is one 256 KiB memfd; the seeds map it as two regions.
 * After each input the device is disconnected and the process must have
 * exactly the fds and file mappings it had before (A.2, A.3, D.29): a
 * leak aborts the run.  The seed corpus comes from make_seeds.py.
 */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "fuzz_dev.h"
#include "vu_dev.h"

#define NQ            2
#define GUEST_SIZE    0x40000u
#define SMALL_SIZE    0x10000u
#define CONFIG_SIZE   60
#define MAX_RECORDS   64
#define REQ_MEM_WRITE 0xff
#define POLL_BUDGET   16
#define CHAIN_IOV     16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the device ------------------------------------------------------------ */

static struct {
	struct fuzz_dev d;
	int small_fd;
	uint8_t config[CONFIG_SIZE];
} F;

static uint32_t f_get_config(struct vu_dev *dev, uint8_t *buf, uint32_t len)
{
	uint32_t n = len < CONFIG_SIZE ? len : CONFIG_SIZE;

	(void)dev;
	memcpy(buf, F.config, n);
	return n;
}

static int f_set_config(struct vu_dev *dev, const uint8_t *buf, uint32_t offset, uint32_t size,
			uint32_t flags)
{
	(void)dev;
	(void)flags;
	if (offset > CONFIG_SIZE || size > CONFIG_SIZE - offset)
		return -EINVAL;
	memcpy(F.config + offset, buf, size);
	return 0;
}

static int f_queue_start(struct vu_dev *dev, struct vu_vq *vq)
{
	(void)dev;
	/* Refuse the last queue sometimes: the error path of a start. */
	return vq->index == NQ - 1 && (vq->size & 1) ? -EIO : 0;
}

static unsigned int f_queue_process(struct vu_dev *dev, struct vu_vq *vq, unsigned int budget)
{
	(void)dev;
	(void)vq;
	(void)budget;
	return 0;
}

static int f_send_rarp(struct vu_dev *dev, const uint8_t mac[6])
{
	(void)dev;
	return mac[0] & 1 ? -EINVAL : 0;
}

static int f_set_mtu(struct vu_dev *dev, uint16_t mtu)
{
	(void)dev;
	return mtu < 68 ? -EINVAL : 0;
}

static const struct vu_dev_ops fuzz_ops = {
	.features = (1ull << 1) | (1ull << 2),
	.protocol_features = (1ull << VU_PROTOCOL_F_RARP) | (1ull << VU_PROTOCOL_F_NET_MTU),
	.get_config = f_get_config,
	.set_config = f_set_config,
	.queue_start = f_queue_start,
	.queue_process = f_queue_process,
	.send_rarp = f_send_rarp,
	.set_mtu = f_set_mtu,
};

static void init(void)
{
	struct vu_dev_config dc = { .name = "fuzz", .num_queues = NQ, .ops = &fuzz_ops };

	F.small_fd = fuzz_memfd("small", SMALL_SIZE);
	fuzz_dev_init(&F.d, &dc, GUEST_SIZE);
}

/* ---- one pass of a poller over the runnable queues ------------------------- */

static void poll_pass(void)
{
	struct vu_dev *dev = F.d.dev;

	for (unsigned int q = 0; q < NQ; q++) {
		struct vu_vq *vq = &dev->vqs[q];
		struct iovec iov[CHAIN_IOV];
		uint64_t gpa[CHAIN_IOV];
		struct vu_chain c;

		if (!__atomic_load_n(&vq->runnable, __ATOMIC_ACQUIRE) || vq->broken)
			continue;
		unsigned int n;

		for (n = 0; n < POLL_BUDGET; n++) {
			vu_chain_init(&c, iov, gpa, CHAIN_IOV);
			if (vu_vq_pop(vq, &c) != 1)
				break;
			fuzz_check_chain(vq, &c);
			/* The device writes the last byte it may write. */
			if (c.nin) {
				const struct iovec *w = &c.iov[c.nout + c.nin - 1];

				((uint8_t *)w->iov_base)[w->iov_len - 1] = 0x5a;
			}
			vu_vq_push(vq, &c, c.in_len);
		}
		if (F.d.verbose && n)
			fprintf(stderr, "fuzz_msg: queue %u: %u chains\n", q, n);
		vu_vq_notify(vq);
		if (!vq->broken && !vu_vq_enable_notify(vq))
			vu_vq_disable_notify(vq);
	}
}

/* ---- input ------------------------------------------------------------------- */

static int fd_for(unsigned int kind, unsigned int i)
{
	switch (kind) {
	case 0:
		return dup(F.d.guest_fd);
	case 1:
		return dup(F.d.event_fd);
	case 2:
		return dup(F.small_fd);
	default:
		return dup(i & 1 ? F.d.event_fd : F.d.guest_fd);
	}
}

static void mem_write(const uint8_t *p, size_t n)
{
	uint32_t off;

	if (n < 4)
		return;
	memcpy(&off, p, 4);
	off = le32toh(off);
	p += 4;
	n -= 4;
	if (off >= GUEST_SIZE)
		return;
	if (n > GUEST_SIZE - off)
		n = GUEST_SIZE - off;
	memcpy(F.d.gmem + off, p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vu_msg msg, reply;
	size_t pos = 0;

	if (!F.d.dev)
		init();
	/* Every input starts from zeroed files (the front-end's memory). */
	memset(F.d.gmem, 0, GUEST_SIZE);
	if (ftruncate(F.small_fd, 0) < 0 || ftruncate(F.small_fd, SMALL_SIZE) < 0)
		abort();
	for (unsigned int rec = 0; rec < MAX_RECORDS && size - pos >= 5; rec++) {
		uint8_t req = data[pos], flags = data[pos + 1], fdspec = data[pos + 2];
		uint16_t len = (uint16_t)(data[pos + 3] | data[pos + 4] << 8);
		unsigned int nfds = fdspec & 0x0f;
		int ret;

		pos += 5;
		if (len > size - pos)
			break;                  /* truncated: vu_msg_recv fails, EOF */
		if (req == REQ_MEM_WRITE) {
			mem_write(data + pos, len);
			pos += len;
			continue;
		}
		if (len > VU_MAX_PAYLOAD) {
			/* vu_msg_recv refuses it: the connection drops. */
			pos += len;
			vu_dev_disconnect(F.d.dev);
			continue;
		}
		memset(&msg, 0, sizeof(msg));
		msg.hdr.request = req < 0x40 ? req : 0xffffff00u | req;
		msg.hdr.flags = flags;
		msg.hdr.size = len;
		memcpy(&msg.payload, data + pos, len);
		pos += len;
		if (nfds > VU_MAX_FDS)
			nfds = VU_MAX_FDS;
		for (unsigned int i = 0; i < nfds; i++) {
			msg.fds[i] = fd_for((fdspec >> 4) & 3, i);
			if (msg.fds[i] < 0)
				abort();
		}
		msg.nfds = nfds;

		ret = vu_dev_handle_msg(F.d.dev, &msg, &reply);
		/* The message's descriptors are taken or closed, always. */
		if (msg.nfds != 0)
			fuzz_fail("%u fds left in a handled message", msg.nfds);
		if (ret == VU_HANDLED_REPLY &&
		    (reply.hdr.size > VU_MAX_PAYLOAD || reply.nfds > 1 ||
		     reply.hdr.flags != (VU_VERSION | VU_FLAG_REPLY)))
			fuzz_fail("bad reply: size %u, %u fds, flags 0x%x", reply.hdr.size,
				  reply.nfds, reply.hdr.flags);
		if (ret < 0)
			vu_dev_disconnect(F.d.dev);   /* as the control loop does */
		else
			poll_pass();
	}
	vu_dev_disconnect(F.d.dev);
	fuzz_dev_check_leaks(&F.d);
	return 0;
}
