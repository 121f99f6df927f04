// SPDX-License-Identifier: MIT
/*
 * Unit tests of the packed ring walker (common/vq_packed.c through the
 * vu_vq_* API): chains as a guest driver writes them, wrap counters,
 * out-of-order completion, hostile chains (SECURITY.md B.11, B.13-B.15,
 * B.20) and the event suppression protocol (C.26).
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
#define ITAB  FG_RING2_GPA
#define NEXT  VRING_DESC_F_NEXT
#define WR    VRING_DESC_F_WRITE
#define IND   VRING_DESC_F_INDIRECT
#define R0_END (FG_R0_GPA + FG_R0_SIZE)
#define MAXSEG 16
#define F_AVAIL (1u << VRING_PACKED_DESC_F_AVAIL)
#define F_USED  (1u << VRING_PACKED_DESC_F_USED)

struct t {
	struct fake_guest *g;
	struct fg_packed r;
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

static void ring(struct t *t, uint32_t size, unsigned int flags)
{
	fg_packed_setup(t->g, &t->r, 0, size, FG_RING_GPA, flags);
}

static int pop(struct t *t)
{
	vu_chain_init(&t->c, t->iov, t->gpa, MAXSEG);
	return vu_vq_pop(t->r.vq, &t->c);
}

static void pop_expect(struct t *t, uint16_t id, uint16_t ndescs)
{
	assert_int_equal(pop(t), 1);
	assert_int_equal(t->c.id, id);
	assert_int_equal(t->c.ndescs, ndescs);
}

static void used_expect(struct t *t, uint16_t id, uint32_t len)
{
	uint16_t uid;
	uint32_t ulen;

	assert_true(fg_packed_get_used(&t->r, &uid, &ulen));
	assert_int_equal(uid, id);
	assert_int_equal(ulen, len);
}

/* A chain of one readable buffer of 16 bytes. */
static uint16_t add_simple(struct t *t, uint16_t id)
{
	struct fg_buf b = { B + 0x10000 + id * 0x100ull, 16, 0 };

	return fg_packed_add(&t->r, &b, 1, id);
}

/* Complete one simple chain (id) from add to used, without notifying. */
static void roundtrip(struct t *t, uint16_t id)
{
	add_simple(t, id);
	pop_expect(t, id, 1);
	vu_vq_push(t->r.vq, &t->c, 0);
	used_expect(t, id, 0);
}

static void check_seg(struct t *t, unsigned int k, uint64_t gpa, uint32_t len)
{
	uint64_t hgpa;

	assert_int_equal(t->c.gpa[k], gpa);
	assert_int_equal(t->c.iov[k].iov_len, len);
	assert_true(fg_host_to_gpa(t->g, t->c.iov[k].iov_base, &hgpa));
	assert_int_equal(hgpa, gpa);
}

/* ---- chains ---- */

static void test_chains_1_and_3(void **state)
{
	struct t *t = *state;
	static const struct fg_buf one[] = { { B, 100, 0 } };
	static const struct fg_buf three[] = {
		{ B + 0x1000, 64, 0 },
		{ B + 0x2000, 200, WR },
		{ FG_R2_GPA - 8, 16, WR },       /* B.11: spans r1 and r2: two iovecs */
	};
	struct vu_chain c1;
	struct iovec iov1[MAXSEG];
	uint64_t gpa1[MAXSEG];
	const struct vring_packed_desc *gd;

	ring(t, 16, 0);
	assert_int_equal(fg_packed_add(&t->r, one, 1, 5), 0);
	assert_int_equal(fg_packed_add(&t->r, three, 3, 9), 1);

	vu_chain_init(&c1, iov1, gpa1, MAXSEG);
	assert_int_equal(vu_vq_pop(t->r.vq, &c1), 1);
	assert_int_equal(c1.id, 5);
	assert_int_equal(c1.ndescs, 1);
	assert_int_equal(c1.nout, 1);
	assert_int_equal(c1.nin, 0);
	assert_int_equal(c1.out_len, 100);

	pop_expect(t, 9, 3);
	assert_int_equal(t->c.nout, 1);
	assert_int_equal(t->c.nin, 3);
	assert_int_equal(t->c.out_len, 64);
	assert_int_equal(t->c.in_len, 216);
	check_seg(t, 0, B + 0x1000, 64);
	check_seg(t, 1, B + 0x2000, 200);
	check_seg(t, 2, FG_R2_GPA - 8, 8);
	check_seg(t, 3, FG_R2_GPA, 8);
	assert_false(vu_vq_has_work(t->r.vq));
	assert_int_equal(t->r.vq->last_avail_idx, 4);

	/* Complete the 3-descriptor chain first; the used descriptor goes to
	 * the first free slot and skips the chain's 3 slots. */
	vu_vq_push(t->r.vq, &t->c, 216);
	vu_vq_push(t->r.vq, &c1, 0);
	gd = &t->r.desc[0];
	assert_int_equal(le16toh(gd->flags), F_AVAIL | F_USED | WR);
	assert_int_equal(le16toh(gd->id), 9);
	assert_int_equal(le32toh(gd->len), 216);
	gd = &t->r.desc[3];
	assert_int_equal(le16toh(gd->flags), F_AVAIL | F_USED);
	assert_int_equal(le16toh(gd->id), 5);
	used_expect(t, 9, 216);
	used_expect(t, 5, 0);
	assert_int_equal(t->r.vq->used_idx, 4);
}

