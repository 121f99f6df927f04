// SPDX-License-Identifier: MIT
/*
 * Unit tests of vhost-net's offload handling (vhost-net/offload.c):
 *  - virtio_net_hdr from a guest, good and hostile (SECURITY.md 19: a table,
 *    one row per class: csum_start/csum_offset outside the packet, GSO
 *    types not negotiated or not matching the packet, gso_size and hdr_len
 *    inconsistent with it);
 *  - software checksums (partial at any offset, TCP/UDP over IPv4/IPv6);
 *  - software segmentation for an egress without TSO (librte_gso for IPv4,
 *    by copy for IPv6): lengths, sequence numbers, flags, checksums and
 *    payload of every segment;
 *  - the virtio_net_hdr given to a guest for what it negotiated.
 * Every test checks that no mbuf leaked.
 */
#include <endian.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "eal_fixture.h"
#include "offload.h"

static struct rte_mempool *pool;
static struct rte_mempool *ind_pool;
static struct rte_gso_ctx gso;

#define ETH 14
#define IP4 20
#define IP6 40
#define TCP 20
#define UDP 8
#define FEAT_ALL ((1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_HOST_TSO4) | \
		  (1ull << VIRTIO_NET_F_HOST_TSO6))

static uint8_t pkt[70000];

/* An mbuf chain holding data (full segments first). */
static struct rte_mbuf *mbuf_from(const uint8_t *data, uint32_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool), *last = m;

	assert_non_null(m);
	while (len) {
		uint32_t room = rte_pktmbuf_tailroom(last), n = len < room ? len : room;

		if (!room) {
			struct rte_mbuf *s = rte_pktmbuf_alloc(pool);

			assert_non_null(s);
			last->next = s;
			last = s;
			m->nb_segs++;
			continue;
		}
		memcpy(rte_pktmbuf_mtod_offset(last, uint8_t *, last->data_len), data, n);
		last->data_len += (uint16_t)n;
		m->pkt_len += n;
		data += n;
		len -= n;
	}
	return m;
}

static uint16_t sum16(const void *p, size_t len)
{
	return rte_raw_cksum(p, len);
}

/* Ethernet + IPv4 + TCP (or UDP) + payload; L4 checksum field holds the
 * pseudo-header sum as a guest asking for checksum offload leaves it. */
static uint32_t build4(uint8_t *b, uint32_t payload, bool udp)
{
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(b + ETH);
	uint32_t l4 = udp ? UDP : TCP, len = ETH + IP4 + l4 + payload;

	memset(b, 0, ETH + IP4 + l4);
	memcpy(b, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00", ETH);
	ip->version_ihl = 0x45;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(IP4 + l4 + payload));
	ip->packet_id = rte_cpu_to_be_16(0x1234);
	ip->time_to_live = 64;
	ip->next_proto_id = udp ? IPPROTO_UDP : IPPROTO_TCP;
	ip->src_addr = rte_cpu_to_be_32(0x0a000001);
	ip->dst_addr = rte_cpu_to_be_32(0x0a000002);
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	for (uint32_t i = 0; i < payload; i++)
		b[ETH + IP4 + l4 + i] = (uint8_t)(i * 7 + 3);
	if (udp) {
		struct rte_udp_hdr *u = (struct rte_udp_hdr *)(b + ETH + IP4);

		u->src_port = rte_cpu_to_be_16(1000);
		u->dst_port = rte_cpu_to_be_16(2000);
		u->dgram_len = rte_cpu_to_be_16((uint16_t)(UDP + payload));
		u->dgram_cksum = rte_ipv4_phdr_cksum(ip, 0);
	} else {
		struct rte_tcp_hdr *t = (struct rte_tcp_hdr *)(b + ETH + IP4);

		t->src_port = rte_cpu_to_be_16(1000);
		t->dst_port = rte_cpu_to_be_16(2000);
		t->sent_seq = rte_cpu_to_be_32(0xfffff000);
		t->data_off = (TCP / 4) << 4;
		t->tcp_flags = RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG | RTE_TCP_FIN_FLAG | RTE_TCP_CWR_FLAG;
		t->rx_win = rte_cpu_to_be_16(1000);
		t->cksum = rte_ipv4_phdr_cksum(ip, 0);
	}
	return len;
}

