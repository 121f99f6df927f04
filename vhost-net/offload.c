// SPDX-License-Identifier: MIT
/*
 * Offloads: virtio_net_hdr <-> mbuf offload flags, and the software
 * fallbacks (checksums with librte_net's helpers, TCP segmentation with
 * librte_gso for IPv4 and by copy for IPv6, which librte_gso of DPDK 22.11
 * does not segment).  See offload.h for the conventions.
 *
 * Every field of a guest's header is untrusted (SECURITY.md 19): offsets
 * are checked against the packet with 32-bit arithmetic that cannot wrap,
 * the headers a request depends on are parsed from the packet itself and
 * must agree with it, and segmentation is bounded.
 */
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_net.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "offload.h"

#define TCP_CSUM_OFF offsetof(struct rte_tcp_hdr, cksum)
#define UDP_CSUM_OFF offsetof(struct rte_udp_hdr, dgram_cksum)
#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_PSH 0x08
#define TCP_FLAG_CWR 0x80

uint64_t net_offload_guest_capa(uint64_t features)
{
	uint64_t capa = 0;

	if (features & (1ull << VIRTIO_NET_F_GUEST_CSUM)) {
		capa |= NET_CAN_CSUM;
		if (features & (1ull << VIRTIO_NET_F_GUEST_TSO4))
			capa |= NET_CAN_TSO4;
		if (features & (1ull << VIRTIO_NET_F_GUEST_TSO6))
			capa |= NET_CAN_TSO6;
	}
	return capa;
}

int net_mbuf_write(struct rte_mbuf *m, uint32_t off, const void *src, uint32_t len)
{
	const uint8_t *s = src;

	if (off > m->pkt_len || len > m->pkt_len - off)
		return -EINVAL;
	for (struct rte_mbuf *seg = m; seg && len; seg = seg->next) {
		uint32_t l = seg->data_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len)
			l = len;
		memcpy(rte_pktmbuf_mtod_offset(seg, uint8_t *, off), s, l);
		s += l;
		len -= l;
		off = 0;
	}
	return len ? -EINVAL : 0;
}

int net_mbuf_append_from(struct rte_mempool *pool, struct rte_mbuf *dst,
			 const struct rte_mbuf *src, uint32_t off, uint32_t len)
{
	struct rte_mbuf *last = rte_pktmbuf_lastseg(dst);

	if (off > src->pkt_len || len > src->pkt_len - off)
		return -EINVAL;
	while (src && off >= src->data_len) {
		off -= src->data_len;
		src = src->next;
	}
	while (len) {
		uint32_t room = rte_pktmbuf_tailroom(last), chunk;

		if (!src)
			return -EINVAL;
		if (!room) {
			struct rte_mbuf *seg = rte_pktmbuf_alloc(pool);

			if (!seg)
				return -ENOMEM;
			last->next = seg;
			last = seg;
			dst->nb_segs++;
			continue;
		}
		chunk = src->data_len - off;
		if (chunk > room)
			chunk = room;
		if (chunk > len)
			chunk = len;
		memcpy(rte_pktmbuf_mtod_offset(last, uint8_t *, last->data_len),
		       rte_pktmbuf_mtod_offset(src, const uint8_t *, off), chunk);
		last->data_len += chunk;
		dst->pkt_len += chunk;
		len -= chunk;
		off += chunk;
		if (off == src->data_len) {
			src = src->next;
			off = 0;
		}
	}
	return 0;
}

/*
 * The sum of len bytes of m from off, as rte_raw_cksum_mbuf() (0, or -1
 * if they are not in m).  Not that function: in DPDK 22.11 it truncates
 * the sum of a segment that starts an odd number of bytes into the range
 * to 16 bits before swapping its bytes, losing the carries, so that a
 * checksum over such a chain comes out wrong.
 */
