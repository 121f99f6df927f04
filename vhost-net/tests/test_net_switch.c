// SPDX-License-Identifier: MIT
/*
 * Unit tests of the MAC learning table and the switch's decision
 * (vhost-net/switch.c): learning, lookup, aging, moves between ports,
 * group addresses, flooding and filtering, a full bucket, flushing a port,
 * and workers learning and looking up at once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "switch.h"

#define AGING 300

static const uint8_t MAC_A[6] = { 0x02, 0, 0, 0, 0, 0x0a };
static const uint8_t MAC_B[6] = { 0x02, 0, 0, 0, 0, 0x0b };
static const uint8_t BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t MCAST[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };

static void mac_n(uint8_t mac[6], uint32_t n)
{
	mac[0] = 0x02;
	mac[1] = 0x42;
	mac[2] = (uint8_t)(n >> 24);
	mac[3] = (uint8_t)(n >> 16);
	mac[4] = (uint8_t)(n >> 8);
	mac[5] = (uint8_t)n;
}

static void frame(uint8_t f[14], const uint8_t dst[6], const uint8_t src[6])
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08;
	f[13] = 0x00;
}

static int setup(void **state)
{
	*state = net_mac_table_create(8, AGING);
	assert_non_null(*state);
	return 0;
}

static int teardown(void **state)
{
	net_mac_table_destroy(*state);
	return 0;
}

static void test_create_bad_order(void **state)
{
	(void)state;
	assert_null(net_mac_table_create(0, AGING));
	assert_null(net_mac_table_create(25, AGING));
	net_mac_table_destroy(NULL);
}

static void test_learn_lookup(void **state)
{
	struct net_mac_table *t = *state;

	assert_int_equal(net_mac_lookup(t, MAC_A, 100), NET_MAC_NO_PORT);
	net_mac_learn(t, MAC_A, 3, 100);
	net_mac_learn(t, MAC_B, 7, 100);
	assert_int_equal(net_mac_lookup(t, MAC_A, 100), 3);
	assert_int_equal(net_mac_lookup(t, MAC_B, 101), 7);
	assert_int_equal(net_mac_count(t, 100), 2);
	/* Learning again refreshes, does not duplicate. */
	net_mac_learn(t, MAC_A, 3, 150);
	assert_int_equal(net_mac_count(t, 150), 2);
}

static void test_aging(void **state)
{
	struct net_mac_table *t = *state;

	net_mac_learn(t, MAC_A, 1, 1000);
	assert_int_equal(net_mac_lookup(t, MAC_A, 1000 + AGING), 1);
	assert_int_equal(net_mac_lookup(t, MAC_A, 1000 + AGING + 1), NET_MAC_NO_PORT);
	assert_int_equal(net_mac_count(t, 1000 + AGING + 1), 0);
	/* Traffic refreshes an entry before it ages out. */
	net_mac_learn(t, MAC_B, 2, 1000);
	net_mac_learn(t, MAC_B, 2, 1200);
	assert_int_equal(net_mac_lookup(t, MAC_B, 1200 + AGING), 2);
	/* The clock wraps: ages are differences. */
	net_mac_learn(t, MAC_A, 4, UINT32_MAX - 10);
	assert_int_equal(net_mac_lookup(t, MAC_A, 20), 4);
}

static void test_move(void **state)
{
	struct net_mac_table *t = *state;

	net_mac_learn(t, MAC_A, 1, 10);
	net_mac_learn(t, MAC_A, 2, 11);
	assert_int_equal(net_mac_lookup(t, MAC_A, 11), 2);
	assert_int_equal(net_mac_count(t, 11), 1);
}

static void test_group_source_ignored(void **state)
{
	struct net_mac_table *t = *state;

	net_mac_learn(t, BCAST, 1, 10);
	net_mac_learn(t, MCAST, 1, 10);
	assert_int_equal(net_mac_count(t, 10), 0);
	assert_int_equal(net_mac_lookup(t, BCAST, 10), NET_MAC_NO_PORT);
}

