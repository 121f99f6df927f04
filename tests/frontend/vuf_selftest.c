// SPDX-License-Identifier: MIT
/*
 * Self-test of the vuf front-end.
 *
 * Ring tests: an in-process fake device thread reads the split or packed
 * ring straight from the shared memory (no socket), completes chains out
 * of order, honours and sets notification suppression, and is strict:
 * a chain it cannot walk, a kick it had to wait for in vain or a call the
 * driver never got fails the test.  The driver side checks every
 * completion's cookie, length and the bytes the device wrote.
 *
 * Control tests: a scripted fake back-end on a Unix socket answers the
 * requests, records their order and payloads, and can refuse, misreply
 * or drop the connection, to check the message helpers, the handshake,
 * queue setup and reconnection.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "vu_util.h"
#include "vuf.h"

#define GPA_RING 0x40000000ull    /* 1 GiB: rings and headers */
#define GPA_DATA 0x100000000ull   /* 4 GiB: writable buffers */
#define MEM_SIZE (16u << 20)
#define MAX_WSEGS 3
#define WAIT_MS 5000
#define KICK_WAIT_MS 2000

static uint32_t xorshift(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* ================================================================== */
/* Fake device                                                        */
/* ================================================================== */

struct pend {
	uint16_t id;
	uint16_t ndescs;
	uint32_t len;
};

struct wbuf {
	uint8_t *p;
	uint32_t len;
};

struct chain_ctx {
	uint64_t cookie;
	bool have_cookie;
	uint32_t wlen;
	unsigned int nw;
	struct wbuf *w;
	unsigned int wcap;
};

struct fake_dev {
	struct vuf *vuf;
	struct vuf_vq *vq;
	unsigned int size;
	bool packed;
	bool event_idx;
	int kick_fd;
	int call_fd;
	pthread_t thread;
	int stop;
	uint32_t rng;

	uint16_t last_avail;    /* split */
	uint16_t used_idx;
	uint16_t avail_pos;     /* packed */
	uint16_t used_pos;
	bool avail_wrap;
	bool used_wrap;
	uint32_t signalled;
	bool signalled_valid;

	struct pend *pend;
	unsigned int npend;
	struct wbuf *wbufs;
	unsigned int wcap;

	unsigned long missed_kicks;
	unsigned long kicks;
	unsigned long calls;
	unsigned long completed;
	bool failed;
	char error[256];
};

static void __attribute__((format(printf, 2, 3))) dev_fail(struct fake_dev *dev, const char *fmt, ...)
{
	va_list ap;

	if (dev->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(dev->error, sizeof(dev->error), fmt, ap);
	va_end(ap);
	__atomic_store_n(&dev->failed, true, __ATOMIC_RELEASE);
}

static int dev_seg(struct fake_dev *dev, struct chain_ctx *c, uint64_t addr, uint32_t len,
		   bool writable)
{
	uint8_t *p = vuf_gpa_to_ptr(dev->vuf, addr, len);

	if (!p) {
		dev_fail(dev, "buffer gpa 0x%llx len %u outside guest memory",
			 (unsigned long long)addr, len);
		return -1;
	}
	if (writable) {
		if (c->nw == c->wcap) {
			dev_fail(dev, "more than %u writable segments", c->wcap);
			return -1;
		}
		c->w[c->nw].p = p;
		c->w[c->nw].len = len;
		c->nw++;
		c->wlen += len;
	} else {
		if (c->nw) {
			dev_fail(dev, "readable segment after a writable one");
			return -1;
		}
		if (!c->have_cookie && len >= 8) {
			memcpy(&c->cookie, p, 8);
			c->have_cookie = true;
		}
	}
	return 0;
}

/* The device's work on a chain: copy the cookie into each writable segment. */
static int dev_finish(struct fake_dev *dev, struct chain_ctx *c)
{
	if (!c->have_cookie) {
		dev_fail(dev, "chain without a readable cookie");
		return -1;
	}
	for (unsigned int i = 0; i < c->nw; i++)
		if (c->w[i].len >= 8)
			memcpy(c->w[i].p, &c->cookie, 8);
	return 0;
}

static void chain_ctx_init(struct fake_dev *dev, struct chain_ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->w = dev->wbufs;
	c->wcap = dev->wcap;
}

static int dev_walk_split(struct fake_dev *dev, uint16_t head, uint32_t *wlen)
{
	struct vring_desc *gdesc = vuf_vq_desc_split(dev->vq);
	struct chain_ctx c;
	unsigned int count = 0;
	uint16_t idx = head;

	chain_ctx_init(dev, &c);
	if (head >= dev->size) {
		dev_fail(dev, "head %u beyond ring size %u", head, dev->size);
		return -1;
	}
	for (;;) {
		struct vring_desc d = gdesc[idx];
		uint16_t f = le16toh(d.flags);

		if (f & VRING_DESC_F_INDIRECT) {
			uint32_t len = le32toh(d.len);
			struct vring_desc *gt;
			unsigned int n, j = 0, cnt = 0;

			if (count || (f & VRING_DESC_F_NEXT) || len == 0 || len % 16) {
				dev_fail(dev, "bad indirect descriptor (pos %u flags 0x%x len %u)", count,
					 f, len);
				return -1;
			}
			gt = vuf_gpa_to_ptr(dev->vuf, le64toh(d.addr), len);
			if (!gt) {
				dev_fail(dev, "indirect table outside memory");
				return -1;
			}
			n = len / 16;
			for (;;) {
				struct vring_desc t = gt[j];
				uint16_t tf = le16toh(t.flags);

				if (tf & VRING_DESC_F_INDIRECT) {
					dev_fail(dev, "nested indirect");
					return -1;
				}
				if (dev_seg(dev, &c, le64toh(t.addr), le32toh(t.len),
					    tf & VRING_DESC_F_WRITE))
					return -1;
				if (!(tf & VRING_DESC_F_NEXT))
					break;
				j = le16toh(t.next);
				if (j >= n || ++cnt >= n) {
					dev_fail(dev, "indirect next %u of table of %u", j, n);
					return -1;
				}
			}
			break;
		}
		if (dev_seg(dev, &c, le64toh(d.addr), le32toh(d.len), f & VRING_DESC_F_WRITE))
			return -1;
		if (!(f & VRING_DESC_F_NEXT))
			break;
		idx = le16toh(d.next);
		if (idx >= dev->size || ++count >= dev->size) {
			dev_fail(dev, "chain from head %u: next %u after %u descriptors", head, idx,
				 count);
			return -1;
		}
	}
	if (dev_finish(dev, &c))
		return -1;
	*wlen = c.wlen;
	return 0;
}

static bool slot_avail(uint16_t flags, bool wrap)
{
	bool a = flags & (1u << VRING_PACKED_DESC_F_AVAIL);
	bool u = flags & (1u << VRING_PACKED_DESC_F_USED);

	return a == wrap && u != wrap;
}

static bool dev_has_avail(struct fake_dev *dev)
{
	if (dev->packed) {
		struct vring_packed_desc *g = vuf_vq_desc_packed(dev->vq);

		return slot_avail(le16toh(vu_load_acquire16(&g[dev->avail_pos].flags)), dev->avail_wrap);
	}
	return le16toh(vu_load_acquire16(&vuf_vq_avail_split(dev->vq)->idx)) != dev->last_avail;
}

/* Walk the chain at avail_pos.  Returns 0 and fills *p. */
static int dev_walk_packed(struct fake_dev *dev, struct pend *p)
{
	struct vring_packed_desc *g = vuf_vq_desc_packed(dev->vq);
	uint16_t pos = dev->avail_pos, id = 0;
	bool wrap = dev->avail_wrap;
	unsigned int ndescs = 0;
	struct chain_ctx c;

	chain_ctx_init(dev, &c);
	for (;;) {
		uint16_t f = le16toh(vu_load_acquire16(&g[pos].flags));
		struct vring_packed_desc d = g[pos];

		if (!slot_avail(f, wrap)) {
			dev_fail(dev, "descriptor %u of the chain at slot %u (slot %u) not available: flags 0x%x wrap %d",
				 ndescs, dev->avail_pos, pos, f, wrap);
			return -1;
		}
		if (ndescs && le16toh(d.id) != id) {
			dev_fail(dev, "chain ids differ: %u then %u", id, le16toh(d.id));
			return -1;
		}
		id = le16toh(d.id);
		if (f & VRING_DESC_F_INDIRECT) {
			uint32_t len = le32toh(d.len);
			struct vring_packed_desc *gt;

			if ((f & VRING_DESC_F_NEXT) || ndescs || len == 0 || len % 16) {
				dev_fail(dev, "bad packed indirect descriptor");
				return -1;
			}
			gt = vuf_gpa_to_ptr(dev->vuf, le64toh(d.addr), len);
			if (!gt) {
				dev_fail(dev, "packed indirect table outside memory");
				return -1;
			}
			for (unsigned int j = 0; j < len / 16; j++)
				if (dev_seg(dev, &c, le64toh(gt[j].addr), le32toh(gt[j].len),
					    le16toh(gt[j].flags) & VRING_DESC_F_WRITE))
					return -1;
		} else if (dev_seg(dev, &c, le64toh(d.addr), le32toh(d.len), f & VRING_DESC_F_WRITE)) {
			return -1;
		}
		ndescs++;
		if (++pos == dev->size) {
			pos = 0;
			wrap = !wrap;
		}
		if (!(f & VRING_DESC_F_NEXT))
			break;
		if (ndescs >= dev->size) {
			dev_fail(dev, "packed chain longer than the ring");
			return -1;
		}
	}
	if (id >= dev->size) {
		dev_fail(dev, "buffer id %u beyond ring size", id);
		return -1;
	}
	if (dev_finish(dev, &c))
		return -1;
	dev->avail_pos = pos;
	dev->avail_wrap = wrap;
	p->id = id;
	p->ndescs = (uint16_t)ndescs;
	p->len = c.wlen;
	return 0;
}

/* Take up to a random number of available chains.  Count or -1. */
static int dev_take(struct fake_dev *dev)
{
	unsigned int max = 1 + xorshift(&dev->rng) % dev->size, n = 0;

	if (dev->packed) {
		while (n < max && dev_has_avail(dev)) {
			struct pend p;

			if (dev->npend == dev->size) {
				dev_fail(dev, "more than %u chains available", dev->size);
				return -1;
			}
			if (dev_walk_packed(dev, &p))
				return -1;
			dev->pend[dev->npend++] = p;
			n++;
		}
		return (int)n;
	}
	{
		struct vring_avail *ga = vuf_vq_avail_split(dev->vq);
		uint16_t aidx = le16toh(vu_load_acquire16(&ga->idx));

		if ((uint16_t)(aidx - dev->last_avail) > dev->size) {
			dev_fail(dev, "avail idx moved from %u to %u", dev->last_avail, aidx);
			return -1;
		}
		while (n < max && dev->last_avail != aidx) {
			uint16_t head = le16toh(vu_load_relaxed16(&ga->ring[dev->last_avail & (dev->size - 1)]));
			struct pend p = { .id = head, .ndescs = 1 };

			dev->last_avail++;
			if (dev_walk_split(dev, head, &p.len))
				return -1;
			dev->pend[dev->npend++] = p;
			n++;
		}
	}
	return (int)n;
}

static void dev_notify(struct fake_dev *dev)
{
	bool need;

	vu_smp_mb();
	if (dev->packed) {
		struct vring_packed_desc_event *ge = vuf_vq_driver_event(dev->vq);
		uint32_t raw = __atomic_load_n((uint32_t *)ge, __ATOMIC_RELAXED), ring2 = 2u * dev->size;
		struct vring_packed_desc_event ev;
		uint32_t new_pos = dev->used_pos + (dev->used_wrap ? 0 : dev->size);
		uint32_t old = dev->signalled;
		bool valid = dev->signalled_valid;
		uint16_t flags;

		memcpy(&ev, &raw, sizeof(ev));
		flags = le16toh(ev.flags);
		dev->signalled = new_pos;
		dev->signalled_valid = true;
		if (flags == VRING_PACKED_EVENT_FLAG_DISABLE) {
			need = false;
		} else if (flags == VRING_PACKED_EVENT_FLAG_ENABLE || !valid) {
			need = true;
		} else {
			uint16_t off = le16toh(ev.off_wrap);
			uint32_t e = (off & 0x7fffu) + ((off >> 15) ? 0 : dev->size);

			need = (new_pos + ring2 - e - 1) % ring2 < (new_pos + ring2 - old) % ring2;
		}
	} else {
		struct vring_avail *ga = vuf_vq_avail_split(dev->vq);

		if (dev->event_idx) {
			uint16_t ev = le16toh(vu_load_relaxed16(&ga->ring[dev->size]));
			uint16_t old = (uint16_t)dev->signalled;
			bool valid = dev->signalled_valid;

			dev->signalled = dev->used_idx;
			dev->signalled_valid = true;
			need = !valid || vring_need_event(ev, dev->used_idx, old);
		} else {
			need = !(le16toh(vu_load_relaxed16(&ga->flags)) & VRING_AVAIL_F_NO_INTERRUPT);
		}
	}
	if (need) {
		uint64_t one = 1;

		if (write(dev->call_fd, &one, sizeof(one)) != sizeof(one))
			dev_fail(dev, "call eventfd write: %s", strerror(errno));
		dev->calls++;
	}
}

/* Complete k pending chains chosen at random (out of order). */
static void dev_complete(struct fake_dev *dev, unsigned int k)
{
	for (unsigned int i = 0; i < k; i++) {
		unsigned int j = xorshift(&dev->rng) % dev->npend;
		struct pend p = dev->pend[j];

		dev->pend[j] = dev->pend[--dev->npend];
		if (dev->packed) {
			struct vring_packed_desc *d = &vuf_vq_desc_packed(dev->vq)[dev->used_pos];
			uint16_t f = dev->used_wrap ? (uint16_t)((1u << VRING_PACKED_DESC_F_AVAIL) |
								 (1u << VRING_PACKED_DESC_F_USED)) : 0;

			d->id = htole16(p.id);
			d->len = htole32(p.len);
			vu_store_release16(&d->flags, htole16(f));
			dev->used_pos = (uint16_t)(dev->used_pos + p.ndescs);
			if (dev->used_pos >= dev->size) {
				dev->used_pos = (uint16_t)(dev->used_pos - dev->size);
				dev->used_wrap = !dev->used_wrap;
			}
		} else {
			struct vring_used *gu = vuf_vq_used_split(dev->vq);
			struct vring_used_elem *e = &gu->ring[dev->used_idx & (dev->size - 1)];

			e->id = htole32(p.id);
			e->len = htole32(p.len);
			dev->used_idx++;
		}
	}
	if (!dev->packed)
		vu_store_release16(&vuf_vq_used_split(dev->vq)->idx, htole16(dev->used_idx));
	dev->completed += k;
	dev_notify(dev);
}

static void dev_kicks(struct fake_dev *dev, bool on)
{
	if (dev->packed) {
		struct vring_packed_desc_event *ge = vuf_vq_device_event(dev->vq);

		if (!on) {
			vu_store_release16(&ge->flags, htole16(VRING_PACKED_EVENT_FLAG_DISABLE));
		} else if (dev->event_idx) {
			vu_store_relaxed16(&ge->off_wrap,
					   htole16(dev->avail_pos | (uint16_t)(dev->avail_wrap << 15)));
			vu_store_release16(&ge->flags, htole16(VRING_PACKED_EVENT_FLAG_DESC));
		} else {
			vu_store_release16(&ge->flags, htole16(VRING_PACKED_EVENT_FLAG_ENABLE));
		}
	} else {
		struct vring_used *gu = vuf_vq_used_split(dev->vq);

		if (dev->event_idx) {
			if (on)
				vu_store_relaxed16((uint16_t *)&gu->ring[dev->size], htole16(dev->last_avail));
		} else {
			vu_store_relaxed16(&gu->flags, on ? 0 : htole16(VRING_USED_F_NO_NOTIFY));
		}
	}
	/* Pairs with the driver's barrier between publishing and reading suppression. */
	vu_smp_mb();
}

static void *dev_thread(void *arg)
{
	struct fake_dev *dev = arg;

	dev_kicks(dev, false);
	while (!__atomic_load_n(&dev->stop, __ATOMIC_ACQUIRE) && !dev->failed) {
		struct pollfd pfd = { .fd = dev->kick_fd, .events = POLLIN };
		int taken = dev_take(dev);

		if (taken < 0)
			break;
		if (dev->npend) {
			dev_complete(dev, taken ? 1 + xorshift(&dev->rng) % dev->npend : dev->npend);
			continue;
		}
		if (taken)
			continue;
		/* Idle: ask for kicks, look once more, then sleep (C.25). */
		dev_kicks(dev, true);
		if (!dev_has_avail(dev)) {
			int n = poll(&pfd, 1, KICK_WAIT_MS);

			if (n > 0) {
				uint64_t v;

				if (read(dev->kick_fd, &v, sizeof(v)) == sizeof(v))
					dev->kicks++;
			} else if (n == 0 && dev_has_avail(dev) &&
				   !__atomic_load_n(&dev->stop, __ATOMIC_ACQUIRE)) {
				__atomic_fetch_add(&dev->missed_kicks, 1, __ATOMIC_RELAXED);
			}
		}
		dev_kicks(dev, false);
	}
	return NULL;
}

static void dev_start(struct fake_dev *dev, struct vuf *vuf, struct vuf_vq *vq, uint32_t seed)
{
	memset(dev, 0, sizeof(*dev));
	dev->vuf = vuf;
	dev->vq = vq;
	dev->size = vuf_vq_size(vq);
	dev->packed = vuf_vq_is_packed(vq);
	dev->event_idx = vuf_features(vuf) & (1ull << VIRTIO_RING_F_EVENT_IDX);
	dev->kick_fd = vuf_vq_kick_fd(vq);
	dev->call_fd = vuf_vq_call_fd(vq);
	dev->rng = seed;
	dev->avail_wrap = dev->used_wrap = true;
	dev->pend = calloc(dev->size, sizeof(*dev->pend));
	dev->wcap = dev->size + VUF_INDIRECT_MAX_DEFAULT;
	dev->wbufs = calloc(dev->wcap, sizeof(*dev->wbufs));
	assert_non_null(dev->pend);
	assert_non_null(dev->wbufs);
	assert_int_equal(pthread_create(&dev->thread, NULL, dev_thread, dev), 0);
}

/* Stop and join the device thread (no assertion: also used on failure paths). */
static void dev_halt(struct fake_dev *dev)
{
	if (__atomic_exchange_n(&dev->stop, 1, __ATOMIC_ACQ_REL))
		return;
	vuf_vq_kick_force(dev->vq);
	pthread_join(dev->thread, NULL);
}

static void dev_stop(struct fake_dev *dev)
{
	dev_halt(dev);
	free(dev->pend);
	free(dev->wbufs);
}

/* Fail a traffic test, stopping the device first so that it outlives nothing. */
#define traffic_fail(dev, ...)			\
	do {					\
		dev_halt(dev);			\
		fail_msg(__VA_ARGS__);		\
	} while (0)

/* ================================================================== */
/* Driver side of the traffic tests                                   */
/* ================================================================== */

struct traffic_cfg {
	unsigned int size;
	bool packed;
	bool event_idx;
	bool indirect;
	unsigned int total;      /* chains to complete */
	unsigned int full_every; /* every n-th chain spans the whole ring (0: never) */
	uint32_t seed;
};

struct req {
	uint64_t cookie;
	uint32_t wlen;
	unsigned int nw;
	uint8_t *w[MAX_WSEGS];
	uint32_t wl[MAX_WSEGS];
	bool full;
	bool busy;
};

struct traffic {
	struct vuf *vuf;
	struct vuf_vq *vq;
	unsigned int nslots;     /* size normal slots + 1 for full chains */
	struct req *reqs;
	uint64_t *hdr_gpa;
	uint8_t **hdr;
	uint64_t *wgpa;          /* per slot: MAX_WSEGS * 256 bytes */
	uint8_t **wptr;
	uint16_t *free_slots;
	unsigned int nfree;
	struct vuf_seg *segs;    /* size entries */
	uint8_t *full_buf;       /* writable area of full chains: 16 bytes per segment */
	uint64_t full_gpa;
};

static struct vuf *make_vuf(uint64_t features)
{
	struct vuf *vuf = vuf_create();

	assert_non_null(vuf);
	assert_int_equal(vuf_mem_add(vuf, GPA_RING, MEM_SIZE, 0), 0);
	assert_int_equal(vuf_mem_add(vuf, GPA_DATA, MEM_SIZE, VUF_MEM_OFFSET), 0);
	vuf_set_local_features(vuf, features);
	return vuf;
}

/* Data buffers go to the second region, so that chains span two regions. */
static void *alloc_data(struct vuf *vuf, size_t size, uint64_t *gpa)
{
	void *p = vuf_alloc(vuf, size, 64, gpa);

	assert_non_null(p);
	return p;
}

static void traffic_setup(struct traffic *t, const struct traffic_cfg *cfg)
{
	uint64_t f = 1ull << VIRTIO_F_VERSION_1;
	struct vuf_vq_opts opts = { .index = 0, .size = cfg->size, .packed = cfg->packed };
	void *filler;
	uint64_t g;

	if (cfg->event_idx)
		f |= 1ull << VIRTIO_RING_F_EVENT_IDX;
	if (cfg->indirect)
		f |= 1ull << VIRTIO_RING_F_INDIRECT_DESC;
	if (cfg->packed)
		f |= 1ull << VIRTIO_F_RING_PACKED;
	memset(t, 0, sizeof(*t));
	t->vuf = make_vuf(f);
	t->vq = vuf_vq_create(t->vuf, &opts);
	assert_non_null(t->vq);
	vuf_vq_set_wait_fallback(t->vq, 0);
	t->nslots = cfg->size + 1;
	t->reqs = calloc(t->nslots, sizeof(*t->reqs));
	t->hdr_gpa = calloc(t->nslots, sizeof(*t->hdr_gpa));
	t->hdr = calloc(t->nslots, sizeof(*t->hdr));
	t->wgpa = calloc(t->nslots, sizeof(*t->wgpa));
	t->wptr = calloc(t->nslots, sizeof(*t->wptr));
	t->free_slots = calloc(t->nslots, sizeof(*t->free_slots));
	t->segs = calloc(cfg->size + 1, sizeof(*t->segs));
	assert_true(t->reqs && t->hdr_gpa && t->hdr && t->wgpa && t->wptr && t->free_slots && t->segs);
	for (unsigned int i = 0; i < t->nslots; i++) {
		t->hdr[i] = vuf_alloc(t->vuf, 8, 8, &t->hdr_gpa[i]);
		assert_non_null(t->hdr[i]);
	}
	/* Fill the first region so that the data lands in the second one. */
	for (size_t chunk = 1u << 16; chunk >= 64; chunk >>= 1)
		while ((filler = vuf_alloc(t->vuf, chunk, 64, &g)) && g < GPA_DATA)
			;
	for (unsigned int i = 0; i < t->nslots; i++)
		t->wptr[i] = alloc_data(t->vuf, MAX_WSEGS * 256, &t->wgpa[i]);
	t->full_buf = alloc_data(t->vuf, (size_t)cfg->size * 16, &t->full_gpa);
	assert_true(t->full_gpa >= GPA_DATA);
	for (unsigned int i = 0; i < cfg->size; i++)
		t->free_slots[t->nfree++] = (uint16_t)i;
}

static void traffic_teardown(struct traffic *t)
{
	vuf_close(t->vuf);
	free(t->reqs);
	free(t->hdr_gpa);
	free(t->hdr);
	free(t->wgpa);
	free(t->wptr);
	free(t->free_slots);
	free(t->segs);
}

/* Build and post request number seq in slot; 0, -ENOSPC. */
static int post_one(struct traffic *t, const struct traffic_cfg *cfg, uint32_t *rng,
		    unsigned int seq, unsigned int slot, bool full)
{
	struct req *r = &t->reqs[slot];
	unsigned int nsegs, flags = 0;
	int ret;

	memset(r, 0, sizeof(*r));
	r->cookie = ((uint64_t)seq << 16) | slot;
	r->full = full;
	memcpy(t->hdr[slot], &r->cookie, 8);
	t->segs[0] = (struct vuf_seg){ .gpa = t->hdr_gpa[slot], .len = 8, .writable = false };
	if (full) {
		nsegs = cfg->size;
		memset(t->full_buf, 0, (size_t)cfg->size * 16);
		for (unsigned int i = 1; i < nsegs; i++)
			t->segs[i] = (struct vuf_seg){ .gpa = t->full_gpa + 16 * (i - 1), .len = 16,
						       .writable = true };
		r->wlen = 16 * (nsegs - 1);
	} else {
		r->nw = xorshift(rng) % (MAX_WSEGS + 1);
		nsegs = 1 + r->nw;
		for (unsigned int i = 0; i < r->nw; i++) {
			r->wl[i] = 8 + xorshift(rng) % 249;
			r->w[i] = t->wptr[slot] + 256 * i;
			memset(r->w[i], 0, 8);
			t->segs[1 + i] = (struct vuf_seg){ .gpa = t->wgpa[slot] + 256 * i,
							   .len = r->wl[i], .writable = true };
			r->wlen += r->wl[i];
		}
		if (cfg->indirect && (xorshift(rng) & 1))
			flags = VUF_POST_INDIRECT;
	}
	ret = vuf_vq_post_flags(t->vq, t->segs, nsegs, r->cookie, flags);
	if (ret == 0)
		r->busy = true;
	return ret;
}

static void check_completion(struct traffic *t, const struct traffic_cfg *cfg,
			     const struct vuf_completion *c)
{
	unsigned int slot = c->cookie & 0xffff;
	struct req *r;

	assert_true(slot < t->nslots);
	r = &t->reqs[slot];
	assert_true(r->busy);
	assert_true(r->cookie == c->cookie);
	assert_int_equal(c->len, r->wlen);
	if (r->full) {
		for (unsigned int i = 0; i + 1 < cfg->size; i++)
			assert_memory_equal(t->full_buf + 16 * i, &r->cookie, 8);
	} else {
		for (unsigned int i = 0; i < r->nw; i++)
			assert_memory_equal(r->w[i], &r->cookie, 8);
	}
	r->busy = false;
	if (slot < cfg->size)
		t->free_slots[t->nfree++] = (uint16_t)slot;
}

static void run_traffic(const struct traffic_cfg *cfg)
{
	struct vuf_completion comps[64];
	struct traffic t;
	struct fake_dev *devp = calloc(1, sizeof(*devp));
	uint32_t rng = cfg->seed;
	unsigned int posted = 0, done = 0, out_of_order = 0, full_posted = 0;
	uint64_t max_seq_seen = 0;
	const struct vuf_vq_stats *st;

	assert_non_null(devp);
	traffic_setup(&t, cfg);
	dev_start(devp, t.vuf, t.vq, cfg->seed * 7 + 1);
	while (done < cfg->total) {
		int n;

		while (posted < cfg->total) {
			bool full = cfg->full_every && posted % cfg->full_every == cfg->full_every - 1;
			unsigned int slot;
			int ret;

			if (full) {
				/* A chain of the whole ring needs every descriptor free. */
				if (vuf_vq_num_free(t.vq) != cfg->size)
					break;
				slot = cfg->size;
			} else {
				if (!t.nfree)
					break;
				slot = t.free_slots[t.nfree - 1];
			}
			ret = post_one(&t, cfg, &rng, posted, slot, full);
			if (ret == -ENOSPC)
				break;
			assert_int_equal(ret, 0);
			if (!full)
				t.nfree--;
			else
				full_posted++;
			posted++;
		}
		n = vuf_vq_kick(t.vq);
		assert_true(n >= 0);
		n = vuf_vq_reap(t.vq, comps, VU_ARRAY_SIZE(comps));
		if (__atomic_load_n(&devp->missed_kicks, __ATOMIC_RELAXED))
			traffic_fail(devp, "the device missed a kick (posted %u, done %u)", posted, done);
		if (n < 0 || devp->failed)
			traffic_fail(devp, "reap %d, queue error: %s, device: %s", n,
				 vuf_vq_error(t.vq) ? vuf_vq_error(t.vq) : "none",
				 devp->failed ? devp->error : "fine");
		if (n == 0) {
			int ret = vuf_vq_wait(t.vq, WAIT_MS);

			/* Strict: completions must come with a call, not be found at the deadline. */
			if (vuf_vq_stats(t.vq)->wait_fallbacks)
				ret = -ETIME;
			if (ret)
				traffic_fail(devp, "wait: %d (posted %u, done %u, inflight %u), device: %s", ret,
					 posted, done, vuf_vq_inflight(t.vq),
					 devp->failed ? devp->error : "fine");
			continue;
		}
		for (int i = 0; i < n; i++) {
			uint64_t seq = comps[i].cookie >> 16;

			check_completion(&t, cfg, &comps[i]);
			if (seq < max_seq_seen)
				out_of_order++;
			else
				max_seq_seen = seq;
		}
		done += (unsigned int)n;
	}
	dev_stop(devp);
	if (devp->failed)
		traffic_fail(devp, "device: %s", devp->error);
	st = vuf_vq_stats(t.vq);
	assert_int_equal(devp->missed_kicks, 0);
	assert_int_equal(vuf_vq_inflight(t.vq), 0);
	assert_int_equal(vuf_vq_num_free(t.vq), cfg->size);
	assert_int_equal(st->completed, cfg->total);
	assert_int_equal(st->posted, cfg->total);
	assert_int_equal(st->bad_len, 0);
	assert_int_equal(st->wait_fallbacks, 0);
	assert_int_equal(devp->completed, cfg->total);
	assert_true(out_of_order > 0);
	if (cfg->full_every)
		assert_true(full_posted >= cfg->total / cfg->full_every);
	assert_null(vuf_vq_error(t.vq));
	traffic_teardown(&t);
	free(devp);
}

static void test_split_basic(void **state)
{
	struct traffic_cfg c = { .size = 256, .total = 3 * 256 * 8 + 5, .seed = 1 };

	(void)state;
	run_traffic(&c);
}

static void test_split_event_idx_indirect(void **state)
{
	struct traffic_cfg c = { .size = 128, .event_idx = true, .indirect = true,
				 .total = 3 * 128 * 16, .seed = 2 };

	(void)state;
	run_traffic(&c);
}

/* A small ring over more than 65536 chains: the 16-bit indexes wrap too. */
static void test_split_index_wrap(void **state)
{
	struct traffic_cfg c = { .size = 8, .event_idx = true, .total = 70000, .seed = 3 };

	(void)state;
	run_traffic(&c);
}

static void test_split_full_chain(void **state)
{
	struct traffic_cfg c = { .size = 16, .indirect = true, .total = 3 * 16 * 20,
				 .full_every = 7, .seed = 4 };

	(void)state;
	run_traffic(&c);
}

static void test_packed_basic(void **state)
{
	struct traffic_cfg c = { .size = 256, .packed = true, .total = 3 * 256 * 8 + 3, .seed = 5 };

	(void)state;
	run_traffic(&c);
}

static void test_packed_event_idx_indirect(void **state)
{
	struct traffic_cfg c = { .size = 128, .packed = true, .event_idx = true, .indirect = true,
				 .total = 3 * 128 * 16, .seed = 6 };

	(void)state;
	run_traffic(&c);
}

/* Packed rings need not be a power of two. */
static void test_packed_odd_size(void **state)
{
	struct traffic_cfg c = { .size = 100, .packed = true, .event_idx = true,
				 .total = 3 * 100 * 10 + 1, .seed = 7 };

	(void)state;
	run_traffic(&c);
}

/* Chains of exactly the ring size, at every offset, wrap counter flips (C.26). */
static void test_packed_full_chain(void **state)
{
	struct traffic_cfg c = { .size = 16, .packed = true, .event_idx = true, .indirect = true,
				 .total = 3 * 16 * 40, .full_every = 5, .seed = 8 };
	struct traffic_cfg d = { .size = 7, .packed = true, .total = 3 * 7 * 50,
				 .full_every = 3, .seed = 9 };

	(void)state;
	run_traffic(&c);
	run_traffic(&d);
}

/* ================================================================== */
/* Directed ring tests (no device thread)                             */
/* ================================================================== */

static struct vuf_vq *make_vq(struct vuf **vufp, unsigned int size, bool packed, uint64_t extra)
{
	struct vuf_vq_opts opts = { .index = 3, .size = size, .packed = packed };
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) | extra;
	struct vuf_vq *vq;

	if (packed)
		f |= 1ull << VIRTIO_F_RING_PACKED;
	*vufp = make_vuf(f);
	vq = vuf_vq_create(*vufp, &opts);
	assert_non_null(vq);
	return vq;
}

static void seg1(struct vuf *vuf, struct vuf_seg *s)
{
	uint64_t g;

	assert_non_null(vuf_alloc(vuf, 64, 8, &g));
	*s = (struct vuf_seg){ .gpa = g, .len = 64, .writable = true };
}

static void test_post_limits(void **state)
{
	struct vuf *vuf;
	struct vuf_vq *vq = make_vq(&vuf, 8, false, 0);
	struct vuf_completion c[8];
	struct vuf_seg s[9];

	(void)state;
	{
		struct vuf_vq_opts o = { .index = 4, .size = 8, .packed = true };

		assert_null(vuf_vq_create(vuf, &o));        /* packed not negotiated */
		assert_int_equal(errno, EOPNOTSUPP);
		o.size = 12;
		o.packed = false;
		assert_null(vuf_vq_create(vuf, &o));        /* split: power of two */
		assert_int_equal(errno, EINVAL);
		vuf_set_local_features(vuf, vuf_features(vuf) | (1ull << VIRTIO_F_RING_PACKED));
		o.size = 8;
		assert_null(vuf_vq_create(vuf, &o));        /* split while packed is negotiated */
		assert_int_equal(errno, EINVAL);
		vuf_set_local_features(vuf, vuf_features(vuf) & ~(1ull << VIRTIO_F_RING_PACKED));
	}
	for (int i = 0; i < 9; i++)
		seg1(vuf, &s[i]);
	assert_int_equal(vuf_vq_post(vq, s, 0, 0), -EINVAL);
	assert_int_equal(vuf_vq_post(vq, s, 9, 0), -EINVAL);
	/* Indirect not negotiated: the flag falls back to direct descriptors. */
	assert_int_equal(vuf_vq_post_flags(vq, s, 3, 1, VUF_POST_INDIRECT), 0);
	assert_int_equal(vuf_vq_num_free(vq), 5);
	assert_int_equal(vuf_vq_post(vq, s, 6, 2), -ENOSPC);
	for (int i = 0; i < 5; i++)
		assert_int_equal(vuf_vq_post(vq, s, 1, 10 + i), 0);
	assert_int_equal(vuf_vq_post(vq, s, 1, 99), -ENOSPC);
	assert_int_equal(vuf_vq_inflight(vq), 6);
	assert_int_equal(vuf_vq_reap(vq, c, 8), 0);
	assert_false(vuf_vq_pending(vq));
	/* used->flags 0: the device wants kicks; a second kick has nothing new. */
	assert_int_equal(vuf_vq_kick(vq), 1);
	assert_int_equal(vuf_vq_kick(vq), 0);
	assert_int_equal(vuf_vq_stats(vq)->kicks, 1);
	vuf_close(vuf);
}

static void test_split_kick_suppression(void **state)
{
	struct vuf *vuf;
	struct vuf_vq *vq = make_vq(&vuf, 8, false, 0);
	struct vring_used *gu = vuf_vq_used_split(vq);
	struct vuf_seg s;

	(void)state;
	seg1(vuf, &s);
	gu->flags = htole16(VRING_USED_F_NO_NOTIFY);
	assert_int_equal(vuf_vq_post(vq, &s, 1, 1), 0);
	assert_int_equal(vuf_vq_kick(vq), 0);
	assert_int_equal(vuf_vq_stats(vq)->kicks_suppressed, 1);
	gu->flags = 0;
	assert_int_equal(vuf_vq_post(vq, &s, 1, 2), 0);
	assert_int_equal(vuf_vq_kick(vq), 1);
	assert_int_equal(vuf_vq_kick_force(vq), 0);
	assert_int_equal(vuf_vq_stats(vq)->kicks, 2);
	vuf_close(vuf);

	/* EVENT_IDX: a kick only when the entry at avail_event is made available. */
	vq = make_vq(&vuf, 8, false, 1ull << VIRTIO_RING_F_EVENT_IDX);
	gu = vuf_vq_used_split(vq);
	seg1(vuf, &s);
	*(uint16_t *)&gu->ring[8] = htole16(2);
	assert_int_equal(vuf_vq_post(vq, &s, 1, 1), 0);  /* entry 0 */
	assert_int_equal(vuf_vq_post(vq, &s, 1, 2), 0);  /* entry 1 */
	assert_int_equal(vuf_vq_kick(vq), 0);
	assert_int_equal(vuf_vq_post(vq, &s, 1, 3), 0);  /* entry 2 */
	assert_int_equal(vuf_vq_kick(vq), 1);
	assert_int_equal(vuf_vq_post(vq, &s, 1, 4), 0);  /* entry 3: event 2 is behind */
	assert_int_equal(vuf_vq_kick(vq), 0);
	vuf_close(vuf);
}

/* VUF_POST_BATCH: avail->idx moves at the kick, or once 8 chains wait;
 * a post without the flag publishes what waits before it. */
static void test_split_batch_publish(void **state)
{
	struct vuf *vuf;
	struct vuf_vq *vq = make_vq(&vuf, 32, false, 0);
	struct vring_avail *ga = vuf_vq_avail_split(vq);
	struct vuf_seg s;

	(void)state;
	seg1(vuf, &s);
	for (unsigned int i = 0; i < 7; i++)
		assert_int_equal(vuf_vq_post_flags(vq, &s, 1, i, VUF_POST_BATCH), 0);
	assert_int_equal(le16toh(ga->idx), 0);
	assert_int_equal(vuf_vq_post_flags(vq, &s, 1, 7, VUF_POST_BATCH), 0);
	assert_int_equal(le16toh(ga->idx), 8);
	assert_int_equal(vuf_vq_post_flags(vq, &s, 1, 8, VUF_POST_BATCH), 0);
	assert_int_equal(le16toh(ga->idx), 8);
	assert_true(vuf_vq_kick(vq) >= 0);
	assert_int_equal(le16toh(ga->idx), 9);
	assert_int_equal(vuf_vq_post_flags(vq, &s, 1, 9, VUF_POST_BATCH), 0);
	assert_int_equal(vuf_vq_post(vq, &s, 1, 10), 0);
	assert_int_equal(le16toh(ga->idx), 11);
	vuf_close(vuf);
}

static void test_packed_kick_suppression(void **state)
{
	struct vuf *vuf;
	struct vuf_vq *vq = make_vq(&vuf, 4, true, 1ull << VIRTIO_RING_F_EVENT_IDX);
	struct vring_packed_desc_event *ge = vuf_vq_device_event(vq);
	struct vring_packed_desc *gd = vuf_vq_desc_packed(vq);
	struct vuf_completion c[4];
	struct vuf_seg s;

	(void)state;
	assert_true(vuf_vq_base(vq) == 0x80008000u);
	seg1(vuf, &s);
	ge->flags = htole16(VRING_PACKED_EVENT_FLAG_DISABLE);
	assert_int_equal(vuf_vq_post(vq, &s, 1, 1), 0);
	assert_int_equal(vuf_vq_kick(vq), 0);
	/* DESC: kick when slot 2 of the first lap (wrap 1) is made available. */
	ge->off_wrap = htole16(2 | (1u << 15));
	ge->flags = htole16(VRING_PACKED_EVENT_FLAG_DESC);
	assert_int_equal(vuf_vq_post(vq, &s, 1, 2), 0);  /* slot 1 */
	assert_int_equal(vuf_vq_kick(vq), 0);
	assert_int_equal(vuf_vq_post(vq, &s, 1, 3), 0);  /* slot 2 */
	assert_int_equal(vuf_vq_kick(vq), 1);
	/* The device uses slots 0-2 (one used descriptor per chain). */
	for (uint16_t i = 0; i < 3; i++) {
		gd[i].id = htole16(i);
		gd[i].len = 0;
		gd[i].flags = htole16((1u << VRING_PACKED_DESC_F_AVAIL) | (1u << VRING_PACKED_DESC_F_USED));
	}
	/* The device's position counts used descriptors not reaped yet. */
	assert_true(vuf_vq_base(vq) == 0x80038003u);
	assert_int_equal(vuf_vq_reap(vq, c, 4), 3);
	assert_true(c[0].cookie == 1 && c[1].cookie == 2 && c[2].cookie == 3);
	assert_true(vuf_vq_base(vq) == 0x80038003u);
	/* Event at slot 1 of the second lap (wrap 0). */
	ge->off_wrap = htole16(1);
	assert_int_equal(vuf_vq_post(vq, &s, 1, 4), 0);  /* slot 3, lap 1 */
	assert_int_equal(vuf_vq_kick(vq), 0);
	assert_int_equal(vuf_vq_post(vq, &s, 1, 5), 0);  /* slot 0, lap 2 */
	assert_int_equal(vuf_vq_post(vq, &s, 1, 6), 0);  /* slot 1, lap 2 */
	assert_int_equal(vuf_vq_kick(vq), 1);
	/* The head of the second lap carries the flipped wrap bits. */
	assert_int_equal(le16toh(gd[0].flags) & ((1u << VRING_PACKED_DESC_F_AVAIL) |
						 (1u << VRING_PACKED_DESC_F_USED)),
			 1u << VRING_PACKED_DESC_F_USED);
	vuf_close(vuf);
}

static void test_cb_control(void **state)
{
	struct vuf *vuf;
	struct vuf_vq *vq = make_vq(&vuf, 8, false, 0);
	struct vring_avail *ga = vuf_vq_avail_split(vq);

	(void)state;
	assert_int_equal(ga->flags, 0);
	vuf_vq_disable_cb(vq);
	assert_int_equal(le16toh(ga->flags), VRING_AVAIL_F_NO_INTERRUPT);
	assert_false(vuf_vq_enable_cb(vq));
	assert_int_equal(ga->flags, 0);
	/* Nothing completes: the wait times out and restores the state. */
	vuf_vq_disable_cb(vq);
	vuf_vq_set_wait_fallback(vq, 5);
	assert_int_equal(vuf_vq_wait(vq, 30), -ETIMEDOUT);
	assert_int_equal(le16toh(ga->flags), VRING_AVAIL_F_NO_INTERRUPT);
	assert_int_equal(vuf_vq_wait_call(vq, 10), -ETIMEDOUT);
	vuf_close(vuf);

	vq = make_vq(&vuf, 8, true, 1ull << VIRTIO_RING_F_EVENT_IDX);
	assert_int_equal(le16toh(vuf_vq_driver_event(vq)->flags), VRING_PACKED_EVENT_FLAG_DESC);
	assert_int_equal(le16toh(vuf_vq_driver_event(vq)->off_wrap), 1u << 15);
	vuf_vq_disable_cb(vq);
	assert_int_equal(le16toh(vuf_vq_driver_event(vq)->flags), VRING_PACKED_EVENT_FLAG_DISABLE);
	vuf_close(vuf);
}

static void test_bad_device_split(void **state)
{
	struct vuf *vuf;
	struct vuf_vq *vq = make_vq(&vuf, 8, false, 0);
	struct vring_used *gu = vuf_vq_used_split(vq);
	struct vuf_completion c[8];
	struct vuf_seg s;

	(void)state;
	seg1(vuf, &s);
	assert_int_equal(vuf_vq_post(vq, &s, 1, 1), 0);
	gu->ring[0].id = htole32(100);
	gu->idx = htole16(1);
	assert_int_equal(vuf_vq_reap(vq, c, 8), -EIO);
	assert_non_null(vuf_vq_error(vq));
	assert_non_null(strstr(vuf_vq_error(vq), "beyond"));
	assert_int_equal(vuf_vq_post(vq, &s, 1, 2), -EIO);
	vuf_close(vuf);

	/* used->idx moved past what is in flight. */
	vq = make_vq(&vuf, 8, false, 0);
	gu = vuf_vq_used_split(vq);
	seg1(vuf, &s);
	assert_int_equal(vuf_vq_post(vq, &s, 1, 1), 0);
	gu->ring[0].id = 0;
	gu->idx = htole16(5);
	assert_int_equal(vuf_vq_reap(vq, c, 8), -EIO);
	vuf_close(vuf);

	/* The same head completed twice. */
	vq = make_vq(&vuf, 8, false, 0);
	gu = vuf_vq_used_split(vq);
	seg1(vuf, &s);
	assert_int_equal(vuf_vq_post(vq, &s, 1, 1), 0);
	assert_int_equal(vuf_vq_post(vq, &s, 1, 2), 0);
	gu->ring[0].id = 0;
	gu->ring[1].id = 0;
	gu->idx = htole16(2);
	assert_int_equal(vuf_vq_reap(vq, c, 8), 1);
	assert_true(c[0].cookie == 1);
	assert_int_equal(vuf_vq_reap(vq, c, 8), -EIO);
	assert_non_null(strstr(vuf_vq_error(vq), "not in flight"));
	vuf_close(vuf);
}

static void test_bad_device_packed(void **state)
{
	struct vuf *vuf;
	struct vuf_vq *vq = make_vq(&vuf, 8, true, 0);
	struct vring_packed_desc *gd = vuf_vq_desc_packed(vq);
	struct vuf_completion c[8];
	struct vuf_seg s;

	(void)state;
	seg1(vuf, &s);
	assert_int_equal(vuf_vq_post(vq, &s, 1, 1), 0);
	gd[0].id = htole16(5); /* not in flight */
	gd[0].flags = htole16((1u << VRING_PACKED_DESC_F_AVAIL) | (1u << VRING_PACKED_DESC_F_USED));
	assert_int_equal(vuf_vq_reap(vq, c, 8), -EIO);
	assert_non_null(strstr(vuf_vq_error(vq), "not in flight"));
	vuf_close(vuf);
}

static void test_raw_posts(void **state)
{
	struct vuf *vuf;
	struct vuf_vq *vq = make_vq(&vuf, 8, false, 0);
	struct vring_used *gu = vuf_vq_used_split(vq);
	struct vring_avail *ga = vuf_vq_avail_split(vq);
	struct vuf_completion c[8];
	struct vring_packed_desc raw[2];
	struct vuf_seg s;

	(void)state;
	/* A tracked raw head and an untracked one beyond the ring. */
	assert_int_equal(vuf_vq_post_raw_head(vq, 3, 77), 0);
	assert_int_equal(vuf_vq_post_raw_head(vq, 100, 78), 0);
	assert_int_equal(le16toh(ga->idx), 2);
	assert_int_equal(le16toh(ga->ring[1]), 100);
	assert_int_equal(vuf_vq_inflight(vq), 1);
	gu->ring[0].id = htole32(3);
	gu->ring[0].len = htole32(0);
	gu->idx = htole16(1);
	assert_int_equal(vuf_vq_reap(vq, c, 8), 1);
	assert_true(c[0].cookie == 77 && c[0].len == 0 && c[0].id == 3);
	vuf_close(vuf);

	/* Packed: a raw chain whose descriptors disagree on NEXT; id tracked. */
	vq = make_vq(&vuf, 8, true, 0);
	seg1(vuf, &s);
	memset(raw, 0, sizeof(raw));
	raw[0].addr = htole64(s.gpa);
	raw[0].len = htole32(16);
	raw[0].id = htole16(6);
	raw[0].flags = htole16(VRING_DESC_F_NEXT);
	raw[1] = raw[0];
	raw[1].flags = htole16(VRING_DESC_F_WRITE);
	assert_int_equal(vuf_vq_post_raw_packed(vq, raw, 2, 55, false), 0);
	assert_int_equal(vuf_vq_num_free(vq), 6);
	assert_int_equal(le16toh(vuf_vq_desc_packed(vq)[0].flags),
			 VRING_DESC_F_NEXT | (1u << VRING_PACKED_DESC_F_AVAIL));
	vuf_vq_desc_packed(vq)[0].id = htole16(6);
	vuf_vq_desc_packed(vq)[0].flags =
		htole16((1u << VRING_PACKED_DESC_F_AVAIL) | (1u << VRING_PACKED_DESC_F_USED));
	assert_int_equal(vuf_vq_reap(vq, c, 8), 1);
	assert_true(c[0].cookie == 55);
	assert_int_equal(vuf_vq_num_free(vq), 8);
	/* Id 6 was taken out of the free list and not returned: 7 chains fit. */
	for (int i = 0; i < 7; i++)
		assert_int_equal(vuf_vq_post(vq, &s, 1, (uint64_t)i), 0);
	vuf_close(vuf);
}

static void test_memory(void **state)
{
	struct vuf *vuf = vuf_create();
	struct vu_mem_region_desc d;
	uint64_t g, uva;
	uint8_t *p, *q;
	int fd;

	(void)state;
	assert_non_null(vuf);
	assert_int_equal(vuf_mem_add(vuf, 0x10000, 1u << 20, 0), 0);
	assert_int_equal(vuf_mem_add(vuf, 0x80000, 4096, 0), -EEXIST);
	assert_int_equal(vuf_mem_add(vuf, 0x10001000ull + 1, 4096, 0), -EINVAL);
	assert_int_equal(vuf_mem_add(vuf, 0x20000000, 0, 0), -EINVAL);
	assert_int_equal(vuf_mem_add(vuf, 0x20000000, 5000, VUF_MEM_OFFSET), 0);
	assert_int_equal(vuf_mem_nregions(vuf), 2);
	assert_int_equal(vuf_mem_region(vuf, 1, &d, &fd), 0);
	assert_true(d.guest_addr == 0x20000000 && d.size == 8192 && d.mmap_offset == 4096);
	assert_true(d.user_addr == 0x20000000 + VUF_UVA_OFFSET);
	assert_true(fd >= 0);
	assert_int_equal(vuf_mem_region(vuf, 2, &d, &fd), -ENOENT);

	p = vuf_gpa_to_ptr(vuf, 0x10000, 16);
	assert_non_null(p);
	assert_null(vuf_gpa_to_ptr(vuf, 0x10000 + (1u << 20) - 8, 16)); /* crosses the end */
	assert_null(vuf_gpa_to_ptr(vuf, 0x5000, 1));
	assert_int_equal(vuf_ptr_to_gpa(vuf, p + 100, &g), 0);
	assert_true(g == 0x10000 + 100);
	assert_int_equal(vuf_ptr_to_gpa(vuf, &g, &g), -EFAULT);
	assert_int_equal(vuf_gpa_to_uva(vuf, 0x10010, &uva), 0);
	assert_true(uva == 0x10010 + VUF_UVA_OFFSET && uva != 0x10010);
	assert_true((uintptr_t)p != uva);

	q = vuf_alloc(vuf, 3, 1, &g);
	assert_ptr_equal(q, p);
	q = vuf_alloc(vuf, 10, 64, &g);
	assert_true(g == 0x10000 + 64);
	assert_ptr_equal(q, p + 64);
	assert_null(vuf_alloc(vuf, 10, 3, &g));
	/* Too big for the first region, fits nowhere. */
	assert_null(vuf_alloc(vuf, 2u << 20, 8, &g));
	assert_int_equal(errno, ENOMEM);
	/* The second region is used once the first is full. */
	assert_non_null(vuf_alloc(vuf, (1u << 20) - 128, 8, &g));
	q = vuf_alloc(vuf, 256, 8, &g);
	assert_non_null(q);
	assert_true(g == 0x20000000);
	/* The mapping is the memfd at mmap_offset. */
	memcpy(q, "marker!", 8);
	{
		char buf[8];

		assert_int_equal(pread(fd, buf, 8, 4096), 8);
		assert_memory_equal(buf, "marker!", 8);
	}
	/* No connection. */
	assert_int_equal(vuf_set_owner(vuf), -ENOTCONN);
	assert_int_equal(vuf_mem_commit(vuf), -ENOTCONN);
	vuf_close(vuf);
	vuf_close(NULL);
}

/* ================================================================== */
/* Control path against a scripted fake back-end                      */
/* ================================================================== */

#define BE_LOG_MAX 512
#define BE_NEW_CONN 0xffffffffu

struct fake_be {
	int lfd;
	char dir[64];
	char path[128];
	pthread_t thread;
	int stop;
	pthread_mutex_t lock;
	uint64_t features;
	uint64_t proto;
	uint32_t log[BE_LOG_MAX];
	unsigned int nlog;
	struct vu_msg last[VU_REQ_MAX];
	uint32_t nak;           /* answered with ack 1 */
	uint32_t misreply;      /* answered as if it were GET_FEATURES */
	uint32_t drop;          /* connection closed instead of handling it */
	uint32_t vring_base[4];
	uint8_t status;
	int backend_ch;
	bool check_mem;         /* look for the markers in shared regions */
	int mem_ok;
	int mem_bad;
	int inflight_fd;
};

static bool be_natural(uint32_t req)
{
	switch (req) {
	case VU_REQ_GET_FEATURES:
	case VU_REQ_GET_PROTOCOL_FEATURES:
	case VU_REQ_GET_VRING_BASE:
	case VU_REQ_GET_QUEUE_NUM:
	case VU_REQ_GET_CONFIG:
	case VU_REQ_GET_INFLIGHT_FD:
	case VU_REQ_GET_MAX_MEM_SLOTS:
	case VU_REQ_GET_STATUS:
		return true;
	default:
		return false;
	}
}

/* Check that a region's memory shows the marker (its gpa) at its start. */
static void be_check_region(struct fake_be *be, const struct vu_mem_region_desc *r, int fd)
{
	uint8_t *map;
	uint64_t v;

	if (!be->check_mem)
		return;
	map = mmap(NULL, r->size + r->mmap_offset, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		be->mem_bad++;
		return;
	}
	memcpy(&v, map + r->mmap_offset, 8);
	if (v == r->guest_addr && r->user_addr != r->guest_addr)
		be->mem_ok++;
	else
		be->mem_bad++;
	munmap(map, r->size + r->mmap_offset);
}

/* Handle one message; false to close the connection. */
static bool be_handle(struct fake_be *be, int cfd, struct vu_msg *m)
{
	uint32_t req = m->hdr.request;
	struct vu_msg r;
	bool reply = be_natural(req);

	pthread_mutex_lock(&be->lock);
	if (be->nlog < BE_LOG_MAX)
		be->log[be->nlog++] = req;
	if (req < VU_REQ_MAX)
		be->last[req] = *m;
	if (req == be->drop) {
		be->drop = 0;
		pthread_mutex_unlock(&be->lock);
		vu_msg_close_fds(m);
		return false;
	}
	memset(&r, 0, sizeof(r));
	r.hdr.request = req == be->misreply ? VU_REQ_GET_FEATURES : req;
	r.hdr.flags = VU_VERSION | VU_FLAG_REPLY;
	r.hdr.size = 8;
	switch (req) {
	case VU_REQ_GET_FEATURES:
		r.payload.u64 = be->features;
		break;
	case VU_REQ_GET_PROTOCOL_FEATURES:
		r.payload.u64 = be->proto;
		break;
	case VU_REQ_GET_QUEUE_NUM:
		r.payload.u64 = 4;
		break;
	case VU_REQ_GET_MAX_MEM_SLOTS:
		r.payload.u64 = 32;
		break;
	case VU_REQ_GET_STATUS:
		r.payload.u64 = be->status;
		break;
	case VU_REQ_SET_STATUS:
		be->status = (uint8_t)m->payload.u64;
		break;
	case VU_REQ_GET_CONFIG:
		r.hdr.size = m->hdr.size;
		r.payload.config = m->payload.config;
		for (uint32_t i = 0; i < m->payload.config.size && i < VU_MAX_CONFIG_SIZE; i++)
			r.payload.config.region[i] = (uint8_t)(m->payload.config.offset + i);
		break;
	case VU_REQ_SET_VRING_BASE:
		be->vring_base[m->payload.state.index & 3] = m->payload.state.num;
		break;
	case VU_REQ_GET_VRING_BASE:
		r.hdr.size = sizeof(r.payload.state);
		r.payload.state.index = m->payload.state.index;
		r.payload.state.num = be->vring_base[m->payload.state.index & 3];
		break;
	case VU_REQ_GET_INFLIGHT_FD:
		vu_close_fd(&be->inflight_fd);
		be->inflight_fd = memfd_create("fake-inflight", MFD_CLOEXEC);
		if (be->inflight_fd < 0 || ftruncate(be->inflight_fd, 8192) < 0)
			break;
		r.hdr.size = sizeof(r.payload.inflight);
		r.payload.inflight = m->payload.inflight;
		r.payload.inflight.mmap_size = 8192;
		r.payload.inflight.mmap_offset = 0;
		r.fds[0] = be->inflight_fd;
		r.nfds = 1;
		break;
	case VU_REQ_SET_MEM_TABLE:
		for (unsigned int i = 0; i < m->payload.mem.nregions && i < m->nfds; i++)
			be_check_region(be, &m->payload.mem.regions[i], m->fds[i]);
		break;
	case VU_REQ_ADD_MEM_REG:
		if (m->nfds == 1)
			be_check_region(be, &m->payload.mem_reg.region, m->fds[0]);
		break;
	case VU_REQ_SET_BACKEND_REQ_FD:
		vu_close_fd(&be->backend_ch);
		be->backend_ch = vu_msg_take_fd(m, 0);
		break;
	default:
		break;
	}
	if (!reply && (m->hdr.flags & VU_FLAG_NEED_REPLY)) {
		reply = true;
		r.hdr.size = 8;
		r.payload.u64 = req == be->nak ? 1 : 0;
	}
	pthread_mutex_unlock(&be->lock);
	vu_msg_close_fds(m);
	if (reply && vu_msg_send(cfd, &r) < 0)
		return false;
	return true;
}

static void *be_thread(void *arg)
{
	struct fake_be *be = arg;

	while (!__atomic_load_n(&be->stop, __ATOMIC_ACQUIRE)) {
		struct pollfd pfd = { .fd = be->lfd, .events = POLLIN };
		int cfd;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		cfd = accept4(be->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0)
			continue;
		pthread_mutex_lock(&be->lock);
		if (be->nlog < BE_LOG_MAX)
			be->log[be->nlog++] = BE_NEW_CONN;
		pthread_mutex_unlock(&be->lock);
		while (!__atomic_load_n(&be->stop, __ATOMIC_ACQUIRE)) {
			struct pollfd cp = { .fd = cfd, .events = POLLIN };
			struct vu_msg m;

			if (poll(&cp, 1, 50) <= 0)
				continue;
			if (vu_msg_recv(cfd, &m) < 0 || !be_handle(be, cfd, &m))
				break;
		}
		close(cfd);
	}
	return NULL;
}

static void be_start(struct fake_be *be, uint64_t features, uint64_t proto)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(be, 0, sizeof(*be));
	be->features = features;
	be->proto = proto;
	be->backend_ch = -1;
	be->inflight_fd = -1;
	pthread_mutex_init(&be->lock, NULL);
	strcpy(be->dir, "/tmp/vuf-selftest-XXXXXX");
	assert_non_null(mkdtemp(be->dir));
	snprintf(be->path, sizeof(be->path), "%s/sock", be->dir);
	be->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(be->lfd >= 0);
	strcpy(sa.sun_path, be->path);
	assert_int_equal(bind(be->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(be->lfd, 4), 0);
	assert_int_equal(pthread_create(&be->thread, NULL, be_thread, be), 0);
}

static void be_stop(struct fake_be *be)
{
	__atomic_store_n(&be->stop, 1, __ATOMIC_RELEASE);
	pthread_join(be->thread, NULL);
	close(be->lfd);
	vu_close_fd(&be->backend_ch);
	vu_close_fd(&be->inflight_fd);
	unlink(be->path);
	rmdir(be->dir);
	pthread_mutex_destroy(&be->lock);
}

/* Requests since the last new connection must be exactly want[]. */
static void be_expect(struct fake_be *be, const uint32_t *want, unsigned int n)
{
	unsigned int start = 0;

	pthread_mutex_lock(&be->lock);
	for (unsigned int i = 0; i < be->nlog; i++)
		if (be->log[i] == BE_NEW_CONN)
			start = i + 1;
	for (unsigned int i = 0; i < n || start + i < be->nlog; i++) {
		uint32_t got = start + i < be->nlog ? be->log[start + i] : VU_REQ_NONE;
		uint32_t exp = i < n ? want[i] : VU_REQ_NONE;

		if (got != exp) {
			pthread_mutex_unlock(&be->lock);
			fail_msg("request %u: got %s, expected %s", i, vu_request_name(got),
				 vu_request_name(exp));
		}
	}
	pthread_mutex_unlock(&be->lock);
}

/* Forget the requests logged so far (a marker starts a new list). */
static void be_mark(struct fake_be *be)
{
	pthread_mutex_lock(&be->lock);
	if (be->nlog < BE_LOG_MAX)
		be->log[be->nlog++] = BE_NEW_CONN;
	pthread_mutex_unlock(&be->lock);
}

/* Write a region's gpa at its start, for be_check_region. */
static void write_marker(struct vuf *vuf, uint64_t gpa)
{
	void *p = vuf_gpa_to_ptr(vuf, gpa, 8);

	assert_non_null(p);
	memcpy(p, &gpa, 8);
}

static void test_control_path(void **state)
{
	const uint64_t features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX) |
				  (1ull << VIRTIO_RING_F_INDIRECT_DESC) | (1ull << VIRTIO_F_RING_PACKED) |
				  (1ull << VU_F_PROTOCOL_FEATURES);
	const uint64_t proto = (1ull << VU_PROTOCOL_F_MQ) | (1ull << VU_PROTOCOL_F_REPLY_ACK) |
			       (1ull << VU_PROTOCOL_F_CONFIG) | (1ull << VU_PROTOCOL_F_INFLIGHT_SHMFD) |
			       (1ull << VU_PROTOCOL_F_BACKEND_REQ) | (1ull << VU_PROTOCOL_F_STATUS) |
			       (1ull << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |
			       (1ull << VU_PROTOCOL_F_RESET_DEVICE);
	const uint64_t want = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX) |
			      (1ull << 3) /* not offered */;
	const uint64_t want_proto = proto & ~(1ull << VU_PROTOCOL_F_RESET_DEVICE);
	struct vuf_vq *vq0, *vq1;
	struct vu_inflight_desc idesc;
	struct vhost_vring_addr addr;
	struct fake_be be;
	struct vuf *vuf;
	uint64_t neg, v, dg, ug;
	uint8_t cfg[8], st;
	uint32_t base;
	int fd;

	(void)state;
	be_start(&be, features, proto);
	vuf = vuf_connect(be.path, 2000);
	assert_non_null(vuf);

	/* Handshake. */
	assert_int_equal(vuf_negotiate(vuf, want, want_proto, &neg), 0);
	assert_true(neg == ((want & features) | (1ull << VU_F_PROTOCOL_FEATURES)));
	assert_true(vuf_protocol_features(vuf) == want_proto);
	{
		const uint32_t seq[] = { VU_REQ_GET_FEATURES, VU_REQ_GET_PROTOCOL_FEATURES,
					 VU_REQ_SET_PROTOCOL_FEATURES, VU_REQ_SET_OWNER,
					 VU_REQ_SET_FEATURES };

		be_expect(&be, seq, VU_ARRAY_SIZE(seq));
	}
	assert_true(be.last[VU_REQ_SET_FEATURES].payload.u64 == neg);
	assert_true(be.last[VU_REQ_SET_PROTOCOL_FEATURES].payload.u64 == want_proto);
	assert_false(be.last[VU_REQ_SET_PROTOCOL_FEATURES].hdr.flags & VU_FLAG_NEED_REPLY);
	assert_true(be.last[VU_REQ_SET_OWNER].hdr.flags & VU_FLAG_NEED_REPLY);

	/* Memory: two regions, one at a non-zero mmap offset; the back-end sees the markers. */
	assert_int_equal(vuf_mem_add(vuf, GPA_DATA, 1u << 20, 0), 0);
	assert_int_equal(vuf_mem_add(vuf, 0x200000, 1u << 20, VUF_MEM_OFFSET), 0);
	write_marker(vuf, GPA_DATA);
	write_marker(vuf, 0x200000);
	be.check_mem = true;
	assert_int_equal(vuf_mem_commit(vuf), 0);
	assert_int_equal(be.mem_ok, 2);
	assert_int_equal(be.mem_bad, 0);
	be.check_mem = false;
	assert_int_equal(be.last[VU_REQ_SET_MEM_TABLE].nfds, 2);
	assert_int_equal(be.last[VU_REQ_SET_MEM_TABLE].hdr.size, 8 + 2 * 32);

	/* Queues: the QEMU start sequence, UVAs in SET_VRING_ADDR. */
	be_mark(&be);
	vq0 = vuf_vq_setup(vuf, 0, 64, false);
	assert_non_null(vq0);
	{
		const uint32_t seq[] = { VU_REQ_SET_VRING_NUM, VU_REQ_SET_VRING_BASE,
					 VU_REQ_SET_VRING_ADDR, VU_REQ_SET_VRING_KICK,
					 VU_REQ_SET_VRING_CALL, VU_REQ_SET_VRING_ENABLE };

		be_expect(&be, seq, VU_ARRAY_SIZE(seq));
	}
	vuf_vq_ring_gpas(vq0, &dg, NULL, &ug);
	addr = be.last[VU_REQ_SET_VRING_ADDR].payload.addr;
	assert_true(addr.desc_user_addr == dg + VUF_UVA_OFFSET);
	assert_true(addr.used_user_addr == ug + VUF_UVA_OFFSET);
	assert_true(addr.log_guest_addr == ug);
	assert_int_equal(be.vring_base[0], 0);
	assert_int_equal(be.last[VU_REQ_SET_VRING_KICK].nfds, 1);
	assert_true(be.last[VU_REQ_SET_VRING_KICK].payload.u64 == 0);
	assert_true(be.last[VU_REQ_SET_VRING_ENABLE].payload.state.num == 1);
	/* RING_PACKED not negotiated: no packed queue. */
	assert_null(vuf_vq_setup(vuf, 1, 32, true));
	assert_int_equal(errno, EOPNOTSUPP);
	vq1 = vuf_vq_setup(vuf, 1, 32, false);
	assert_non_null(vq1);
	assert_null(vuf_vq_setup(vuf, 1, 32, false));
	assert_int_equal(errno, EEXIST);

	/* Simple requests, a refused one, a mismatched reply. */
	assert_int_equal(vuf_get_queue_num(vuf, &v), 0);
	assert_true(v == 4);
	assert_int_equal(vuf_get_max_mem_slots(vuf, &v), 0);
	assert_true(v == 32);
	assert_int_equal(vuf_get_config(vuf, 4, cfg, sizeof(cfg)), 0);
	for (unsigned int i = 0; i < sizeof(cfg); i++)
		assert_int_equal(cfg[i], 4 + i);
	assert_int_equal(vuf_set_status(vuf, 0xf), 0);
	assert_int_equal(vuf_get_status(vuf, &st), 0);
	assert_int_equal(st, 0xf);
	be.nak = VU_REQ_SET_VRING_ENABLE;
	assert_int_equal(vuf_set_vring_enable(vuf, 0, true), -EIO);
	be.nak = 0;
	be.misreply = VU_REQ_GET_QUEUE_NUM;
	assert_int_equal(vuf_get_queue_num(vuf, &v), -EPROTO);
	be.misreply = 0;
	be.vring_base[1] = 7;
	assert_int_equal(vuf_get_vring_base(vuf, 1, &base), 0);
	assert_int_equal(base, 7);
	assert_int_equal(vuf_vq_base(vq1), 7);

	/* Raw bytes, and a reply read by hand. */
	{
		struct vu_msg_hdr h = { .request = VU_REQ_GET_QUEUE_NUM, .flags = VU_VERSION };
		struct vu_msg m;

		assert_int_equal(vuf_send_raw(vuf, &h, sizeof(h), NULL, 0), 0);
		assert_int_equal(vuf_recv(vuf, &m, 2000), 0);
		assert_int_equal(m.hdr.request, VU_REQ_GET_QUEUE_NUM);
		assert_true(m.payload.u64 == 4);
	}

	/* Inflight area. */
	assert_int_equal(vuf_get_inflight(vuf, 2, 64, &fd, &idesc), 0);
	assert_true(fd >= 0 && idesc.mmap_size == 8192 && idesc.num_queues == 2 &&
		    idesc.queue_size == 64);
	{
		size_t len;

		assert_non_null(vuf_inflight_area(vuf, &len));
		assert_int_equal(len, 8192);
	}
	assert_int_equal(vuf_set_inflight(vuf, -1, NULL), 0);
	assert_int_equal(be.last[VU_REQ_SET_INFLIGHT_FD].nfds, 1);

	/* Back-end channel: a CONFIG_CHANGE_MSG that needs a reply. */
	assert_int_equal(vuf_open_backend_channel(vuf), 0);
	assert_true(be.backend_ch >= 0);
	{
		struct vu_msg m, got;

		memset(&m, 0, sizeof(m));
		m.hdr.request = VU_BACKEND_REQ_CONFIG_CHANGE_MSG;
		m.hdr.flags = VU_VERSION | VU_FLAG_NEED_REPLY;
		assert_int_equal(vu_msg_send(be.backend_ch, &m), 0);
		assert_int_equal(vuf_backend_channel_recv(vuf, &got, 2000), 0);
		assert_int_equal(got.hdr.request, VU_BACKEND_REQ_CONFIG_CHANGE_MSG);
		assert_int_equal(vu_msg_recv(be.backend_ch, &m), 0);
		assert_true(m.hdr.flags & VU_FLAG_REPLY);
		assert_int_equal(m.hdr.size, 8);
		assert_true(m.payload.u64 == 0);
		assert_int_equal(vuf_backend_channel_recv(vuf, &got, 10), -ETIMEDOUT);
	}

	/* Memory hot plug. */
	assert_int_equal(vuf_mem_add(vuf, 0x300000000ull, 1u << 20, 0), 0);
	write_marker(vuf, 0x300000000ull);
	be.check_mem = true;
	assert_int_equal(vuf_mem_hot_add(vuf, 0x300000000ull, 1u << 20, 0), 0);
	be.check_mem = false;
	assert_int_equal(be.mem_ok, 3);  /* 2 from the table, 1 now */
	assert_int_equal(be.mem_bad, 0);
	assert_int_equal(vuf_mem_nregions(vuf), 3);
	assert_int_equal(be.last[VU_REQ_ADD_MEM_REG].nfds, 1);
	assert_int_equal(vuf_mem_hot_remove(vuf, 0x300000000ull), 0);
	assert_int_equal(be.last[VU_REQ_REM_MEM_REG].nfds, 0);
	assert_true(be.last[VU_REQ_REM_MEM_REG].payload.mem_reg.region.guest_addr == 0x300000000ull);
	assert_int_equal(vuf_mem_hot_remove(vuf, 0x12345000), -ENOENT);

	/* Crash and reconnect: chains in flight, two completed by the "device". */
	{
		struct vuf_seg s = { .gpa = GPA_DATA, .len = 8, .writable = true };
		struct vring_used *gu = vuf_vq_used_split(vq0);

		for (int i = 0; i < 3; i++)
			assert_int_equal(vuf_vq_post(vq0, &s, 1, (uint64_t)i), 0);
		gu->ring[0].id = htole32(1);
		gu->ring[1].id = htole32(0);
		gu->idx = htole16(2);
	}
	be.drop = VU_REQ_GET_QUEUE_NUM;
	assert_true(vuf_get_queue_num(vuf, &v) < 0);
	assert_int_equal(vuf_peer_closed(vuf, 2000), 1);
	assert_int_equal(vuf_reconnect(vuf, NULL, 2000), 0);
	{
		const uint32_t seq[] = {
			VU_REQ_GET_FEATURES, VU_REQ_GET_PROTOCOL_FEATURES,
			VU_REQ_SET_PROTOCOL_FEATURES, VU_REQ_SET_OWNER, VU_REQ_SET_BACKEND_REQ_FD,
			VU_REQ_SET_FEATURES, VU_REQ_SET_INFLIGHT_FD,
			VU_REQ_ADD_MEM_REG, VU_REQ_ADD_MEM_REG,
			VU_REQ_SET_VRING_NUM, VU_REQ_SET_VRING_BASE, VU_REQ_SET_VRING_ADDR,
			VU_REQ_SET_VRING_KICK, VU_REQ_SET_VRING_CALL, VU_REQ_SET_VRING_ENABLE,
			VU_REQ_SET_VRING_NUM, VU_REQ_SET_VRING_BASE, VU_REQ_SET_VRING_ADDR,
			VU_REQ_SET_VRING_KICK, VU_REQ_SET_VRING_CALL, VU_REQ_SET_VRING_ENABLE,
			VU_REQ_SET_STATUS,
		};

		be_expect(&be, seq, VU_ARRAY_SIZE(seq));
	}
	assert_int_equal(be.vring_base[0], 2);              /* used->idx, as QEMU after a crash */
	assert_int_equal(be.vring_base[1], 7);               /* the saved GET_VRING_BASE */
	assert_int_equal(vuf_vq_base(vq1), 0);               /* consumed by the restart */
	assert_true(be.last[VU_REQ_SET_FEATURES].payload.u64 == neg);
	/* The rings kept their state: the two completions are reaped now. */
	{
		struct vuf_completion c[4];

		assert_int_equal(vuf_vq_reap(vq0, c, 4), 2);
		assert_true(c[0].cookie == 1 && c[1].cookie == 0);
	}

	/* Reconnection to a back-end that lost a feature is refused. */
	be.features &= ~(1ull << VIRTIO_RING_F_EVENT_IDX);
	be.drop = VU_REQ_GET_QUEUE_NUM;
	assert_true(vuf_get_queue_num(vuf, &v) < 0);
	assert_int_equal(vuf_reconnect(vuf, NULL, 2000), -EPROTO);
	/* A failed attempt keeps the negotiated state for the next one. */
	be.features |= 1ull << VIRTIO_RING_F_EVENT_IDX;
	assert_int_equal(vuf_reconnect(vuf, NULL, 2000), 0);
	assert_true(vuf_protocol_features(vuf) == want_proto);
	assert_true(vuf_features(vuf) == neg);
	assert_true(be.last[VU_REQ_SET_PROTOCOL_FEATURES].payload.u64 == want_proto);
	assert_true(be.last[VU_REQ_SET_BACKEND_REQ_FD].nfds == 1);
	assert_true(vuf_backend_channel_fd(vuf) >= 0);

	vuf_close(vuf);
	be_stop(&be);
}