static int raw_cksum_mbuf(const struct rte_mbuf *m, uint32_t off, uint32_t len, uint16_t *cksum)
{
	uint64_t sum = 0;
	uint32_t done = 0;

	if (off > m->pkt_len || len > m->pkt_len - off)
		return -1;
	while (m && off >= m->data_len) {
		off -= m->data_len;
		m = m->next;
	}
	for (; m && done < len; m = m->next, off = 0) {
		uint32_t n = m->data_len - off;
		uint16_t part;

		if (n > len - done)
			n = len - done;
		part = rte_raw_cksum(rte_pktmbuf_mtod_offset(m, const uint8_t *, off), n);
		/* A part at an odd offset: its bytes sit in the other halves of the words. */
		sum += (done & 1) ? rte_bswap16(part) : part;
		done += n;
	}
	if (done != len)
		return -1;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	*cksum = (uint16_t)sum;
	return 0;
}

int net_csum_partial(struct rte_mbuf *m, uint32_t start, uint32_t off)
{
	uint16_t sum;

	if (start > m->pkt_len || off > m->pkt_len - start || m->pkt_len - start - off < 2)
		return -EINVAL;
	if (raw_cksum_mbuf(m, start, m->pkt_len - start, &sum))
		return -EINVAL;
	sum = (uint16_t)~sum;
	if (sum == 0)
		sum = 0xffff;
	return net_mbuf_write(m, start + off, &sum, sizeof(sum));
}

/* The first segment holds at least len bytes (headers are read in place). */
static inline bool in_first_seg(const struct rte_mbuf *m, uint32_t len)
{
	return len <= m->data_len;
}

int net_csum_ipv4(struct rte_mbuf *m)
{
	struct rte_ipv4_hdr *ip;

	if (!in_first_seg(m, (uint32_t)m->l2_len + m->l3_len) || m->l3_len < sizeof(*ip))
		return -EINVAL;
	ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, m->l2_len);
	if (rte_ipv4_hdr_len(ip) != m->l3_len)
		return -EINVAL;
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	return 0;
}

/* IPv6 pseudo-header sum for an upper-layer packet of len bytes. */
static uint16_t ipv6_phdr_sum(const struct rte_ipv6_hdr *ip6, uint32_t len, uint8_t proto)
{
	struct {
		uint8_t src[16];
		uint8_t dst[16];
		uint32_t len;
		uint8_t zero[3];
		uint8_t proto;
	} __attribute__((packed)) ph;

	memcpy(ph.src, ip6->src_addr, 16);
	memcpy(ph.dst, ip6->dst_addr, 16);
	ph.len = rte_cpu_to_be_32(len);
	memset(ph.zero, 0, sizeof(ph.zero));
	ph.proto = proto;
	return rte_raw_cksum(&ph, sizeof(ph));
}

