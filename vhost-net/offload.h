/* SPDX-License-Identifier: MIT */
/*
 * Checksum and segmentation offloads between virtio_net_hdr and mbufs.
 *
 * Inside the switch a packet is an mbuf in DPDK's convention: offload
 * requests are RTE_MBUF_F_TX_* flags with l2_len/l3_len/l4_len/tso_segsz,
 * and a TCP/UDP checksum left to the egress holds the pseudo-header sum
 * (as virtio's NEEDS_CSUM does).  A packet whose checksum is known good is
 * marked RTE_MBUF_F_RX_L4_CKSUM_GOOD.
 *
 *  - net_offload_from_guest() checks the header a guest put before a
 *    frame (SECURITY.md 19) and turns it into those flags;
 *  - net_offload_egress() makes a packet fit what its egress port can do,
 *    segmenting (librte_gso for IPv4, a copy for IPv6) and checksumming
 *    in software (librte_net) what the port cannot, so that nothing
 *    reaches a guest or a wire wrong;
 *  - net_offload_to_guest() writes the header for a guest.
 *
 * Pure functions of their arguments: any thread, no global state.
 */
#ifndef NET_OFFLOAD_H
#define NET_OFFLOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/virtio_net.h>

#include <rte_gso.h>
#include <rte_mbuf.h>

#include "net.h"

/* Longest header block (L2 + L3 + L4) a segmented packet may have. */
#define NET_MAX_HDRS 256

/*
 * m holds a frame a guest sent (nothing but data and pkt_len set) and h
 * the header it came with, in guest (little-endian) byte order; features
 * are the virtio features the guest negotiated.  Validates csum_start and
 * csum_offset (inside the packet), the GSO type (negotiated, TCP of the
 * right IP version, NEEDS_CSUM set), gso_size (not below
 * NET_GSO_MIN_SIZE, at most NET_GSO_MAX_SEGS segments) and hdr_len (not
 * beyond the packet).  On success sets m's offload flags and lengths, or
 * completes a checksum at an offset no egress could offload, and returns
 * 0.  Returns -EINVAL with *why set for a header to drop.
 */
int net_offload_from_guest(struct rte_mbuf *m, const struct virtio_net_hdr *h, uint64_t features,
			   enum net_drop *why);

/* Whether h asks for anything (a partial checksum, segmentation): without
 * it net_offload_from_guest() has nothing to check and returns 0. */
static inline bool net_offload_from_guest_needed(const struct virtio_net_hdr *h)
{
	return h->gso_type != VIRTIO_NET_HDR_GSO_NONE || (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM);
}

/*
 * Prepare m for an egress port that can do capa (NET_CAN_*): segments
 * what the port cannot segment (with gso's pools; gso->gso_size is set
 * per packet) and completes checksums it cannot offload.  Puts 1 to max
 * packets into out and returns their count; m itself is either out[0] or
 * freed.  On failure returns -errno with *why set, and m is freed.
 */
int net_offload_egress(struct rte_mbuf *m, uint64_t capa, const struct rte_gso_ctx *gso,
		       struct rte_mbuf **out, unsigned int max, enum net_drop *why);

/* Whether net_offload_egress() has work for m: without it m goes as it is. */
static inline bool net_offload_egress_needed(const struct rte_mbuf *m)
{
	return m->ol_flags & (RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_TCP_SEG);
}

/*
 * The virtio_net_hdr for m on its way to a guest that can do capa (m was
 * prepared by net_offload_egress() for that capa): GSO fields for a TCP
 * segmentation request, NEEDS_CSUM for a checksum left partial,
 * DATA_VALID for a checksum known good.  num_buffers is left 0.
 */
void net_offload_to_guest(const struct rte_mbuf *m, uint64_t capa, struct virtio_net_hdr *h);

/* Whether m's header for a guest can be other than all zero (the flags
 * net_offload_to_guest() looks at). */
static inline bool net_offload_to_guest_needed(const struct rte_mbuf *m)
{
	return m->ol_flags & (RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_RX_L4_CKSUM_MASK);
}

/* The NET_CAN_* a guest offers as an egress, from its negotiated features. */
uint64_t net_offload_guest_capa(uint64_t features);

/*
 * Software checksums (also used by the tests).  net_csum_partial: the
 * 16-bit field at start + off holds a pseudo-header sum; complete it with
 * the sum of the bytes from start to the end of the packet.
 * net_csum_l4: recompute the TCP or UDP checksum of m (l2_len, l3_len and
 * the TX_IPV4/IPV6 and L4 flags say where) from scratch, over the length
 * the IP header gives.  net_csum_ipv4: the IPv4 header checksum.
 * 0 or -EINVAL if the headers are not where they must be.
 */
int net_csum_partial(struct rte_mbuf *m, uint32_t start, uint32_t off);
int net_csum_l4(struct rte_mbuf *m);
int net_csum_ipv4(struct rte_mbuf *m);

/* Write len bytes at offset off of a (possibly chained) mbuf; 0 or -EINVAL. */
int net_mbuf_write(struct rte_mbuf *m, uint32_t off, const void *src, uint32_t len);

/*
 * Append len bytes of src from offset off to the end of dst, chaining
 * new segments from pool as needed.  0, -ENOMEM, -EINVAL.
 */
int net_mbuf_append_from(struct rte_mempool *pool, struct rte_mbuf *dst,
			 const struct rte_mbuf *src, uint32_t off, uint32_t len);

#endif
