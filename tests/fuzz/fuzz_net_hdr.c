// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for vhost-net's guest TX offload path
 * (vhost-net/offload.c, SECURITY.md 19): a frame and the virtio_net_hdr a
 * guest sent with it become an mbuf chain as txrx.c makes one, go through
 * net_offload_from_guest(), and, if accepted, through
 * net_offload_egress() for an egress of some abilities (software
 * checksums, segmentation with librte_gso and by copy, from pools set up
 * as main.c sets them up), then each packet out through
 * net_offload_to_guest() for a receiving guest.
 *
 * Input (multi-byte fields little-endian):
 *   u8  tx      the sending guest's features: bit 0 VIRTIO_NET_F_CSUM,
 *               1 HOST_TSO4, 2 HOST_TSO6, 3 HOST_ECN, 4 HOST_UFO;
 *               bit 7: fix the frame up first (below)
 *   u8  rx      the receiving guest's features: bit 0 GUEST_CSUM,
 *               1 GUEST_TSO4, 2 GUEST_TSO6, 3 GUEST_ECN, 4 GUEST_UFO
 *   u8  egress  bits 0-3: NET_CAN_CSUM, _TSO4, _TSO6, _IPCSUM of an uplink;
 *               bit 4: the egress is the receiving guest instead (capa =
 *               net_offload_guest_capa(rx)); bit 5: segments come from
 *               pools of TIGHT_POOL mbufs (exhaustion); bit 6: an out
 *               array of 1 + max % SMALL_MAX entries, not NET_GSO_MAX_SEGS
 *   u8  max
 *   u16 seg0    bytes of the chain's first mbuf: 1 + seg0 % 2048
 *   u16 segn    bytes of each further mbuf: 1 + segn % 2048, raised so
 *               that no chain has more than MAX_CHAIN mbufs (txrx.c fills
 *               every mbuf: 2047, 2047)
 *   u16 extra   bytes of a pattern appended to the frame (the frame is
 *               cut at NET_MAX_FRAME)
 *   struct virtio_net_hdr (10 bytes, as the guest wrote it)
 *   the frame; shorter than an Ethernet header or longer than
 *   NET_MAX_FRAME, txrx.c drops it before offload.c sees it: skipped.
 * Fix-up (tx bit 7): the IPv4 total length or IPv6 payload length (and a
 * UDP length) are made to agree with the frame, the IPv4 header checksum
 * made right, and the TCP/UDP checksum field given the pseudo-header sum,
 * as a guest asking for checksum offload leaves it.
 *
 * Checked on every input (a broken check crashes with a message):
 *  - every mbuf chain (in, accepted, out): data_len adds up to pkt_len,
 *    nb_segs counts the chain, rte_mbuf_check() passes;
 *  - a rejected header returns -EINVAL with NET_DROP_BAD_HEADER; an
 *    accepted one obeys SECURITY.md 19: NEEDS_CSUM negotiated, csum field
 *    and hdr_len inside the packet, GSO only TCPv4/TCPv6 as negotiated,
 *    with NEEDS_CSUM, gso_size >= NET_GSO_MIN_SIZE, at most
 *    NET_GSO_MAX_SEGS segments, headers in the first mbuf; the flags and
 *    lengths set agree with the header; the frame is unchanged but for a
 *    checksum completed at once, which must be right;
 *  - the egress: 1 to max packets, or -errno with a reason; no packet
 *    carries an offload request its egress cannot do (with capa 0: no
 *    TCP_SEG, L4 checksum or IP checksum request at all); a checksum made
 *    in software is marked good and verifies (rte_ipv4/ipv6_udptcp_
 *    cksum_verify, IPv4 header sum) whenever the headers are complete and
 *    the lengths consistent; software segments are no longer than the
 *    headers plus gso_size, at most NET_GSO_MAX_SEGS, and carry the
 *    payload in order with the sequence numbers, lengths and TCP flags
 *    that go with it; a packet not segmented is unchanged but for the
 *    checksums made;
 *  - the header for the receiving guest stays inside the packet and, when
 *    that guest is the egress, asks only for what it negotiated and is one
 *    net_offload_from_guest() itself accepts;
 *  - mbufs: every mbuf in use is reachable from the packets out, with the
 *    reference count its uses (chains, indirect mbufs) add up to, and the
 *    pools are empty again after each input (no leak, no double free).
 * ASan and UBSan catch the rest (offload.c is built with them; DPDK is not).
 *
 * EAL runs once, without hugepages, PCI or shared files, in a runtime
 * directory of its own, removed as soon as EAL is up (nothing uses it
 * then), its parent at exit if nothing else uses that.  VU_FUZZ_VERBOSE=1
 * in the environment prints each input's header and outcome.
 */
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "fuzz_common.h"
#include "offload.h"

#define CTL_LEN     10
#define VHDR_LEN    sizeof(struct virtio_net_hdr)
#define DATA_ROOM   RTE_MBUF_DEFAULT_DATAROOM
#define MAX_CHAIN   512
#define POOL_SIZE   8191                    /* main.c: indirect pool 8191, cache 256 */
#define POOL_CACHE  256
#define TIGHT_POOL  48
#define SMALL_MAX   32
#define MAX_REFS    16384

