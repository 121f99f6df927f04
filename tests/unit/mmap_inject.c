// SPDX-License-Identifier: MIT
/* mmap failure injection (see mmap_inject.h). */
#include <errno.h>
#include <sys/mman.h>
#include <sys/types.h>

#include "mmap_inject.h"

bool mmap_fail;
unsigned int mmap_calls;

/* The ABI's off_t of mmap is a long (glibc, Linux). */
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, long off);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, long off);
void *__real_mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off);
void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off);

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, long off)
{
	mmap_calls++;
	if (mmap_fail) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return __real_mmap(addr, len, prot, flags, fd, off);
}

void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
	mmap_calls++;
	if (mmap_fail) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return __real_mmap64(addr, len, prot, flags, fd, off);
}
