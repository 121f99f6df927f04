// SPDX-License-Identifier: MIT
/*
 * Shared by the fuzz harnesses: live file mappings counted through
 * -Wl,--wrap=mmap,mmap64,munmap (a leak check per input), and the way a
 * broken invariant is reported so that libFuzzer keeps the input.
 */
#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sanitizer/common_interface_defs.h>

#include "fuzz_common.h"

/*
 * A broken invariant: say which through the sanitizers' report fd (fd 2
 * may be /dev/null under -close_fd_mask=2), then crash so that libFuzzer
 * saves the input.
 */
void fuzz_fail(const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	__sanitizer_report_error_summary(why);
	__builtin_trap();
}

/* ---- file mappings, counted through -Wl,--wrap=mmap,mmap64,munmap -------- */

void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__real_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);
int __wrap_munmap(void *addr, size_t len);

#define MAX_MAPS 1024
static void *maps[MAX_MAPS];
unsigned int nmaps;

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