/* C.26: a chain of exactly the queue size flips each wrap counter once. */
static void test_chain_of_ring_size(void **state)
{
	struct t *t = *state;
	static const uint16_t warmups[] = { 1, 8 };
	struct fg_buf bufs[8];

	for (unsigned int k = 0; k < 8; k++)
		bufs[k] = (struct fg_buf){ B + k * 0x100ull, 0x10, k < 4 ? 0 : WR };

	for (size_t w = 0; w < VU_ARRAY_SIZE(warmups); w++) {
		uint16_t start = warmups[w] % 8;
		bool avail_wrap, used_wrap;

		print_message("chain of 8 from slot %u\n", start);
		ring(t, 8, FG_EVENT_IDX);
		fg_packed_set_driver_event(&t->r, VRING_PACKED_EVENT_FLAG_ENABLE, 0, false);
		for (uint16_t k = 0; k < warmups[w]; k++)
			roundtrip(t, (uint16_t)(k % 8));
		vu_vq_notify(t->r.vq);
		assert_true(fg_eventfd_fired(t->r.vq->call_fd));
		avail_wrap = t->r.vq->avail_wrap;
		used_wrap = t->r.vq->used_wrap;

		/* The driver asks for a signal when its next buffer is used. */
		fg_packed_set_driver_event(&t->r, VRING_PACKED_EVENT_FLAG_DESC, t->r.next_used,
					   t->r.used_wrap);
		assert_int_equal(fg_packed_add(&t->r, bufs, 8, 1), start);
		pop_expect(t, 1, 8);
		assert_int_equal(t->c.nout, 4);
		assert_int_equal(t->c.nin, 4);
		assert_int_equal(t->r.vq->last_avail_idx, start);
		assert_int_equal(t->r.vq->avail_wrap, !avail_wrap);
		assert_false(vu_vq_has_work(t->r.vq));
		vu_vq_push(t->r.vq, &t->c, 0x40);
		assert_int_equal(t->r.vq->used_idx, start);
		assert_int_equal(t->r.vq->used_wrap, !used_wrap);
		vu_vq_notify(t->r.vq);
		/* C.26: the event was crossed although used_idx is back where it was */
		assert_true(fg_eventfd_fired(t->r.vq->call_fd));
		used_expect(t, 1, 0x40);
		assert_int_equal(t->r.used_wrap, !used_wrap);

		/* The next chain is in the new lap. */
		roundtrip(t, 2);
		assert_int_equal(t->r.vq->last_avail_idx, start + 1);
		fg_packed_teardown(&t->r);
	}
}

