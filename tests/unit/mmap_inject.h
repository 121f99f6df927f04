/* SPDX-License-Identifier: MIT */
/*
 * mmap failure injection for the unit tests linked with
 * -Wl,--wrap=mmap,--wrap=mmap64 (meson builds with 64-bit offsets, so the
 * library calls mmap64).
 */
#ifndef MMAP_INJECT_H
#define MMAP_INJECT_H

#include <stdbool.h>

/* While set, every mmap fails with ENOMEM. */
extern bool mmap_fail;
/* mmap calls seen (failed or not). */
extern unsigned int mmap_calls;

#endif
