// SPDX-License-Identifier: MIT
/*
 * vhost-blk integration: features, config space (GET_CONFIG / SET_CONFIG
 * of the write cache), and resize (SIGHUP -> CONFIG_CHANGE_MSG on the
 * back-end channel, capacity updated, I/O beyond the old end served).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blk_test.h"
#include "vu_util.h"

#define CFG_OFF(field) ((uint32_t)offsetof(struct virtio_blk_config, field))

static void test_features(void **state)
{
	struct blkt *t = *state;
	static const unsigned int want[] = {
		VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_BLK_SIZE,
		VIRTIO_BLK_F_TOPOLOGY, VIRTIO_BLK_F_MQ, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_CONFIG_WCE,
		VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES, VIRTIO_F_VERSION_1,
		VIRTIO_F_RING_PACKED, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC,
	};
	static const unsigned int want_proto[] = {
		VU_PROTOCOL_F_MQ, VU_PROTOCOL_F_REPLY_ACK, VU_PROTOCOL_F_CONFIG,
		VU_PROTOCOL_F_BACKEND_REQ, VU_PROTOCOL_F_INFLIGHT_SHMFD,
	};
	uint64_t f, pf, nq;
	struct vuf *vuf;

	blkt_make_file(t->file, 1u << 20, 0);
	blkt_spawn(t, (const char *[]){ "--num-queues", "3", NULL });
	vuf = vuf_connect(t->sock, BLKT_WAIT_MS);
	assert_non_null(vuf);
	t->vuf = vuf;
	assert_int_equal(vuf_get_features(vuf, &f), 0);
	for (unsigned int i = 0; i < VU_ARRAY_SIZE(want); i++)
		if (!(f & (1ull << want[i])))
			fail_msg("feature bit %u not offered (features 0x%llx)", want[i],
				 (unsigned long long)f);
	assert_true(f & (1ull << VU_F_PROTOCOL_FEATURES));
	/* Not read-only, and nothing the device does not implement. */
	assert_false(f & (1ull << VIRTIO_BLK_F_RO));
	assert_false(f & (1ull << VIRTIO_BLK_F_SCSI));
	assert_false(f & (1ull << VIRTIO_BLK_F_SECURE_ERASE));
	assert_int_equal(vuf_get_protocol_features(vuf, &pf), 0);
	for (unsigned int i = 0; i < VU_ARRAY_SIZE(want_proto); i++)
		if (!(pf & (1ull << want_proto[i])))
			fail_msg("protocol feature %u not offered (0x%llx)", want_proto[i],
				 (unsigned long long)pf);
	assert_int_equal(vuf_set_protocol_features(vuf, pf), 0);
	assert_int_equal(vuf_get_queue_num(vuf, &nq), 0);
	assert_int_equal(nq, 3);
	blkt_pass(t);
}