int net_csum_l4(struct rte_mbuf *m)
{
	uint64_t l4 = m->ol_flags & RTE_MBUF_F_TX_L4_MASK;
	uint32_t l4off = (uint32_t)m->l2_len + m->l3_len, l4len, field, sum;
	uint16_t raw, phdr, csum = 0;
	uint8_t proto;

	if (l4 == RTE_MBUF_F_TX_TCP_CKSUM || (m->ol_flags & RTE_MBUF_F_TX_TCP_SEG)) {
		field = l4off + TCP_CSUM_OFF;
		proto = IPPROTO_TCP;
	} else if (l4 == RTE_MBUF_F_TX_UDP_CKSUM) {
		field = l4off + UDP_CSUM_OFF;
		proto = IPPROTO_UDP;
	} else {
		return -EINVAL;
	}
	if (!in_first_seg(m, field + 2))
		return -EINVAL;
	if (m->ol_flags & RTE_MBUF_F_TX_IPV4) {
		const struct rte_ipv4_hdr *ip =
			rte_pktmbuf_mtod_offset(m, const struct rte_ipv4_hdr *, m->l2_len);
		uint32_t tot = rte_be_to_cpu_16(ip->total_length);

		if (m->l3_len < sizeof(*ip) || rte_ipv4_hdr_len(ip) != m->l3_len ||
		    tot < m->l3_len || m->l2_len + tot > m->pkt_len || ip->next_proto_id != proto)
			return -EINVAL;
		l4len = tot - m->l3_len;
		phdr = rte_ipv4_phdr_cksum(ip, 0);
	} else if (m->ol_flags & RTE_MBUF_F_TX_IPV6) {
		const struct rte_ipv6_hdr *ip6 =
			rte_pktmbuf_mtod_offset(m, const struct rte_ipv6_hdr *, m->l2_len);
		uint32_t pl = rte_be_to_cpu_16(ip6->payload_len), ext;

		if (m->l3_len < sizeof(*ip6))
			return -EINVAL;
		ext = m->l3_len - (uint32_t)sizeof(*ip6);
		if (pl < ext || m->l2_len + sizeof(*ip6) + pl > m->pkt_len)
			return -EINVAL;
		l4len = pl - ext;
		phdr = ipv6_phdr_sum(ip6, l4len, proto);
	} else {
		return -EINVAL;
	}
	if (l4len < field - l4off + 2)
		return -EINVAL;
	if (net_mbuf_write(m, field, &csum, sizeof(csum)) ||
	    raw_cksum_mbuf(m, l4off, l4len, &raw))
		return -EINVAL;
	sum = (uint32_t)raw + phdr;
	sum = (sum & 0xffff) + (sum >> 16);
	csum = (uint16_t)~sum;
	if (csum == 0 && proto == IPPROTO_UDP)
		csum = 0xffff;
	return net_mbuf_write(m, field, &csum, sizeof(csum));
}

static int bad(enum net_drop *why)
{
	*why = NET_DROP_BAD_HEADER;
	return -EINVAL;
}

int net_offload_from_guest(struct rte_mbuf *m, const struct virtio_net_hdr *h, uint64_t features,
			   enum net_drop *why)
{
	uint32_t len = m->pkt_len, start = le16toh(h->csum_start), off = le16toh(h->csum_offset);
	uint32_t gso_size = le16toh(h->gso_size), hdr_len = le16toh(h->hdr_len);
	uint8_t gso = h->gso_type;
	struct rte_net_hdr_lens hl;
	uint32_t ptype, l4start, hdrs, payload;
	bool tcp, udp, v4, v6;

