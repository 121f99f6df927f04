// SPDX-License-Identifier: MIT
/*
 * Unit tests of the split ring walker (common/vq_split.c through the
 * vu_vq_* API): chains as a guest driver writes them, hostile chains
 * (SECURITY.md B.11, B.13-B.17, B.20), completion order, index wrap and
 * the notification protocol (C.22-C.25).
 */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake_guest.h"
#include "vu_util.h"
#include "vu_vq.h"

#define B     FG_BUF_GPA
#define ITAB  FG_RING2_GPA     /* indirect tables */
#define NEXT  VRING_DESC_F_NEXT
#define WR    VRING_DESC_F_WRITE
#define IND   VRING_DESC_F_INDIRECT
#define R0_END (FG_R0_GPA + FG_R0_SIZE)
#define MAXSEG 16

struct t {
	struct fake_guest *g;
	struct fg_split r;
	struct vu_chain c;
	struct iovec iov[MAXSEG];
	uint64_t gpa[MAXSEG];
};

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->g = fg_create();
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;

	fg_destroy(t->g);
	free(t);
	return 0;
}

static void ring(struct t *t, uint32_t size, uint16_t start, unsigned int flags)
{
	fg_split_setup(t->g, &t->r, 0, size, FG_RING_GPA, start, flags);
}

static int pop(struct t *t, uint16_t max)
{
	vu_chain_init(&t->c, t->iov, t->gpa, max);
	return vu_vq_pop(t->r.vq, &t->c);
}

/* Pop, expecting a chain with head `id`. */
static void pop_expect(struct t *t, uint16_t id)
{
	assert_int_equal(pop(t, MAXSEG), 1);
	assert_int_equal(t->c.id, id);
}

/* The next used element must be (id, len). */
static void used_expect(struct t *t, uint32_t id, uint32_t len)
{
	uint32_t uid, ulen;

	assert_true(fg_split_get_used(&t->r, &uid, &ulen));
	assert_int_equal(uid, id);
	assert_int_equal(ulen, len);
}

/* A one-descriptor chain at head: a readable buffer of 16 bytes. */
static void publish_simple(struct t *t, uint16_t head)
{
	fg_split_desc(&t->r, head, B + 0x10000 + head * 0x100ull, 16, 0, 0);
	fg_split_publish(&t->r, head);
}

/* ---- chains: accepted and hostile ---- */

