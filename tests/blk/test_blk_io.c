// SPDX-License-Identifier: MIT
/*
 * vhost-blk integration: every request type through the real socket.
 *
 * The same suite runs on split and packed rings, with O_DIRECT on and
 * off, with guest memory registered as io_uring fixed buffers, without
 * INDIRECT_DESC / EVENT_IDX, and on the null engine (statuses and
 * lengths only: it moves no data).  Written data is read back through
 * the device and, independently, with pread() from the backing file.
 * Then rings at their edges (small rings, chains of the ring's size,
 * a full ring) and guest memory changing under the device (hot-add,
 * hot-remove, a new table) with fixed buffers registered.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <endian.h>
#include <string.h>

#include "blk_test.h"
#include "vu_util.h"

#define DISK_BYTES (16u << 20)
#define CAP (DISK_BYTES / BLKT_SECTOR)
#define SEED_INIT 1

struct io_cfg {
	bool packed;
	const char *direct;       /* --direct on|off */
	const char *fixed;        /* --fixed-buffers, or NULL */
	bool null_engine;
	const char *serial;
	uint64_t drop;            /* features not acknowledged */
};

/* A buffer of the arena, described as one segment. */
static struct blkt_buf buf_of(struct blkt *t, uint32_t len, size_t align, void **p)
{
	struct blkt_buf b = { .len = len };

	*p = blkt_data(t, len, align, &b.gpa);
	return b;
}

static void check_zero_file(const char *path, uint64_t off, uint64_t len)
{
	blkt_check_file(path, off, len, 0);
}

/* Multi-segment OUT, read back by a multi-segment and a one-segment IN. */
static void multi_segment(struct blkt *t, bool data, unsigned int post_flags)
{
	static const uint32_t wlens[] = { 512, 1536, 4096, 512, 1024 };
	static const uint32_t rlens[] = { 2048, 4096, 1536 };
	const uint64_t sector = 200;
	struct blkt_buf w[VU_ARRAY_SIZE(wlens)], r[VU_ARRAY_SIZE(rlens)];
	uint64_t off = sector * BLKT_SECTOR, seed = 7 + post_flags;
	struct blkt_req req;

	for (unsigned int i = 0; i < VU_ARRAY_SIZE(wlens); i++) {
		void *p;

		/* 512-aligned but not page-aligned: each segment its own place. */
		w[i] = buf_of(t, wlens[i] + 512, 512, &p);
		w[i].gpa += 512;
		w[i].len = wlens[i];
		blkt_pattern((uint8_t *)p + 512, wlens[i], off, seed);
		off += wlens[i];
	}
	blkt_req_init(t, &req);
	blkt_req_build(&req, VIRTIO_BLK_T_OUT, sector, w, VU_ARRAY_SIZE(w));
	req.post_flags = post_flags;
	assert_int_equal(blkt_do(t, 0, &req), VIRTIO_BLK_S_OK);
	assert_int_equal(req.len, 1);

	off = sector * BLKT_SECTOR;
	for (unsigned int i = 0; i < VU_ARRAY_SIZE(rlens); i++) {
		void *p;

		r[i] = buf_of(t, rlens[i], 512, &p);
		memset(p, 0xa5, rlens[i]);
	}
	blkt_req_build(&req, VIRTIO_BLK_T_IN, sector, r, VU_ARRAY_SIZE(r));
	req.post_flags = post_flags;
	assert_int_equal(blkt_do(t, 0, &req), VIRTIO_BLK_S_OK);
	assert_int_equal(req.len, 2048 + 4096 + 1536 + 1);
	if (!data)
		return;
	for (unsigned int i = 0; i < VU_ARRAY_SIZE(rlens); i++) {
		uint8_t tmp[4096];

		blkt_gread(t, r[i].gpa, tmp, rlens[i]);
		assert_int_equal(blkt_pattern_diff(tmp, rlens[i], off, seed), -1);
		off += rlens[i];
	}
	blkt_check_read(t, 0, sector, 15, seed);
	blkt_check_file(t->file, sector * BLKT_SECTOR, 15 * BLKT_SECTOR, seed);
}

