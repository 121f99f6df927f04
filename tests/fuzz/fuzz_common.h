/* SPDX-License-Identifier: MIT */
/* Helpers shared by the fuzz harnesses (fuzz_common.c). */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

/* Live file mappings made through mmap/mmap64 and not yet unmapped. */
extern unsigned int nmaps;

/* Report a broken invariant through the sanitizers, then crash. */
__attribute__((noreturn, format(printf, 1, 2)))
void fuzz_fail(const char *fmt, ...);

#endif