struct d {
	uint16_t i;
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct seg {
	uint64_t gpa;
	uint32_t len;
};

struct chain_case {
	const char *name;
	unsigned int features;      /* FG_INDIRECT */
	struct d desc[8];           /* descriptors of the ring's table */
	unsigned int ndesc;
	struct d itab[4];           /* an indirect table at ITAB (i = entry) */
	unsigned int nitab;
	uint16_t head;
	uint16_t max;               /* iovecs the device offers; 0: MAXSEG */
	bool ok;                    /* false: returned with length 0 */
	uint16_t nout, nin;
	uint32_t out_len, in_len;
	struct seg seg[4];
};

static const struct chain_case chain_cases[] = {
	/* accepted: readable then writable */
	{ "readable + writable", 0,
	  { { 0, B, 100, NEXT, 1 }, { 1, B + 0x1000, 200, WR, 0 } }, 2, { { 0 } }, 0, 0, 0,
	  true, 1, 1, 100, 200, { { B, 100 }, { B + 0x1000, 200 } } },
	/* accepted: next in any order inside the table */
	{ "next out of order", 0,
	  { { 5, B, 1, NEXT, 2 }, { 2, B + 1, 2, NEXT, 6 }, { 6, B + 3, 3, WR, 0 } }, 3, { { 0 } }, 0, 5, 0,
	  true, 2, 1, 3, 3, { { B, 1 }, { B + 1, 2 }, { B + 3, 3 } } },
	/* accepted: chain through an indirect table */
	{ "indirect", FG_INDIRECT,
	  { { 0, ITAB, 48, IND, 0 } }, 1,
	  { { 0, B, 10, NEXT, 2 }, { 2, B + 0x100, 20, WR | NEXT, 1 }, { 1, B + 0x200, 30, WR, 0 } }, 3, 0, 0,
	  true, 1, 2, 10, 50, { { B, 10 }, { B + 0x100, 20 }, { B + 0x200, 30 } } },
	/* B.15: zero-length descriptor: accepted, no iovec */
	{ "zero-length descriptor", 0,
	  { { 0, B, 0, NEXT, 1 }, { 1, B + 0x10, 8, WR | NEXT, 2 }, { 2, FG_HOLE_GPA, 0, WR, 0 } }, 3,
	  { { 0 } }, 0, 0, 0, true, 0, 1, 0, 8, { { B + 0x10, 8 } } },
	/* B.11: buffer crossing two adjacent regions: two iovecs */
	{ "buffer spans r1 and r2", 0,
	  { { 0, FG_R2_GPA - 0x10, 0x20, 0, 0 } }, 1, { { 0 } }, 0, 0, 0,
	  true, 2, 0, 0x20, 0, { { FG_R2_GPA - 0x10, 0x10 }, { FG_R2_GPA, 0x10 } } },
	/* One descriptor (the pop's fast path): writable, across two regions */
	{ "one writable descriptor spans r1 and r2", 0,
	  { { 0, FG_R2_GPA - 0x10, 0x20, WR, 0 } }, 1, { { 0 } }, 0, 0, 0,
	  true, 0, 2, 0, 0x20, { { FG_R2_GPA - 0x10, 0x10 }, { FG_R2_GPA, 0x10 } } },
	/* One descriptor of length 0, address in the hole: accepted, no iovec */
	{ "one zero-length descriptor", 0, { { 0, FG_HOLE_GPA, 0, WR, 0 } }, 1, { { 0 } }, 0, 0, 0,
	  true, 0, 0, 0, 0, { { 0 } } },
	/* B.11: the full chain fits the iov array exactly */
	{ "exactly max segments", 0,
	  { { 0, B, 1, NEXT, 1 }, { 1, FG_R2_GPA - 1, 2, WR, 0 } }, 2, { { 0 } }, 0, 0, 3,
	  true, 1, 2, 1, 2, { { B, 1 }, { FG_R2_GPA - 1, 1 }, { FG_R2_GPA, 1 } } },

	/* B.15: descriptor loop */
	{ "loop 0 -> 1 -> 0", 0, { { 0, B, 1, NEXT, 1 }, { 1, B, 1, NEXT, 0 } }, 2, { { 0 } }, 0, 0, 0, false },
	/* B.15: descriptor loop of zero-length descriptors (no iovec bounds it) */
	{ "loop, len 0", 0, { { 0, B, 0, NEXT, 1 }, { 1, B, 0, NEXT, 0 } }, 2, { { 0 } }, 0, 0, 0, false },
	/* B.15: descriptor pointing at itself */
	{ "self loop", 0, { { 3, B, 0, NEXT, 3 } }, 1, { { 0 } }, 0, 3, 0, false },
	/* B.15: chain longer than the queue size (every descriptor, then again) */
	{ "longer than the ring", 0,
	  { { 0, B, 1, NEXT, 1 }, { 1, B, 0, NEXT, 2 }, { 2, B, 0, NEXT, 3 }, { 3, B, 0, NEXT, 4 },
	    { 4, B, 0, NEXT, 5 }, { 5, B, 0, NEXT, 6 }, { 6, B, 0, NEXT, 7 }, { 7, B, 0, NEXT, 0 } }, 8,
	  { { 0 } }, 0, 0, 0, false },
	/* B.15: next out of the table */
	{ "next = size", 0, { { 0, B, 1, NEXT, 8 } }, 1, { { 0 } }, 0, 0, 0, false },
	/* B.15: next far out of the table */
	{ "next = 0xffff", 0, { { 0, B, 1, NEXT, 0xffff } }, 1, { { 0 } }, 0, 0, 0, false },
	/* B.15: indirect table of length 0 */
	{ "indirect len 0", FG_INDIRECT, { { 0, ITAB, 0, IND, 0 } }, 1,
	  { { 0, B, 1, 0, 0 } }, 1, 0, 0, false },
	/* B.15: indirect table length not a multiple of 16 */
	{ "indirect len 24", FG_INDIRECT, { { 0, ITAB, 24, IND, 0 } }, 1,
	  { { 0, B, 1, 0, 0 }, { 1, B, 1, 0, 0 } }, 2, 0, 0, false },
	/* B.15: nested indirect */
	{ "nested indirect", FG_INDIRECT, { { 0, ITAB, 32, IND, 0 } }, 1,
	  { { 0, B, 1, NEXT, 1 }, { 1, ITAB, 32, IND, 0 } }, 2, 0, 0, false },
	/* B.15: indirect with NEXT set */
	{ "indirect with NEXT", FG_INDIRECT, { { 0, ITAB, 16, IND | NEXT, 1 }, { 1, B, 1, 0, 0 } }, 2,
	  { { 0, B, 1, 0, 0 } }, 1, 0, 0, false },
	/* B.15: indirect without VIRTIO_RING_F_INDIRECT_DESC */
	{ "indirect not negotiated", 0, { { 0, ITAB, 16, IND, 0 } }, 1,
	  { { 0, B, 1, 0, 0 } }, 1, 0, 0, false },
	/* B.15: indirect descriptor after direct ones */
	{ "indirect after direct", FG_INDIRECT, { { 0, B, 1, NEXT, 1 }, { 1, ITAB, 16, IND, 0 } }, 2,
	  { { 0, B, 1, 0, 0 } }, 1, 0, 0, false },
	/* B.11: indirect table in the hole */
	{ "indirect table in hole", FG_INDIRECT, { { 0, FG_HOLE_GPA, 16, IND, 0 } }, 1,
	  { { 0 } }, 0, 0, 0, false },
	/* B.11: indirect table crossing a region end */
	{ "indirect table crosses end", FG_INDIRECT, { { 0, R0_END - 16, 32, IND, 0 } }, 1,
	  { { 0 } }, 0, 0, 0, false },
	/* B.15: misaligned indirect table */
	{ "indirect table misaligned", FG_INDIRECT, { { 0, ITAB + 4, 16, IND, 0 } }, 1,
	  { { 0 } }, 0, 0, 0, false },
	/* B.15: loop inside an indirect table */
	{ "indirect loop", FG_INDIRECT, { { 0, ITAB, 32, IND, 0 } }, 1,
	  { { 0, B, 1, NEXT, 1 }, { 1, B, 1, NEXT, 0 } }, 2, 0, 0, false },
	/* B.15: loop of zero-length descriptors inside an indirect table */
	{ "indirect loop, len 0", FG_INDIRECT, { { 0, ITAB, 32, IND, 0 } }, 1,
	  { { 0, B, 0, NEXT, 1 }, { 1, B, 0, NEXT, 0 } }, 2, 0, 0, false },
	/* B.15: next beyond the indirect table */
	{ "indirect next beyond table", FG_INDIRECT, { { 0, ITAB, 32, IND, 0 } }, 1,
	  { { 0, B, 1, NEXT, 2 }, { 1, B, 1, 0, 0 }, { 2, B, 1, 0, 0 } }, 3, 0, 0, false },
	/* B.15: readable inside an indirect table after a writable one */
	{ "indirect readable after writable", FG_INDIRECT, { { 0, ITAB, 32, IND, 0 } }, 1,
	  { { 0, B, 1, WR | NEXT, 1 }, { 1, B, 1, 0, 0 } }, 2, 0, 0, false },
	/* B.15: huge length (2^32-1) runs out of guest memory */
	{ "len 2^32-1", 0, { { 0, B, UINT32_MAX, 0, 0 } }, 1, { { 0 } }, 0, 0, 0, false },
	/* B.15: huge writable length */
	{ "writable len 2^32-1", 0, { { 0, FG_R1_GPA, UINT32_MAX, WR, 0 } }, 1, { { 0 } }, 0, 0, 0, false },
	/* B.15: readable descriptor after a writable one */
	{ "readable after writable", 0, { { 0, B, 1, WR | NEXT, 1 }, { 1, B, 1, 0, 0 } }, 2,
	  { { 0 } }, 0, 0, 0, false },
	/* B.11: buffer in the hole */
	{ "buffer in hole", 0, { { 0, FG_HOLE_GPA + 0x100, 16, 0, 0 } }, 1, { { 0 } }, 0, 0, 0, false },
	/* B.11: buffer running from a region into the hole */
	{ "buffer r0 into hole", 0, { { 0, R0_END - 8, 16, WR, 0 } }, 1, { { 0 } }, 0, 0, 0, false },
	/* B.11: buffer past the end of guest memory */
	{ "buffer past memory", 0, { { 0, FG_MEM_END - 8, 16, 0, 0 } }, 1, { { 0 } }, 0, 0, 0, false },
	/* B.12: one writable descriptor beyond guest memory (fast path) */
	{ "one writable buffer past memory", 0, { { 0, FG_MEM_END, 64, WR, 0 } }, 1, { { 0 } }, 0, 0, 0, false },
	/* B.11: gpa + len wraps 64 bits */
	{ "buffer gpa wraps", 0, { { 0, UINT64_MAX - 7, 16, 0, 0 } }, 1, { { 0 } }, 0, 0, 0, false },
	/* B.17: more segments than the device's iov array */
	{ "too many segments", 0,
	  { { 0, B, 1, NEXT, 1 }, { 1, B, 1, NEXT, 2 }, { 2, B, 1, WR, 0 } }, 3, { { 0 } }, 0, 0, 2, false },
	/* B.17: a region split needs one more segment than offered */
	{ "split needs one more segment", 0, { { 0, FG_R2_GPA - 1, 2, 0, 0 } }, 1, { { 0 } }, 0, 0, 1, false },
	/* B.17: too many segments inside an indirect table */
	{ "indirect too many segments", FG_INDIRECT, { { 0, ITAB, 48, IND, 0 } }, 1,
	  { { 0, B, 1, NEXT, 1 }, { 1, B, 1, NEXT, 2 }, { 2, B, 1, 0, 0 } }, 3, 0, 2, false },
};

static void write_case(struct t *t, const struct chain_case *c)
{
	struct vring_desc *itab = fg_ptr(t->g, ITAB, 4 * sizeof(*itab));

	memset(t->r.desc, 0xee, 16ull * t->r.size);   /* garbage elsewhere */
	for (unsigned int k = 0; k < c->ndesc; k++)
		fg_split_desc(&t->r, c->desc[k].i, c->desc[k].addr, c->desc[k].len,
			      c->desc[k].flags, c->desc[k].next);
	for (unsigned int k = 0; k < c->nitab; k++)
		fg_desc_write(&itab[c->itab[k].i], c->itab[k].addr, c->itab[k].len,
			      c->itab[k].flags, c->itab[k].next);
}

static void check_chain(struct t *t, const struct chain_case *c)
{
	assert_int_equal(t->c.id, c->head);
	assert_int_equal(t->c.nout, c->nout);
	assert_int_equal(t->c.nin, c->nin);
	assert_int_equal(t->c.out_len, c->out_len);
	assert_int_equal(t->c.in_len, c->in_len);
	for (unsigned int k = 0; k < (unsigned int)c->nout + c->nin; k++) {
		uint64_t gpa;

		assert_int_equal(t->c.gpa[k], c->seg[k].gpa);
		assert_int_equal(t->c.iov[k].iov_len, c->seg[k].len);
		assert_true(fg_host_to_gpa(t->g, t->c.iov[k].iov_base, &gpa));
		assert_int_equal(gpa, c->seg[k].gpa);
	}
}

static void test_chains(void **state)
{
	struct t *t = *state;

	for (size_t i = 0; i < VU_ARRAY_SIZE(chain_cases); i++) {
		const struct chain_case *c = &chain_cases[i];
		uint16_t max = c->max ? c->max : MAXSEG;
		uint16_t good = c->head == 7 ? 6 : 7;

		print_message("chain: %s\n", c->name);
		ring(t, 8, 0, c->features);
		write_case(t, c);
		fg_split_publish(&t->r, c->head);
		if (c->ok) {
			assert_int_equal(pop(t, max), 1);
			check_chain(t, c);
			vu_vq_push(t->r.vq, &t->c, c->in_len);
			vu_vq_notify(t->r.vq);
			used_expect(t, c->head, c->in_len);
		} else {
			/* B.20: the bad chain is returned with length 0 ... */
			assert_int_equal(pop(t, max), 0);
			assert_int_equal(t->r.vq->stats.bad_chains, 1);
			vu_vq_notify(t->r.vq);
			used_expect(t, c->head, 0);
			assert_true(fg_eventfd_fired(t->r.vq->call_fd));
		}
		/* ... and the queue keeps serving chains. */
		assert_false(t->r.vq->broken);
		publish_simple(t, good);
		pop_expect(t, good);
		assert_int_equal(t->c.out_len, 16);
		vu_vq_push(t->r.vq, &t->c, 0);
		vu_vq_notify(t->r.vq);
		used_expect(t, good, 0);
		fg_split_teardown(&t->r);
	}
}

/* B.20: bad chains are skipped within one pop; the good one behind is served. */
static void test_bad_then_good_same_pop(void **state)
{
	struct t *t = *state;

	ring(t, 8, 0, 0);
	fg_split_desc(&t->r, 0, B, 1, NEXT, 0);             /* B.15: self loop */
	fg_split_desc(&t->r, 1, FG_HOLE_GPA, 1, 0, 0);      /* B.11: buffer in hole */
	fg_split_desc(&t->r, 2, B, 1, NEXT, 9);             /* B.15: next out of range */
	fg_split_publish(&t->r, 0);
	fg_split_publish(&t->r, 1);
	fg_split_publish(&t->r, 2);
	publish_simple(t, 3);
	pop_expect(t, 3);
	assert_int_equal(t->r.vq->stats.bad_chains, 3);
	vu_vq_push(t->r.vq, &t->c, 0);
	vu_vq_notify(t->r.vq);
	used_expect(t, 0, 0);
	used_expect(t, 1, 0);
	used_expect(t, 2, 0);
	used_expect(t, 3, 0);
	assert_int_equal(pop(t, MAXSEG), 0);
}

/* B.17: lengths whose total overflows 32 bits (buffers really in memory). */
static void test_total_length_overflow(void **state)
{
	struct t *t = *state;
	const uint64_t big = 1ull << 32;   /* a sparse 2 GiB region at 4 GiB */

	assert_int_equal(fg_add_region(t->g, big, 0x80000000ull, 0x7e0000000000ull, 0), 0);
	ring(t, 8, 0, 0);

	/* 2^31 + (2^31 - 1): the largest total, accepted */
	fg_split_desc(&t->r, 0, big, 0x80000000u, NEXT, 1);
	fg_split_desc(&t->r, 1, big, 0x7fffffffu, 0, 0);
	fg_split_publish(&t->r, 0);
	pop_expect(t, 0);
	assert_int_equal(t->c.out_len, UINT32_MAX);
	assert_int_equal(t->c.nout, 2);
	vu_vq_push(t->r.vq, &t->c, 0);

	/* B.17: 2^31 + 2^31 readable overflows 32 bits */
	fg_split_desc(&t->r, 2, big, 0x80000000u, NEXT, 3);
	fg_split_desc(&t->r, 3, big, 0x80000000u, 0, 0);
	fg_split_publish(&t->r, 2);
	/* B.17: 2^31 + 2^31 writable overflows 32 bits */
	fg_split_desc(&t->r, 4, big, 0x80000000u, WR | NEXT, 5);
	fg_split_desc(&t->r, 5, big, 0x80000000u, WR, 0);
	fg_split_publish(&t->r, 4);
	publish_simple(t, 6);
	pop_expect(t, 6);
	assert_int_equal(t->r.vq->stats.bad_chains, 2);
	vu_vq_push(t->r.vq, &t->c, 0);
	vu_vq_notify(t->r.vq);
	used_expect(t, 0, 0);
	used_expect(t, 2, 0);
	used_expect(t, 4, 0);
	used_expect(t, 6, 0);
}

/* ---- errors that break the queue ---- */

struct broken_case {
	const char *name;
	uint16_t start;
	int kind;           /* 0: publish head `v`; 1: set avail->idx to start + v */
	uint16_t v;
};

static const struct broken_case broken_cases[] = {
	/* B.13: head index = queue size */
	{ "head = size", 0, 0, 8 },
	/* B.13: head index far beyond the queue size */
	{ "head = 0xffff", 0, 0, 0xffff },
	/* B.13: head index out of range after the index wrapped */
	{ "head = size at idx 65535", 65535, 0, 8 },
	/* B.14: avail idx moved by size + 1 */
	{ "avail idx + size + 1", 0, 1, 9 },
	/* B.14: avail idx moved backwards (by 65535 forwards) */
	{ "avail idx - 1", 100, 1, 0xffff },
	/* B.14: avail idx moved by size + 1 across 65535 */
	{ "avail idx + size + 1 across wrap", 65530, 1, 9 },
	/* B.14: avail idx moved by 0x8000 */
	{ "avail idx + 0x8000", 7, 1, 0x8000 },
};

static void test_broken(void **state)
{
	struct t *t = *state;

	for (size_t i = 0; i < VU_ARRAY_SIZE(broken_cases); i++) {
		const struct broken_case *c = &broken_cases[i];

		print_message("broken: %s\n", c->name);
		ring(t, 8, c->start, 0);
		for (uint16_t d = 0; d < 8; d++)
			fg_split_desc(&t->r, d, B, 16, 0, 0);
		if (c->kind == 0)
			fg_split_publish(&t->r, c->v);
		else
			fg_split_set_avail_idx(&t->r, (uint16_t)(c->start + c->v));
		assert_int_equal(pop(t, MAXSEG), -EIO);
		assert_true(t->r.vq->broken);
		/* Latched: a good chain published later is not processed. */
		if (c->kind == 0)
			publish_simple(t, 1);
		assert_int_equal(pop(t, MAXSEG), -EIO);
		assert_int_equal(pop(t, MAXSEG), -EIO);
		assert_false(vu_vq_has_work(t->r.vq));
		assert_false(vu_vq_enable_notify(t->r.vq));
		assert_int_equal(fg_split_used_idx(&t->r), c->start);
		fg_split_teardown(&t->r);
	}
}

/* B.14: avail idx moved by exactly the queue size is legal */
static void test_full_ring(void **state)
{
	struct t *t = *state;

	ring(t, 8, 65532, 0);
	for (uint16_t h = 0; h < 8; h++)
		publish_simple(t, (uint16_t)(7 - h));
	for (uint16_t h = 0; h < 8; h++) {
		pop_expect(t, (uint16_t)(7 - h));
		vu_vq_push(t->r.vq, &t->c, 0);
	}
	assert_int_equal(pop(t, MAXSEG), 0);
	vu_vq_notify(t->r.vq);
	for (uint16_t h = 0; h < 8; h++)
		used_expect(t, (uint16_t)(7 - h), 0);
	assert_int_equal(fg_split_used_idx(&t->r), 4);
}

/*
 * Many indirect chains made available at once, among them tables outside
 * guest memory and, last, a head beyond the ring: the walker loads tables
 * ahead of the chain it takes (a hint only), and every chain still comes
 * out as its own checks say (B.11, B.13, B.20).
 */
static void test_indirect_batch(void **state)
{
	struct t *t = *state;
	struct vring_desc *itab = fg_ptr(t->g, ITAB, 10 * 0x100);
	uint32_t uid, ulen;

	ring(t, 16, 0, FG_INDIRECT);
	for (uint16_t k = 0; k < 10; k++) {
		uint64_t table = ITAB + k * 0x100ull;

		if (k == 3)
			table = FG_HOLE_GPA;                 /* in the hole */
		else if (k == 5)
			table = 0xffffffffffff0000ull;       /* beyond memory */
		else if (k == 7)
			table = R0_END - 16;                 /* crosses the region's end */
		fg_desc_write(&itab[k * 16], B + k * 0x1000ull, 16, NEXT, 1);
		fg_desc_write(&itab[k * 16 + 1], B + k * 0x1000ull + 0x100, 1, WR, 0);
		fg_split_desc(&t->r, k, table, 32, IND, 0);
		fg_split_publish(&t->r, k);
	}
	fg_split_publish(&t->r, 200);
	for (uint16_t k = 0; k < 10; k++) {
		if (k == 3 || k == 5 || k == 7)
			continue;
		pop_expect(t, k);
		assert_int_equal(t->c.nout, 1);
		assert_int_equal(t->c.nin, 1);
		assert_int_equal(t->c.gpa[0], B + k * 0x1000ull);
		assert_int_equal(t->c.gpa[1], B + k * 0x1000ull + 0x100);
		vu_vq_push(t->r.vq, &t->c, 1);
	}
	assert_int_equal(t->r.vq->stats.bad_chains, 3);
	assert_int_equal(pop(t, MAXSEG), -EIO);
	vu_vq_notify(t->r.vq);
	for (uint16_t k = 0; k < 10; k++) {
		assert_true(fg_split_get_used(&t->r, &uid, &ulen));
		assert_int_equal(uid, k);
		assert_int_equal(ulen, k == 3 || k == 5 || k == 7 ? 0 : 1);
	}
}

/* ---- completion ---- */

static void test_out_of_order(void **state)
{
	struct t *t = *state;
	static const uint16_t heads[] = { 0, 2, 4, 6 };
	static const unsigned int order[] = { 3, 0, 2, 1 };
	struct vu_chain chains[4];
	struct iovec iovs[4][MAXSEG];
	uint64_t gpas[4][MAXSEG];

	ring(t, 8, 0, 0);
	for (unsigned int round = 0; round < 5; round++) {
		for (unsigned int k = 0; k < 4; k++) {
			uint16_t h = heads[k];

			fg_split_desc(&t->r, h, B + h * 0x1000ull, 16, NEXT, (uint16_t)(h + 1));
			fg_split_desc(&t->r, (uint16_t)(h + 1), B + h * 0x1000ull + 0x100, 100 + k, WR, 0);
			fg_split_publish(&t->r, h);
		}
		for (unsigned int k = 0; k < 4; k++) {
			vu_chain_init(&chains[k], iovs[k], gpas[k], MAXSEG);
			assert_int_equal(vu_vq_pop(t->r.vq, &chains[k]), 1);
			assert_int_equal(chains[k].id, heads[k]);
		}
		/* Complete in another order; a length beyond in_len is clamped. */
		for (unsigned int k = 0; k < 4; k++) {
			unsigned int j = order[k];

			vu_vq_push(t->r.vq, &chains[j], j == 1 ? 5000 : 10 + j);
			if (k == 1)
				vu_vq_notify(t->r.vq);
		}
		vu_vq_notify(t->r.vq);
		for (unsigned int k = 0; k < 4; k++) {
			unsigned int j = order[k];

			used_expect(t, heads[j], j == 1 ? 101 : 10 + j);
		}
	}
	assert_int_equal(fg_split_used_idx(&t->r), 20);
	assert_int_equal(t->r.vq->stats.completed, 20);
}

/* Indexes are free-running 16-bit counters: wrap at 65535. */
static void test_index_wrap(void **state)
{
	struct t *t = *state;
	static const unsigned int batches[] = { 2, 1, 1, 2, 1, 2, 1, 2 };
	uint16_t head = 0;

	ring(t, 4, 65531, FG_EVENT_IDX);
	for (size_t b = 0; b < VU_ARRAY_SIZE(batches); b++) {
		for (unsigned int k = 0; k < batches[b]; k++, head = (head + 1) % 4)
			publish_simple(t, head);
		while (pop(t, MAXSEG) == 1)
			vu_vq_push(t->r.vq, &t->c, 0);
		vu_vq_notify(t->r.vq);
	}
	assert_int_equal(t->r.vq->last_avail_idx, (uint16_t)(65531 + 12));
	assert_int_equal(fg_split_used_idx(&t->r), (uint16_t)(65531 + 12));
	for (unsigned int n = 0; n < 12; n++)
		used_expect(t, n % 4, 0);
	assert_int_equal(t->r.last_used, 7);
}

/* ---- notifications ---- */

struct event_case {
	const char *name;
	uint16_t start;
	int16_t event;       /* used_event relative to the used idx before the batch */
	uint16_t n;          /* completions in the batch */
	bool fire;
};

static const struct event_case event_cases[] = {
	/* C.25: used_event = first entry of the batch: crossed */
	{ "event = old", 0, 0, 1, true },
	/* C.25: used_event = last entry of the batch: crossed */
	{ "event = new - 1", 0, 2, 3, true },
	/* C.25: used_event = the entry after the batch: not crossed */
	{ "event = new", 0, 3, 3, false },
	/* C.25: used_event behind the batch: already passed */
	{ "event = old - 1", 0, -1, 3, false },
	/* C.25: used_event far ahead */
	{ "event far ahead", 0, 0x4000, 2, false },
	/* C.25: event = 65535 crossed while the index wraps to 0 */
	{ "event 65535, new = 0", 65533, 2, 3, true },
	/* C.25: event = 65535 not crossed, batch ends at 65535 */
	{ "event 65535, new = 65535", 65533, 2, 2, false },
	/* C.25: event = 0 crossed, batch runs from 65534 to 1 */
	{ "event 0 after the wrap", 65534, 2, 3, true },
	/* C.25: event = 1 not crossed, batch runs from 65534 to 0 */
	{ "event 1, new = 1", 65534, 3, 3, false },
};

static void test_event_idx(void **state)
{
	struct t *t = *state;

	for (size_t i = 0; i < VU_ARRAY_SIZE(event_cases); i++) {
		const struct event_case *c = &event_cases[i];
		uint16_t old;

		print_message("event_idx: %s\n", c->name);
		ring(t, 8, (uint16_t)(c->start - 1), FG_EVENT_IDX);
		/* The first flush always signals (nothing signalled yet). */
		fg_split_set_used_event(&t->r, 0x7777);
		publish_simple(t, 0);
		pop_expect(t, 0);
		vu_vq_push(t->r.vq, &t->c, 0);
		vu_vq_notify(t->r.vq);
		assert_true(fg_eventfd_fired(t->r.vq->call_fd));
		used_expect(t, 0, 0);

		old = fg_split_used_idx(&t->r);
		assert_int_equal(old, c->start);
		fg_split_set_used_event(&t->r, (uint16_t)(old + c->event));
		for (uint16_t k = 0; k < c->n; k++)
			publish_simple(t, k);
		for (uint16_t k = 0; k < c->n; k++) {
			pop_expect(t, k);
			vu_vq_push(t->r.vq, &t->c, 0);
		}
		vu_vq_notify(t->r.vq);
		/* Published whether or not the guest is signalled. */
		assert_int_equal(fg_split_used_idx(&t->r), (uint16_t)(old + c->n));
		assert_int_equal(fg_eventfd_fired(t->r.vq->call_fd), c->fire);
		/* Nothing pending: no second signal. */
		vu_vq_notify(t->r.vq);
		assert_false(fg_eventfd_fired(t->r.vq->call_fd));
		fg_split_teardown(&t->r);
	}
}

/*
 * vu_vq_publish() moves used->idx without signalling; the next notify
 * decides for everything since the last signal (C.25: a used_event
 * crossed by the published part still fires).
 */
static void test_publish(void **state)
{
	struct t *t = *state;
	uint16_t old;

	ring(t, 8, 0, FG_EVENT_IDX);
	publish_simple(t, 0);
	pop_expect(t, 0);
	vu_vq_push(t->r.vq, &t->c, 0);
	vu_vq_notify(t->r.vq);
	assert_true(fg_eventfd_fired(t->r.vq->call_fd));
	old = fg_split_used_idx(&t->r);

	fg_split_set_used_event(&t->r, old);
	for (uint16_t k = 0; k < 3; k++)
		publish_simple(t, k);
	for (uint16_t k = 0; k < 2; k++) {
		pop_expect(t, k);
		vu_vq_push(t->r.vq, &t->c, 0);
	}
	vu_vq_publish(t->r.vq);
	assert_int_equal(fg_split_used_idx(&t->r), (uint16_t)(old + 2));
	assert_false(fg_eventfd_fired(t->r.vq->call_fd));
	pop_expect(t, 2);
	vu_vq_push(t->r.vq, &t->c, 0);
	vu_vq_notify(t->r.vq);
	assert_int_equal(fg_split_used_idx(&t->r), (uint16_t)(old + 3));
	assert_true(fg_eventfd_fired(t->r.vq->call_fd));
	/* Nothing pushed since: publishing and notifying do nothing. */
	vu_vq_publish(t->r.vq);
	vu_vq_notify(t->r.vq);
	assert_false(fg_eventfd_fired(t->r.vq->call_fd));
	assert_int_equal(fg_split_used_idx(&t->r), (uint16_t)(old + 3));
}

struct flags_case {
	const char *name;
	unsigned int features;
	uint16_t avail_flags;
	bool fire;
};

static const struct flags_case flags_cases[] = {
	/* C.23: no suppression: signal */
	{ "flags 0", 0, 0, true },
	/* C.23: VRING_AVAIL_F_NO_INTERRUPT suppresses the signal */
	{ "NO_INTERRUPT", 0, VRING_AVAIL_F_NO_INTERRUPT, false },
	/* C.23: with EVENT_IDX the flag is not used (first flush signals) */
	{ "NO_INTERRUPT ignored with EVENT_IDX", FG_EVENT_IDX, VRING_AVAIL_F_NO_INTERRUPT, true },
};

static void test_flag_suppression(void **state)
{
	struct t *t = *state;

	for (size_t i = 0; i < VU_ARRAY_SIZE(flags_cases); i++) {
		const struct flags_case *c = &flags_cases[i];

		print_message("flags: %s\n", c->name);
		ring(t, 8, 0, c->features);
		fg_split_set_avail_flags(&t->r, c->avail_flags);
		for (unsigned int n = 0; n < 2; n++) {
			publish_simple(t, 1);
			pop_expect(t, 1);
			vu_vq_push(t->r.vq, &t->c, 0);
			vu_vq_notify(t->r.vq);
			assert_int_equal(fg_split_used_idx(&t->r), n + 1);
			if (n == 0 || !c->features)
				assert_int_equal(fg_eventfd_fired(t->r.vq->call_fd), c->fire);
		}
		/* Without completions nothing is signalled. */
		vu_vq_notify(t->r.vq);
		assert_false(fg_eventfd_fired(t->r.vq->call_fd));
		fg_split_teardown(&t->r);
	}
}

/* C.25: enable/disable with flags (no EVENT_IDX) */
static void test_enable_notify_flags(void **state)
{
	struct t *t = *state;

	ring(t, 8, 0, 0);
	vu_vq_disable_notify(t->r.vq);
	assert_int_equal(fg_split_used_flags(&t->r), VRING_USED_F_NO_NOTIFY);
	assert_false(vu_vq_enable_notify(t->r.vq));
	assert_int_equal(fg_split_used_flags(&t->r), 0);

	vu_vq_disable_notify(t->r.vq);
	assert_int_equal(fg_split_used_flags(&t->r), VRING_USED_F_NO_NOTIFY);
	/* Work arrives while kicks are off: enable must report it (C.25). */
	publish_simple(t, 2);
	assert_true(vu_vq_enable_notify(t->r.vq));
	assert_int_equal(fg_split_used_flags(&t->r), 0);
	assert_true(vu_vq_has_work(t->r.vq));
	pop_expect(t, 2);
	assert_false(vu_vq_has_work(t->r.vq));
	assert_false(vu_vq_enable_notify(t->r.vq));
}

/* C.25: enable/disable with EVENT_IDX */
static void test_enable_notify_event_idx(void **state)
{
	struct t *t = *state;

	ring(t, 8, 65534, FG_EVENT_IDX);
	publish_simple(t, 0);
	publish_simple(t, 1);
	pop_expect(t, 0);
	pop_expect(t, 1);
	/* Kicks off: the avail_event is left alone. */
	*(uint16_t *)&t->r.used->ring[8] = htole16(0x5555);
	vu_vq_disable_notify(t->r.vq);
	assert_int_equal(fg_split_avail_event(&t->r), 0x5555);
	assert_int_equal(fg_split_used_flags(&t->r), 0);

	/* Kicks on: avail_event = next entry to take; ring empty. */
	assert_false(vu_vq_enable_notify(t->r.vq));
	assert_int_equal(fg_split_avail_event(&t->r), 0);   /* 65536 */
	assert_int_equal(fg_split_used_flags(&t->r), 0);

	/* Taking entries while kicks are on moves avail_event along. */
	publish_simple(t, 2);
	pop_expect(t, 2);
	assert_int_equal(fg_split_avail_event(&t->r), 1);

	/* Work arriving before re-enabling is reported (C.25). */
	vu_vq_disable_notify(t->r.vq);
	publish_simple(t, 3);
	assert_true(vu_vq_enable_notify(t->r.vq));
	assert_int_equal(fg_split_avail_event(&t->r), 1);
	pop_expect(t, 3);
	assert_false(vu_vq_enable_notify(t->r.vq));
	assert_int_equal(fg_split_avail_event(&t->r), 2);
}

/* ---- B.16: a chain does not change once popped ---- */

static void test_toctou(void **state)
{
	struct t *t = *state;
	struct vring_desc *itab = fg_ptr(t->g, ITAB, 3 * sizeof(*itab));
	struct iovec saved[MAXSEG];
	struct vu_chain before;

	ring(t, 8, 0, FG_INDIRECT);
	fg_split_desc(&t->r, 0, B, 64, NEXT, 1);
	fg_split_desc(&t->r, 1, ITAB, 32, IND, 0);
	fg_split_desc(&t->r, 2, FG_R2_GPA - 8, 16, WR, 0);
	fg_split_publish(&t->r, 2);
	fg_split_desc(&t->r, 3, ITAB, 32, IND, 0);
	fg_desc_write(&itab[0], B + 0x100, 8, NEXT, 1);
	fg_desc_write(&itab[1], B + 0x200, 8, WR, 0);
	fg_split_publish(&t->r, 3);

	pop_expect(t, 2);
	before = t->c;
	memcpy(saved, t->iov, sizeof(saved));
	/* The guest rewrites the descriptor it just made available. */
	fg_split_desc(&t->r, 2, FG_HOLE_GPA, UINT32_MAX, NEXT | IND, 7);
	t->r.avail->ring[0] = htole16(0xffff);
	assert_int_equal(t->c.nin, 2);
	assert_int_equal(t->c.in_len, 16);
	assert_memory_equal(saved, t->iov, sizeof(saved));
	assert_int_equal(before.id, t->c.id);
	vu_vq_push(t->r.vq, &t->c, 16);

	/* Same for an indirect table. */
	vu_chain_init(&t->c, t->iov, t->gpa, MAXSEG);
	assert_int_equal(vu_vq_pop(t->r.vq, &t->c), 1);
	assert_int_equal(t->c.id, 3);
	memcpy(saved, t->iov, sizeof(saved));
	fg_desc_write(&itab[0], FG_HOLE_GPA, 1, IND, 0);
	fg_desc_write(&itab[1], B, 1, 0, 0);
	assert_int_equal(t->c.nout, 1);
	assert_int_equal(t->c.nin, 1);
	assert_memory_equal(saved, t->iov, sizeof(saved));
	vu_vq_push(t->r.vq, &t->c, 8);
	vu_vq_notify(t->r.vq);
	used_expect(t, 2, 16);
	used_expect(t, 3, 8);
}

/* ---- A.9: ring addresses ---- */

struct map_case {
	const char *name;
	uint32_t size;
	int64_t desc, avail, used;   /* offsets added to the good UVAs */
	uint64_t used_abs;           /* if set: used ring UVA */
	int ret;
};

static const struct map_case map_cases[] = {
	/* accepted */
	{ "good", 8, 0, 0, 0, 0, 0 },
	/* A.5: split ring size not a power of two */
	{ "size 6", 6, 0, 0, 0, 0, -EINVAL },
	/* A.9: descriptor table misaligned */
	{ "desc + 8", 8, 8, 0, 0, 0, -EINVAL },
	/* A.9: available ring misaligned */
	{ "avail + 1", 8, 0, 1, 0, 0, -EINVAL },
	/* A.9: used ring misaligned */
	{ "used + 2", 8, 0, 0, 2, 0, -EINVAL },
	/* A.9: used ring not in memory (a gpa given as uva) */
	{ "used not mapped", 8, 0, 0, 0, FG_R1_GPA, -EFAULT },
	/* A.9: used ring crossing the end of a region */
	{ "used crosses region end", 8, 0, 0, 0, FG_R1_UVA + FG_R1_SIZE - 64, -EFAULT },
	/* A.9: descriptor table crossing the end of a region */
	{ "desc crosses region end", 8, (int64_t)FG_R0_SIZE - 64, 0, 0, 0, -EFAULT },
};

static void test_ring_map(void **state)
{
	struct t *t = *state;

	for (size_t i = 0; i < VU_ARRAY_SIZE(map_cases); i++) {
		const struct map_case *c = &map_cases[i];
		struct vu_vq *vq;

		print_message("map: %s\n", c->name);
		ring(t, 8, 0, 0);
		vq = t->r.vq;
		vq->size = c->size;
		vq->addr.desc_user_addr += (uint64_t)c->desc;
		vq->addr.avail_user_addr += (uint64_t)c->avail;
		vq->addr.used_user_addr += (uint64_t)c->used;
		if (c->used_abs)
			vq->addr.used_user_addr = c->used_abs;
		assert_int_equal(vu_vq_ctl_map(vq), c->ret);
		if (c->ret) {
			assert_null(vq->gdesc);
			assert_null(vq->gavail);
			assert_null(vq->gused);
		} else {
			assert_ptr_equal(vu_mem_gpa_to_host(t->g->dev->mem, t->r.used_gpa, 1), vq->gused);
		}
		fg_split_teardown(&t->r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_then_good_same_pop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_total_length_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_wrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_idx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flag_suppression, setup, teardown),
		cmocka_unit_test_setup_teardown(test_publish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enable_notify_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enable_notify_event_idx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_toctou, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_map, setup, teardown),
	};

	/* Bad chains are logged as warnings; keep the output to errors. */
	vu_log_set_level(VU_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