static void test_config_space(void **state)
{
	struct blkt *t = *state;
	/* 8 MiB and a partial sector: the capacity counts whole sectors. */
	const uint64_t bytes = (8u << 20) + 300;
	struct virtio_blk_config c;
	uint64_t cap;
	uint8_t wce;
	uint16_t nq;

	blkt_make_file(t->file, bytes, 0);
	blkt_spawn(t, (const char *[]){ "--num-queues", "4", NULL });
	blkt_connect(t, NULL);
	blkt_get_config(t, &c);
	assert_int_equal(le64toh(c.capacity), bytes / 512);
	assert_int_equal(le32toh(c.blk_size), 512);
	/* Limits a guest can live with, and consistent with each other. */
	assert_true(le32toh(c.seg_max) >= 1 && le32toh(c.seg_max) <= 1024);
	assert_true(le32toh(c.size_max) >= 4096 && le32toh(c.size_max) % 512 == 0);
	assert_int_equal(le16toh(c.num_queues), 4);
	assert_true(le32toh(c.max_discard_sectors) >= 1);
	assert_true(le32toh(c.max_discard_seg) >= 1);
	assert_true(le32toh(c.discard_sector_alignment) >= 1);
	assert_true(le32toh(c.max_write_zeroes_sectors) >= 1);
	assert_true(le32toh(c.max_write_zeroes_seg) >= 1);
	assert_int_equal(c.write_zeroes_may_unmap, 1);
	assert_true(le16toh(c.min_io_size) >= 1);
	/* Write cache on by default. */
	assert_int_equal(c.wce, 1);

	/* Partial reads agree with the whole. */
	assert_int_equal(vuf_get_config(t->vuf, CFG_OFF(capacity), &cap, 8), 0);
	assert_int_equal(le64toh(cap), bytes / 512);
	assert_int_equal(vuf_get_config(t->vuf, CFG_OFF(wce), &wce, 1), 0);
	assert_int_equal(wce, 1);
	assert_int_equal(vuf_get_config(t->vuf, CFG_OFF(num_queues), &nq, 2), 0);
	assert_int_equal(le16toh(nq), 4);
	/*
	 * Past the message's config area (SECURITY.md A.1): refused.  The
	 * daemon ends such a connection rather than answering; the device
	 * serves the next one.
	 */
	assert_int_not_equal(vuf_get_config(t->vuf, VU_MAX_CONFIG_SIZE - 4, &cap, 8), 0);
	blkt_disconnect(t);
	blkt_connect(t, NULL);
	blkt_get_config(t, &c);
	assert_int_equal(le64toh(c.capacity), bytes / 512);
	blkt_check_read(t, 0, 0, 8, 0);
	blkt_pass(t);
}

static void test_set_config_wce(void **state)
{
	struct blkt *t = *state;
	const uint8_t off = 0, on = 1, bad = 2;
	const uint64_t big = htole64(1ull << 40);
	struct virtio_blk_config c;

	blkt_make_file(t->file, 4u << 20, 0);
	blkt_spawn(t, (const char *[]){ "--write-cache", "off", NULL });
	blkt_connect(t, NULL);
	blkt_get_config(t, &c);
	assert_int_equal(c.wce, 0);

	/* writethrough -> writeback, and back. */
	assert_int_equal(vuf_set_config(t->vuf, CFG_OFF(wce), &on, 1, 0), 0);
	blkt_get_config(t, &c);
	assert_int_equal(c.wce, 1);
	assert_int_equal(blkt_write_pattern(t, 0, 0, 8, 3), VIRTIO_BLK_S_OK);
	assert_int_equal(blkt_nodata(t, 0, VIRTIO_BLK_T_FLUSH, 0), VIRTIO_BLK_S_OK);
	blkt_check_read(t, 0, 0, 8, 3);
	assert_int_equal(vuf_set_config(t->vuf, CFG_OFF(wce), &off, 1, 0), 0);
	blkt_get_config(t, &c);
	assert_int_equal(c.wce, 0);
	assert_int_equal(blkt_write_pattern(t, 0, 8, 8, 4), VIRTIO_BLK_S_OK);
	blkt_check_read(t, 0, 8, 8, 4);
	blkt_check_file(t->file, 0, 4096, 3);
	blkt_check_file(t->file, 4096, 4096, 4);

	/* Refused writes (REPLY_ACK: the error comes back), nothing changes. */
	assert_int_equal(vuf_set_config(t->vuf, CFG_OFF(wce), &bad, 1, 0), -EIO);
	assert_int_equal(vuf_set_config(t->vuf, CFG_OFF(capacity), &big, 8, 0), -EIO);
	assert_int_equal(vuf_set_config(t->vuf, CFG_OFF(wce), &big, 2, 0), -EIO);
	blkt_get_config(t, &c);
	assert_int_equal(c.wce, 0);
	assert_int_equal(le64toh(c.capacity), (4u << 20) / 512);
	assert_int_equal(blkt_write_pattern(t, 0, 16, 8, 5), VIRTIO_BLK_S_OK);
	blkt_check_read(t, 0, 16, 8, 5);
	blkt_pass(t);
}

