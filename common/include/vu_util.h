/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by every module of the vhost-user backend library:
 * logging, branch hints, and the named memory-ordering helpers used on
 * memory shared with the guest.  Nothing here allocates or blocks.
 */
#ifndef VU_UTIL_H
#define VU_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define vu_likely(x)   __builtin_expect(!!(x), 1)
#define vu_unlikely(x) __builtin_expect(!!(x), 0)

#define VU_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define VU_ALIGN_UP(x, a) (((x) + (a) - 1) & ~((__typeof__(x))(a) - 1))

enum vu_log_level {
	VU_LOG_ERR,
	VU_LOG_WARN,
	VU_LOG_INFO,
	VU_LOG_DEBUG,
};

/*
 * Log a line (a newline is added).  Thread-safe: one write(2) per line to
 * stderr, prefixed with the level.  Messages above the level set with
 * vu_log_set_level() are dropped.
 */
void vu_log_msg(enum vu_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void vu_log_set_level(enum vu_log_level level);
enum vu_log_level vu_log_get_level(void);

#define vu_err(...)  vu_log_msg(VU_LOG_ERR, __VA_ARGS__)
#define vu_warn(...) vu_log_msg(VU_LOG_WARN, __VA_ARGS__)
#define vu_info(...) vu_log_msg(VU_LOG_INFO, __VA_ARGS__)

/* Data-path debug logging compiles out unless built with -DVU_DATAPATH_DEBUG. */
#ifdef VU_DATAPATH_DEBUG
#define vu_dp_debug(...) vu_log_msg(VU_LOG_DEBUG, __VA_ARGS__)
#else
#define vu_dp_debug(...) do { } while (0)
#endif

/*
 * Accessors for 16-bit ring fields in guest-shared memory: a single
 * 16-bit access each (SECURITY.md C.24), never torn, never merged.
 */
static inline uint16_t vu_load_acquire16(const uint16_t *gp)
{
	return __atomic_load_n(gp, __ATOMIC_ACQUIRE);
}

static inline uint16_t vu_load_relaxed16(const uint16_t *gp)
{
	return __atomic_load_n(gp, __ATOMIC_RELAXED);
}

static inline void vu_store_release16(uint16_t *gp, uint16_t v)
{
	__atomic_store_n(gp, v, __ATOMIC_RELEASE);
}

static inline void vu_store_relaxed16(uint16_t *gp, uint16_t v)
{
	__atomic_store_n(gp, v, __ATOMIC_RELAXED);
}

/* Orders earlier loads before later loads (pairs with the guest's wmb). */
static inline void vu_smp_rmb(void)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
}

/* Orders earlier stores before later stores (pairs with the guest's rmb). */
static inline void vu_smp_wmb(void)
{
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

/* Full barrier: earlier stores visible before later loads (C.23). */
static inline void vu_smp_mb(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* Monotonic clock in nanoseconds. */
uint64_t vu_now_ns(void);

/* Close *fd if it is open and set it to -1. */
void vu_close_fd(int *fd);

#endif