static uint32_t build6(uint8_t *b, uint32_t payload, bool udp)
{
	struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)(b + ETH);
	uint32_t l4 = udp ? UDP : TCP, len = ETH + IP6 + l4 + payload;

	memset(b, 0, ETH + IP6 + l4);
	memcpy(b, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x86\xdd", ETH);
	ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip->payload_len = rte_cpu_to_be_16((uint16_t)(l4 + payload));
	ip->proto = udp ? IPPROTO_UDP : IPPROTO_TCP;
	ip->hop_limits = 64;
	ip->src_addr[0] = 0xfd;
	ip->src_addr[15] = 1;
	ip->dst_addr[0] = 0xfd;
	ip->dst_addr[15] = 2;
	for (uint32_t i = 0; i < payload; i++)
		b[ETH + IP6 + l4 + i] = (uint8_t)(i * 5 + 1);
	if (udp) {
		struct rte_udp_hdr *u = (struct rte_udp_hdr *)(b + ETH + IP6);

		u->src_port = rte_cpu_to_be_16(1000);
		u->dst_port = rte_cpu_to_be_16(2000);
		u->dgram_len = rte_cpu_to_be_16((uint16_t)(UDP + payload));
		u->dgram_cksum = rte_ipv6_phdr_cksum(ip, 0);
	} else {
		struct rte_tcp_hdr *t = (struct rte_tcp_hdr *)(b + ETH + IP6);

		t->sent_seq = rte_cpu_to_be_32(77);
		t->data_off = (TCP / 4) << 4;
		t->tcp_flags = RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG;
		t->cksum = rte_ipv6_phdr_cksum(ip, 0);
	}
	return len;
}

static struct virtio_net_hdr vhdr(uint8_t flags, uint8_t gso_type, uint16_t start, uint16_t off,
				  uint16_t gso_size, uint16_t hdr_len)
{
	struct virtio_net_hdr h = {
		.flags = flags, .gso_type = gso_type, .hdr_len = htole16(hdr_len),
		.gso_size = htole16(gso_size), .csum_start = htole16(start),
		.csum_offset = htole16(off),
	};
	return h;
}

static unsigned int avail0, ind_avail0;

static int setup(void **state)
{
	(void)state;
	avail0 = rte_mempool_avail_count(pool);
	ind_avail0 = rte_mempool_avail_count(ind_pool);
	return 0;
}

/* Every test gives back every mbuf. */
static int teardown(void **state)
{
	(void)state;
	assert_int_equal(rte_mempool_avail_count(pool), avail0);
	assert_int_equal(rte_mempool_avail_count(ind_pool), ind_avail0);
	return 0;
}

/* ---- headers from a guest ---- */

#define NC VIRTIO_NET_HDR_F_NEEDS_CSUM
#define G4 VIRTIO_NET_HDR_GSO_TCPV4
#define G6 VIRTIO_NET_HDR_GSO_TCPV6
#define L4_4 (ETH + IP4)

/* Table rows are constant: guest byte order is the host's here. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the table assumes a little-endian host");
#define VH(f, g, s, o, gs, hl) { .flags = (f), .gso_type = (g), .hdr_len = (hl), .gso_size = (gs), \
				 .csum_start = (s), .csum_offset = (o) }

struct hdr_case {
	const char *what;
	struct virtio_net_hdr h;
	uint64_t features;
	int ret;              /* 0 or -EINVAL */
	uint64_t flags;       /* ol_flags expected on success */
};