/* SIGHUP after the file grew: CONFIG_CHANGE_MSG, new capacity, I/O beyond the old end. */
static void test_resize(void **state)
{
	struct blkt *t = *state;
	const uint64_t old_bytes = 4u << 20, new_bytes = 12u << 20;
	const uint64_t old_cap = old_bytes / 512, new_cap = new_bytes / 512;
	struct virtio_blk_config c;
	struct vu_msg m;
	uint32_t len;
	uint64_t gpa;
	int fd;

	blkt_make_file(t->file, old_bytes, 9);
	blkt_spawn(t, NULL);
	blkt_connect(t, &(struct blkt_conn_opts){ .backend_channel = true });
	blkt_get_config(t, &c);
	assert_int_equal(le64toh(c.capacity), old_cap);
	blkt_data(t, 4096, 0, &gpa);
	assert_int_equal(blkt_rw(t, 0, VIRTIO_BLK_T_IN, old_cap, gpa, 4096, &len), VIRTIO_BLK_S_IOERR);

	/* SIGHUP without a change: no message. */
	blkt_signal(t, SIGHUP);
	assert_int_equal(vuf_backend_channel_recv(t->vuf, &m, 300), -ETIMEDOUT);
	assert_true(blkt_alive(t));

	/* Grow the file; the new part holds a known pattern. */
	fd = open(t->file, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)new_bytes), 0);
	{
		size_t n = new_bytes - old_bytes;
		uint8_t *buf = malloc(n);

		assert_non_null(buf);
		blkt_pattern(buf, n, old_bytes, 9);
		assert_int_equal(pwrite(fd, buf, n, (off_t)old_bytes), (ssize_t)n);
		free(buf);
	}
	close(fd);
	blkt_signal(t, SIGHUP);
	memset(&m, 0, sizeof(m));
	assert_int_equal(vuf_backend_channel_recv(t->vuf, &m, BLKT_WAIT_MS), 0);
	vu_msg_close_fds(&m);
	assert_int_equal(m.hdr.request, VU_BACKEND_REQ_CONFIG_CHANGE_MSG);
	blkt_get_config(t, &c);
	assert_int_equal(le64toh(c.capacity), new_cap);

	/* Across and beyond the old end: read, write, read back. */
	blkt_check_read(t, 0, old_cap - 8, 16, 9);
	blkt_check_read(t, 0, new_cap - 8, 8, 9);
	assert_int_equal(blkt_write_pattern(t, 0, old_cap + 100, 32, 10), VIRTIO_BLK_S_OK);
	blkt_check_read(t, 0, old_cap + 100, 32, 10);
	blkt_check_file(t->file, (old_cap + 100) * 512, 32 * 512, 10);
	assert_int_equal(blkt_rw(t, 0, VIRTIO_BLK_T_IN, new_cap, gpa, 512, &len), VIRTIO_BLK_S_IOERR);

	/* Shrink: requests past the new end are refused again. */
	assert_int_equal(truncate(t->file, (off_t)old_bytes), 0);
	blkt_signal(t, SIGHUP);
	memset(&m, 0, sizeof(m));
	assert_int_equal(vuf_backend_channel_recv(t->vuf, &m, BLKT_WAIT_MS), 0);
	vu_msg_close_fds(&m);
	assert_int_equal(m.hdr.request, VU_BACKEND_REQ_CONFIG_CHANGE_MSG);
	blkt_get_config(t, &c);
	assert_int_equal(le64toh(c.capacity), old_cap);
	assert_int_equal(blkt_rw(t, 0, VIRTIO_BLK_T_IN, old_cap, gpa, 512, &len), VIRTIO_BLK_S_IOERR);
	blkt_check_read(t, 0, old_cap - 8, 8, 9);
	blkt_pass(t);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_features, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_config_space, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_set_config_wce, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_resize, blkt_setup, blkt_teardown),
	};

	blkt_init(argc, argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