/* seg_max data segments of one sector each (through an indirect table if possible). */
static void max_segments(struct blkt *t, const struct virtio_blk_config *cfg, bool data,
			 bool indirect)
{
	uint32_t nseg = le32toh(cfg->seg_max);
	const uint64_t sector = 1024, seed = 21;
	struct blkt_buf b[BLKT_MAX_SEGS];
	struct blkt_req req;

	assert_true(nseg >= 1);
	if (nseg > BLKT_MAX_SEGS)
		nseg = BLKT_MAX_SEGS;
	/* Without indirect tables the chain must fit the ring (128). */
	if (!indirect && nseg + 2 > 128)
		nseg = 126;
	for (uint32_t i = 0; i < nseg; i++) {
		void *p;

		b[i] = buf_of(t, BLKT_SECTOR, 4096, &p);
		blkt_pattern(p, BLKT_SECTOR, (sector + i) * BLKT_SECTOR, seed);
	}
	blkt_req_init(t, &req);
	blkt_req_build(&req, VIRTIO_BLK_T_OUT, sector, b, nseg);
	req.post_flags = indirect ? VUF_POST_INDIRECT : 0;
	assert_int_equal(blkt_do(t, 0, &req), VIRTIO_BLK_S_OK);
	if (data) {
		blkt_check_read(t, 0, sector, nseg, seed);
		blkt_check_file(t->file, sector * BLKT_SECTOR, nseg * BLKT_SECTOR, seed);
	}
}

/* One segment of size_max bytes. */
static void max_size(struct blkt *t, const struct virtio_blk_config *cfg, bool data)
{
	uint32_t len = le32toh(cfg->size_max);
	const uint64_t sector = 4096, seed = 22;
	void *p;
	struct blkt_buf b;
	uint32_t done;

	assert_true(len >= 4096 && len % BLKT_SECTOR == 0);
	if (len > (4u << 20))
		len = 4u << 20;
	b = buf_of(t, len, 4096, &p);
	blkt_pattern(p, len, sector * BLKT_SECTOR, seed);
	assert_int_equal(blkt_rw(t, 0, VIRTIO_BLK_T_OUT, sector, b.gpa, len, &done), VIRTIO_BLK_S_OK);
	assert_int_equal(done, 1);
	if (data) {
		blkt_check_read(t, 0, sector, len / BLKT_SECTOR, seed);
		blkt_check_file(t->file, sector * BLKT_SECTOR, len, seed);
	}
}

/* A buffer that crosses from one memory region into the next (SECURITY.md B.11). */
static void cross_regions(struct blkt *t, bool data)
{
	const uint64_t gpa = BLKT_GPA_DATA2 - 2048, sector = 300, seed = 23;
	const uint32_t len = 8 * BLKT_SECTOR;
	uint8_t src[8 * BLKT_SECTOR], dst[8 * BLKT_SECTOR];
	uint32_t done;

	blkt_pattern(src, len, sector * BLKT_SECTOR, seed);
	blkt_gwrite(t, gpa, src, len);
	assert_int_equal(blkt_rw(t, 0, VIRTIO_BLK_T_OUT, sector, gpa, len, &done), VIRTIO_BLK_S_OK);
	memset(dst, 0xa5, len);
	blkt_gwrite(t, gpa, dst, len);
	assert_int_equal(blkt_rw(t, 0, VIRTIO_BLK_T_IN, sector, gpa, len, &done), VIRTIO_BLK_S_OK);
	assert_int_equal(done, len + 1);
	if (!data)
		return;
	blkt_gread(t, gpa, dst, len);
	assert_memory_equal(src, dst, len);
	blkt_check_file(t->file, sector * BLKT_SECTOR, len, seed);
}