/* The packet: TCP/IPv4, 3000 bytes of payload, 3054 bytes in all. */
static const struct hdr_case hdr_cases[] = {
	/* Good ones. */
	{ "no offload", VH(0, 0, 0, 0, 0, 0), FEAT_ALL, 0, 0 },
	{ "TCP checksum", VH(NC, 0, L4_4, 16, 0, 0), FEAT_ALL, 0,
	  RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4 },
	{ "checksum at an offset no egress offloads (done at once)", VH(NC, 0, 14, 10, 0, 0),
	  FEAT_ALL, 0, 0 },
	{ "checksum field in the last two bytes", VH(NC, 0, L4_4, 3054 - L4_4 - 2, 0, 0), FEAT_ALL,
	  0, 0 },
	{ "TSOv4", VH(NC, G4, L4_4, 16, 1448, 54), FEAT_ALL, 0,
	  RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM },
	{ "TSOv4, hdr_len 0 (a hint only)", VH(NC, G4, L4_4, 16, 1448, 0), FEAT_ALL, 0,
	  RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM },
	{ "GSO no larger than gso_size: checksum only", VH(NC, G4, L4_4, 16, 3000, 54), FEAT_ALL, 0,
	  RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4 },
	/* Hostile ones (SECURITY.md 19). */
	{ "NEEDS_CSUM without VIRTIO_NET_F_CSUM", VH(NC, 0, L4_4, 16, 0, 0), 0, -EINVAL, 0 },
	{ "csum_start beyond the packet", VH(NC, 0, 4000, 0, 0, 0), FEAT_ALL, -EINVAL, 0 },
	{ "csum_start at the very end", VH(NC, 0, 3054, 0, 0, 0), FEAT_ALL, -EINVAL, 0 },
	{ "checksum field one byte past the end", VH(NC, 0, L4_4, 3054 - L4_4 - 1, 0, 0), FEAT_ALL,
	  -EINVAL, 0 },
	{ "csum_start + csum_offset wrapping 16 bits", VH(NC, 0, 0xff00, 0x0200, 0, 0), FEAT_ALL,
	  -EINVAL, 0 },
	{ "csum_offset 0xffff", VH(NC, 0, L4_4, 0xffff, 0, 0), FEAT_ALL, -EINVAL, 0 },
	{ "hdr_len beyond the packet", VH(NC, 0, L4_4, 16, 0, 3055), FEAT_ALL, -EINVAL, 0 },
	{ "GSO without NEEDS_CSUM", VH(0, G4, 0, 0, 1448, 54), FEAT_ALL, -EINVAL, 0 },
	{ "TSOv4 not negotiated", VH(NC, G4, L4_4, 16, 1448, 54),
	  (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_HOST_TSO6), -EINVAL, 0 },
	{ "TSOv6 on an IPv4 packet", VH(NC, G6, L4_4, 16, 1448, 54), FEAT_ALL, -EINVAL, 0 },
	{ "UDP fragmentation (not offered)", VH(NC, VIRTIO_NET_HDR_GSO_UDP, L4_4, 16, 1448, 54),
	  FEAT_ALL, -EINVAL, 0 },
	{ "ECN (not offered)", VH(NC, G4 | VIRTIO_NET_HDR_GSO_ECN, L4_4, 16, 1448, 54), FEAT_ALL,
	  -EINVAL, 0 },
	{ "unknown GSO type", VH(NC, 0x7f, L4_4, 16, 1448, 54), FEAT_ALL, -EINVAL, 0 },
	{ "gso_size 0", VH(NC, G4, L4_4, 16, 0, 54), FEAT_ALL, -EINVAL, 0 },
	{ "gso_size 1 (thousands of segments)", VH(NC, G4, L4_4, 16, 1, 54), FEAT_ALL, -EINVAL, 0 },
	{ "gso_size below the minimum", VH(NC, G4, L4_4, 16, NET_GSO_MIN_SIZE - 1, 54), FEAT_ALL,
	  -EINVAL, 0 },
	{ "GSO with csum_start not at TCP", VH(NC, G4, ETH, 16, 1448, 54), FEAT_ALL, -EINVAL, 0 },
	{ "GSO with csum_offset not TCP's checksum", VH(NC, G4, L4_4, 6, 1448, 54), FEAT_ALL,
	  -EINVAL, 0 },
};

