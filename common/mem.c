// SPDX-License-Identifier: MIT
/*
 * Guest memory regions: mapping what the front-end shares and
 * translating guest physical and front-end virtual addresses.
 *
 * Regions are kept sorted by gpa so translation is a binary search.  All
 * range checks are written as "len <= size - off" after "off < size" so
 * that no sum can wrap (SECURITY.md A.8, B.11).
 */
#include <errno.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "vu_mem.h"
#include "vu_util.h"

struct vu_mem *vu_mem_create(void)
{
	return calloc(1, sizeof(struct vu_mem));
}

static void region_release(struct vu_mem_region *r)
{
	if (r->map_base)
		munmap(r->map_base, r->map_len);
	r->map_base = NULL;
	vu_close_fd(&r->fd);
}

void vu_mem_destroy(struct vu_mem *mem)
{
	if (!mem)
		return;
	for (unsigned int i = 0; i < mem->nregions; i++)
		region_release(&mem->regions[i]);
	free(mem);
}

/* True if [a, a + alen) and [b, b + blen) intersect; lengths are > 0. */
static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b ? b - a < alen : a - b < blen;
}

static bool range_wraps(uint64_t start, uint64_t len)
{
	return len - 1 > UINT64_MAX - start;
}

static int check_desc(const struct vu_mem *mem, const struct vu_mem_region_desc *d)
{
	if (d->size == 0) {
		vu_warn("memory region at gpa 0x%llx has size 0", (unsigned long long)d->guest_addr);
		return -EINVAL;
	}
	if (range_wraps(d->guest_addr, d->size) || range_wraps(d->user_addr, d->size) ||
	    range_wraps(d->mmap_offset, d->size)) {
		vu_warn("memory region gpa 0x%llx uva 0x%llx offset 0x%llx size 0x%llx wraps around",
			(unsigned long long)d->guest_addr, (unsigned long long)d->user_addr,
			(unsigned long long)d->mmap_offset, (unsigned long long)d->size);
		return -EINVAL;
	}
	if (mem->nregions >= VU_MEM_MAX_SLOTS) {
		vu_warn("memory table full (%u regions)", VU_MEM_MAX_SLOTS);
		return -ENOSPC;
	}
	for (unsigned int i = 0; i < mem->nregions; i++) {
		const struct vu_mem_region *r = &mem->regions[i];

		if (ranges_overlap(r->gpa, r->size, d->guest_addr, d->size) ||
		    ranges_overlap(r->uva, r->size, d->user_addr, d->size)) {
			vu_warn("memory region gpa 0x%llx size 0x%llx overlaps region gpa 0x%llx size 0x%llx",
				(unsigned long long)d->guest_addr, (unsigned long long)d->size,
				(unsigned long long)r->gpa, (unsigned long long)r->size);
			return -EINVAL;
		}
	}
	return 0;
}

int vu_mem_add(struct vu_mem *mem, const struct vu_mem_region_desc *desc, int fd)
{
	struct vu_mem_region r = { .fd = fd };
	uint64_t align = (uint64_t)sysconf(_SC_PAGESIZE), map_len;
	struct statfs sfs;
	struct stat st;
	unsigned int pos;
	void *base;
	int ret;

	ret = check_desc(mem, desc);
	if (ret)
		goto err_close;
	if (fd < 0 || fstat(fd, &st) < 0) {
		vu_warn("memory region at gpa 0x%llx: bad fd", (unsigned long long)desc->guest_addr);
		ret = -EBADF;
		goto err_close;
	}
	if (fstatfs(fd, &sfs) == 0 && sfs.f_type == HUGETLBFS_MAGIC) {
		r.hugepage = true;
		align = (uint64_t)sfs.f_bsize;
	}
	/* Without the sum: offset + size may be exactly 2^64 (wraps to 0). */
	if (S_ISREG(st.st_mode) && (desc->mmap_offset > (uint64_t)st.st_size ||
				    desc->size > (uint64_t)st.st_size - desc->mmap_offset)) {
		vu_warn("memory region at gpa 0x%llx: offset 0x%llx + size 0x%llx beyond the file's 0x%llx bytes",
			(unsigned long long)desc->guest_addr, (unsigned long long)desc->mmap_offset,
			(unsigned long long)desc->size, (unsigned long long)st.st_size);
		ret = -EINVAL;
		goto err_close;
	}
	/* Map from the aligned-down offset; no MAP_POPULATE: a sparse guest
	 * must cost nothing until its pages are used (DESIGN.md). */
	uint64_t map_off = desc->mmap_offset & ~(align - 1);
	map_len = VU_ALIGN_UP(desc->mmap_offset - map_off + desc->size, align);
	if (map_len < desc->size || map_len > SIZE_MAX) {
		ret = -EINVAL;
		goto err_close;
	}
	base = mmap(NULL, (size_t)map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		    fd, (off_t)map_off);
	if (base == MAP_FAILED) {
		ret = -errno;
		vu_warn("memory region at gpa 0x%llx: mmap of 0x%llx bytes failed: %s",
			(unsigned long long)desc->guest_addr, (unsigned long long)map_len,
			strerror(errno));
		goto err_close;
	}
	r.gpa = desc->guest_addr;
	r.size = desc->size;
	r.uva = desc->user_addr;
	r.mmap_offset = desc->mmap_offset;
	r.map_base = base;
	r.map_len = (size_t)map_len;
	r.host = (uint8_t *)base + (desc->mmap_offset - map_off);
	r.refs = 1;

	for (pos = 0; pos < mem->nregions && mem->regions[pos].gpa < r.gpa; pos++)
		;
	memmove(&mem->regions[pos + 1], &mem->regions[pos],
		(mem->nregions - pos) * sizeof(mem->regions[0]));
	mem->regions[pos] = r;
	mem->nregions++;
	return 0;

err_close:
	if (fd >= 0)
		close(fd);
	return ret;
}