	if (!net_offload_from_guest_needed(h))
		return 0;
	if (!(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
		return bad(why);          /* GSO without a partial checksum */
	if (!(features & (1ull << VIRTIO_NET_F_CSUM)))
		return bad(why);
	/* csum_start + csum_offset + 2 <= len, without wrapping. */
	if (start > len || off > len - start || len - start - off < 2)
		return bad(why);
	if (hdr_len > len)
		return bad(why);

	memset(&hl, 0, sizeof(hl));
	ptype = rte_net_get_ptype(m, &hl, RTE_PTYPE_L2_MASK | RTE_PTYPE_L3_MASK | RTE_PTYPE_L4_MASK);
	tcp = (ptype & RTE_PTYPE_L4_MASK) == RTE_PTYPE_L4_TCP;
	udp = (ptype & RTE_PTYPE_L4_MASK) == RTE_PTYPE_L4_UDP;
	v4 = RTE_ETH_IS_IPV4_HDR(ptype);
	v6 = RTE_ETH_IS_IPV6_HDR(ptype);
	l4start = (uint32_t)hl.l2_len + hl.l3_len;
	/* Only a TCP/UDP checksum right where the parsed headers put it can be
	 * left to an egress; anything else is completed here, now. */
	bool standard = (v4 || v6) && start == l4start &&
			((tcp && off == TCP_CSUM_OFF) || (udp && off == UDP_CSUM_OFF));

	if (gso != VIRTIO_NET_HDR_GSO_NONE) {
		bool want4 = gso == VIRTIO_NET_HDR_GSO_TCPV4, want6 = gso == VIRTIO_NET_HDR_GSO_TCPV6;

		/* ECN and UDP fragmentation are not offered. */
		if (!want4 && !want6)
			return bad(why);
		if ((want4 && !(features & (1ull << VIRTIO_NET_F_HOST_TSO4))) ||
		    (want6 && !(features & (1ull << VIRTIO_NET_F_HOST_TSO6))))
			return bad(why);
		if (!tcp || (want4 && !v4) || (want6 && !v6) || !standard)
			return bad(why);
		if (hl.l4_len < sizeof(struct rte_tcp_hdr))
			return bad(why);
		hdrs = l4start + hl.l4_len;
		if (hdrs > len || hdrs > NET_MAX_HDRS || !in_first_seg(m, hdrs))
			return bad(why);
		payload = len - hdrs;
		/* Too small packets are not really GSO ones (as Linux says). */
		if (payload > gso_size) {
			if (gso_size < NET_GSO_MIN_SIZE ||
			    (payload + gso_size - 1) / gso_size > NET_GSO_MAX_SEGS)
				return bad(why);
			m->l2_len = hl.l2_len;
			m->l3_len = hl.l3_len;
			m->l4_len = hl.l4_len;
			m->tso_segsz = (uint16_t)gso_size;
			m->packet_type = ptype;
			m->ol_flags |= RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_TCP_CKSUM |
				       (v4 ? RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM : RTE_MBUF_F_TX_IPV6);
			return 0;
		}
	}
	if (!standard || !in_first_seg(m, start + off + 2)) {
		if (net_csum_partial(m, start, off))
			return bad(why);
		return 0;
	}
	m->l2_len = hl.l2_len;
	m->l3_len = hl.l3_len;
	m->l4_len = tcp ? hl.l4_len : sizeof(struct rte_udp_hdr);
	m->packet_type = ptype;
	m->ol_flags |= (tcp ? RTE_MBUF_F_TX_TCP_CKSUM : RTE_MBUF_F_TX_UDP_CKSUM) |
		       (v4 ? RTE_MBUF_F_TX_IPV4 : RTE_MBUF_F_TX_IPV6);
	return 0;
}

/* Segment a TCP/IPv6 (or IPv4) packet by copying; m is freed on success. */
static int segment_copy(struct rte_mbuf *m, struct rte_mempool *pool, struct rte_mbuf **out,
			unsigned int max)
{
	uint32_t hdrs = (uint32_t)m->l2_len + m->l3_len + m->l4_len, mss = m->tso_segsz;
	uint32_t payload = m->pkt_len - hdrs, n, seq;
	bool v4 = m->ol_flags & RTE_MBUF_F_TX_IPV4;
	uint16_t ip_id = 0;
	uint8_t hdr[NET_MAX_HDRS];
	const struct rte_tcp_hdr *th;

	if (hdrs > sizeof(hdr) || hdrs >= m->pkt_len || !in_first_seg(m, hdrs) || !mss)
		return -EINVAL;
	n = (payload + mss - 1) / mss;
	if (n > max)
		return -E2BIG;
	memcpy(hdr, rte_pktmbuf_mtod(m, const uint8_t *), hdrs);
	th = (const struct rte_tcp_hdr *)(hdr + m->l2_len + m->l3_len);
	seq = rte_be_to_cpu_32(th->sent_seq);
	if (v4)
		ip_id = rte_be_to_cpu_16(((const struct rte_ipv4_hdr *)(hdr + m->l2_len))->packet_id);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t seg_len = i + 1 < n ? mss : payload - i * mss;
		struct rte_mbuf *s = rte_pktmbuf_alloc(pool);
		struct rte_tcp_hdr *t;

		if (!s || !rte_pktmbuf_append(s, (uint16_t)hdrs) ||
		    net_mbuf_append_from(pool, s, m, hdrs + i * mss, seg_len)) {
			rte_pktmbuf_free(s);
			for (uint32_t j = 0; j < i; j++)
				rte_pktmbuf_free(out[j]);
			return -ENOMEM;
		}
		memcpy(rte_pktmbuf_mtod(s, uint8_t *), hdr, hdrs);
		s->l2_len = m->l2_len;
		s->l3_len = m->l3_len;
		s->l4_len = m->l4_len;
		s->packet_type = m->packet_type;
		s->ol_flags = m->ol_flags & ~RTE_MBUF_F_TX_TCP_SEG;
		if (v4) {
			struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(s, struct rte_ipv4_hdr *, s->l2_len);

			ip->total_length = rte_cpu_to_be_16((uint16_t)(m->l3_len + m->l4_len + seg_len));
			ip->packet_id = rte_cpu_to_be_16((uint16_t)(ip_id + i));
		} else {
			struct rte_ipv6_hdr *ip6 = rte_pktmbuf_mtod_offset(s, struct rte_ipv6_hdr *, s->l2_len);

			ip6->payload_len = rte_cpu_to_be_16((uint16_t)(m->l3_len - sizeof(*ip6) +
								       m->l4_len + seg_len));
		}
		t = rte_pktmbuf_mtod_offset(s, struct rte_tcp_hdr *, s->l2_len + s->l3_len);
		t->sent_seq = rte_cpu_to_be_32(seq + i * mss);
		if (i + 1 < n)
			t->tcp_flags &= (uint8_t)~(TCP_FLAG_FIN | TCP_FLAG_PSH);
		if (i > 0)
			t->tcp_flags &= (uint8_t)~TCP_FLAG_CWR;
		out[i] = s;
	}
	rte_pktmbuf_free(m);
	return (int)n;
}

/* Segment m in software; m is consumed (out[0] or freed) on success. */
static int segment(struct rte_mbuf *m, const struct rte_gso_ctx *tmpl, struct rte_mbuf **out,
		   unsigned int max)
{
	uint32_t hdrs = (uint32_t)m->l2_len + m->l3_len + m->l4_len;
	int n;

	if (hdrs + m->tso_segsz > UINT16_MAX || !m->tso_segsz)
		return -EINVAL;
	if (!(m->ol_flags & RTE_MBUF_F_TX_IPV4))
		return segment_copy(m, tmpl->direct_pool, out, max);
	struct rte_gso_ctx ctx = *tmpl;

	ctx.gso_types = RTE_ETH_TX_OFFLOAD_TCP_TSO;
	ctx.gso_size = (uint16_t)(hdrs + m->tso_segsz);
	ctx.flag = 0;
	if (max > UINT16_MAX)
		max = UINT16_MAX;
	n = rte_gso_segment(m, &ctx, out, (uint16_t)max);
	if (n < 0)
		return n;
	if (n == 0) {
		/* Nothing to cut (librte_gso cleared TCP_SEG). */
		out[0] = m;
		return 1;
	}
	/* librte_gso leaves CWR on every segment; TCP wants it on the first. */
	for (int i = 1; i < n; i++) {
		struct rte_tcp_hdr *t = rte_pktmbuf_mtod_offset(out[i], struct rte_tcp_hdr *,
								 out[i]->l2_len + out[i]->l3_len);

		t->tcp_flags &= (uint8_t)~TCP_FLAG_CWR;
	}
	/* The segments hold references to m's data. */
	rte_pktmbuf_free(m);
	return n;
}

/* Complete in software the checksums of one packet that capa cannot offload. */
static int finish_csums(struct rte_mbuf *m, uint64_t capa)
{
	uint64_t f = m->ol_flags;

	if ((f & RTE_MBUF_F_TX_L4_MASK) && !(capa & NET_CAN_CSUM)) {
		if (net_csum_l4(m))
			return -EINVAL;
		m->ol_flags &= ~RTE_MBUF_F_TX_L4_MASK;
		m->ol_flags = (m->ol_flags & ~RTE_MBUF_F_RX_L4_CKSUM_MASK) | RTE_MBUF_F_RX_L4_CKSUM_GOOD;
	}
	if ((f & RTE_MBUF_F_TX_IP_CKSUM) && !(capa & NET_CAN_IPCSUM)) {
		if (net_csum_ipv4(m))
			return -EINVAL;
		m->ol_flags &= ~RTE_MBUF_F_TX_IP_CKSUM;
	}
	return 0;
}

int net_offload_egress(struct rte_mbuf *m, uint64_t capa, const struct rte_gso_ctx *gso,
		       struct rte_mbuf **out, unsigned int max, enum net_drop *why)
{
	uint64_t f = m->ol_flags;
	int n = 1;

