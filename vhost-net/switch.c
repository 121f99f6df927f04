// SPDX-License-Identifier: MIT
/*
 * The MAC learning table (see switch.h for the concurrency contract).
 *
 * Entry word: bits 63-16 the address (first byte highest), bits 15-1 the
 * port, bit 0 valid.  `seen` is stored before the word is published
 * (release), so a reader that finds the word finds a time at least as new
 * as the learning; a reader racing a refresh may see the older time and
 * treat the entry as expired, which only costs a flood.
 */
#include <stdlib.h>
#include <string.h>

#include "switch.h"

struct mac_bucket {
	uint64_t key[NET_MAC_WAYS];
	uint32_t seen[NET_MAC_WAYS];
} __attribute__((aligned(64)));

struct net_mac_table {
	uint32_t mask;
	uint32_t aging_s;
	struct mac_bucket *buckets;
};

#define KEY_VALID 1ull
#define KEY_PORT_MASK 0x7fffu

static inline uint64_t mac_bits(const uint8_t mac[6])
{
	uint64_t v = 0;

	for (int i = 0; i < 6; i++)
		v = v << 8 | mac[i];
	return v;
}

static inline uint64_t make_key(uint64_t mac, uint16_t port)
{
	return mac << 16 | (uint64_t)(port & KEY_PORT_MASK) << 1 | KEY_VALID;
}

static inline bool key_is(uint64_t key, uint64_t mac)
{
	return (key & KEY_VALID) && key >> 16 == mac;
}

static inline uint16_t key_port(uint64_t key)
{
	return (uint16_t)((key >> 1) & KEY_PORT_MASK);
}

static inline struct mac_bucket *bucket_of(const struct net_mac_table *t, uint64_t mac)
{
	/* Fibonacci hashing of the 48 bits. */
	uint64_t h = (mac * 0x9e3779b97f4a7c15ull) >> 32;

	return &t->buckets[h & t->mask];
}

static inline bool fresh(const struct net_mac_table *t, uint32_t seen, uint32_t now)
{
	return (uint32_t)(now - seen) <= t->aging_s;
}

struct net_mac_table *net_mac_table_create(unsigned int order, uint32_t aging_s)
{
	struct net_mac_table *t;

	if (order < 1 || order > 24)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->mask = (1u << order) - 1;
	t->aging_s = aging_s;
	t->buckets = aligned_alloc(64, sizeof(struct mac_bucket) << order);
	if (!t->buckets) {
		free(t);
		return NULL;
	}
	memset(t->buckets, 0, sizeof(struct mac_bucket) << order);
	return t;
}

void net_mac_table_destroy(struct net_mac_table *t)
{
	if (!t)
		return;
	free(t->buckets);
	free(t);
}

void net_mac_learn(struct net_mac_table *t, const uint8_t mac[6], uint16_t port, uint32_t now)
{
	uint64_t m = mac_bits(mac), key = make_key(m, port);
	struct mac_bucket *b;
	unsigned int victim = 0;
	uint32_t oldest_age = 0;

	if (net_mac_is_group(mac))
		return;
	b = bucket_of(t, m);
	for (unsigned int i = 0; i < NET_MAC_WAYS; i++) {
		uint64_t k = __atomic_load_n(&b->key[i], __ATOMIC_ACQUIRE);

		if (key_is(k, m)) {
			/* Write only what changed: the line is shared by readers. */
			if (__atomic_load_n(&b->seen[i], __ATOMIC_RELAXED) != now)
				__atomic_store_n(&b->seen[i], now, __ATOMIC_RELAXED);
			if (k != key)
				__atomic_store_n(&b->key[i], key, __ATOMIC_RELEASE);
			return;
		}
	}
	/* Not there: an empty or expired entry, else the oldest one. */
	for (unsigned int i = 0; i < NET_MAC_WAYS; i++) {
		uint64_t k = __atomic_load_n(&b->key[i], __ATOMIC_RELAXED);
		uint32_t age = now - __atomic_load_n(&b->seen[i], __ATOMIC_RELAXED);

		if (!(k & KEY_VALID) || age > t->aging_s) {
			victim = i;
			break;
		}
		if (age >= oldest_age) {
			oldest_age = age;
			victim = i;
		}
	}
	__atomic_store_n(&b->seen[victim], now, __ATOMIC_RELAXED);
	__atomic_store_n(&b->key[victim], key, __ATOMIC_RELEASE);
}

int net_mac_lookup(const struct net_mac_table *t, const uint8_t mac[6], uint32_t now)
{
	uint64_t m = mac_bits(mac);
	const struct mac_bucket *b = bucket_of(t, m);

	for (unsigned int i = 0; i < NET_MAC_WAYS; i++) {
		uint64_t k = __atomic_load_n(&b->key[i], __ATOMIC_ACQUIRE);

		if (key_is(k, m))
			return fresh(t, __atomic_load_n(&b->seen[i], __ATOMIC_RELAXED), now) ?
				key_port(k) : NET_MAC_NO_PORT;
	}
	return NET_MAC_NO_PORT;
}

void net_mac_flush_port(struct net_mac_table *t, uint16_t port)
{
	for (uint32_t bi = 0; bi <= t->mask; bi++) {
		struct mac_bucket *b = &t->buckets[bi];

		for (unsigned int i = 0; i < NET_MAC_WAYS; i++) {
			uint64_t k = __atomic_load_n(&b->key[i], __ATOMIC_ACQUIRE);

			/* A worker may re-learn the entry meanwhile: keep its write. */
			if ((k & KEY_VALID) && key_port(k) == (port & KEY_PORT_MASK))
				__atomic_compare_exchange_n(&b->key[i], &k, 0, false, __ATOMIC_ACQ_REL,
							    __ATOMIC_RELAXED);
		}
	}
}

unsigned int net_mac_count(const struct net_mac_table *t, uint32_t now)
{
	unsigned int n = 0;

	for (uint32_t bi = 0; bi <= t->mask; bi++)
		for (unsigned int i = 0; i < NET_MAC_WAYS; i++)
			if ((__atomic_load_n(&t->buckets[bi].key[i], __ATOMIC_ACQUIRE) & KEY_VALID) &&
			    fresh(t, __atomic_load_n(&t->buckets[bi].seen[i], __ATOMIC_RELAXED), now))
				n++;
	return n;
}

enum net_switch_verdict net_switch_decide(struct net_mac_table *t, const uint8_t *frame,
					  uint16_t in_port, uint32_t now, uint16_t *out)
{
	const uint8_t *dst = frame, *src = frame + 6;
	int port;

	net_mac_learn(t, src, in_port, now);
	if (net_mac_is_group(dst))
		return NET_SWITCH_FLOOD;
	port = net_mac_lookup(t, dst, now);
	if (port == NET_MAC_NO_PORT)
		return NET_SWITCH_FLOOD;
	if ((uint16_t)port == in_port)
		return NET_SWITCH_FILTER;
	*out = (uint16_t)port;
	return NET_SWITCH_UNICAST;
}