static void test_decide(void **state)
{
	struct net_mac_table *t = *state;
	uint8_t f[14];
	uint16_t out = 0xffff;

	/* Unknown destination: flood, and the source is learned. */
	frame(f, MAC_B, MAC_A);
	assert_int_equal(net_switch_decide(t, f, 1, 5, &out), NET_SWITCH_FLOOD);
	assert_int_equal(net_mac_lookup(t, MAC_A, 5), 1);
	/* The answer goes straight back. */
	frame(f, MAC_A, MAC_B);
	assert_int_equal(net_switch_decide(t, f, 2, 5, &out), NET_SWITCH_UNICAST);
	assert_int_equal(out, 1);
	frame(f, MAC_B, MAC_A);
	assert_int_equal(net_switch_decide(t, f, 1, 5, &out), NET_SWITCH_UNICAST);
	assert_int_equal(out, 2);
	/* Broadcast and multicast are always flooded. */
	frame(f, BCAST, MAC_A);
	assert_int_equal(net_switch_decide(t, f, 1, 5, &out), NET_SWITCH_FLOOD);
	frame(f, MCAST, MAC_A);
	assert_int_equal(net_switch_decide(t, f, 1, 5, &out), NET_SWITCH_FLOOD);
	/* A destination behind the ingress port is filtered. */
	frame(f, MAC_A, MAC_B);
	net_mac_learn(t, MAC_A, 2, 5);
	assert_int_equal(net_switch_decide(t, f, 2, 5, &out), NET_SWITCH_FILTER);
	/* After aging, flooded again. */
	frame(f, MAC_B, MAC_A);
	assert_int_equal(net_switch_decide(t, f, 1, 5 + AGING + 1, &out), NET_SWITCH_FLOOD);
}

static void test_flush_port(void **state)
{
	struct net_mac_table *t = *state;
	uint8_t mac[6];

	for (uint32_t i = 0; i < 100; i++) {
		mac_n(mac, i);
		net_mac_learn(t, mac, (uint16_t)(i % 2), 1);
	}
	assert_int_equal(net_mac_count(t, 1), 100);
	net_mac_flush_port(t, 1);
	assert_int_equal(net_mac_count(t, 1), 50);
	for (uint32_t i = 0; i < 100; i++) {
		mac_n(mac, i);
		assert_int_equal(net_mac_lookup(t, mac, 1), i % 2 ? NET_MAC_NO_PORT : 0);
	}
}

/* A full bucket replaces its oldest entry; the table never holds more than it can. */
static void test_full_bucket(void **state)
{
	struct net_mac_table *t = net_mac_table_create(1, AGING);   /* 2 buckets of 4 */
	uint8_t mac[6];

	(void)state;
	assert_non_null(t);
	for (uint32_t i = 0; i < 64; i++) {
		mac_n(mac, i);
		net_mac_learn(t, mac, 1, 100 + i);
		/* The newest address is always there. */
		assert_int_equal(net_mac_lookup(t, mac, 100 + i), 1);
		assert_true(net_mac_count(t, 100 + i) <= 2 * NET_MAC_WAYS);
	}
	assert_int_equal(net_mac_count(t, 200), 2 * NET_MAC_WAYS);
	net_mac_table_destroy(t);
}

/* Port numbers keep their 15 bits. */
static void test_port_range(void **state)
{
	struct net_mac_table *t = *state;

	net_mac_learn(t, MAC_A, 0x7fff, 1);
	assert_int_equal(net_mac_lookup(t, MAC_A, 1), 0x7fff);
	net_mac_learn(t, MAC_A, 0, 1);
	assert_int_equal(net_mac_lookup(t, MAC_A, 1), 0);
}

struct racer {
	struct net_mac_table *t;
	uint16_t port;
	int bad;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	uint8_t mac[6];

	for (uint32_t round = 0; round < 2000; round++) {
		for (uint32_t i = 0; i < 64; i++) {
			int p;

			mac_n(mac, i);
			net_mac_learn(r->t, mac, r->port, round);
			p = net_mac_lookup(r->t, mac, round);
			/* Either worker's port, or flooded: never anything else. */
			if (p != NET_MAC_NO_PORT && p != 1 && p != 2)
				r->bad++;
		}
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	struct racer r[2] = { { *state, 1, 0 }, { *state, 2, 0 } };
	pthread_t th[2];

	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(r[0].bad + r[1].bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_bad_order),
		cmocka_unit_test_setup_teardown(test_learn_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aging, setup, teardown),
		cmocka_unit_test_setup_teardown(test_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_source_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decide, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_port, setup, teardown),
		cmocka_unit_test(test_full_bucket),
		cmocka_unit_test_setup_teardown(test_port_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
