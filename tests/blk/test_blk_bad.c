// SPDX-License-Identifier: MIT
/*
 * vhost-blk integration: hostile and unusual requests (SECURITY.md B.18,
 * B.17, B.20), and the read-only device.
 *
 * Each row of the table is one request; after each, a good write and
 * read-back on the same queue must work (a bad request never stalls the
 * queue).  The table runs on split rings, packed rings, and with every
 * chain behind an indirect descriptor.  A few rows are valid but unusual
 * layouts (header split over two descriptors, status byte sharing the
 * data descriptor) that a device must accept.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <endian.h>
#include <string.h>
#include <sys/stat.h>

#include "blk_test.h"
#include "vu_util.h"

/* Above max_discard_sectors (2 GiB), so that limit and capacity differ. */
#define BIG_DISK ((2ull << 30) + (1u << 20))
#define GOOD_SECTOR 8

enum expect {
	X_OK,
	X_IOERR,
	X_UNSUPP,
	X_NOSTATUS,          /* completed with length 0, status not written */
	X_NOSTATUS_OR_IOERR, /* either is allowed for a chain without a usable header */
};

struct ctx {
	uint64_t cap;
	struct virtio_blk_config cfg;
};

static struct ctx *ctx_of(struct blkt *t)
{
	return t->priv;
}

static void add_seg(struct blkt_req *r, uint64_t gpa, uint32_t len, bool writable)
{
	r->seg[r->nseg++] = (struct vuf_seg){ .gpa = gpa, .len = len, .writable = writable };
}

/* The usual chain with one data buffer of len bytes (none if 0). */
static void rw(struct blkt *t, struct blkt_req *r, uint32_t type, uint64_t sector, uint32_t len)
{
	struct blkt_buf b = { .len = len };

	if (len)
		blkt_data(t, len, 0, &b.gpa);
	blkt_req_build(r, type, sector, &b, len ? 1 : 0);
}

/* DISCARD / WRITE_ZEROES with n copies of one range (sector advancing by num). */
static void ranges(struct blkt *t, struct blkt_req *r, uint32_t type, unsigned int n,
		   uint64_t sector, uint32_t num, uint32_t flags)
{
	struct virtio_blk_discard_write_zeroes *g;
	struct blkt_buf b = { .len = (uint32_t)(n * sizeof(*g)) };

	g = blkt_data(t, b.len, 16, &b.gpa);
	for (unsigned int i = 0; i < n; i++) {
		g[i].sector = htole64(sector + (uint64_t)i * num);
		g[i].num_sectors = htole32(num);
		g[i].flags = htole32(flags);
	}
	blkt_req_build(r, type, 0, &b, 1);
}

/* ---- rows: out-of-range and malformed I/O (SECURITY.md B.18) ---- */

static void b_in_at_capacity(struct blkt *t, struct blkt_req *r)
{
	rw(t, r, VIRTIO_BLK_T_IN, ctx_of(t)->cap, 512);
}

static void b_in_sector_max(struct blkt *t, struct blkt_req *r)
{
	rw(t, r, VIRTIO_BLK_T_IN, UINT64_MAX, 512);
}

static void b_out_sector_wraps(struct blkt *t, struct blkt_req *r)
{
	/* sector + 8 sectors wraps around 2^64 to a small, valid-looking sector. */
	rw(t, r, VIRTIO_BLK_T_OUT, UINT64_MAX - 3, 8 * 512);
}

static void b_out_offset_wraps(struct blkt *t, struct blkt_req *r)
{
	/* sector * 512 wraps to 0. */
	rw(t, r, VIRTIO_BLK_T_OUT, 1ull << 55, 512);
}

static void b_in_len_odd(struct blkt *t, struct blkt_req *r)
{
	rw(t, r, VIRTIO_BLK_T_IN, 0, 100);
}

static void b_out_len_odd(struct blkt *t, struct blkt_req *r)
{
	rw(t, r, VIRTIO_BLK_T_OUT, 0, 1000);
}

static void b_in_crosses_end(struct blkt *t, struct blkt_req *r)
{
	rw(t, r, VIRTIO_BLK_T_IN, ctx_of(t)->cap - 1, 1024);
}

static void b_out_crosses_end(struct blkt *t, struct blkt_req *r)
{
	rw(t, r, VIRTIO_BLK_T_OUT, ctx_of(t)->cap - 2, 4096);
}

/* ---- rows: discard and write-zeroes against config-space limits (B.18) ---- */

static void b_discard_too_many(struct blkt *t, struct blkt_req *r)
{
	ranges(t, r, VIRTIO_BLK_T_DISCARD, le32toh(ctx_of(t)->cfg.max_discard_seg) + 1, 0, 8, 0);
}