static void test_hdr_table(void **state)
{
	uint32_t len = build4(pkt, 3000, false);

	(void)state;
	for (size_t i = 0; i < sizeof(hdr_cases) / sizeof(hdr_cases[0]); i++) {
		const struct hdr_case *c = &hdr_cases[i];
		struct rte_mbuf *m = mbuf_from(pkt, len);
		enum net_drop why = NET_DROP_COUNT;
		int ret = net_offload_from_guest(m, &c->h, c->features, &why);

		if (ret != c->ret || (ret == 0 && m->ol_flags != c->flags))
			fail_msg("%s: returned %d flags 0x%llx, expected %d flags 0x%llx", c->what, ret,
				 (unsigned long long)m->ol_flags, c->ret, (unsigned long long)c->flags);
		if (ret)
			assert_int_equal(why, NET_DROP_BAD_HEADER);
		if (ret == 0 && (c->flags & RTE_MBUF_F_TX_TCP_SEG)) {
			assert_int_equal(m->l2_len, ETH);
			assert_int_equal(m->l3_len, IP4);
			assert_int_equal(m->l4_len, TCP);
			assert_int_equal(m->tso_segsz, le16toh(c->h.gso_size));
		}
		rte_pktmbuf_free(m);
	}
}

/* A GSO packet cut inside its TCP header. */
static void test_hdr_truncated_tcp(void **state)
{
	uint32_t len = build4(pkt, 0, false) - 4;
	struct virtio_net_hdr h = vhdr(NC, G4, L4_4, 16, 100, 0);
	struct rte_mbuf *m = mbuf_from(pkt, len);
	enum net_drop why;

	(void)state;
	assert_int_equal(net_offload_from_guest(m, &h, FEAT_ALL, &why), -EINVAL);
	rte_pktmbuf_free(m);
}

static void test_hdr_tso6_and_udp6(void **state)
{
	uint32_t len = build6(pkt, 5000, false);
	struct virtio_net_hdr h = vhdr(NC, G6, ETH + IP6, 16, 1440, 74);
	struct rte_mbuf *m = mbuf_from(pkt, len);
	enum net_drop why;

	(void)state;
	assert_int_equal(net_offload_from_guest(m, &h, FEAT_ALL, &why), 0);
	assert_int_equal(m->ol_flags, RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV6);
	assert_int_equal(m->l3_len, IP6);
	rte_pktmbuf_free(m);

	len = build6(pkt, 100, true);
	h = vhdr(NC, 0, ETH + IP6, 6, 0, 0);
	m = mbuf_from(pkt, len);
	assert_int_equal(net_offload_from_guest(m, &h, FEAT_ALL, &why), 0);
	assert_int_equal(m->ol_flags, RTE_MBUF_F_TX_UDP_CKSUM | RTE_MBUF_F_TX_IPV6);
	rte_pktmbuf_free(m);
}

/* ---- software checksums ---- */

static void test_csum_partial_generic(void **state)
{
	uint32_t len = build4(pkt, 3000, false), start = ETH, off = 10;
	struct virtio_net_hdr h = vhdr(NC, 0, (uint16_t)start, (uint16_t)off, 0, 0);
	struct rte_mbuf *m;
	enum net_drop why;
	uint16_t got, want;

	(void)state;
	/* Expected: the one's complement of the sum from start to the end,
	 * with the field holding what the guest put there. */
	want = (uint16_t)~sum16(pkt + start, len - start);
	if (!want)
		want = 0xffff;
	m = mbuf_from(pkt, len);       /* 2 segments */
	assert_int_equal(m->nb_segs, 2);
	assert_int_equal(net_offload_from_guest(m, &h, FEAT_ALL, &why), 0);
	assert_int_equal(m->ol_flags, 0);
	memcpy(&got, rte_pktmbuf_read(m, start + off, 2, &got), 2);
	assert_int_equal(got, want);
	rte_pktmbuf_free(m);

	/* A field straddling two segments. */
	m = mbuf_from(pkt, len);
	off = 2048 - 1 - start;
	assert_int_equal(net_csum_partial(m, start, off), 0);
	rte_pktmbuf_free(m);
	m = mbuf_from(pkt, len);
	assert_int_equal(net_csum_partial(m, start, len - start - 1), -EINVAL);
	rte_pktmbuf_free(m);
}

