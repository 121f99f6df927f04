/* SPDX-License-Identifier: MIT */
/*
 * Pollers: a loop that one thread runs on one pinned core, serving a set
 * of queues (of one or many devices) and poll sources (an I/O engine's
 * completion ring, a NIC's RX queue).
 *
 * Adaptive polling: the poller busy-polls while there is work; after
 * idle_us without any, it asks the guests to kick (enables
 * notifications), checks every ring once more, and sleeps in epoll on the
 * kick eventfds and the sources' fds.  A kick wakes it and it polls again
 * with notifications suppressed.  VU_POLL_ALWAYS never sleeps,
 * VU_POLL_NEVER sleeps as soon as a pass finds nothing.
 *
 * Quiescence: the poller makes its epoch odd while it touches queues and
 * even between passes and while asleep.  vu_poller_quiesce() returns once
 * the poller has been seen outside a pass after the call started, so the
 * control thread may then change whatever the poller read during earlier
 * passes (ring addresses, memory table, the queue list), provided it had
 * first made those queues non-runnable.  Each pass reads the queue list
 * and vq->runnable afresh.
 *
 * The library does not create threads: the daemon calls vu_poller_run()
 * on a thread it created and pinned, or gives vu_poller_thread() to
 * pthread_create(), which pins the thread and runs the loop.
 */
#ifndef VU_POLLER_H
#define VU_POLLER_H

#include <stdbool.h>
#include <stdint.h>

struct vu_vq;
struct vu_poller;

enum vu_poll_mode {
	VU_POLL_ALWAYS,
	VU_POLL_ADAPTIVE,
	VU_POLL_NEVER,
};

#define VU_POLL_DEFAULT_IDLE_US 100
/* Chains one queue may take per pass (SECURITY.md B.21). */
#define VU_POLL_DEFAULT_BUDGET 64

struct vu_poller_config {
	const char *name;
	enum vu_poll_mode mode;
	uint32_t idle_us;       /* adaptive: idle time before sleeping */
	uint32_t budget;        /* chains per queue per pass; 0 = default */
	int cpu;                /* the CPU the caller will pin to, -1 = none */
};

/*
 * A source of work other than queues (an I/O engine's completions, a
 * NIC's RX queue).  Runs on the poller:
 *  - poll() once per pass; returns how much work it did (0 = idle);
 *  - prepare_sleep() (optional) before the poller sleeps: arm whatever
 *    makes fd readable when work arrives, then return true if work is
 *    already there or cannot be waited for, in which case the poller
 *    does not sleep.  Sources without it never keep the poller awake.
 *  - fd (>= 0) is watched level-triggered while the poller sleeps;
 *    poll() must drain it.
 */
struct vu_poll_source {
	unsigned int (*poll)(struct vu_poll_source *src);
	bool (*prepare_sleep)(struct vu_poll_source *src);
	int fd;
};

/* Parse "always", "never", "adaptive" or "adaptive:IDLE_US". 0 or -EINVAL. */
int vu_poll_mode_parse(const char *s, enum vu_poll_mode *mode, uint32_t *idle_us);

/* Create a poller (not running).  NULL with errno set on failure. */
struct vu_poller *vu_poller_create(const struct vu_poller_config *cfg);

/* Free a poller that is not running and serves no queue.  Accepts NULL. */
void vu_poller_destroy(struct vu_poller *p);

/* Run the loop on the calling thread until vu_poller_stop().  Returns 0. */
int vu_poller_run(struct vu_poller *p);

/* Ask the loop to return (any thread). */
void vu_poller_stop(struct vu_poller *p);

/* Wake a sleeping poller so it re-reads its queues (any thread). */
void vu_poller_wake(struct vu_poller *p);

/*
 * Control thread: wait until the poller is outside any pass that began
 * before the call.  Returns at once if the poller is not running.
 */
void vu_poller_quiesce(struct vu_poller *p);

/*
 * Control thread: add or remove a queue.  Both quiesce the poller before
 * returning, so a removed queue is no longer touched.  0 or -errno.
 */
int vu_poller_add_queue(struct vu_poller *p, struct vu_vq *vq);
void vu_poller_remove_queue(struct vu_poller *p, struct vu_vq *vq);

/* Control thread: the kick fd of a queue served here changed. */
int vu_poller_update_kick(struct vu_poller *p, struct vu_vq *vq, int old_fd);

/* Before run: add a source (at most VU_POLLER_MAX_SOURCES). 0 or -errno. */
#define VU_POLLER_MAX_SOURCES 8
int vu_poller_add_source(struct vu_poller *p, struct vu_poll_source *src);

/* The CPU the poller was configured for (-1 if none). */
int vu_poller_cpu(const struct vu_poller *p);

/* Counters, readable from any thread (relaxed). */
struct vu_poller_stats {
	uint64_t passes;
	uint64_t busy_passes;
	uint64_t sleeps;
	uint64_t wakeups;
};
void vu_poller_get_stats(const struct vu_poller *p, struct vu_poller_stats *st);

/*
 * Pin the calling thread to cpu.  Returns 0, -EINVAL for a CPU that does
 * not exist or is not in the process's allowed set.
 */
int vu_pin_thread(int cpu);

/*
 * Start routine for a poller's own thread: pthread_create(&t, NULL,
 * vu_poller_thread, p).  Pins the thread to vu_poller_cpu(p) unless that
 * is -1 (a warning if it cannot, and the poller runs unpinned), then runs
 * the loop until vu_poller_stop(p).  Returns NULL.
 */
void *vu_poller_thread(void *p);

/*
 * The lowest-numbered CPU the calling thread may run on (its affinity
 * mask): the default CPU of a daemon given none.  The CPU, or -errno.
 */
int vu_first_allowed_cpu(void);

#endif