static void b_discard_no_range(struct blkt *t, struct blkt_req *r)
{
	(void)t;
	blkt_req_build(r, VIRTIO_BLK_T_DISCARD, 0, NULL, 0);
}

static void b_discard_partial_range(struct blkt *t, struct blkt_req *r)
{
	ranges(t, r, VIRTIO_BLK_T_DISCARD, 2, 0, 8, 0);
	r->seg[1].len = 20;   /* a range and a quarter */
}

static void b_discard_beyond(struct blkt *t, struct blkt_req *r)
{
	ranges(t, r, VIRTIO_BLK_T_DISCARD, 1, ctx_of(t)->cap, 8, 0);
}

static void b_discard_crosses_end(struct blkt *t, struct blkt_req *r)
{
	ranges(t, r, VIRTIO_BLK_T_DISCARD, 1, ctx_of(t)->cap - 4, 8, 0);
}

static void b_discard_wraps(struct blkt *t, struct blkt_req *r)
{
	ranges(t, r, VIRTIO_BLK_T_DISCARD, 1, UINT64_MAX - 2, 8, 0);
}

static void b_discard_too_long(struct blkt *t, struct blkt_req *r)
{
	ranges(t, r, VIRTIO_BLK_T_DISCARD, 1, 0, le32toh(ctx_of(t)->cfg.max_discard_sectors) + 1, 0);
}