/*
 * Regression: a sum whose range reaches a second mbuf an odd number of
 * bytes in (csum_start odd) lost its carries (rte_raw_cksum_mbuf() of
 * DPDK 22.11), and the checksum came out wrong.
 */
static void test_csum_partial_odd_start(void **state)
{
	uint32_t len = build4(pkt, 3000, false);
	static const uint16_t starts[][2] = { { 15, 9 }, { 1, 3 }, { ETH + 1, 0 }, { 2047, 0 } };

	(void)state;
	for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
		uint32_t start = starts[i][0], off = starts[i][1];
		struct virtio_net_hdr h = vhdr(NC, 0, (uint16_t)start, (uint16_t)off, 0, 0);
		struct rte_mbuf *m = mbuf_from(pkt, len);
		enum net_drop why;
		uint16_t got, tmp, want = (uint16_t)~sum16(pkt + start, len - start);

		if (!want)
			want = 0xffff;
		assert_int_equal(m->nb_segs, 2);
		assert_int_equal(net_offload_from_guest(m, &h, FEAT_ALL, &why), 0);
		memcpy(&got, rte_pktmbuf_read(m, start + off, 2, &tmp), 2);
		if (got != want)
			fail_msg("csum_start %u csum_offset %u: 0x%04x, not 0x%04x", start, off, got, want);
		rte_pktmbuf_free(m);
	}
}

/* The TCP/UDP checksum of m verifies (over the length the IP header says). */
static void check_l4_valid(struct rte_mbuf *m, bool v6)
{
	static uint8_t flat[65536];
	const void *data;
	uint32_t l4off = ETH + (v6 ? IP6 : IP4), l4len, sum;
	uint16_t raw = 0, phdr;

	if (v6) {
		const struct rte_ipv6_hdr *ip = rte_pktmbuf_mtod_offset(m, const struct rte_ipv6_hdr *, ETH);

		l4len = rte_be_to_cpu_16(ip->payload_len);
		phdr = rte_ipv6_phdr_cksum(ip, 0);
	} else {
		const struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, const struct rte_ipv4_hdr *, ETH);

		assert_int_equal(rte_ipv4_cksum(ip), 0);
		l4len = rte_be_to_cpu_16(ip->total_length) - IP4;
		phdr = rte_ipv4_phdr_cksum(ip, 0);
	}
	assert_int_equal(l4off + l4len, m->pkt_len);
	/* Over a flat copy: DPDK 22.11's rte_raw_cksum_mbuf() is wrong for
	 * segments at odd offsets (see raw_cksum_mbuf() in offload.c). */
	data = rte_pktmbuf_read(m, l4off, l4len, flat);
	assert_non_null(data);
	raw = rte_raw_cksum(data, l4len);
	sum = (uint32_t)raw + phdr;
	sum = (sum & 0xffff) + (sum >> 16);
	assert_int_equal(sum, 0xffff);
}

static void egress_one(uint32_t len, struct virtio_net_hdr h, bool v6, uint64_t capa,
		       bool expect_partial)
{
	struct rte_mbuf *m = mbuf_from(pkt, len), *out[4];
	enum net_drop why;

	assert_int_equal(net_offload_from_guest(m, &h, FEAT_ALL, &why), 0);
	assert_int_equal(net_offload_egress(m, capa, &gso, out, 4, &why), 1);
	assert_ptr_equal(out[0], m);
	if (expect_partial) {
		assert_true(m->ol_flags & RTE_MBUF_F_TX_L4_MASK);
	} else {
		assert_false(m->ol_flags & RTE_MBUF_F_TX_L4_MASK);
		assert_int_equal(m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK, RTE_MBUF_F_RX_L4_CKSUM_GOOD);
		check_l4_valid(m, v6);
	}
	rte_pktmbuf_free(m);
}