int vu_mem_add_ref(struct vu_mem *mem, const struct vu_mem_region_desc *desc, int fd)
{
	for (unsigned int i = 0; i < mem->nregions; i++) {
		struct vu_mem_region *r = &mem->regions[i];

		if (r->gpa == desc->guest_addr && r->size == desc->size && r->uva == desc->user_addr &&
		    r->mmap_offset == desc->mmap_offset && r->refs < UINT_MAX) {
			r->refs++;
			if (fd >= 0)
				close(fd);
			return 0;
		}
	}
	return vu_mem_add(mem, desc, fd);
}

int vu_mem_remove(struct vu_mem *mem, const struct vu_mem_region_desc *desc)
{
	for (unsigned int i = 0; i < mem->nregions; i++) {
		struct vu_mem_region *r = &mem->regions[i];

		if (r->gpa != desc->guest_addr || r->size != desc->size || r->uva != desc->user_addr)
			continue;
		if (r->refs > 1) {
			r->refs--;
			return 0;
		}
		region_release(r);
		memmove(r, r + 1, (mem->nregions - i - 1) * sizeof(*r));
		mem->nregions--;
		return 0;
	}
	vu_warn("no memory region at gpa 0x%llx size 0x%llx to remove",
		(unsigned long long)desc->guest_addr, (unsigned long long)desc->size);
	return -ENOENT;
}

const struct vu_mem_region *vu_mem_find_gpa(const struct vu_mem *mem, uint64_t gpa)
{
	unsigned int lo = 0, hi = mem->nregions;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		const struct vu_mem_region *r = &mem->regions[mid];

		if (gpa < r->gpa)
			hi = mid;
		else if (gpa - r->gpa >= r->size)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

void *vu_mem_gpa_to_host(const struct vu_mem *mem, uint64_t gpa, uint64_t len)
{
	const struct vu_mem_region *r = vu_mem_find_gpa(mem, gpa);
	uint64_t off;

	if (!r)
		return NULL;
	off = gpa - r->gpa;
	if (len > r->size - off)
		return NULL;
	return r->host + off;
}

static const struct vu_mem_region *find_uva(const struct vu_mem *mem, uint64_t uva, uint64_t len)
{
	if (len == 0)
		len = 1;
	for (unsigned int i = 0; i < mem->nregions; i++) {
		const struct vu_mem_region *r = &mem->regions[i];

		if (uva >= r->uva && uva - r->uva < r->size && len <= r->size - (uva - r->uva))
			return r;
	}
	return NULL;
}

void *vu_mem_uva_to_host(const struct vu_mem *mem, uint64_t uva, uint64_t len)
{
	const struct vu_mem_region *r = find_uva(mem, uva, len);

	return r ? r->host + (uva - r->uva) : NULL;
}

int vu_mem_uva_to_gpa(const struct vu_mem *mem, uint64_t uva, uint64_t len, uint64_t *gpa)
{
	const struct vu_mem_region *r = find_uva(mem, uva, len);

	if (!r)
		return -EFAULT;
	*gpa = r->gpa + (uva - r->uva);
	return 0;
}

int vu_mem_map_iov(const struct vu_mem *mem, uint64_t gpa, uint64_t len,
		   struct iovec *iov, uint64_t *gpas, unsigned int *n, unsigned int max)
{
	while (len) {
		const struct vu_mem_region *r = vu_mem_find_gpa(mem, gpa);
		uint64_t off, chunk;

		if (vu_unlikely(!r))
			return -EFAULT;
		if (vu_unlikely(*n >= max))
			return -ENOBUFS;
		off = gpa - r->gpa;
		chunk = r->size - off;
		if (chunk > len)
			chunk = len;
		iov[*n].iov_base = r->host + off;
		iov[*n].iov_len = (size_t)chunk;
		if (gpas)
			gpas[*n] = gpa;
		(*n)++;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}
