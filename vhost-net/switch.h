/* SPDX-License-Identifier: MIT */
/*
 * The MAC learning table of the switch: which port a unicast address was
 * last seen on, forgotten after an aging time without traffic from it.
 *
 * Lock-free and shared by every worker: an entry is one 64-bit word (the
 * address, the port, a valid bit) written and read atomically, plus the
 * second it was last seen.  Buckets of NET_MAC_WAYS entries; a full bucket
 * replaces its oldest entry.  Two workers learning into the same bucket at
 * once may lose one of the two updates: the address is learned again from
 * its next frame, and until then its frames are flooded, never misdelivered.
 *
 * Time is a caller-supplied count of seconds (any monotonic origin).
 * No dependency on DPDK: unit-testable alone.
 */
#ifndef NET_SWITCH_H
#define NET_SWITCH_H

#include <stdbool.h>
#include <stdint.h>

#define NET_MAC_WAYS 4
#define NET_MAC_NO_PORT (-1)

struct net_mac_table;

/*
 * A table of 2^order buckets (NET_MAC_WAYS entries each) whose entries
 * expire aging_s seconds after they were last refreshed.  NULL on ENOMEM
 * or a bad order (1..24).
 */
struct net_mac_table *net_mac_table_create(unsigned int order, uint32_t aging_s);
void net_mac_table_destroy(struct net_mac_table *t);

/*
 * Any thread: note that mac (6 bytes) was seen as the source of a frame
 * from port at time now.  Multicast and broadcast sources are ignored.
 */
void net_mac_learn(struct net_mac_table *t, const uint8_t mac[6], uint16_t port, uint32_t now);

/* Any thread: the port mac was learned on and has not aged out, or NET_MAC_NO_PORT. */
int net_mac_lookup(const struct net_mac_table *t, const uint8_t mac[6], uint32_t now);

/* Any thread: forget every address learned on port (it went away). */
void net_mac_flush_port(struct net_mac_table *t, uint16_t port);

/* Entries currently valid (not aged out) at time now; for tests and reports. */
unsigned int net_mac_count(const struct net_mac_table *t, uint32_t now);

static inline bool net_mac_is_group(const uint8_t mac[6])
{
	return mac[0] & 1;
}

/* Where the switch sends a frame: one port, every other port, or nowhere. */
enum net_switch_verdict {
	NET_SWITCH_UNICAST,
	NET_SWITCH_FLOOD,
	NET_SWITCH_FILTER,   /* destination is the ingress port itself */
};

/*
 * Learn the frame's source, then decide its destination: group addresses
 * and unknown unicast are flooded, known unicast goes to its port (*out),
 * unless that is the ingress port.  frame holds at least 12 bytes
 * (destination, source).
 */
enum net_switch_verdict net_switch_decide(struct net_mac_table *t, const uint8_t *frame,
					  uint16_t in_port, uint32_t now, uint16_t *out);

#endif