static void test_egress_csum(void **state)
{
	(void)state;
	/* To an egress that cannot checksum: done here, valid. */
	egress_one(build4(pkt, 3000, false), vhdr(NC, 0, L4_4, 16, 0, 0), false, 0, false);
	egress_one(build4(pkt, 1, true), vhdr(NC, 0, L4_4, 6, 0, 0), false, 0, false);
	egress_one(build6(pkt, 2500, true), vhdr(NC, 0, ETH + IP6, 6, 0, 0), true, 0, false);
	egress_one(build6(pkt, 10, false), vhdr(NC, 0, ETH + IP6, 16, 0, 0), true, 0, false);
	/* To one that can: left partial. */
	egress_one(build4(pkt, 3000, false), vhdr(NC, 0, L4_4, 16, 0, 0), false, NET_CAN_CSUM, true);
}

/* An IPv4 total length that disagrees with the frame: not checksummed blindly. */
static void test_egress_csum_bad_ip_length(void **state)
{
	uint32_t len = build4(pkt, 100, false);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(pkt + ETH);
	struct virtio_net_hdr h = vhdr(NC, 0, L4_4, 16, 0, 0);
	struct rte_mbuf *m, *out[2];
	enum net_drop why = NET_DROP_COUNT;

	(void)state;
	ip->total_length = rte_cpu_to_be_16(4000);
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	m = mbuf_from(pkt, len);
	assert_int_equal(net_offload_from_guest(m, &h, FEAT_ALL, &why), 0);
	assert_int_equal(net_offload_egress(m, 0, &gso, out, 2, &why), -EINVAL);
	assert_int_equal(why, NET_DROP_OFFLOAD);
}

/* ---- segmentation ---- */

static void check_segments(struct rte_mbuf **out, int n, uint32_t payload, uint16_t mss, bool v6)
{
	uint32_t hdrs = ETH + (v6 ? IP6 : IP4) + TCP, done = 0, seq0 = v6 ? 77 : 0xfffff000;
	static uint8_t buf[65536];

	assert_int_equal(n, (int)((payload + mss - 1) / mss));
	for (int i = 0; i < n; i++) {
		struct rte_mbuf *s = out[i];
		uint32_t seg = s->pkt_len - hdrs;
		const struct rte_tcp_hdr *t = rte_pktmbuf_mtod_offset(s, const struct rte_tcp_hdr *,
								       hdrs - TCP);
		const uint8_t *data;

		assert_int_equal(seg, i + 1 < n ? mss : payload - done);
		assert_false(s->ol_flags & (RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_L4_MASK |
					    RTE_MBUF_F_TX_IP_CKSUM));
		if (v6) {
			const struct rte_ipv6_hdr *ip =
				rte_pktmbuf_mtod_offset(s, const struct rte_ipv6_hdr *, ETH);

			assert_int_equal(rte_be_to_cpu_16(ip->payload_len), TCP + seg);
		} else {
			const struct rte_ipv4_hdr *ip =
				rte_pktmbuf_mtod_offset(s, const struct rte_ipv4_hdr *, ETH);

			assert_int_equal(rte_be_to_cpu_16(ip->total_length), IP4 + TCP + seg);
			assert_int_equal(rte_be_to_cpu_16(ip->packet_id), 0x1234 + i);
		}
		check_l4_valid(s, v6);
		assert_int_equal(rte_be_to_cpu_32(t->sent_seq), (uint32_t)(seq0 + done));
		/* PSH and FIN on the last segment only, CWR on the first only. */
		assert_int_equal(!!(t->tcp_flags & RTE_TCP_PSH_FLAG), i + 1 == n);
		if (!v6) {
			assert_int_equal(!!(t->tcp_flags & RTE_TCP_FIN_FLAG), i + 1 == n);
			assert_int_equal(!!(t->tcp_flags & RTE_TCP_CWR_FLAG), i == 0);
		}
		assert_true(t->tcp_flags & RTE_TCP_ACK_FLAG);
		data = rte_pktmbuf_read(s, hdrs, seg, buf);
		assert_memory_equal(data, pkt + hdrs + done, seg);
		done += seg;
	}
	assert_int_equal(done, payload);
}