/* C.26: three laps of the ring with chains completed out of order. */
static void test_wrap_out_of_order(void **state)
{
	struct t *t = *state;
	static const unsigned int lens[] = { 1, 3, 2 };
	unsigned int descs = 0, laps = 0;
	uint16_t id = 0;
	bool wrap = true;

	ring(t, 8, 0);
	for (unsigned int round = 0; descs < 4 * 8; round++) {
		struct vu_chain c[3];
		struct iovec iov[3][MAXSEG];
		uint64_t gpa[3][MAXSEG];
		uint16_t ids[3];
		/* Rotate the lengths so that chains start at every slot. */
		unsigned int n = round % 2 ? 3 : 2;

		for (unsigned int k = 0; k < n; k++) {
			struct fg_buf bufs[3];
			unsigned int len = lens[(round + k) % 3];

			for (unsigned int j = 0; j < len; j++)
				bufs[j] = (struct fg_buf){ B + j * 0x1000ull, 0x100, j ? WR : 0 };
			ids[k] = id;
			id = (uint16_t)((id + 1) % 8);
			fg_packed_add(&t->r, bufs, len, ids[k]);
			descs += len;
		}
		for (unsigned int k = 0; k < n; k++) {
			vu_chain_init(&c[k], iov[k], gpa[k], MAXSEG);
			assert_int_equal(vu_vq_pop(t->r.vq, &c[k]), 1);
			assert_int_equal(c[k].id, ids[k]);
		}
		assert_int_equal(pop(t), 0);
		/* Complete in reverse order, each with its own length. */
		for (unsigned int k = n; k-- > 0;)
			vu_vq_push(t->r.vq, &c[k], c[k].in_len);
		for (unsigned int k = n; k-- > 0;)
			used_expect(t, ids[k], c[k].in_len);
		assert_int_equal(t->r.vq->used_idx, t->r.vq->last_avail_idx);
		assert_int_equal(t->r.vq->used_wrap, t->r.vq->avail_wrap);
		assert_int_equal(t->r.vq->used_idx, t->r.next_used);
		assert_int_equal(t->r.vq->used_wrap, t->r.used_wrap);
		if (t->r.used_wrap != wrap) {
			wrap = t->r.used_wrap;
			laps++;
		}
	}
	assert_true(laps >= 3);
	assert_int_equal(t->r.vq->last_avail_idx, descs % 8);
}

/* ---- hostile chains ---- */

struct pd {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;      /* NEXT, WRITE, INDIRECT as written */
	uint16_t id;
	bool not_avail;      /* written with the previous lap's avail bits */
};

struct seg {
	uint64_t gpa;
	uint32_t len;
};

struct pchain_case {
	const char *name;
	unsigned int features;
	struct pd desc[8];         /* written from slot 0 */
	unsigned int ndesc;
	struct pd itab[4];         /* packed indirect table at ITAB */
	unsigned int nitab;
	bool ok;
	uint16_t ndescs;           /* ring slots the chain takes */
	uint16_t id;               /* id returned in the used descriptor */
	uint16_t nout, nin;
	uint32_t out_len, in_len;
	struct seg seg[3];
};

