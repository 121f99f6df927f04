/* SPDX-License-Identifier: MIT */
/*
 * Shared by every fuzz harness (fuzz_common.c), the library's and
 * vhost-net's: how a broken invariant is reported.  The library's device
 * under test is in fuzz_dev.h.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

/* Report a broken invariant through the sanitizers, then crash. */
__attribute__((noreturn, format(printf, 1, 2)))
void fuzz_fail(const char *fmt, ...);

#endif