static void segment_case(bool v6, uint32_t payload, uint16_t mss)
{
	uint32_t len = v6 ? build6(pkt, payload, false) : build4(pkt, payload, false);
	uint16_t l4 = v6 ? ETH + IP6 : ETH + IP4;
	struct virtio_net_hdr h = vhdr(NC, v6 ? G6 : G4, l4, 16, mss, l4 + TCP);
	static struct rte_mbuf *out[NET_GSO_MAX_SEGS];
	struct rte_mbuf *m = mbuf_from(pkt, len);
	enum net_drop why;
	int n;

	assert_int_equal(net_offload_from_guest(m, &h, FEAT_ALL, &why), 0);
	n = net_offload_egress(m, NET_CAN_CSUM, &gso, out, NET_GSO_MAX_SEGS, &why);
	assert_true(n > 1);
	check_segments(out, n, payload, mss, v6);
	for (int i = 0; i < n; i++)
		rte_pktmbuf_free(out[i]);
}

static void test_segment_v4(void **state)
{
	(void)state;
	segment_case(false, 3000, 1000);        /* exact multiple */
	segment_case(false, 10000, 1448);       /* spans mbuf segments */
	segment_case(false, 65000, 8948);       /* jumbo MSS */
	segment_case(false, 3000, NET_GSO_MIN_SIZE);
	/* Regression: an odd MSS makes librte_gso segments whose parts start
	 * at odd offsets; their checksums came out wrong. */
	segment_case(false, 8000, 1001);
	segment_case(false, 20000, 1447);
}

static void test_segment_v6(void **state)
{
	(void)state;
	segment_case(true, 3000, 1000);
	segment_case(true, 10001, 1440);
	segment_case(true, 65000, 8940);        /* segments larger than one mbuf */
	segment_case(true, 8000, 1001);         /* odd MSS */
}

/* An egress that segments gets the packet as it is. */
static void test_segment_offloaded(void **state)
{
	uint32_t len = build4(pkt, 10000, false);
	struct virtio_net_hdr h = vhdr(NC, G4, L4_4, 16, 1448, 54);
	struct rte_mbuf *m = mbuf_from(pkt, len), *out[2];
	enum net_drop why;

	(void)state;
	assert_int_equal(net_offload_from_guest(m, &h, FEAT_ALL, &why), 0);
	assert_int_equal(net_offload_egress(m, NET_CAN_CSUM | NET_CAN_TSO4, &gso, out, 2, &why), 1);
	assert_ptr_equal(out[0], m);
	assert_true(m->ol_flags & RTE_MBUF_F_TX_TCP_SEG);
	/* An IPv4 header checksum the egress cannot make is made here. */
	assert_false(m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM);
	assert_int_equal(rte_ipv4_cksum(rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, ETH)), 0);
	rte_pktmbuf_free(m);
}

/* Not enough room for the segments: dropped, nothing leaks. */
static void test_segment_too_many(void **state)
{
	struct rte_mbuf *out[4], *m;
	enum net_drop why = NET_DROP_COUNT;

	(void)state;
	for (int v6 = 0; v6 < 2; v6++) {
		uint32_t len = v6 ? build6(pkt, 3000, false) : build4(pkt, 3000, false);
		uint16_t l4 = v6 ? ETH + IP6 : ETH + IP4;
		struct virtio_net_hdr h = vhdr(NC, v6 ? G6 : G4, l4, 16, 100, 0);

		m = mbuf_from(pkt, len);
		assert_int_equal(net_offload_from_guest(m, &h, FEAT_ALL, &why), 0);
		assert_true(net_offload_egress(m, 0, &gso, out, 4, &why) < 0);
		assert_int_equal(why, NET_DROP_OFFLOAD);
	}
}

/* ---- headers to a guest ---- */