static void b_discard_unmap_flag(struct blkt *t, struct blkt_req *r)
{
	/* UNMAP is a write-zeroes flag only. */
	ranges(t, r, VIRTIO_BLK_T_DISCARD, 1, GOOD_SECTOR, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
}

static void b_discard_unknown_flag(struct blkt *t, struct blkt_req *r)
{
	ranges(t, r, VIRTIO_BLK_T_DISCARD, 1, GOOD_SECTOR, 8, 0x80000000u);
}

static void b_discard_second_bad(struct blkt *t, struct blkt_req *r)
{
	/* First range valid (over the good sectors), second beyond the end:
	 * the whole request fails and the first range is left alone. */
	struct virtio_blk_discard_write_zeroes *g;
	struct blkt_buf b = { .len = 2 * sizeof(*g) };

	g = blkt_data(t, b.len, 16, &b.gpa);
	g[0].sector = htole64(GOOD_SECTOR);
	g[0].num_sectors = htole32(8);
	g[1].sector = htole64(ctx_of(t)->cap);
	g[1].num_sectors = htole32(8);
	blkt_req_build(r, VIRTIO_BLK_T_DISCARD, 0, &b, 1);
}

static void b_wz_unknown_flag(struct blkt *t, struct blkt_req *r)
{
	ranges(t, r, VIRTIO_BLK_T_WRITE_ZEROES, 1, GOOD_SECTOR, 8, 0x2);
}

static void b_wz_too_many(struct blkt *t, struct blkt_req *r)
{
	ranges(t, r, VIRTIO_BLK_T_WRITE_ZEROES, le32toh(ctx_of(t)->cfg.max_write_zeroes_seg) + 1,
	       0, 8, 0);
}

static void b_wz_too_long(struct blkt *t, struct blkt_req *r)
{
	ranges(t, r, VIRTIO_BLK_T_WRITE_ZEROES, 1, 0,
	       le32toh(ctx_of(t)->cfg.max_write_zeroes_sectors) + 1, 0);
}

static void b_wz_beyond(struct blkt *t, struct blkt_req *r)
{
	ranges(t, r, VIRTIO_BLK_T_WRITE_ZEROES, 1, ctx_of(t)->cap, 1, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
}

/* ---- rows: chain layout (status byte B.18, runt header B.17) ---- */

static void b_no_writable(struct blkt *t, struct blkt_req *r)
{
	rw(t, r, VIRTIO_BLK_T_OUT, GOOD_SECTOR, 512);
	r->nseg--;            /* drop the status byte */
}

static void b_flush_header_only(struct blkt *t, struct blkt_req *r)
{
	(void)t;
	blkt_req_build(r, VIRTIO_BLK_T_FLUSH, 0, NULL, 0);
	r->nseg--;
}

static void b_status_zero_len(struct blkt *t, struct blkt_req *r)
{
	(void)t;
	blkt_req_build(r, VIRTIO_BLK_T_FLUSH, 0, NULL, 0);
	r->seg[1].len = 0;    /* a writable descriptor without a byte */
}

static void b_header_8(struct blkt *t, struct blkt_req *r)
{
	(void)t;
	blkt_req_build(r, VIRTIO_BLK_T_FLUSH, 0, NULL, 0);
	r->seg[0].len = 8;
}

static void b_header_15_with_data(struct blkt *t, struct blkt_req *r)
{
	rw(t, r, VIRTIO_BLK_T_IN, GOOD_SECTOR, 512);
	r->seg[0].len = 15;
}

static void b_no_header(struct blkt *t, struct blkt_req *r)
{
	(void)t;
	r->nseg = 0;
	add_seg(r, r->status_gpa, 1, true);
	*r->gstatus = 0xff;
}

static void b_unknown_type(struct blkt *t, struct blkt_req *r)
{
	rw(t, r, 0x7fff, GOOD_SECTOR, 512);
}

/* ---- rows: valid but unusual layouts ---- */

static void v_header_split(struct blkt *t, struct blkt_req *r)
{
	rw(t, r, VIRTIO_BLK_T_IN, GOOD_SECTOR, 1024);
	/* header as 8 + 8 bytes: shift the rest of the chain by one. */
	memmove(&r->seg[2], &r->seg[1], (r->nseg - 1) * sizeof(r->seg[0]));
	r->nseg++;
	r->seg[0].len = 8;
	r->seg[1] = (struct vuf_seg){ .gpa = r->hdr_gpa + 8, .len = 8, .writable = false };
}

static void v_header_split_1_15(struct blkt *t, struct blkt_req *r)
{
	v_header_split(t, r);
	r->seg[0].len = 1;
	r->seg[1] = (struct vuf_seg){ .gpa = r->hdr_gpa + 1, .len = 15, .writable = false };
}

static void v_header_with_data(struct blkt *t, struct blkt_req *r)
{
	/* OUT: header and the data sector in one readable descriptor. */
	uint64_t gpa;
	uint8_t *p = blkt_data(t, 16 + 512, 0, &gpa);

	blkt_req_build(r, VIRTIO_BLK_T_OUT, GOOD_SECTOR, NULL, 0);
	memcpy(p, r->ghdr, 16);
	blkt_pattern(p + 16, 512, GOOD_SECTOR * 512, 4242);
	r->nseg = 0;
	add_seg(r, gpa, 16 + 512, false);
	add_seg(r, r->status_gpa, 1, true);
}

static void v_status_in_data(struct blkt *t, struct blkt_req *r)
{
	/* IN: 1024 data bytes and the status byte in one writable descriptor. */
	uint64_t gpa;

	blkt_data(t, 1024 + 1, 0, &gpa);
	blkt_req_build(r, VIRTIO_BLK_T_IN, GOOD_SECTOR, NULL, 0);
	r->nseg = 1;
	add_seg(r, gpa, 1024 + 1, true);
	r->gstatus = vuf_gpa_to_ptr(t->vuf, gpa + 1024, 1);
	*r->gstatus = 0xff;
}

static void v_get_id_no_buffer(struct blkt *t, struct blkt_req *r)
{
	(void)t;
	blkt_req_build(r, VIRTIO_BLK_T_GET_ID, 0, NULL, 0);
}

static void v_out_no_data(struct blkt *t, struct blkt_req *r)
{
	(void)t;
	blkt_req_build(r, VIRTIO_BLK_T_OUT, GOOD_SECTOR, NULL, 0);
}

struct bad_case {
	const char *name;
	void (*build)(struct blkt *t, struct blkt_req *r);
	enum expect expect;
	uint32_t len;         /* completion length expected for X_OK */
};

static const struct bad_case cases[] = {
	/* B.18: sector + length overflow-safe and inside the capacity. */
	{ "IN at the capacity", b_in_at_capacity, X_IOERR, 0 },
	{ "IN at sector 2^64-1", b_in_sector_max, X_IOERR, 0 },
	{ "OUT whose sector + length wraps 2^64", b_out_sector_wraps, X_IOERR, 0 },
	{ "OUT whose byte offset wraps 2^64", b_out_offset_wraps, X_IOERR, 0 },
	{ "IN of 100 bytes", b_in_len_odd, X_IOERR, 0 },
	{ "OUT of 1000 bytes", b_out_len_odd, X_IOERR, 0 },
	{ "IN crossing the end of the disk", b_in_crosses_end, X_IOERR, 0 },
	{ "OUT crossing the end of the disk", b_out_crosses_end, X_IOERR, 0 },
	/* B.18: discard / write-zeroes against the limits of config space. */
	{ "DISCARD with max_discard_seg + 1 ranges", b_discard_too_many, X_IOERR, 0 },
	{ "DISCARD without a range", b_discard_no_range, X_IOERR, 0 },
	{ "DISCARD with 20 bytes of ranges", b_discard_partial_range, X_IOERR, 0 },
	{ "DISCARD range at the capacity", b_discard_beyond, X_IOERR, 0 },
	{ "DISCARD range crossing the end", b_discard_crosses_end, X_IOERR, 0 },
	{ "DISCARD range whose end wraps 2^64", b_discard_wraps, X_IOERR, 0 },
	{ "DISCARD of max_discard_sectors + 1", b_discard_too_long, X_IOERR, 0 },
	{ "DISCARD with the UNMAP flag", b_discard_unmap_flag, X_UNSUPP, 0 },
	{ "DISCARD with an unknown flag", b_discard_unknown_flag, X_UNSUPP, 0 },
	{ "DISCARD with a bad second range", b_discard_second_bad, X_IOERR, 0 },
	{ "WRITE_ZEROES with an unknown flag", b_wz_unknown_flag, X_UNSUPP, 0 },
	{ "WRITE_ZEROES with max_write_zeroes_seg + 1 ranges", b_wz_too_many, X_IOERR, 0 },
	{ "WRITE_ZEROES of max_write_zeroes_sectors + 1", b_wz_too_long, X_IOERR, 0 },
	{ "WRITE_ZEROES range at the capacity", b_wz_beyond, X_IOERR, 0 },
	/* B.18: status byte present and writable; B.17: runt header. */
	{ "OUT without a writable byte", b_no_writable, X_NOSTATUS, 0 },
	{ "FLUSH of a lone header", b_flush_header_only, X_NOSTATUS, 0 },
	{ "status descriptor of length 0", b_status_zero_len, X_NOSTATUS, 0 },
	{ "header of 8 bytes", b_header_8, X_NOSTATUS_OR_IOERR, 0 },
	{ "header of 15 bytes, then data", b_header_15_with_data, X_NOSTATUS_OR_IOERR, 0 },
	{ "no header at all", b_no_header, X_NOSTATUS, 0 },
	{ "unknown type with data", b_unknown_type, X_UNSUPP, 0 },
	/* Valid layouts. */
	{ "header split 8 + 8 (valid)", v_header_split, X_OK, 1024 + 1 },
	{ "header split 1 + 15 (valid)", v_header_split_1_15, X_OK, 1024 + 1 },
	{ "header and data in one descriptor (valid)", v_header_with_data, X_OK, 1 },
	{ "status byte in the data descriptor (valid)", v_status_in_data, X_OK, 1024 + 1 },
	{ "GET_ID without a buffer (valid)", v_get_id_no_buffer, X_OK, 1 },
	{ "OUT of no data (valid)", v_out_no_data, X_OK, 1 },
};

static const char *status_name(uint8_t s)
{
	switch (s) {
	case VIRTIO_BLK_S_OK: return "OK";
	case VIRTIO_BLK_S_IOERR: return "IOERR";
	case VIRTIO_BLK_S_UNSUPP: return "UNSUPP";
	case 0xff: return "not written";
	default: return "?";
	}
}

static void check_case(const struct bad_case *c, const struct blkt_req *r)
{
	uint8_t st = blkt_req_status(r);
	bool ok;

	switch (c->expect) {
	case X_OK:
		ok = st == VIRTIO_BLK_S_OK && r->len == c->len;
		break;
	case X_IOERR:
		ok = st == VIRTIO_BLK_S_IOERR && r->len == 1;
		break;
	case X_UNSUPP:
		ok = st == VIRTIO_BLK_S_UNSUPP && r->len == 1;
		break;
	case X_NOSTATUS:
		ok = r->len == 0;
		break;
	default:
		ok = r->len == 0 || (st == VIRTIO_BLK_S_IOERR && r->len == 1);
		break;
	}
	if (!ok)
		fail_msg("%s: status %s, length %u", c->name, status_name(st), r->len);
}

static void run_table(struct blkt *t, bool packed, bool indirect)
{
	struct ctx cx;

	t->priv = &cx;
	blkt_make_file(t->file, BIG_DISK, 0);
	blkt_spawn(t, NULL);
	blkt_connect(t, &(struct blkt_conn_opts){ .packed = packed });
	blkt_get_config(t, &cx.cfg);
	cx.cap = le64toh(cx.cfg.capacity);
	assert_int_equal(cx.cap, BIG_DISK / 512);
	assert_true(le32toh(cx.cfg.max_discard_sectors) + 1 < cx.cap);
	assert_true(le32toh(cx.cfg.max_write_zeroes_sectors) + 1 < cx.cap);

	for (unsigned int i = 0; i < VU_ARRAY_SIZE(cases); i++) {
		const struct bad_case *c = &cases[i];
		uint64_t seed = 1000 + i;
		struct blkt_req r;

		/* Known data under the rows that aim at GOOD_SECTOR. */
		assert_int_equal(blkt_write_pattern(t, 0, GOOD_SECTOR, 8, seed), VIRTIO_BLK_S_OK);
		blkt_req_init(t, &r);
		c->build(t, &r);
		if (indirect)
			r.post_flags = VUF_POST_INDIRECT;
		blkt_do(t, 0, &r);
		check_case(c, &r);
		if (!blkt_alive(t))
			fail_msg("the daemon died on: %s", c->name);
		/* A refused request changed nothing; valid writes wrote their pattern. */
		if (c->build == v_header_with_data)
			blkt_check_read(t, 0, GOOD_SECTOR, 1, 4242);
		else if (c->build != v_out_no_data)
			blkt_check_read(t, 0, GOOD_SECTOR, 8, seed);
		/* The queue goes on. */
		assert_int_equal(blkt_write_pattern(t, 0, 64, 4, seed), VIRTIO_BLK_S_OK);
		blkt_check_read(t, 0, 64, 4, seed);
		blkt_data_reset(t);
	}
	t->priv = NULL;
	blkt_pass(t);
}

static void test_bad_split(void **state)
{
	run_table(*state, false, false);
}

static void test_bad_packed(void **state)
{
	run_table(*state, true, false);
}

static void test_bad_split_indirect(void **state)
{
	run_table(*state, false, true);
}

static void test_bad_packed_indirect(void **state)
{
	run_table(*state, true, true);
}

/* --read-only: writes of any kind refused, reads served, the file untouched. */
static void test_read_only(void **state)
{
	struct blkt *t = *state;
	const uint64_t bytes = 4u << 20, seed = 5;
	const struct virtio_blk_discard_write_zeroes rg = { .sector = 8, .num_sectors = 8 };
	const struct virtio_blk_discard_write_zeroes rgu = {
		.sector = 8, .num_sectors = 8, .flags = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP };
	struct stat before, after;
	uint64_t offered;
	struct virtio_blk_config cfg;

	blkt_make_file(t->file, bytes, seed);
	assert_int_equal(stat(t->file, &before), 0);
	blkt_spawn(t, (const char *[]){ "--read-only", NULL });
	blkt_connect(t, NULL);
	assert_int_equal(vuf_get_features(t->vuf, &offered), 0);
	assert_true(offered & (1ull << VIRTIO_BLK_F_RO));
	assert_true(vuf_features(t->vuf) & (1ull << VIRTIO_BLK_F_RO));
	/* Nothing that could write is offered either. */
	assert_false(offered & (1ull << VIRTIO_BLK_F_DISCARD));
	assert_false(offered & (1ull << VIRTIO_BLK_F_WRITE_ZEROES));
	blkt_get_config(t, &cfg);
	assert_int_equal(le64toh(cfg.capacity), bytes / 512);

	/* A guest that ignores RO gets IOERR. */
	assert_int_equal(blkt_write_pattern(t, 0, 0, 8, 77), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blkt_write_pattern(t, 0, bytes / 512 - 1, 1, 77), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blkt_ranges(t, 0, VIRTIO_BLK_T_DISCARD, &rg, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blkt_ranges(t, 0, VIRTIO_BLK_T_WRITE_ZEROES, &rg, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blkt_ranges(t, 0, VIRTIO_BLK_T_WRITE_ZEROES, &rgu, 1), VIRTIO_BLK_S_IOERR);
	/* Reads, flush and GET_ID work. */
	blkt_check_read(t, 0, 0, 64, seed);
	blkt_check_read(t, 0, bytes / 512 - 8, 8, seed);
	assert_int_equal(blkt_nodata(t, 0, VIRTIO_BLK_T_FLUSH, 0), VIRTIO_BLK_S_OK);
	blkt_pass(t);

	/* After the daemon is gone: same content, size and mtime. */
	blkt_disconnect(t);
	assert_int_equal(blkt_stop(t, 10000), 0);
	blkt_check_file(t->file, 0, bytes, seed);
	assert_int_equal(stat(t->file, &after), 0);
	assert_int_equal(after.st_size, before.st_size);
	assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_split, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_bad_packed, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_bad_split_indirect, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_bad_packed_indirect, blkt_setup, blkt_teardown),
		cmocka_unit_test_setup_teardown(test_read_only, blkt_setup, blkt_teardown),
	};

	blkt_init(argc, argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