#define ALL_NEXT(id) { B, 1, NEXT, id }
static const struct pchain_case pchain_cases[] = {
	/* accepted: indirect table */
	{ "indirect", FG_INDIRECT, { { ITAB, 48, IND, 4 } }, 1,
	  { { B, 10, 0, 0 }, { B + 0x100, 20, WR, 0 }, { B + 0x200, 30, WR, 0 } }, 3,
	  true, 1, 4, 1, 2, 10, 50, { { B, 10 }, { B + 0x100, 20 }, { B + 0x200, 30 } } },
	/* B.15: zero-length descriptor accepted, no iovec */
	{ "zero-length descriptor", 0, { { B, 0, NEXT, 2 }, { FG_HOLE_GPA, 0, WR | NEXT, 2 }, { B, 4, WR, 2 } }, 3,
	  { { 0 } }, 0, true, 3, 2, 0, 1, 0, 4, { { B, 4 } } },
	/* B.13: buffer id = queue size */
	{ "id = size", 0, { { B, 1, 0, 8 } }, 1, { { 0 } }, 0, false, 1, 8 },
	/* B.13: buffer id 0xffff, in the last descriptor of a chain */
	{ "id = 0xffff", 0, { { B, 1, NEXT, 0 }, { B, 1, WR, 0xffff } }, 2, { { 0 } }, 0, false, 2, 0xffff },
	/* B.15: chain continues into a descriptor that is not available */
	{ "next not available", 0, { { B, 1, NEXT, 3 }, { B, 1, 0, 3, true } }, 2, { { 0 } }, 0, false, 1, 3 },
	/* B.15: chain longer than the ring */
	{ "longer than the ring", 0,
	  { ALL_NEXT(6), ALL_NEXT(6), ALL_NEXT(6), ALL_NEXT(6), ALL_NEXT(6), ALL_NEXT(6), ALL_NEXT(6),
	    ALL_NEXT(6) }, 8, { { 0 } }, 0, false, 8, 6 },
	/* B.15: bad buffer inside a chain: the chain's slots are still consumed */
	{ "hole in mid-chain", 0, { { B, 1, NEXT, 1 }, { FG_HOLE_GPA, 1, NEXT, 1 }, { B, 1, WR, 1 } }, 3,
	  { { 0 } }, 0, false, 3, 1 },
	/* B.15: indirect table of length 0 */
	{ "indirect len 0", FG_INDIRECT, { { ITAB, 0, IND, 2 } }, 1, { { B, 1, 0, 0 } }, 1, false, 1, 2 },
	/* B.15: indirect table length not a multiple of 16 */
	{ "indirect len 24", FG_INDIRECT, { { ITAB, 24, IND, 2 } }, 1, { { B, 1, 0, 0 } }, 1, false, 1, 2 },
	/* B.15: nested indirect */
	{ "nested indirect", FG_INDIRECT, { { ITAB, 32, IND, 2 } }, 1,
	  { { B, 1, 0, 0 }, { ITAB, 16, IND, 0 } }, 2, false, 1, 2 },
	/* B.15: indirect with NEXT */
	{ "indirect with NEXT", FG_INDIRECT, { { ITAB, 16, IND | NEXT, 2 }, { B, 1, 0, 2 } }, 2,
	  { { B, 1, 0, 0 } }, 1, false, 2, 2 },
	/* B.15: indirect as the second descriptor of a chain */
	{ "indirect inside a chain", FG_INDIRECT, { { B, 1, NEXT, 2 }, { ITAB, 16, IND, 2 } }, 2,
	  { { B, 1, 0, 0 } }, 1, false, 2, 2 },
	/* B.15: indirect without VIRTIO_RING_F_INDIRECT_DESC */
	{ "indirect not negotiated", 0, { { ITAB, 16, IND, 2 } }, 1, { { B, 1, 0, 0 } }, 1, false, 1, 2 },
	/* B.11: indirect table in the hole */
	{ "indirect table in hole", FG_INDIRECT, { { FG_HOLE_GPA, 16, IND, 2 } }, 1, { { 0 } }, 0, false, 1, 2 },
	/* B.11: indirect table crossing a region end */
	{ "indirect table crosses end", FG_INDIRECT, { { R0_END - 16, 32, IND, 2 } }, 1, { { 0 } }, 0,
	  false, 1, 2 },
	/* B.15: readable after writable inside an indirect table */
	{ "indirect readable after writable", FG_INDIRECT, { { ITAB, 32, IND, 2 } }, 1,
	  { { B, 1, WR, 0 }, { B, 1, 0, 0 } }, 2, false, 1, 2 },
	/* B.15: huge length */
	{ "len 2^32-1", 0, { { B, UINT32_MAX, WR, 2 } }, 1, { { 0 } }, 0, false, 1, 2 },
	/* B.15: readable after writable */
	{ "readable after writable", 0, { { B, 1, WR | NEXT, 2 }, { B, 1, 0, 2 } }, 2, { { 0 } }, 0,
	  false, 2, 2 },
	/* B.11: buffer running from a region into the hole */
	{ "buffer r0 into hole", 0, { { R0_END - 8, 16, 0, 2 } }, 1, { { 0 } }, 0, false, 1, 2 },
	/* One descriptor (the pop's fast path): writable, across two regions */
	{ "one writable descriptor spans r1 and r2", 0, { { FG_R2_GPA - 0x10, 0x20, WR, 5 } }, 1,
	  { { 0 } }, 0, true, 1, 5, 0, 2, 0, 0x20, { { FG_R2_GPA - 0x10, 0x10 }, { FG_R2_GPA, 0x10 } } },
	/* One descriptor of length 0, address in the hole: accepted, no iovec */
	{ "one zero-length descriptor", 0, { { FG_HOLE_GPA, 0, WR, 6 } }, 1, { { 0 } }, 0,
	  true, 1, 6, 0, 0, 0, 0, { { 0 } } },
	/* B.12: one writable descriptor beyond guest memory */
	{ "one writable buffer past memory", 0, { { FG_MEM_END, 64, WR, 3 } }, 1, { { 0 } }, 0,
	  false, 1, 3 },
};

static void write_pcase(struct t *t, const struct pchain_case *c)
{
	struct vring_packed_desc *itab = fg_ptr(t->g, ITAB, 4 * sizeof(*itab));
	uint16_t head_flags = 0;

	for (unsigned int k = 0; k < c->nitab; k++) {
		itab[k].addr = htole64(c->itab[k].addr);
		itab[k].len = htole32(c->itab[k].len);
		itab[k].id = 0;
		itab[k].flags = htole16(c->itab[k].flags);
	}
	for (unsigned int k = c->ndesc; k-- > 0;) {
		struct vring_packed_desc *gd = &t->r.desc[k];
		uint16_t flags = c->desc[k].flags | fg_packed_avail_flags(!c->desc[k].not_avail);

		gd->addr = htole64(c->desc[k].addr);
		gd->len = htole32(c->desc[k].len);
		gd->id = htole16(c->desc[k].id);
		if (k == 0)
			head_flags = flags;
		else
			gd->flags = htole16(flags);
	}
	__atomic_store_n(&t->r.desc[0].flags, htole16(head_flags), __ATOMIC_RELEASE);
	/* The driver's view: the ring slots the device will consume. */
	t->r.next_avail = c->ndescs % 8;
	t->r.avail_wrap = c->ndescs < 8;
	t->r.chain_len[c->id] = c->ndescs;
}