static void test_to_guest(void **state)
{
	uint32_t len = build4(pkt, 10000, false);
	struct virtio_net_hdr in = vhdr(NC, G4, L4_4, 16, 1448, 54), out;
	struct rte_mbuf *m = mbuf_from(pkt, len);
	enum net_drop why;

	(void)state;
	assert_int_equal(net_offload_from_guest(m, &in, FEAT_ALL, &why), 0);
	net_offload_to_guest(m, NET_CAN_CSUM | NET_CAN_TSO4, &out);
	assert_int_equal(out.flags, NC);
	assert_int_equal(out.gso_type, G4);
	assert_int_equal(le16toh(out.gso_size), 1448);
	assert_int_equal(le16toh(out.hdr_len), 54);
	assert_int_equal(le16toh(out.csum_start), L4_4);
	assert_int_equal(le16toh(out.csum_offset), 16);

	/* Checksum left partial. */
	m->ol_flags &= ~RTE_MBUF_F_TX_TCP_SEG;
	net_offload_to_guest(m, NET_CAN_CSUM, &out);
	assert_int_equal(out.flags, NC);
	assert_int_equal(out.gso_type, 0);
	assert_int_equal(le16toh(out.csum_offset), 16);

	/* Known good: DATA_VALID, only for a guest with GUEST_CSUM. */
	m->ol_flags = RTE_MBUF_F_RX_L4_CKSUM_GOOD;
	net_offload_to_guest(m, NET_CAN_CSUM, &out);
	assert_int_equal(out.flags, VIRTIO_NET_HDR_F_DATA_VALID);
	net_offload_to_guest(m, 0, &out);
	assert_int_equal(out.flags, 0);
	m->ol_flags = RTE_MBUF_F_RX_L4_CKSUM_BAD;
	net_offload_to_guest(m, NET_CAN_CSUM, &out);
	assert_int_equal(out.flags, 0);
	rte_pktmbuf_free(m);
}

static void test_guest_capa(void **state)
{
	(void)state;
	assert_int_equal(net_offload_guest_capa(0), 0);
	/* TSO without GUEST_CSUM means nothing. */
	assert_int_equal(net_offload_guest_capa(1ull << VIRTIO_NET_F_GUEST_TSO4), 0);
	assert_int_equal(net_offload_guest_capa((1ull << VIRTIO_NET_F_GUEST_CSUM) |
						(1ull << VIRTIO_NET_F_GUEST_TSO4) |
						(1ull << VIRTIO_NET_F_GUEST_TSO6)),
			 NET_CAN_CSUM | NET_CAN_TSO4 | NET_CAN_TSO6);
}

/* Appending from a chained mbuf into a chain. */
static void test_append_from(void **state)
{
	uint8_t buf[8000];
	struct rte_mbuf *src, *dst;

	(void)state;
	for (unsigned int i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 13);
	src = mbuf_from(buf, sizeof(buf));
	dst = mbuf_from(buf, 100);
	assert_int_equal(net_mbuf_append_from(pool, dst, src, 1000, 5000), 0);
	assert_int_equal(dst->pkt_len, 5100);
	assert_memory_equal(rte_pktmbuf_read(dst, 100, 2000, pkt), buf + 1000, 2000);
	assert_memory_equal(rte_pktmbuf_read(dst, 2100, 3000, pkt), buf + 3000, 3000);
	assert_int_equal(net_mbuf_append_from(pool, dst, src, 7000, 1001), -EINVAL);
	rte_pktmbuf_free(src);
	rte_pktmbuf_free(dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hdr_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hdr_truncated_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hdr_tso6_and_udp6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csum_partial_generic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csum_partial_odd_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_egress_csum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_egress_csum_bad_ip_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_v4, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_v6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_offloaded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_too_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_to_guest, setup, teardown),
		cmocka_unit_test(test_guest_capa),
		cmocka_unit_test_setup_teardown(test_append_from, setup, teardown),
	};
	int ret;

	pool = eal_fixture_init(8191);
	if (!pool) {
		fprintf(stderr, "SKIP: cannot initialise DPDK's EAL\n");
		return 77;
	}
	ind_pool = rte_pktmbuf_pool_create("unit_ind", 8191, 0, 0, 0, SOCKET_ID_ANY);
	assert_non_null(ind_pool);
	gso.direct_pool = pool;
	gso.indirect_pool = ind_pool;
	gso.gso_types = RTE_ETH_TX_OFFLOAD_TCP_TSO;
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	rte_mempool_free(ind_pool);
	eal_fixture_fini(pool);
	return ret;
}
