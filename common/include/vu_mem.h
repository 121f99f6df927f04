/* SPDX-License-Identifier: MIT */
/*
 * Guest memory: the regions the front-end shares (SET_MEM_TABLE,
 * ADD_MEM_REG, REM_MEM_REG), mapped into this process, and the
 * translation of guest physical addresses (GPA) and front-end virtual
 * addresses (UVA) into host pointers.
 *
 * Every translation checks the whole range [addr, addr + len) with
 * overflow-safe arithmetic (SECURITY.md B.11).  A table is replaced as a
 * whole: the control thread builds a new one and publishes it only while
 * the pollers that read the old one are quiesced (DESIGN.md, "Threads and
 * safety"), so readers need no lock.
 */
#ifndef VU_MEM_H
#define VU_MEM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vu_msg.h"

/* Slots offered with CONFIGURE_MEM_SLOTS (QEMU uses at most 509 on x86). */
#define VU_MEM_MAX_SLOTS 509

struct vu_mem_region {
	uint64_t gpa;        /* guest physical start */
	uint64_t size;
	uint64_t uva;        /* front-end virtual start */
	uint64_t mmap_offset;
	uint8_t *host;       /* gpa maps here */
	void *map_base;      /* what mmap returned */
	size_t map_len;
	int fd;              /* kept open for io_uring buffer registration */
	bool hugepage;       /* backed by hugetlbfs: resident, cheap to register */
	unsigned int refs;   /* ADD_MEM_REG of exactly this region, not yet removed */
};

/* A memory table: regions sorted by gpa, non-overlapping. */
struct vu_mem {
	unsigned int nregions;
	struct vu_mem_region regions[VU_MEM_MAX_SLOTS];
};

/* Allocate an empty table (NULL on ENOMEM). */
struct vu_mem *vu_mem_create(void);
/* Unmap every region, close its fd, free the table.  Accepts NULL. */
void vu_mem_destroy(struct vu_mem *mem);

/*
 * Map a region described by the front-end, taking ownership of fd (closed
 * on error too).  Rejects zero size, gpa/uva/offset overflow, an offset
 * beyond the file's size, overlap with an existing region, and a full
 * table.  Returns 0 or -errno, with a log line naming the bad value.
 */
int vu_mem_add(struct vu_mem *mem, const struct vu_mem_region_desc *desc, int fd);

/*
 * ADD_MEM_REG: as vu_mem_add(), except that a region equal to an existing
 * one (gpa, size, uva and offset) takes one more reference to it and
 * closes fd.  QEMU before 8.0 sends the regions once per queue pair of a
 * multiqueue device on the same connection, and removes them as often.
 */
int vu_mem_add_ref(struct vu_mem *mem, const struct vu_mem_region_desc *desc, int fd);

/*
 * Drop a reference to the region that matches desc (gpa, size and uva),
 * removing it with the last one.  Returns 0, or -ENOENT if none matches.
 * The caller must have quiesced readers.
 */
int vu_mem_remove(struct vu_mem *mem, const struct vu_mem_region_desc *desc);

/* Region that holds gpa, or NULL. */
const struct vu_mem_region *vu_mem_find_gpa(const struct vu_mem *mem, uint64_t gpa);

/*
 * Host pointer for [gpa, gpa + len), or NULL unless the whole range lies
 * inside one region.  len 0 is treated as 1 byte.
 */
void *vu_mem_gpa_to_host(const struct vu_mem *mem, uint64_t gpa, uint64_t len);

/* Same for a front-end virtual address (ring addresses are UVAs). */
void *vu_mem_uva_to_host(const struct vu_mem *mem, uint64_t uva, uint64_t len);

/* UVA -> GPA for [uva, uva + len) inside one region; 0 or -EFAULT. */
int vu_mem_uva_to_gpa(const struct vu_mem *mem, uint64_t uva, uint64_t len, uint64_t *gpa);

/*
 * Map [gpa, gpa + len) into iovecs, splitting at region boundaries
 * (SECURITY.md B.11).  Appends at most max - *n entries to iov (and the
 * matching gpa of each entry to gpas when not NULL).  Returns 0, -EFAULT
 * when a byte is outside every region, -ENOBUFS when iov is full.
 */
int vu_mem_map_iov(const struct vu_mem *mem, uint64_t gpa, uint64_t len,
		   struct iovec *iov, uint64_t *gpas, unsigned int *n, unsigned int max);

#endif
