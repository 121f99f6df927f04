/* SPDX-License-Identifier: MIT */
/*
 * NUMA placement through libnuma: which node guest memory lives on, and
 * allocation of per-queue structures on that node.  Without NUMA support
 * (libnuma reports it unavailable) everything degrades to node 0 and
 * plain allocation.
 */
#ifndef VU_NUMA_H
#define VU_NUMA_H

#include <stddef.h>

/* Node of the page at addr (it must be mapped), or -1 if unknown. */
int vu_numa_node_of(const void *addr);

/* Zeroed memory on node (any node if node < 0).  NULL on failure. */
void *vu_numa_zalloc(size_t size, int node);
/* Free memory from vu_numa_zalloc (same size).  Accepts NULL. */
void vu_numa_free(void *p, size_t size);

/* Node of cpu, or -1. */
int vu_numa_node_of_cpu(int cpu);

#endif