static void test_hostile_chains(void **state)
{
	struct t *t = *state;

	for (size_t i = 0; i < VU_ARRAY_SIZE(pchain_cases); i++) {
		const struct pchain_case *c = &pchain_cases[i];

		print_message("packed chain: %s\n", c->name);
		ring(t, 8, c->features);
		write_pcase(t, c);
		if (c->ok) {
			pop_expect(t, c->id, c->ndescs);
			assert_int_equal(t->c.nout, c->nout);
			assert_int_equal(t->c.nin, c->nin);
			assert_int_equal(t->c.out_len, c->out_len);
			assert_int_equal(t->c.in_len, c->in_len);
			for (unsigned int k = 0; k < (unsigned int)c->nout + c->nin; k++)
				check_seg(t, k, c->seg[k].gpa, c->seg[k].len);
			vu_vq_push(t->r.vq, &t->c, c->in_len);
			used_expect(t, c->id, c->in_len);
		} else {
			/* B.20: returned with length 0, the ring stays in step */
			assert_int_equal(pop(t), 0);
			assert_int_equal(t->r.vq->stats.bad_chains, 1);
			assert_int_equal(t->r.vq->last_avail_idx, c->ndescs % 8);
			used_expect(t, c->id, 0);
			vu_vq_notify(t->r.vq);
			assert_true(fg_eventfd_fired(t->r.vq->call_fd));
		}
		assert_false(t->r.vq->broken);
		/* The queue keeps serving chains. */
		roundtrip(t, 7);
		assert_int_equal(t->r.vq->used_idx, t->r.next_used);
		fg_packed_teardown(&t->r);
	}
}

/* ---- notifications ---- */

enum ev { EV_ENABLE, EV_DISABLE, EV_DESC, EV_DESC_NO_EVENT_IDX };

struct notify_case {
	const char *name;
	uint16_t warmup;     /* descriptors used before the batch (sets old) */
	enum ev ev;
	int rel;             /* DESC: event offset relative to old (absolute position) */
	bool flip_wrap;      /* DESC: give the other wrap counter than rel implies */
	unsigned int n;      /* descriptors used in the batch (chains of 1) */
	bool fire;
};

static const struct notify_case notify_cases[] = {
	/* C.26: ENABLE: always signal */
	{ "ENABLE", 3, EV_ENABLE, 0, false, 1, true },
	/* C.26: DISABLE: never signal */
	{ "DISABLE", 3, EV_DISABLE, 0, false, 5, false },
	/* C.26: DESC without EVENT_IDX negotiated: as ENABLE */
	{ "DESC without EVENT_IDX", 3, EV_DESC_NO_EVENT_IDX, 100, false, 1, true },
	/* C.26: DESC, event = first used of the batch */
	{ "DESC old", 2, EV_DESC, 0, false, 1, true },
	/* C.26: DESC, event = last used of the batch */
	{ "DESC new - 1", 2, EV_DESC, 2, false, 3, true },
	/* C.26: DESC, event = next slot after the batch: not crossed */
	{ "DESC new", 2, EV_DESC, 3, false, 3, false },
	/* C.26: DESC, event before the batch: already passed */
	{ "DESC old - 1", 2, EV_DESC, -1, false, 3, false },
	/* C.26: DESC, batch wraps, event before the wrap (wrap counter of that lap) */
	{ "DESC wraps, event in old lap", 6, EV_DESC, 1, false, 4, true },
	/* C.26: DESC, batch wraps, event after the wrap (new wrap counter) */
	{ "DESC wraps, event in new lap", 6, EV_DESC, 3, false, 4, true },
	/* C.26: DESC, batch wraps, event = new position in the new lap: not crossed */
	{ "DESC wraps, event = new", 6, EV_DESC, 4, false, 4, false },
	/* C.26: DESC, batch wraps, event before old in the old lap: not crossed */
	{ "DESC wraps, event before old", 6, EV_DESC, -1, false, 4, false },
	/* C.26: DESC, same slot as old but the previous lap's wrap: not crossed */
	{ "DESC old slot, previous lap", 2, EV_DESC, 0, true, 3, false },
	/* C.26: exactly one full lap between checks: every slot crossed */
	{ "DESC one lap, event = old", 2, EV_DESC, 0, false, 8, true },
	/* C.26: one lap between checks, event at the same slot one lap on: not crossed */
	{ "DESC one lap, event = old + size", 2, EV_DESC, 8, false, 8, false },
	/* C.26: one lap between checks, event = last used of the lap */
	{ "DESC one lap, event = new - 1", 6, EV_DESC, 7, false, 8, true },
	/* C.26: more than one wrap between checks */
	{ "DESC 2 laps + 3", 5, EV_DESC, 5, false, 19, true },
	/* C.26: more than one wrap between checks, event before old */
	{ "DESC 3 laps", 1, EV_DESC, -1, false, 24, true },
	/* C.26: more than one wrap, other wrap counter */
	{ "DESC 2 laps + 1, other wrap", 4, EV_DESC, 6, true, 17, true },
};