	out[0] = m;
	if (!net_offload_egress_needed(m))
		return 1;
	if (f & RTE_MBUF_F_TX_TCP_SEG) {
		bool v4 = f & RTE_MBUF_F_TX_IPV4;

		if (capa & (v4 ? NET_CAN_TSO4 : NET_CAN_TSO6)) {
			/* The egress segments; an IPv4 header checksum it cannot
			 * make is made here. */
			if ((f & RTE_MBUF_F_TX_IP_CKSUM) && !(capa & NET_CAN_IPCSUM)) {
				if (net_csum_ipv4(m))
					goto fail;
				m->ol_flags &= ~RTE_MBUF_F_TX_IP_CKSUM;
			}
			return 1;
		}
		n = segment(m, gso, out, max);
		if (n < 0)
			goto fail;
	}
	/* Segments carry the original's pseudo-header sum, wrong for their
	 * length: their checksums are made here whatever the egress can do. */
	if (f & RTE_MBUF_F_TX_TCP_SEG)
		capa &= ~(uint64_t)(NET_CAN_CSUM | NET_CAN_IPCSUM);
	for (int i = 0; i < n; i++)
		if (finish_csums(out[i], capa))
			goto fail_segs;
	return n;

fail_segs:
	for (int i = 0; i < n; i++)
		rte_pktmbuf_free(out[i]);
	*why = NET_DROP_OFFLOAD;
	return -EINVAL;
fail:
	rte_pktmbuf_free(m);
	*why = NET_DROP_OFFLOAD;
	return -EINVAL;
}

void net_offload_to_guest(const struct rte_mbuf *m, uint64_t capa, struct virtio_net_hdr *h)
{
	uint64_t f = m->ol_flags, l4 = f & RTE_MBUF_F_TX_L4_MASK;

	memset(h, 0, sizeof(*h));
	if ((f & RTE_MBUF_F_TX_TCP_SEG) && (capa & NET_CAN_CSUM)) {
		h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		h->gso_type = (f & RTE_MBUF_F_TX_IPV4) ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
		h->gso_size = htole16(m->tso_segsz);
		h->hdr_len = htole16((uint16_t)(m->l2_len + m->l3_len + m->l4_len));
		h->csum_start = htole16((uint16_t)(m->l2_len + m->l3_len));
		h->csum_offset = htole16(TCP_CSUM_OFF);
	} else if ((l4 == RTE_MBUF_F_TX_TCP_CKSUM || l4 == RTE_MBUF_F_TX_UDP_CKSUM) &&
		   (capa & NET_CAN_CSUM)) {
		h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		h->csum_start = htole16((uint16_t)(m->l2_len + m->l3_len));
		h->csum_offset = htole16(l4 == RTE_MBUF_F_TX_TCP_CKSUM ? TCP_CSUM_OFF : UDP_CSUM_OFF);
	} else if ((f & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD &&
		   (capa & NET_CAN_CSUM)) {
		h->flags = VIRTIO_NET_HDR_F_DATA_VALID;
	}
}
