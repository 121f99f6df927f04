// SPDX-License-Identifier: MIT
/*
 * The device under test of the library's harnesses (see fuzz_dev.h): its
 * set-up, the chain check, and the leak check per input, which counts the
 * open memfds and eventfds and the live file mappings (through
 * -Wl,--wrap=mmap,mmap64,munmap).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "fuzz_dev.h"
#include "vu_util.h"

/* ---- file mappings, counted through -Wl,--wrap=mmap,mmap64,munmap -------- */

void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__real_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);
int __wrap_munmap(void *addr, size_t len);

/* Live file mappings made through mmap/mmap64 and not yet unmapped. */
#define MAX_MAPS 1024
static void *maps[MAX_MAPS];
static unsigned int nmaps;

static void map_track(void *p, int fd)
{
	if (p == MAP_FAILED || fd < 0)
		return;
	if (nmaps == MAX_MAPS)
		fuzz_fail("%d live file mappings: a leak", MAX_MAPS);
	maps[nmaps++] = p;
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *p = __real_mmap(addr, len, prot, flags, fd, off);

	map_track(p, fd);
	return p;
}

void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *p = __real_mmap64(addr, len, prot, flags, fd, off);

	map_track(p, fd);
	return p;
}

int __wrap_munmap(void *addr, size_t len)
{
	int ret = __real_munmap(addr, len);

	for (unsigned int i = 0; ret == 0 && i < nmaps; i++) {
		if (maps[i] == addr) {
			maps[i] = maps[--nmaps];
			break;
		}
	}
	return ret;
}

/* ---- open descriptors ------------------------------------------------------ */

/*
 * Open memfds and eventfds: the kinds of descriptor the front-end hands
 * over and the library creates.  Others are left out: libFuzzer and the
 * sanitizers open pipes to a symbolizer at any time.  With list (on a
 * leak), every open fd is printed.
 */
static int count_fds(bool list)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		fuzz_fail("cannot read /proc/self/fd");
	while ((e = readdir(d))) {
		char path[300], target[256];
		ssize_t len;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		target[len > 0 ? len : 0] = '\0';
		if (list)
			fprintf(stderr, "  fd %s -> %s\n", e->d_name, target);
		if (!strncmp(target, "/memfd:", 7) || !strcmp(target, "anon_inode:[eventfd]"))
			n++;
	}
	closedir(d);
	return n;
}

int fuzz_memfd(const char *name, size_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		abort();
	return fd;
}

/* ---- the device -------------------------------------------------------------- */

void fuzz_dev_init(struct fuzz_dev *f, struct vu_dev_config *dc, size_t guest_size)
{
	struct vu_poller_config pc = { .name = "fuzz", .mode = VU_POLL_NEVER, .cpu = -1 };

	f->verbose = getenv("VU_FUZZ_VERBOSE");
	vu_log_set_level(f->verbose ? VU_LOG_DEBUG : VU_LOG_ERR);
	f->poller = vu_poller_create(&pc);
	dc->pollers = &f->poller;
	dc->npollers = 1;
	f->dev = vu_dev_create(dc);
	f->guest_size = guest_size;
	f->guest_fd = fuzz_memfd("guest", guest_size);
	f->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->gmem = mmap(NULL, guest_size, PROT_READ | PROT_WRITE, MAP_SHARED, f->guest_fd, 0);
	if (!f->poller || !f->dev || f->event_fd < 0 || f->gmem == MAP_FAILED)
		abort();
	f->base_fds = count_fds(false);
	f->base_maps = nmaps;
}

void fuzz_dev_check_leaks(const struct fuzz_dev *f)
{
	int nfds = count_fds(false);

	if (nfds == f->base_fds && nmaps == f->base_maps)
		return;
	if (f->verbose)
		count_fds(true);
	fuzz_fail("leak after disconnect: %d fds (expected %d), %u file mappings (expected %u)",
		  nfds, f->base_fds, nmaps, f->base_maps);
}

void fuzz_check_chain(const struct vu_vq *vq, const struct vu_chain *c)
{
	const struct vu_mem *mem = vq->dev->mem;
	uint64_t out = 0, in = 0;

	if ((unsigned int)c->nout + c->nin > c->max)
		fuzz_fail("chain of %u+%u iovecs in an array of %u", c->nout, c->nin, c->max);
	if (c->id >= vq->size)
		fuzz_fail("chain id %u in a ring of %u", c->id, vq->size);
	for (unsigned int i = 0; i < (unsigned int)c->nout + c->nin; i++) {
		const uint8_t *b = c->iov[i].iov_base;
		size_t len = c->iov[i].iov_len;
		bool inside = false;

		for (unsigned int r = 0; r < mem->nregions && !inside; r++) {
			const struct vu_mem_region *reg = &mem->regions[r];

			inside = b >= reg->host && len <= reg->size &&
				 (uint64_t)(b - reg->host) <= reg->size - len;
		}
		if (!inside || len == 0)
			fuzz_fail("iovec %u (%zu bytes) not inside one region", i, len);
		/* The whole buffer is accessible: touch both ends. */
		(void)*(volatile const uint8_t *)b;
		(void)*(volatile const uint8_t *)(b + len - 1);
		if (i < c->nout)
			out += len;
		else
			in += len;
	}
	if (out != c->out_len || in != c->in_len)
		fuzz_fail("chain lengths %u+%u, iovecs sum to %llu+%llu", c->out_len, c->in_len,
			  (unsigned long long)out, (unsigned long long)in);
}