static void test_notify(void **state)
{
	struct t *t = *state;

	for (size_t i = 0; i < VU_ARRAY_SIZE(notify_cases); i++) {
		const struct notify_case *c = &notify_cases[i];
		unsigned int abs_old, abs_ev;
		uint16_t id = 0;
		bool wrap;

		print_message("packed notify: %s\n", c->name);
		ring(t, 8, c->ev == EV_DESC_NO_EVENT_IDX ? 0 : FG_EVENT_IDX);
		fg_packed_set_driver_event(&t->r, VRING_PACKED_EVENT_FLAG_ENABLE, 0, false);
		for (unsigned int k = 0; k < c->warmup; k++, id = (id + 1) % 8)
			roundtrip(t, id);
		vu_vq_notify(t->r.vq);
		assert_int_equal(fg_eventfd_fired(t->r.vq->call_fd), c->warmup > 0);

		/* Positions counted from slot 0 of the first lap (wrap 1). */
		abs_old = c->warmup;
		abs_ev = (unsigned int)((int)abs_old + c->rel + 16);   /* + 2 laps: keep it positive */
		wrap = ((abs_ev / 8) % 2 == 0) != c->flip_wrap;
		switch (c->ev) {
		case EV_ENABLE:
			fg_packed_set_driver_event(&t->r, VRING_PACKED_EVENT_FLAG_ENABLE, 0, false);
			break;
		case EV_DISABLE:
			fg_packed_set_driver_event(&t->r, VRING_PACKED_EVENT_FLAG_DISABLE, 0, false);
			break;
		case EV_DESC:
		case EV_DESC_NO_EVENT_IDX:
			fg_packed_set_driver_event(&t->r, VRING_PACKED_EVENT_FLAG_DESC, abs_ev % 8, wrap);
			break;
		}
		/* The batch: a driver that polls the used ring reuses slots, so
		 * the device may go round the ring between two checks. */
		for (unsigned int k = 0; k < c->n; k++, id = (id + 1) % 8)
			roundtrip(t, id);
		vu_vq_notify(t->r.vq);
		assert_int_equal(fg_eventfd_fired(t->r.vq->call_fd), c->fire);
		/* No completion since: no signal. */
		vu_vq_notify(t->r.vq);
		assert_false(fg_eventfd_fired(t->r.vq->call_fd));
		fg_packed_teardown(&t->r);
	}
}

/* C.25/C.26: enable/disable notifications of the device event area */
static void test_enable_notify(void **state)
{
	struct t *t = *state;

	for (unsigned int ei = 0; ei < 2; ei++) {
		print_message("packed enable_notify, event_idx %u\n", ei);
		ring(t, 8, ei ? FG_EVENT_IDX : 0);
		for (uint16_t k = 0; k < 19; k++)
			roundtrip(t, k % 8);     /* position 3 of the third lap: wrap 1 */
		vu_vq_disable_notify(t->r.vq);
		assert_int_equal(le16toh(t->r.devev->flags), VRING_PACKED_EVENT_FLAG_DISABLE);

		assert_false(vu_vq_enable_notify(t->r.vq));
		if (ei) {
			assert_int_equal(le16toh(t->r.devev->flags), VRING_PACKED_EVENT_FLAG_DESC);
			assert_int_equal(le16toh(t->r.devev->off_wrap), 0x8003);
		} else {
			assert_int_equal(le16toh(t->r.devev->flags), VRING_PACKED_EVENT_FLAG_ENABLE);
		}

		/* Work arriving while kicks were off is reported (C.25). */
		vu_vq_disable_notify(t->r.vq);
		add_simple(t, 1);
		assert_true(vu_vq_has_work(t->r.vq));
		assert_true(vu_vq_enable_notify(t->r.vq));
		pop_expect(t, 1, 1);
		assert_false(vu_vq_has_work(t->r.vq));
		assert_false(vu_vq_enable_notify(t->r.vq));
		if (ei)
			assert_int_equal(le16toh(t->r.devev->off_wrap), 0x8004);
		fg_packed_teardown(&t->r);
	}
}

