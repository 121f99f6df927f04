/* SPDX-License-Identifier: MIT */
/*
 * The dirty-page log for live migration (VHOST_F_LOG_ALL, SET_LOG_BASE):
 * one bit per 4 KiB guest page, set with atomic ORs because the
 * front-end reads and clears it concurrently.
 */
#ifndef VU_DIRTY_H
#define VU_DIRTY_H

#include <stddef.h>
#include <stdint.h>

#include "vu_msg.h"

#define VU_LOG_PAGE 4096ull

struct vu_dirty_log {
	uint8_t *glog;      /* shared bitmap; NULL when no log is set */
	uint64_t size;      /* bytes of bitmap */
	void *map;
	size_t map_len;
};

/*
 * SET_LOG_BASE: map the front-end's log (taking ownership of fd, which is
 * closed once mapped).  Rejects size 0, offset + size overflow, a size
 * beyond the file, and a log smaller than needed to cover `mem_end` (the
 * highest guest address of the memory table).  Replaces any previous log.
 * Returns 0 or -errno.
 */
int vu_dirty_log_set(struct vu_dirty_log *log, const struct vu_log_desc *desc, int fd,
		     uint64_t mem_end);

/* Unmap the log.  Accepts a log never set. */
void vu_dirty_log_release(struct vu_dirty_log *log);

/*
 * Mark [gpa, gpa + len) dirty.  Pages beyond the log are ignored (and
 * reported once); the front-end sized the log for its memory.
 */
void vu_dirty_log_write(struct vu_dirty_log *log, uint64_t gpa, uint64_t len);

#endif
