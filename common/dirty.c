// SPDX-License-Identifier: MIT
/* The dirty-page log for live migration (see vu_dirty.h). */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vu_dirty.h"
#include "vu_util.h"

void vu_dirty_log_release(struct vu_dirty_log *log)
{
	if (log->map)
		munmap(log->map, log->map_len);
	memset(log, 0, sizeof(*log));
}

int vu_dirty_log_set(struct vu_dirty_log *log, const struct vu_log_desc *desc, int fd,
		     uint64_t mem_end)
{
	uint64_t needed = mem_end ? ((mem_end - 1) / VU_LOG_PAGE) / 8 + 1 : 0;
	struct stat st;
	void *map;
	int ret = 0;

	if (desc->mmap_size == 0 || desc->mmap_offset > UINT64_MAX - desc->mmap_size ||
	    desc->mmap_offset + desc->mmap_size > SIZE_MAX) {
		vu_warn("dirty log size 0x%llx offset 0x%llx invalid",
			(unsigned long long)desc->mmap_size, (unsigned long long)desc->mmap_offset);
		ret = -EINVAL;
		goto out;
	}
	if (desc->mmap_size < needed) {
		vu_warn("dirty log of 0x%llx bytes cannot cover guest memory up to 0x%llx (needs 0x%llx)",
			(unsigned long long)desc->mmap_size, (unsigned long long)mem_end,
			(unsigned long long)needed);
		ret = -EINVAL;
		goto out;
	}
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -EBADF;
		goto out;
	}
	if (S_ISREG(st.st_mode) && desc->mmap_offset + desc->mmap_size > (uint64_t)st.st_size) {
		vu_warn("dirty log offset 0x%llx + size 0x%llx beyond the file's 0x%llx bytes",
			(unsigned long long)desc->mmap_offset, (unsigned long long)desc->mmap_size,
			(unsigned long long)st.st_size);
		ret = -EINVAL;
		goto out;
	}
	/* The offset is applied once, here: the log starts at map + offset. */
	map = mmap(NULL, (size_t)(desc->mmap_offset + desc->mmap_size), PROT_READ | PROT_WRITE,
		   MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		ret = -errno;
		vu_warn("dirty log mmap failed: %s", strerror(errno));
		goto out;
	}
	vu_dirty_log_release(log);
	log->map = map;
	log->map_len = (size_t)(desc->mmap_offset + desc->mmap_size);
	log->glog = (uint8_t *)map + desc->mmap_offset;
	log->size = desc->mmap_size;
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

void vu_dirty_log_write(struct vu_dirty_log *log, uint64_t gpa, uint64_t len)
{
	uint64_t page, last;

	if (!log->glog || len == 0)
		return;
	page = gpa / VU_LOG_PAGE;
	last = (len - 1 > UINT64_MAX - gpa ? UINT64_MAX : gpa + len - 1) / VU_LOG_PAGE;
	for (; page <= last; page++) {
		if (page / 8 >= log->size) {
			vu_dp_debug("dirty log: page 0x%llx beyond the log", (unsigned long long)page);
			return;
		}
		/* Atomic: the front-end reads and clears the log concurrently. */
		__atomic_fetch_or(&log->glog[page / 8], (uint8_t)(1u << (page % 8)), __ATOMIC_RELAXED);
	}
}