/* B.16: a popped chain does not change when the guest rewrites the ring */
static void test_toctou(void **state)
{
	struct t *t = *state;
	static const struct fg_buf bufs[] = { { B, 32, 0 }, { FG_R2_GPA - 4, 8, WR } };
	struct iovec saved[MAXSEG];

	ring(t, 8, 0);
	fg_packed_add(&t->r, bufs, 2, 6);
	pop_expect(t, 6, 2);
	memcpy(saved, t->iov, sizeof(saved));
	for (unsigned int k = 0; k < 2; k++) {
		t->r.desc[k].addr = htole64(FG_HOLE_GPA);
		t->r.desc[k].len = htole32(UINT32_MAX);
		t->r.desc[k].id = htole16(0xffff);
	}
	assert_int_equal(t->c.id, 6);
	assert_int_equal(t->c.nout, 1);
	assert_int_equal(t->c.nin, 2);
	assert_int_equal(t->c.in_len, 8);
	assert_memory_equal(saved, t->iov, sizeof(saved));
	vu_vq_push(t->r.vq, &t->c, 8);
	used_expect(t, 6, 8);
}

/*
 * Indirect chains side by side in one line of the ring, some with tables
 * outside guest memory: the walker loads the tables of the heads after
 * the one it takes (a hint only), and every chain still comes out as its
 * own checks say (B.11, B.13, B.20).
 */
static void test_indirect_batch(void **state)
{
	struct t *t = *state;
	struct vring_packed_desc *itab = fg_ptr(t->g, ITAB, 4 * 0x100);
	static const uint64_t bad_table[4] = { 0, FG_HOLE_GPA, 0xffffffffffff0000ull, 0 };

	ring(t, 8, FG_INDIRECT);
	for (uint16_t k = 0; k < 4; k++) {
		struct fg_buf b = { bad_table[k] ? bad_table[k] : ITAB + k * 0x100ull, 32, IND };
		struct vring_packed_desc *e = &itab[k * 16];

		e[0] = (struct vring_packed_desc){ htole64(B + k * 0x1000ull), htole32(16), 0, 0 };
		e[1] = (struct vring_packed_desc){ htole64(B + k * 0x1000ull + 0x100), htole32(1), 0,
						   htole16(WR) };
		fg_packed_add(&t->r, &b, 1, k);
	}
	for (uint16_t k = 0; k < 4; k++) {
		if (bad_table[k])
			continue;
		pop_expect(t, k, 1);
		assert_int_equal(t->c.nout, 1);
		assert_int_equal(t->c.nin, 1);
		check_seg(t, 0, B + k * 0x1000ull, 16);
		check_seg(t, 1, B + k * 0x1000ull + 0x100, 1);
		vu_vq_push(t->r.vq, &t->c, 1);
	}
	assert_int_equal(pop(t), 0);
	assert_int_equal(t->r.vq->stats.bad_chains, 2);
	used_expect(t, 0, 1);
	used_expect(t, 1, 0);
	used_expect(t, 2, 0);
	used_expect(t, 3, 1);
}

/* ---- IN_ORDER: one used descriptor per batch ---- */

/* Add chains of lens[k] descriptors (readable, or writable if wr) with ids from *id on. */
static void add_chains(struct t *t, const unsigned int *lens, unsigned int n, bool wr, uint16_t *id)
{
	for (unsigned int k = 0; k < n; k++) {
		struct fg_buf bufs[3];

		for (unsigned int j = 0; j < lens[k]; j++)
			bufs[j] = (struct fg_buf){ B + j * 0x1000ull, 0x100, wr ? WR : 0 };
		fg_packed_add(&t->r, bufs, lens[k], *id);
		*id = (uint16_t)((*id + 1) % t->r.size);
	}
}

static void used_batch_expect(struct t *t, unsigned int n, uint16_t id, uint32_t len)
{
	uint16_t uid;
	uint32_t ulen;

	assert_int_equal(fg_packed_get_used_batch(&t->r, &uid, &ulen), n);
	assert_int_equal(uid, id);
	assert_int_equal(ulen, len);
}