#define ETH_VLAN    0x8100
#define ETH_QINQ    0x88a8
#define ETH_IPV4    0x0800
#define ETH_IPV6    0x86dd
#define TCP_CSUM    offsetof(struct rte_tcp_hdr, cksum)
#define UDP_CSUM    offsetof(struct rte_udp_hdr, dgram_cksum)
#define TCP_SEQ     offsetof(struct rte_tcp_hdr, sent_seq)
#define TCP_FLAGS   offsetof(struct rte_tcp_hdr, tcp_flags)
#define TX_REQ      (RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_TX_IP_CKSUM)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
	struct rte_mempool *pool, *ind_pool;      /* a worker's pool, the indirect pool */
	struct rte_mempool *tight, *tight_ind;    /* the same, of TIGHT_POOL mbufs */
	struct rte_gso_ctx gso, gso_tight;
	char run_dir[PATH_MAX];
	bool verbose;
} F;

static uint8_t frame[NET_MAX_FRAME];   /* the frame as the guest sent it */
static uint8_t orig[NET_MAX_FRAME];    /* the packet accepted, before the egress */
static uint32_t orig_len;
static uint8_t flat[NET_MAX_FRAME];    /* one packet out */
static struct rte_mbuf *out[NET_GSO_MAX_SEGS];

static inline uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put_be16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* ---- EAL and pools ------------------------------------------------------------ */

/*
 * EAL's runtime directory: empty with --no-shconf and unused after
 * rte_eal_init(), so removed at once (a crash leaves nothing behind), and
 * with its parent, if nothing else uses that, at exit.
 */
static void remove_run_dir(bool parent)
{
	char dir[PATH_MAX], *slash;

	if (!strstr(F.run_dir, "/fuzz-net-hdr-"))
		return;
	rmdir(F.run_dir);
	snprintf(dir, sizeof(dir), "%s", F.run_dir);
	slash = strrchr(dir, '/');
	if (parent && slash) {
		*slash = '\0';
		rmdir(dir);
	}
}

