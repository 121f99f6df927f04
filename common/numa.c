// SPDX-License-Identifier: MIT
/* NUMA placement through libnuma (see vu_numa.h). */
#include <numa.h>
#include <numaif.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vu_numa.h"

int vu_numa_node_of(const void *addr)
{
	int node = -1;
	uintptr_t page = (uintptr_t)addr & ~((uintptr_t)sysconf(_SC_PAGESIZE) - 1);

	if (numa_available() < 0)
		return -1;
	if (get_mempolicy(&node, NULL, 0, (void *)page, MPOL_F_NODE | MPOL_F_ADDR) < 0)
		return -1;
	return node;
}

void *vu_numa_zalloc(size_t size, int node)
{
	void *p;

	if (size == 0)
		return NULL;
	if (numa_available() < 0)
		return calloc(1, size);
	/* Fresh anonymous pages: already zero. */
	p = node < 0 ? numa_alloc_local(size) : numa_alloc_onnode(size, node);
	return p;
}

void vu_numa_free(void *p, size_t size)
{
	if (!p)
		return;
	if (numa_available() < 0)
		free(p);
	else
		numa_free(p, size);
}

int vu_numa_node_of_cpu(int cpu)
{
	if (numa_available() < 0 || cpu < 0)
		return -1;
	return numa_node_of_cpu(cpu);
}
