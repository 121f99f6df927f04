/* SPDX-License-Identifier: MIT */
/*
 * DPDK's EAL for the unit tests that need mbufs: anonymous memory, no PCI,
 * no shared files, pinned to the first CPU the test may use, a runtime
 * directory of its own that is removed again.
 */
#ifndef NET_TEST_EAL_FIXTURE_H
#define NET_TEST_EAL_FIXTURE_H

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_mbuf.h>

static char eal_fixture_dir[PATH_MAX];

/* Initialise EAL and create a pool of n mbufs; NULL on failure. */
static inline struct rte_mempool *eal_fixture_init(unsigned int n)
{
	char lcores[64], prefix[64];
	char *argv[] = { "test", "--no-huge", "-m", "128", "--no-pci", "--no-shconf",
			 "--no-telemetry", "--log-level=error", prefix, lcores, NULL };
	cpu_set_t set;
	int cpu = 0;

	sched_getaffinity(0, sizeof(set), &set);
	while (cpu < CPU_SETSIZE - 1 && !CPU_ISSET(cpu, &set))
		cpu++;
	snprintf(lcores, sizeof(lcores), "--lcores=0@%d", cpu);
	snprintf(prefix, sizeof(prefix), "--file-prefix=net-unit-%d", (int)getpid());
	if (rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])) - 1, argv) < 0)
		return NULL;
	snprintf(eal_fixture_dir, sizeof(eal_fixture_dir), "%s", rte_eal_get_runtime_dir());
	return rte_pktmbuf_pool_create("unit", n, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
}

static inline void eal_fixture_fini(struct rte_mempool *mp)
{
	char *slash;

	rte_mempool_free(mp);
	rte_eal_cleanup();
	if (!strstr(eal_fixture_dir, "/net-unit-"))
		return;
	rmdir(eal_fixture_dir);
	slash = strrchr(eal_fixture_dir, '/');
	if (slash) {
		*slash = '\0';
		rmdir(eal_fixture_dir);
	}
}

#endif