/* Take n chains and complete each with nothing written. */
static void pop_complete(struct t *t, unsigned int n)
{
	for (unsigned int k = 0; k < n; k++) {
		assert_int_equal(pop(t), 1);
		vu_vq_push(t->r.vq, &t->c, 0);
	}
}

static void test_in_order_batch(void **state)
{
	struct t *t = *state;
	static const unsigned int lens[] = { 1, 2, 1 }, rot[] = { 1, 3, 2 };
	uint16_t id = 0, uid, flags1;
	uint32_t ulen;
	bool wrap = true;
	unsigned int laps = 0;

	ring(t, 8, FG_IN_ORDER);
	/* Zero-length completions wait for the flush, then show as one
	 * descriptor with the last id in the first slot. */
	add_chains(t, lens, 3, false, &id);
	flags1 = t->r.desc[1].flags;
	pop_complete(t, 3);
	assert_int_equal(fg_packed_get_used_batch(&t->r, &uid, &ulen), 0);
	vu_vq_notify(t->r.vq);
	assert_true(fg_eventfd_fired(t->r.vq->call_fd));
	used_batch_expect(t, 3, 2, 0);
	assert_int_equal(t->r.desc[1].flags, flags1);   /* a skipped slot is not written */
	assert_int_equal(t->r.next_used, 4);
	assert_int_equal(t->r.vq->used_idx, 4);
	vu_vq_notify(t->r.vq);
	assert_false(fg_eventfd_fired(t->r.vq->call_fd));

	/* A completion with a length writes the batch before it, and is
	 * never batched itself. */
	add_chains(t, lens, 1, false, &id);       /* id 3 */
	add_chains(t, lens, 1, true, &id);        /* id 4, writable */
	add_chains(t, lens, 1, false, &id);       /* id 5 */
	assert_int_equal(pop(t), 1);
	vu_vq_push(t->r.vq, &t->c, 0);
	assert_int_equal(pop(t), 1);
	vu_vq_push(t->r.vq, &t->c, 50);
	assert_int_equal(pop(t), 1);
	vu_vq_push(t->r.vq, &t->c, 0);
	used_batch_expect(t, 1, 3, 0);
	used_batch_expect(t, 1, 4, 50);
	assert_int_equal(fg_packed_get_used_batch(&t->r, &uid, &ulen), 0);
	vu_vq_notify(t->r.vq);
	used_batch_expect(t, 1, 5, 0);

	/* Batches that cross the end of the ring, over several laps: the
	 * first slot keeps the wrap counter it was taken in. */
	for (unsigned int round = 0; laps < 3; round++) {
		unsigned int n = round % 3 + 1, l[3];

		for (unsigned int k = 0; k < n; k++)
			l[k] = rot[(round + k) % 3];
		add_chains(t, l, n, false, &id);
		pop_complete(t, n);
		assert_int_equal(pop(t), 0);
		vu_vq_notify(t->r.vq);
		used_batch_expect(t, n, (uint16_t)((id + 8 - 1) % 8), 0);
		assert_int_equal(t->r.vq->used_idx, t->r.next_used);
		assert_int_equal(t->r.vq->used_wrap, t->r.used_wrap);
		if (t->r.used_wrap != wrap) {
			wrap = t->r.used_wrap;
			laps++;
		}
	}
}

/*
 * vu_vq_publish() writes a held IN_ORDER batch without signalling; the
 * next notify signals for it, once.
 */
static void test_publish(void **state)
{
	struct t *t = *state;
	static const unsigned int lens[] = { 1, 2 };
	uint16_t id = 0, uid;
	uint32_t ulen;

	ring(t, 8, FG_IN_ORDER);
	add_chains(t, lens, 2, false, &id);
	pop_complete(t, 2);
	assert_int_equal(fg_packed_get_used_batch(&t->r, &uid, &ulen), 0);
	vu_vq_publish(t->r.vq);
	assert_false(fg_eventfd_fired(t->r.vq->call_fd));
	used_batch_expect(t, 2, 1, 0);
	vu_vq_notify(t->r.vq);
	assert_true(fg_eventfd_fired(t->r.vq->call_fd));
	vu_vq_publish(t->r.vq);
	vu_vq_notify(t->r.vq);
	assert_false(fg_eventfd_fired(t->r.vq->call_fd));
	assert_int_equal(fg_packed_get_used_batch(&t->r, &uid, &ulen), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chains_1_and_3, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_of_ring_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrap_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enable_notify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_toctou, setup, teardown),
		cmocka_unit_test_setup_teardown(test_in_order_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_publish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_batch, setup, teardown),
	};

	vu_log_set_level(VU_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