static void at_exit(void)
{
	rte_eal_cleanup();
	remove_run_dir(true);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char prefix[64], lcores[64];
	char *eal[] = { "fuzz_net_hdr", "--no-huge", "-m", "128", "--no-pci", "--no-shconf",
			"--no-telemetry", "--log-level=error", prefix, lcores, NULL };
	cpu_set_t set;
	int cpu = 0;

	(void)argc;
	(void)argv;
	F.verbose = getenv("VU_FUZZ_VERBOSE");
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		while (cpu < CPU_SETSIZE - 1 && !CPU_ISSET(cpu, &set))
			cpu++;
	snprintf(lcores, sizeof(lcores), "--lcores=0@%d", cpu);
	snprintf(prefix, sizeof(prefix), "--file-prefix=fuzz-net-hdr-%d", (int)getpid());
	if (rte_eal_init((int)RTE_DIM(eal) - 1, eal) < 0)
		fuzz_fail("cannot initialise DPDK's EAL: %s", rte_strerror(rte_errno));
	snprintf(F.run_dir, sizeof(F.run_dir), "%s", rte_eal_get_runtime_dir());
	remove_run_dir(false);
	atexit(at_exit);

	F.pool = rte_pktmbuf_pool_create("fuzz", POOL_SIZE, POOL_CACHE, 0,
					 RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	F.ind_pool = rte_pktmbuf_pool_create("fuzz_ind", POOL_SIZE, POOL_CACHE, 0, 0, SOCKET_ID_ANY);
	F.tight = rte_pktmbuf_pool_create("fuzz_tight", TIGHT_POOL, 0, 0,
					  RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	F.tight_ind = rte_pktmbuf_pool_create("fuzz_tight_ind", TIGHT_POOL, 0, 0, 0, SOCKET_ID_ANY);
	if (!F.pool || !F.ind_pool || !F.tight || !F.tight_ind)
		fuzz_fail("cannot create the mbuf pools: %s", rte_strerror(rte_errno));
	/* As main.c sets up a worker's context. */
	F.gso.direct_pool = F.pool;
	F.gso.indirect_pool = F.ind_pool;
	F.gso.gso_types = RTE_ETH_TX_OFFLOAD_TCP_TSO;
	F.gso_tight = F.gso;
	F.gso_tight.direct_pool = F.tight;
	F.gso_tight.indirect_pool = F.tight_ind;
	return 0;
}

static unsigned int in_use(void)
{
	return rte_mempool_in_use_count(F.pool) + rte_mempool_in_use_count(F.ind_pool) +
	       rte_mempool_in_use_count(F.tight) + rte_mempool_in_use_count(F.tight_ind);
}

static void check_pools_empty(const char *when)
{
	unsigned int n = in_use();

	if (n)
		fuzz_fail("%u mbufs still in use %s: a leak", n, when);
}

/* ---- mbufs -------------------------------------------------------------------- */

/*
 * The frame as an mbuf chain, as txrx.c's chain_to_mbuf() builds one: data
 * and lengths only, first bytes in the first mbuf, rest bytes in each
 * further one.
 */
static struct rte_mbuf *chain_of(const uint8_t *p, uint32_t len, uint32_t first, uint32_t rest)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(F.pool), *seg = m;
	uint32_t cap = first;

	if (rest < (len + MAX_CHAIN - 2) / (MAX_CHAIN - 1))
		rest = (len + MAX_CHAIN - 2) / (MAX_CHAIN - 1);
	if (!m)
		fuzz_fail("mbuf pool empty building the input");
	while (len) {
		uint32_t n = len;

		if (n > cap)
			n = cap;
		if (n > rte_pktmbuf_tailroom(seg))
			n = rte_pktmbuf_tailroom(seg);
		if (!n) {
			struct rte_mbuf *next = rte_pktmbuf_alloc(F.pool);

			if (!next)
				fuzz_fail("mbuf pool empty building the input");
			seg->next = next;
			seg = next;
			m->nb_segs++;
			cap = rest;
			continue;
		}
		memcpy(rte_pktmbuf_mtod_offset(seg, uint8_t *, seg->data_len), p, n);
		seg->data_len = (uint16_t)(seg->data_len + n);
		m->pkt_len += n;
		p += n;
		len -= n;
		cap -= n;
	}
	return m;
}

static void check_chain(const struct rte_mbuf *m, const char *what, int i)
{
	const char *reason = NULL;
	uint32_t sum = 0, n = 0;

	for (const struct rte_mbuf *s = m; s; s = s->next) {
		sum += s->data_len;
		if (++n > UINT16_MAX)
			fuzz_fail("%s %d: a chain of more than %u mbufs", what, i, UINT16_MAX);
	}
	if (sum != m->pkt_len || n != m->nb_segs)
		fuzz_fail("%s %d: pkt_len %u nb_segs %u, but the chain holds %u bytes in %u mbufs",
		          what, i, m->pkt_len, m->nb_segs, sum, n);
	if (rte_mbuf_check(m, 1, &reason))
		fuzz_fail("%s %d: rte_mbuf_check: %s", what, i, reason);
}

static const uint8_t *bytes_of(const struct rte_mbuf *m, uint8_t *buf)
{
	const uint8_t *p = rte_pktmbuf_read(m, 0, m->pkt_len, buf);

	if (!p)
		fuzz_fail("cannot read a packet of %u bytes", m->pkt_len);
	if (p != buf)
		memcpy(buf, p, m->pkt_len);
	return buf;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;

	return x < y ? -1 : x > y;
}

/*
 * Every mbuf in use is reachable from pk[0..n), and each has the
 * reference count its uses add up to: once per place in a chain, once per
 * indirect mbuf attached to it.  An mbuf freed while still in a chain, or
 * kept after its last use, breaks this.
 */
static void check_refs(struct rte_mbuf *const *pk, int n, const char *when)
{
	static struct rte_mbuf *refs[MAX_REFS];
	unsigned int nrefs = 0, distinct = 0, used;

	for (int i = 0; i < n; i++) {
		for (struct rte_mbuf *s = pk[i]; s; s = s->next) {
			if (nrefs + 2 > MAX_REFS)
				fuzz_fail("more than %u mbuf references (harness limit)", MAX_REFS);
			refs[nrefs++] = s;
			if (RTE_MBUF_CLONED(s))
				refs[nrefs++] = rte_mbuf_from_indirect(s);
		}
	}
	qsort(refs, nrefs, sizeof(refs[0]), cmp_ptr);
	for (unsigned int i = 0, j; i < nrefs; i = j) {
		for (j = i + 1; j < nrefs && refs[j] == refs[i]; j++)
			;
		if (rte_mbuf_refcnt_read(refs[i]) != j - i)
			fuzz_fail("%s: an mbuf with %u references has refcnt %u", when, j - i,
			          rte_mbuf_refcnt_read(refs[i]));
		distinct++;
	}
	used = in_use();
	if (used != distinct)
		fuzz_fail("%s: %u mbufs in use, %u reachable from the packets (%s)", when, used, distinct,
		          used > distinct ? "a leak" : "one freed while in use");
}

/* ---- frames -------------------------------------------------------------------- */

/* Where the L3 header starts and its ethertype, as rte_net_get_ptype() sees it. */
static uint32_t l2_of(const uint8_t *p, uint32_t len, uint16_t *type)
{
	uint32_t l2 = RTE_ETHER_HDR_LEN;

	*type = get_be16(p + 12);
	if (*type == ETH_VLAN && len >= 18) {
		*type = get_be16(p + 16);
		l2 = 18;
	} else if (*type == ETH_QINQ && len >= 22) {
		*type = get_be16(p + 20);
		l2 = 22;
	}
	return l2;
}

/* The IPv6 pseudo-header sum (rte_ipv6_phdr_cksum() shifts a signed int
 * out of range for a next header above 127). */
static uint16_t ipv6_phdr(const struct rte_ipv6_hdr *ip6)
{
	uint8_t ph[40] = { 0 };

	memcpy(ph, ip6->src_addr, 32);
	memcpy(ph + 34, &ip6->payload_len, 2);
	ph[39] = ip6->proto;
	return rte_raw_cksum(ph, sizeof(ph));
}

/* See "Fix-up" at the top. */
static void fix_up(uint8_t *p, uint32_t len)
{
	uint16_t type, phdr;
	uint32_t l2 = l2_of(p, len, &type), l4;
	uint8_t proto;

	if (type == ETH_IPV4 && len >= l2 + sizeof(struct rte_ipv4_hdr)) {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(p + l2);
		uint32_t ihl = rte_ipv4_hdr_len(ip);

		if (ihl < sizeof(*ip) || len < l2 + ihl || len - l2 > UINT16_MAX)
			return;
		ip->total_length = rte_cpu_to_be_16((uint16_t)(len - l2));
		ip->hdr_checksum = 0;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		l4 = l2 + ihl;
		proto = ip->next_proto_id;
		phdr = rte_ipv4_phdr_cksum(ip, 0);
	} else if (type == ETH_IPV6 && len >= l2 + sizeof(struct rte_ipv6_hdr)) {
		struct rte_ipv6_hdr *ip6 = (struct rte_ipv6_hdr *)(p + l2);

		if (len - l2 - sizeof(*ip6) > UINT16_MAX)
			return;
		ip6->payload_len = rte_cpu_to_be_16((uint16_t)(len - l2 - sizeof(*ip6)));
		l4 = l2 + (uint32_t)sizeof(*ip6);
		proto = ip6->proto;
		phdr = ipv6_phdr(ip6);
	} else {
		return;
	}
	if (proto == IPPROTO_TCP && len >= l4 + sizeof(struct rte_tcp_hdr)) {
		memcpy(p + l4 + TCP_CSUM, &phdr, 2);
	} else if (proto == IPPROTO_UDP && len >= l4 + sizeof(struct rte_udp_hdr)) {
		put_be16(p + l4 + offsetof(struct rte_udp_hdr, dgram_len), len - l4);
		memcpy(p + l4 + UDP_CSUM, &phdr, 2);
	}
}

/* The checksum net_csum_partial() must leave at start + off: the one's
 * complement of the sum of p[start..len) (0 sent as 0xffff). */
static uint16_t partial_csum(const uint8_t *p, uint32_t len, uint32_t start)
{
	uint16_t sum = (uint16_t)~rte_raw_cksum(p + start, len - start);

	return sum ? sum : 0xffff;
}

/*
 * A TCP/UDP checksum made in software verifies.  Only where the headers
 * are complete and the IP length agrees with the packet; IPv6 without
 * extension headers only (the DPDK helper does not skip them).
 */
static void verify_l4(const struct rte_mbuf *o, const uint8_t *p, bool tcp, int i)
{
	uint32_t l2 = o->l2_len, l3 = o->l3_len, len = o->pkt_len;
	uint32_t l4min = tcp ? TCP_CSUM + 2 : (uint32_t)sizeof(struct rte_udp_hdr);
	uint8_t proto = tcp ? IPPROTO_TCP : IPPROTO_UDP;

	if (o->ol_flags & RTE_MBUF_F_TX_IPV4) {
		const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(p + l2);
		uint32_t tot;

		if (l2 + sizeof(*ip) > len || (ip->version_ihl >> 4) != 4 ||
		    rte_ipv4_hdr_len(ip) != l3 || l3 < sizeof(*ip) || ip->next_proto_id != proto)
			return;
		tot = rte_be_to_cpu_16(ip->total_length);
		if (tot < l3 + l4min || l2 + tot > len)
			return;
		if (rte_ipv4_udptcp_cksum_verify(ip, p + l2 + l3))
			fuzz_fail("packet %d: wrong %s/IPv4 checksum made in software (%u bytes, "
			          "%u in the first mbuf, %u mbufs)", i, tcp ? "TCP" : "UDP", len,
			          o->data_len, o->nb_segs);
	} else if (o->ol_flags & RTE_MBUF_F_TX_IPV6) {
		const struct rte_ipv6_hdr *ip6 = (const struct rte_ipv6_hdr *)(p + l2);
		uint32_t pl;

		if (l3 != sizeof(*ip6) || l2 + l3 > len || ip6->proto != proto)
			return;
		pl = rte_be_to_cpu_16(ip6->payload_len);
		if (pl < l4min || l2 + l3 + pl > len)
			return;
		if (rte_ipv6_udptcp_cksum_verify(ip6, p + l2 + l3))
			fuzz_fail("packet %d: wrong %s/IPv6 checksum made in software (%u bytes, "
			          "%u in the first mbuf, %u mbufs)", i, tcp ? "TCP" : "UDP", len,
			          o->data_len, o->nb_segs);
	}
}

static void verify_ip_csum(const struct rte_mbuf *o, const uint8_t *p, int i)
{
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(p + o->l2_len);

	if (o->l2_len + o->l3_len > o->pkt_len || rte_ipv4_hdr_len(ip) != o->l3_len)
		return;
	if (rte_raw_cksum(ip, o->l3_len) != 0xffff)
		fuzz_fail("packet %d: wrong IPv4 header checksum made in software", i);
}

/* ---- the steps -------------------------------------------------------------------- */

/*
 * What net_offload_from_guest() accepted is what SECURITY.md 19 allows,
 * and m says what h asked (offload.h).  Leaves the accepted bytes in orig.
 */
static void check_accepted(const struct rte_mbuf *m, const struct virtio_net_hdr *h,
			   uint64_t features, uint32_t len, uint16_t nb_segs)
{
	uint32_t start = le16toh(h->csum_start), off = le16toh(h->csum_offset);
	uint32_t gso_size = le16toh(h->gso_size), hdr_len = le16toh(h->hdr_len);
	uint32_t l4start = (uint32_t)m->l2_len + m->l3_len, hdrs = l4start + m->l4_len;
	bool needs_csum = h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM;
	uint64_t f = m->ol_flags, l4 = f & RTE_MBUF_F_TX_L4_MASK;
	uint8_t gt = h->gso_type;
	uint32_t same_from = len, same_to = len;   /* a range that may differ */

	check_chain(m, "accepted packet", 0);
	if (m->pkt_len != len || m->nb_segs != nb_segs)
		fuzz_fail("accepted packet: %u bytes in %u mbufs became %u in %u", len, nb_segs,
		          m->pkt_len, m->nb_segs);
	bytes_of(m, orig);
	orig_len = len;
	if (!needs_csum && gt == VIRTIO_NET_HDR_GSO_NONE) {
		if (f)
			fuzz_fail("no offload asked, flags 0x%llx set", (unsigned long long)f);
	} else {
		if (!needs_csum)
			fuzz_fail("GSO type %u without NEEDS_CSUM accepted", gt);
		if (!(features & (1ull << VIRTIO_NET_F_CSUM)))
			fuzz_fail("NEEDS_CSUM accepted without VIRTIO_NET_F_CSUM");
		if (start + off + 2 > len)
			fuzz_fail("csum_start %u + csum_offset %u outside a packet of %u bytes", start, off,
			          len);
		if (hdr_len > len)
			fuzz_fail("hdr_len %u beyond a packet of %u bytes", hdr_len, len);
		if (gt != VIRTIO_NET_HDR_GSO_NONE &&
		    !(gt == VIRTIO_NET_HDR_GSO_TCPV4 && (features & (1ull << VIRTIO_NET_F_HOST_TSO4))) &&
		    !(gt == VIRTIO_NET_HDR_GSO_TCPV6 && (features & (1ull << VIRTIO_NET_F_HOST_TSO6))))
			fuzz_fail("GSO type 0x%x accepted (features 0x%llx)", gt,
			          (unsigned long long)features);
		if (f & RTE_MBUF_F_TX_TCP_SEG) {
			bool v4 = gt == VIRTIO_NET_HDR_GSO_TCPV4;
			uint64_t want = RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_TCP_CKSUM |
					(v4 ? RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM :
					      RTE_MBUF_F_TX_IPV6);
			uint32_t payload = len - hdrs;

			if (f != want)
				fuzz_fail("GSO type %u: flags 0x%llx", gt, (unsigned long long)f);
			if (m->tso_segsz != gso_size || gso_size < NET_GSO_MIN_SIZE)
				fuzz_fail("gso_size %u accepted as tso_segsz %u", gso_size, m->tso_segsz);
			if (l4start != start || off != TCP_CSUM || m->l4_len < sizeof(struct rte_tcp_hdr))
				fuzz_fail("TSO with csum_start %u csum_offset %u, l2 %u l3 %u l4 %u", start, off,
				          m->l2_len, m->l3_len, m->l4_len);
			if (hdrs > NET_MAX_HDRS || hdrs > m->data_len || hdrs >= len)
				fuzz_fail("TSO with %u bytes of headers, %u in the first mbuf, %u in all", hdrs,
				          m->data_len, len);
			if (payload <= gso_size || (payload + gso_size - 1) / gso_size > NET_GSO_MAX_SEGS)
				fuzz_fail("TSO of %u bytes of payload by %u", payload, gso_size);
		} else if (l4) {
			bool tcp = l4 == RTE_MBUF_F_TX_TCP_CKSUM;

			if (l4 != RTE_MBUF_F_TX_TCP_CKSUM && l4 != RTE_MBUF_F_TX_UDP_CKSUM)
				fuzz_fail("L4 checksum request 0x%llx", (unsigned long long)l4);
			if (f != (l4 | RTE_MBUF_F_TX_IPV4) && f != (l4 | RTE_MBUF_F_TX_IPV6))
				fuzz_fail("checksum request with flags 0x%llx",
				          (unsigned long long)f);
			if (l4start != start || off != (tcp ? TCP_CSUM : UDP_CSUM) ||
			    start + off + 2 > m->data_len)
				fuzz_fail("checksum left to the egress: csum_start %u "
				          "csum_offset %u, l2 %u l3 %u, first mbuf %u bytes", start,
				          off, m->l2_len, m->l3_len, m->data_len);
		} else {
			uint16_t want = partial_csum(frame, len, start), got;

			if (f)
				fuzz_fail("flags 0x%llx", (unsigned long long)f);
			memcpy(&got, orig + start + off, 2);
			if (got != want)
				fuzz_fail("checksum completed at once (csum_start %u csum_offset %u, %u bytes, "
				          "%u in the first mbuf, %u mbufs) is 0x%04x, not 0x%04x", start, off,
				          len, m->data_len, m->nb_segs, got, want);
			same_from = start + off;
			same_to = same_from + 2;
		}
	}
	if (memcmp(orig, frame, same_from) || memcmp(orig + same_to, frame + same_to, len - same_to))
		fuzz_fail("the frame changed on its way in");
}

/* Software segments carry orig's payload in order, with their own lengths,
 * sequence numbers and TCP flags, the rest of the headers unchanged. */
static void check_segment(const struct rte_mbuf *o, const uint8_t *p, int i, int n,
			  uint32_t hdrs, uint32_t done, uint32_t mss, bool v4)
{
	uint32_t l2 = o->l2_len, l3 = o->l3_len, l4 = l2 + l3, seg = o->pkt_len - hdrs;
	uint32_t seq = get_be32(orig + l4 + TCP_SEQ) + done;
	uint8_t flags = orig[l4 + TCP_FLAGS], want_flags = flags;

	if (o->pkt_len <= hdrs || seg > mss)
		fuzz_fail("segment %d of %d: %u bytes, headers %u + gso_size %u", i, n, o->pkt_len,
		          hdrs, mss);
	if (i + 1 < n && seg != mss)
		fuzz_fail("segment %d of %d: %u bytes of payload, not %u", i, n, seg, mss);
	if (hdrs + done + seg > orig_len)
		fuzz_fail("segments carry more than the packet's payload");
	if (memcmp(p + hdrs, orig + hdrs + done, seg))
		fuzz_fail("segment %d of %d: payload differs from the packet's at %u", i, n, done);
	if (v4) {
		if (get_be16(p + l2 + 2) != o->pkt_len - l2)
			fuzz_fail("segment %d: IPv4 total length %u for %u bytes", i, get_be16(p + l2 + 2),
			          o->pkt_len - l2);
		/* All but total length, identification and checksum as in orig. */
		if (memcmp(p, orig, l2 + 2) || memcmp(p + l2 + 6, orig + l2 + 6, 4) ||
		    memcmp(p + l2 + 12, orig + l2 + 12, l3 - 12))
			fuzz_fail("segment %d: L2/IPv4 headers differ from the packet's", i);
	} else {
		if (get_be16(p + l2 + 4) != o->pkt_len - l2 - sizeof(struct rte_ipv6_hdr))
			fuzz_fail("segment %d: IPv6 payload length %u for %u bytes", i,
			          get_be16(p + l2 + 4), o->pkt_len - l2);
		if (memcmp(p, orig, l2 + 4) || memcmp(p + l2 + 6, orig + l2 + 6, l3 - 6))
			fuzz_fail("segment %d: L2/IPv6 headers differ from the packet's", i);
	}
	if (get_be32(p + l4 + TCP_SEQ) != seq)
		fuzz_fail("segment %d: sequence number %u, not %u", i, get_be32(p + l4 + TCP_SEQ),
		          seq);
	if (i + 1 < n)
		want_flags &= (uint8_t)~(RTE_TCP_FIN_FLAG | RTE_TCP_PSH_FLAG);
	if (i > 0)
		want_flags &= (uint8_t)~RTE_TCP_CWR_FLAG;
	if (p[l4 + TCP_FLAGS] != want_flags)
		fuzz_fail("segment %d of %d: TCP flags 0x%02x from 0x%02x", i, n, p[l4 + TCP_FLAGS], flags);
	if (memcmp(p + l4, orig + l4, TCP_SEQ) ||
	    memcmp(p + l4 + TCP_SEQ + 4, orig + l4 + TCP_SEQ + 4, TCP_FLAGS - TCP_SEQ - 4) ||
	    memcmp(p + l4 + TCP_FLAGS + 1, orig + l4 + TCP_FLAGS + 1, TCP_CSUM - TCP_FLAGS - 1) ||
	    memcmp(p + l4 + TCP_CSUM + 2, orig + l4 + TCP_CSUM + 2, hdrs - l4 - TCP_CSUM - 2))
		fuzz_fail("segment %d: TCP header differs from the packet's", i);
}

/*
 * The header for the receiving guest (rx_capa) stays inside the packet;
 * when that guest is the egress, it asks only for what the guest
 * negotiated and is one vhost-net accepts from a guest (SECURITY.md 19
 * both ways: what a guest may not send, it is not sent).
 */
static void check_to_guest(const struct rte_mbuf *o, const uint8_t *p, uint64_t rx_capa,
			   bool is_egress, int i)
{
	const uint8_t nc = VIRTIO_NET_HDR_F_NEEDS_CSUM, dv = VIRTIO_NET_HDR_F_DATA_VALID;
	struct virtio_net_hdr h;
	uint32_t start, off, len = o->pkt_len;
	uint64_t features = 0;
	enum net_drop why = NET_DROP_COUNT;
	struct rte_mbuf *m;
	int ret;

	net_offload_to_guest(o, rx_capa, &h);
	start = le16toh(h.csum_start);
	off = le16toh(h.csum_offset);
	if ((h.flags & ~(nc | dv)) || h.flags == (nc | dv) ||
	    (h.gso_type != VIRTIO_NET_HDR_GSO_NONE && h.gso_type != VIRTIO_NET_HDR_GSO_TCPV4 &&
	     h.gso_type != VIRTIO_NET_HDR_GSO_TCPV6))
		fuzz_fail("packet %d: header to the guest with flags 0x%x GSO type 0x%x", i,
		          h.flags, h.gso_type);
	if ((h.flags & nc) && start + off + 2 > len)
		fuzz_fail("packet %d: header to the guest: csum_start %u csum_offset %u in %u bytes",
		          i, start, off, len);
	if (h.gso_type != VIRTIO_NET_HDR_GSO_NONE &&
	    (!(h.flags & nc) || le16toh(h.hdr_len) > len || !h.gso_size))
		fuzz_fail("packet %d: header to the guest: GSO with flags 0x%x hdr_len %u gso_size %u in "
		          "%u bytes", i, h.flags, le16toh(h.hdr_len), le16toh(h.gso_size), len);
	if (!is_egress)
		return;
	if ((h.flags && !(rx_capa & NET_CAN_CSUM)) ||
	    (h.gso_type == VIRTIO_NET_HDR_GSO_TCPV4 && !(rx_capa & NET_CAN_TSO4)) ||
	    (h.gso_type == VIRTIO_NET_HDR_GSO_TCPV6 && !(rx_capa & NET_CAN_TSO6)))
		fuzz_fail("packet %d: header to the guest (flags 0x%x GSO type 0x%x) asks for more "
		          "than it negotiated (capa 0x%llx)", i, h.flags, h.gso_type,
		          (unsigned long long)rx_capa);
	if (!(h.flags & nc))
		return;
	if (rx_capa & NET_CAN_CSUM)
		features |= 1ull << VIRTIO_NET_F_CSUM;
	if (rx_capa & NET_CAN_TSO4)
		features |= 1ull << VIRTIO_NET_F_HOST_TSO4;
	if (rx_capa & NET_CAN_TSO6)
		features |= 1ull << VIRTIO_NET_F_HOST_TSO6;
	m = chain_of(p, len, DATA_ROOM, DATA_ROOM);
	ret = net_offload_from_guest(m, &h, features, &why);
	rte_pktmbuf_free(m);
	if (ret)
		fuzz_fail("packet %d: header to the guest (csum_start %u csum_offset %u GSO type "
		          "0x%x gso_size %u hdr_len %u, %u bytes) is one vhost-net rejects from a "
		          "guest", i, start, off, h.gso_type, le16toh(h.gso_size), le16toh(h.hdr_len),
		          len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_net_hdr h;
	uint64_t features = 0, rx_features = 0, capa, rx_capa, in_f;
	uint32_t flen, len, extra, seg0, segn, hdrs, mss, done = 0;
	const struct rte_gso_ctx *gso;
	unsigned int max;
	enum net_drop why = NET_DROP_COUNT;
	struct rte_mbuf *m;
	uint16_t nb_segs, l2, l3, l4len;
	bool is_egress, segmented;
	uint8_t tx, rx, eg;
	int n;

	if (size < CTL_LEN + VHDR_LEN)
		return 0;
	flen = (uint32_t)(size - CTL_LEN - VHDR_LEN);
	extra = (uint32_t)(data[8] | data[9] << 8);
	if (flen + extra < RTE_ETHER_HDR_LEN || flen > NET_MAX_FRAME)
		return 0;          /* txrx.c: NET_DROP_RUNT, NET_DROP_TOO_BIG */
	tx = data[0];
	rx = data[1];
	eg = data[2];
	seg0 = 1 + (uint32_t)(data[4] | data[5] << 8) % DATA_ROOM;
	segn = 1 + (uint32_t)(data[6] | data[7] << 8) % DATA_ROOM;
	memcpy(&h, data + CTL_LEN, VHDR_LEN);
	len = flen + extra < NET_MAX_FRAME ? flen + extra : NET_MAX_FRAME;
	memcpy(frame, data + CTL_LEN + VHDR_LEN, flen);
	for (uint32_t i = flen; i < len; i++)
		frame[i] = (uint8_t)(i * 7 + 3);
	if (tx & 0x80)
		fix_up(frame, len);

	static const unsigned int tx_bits[] = {
		VIRTIO_NET_F_CSUM, VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6,
		VIRTIO_NET_F_HOST_ECN, VIRTIO_NET_F_HOST_UFO,
	};
	static const unsigned int rx_bits[] = {
		VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6,
		VIRTIO_NET_F_GUEST_ECN, VIRTIO_NET_F_GUEST_UFO,
	};
	for (unsigned int b = 0; b < RTE_DIM(tx_bits); b++) {
		if (tx & (1u << b))
			features |= 1ull << tx_bits[b];
		if (rx & (1u << b))
			rx_features |= 1ull << rx_bits[b];
	}
	rx_capa = net_offload_guest_capa(rx_features);
	is_egress = eg & 0x10;
	capa = is_egress ? rx_capa : (eg & 0xfu);
	gso = (eg & 0x20) ? &F.gso_tight : &F.gso;
	max = (eg & 0x40) ? 1 + data[3] % SMALL_MAX : NET_GSO_MAX_SEGS;

	/* ---- from the guest ---- */
	check_pools_empty("before the input");
	m = chain_of(frame, len, seg0, segn);
	nb_segs = m->nb_segs;
	check_chain(m, "input", 0);
	n = net_offload_from_guest(m, &h, features, &why);
	if (F.verbose)
		fprintf(stderr, "in: %u bytes in %u mbufs (%u, %u), hdr flags 0x%x gso 0x%x start %u "
			"off %u gso_size %u hdr_len %u, features 0x%llx: %d, flags 0x%llx\n", len,
			nb_segs, seg0, segn, h.flags, h.gso_type, le16toh(h.csum_start),
			le16toh(h.csum_offset), le16toh(h.gso_size), le16toh(h.hdr_len),
			(unsigned long long)features, n, (unsigned long long)m->ol_flags);
	if (n) {
		if (n != -EINVAL || why != NET_DROP_BAD_HEADER)
			fuzz_fail("header rejected with %d, drop reason %d", n, why);
		rte_pktmbuf_free(m);
		check_pools_empty("after a rejected header");
		return 0;
	}
	check_accepted(m, &h, features, len, nb_segs);
	check_refs(&m, 1, "accepted");

	/* ---- to the egress ---- */
	in_f = m->ol_flags;
	l2 = m->l2_len;
	l3 = m->l3_len;
	l4len = m->l4_len;
	hdrs = (uint32_t)l2 + l3 + l4len;
	mss = m->tso_segsz;
	memset(out, 0, sizeof(out[0]) * max);
	why = NET_DROP_COUNT;
	n = net_offload_egress(m, capa, gso, out, max, &why);
	if (F.verbose)
		fprintf(stderr, "egress capa 0x%llx%s%s max %u: %d\n", (unsigned long long)capa,
			is_egress ? " (the guest)" : "", gso == &F.gso_tight ? " tight" : "", max, n);
	if (n < 0) {
		if (why >= NET_DROP_COUNT)
			fuzz_fail("egress failed with %d and no drop reason", n);
		check_pools_empty("after a drop at the egress");
		return 0;
	}
	if (n == 0 || (unsigned int)n > max)
		fuzz_fail("egress made %d packets of at most %u", n, max);
	for (int i = 0; i < n; i++)
		if (!out[i])
			fuzz_fail("packet %d of %d is NULL", i, n);
	check_refs(out, n, "after the egress");
	segmented = (in_f & RTE_MBUF_F_TX_TCP_SEG) && !(out[0]->ol_flags & RTE_MBUF_F_TX_TCP_SEG);
	if (segmented && n > NET_GSO_MAX_SEGS)
		fuzz_fail("%d segments", n);
	if (!segmented && n != 1)
		fuzz_fail("%d packets out of one not segmented", n);

	for (int i = 0; i < n; i++) {
		struct rte_mbuf *o = out[i];
		uint64_t of = o->ol_flags;
		bool v4 = of & RTE_MBUF_F_TX_IPV4;
		uint8_t *p;

		check_chain(o, "packet out", i);
		p = (uint8_t *)bytes_of(o, flat);
		if (!capa && (of & TX_REQ))
			fuzz_fail("packet %d to an egress without offloads asks for 0x%llx", i,
			          (unsigned long long)(of & TX_REQ));
		if (((of & RTE_MBUF_F_TX_TCP_SEG) && !(capa & (v4 ? NET_CAN_TSO4 : NET_CAN_TSO6))) ||
		    ((of & RTE_MBUF_F_TX_L4_MASK) && !(of & RTE_MBUF_F_TX_TCP_SEG) &&
		     !(capa & NET_CAN_CSUM)) ||
		    ((of & RTE_MBUF_F_TX_IP_CKSUM) && !(capa & NET_CAN_IPCSUM)))
			fuzz_fail("packet %d asks for 0x%llx of an egress that can do 0x%llx", i,
			          (unsigned long long)(of & TX_REQ), (unsigned long long)capa);
		if (segmented && (o->l2_len != l2 || o->l3_len != l3 || o->l4_len != l4len))
			fuzz_fail("segment %d: header lengths %u/%u/%u, not %u/%u/%u", i, o->l2_len,
			          o->l3_len, o->l4_len, l2, l3, l4len);
		if ((in_f & RTE_MBUF_F_TX_L4_MASK) && !(of & RTE_MBUF_F_TX_L4_MASK)) {
			if ((of & RTE_MBUF_F_RX_L4_CKSUM_MASK) != RTE_MBUF_F_RX_L4_CKSUM_GOOD)
				fuzz_fail("packet %d: checksum made in software, not marked good",
				          i);
			verify_l4(o, p, (in_f & RTE_MBUF_F_TX_L4_MASK) == RTE_MBUF_F_TX_TCP_CKSUM, i);
		}
		if ((in_f & RTE_MBUF_F_TX_IP_CKSUM) && !(of & RTE_MBUF_F_TX_IP_CKSUM))
			verify_ip_csum(o, p, i);
		check_to_guest(o, p, rx_capa, is_egress, i);
		if (segmented) {
			check_segment(o, p, i, n, hdrs, done, mss, in_f & RTE_MBUF_F_TX_IPV4);
			done += o->pkt_len - hdrs;
			continue;
		}
		/* Not segmented: as accepted, but for the checksums made here. */
		if (o->pkt_len != orig_len)
			fuzz_fail("%u bytes became %u", orig_len, o->pkt_len);
		if ((in_f & RTE_MBUF_F_TX_L4_MASK) && !(of & RTE_MBUF_F_TX_L4_MASK)) {
			uint32_t field = (uint32_t)l2 + l3 +
				((in_f & RTE_MBUF_F_TX_L4_MASK) == RTE_MBUF_F_TX_TCP_CKSUM ? TCP_CSUM : UDP_CSUM);

			memcpy(p + field, orig + field, 2);
		}
		if ((in_f & RTE_MBUF_F_TX_IP_CKSUM) && !(of & RTE_MBUF_F_TX_IP_CKSUM))
			memcpy(p + l2 + offsetof(struct rte_ipv4_hdr, hdr_checksum),
			       orig + l2 + offsetof(struct rte_ipv4_hdr, hdr_checksum), 2);
		if (memcmp(p, orig, orig_len))
			fuzz_fail("packet changed at the egress beyond its checksums");
	}
	if (segmented && hdrs + done != orig_len)
		fuzz_fail("segments carry %u bytes of payload of %u", done, orig_len - hdrs);

	for (int i = 0; i < n; i++)
		rte_pktmbuf_free(out[i]);
	check_pools_empty("after the packets were sent");
	return 0;
}