static void test_connect_timeout(void **state)
{
	struct vuf *vuf;
	uint64_t t0 = vu_now_ns();

	(void)state;
	vuf = vuf_connect("/tmp/vuf-selftest-does-not-exist/sock", 50);
	assert_null(vuf);
	assert_int_equal(errno, ETIMEDOUT);
	assert_true(vu_now_ns() - t0 >= 40000000ull);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memory),
		cmocka_unit_test(test_post_limits),
		cmocka_unit_test(test_split_kick_suppression),
		cmocka_unit_test(test_split_batch_publish),
		cmocka_unit_test(test_packed_kick_suppression),
		cmocka_unit_test(test_cb_control),
		cmocka_unit_test(test_bad_device_split),
		cmocka_unit_test(test_bad_device_packed),
		cmocka_unit_test(test_raw_posts),
		cmocka_unit_test(test_split_basic),
		cmocka_unit_test(test_split_event_idx_indirect),
		cmocka_unit_test(test_split_index_wrap),
		cmocka_unit_test(test_split_full_chain),
		cmocka_unit_test(test_packed_basic),
		cmocka_unit_test(test_packed_event_idx_indirect),
		cmocka_unit_test(test_packed_odd_size),
		cmocka_unit_test(test_packed_full_chain),
		cmocka_unit_test(test_control_path),
		cmocka_unit_test(test_connect_timeout),
	};

	vu_log_set_level(VU_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
