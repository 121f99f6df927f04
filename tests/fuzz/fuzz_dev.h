/* SPDX-License-Identifier: MIT */
/*
 * The device under test of the library's harnesses (fuzz_msg, fuzz_ring):
 * one vu_dev on one poller that never runs, the front-end's guest memory
 * file, and the checks every input ends with (fuzz_dev.c).  A harness
 * linking fuzz_dev.c links with -Wl,--wrap=mmap,mmap64,munmap.
 */
#ifndef FUZZ_DEV_H
#define FUZZ_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vu_dev.h"
#include "vu_poller.h"

struct fuzz_dev {
	struct vu_poller *poller;
	struct vu_dev *dev;
	int guest_fd;           /* the guest memory file, guest_size bytes */
	int event_fd;           /* an eventfd to hand over as kick or call */
	uint8_t *gmem;          /* the guest's view of guest_fd */
	size_t guest_size;
	bool verbose;           /* VU_FUZZ_VERBOSE in the environment */
	int base_fds;           /* memfds and eventfds open after set-up */
	unsigned int base_maps; /* live file mappings after set-up */
};

/*
 * Set f up once per process: the log level (debug with VU_FUZZ_VERBOSE),
 * a VU_POLL_NEVER poller, the device of *dc (its pollers: that one), a
 * guest memory memfd of guest_size bytes mapped at f->gmem, an eventfd;
 * then the fds and file mappings open now (the harness's own files
 * included) become the ones every input must end with.  Aborts on failure.
 */
void fuzz_dev_init(struct fuzz_dev *f, struct vu_dev_config *dc, size_t guest_size);

/*
 * End of an input, after vu_dev_disconnect(): the process has exactly the
 * fds and file mappings it had after fuzz_dev_init(), or the run fails
 * (listing the open fds first when verbose).
 */
void fuzz_dev_check_leaks(const struct fuzz_dev *f);

/* A memfd of size bytes (close-on-exec); aborts on failure. */
int fuzz_memfd(const char *name, size_t size);

/*
 * A chain vu_vq_pop() gave out on vq: its id is inside the ring, every
 * iovec lies inside one region of the device's table (SECURITY.md B.11)
 * and is readable at both ends, and the lengths add up.  Fails otherwise.
 */
void fuzz_check_chain(const struct vu_vq *vq, const struct vu_chain *c);

#endif