/* Buffers not aligned for O_DIRECT: the daemon falls back to the page cache. */
static void unaligned(struct blkt *t, bool data)
{
	const uint64_t sector = 320, seed = 24;
	const uint32_t len = 3 * BLKT_SECTOR;
	uint8_t *p;
	struct blkt_buf b = buf_of(t, len + 8, 4096, (void **)&p);
	uint32_t done;

	b.gpa += 8;
	b.len = len;
	blkt_pattern(p + 8, len, sector * BLKT_SECTOR, seed);
	assert_int_equal(blkt_rw(t, 0, VIRTIO_BLK_T_OUT, sector, b.gpa, len, &done), VIRTIO_BLK_S_OK);
	memset(p, 0xa5, len + 8);
	assert_int_equal(blkt_rw(t, 0, VIRTIO_BLK_T_IN, sector, b.gpa, len, &done), VIRTIO_BLK_S_OK);
	assert_int_equal(done, len + 1);
	if (!data)
		return;
	assert_int_equal(blkt_pattern_diff(p + 8, len, sector * BLKT_SECTOR, seed), -1);
	blkt_check_file(t->file, sector * BLKT_SECTOR, len, seed);
}

/* GET_ID: the serial, 20 bytes at most, a prefix of it in a shorter buffer. */
static void get_id(struct blkt *t, const char *serial)
{
	char want[VIRTIO_BLK_ID_BYTES] = { 0 };
	uint8_t *p;
	struct blkt_buf b;
	uint32_t done;

	memcpy(want, serial, strlen(serial));
	b = buf_of(t, 64, 8, (void **)&p);
	memset(p, 0xa5, 64);
	assert_int_equal(blkt_rw(t, 0, VIRTIO_BLK_T_GET_ID, 0, b.gpa, VIRTIO_BLK_ID_BYTES, &done),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(done, VIRTIO_BLK_ID_BYTES + 1);
	assert_memory_equal(p, want, VIRTIO_BLK_ID_BYTES);

	/* A larger buffer: still 20 bytes, nothing written after them. */
	memset(p, 0xa5, 64);
	assert_int_equal(blkt_rw(t, 0, VIRTIO_BLK_T_GET_ID, 0, b.gpa, 64, &done), VIRTIO_BLK_S_OK);
	assert_int_equal(done, VIRTIO_BLK_ID_BYTES + 1);
	assert_memory_equal(p, want, VIRTIO_BLK_ID_BYTES);
	for (unsigned int i = VIRTIO_BLK_ID_BYTES; i < 64; i++)
		assert_int_equal(p[i], 0xa5);

	/* A shorter buffer gets a prefix. */
	memset(p, 0xa5, 64);
	assert_int_equal(blkt_rw(t, 0, VIRTIO_BLK_T_GET_ID, 0, b.gpa, 7, &done), VIRTIO_BLK_S_OK);
	assert_int_equal(done, 7 + 1);
	assert_memory_equal(p, want, 7);
	assert_int_equal(p[7], 0xa5);
}

/* DISCARD / WRITE_ZEROES of two ranges inside written data, then read. */
static void zero_ranges(struct blkt *t, uint32_t type, uint32_t flags, uint64_t base, bool data)
{
	const struct virtio_blk_discard_write_zeroes r[2] = {
		{ .sector = base + 8, .num_sectors = 16, .flags = flags },
		{ .sector = base + 40, .num_sectors = 9, .flags = flags },
	};
	const uint64_t seed = 30 + type + flags;

	assert_int_equal(blkt_write_pattern(t, 0, base, 64, seed), VIRTIO_BLK_S_OK);
	assert_int_equal(blkt_ranges(t, 0, type, r, 2), VIRTIO_BLK_S_OK);
	if (!data)
		return;
	blkt_check_read(t, 0, base, 8, seed);
	blkt_check_read(t, 0, base + 8, 16, 0);
	blkt_check_read(t, 0, base + 24, 16, seed);
	blkt_check_read(t, 0, base + 40, 9, 0);
	blkt_check_read(t, 0, base + 49, 15, seed);
	blkt_check_file(t->file, base * BLKT_SECTOR, 8 * BLKT_SECTOR, seed);
	check_zero_file(t->file, (base + 8) * BLKT_SECTOR, 16 * BLKT_SECTOR);
	blkt_check_file(t->file, (base + 24) * BLKT_SECTOR, 16 * BLKT_SECTOR, seed);
	check_zero_file(t->file, (base + 40) * BLKT_SECTOR, 9 * BLKT_SECTOR);
}

static void io_suite(struct blkt *t, const struct io_cfg *c)
{
	static const struct {
		uint64_t sector;
		uint32_t n;
	} at[] = {
		{ 0, 8 }, { 1, 1 }, { 4095, 3 }, { CAP / 2, 64 }, { CAP - 8, 8 }, { CAP - 1, 1 },
	};
	static const uint32_t unknown[] = {
		VIRTIO_BLK_T_SCSI_CMD, 3, VIRTIO_BLK_T_SECURE_ERASE, 42,
		VIRTIO_BLK_T_BARRIER | VIRTIO_BLK_T_OUT, 0xffffffffu,
	};
	const char *serial = c->serial ? c->serial : "vblk-it-0001";
	const char *args[16] = { "--direct", c->direct, "--serial", serial };
	unsigned int na = 4;
	bool data = !c->null_engine, indirect;
	struct virtio_blk_config cfg;

	if (c->fixed) {
		args[na++] = "--fixed-buffers";
		args[na++] = c->fixed;
	}
	if (c->null_engine) {
		args[na++] = "--engine";
		args[na++] = "null";
	}
	blkt_make_file(t->file, DISK_BYTES, SEED_INIT);
	blkt_spawn(t, args);
	blkt_connect(t, &(struct blkt_conn_opts){ .packed = c->packed, .drop_features = c->drop });
	indirect = vuf_features(t->vuf) & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
	assert_int_equal(indirect, !(c->drop & (1ull << VIRTIO_RING_F_INDIRECT_DESC)));
	blkt_get_config(t, &cfg);
	assert_int_equal(le64toh(cfg.capacity), CAP);

	/* IN of what the file held before. */
	if (data)
		blkt_check_read(t, 0, 0, 16, SEED_INIT);

	/* OUT, read back, at several offsets up to the last sector. */
	for (unsigned int i = 0; i < VU_ARRAY_SIZE(at); i++) {
		uint64_t seed = 100 + i;

		assert_int_equal(blkt_write_pattern(t, 0, at[i].sector, at[i].n, seed), VIRTIO_BLK_S_OK);
		if (data) {
			blkt_check_read(t, 0, at[i].sector, at[i].n, seed);
			blkt_check_file(t->file, at[i].sector * BLKT_SECTOR, at[i].n * BLKT_SECTOR, seed);
		}
	}
	/* Around what was written: untouched. */
	if (data) {
		blkt_check_read(t, 0, 9, 100, SEED_INIT);
		blkt_check_read(t, 0, CAP / 2 + 64, 8, SEED_INIT);
	}

	multi_segment(t, data, 0);
	if (indirect)
		multi_segment(t, data, VUF_POST_INDIRECT);
	max_segments(t, &cfg, data, indirect);
	max_size(t, &cfg, data);
	cross_regions(t, data);
	unaligned(t, data);
	blkt_data_reset(t);

	assert_int_equal(blkt_nodata(t, 0, VIRTIO_BLK_T_FLUSH, 0), VIRTIO_BLK_S_OK);
	get_id(t, serial);

	zero_ranges(t, VIRTIO_BLK_T_DISCARD, 0, 8192, data);
	zero_ranges(t, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8192 + 128, data);
	zero_ranges(t, VIRTIO_BLK_T_WRITE_ZEROES, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, 8192 + 256, data);

	/* Unknown request types (SECURITY.md B.18). */
	for (unsigned int i = 0; i < VU_ARRAY_SIZE(unknown); i++)
		assert_int_equal(blkt_nodata(t, 0, unknown[i], 0), VIRTIO_BLK_S_UNSUPP);

	/* And the queue still works. */
	assert_int_equal(blkt_write_pattern(t, 0, 77, 4, 99), VIRTIO_BLK_S_OK);
	if (data)
		blkt_check_read(t, 0, 77, 4, 99);
	blkt_pass(t);
}

static void test_split_direct(void **state)
{
	io_suite(*state, &(struct io_cfg){ .direct = "on" });
}

static void test_split_buffered(void **state)
{
	/* A serial of exactly 20 bytes: no terminating NUL. */
	io_suite(*state, &(struct io_cfg){ .direct = "off", .serial = "ABCDEFGHIJ0123456789" });
}

static void test_packed_direct(void **state)
{
	io_suite(*state, &(struct io_cfg){ .packed = true, .direct = "on" });
}

static void test_packed_buffered(void **state)
{
	io_suite(*state, &(struct io_cfg){ .packed = true, .direct = "off", .serial = "s" });
}

static void test_split_fixed_buffers(void **state)
{
	io_suite(*state, &(struct io_cfg){ .direct = "on", .fixed = "on" });
}

static void test_packed_fixed_buffers(void **state)
{
	io_suite(*state, &(struct io_cfg){ .packed = true, .direct = "off", .fixed = "on" });
}

static void test_split_plain_ring(void **state)
{
	io_suite(*state, &(struct io_cfg){
		.direct = "on",
		.drop = (1ull << VIRTIO_RING_F_INDIRECT_DESC) | (1ull << VIRTIO_RING_F_EVENT_IDX) });
}

static void test_packed_plain_ring(void **state)
{
	io_suite(*state, &(struct io_cfg){
		.packed = true, .direct = "on",
		.drop = (1ull << VIRTIO_RING_F_INDIRECT_DESC) | (1ull << VIRTIO_RING_F_EVENT_IDX) });
}

static void test_null_split(void **state)
{
	io_suite(*state, &(struct io_cfg){ .direct = "on", .null_engine = true });
}

static void test_null_packed(void **state)
{
	io_suite(*state, &(struct io_cfg){ .packed = true, .direct = "off", .null_engine = true });
}

/*
 * Rings at their edges (SECURITY.md B.26): a small ring, chains of
 * exactly the ring size lap after lap (the packed wrap counter flips
 * inside a chain), chains that wrap around the ring end, and the ring
 * filled completely with one-descriptor (indirect) chains.
 */
static void ring_edges(struct blkt *t, bool packed, unsigned int qsize)
{
	struct blkt_req r[16];
	struct blkt_buf b[16];
	uint64_t seed = 200;

	assert_true(qsize <= 16 && qsize >= 4);
	blkt_make_file(t->file, 4u << 20, 0);
	blkt_spawn(t, NULL);
	blkt_connect(t, &(struct blkt_conn_opts){ .packed = packed, .qsize = qsize });
	for (unsigned int i = 0; i < qsize; i++) {
		void *p;

		blkt_req_init(t, &r[i]);
		b[i] = buf_of(t, BLKT_SECTOR, 512, &p);
	}

	/* A chain of qsize descriptors: header, qsize - 2 sectors, status. */
	for (unsigned int lap = 0; lap < 3 * qsize; lap++, seed++) {
		const uint64_t sector = 8 * lap;

		for (unsigned int i = 0; i < qsize - 2; i++)
			blkt_pattern(vuf_gpa_to_ptr(t->vuf, b[i].gpa, BLKT_SECTOR), BLKT_SECTOR,
				     (sector + i) * BLKT_SECTOR, seed);
		blkt_req_build(&r[0], VIRTIO_BLK_T_OUT, sector, b, qsize - 2);
		assert_int_equal(blkt_do(t, 0, &r[0]), VIRTIO_BLK_S_OK);
		blkt_req_build(&r[0], VIRTIO_BLK_T_IN, sector, b, qsize - 2);
		for (unsigned int i = 0; i < qsize - 2; i++)
			memset(vuf_gpa_to_ptr(t->vuf, b[i].gpa, BLKT_SECTOR), 0xa5, BLKT_SECTOR);
		assert_int_equal(blkt_do(t, 0, &r[0]), VIRTIO_BLK_S_OK);
		assert_int_equal(r[0].len, (qsize - 2) * BLKT_SECTOR + 1);
		for (unsigned int i = 0; i < qsize - 2; i++)
			assert_int_equal(blkt_pattern_diff(vuf_gpa_to_ptr(t->vuf, b[i].gpa, BLKT_SECTOR),
							   BLKT_SECTOR, (sector + i) * BLKT_SECTOR, seed), -1);
	}

	/* Three-descriptor chains one after the other: they wrap around the end. */
	for (unsigned int k = 0; k < 4 * qsize; k++, seed++) {
		assert_int_equal(blkt_write_pattern(t, 0, 512 + k, 1, seed), VIRTIO_BLK_S_OK);
		blkt_check_read(t, 0, 512 + k, 1, seed);
		blkt_data_reset(t);
		for (unsigned int i = 0; i < qsize; i++)
			blkt_data(t, BLKT_SECTOR, 512, &b[i].gpa);
	}

	/* The whole ring in flight at once, one indirect descriptor per chain. */
	for (unsigned int lap = 0; lap < 4; lap++, seed++) {
		for (unsigned int i = 0; i < qsize; i++) {
			blkt_pattern(vuf_gpa_to_ptr(t->vuf, b[i].gpa, BLKT_SECTOR), BLKT_SECTOR,
				     (1024 + i) * BLKT_SECTOR, seed);
			blkt_req_build(&r[i], VIRTIO_BLK_T_OUT, 1024 + i, &b[i], 1);
			r[i].post_flags = VUF_POST_INDIRECT;
			assert_int_equal(vuf_vq_post_flags(t->vq[0], r[i].seg, r[i].nseg,
							   (uintptr_t)&r[i], VUF_POST_INDIRECT), 0);
		}
		assert_int_equal(vuf_vq_num_free(t->vq[0]), 0);
		assert_true(vuf_vq_kick(t->vq[0]) >= 0);
		for (unsigned int i = 0; i < qsize; i++) {
			blkt_wait_req(t, 0, &r[i]);
			assert_int_equal(blkt_req_status(&r[i]), VIRTIO_BLK_S_OK);
		}
		blkt_check_read(t, 0, 1024, qsize, seed);
	}
	blkt_pass(t);
}

static void test_split_ring_edges(void **state)
{
	ring_edges(*state, false, 8);
}

static void test_packed_ring_edges(void **state)
{
	/* Packed rings need not be a power of two. */
	ring_edges(*state, true, 7);
}

/*
 * Guest memory changes under a running device (SECURITY.md A.8), with
 * guest memory registered as io_uring fixed buffers: a hot-added region
 * serves I/O; after a region is removed, a buffer in it is refused and
 * nothing written through a stale mapping; a region added where the old
 * one was mapped gets its own data, not the old pages'.
 */
static void mem_change(struct blkt *t, bool packed)
{
	const uint64_t hot = 0x200000000ull, hot2 = 0x300000000ull;
	uint64_t gpa;
	uint32_t len;
	uint8_t *p;

	blkt_make_file(t->file, 8u << 20, 0);
	blkt_spawn(t, (const char *[]){ "--fixed-buffers", "on", NULL });
	blkt_connect(t, &(struct blkt_conn_opts){ .packed = packed });
	assert_true(vuf_has_protocol_feature(t->vuf, VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS));

	/* Region 2 (fixed buffers registered at connect). */
	gpa = BLKT_GPA_DATA2 + (1u << 20);
	p = vuf_gpa_to_ptr(t->vuf, gpa, 4096);
	blkt_pattern(p, 4096, 0, 300);
	assert_int_equal(blkt_rw(t, 0, VIRTIO_BLK_T_OUT, 0, gpa, 4096, &len), VIRTIO_BLK_S_OK);
	blkt_check_read(t, 0, 0, 8, 300);

	/* Hot-added region. */
	assert_int_equal(vuf_mem_hot_add(t->vuf, hot, 4u << 20, 0), 0);
	p = vuf_gpa_to_ptr(t->vuf, hot + 8192, 4096);
	blkt_pattern(p, 4096, 4096, 301);
	assert_int_equal(blkt_rw(t, 0, VIRTIO_BLK_T_OUT, 8, hot + 8192, 4096, &len), VIRTIO_BLK_S_OK);
	memset(p, 0xa5, 4096);
	assert_int_equal(blkt_rw(t, 0, VIRTIO_BLK_T_IN, 8, hot + 8192, 4096, &len), VIRTIO_BLK_S_OK);
	assert_int_equal(blkt_pattern_diff(p, 4096, 4096, 301), -1);

	/* Region 2 removed: a buffer there is outside guest memory now. */
	assert_int_equal(vuf_mem_hot_remove(t->vuf, BLKT_GPA_DATA2), 0);
	p = vuf_gpa_to_ptr(t->vuf, gpa, 4096);
	blkt_pattern(p, 4096, 16 * 512, 302);
	{
		struct blkt_req r;
		struct blkt_buf b = { .gpa = gpa, .len = 4096 };

		blkt_req_init(t, &r);
		blkt_req_build(&r, VIRTIO_BLK_T_OUT, 16, &b, 1);
		blkt_do(t, 0, &r);
		assert_int_equal(r.len, 0);
	}
	blkt_check_read(t, 0, 16, 8, 0);

	/* A new region of the same size: likely mapped where region 2 was. */
	assert_int_equal(vuf_mem_hot_add(t->vuf, hot2, BLKT_DATA2_SIZE, 0), 0);
	p = vuf_gpa_to_ptr(t->vuf, hot2 + (1u << 20), 4096);
	blkt_pattern(p, 4096, 24 * 512, 303);
	assert_int_equal(blkt_rw(t, 0, VIRTIO_BLK_T_OUT, 24, hot2 + (1u << 20), 4096, &len),
			 VIRTIO_BLK_S_OK);
	blkt_check_file(t->file, 24 * 512, 4096, 303);
	memset(p, 0xa5, 4096);
	assert_int_equal(blkt_rw(t, 0, VIRTIO_BLK_T_IN, 0, hot2 + (1u << 20), 4096, &len),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(blkt_pattern_diff(p, 4096, 0, 300), -1);

	/* The whole table again (SET_MEM_TABLE), region 2 back. */
	assert_int_equal(vuf_mem_commit(t->vuf), 0);
	p = vuf_gpa_to_ptr(t->vuf, gpa, 4096);
	blkt_pattern(p, 4096, 32 * 512, 304);
	assert_int_equal(blkt_rw(t, 0, VIRTIO_BLK_T_OUT, 32, gpa, 4096, &len), VIRTIO_BLK_S_OK);
	blkt_check_read(t, 0, 32, 8, 304);
	blkt_check_read(t, 0, 8, 8, 301);
	blkt_check_file(t->file, 0, 4096, 300);
	blkt_pass(t);
}

static void test_split_mem_change(void **state)
{
	mem_change(*state, false);
}

static void test_packed_mem_change(void **state)
{
	mem_change(*state, true);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_split_direct, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_split_buffered, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_packed_direct, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_packed_buffered, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_split_fixed_buffers, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_packed_fixed_buffers, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_split_plain_ring, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_packed_plain_ring, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_null_split, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_null_packed, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_split_ring_edges, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_packed_ring_edges, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_split_mem_change, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_packed_mem_change, blkt_setup, blkt_teardown),
	};

	blkt_init(argc, argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
