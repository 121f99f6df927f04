// SPDX-License-Identifier: MIT
/*
 * The poller loop (see vu_poller.h for the contract).
 *
 * Memory ordering of quiescence: the poller increments `epoch` with a
 * sequentially consistent RMW at the start of a pass and then reads the
 * queue list and each vq->runnable; the control thread first clears
 * runnable (or publishes a new list), then issues a full fence and reads
 * `epoch`.  One of the two sees the other's write, so either the pass
 * sees the change, or the control thread sees the pass (odd epoch) and
 * waits for it to end.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "vu_dev.h"
#include "vu_poller.h"
#include "vu_util.h"

struct queue_list {
	unsigned int n;
	struct vu_vq *q[];
};

struct vu_poller {
	char name[32];
	enum vu_poll_mode mode;
	uint64_t idle_ns;
	uint32_t budget;
	int cpu;
	int epfd;
	int wake_fd;
	uint64_t epoch;                 /* odd while inside a pass */
	bool running;
	bool stop;
	pthread_mutex_t lock;           /* serialises list updates (control side) */
	struct queue_list *queues;      /* published with release */
	struct vu_poll_source *sources[VU_POLLER_MAX_SOURCES];
	unsigned int nsources;
	struct vu_poller_stats stats;
};

int vu_poll_mode_parse(const char *s, enum vu_poll_mode *mode, uint32_t *idle_us)
{
	char *end;
	unsigned long v;

	*idle_us = VU_POLL_DEFAULT_IDLE_US;
	if (!strcmp(s, "always")) {
		*mode = VU_POLL_ALWAYS;
		return 0;
	}
	if (!strcmp(s, "never")) {
		*mode = VU_POLL_NEVER;
		return 0;
	}
	if (strncmp(s, "adaptive", 8))
		return -EINVAL;
	*mode = VU_POLL_ADAPTIVE;
	if (s[8] == '\0')
		return 0;
	if (s[8] != ':' || s[9] < '0' || s[9] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s + 9, &end, 10);
	if (errno || *end || v > 60000000ul)
		return -EINVAL;
	*idle_us = (uint32_t)v;
	return 0;
}

struct vu_poller *vu_poller_create(const struct vu_poller_config *cfg)
{
	struct vu_poller *p = calloc(1, sizeof(*p));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!p)
		return NULL;
	snprintf(p->name, sizeof(p->name), "%s", cfg->name ? cfg->name : "poller");
	p->mode = cfg->mode;
	p->idle_ns = (uint64_t)cfg->idle_us * 1000;
	p->budget = cfg->budget ? cfg->budget : VU_POLL_DEFAULT_BUDGET;
	p->cpu = cfg->cpu;
	p->queues = calloc(1, sizeof(struct queue_list));
	pthread_mutex_init(&p->lock, NULL);
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!p->queues || p->epfd < 0 || p->wake_fd < 0 ||
	    epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->wake_fd, &ev) < 0) {
		int err = errno ? errno : ENOMEM;

		vu_poller_destroy(p);
		errno = err;
		return NULL;
	}
	return p;
}

void vu_poller_destroy(struct vu_poller *p)
{
	if (!p)
		return;
	if (p->epfd >= 0)
		close(p->epfd);
	if (p->wake_fd > 0)
		close(p->wake_fd);
	pthread_mutex_destroy(&p->lock);
	free(p->queues);
	free(p);
}

int vu_poller_cpu(const struct vu_poller *p)
{
	return p->cpu;
}

void vu_poller_get_stats(const struct vu_poller *p, struct vu_poller_stats *st)
{
	st->passes = __atomic_load_n(&p->stats.passes, __ATOMIC_RELAXED);
	st->busy_passes = __atomic_load_n(&p->stats.busy_passes, __ATOMIC_RELAXED);
	st->sleeps = __atomic_load_n(&p->stats.sleeps, __ATOMIC_RELAXED);
	st->wakeups = __atomic_load_n(&p->stats.wakeups, __ATOMIC_RELAXED);
}

static inline void stat_inc(uint64_t *counter)
{
	__atomic_store_n(counter, *counter + 1, __ATOMIC_RELAXED);
}

static inline void pass_enter(struct vu_poller *p)
{
	__atomic_fetch_add(&p->epoch, 1, __ATOMIC_SEQ_CST);
}

static inline void pass_leave(struct vu_poller *p)
{
	__atomic_fetch_add(&p->epoch, 1, __ATOMIC_RELEASE);
}

static inline bool vq_runnable(struct vu_vq *vq)
{
	return __atomic_load_n(&vq->runnable, __ATOMIC_ACQUIRE) && !vq->broken;
}

/* One pass over every queue and source.  Returns the work done. */
static unsigned int run_pass(struct vu_poller *p)
{
	struct queue_list *l;
	unsigned int work = 0;

	pass_enter(p);
	l = __atomic_load_n(&p->queues, __ATOMIC_ACQUIRE);
	for (unsigned int i = 0; i < l->n; i++) {
		struct vu_vq *vq = l->q[i];

		if (vq_runnable(vq))
			work += vq->dev->ops->queue_process(vq->dev, vq, p->budget);
	}
	for (unsigned int i = 0; i < p->nsources; i++)
		work += p->sources[i]->poll(p->sources[i]);
	/* One notification per queue per pass, for whatever completed. */
	for (unsigned int i = 0; i < l->n; i++)
		vu_vq_notify(l->q[i]);
	pass_leave(p);
	return work;
}

static void drain_fd(int fd)
{
	uint64_t v;

	if (fd >= 0 && read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing to drain */
	}
}

/*
 * Enable guest notifications, re-check, and sleep until a kick, a
 * source's fd, or a wake-up.  Returns without sleeping if work arrived.
 */
static void try_sleep(struct vu_poller *p)
{
	struct epoll_event events[64];
	struct queue_list *l;
	bool work = false;
	int n;

	pass_enter(p);
	l = __atomic_load_n(&p->queues, __ATOMIC_ACQUIRE);
	for (unsigned int i = 0; i < p->nsources && !work; i++) {
		struct vu_poll_source *s = p->sources[i];

		if (s->prepare_sleep && s->prepare_sleep(s))
			work = true;
	}
	for (unsigned int i = 0; i < l->n && !work; i++) {
		struct vu_vq *vq = l->q[i];

		if (vq_runnable(vq) &&
		    (!vq->dev->ops->queue_needs_kick || vq->dev->ops->queue_needs_kick(vq->dev, vq)) &&
		    vu_vq_enable_notify(vq))
			work = true;
	}
	pass_leave(p);

	if (!work && !__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		stat_inc(&p->stats.sleeps);
		n = epoll_wait(p->epfd, events, (int)VU_ARRAY_SIZE(events), -1);
		if (n > 0)
			stat_inc(&p->stats.wakeups);
	}

	pass_enter(p);
	drain_fd(p->wake_fd);
	l = __atomic_load_n(&p->queues, __ATOMIC_ACQUIRE);
	for (unsigned int i = 0; i < l->n; i++) {
		struct vu_vq *vq = l->q[i];

		if (!vq_runnable(vq))
			continue;
		drain_fd(vq->kick_fd);
		if (p->mode != VU_POLL_NEVER)
			vu_vq_disable_notify(vq);
	}
	pass_leave(p);
}

int vu_poller_run(struct vu_poller *p)
{
	uint64_t idle_since = 0;

	__atomic_store_n(&p->running, true, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		unsigned int work = run_pass(p);

		stat_inc(&p->stats.passes);
		if (work) {
			stat_inc(&p->stats.busy_passes);
			idle_since = 0;
			continue;
		}
		if (p->mode == VU_POLL_ALWAYS)
			continue;
		if (p->mode == VU_POLL_ADAPTIVE) {
			uint64_t now = vu_now_ns();

			if (!idle_since) {
				idle_since = now;
				continue;
			}
			if (now - idle_since < p->idle_ns) {
				/* Spinning idle: threads sharing this CPU (librbd's,
				 * io_uring's io-wq) run now, not at the next tick. */
				sched_yield();
				continue;
			}
		}
		try_sleep(p);
		idle_since = 0;
	}
	__atomic_store_n(&p->running, false, __ATOMIC_SEQ_CST);
	return 0;
}

void vu_poller_wake(struct vu_poller *p)
{
	uint64_t one = 1;

	if (write(p->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: counter saturated, a wake-up is pending anyway */
	}
}

void vu_poller_stop(struct vu_poller *p)
{
	__atomic_store_n(&p->stop, true, __ATOMIC_RELEASE);
	vu_poller_wake(p);
}

void vu_poller_quiesce(struct vu_poller *p)
{
	uint64_t e;

	/* Pairs with the seq_cst increment in pass_enter(). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&p->running, __ATOMIC_SEQ_CST))
		return;
	e = __atomic_load_n(&p->epoch, __ATOMIC_SEQ_CST);
	if (!(e & 1))
		return;
	while (__atomic_load_n(&p->epoch, __ATOMIC_ACQUIRE) == e &&
	       __atomic_load_n(&p->running, __ATOMIC_ACQUIRE)) {
		struct timespec ts = { 0, 2000 };

		nanosleep(&ts, NULL);
	}
}

static int kick_watch(struct vu_poller *p, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };

	if (fd < 0)
		return 0;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 && errno != EEXIST) {
		vu_warn("%s: cannot watch kick fd %d: %s", p->name, fd, strerror(errno));
		return -errno;
	}
	return 0;
}

static void kick_unwatch(struct vu_poller *p, int fd)
{
	if (fd >= 0)
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* Replace the published list and wait until no pass reads the old one. */
static void publish_list(struct vu_poller *p, struct queue_list *l)
{
	struct queue_list *old = p->queues;

	__atomic_store_n(&p->queues, l, __ATOMIC_RELEASE);
	vu_poller_quiesce(p);
	free(old);
	vu_poller_wake(p);
}

int vu_poller_add_queue(struct vu_poller *p, struct vu_vq *vq)
{
	struct queue_list *l;
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	for (unsigned int i = 0; i < p->queues->n; i++)
		if (p->queues->q[i] == vq)
			goto out;
	l = malloc(sizeof(*l) + (p->queues->n + 1) * sizeof(l->q[0]));
	if (!l) {
		ret = -ENOMEM;
		goto out;
	}
	l->n = p->queues->n + 1;
	memcpy(l->q, p->queues->q, p->queues->n * sizeof(l->q[0]));
	l->q[l->n - 1] = vq;
	ret = kick_watch(p, vq->kick_fd);
	if (ret) {
		free(l);
		goto out;
	}
	vq->poller = p;
	publish_list(p, l);
out:
	pthread_mutex_unlock(&p->lock);
	return ret;
}

void vu_poller_remove_queue(struct vu_poller *p, struct vu_vq *vq)
{
	struct queue_list *l;
	unsigned int j = 0;

	pthread_mutex_lock(&p->lock);
	l = malloc(sizeof(*l) + p->queues->n * sizeof(l->q[0]));
	if (!l) {
		/* Cannot shrink the list: leave the queue in it, not runnable. */
		__atomic_store_n(&vq->runnable, false, __ATOMIC_SEQ_CST);
		vu_poller_quiesce(p);
		pthread_mutex_unlock(&p->lock);
		return;
	}
	for (unsigned int i = 0; i < p->queues->n; i++)
		if (p->queues->q[i] != vq)
			l->q[j++] = p->queues->q[i];
	l->n = j;
	kick_unwatch(p, vq->kick_fd);
	publish_list(p, l);
	pthread_mutex_unlock(&p->lock);
}

int vu_poller_update_kick(struct vu_poller *p, struct vu_vq *vq, int old_fd)
{
	kick_unwatch(p, old_fd);
	return kick_watch(p, vq->kick_fd);
}

int vu_poller_add_source(struct vu_poller *p, struct vu_poll_source *src)
{
	struct epoll_event ev = { .events = EPOLLIN };

	if (p->nsources >= VU_POLLER_MAX_SOURCES)
		return -ENOSPC;
	if (src->fd >= 0 && epoll_ctl(p->epfd, EPOLL_CTL_ADD, src->fd, &ev) < 0)
		return -errno;
	p->sources[p->nsources++] = src;
	return 0;
}

int vu_pin_thread(int cpu)
{
	cpu_set_t set;

	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return -EINVAL;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

void *vu_poller_thread(void *arg)
{
	struct vu_poller *p = arg;
	int ret;

	if (p->cpu >= 0) {
		ret = vu_pin_thread(p->cpu);
		if (ret)
			vu_warn("poller %s: cannot pin to CPU %d: %s", p->name, p->cpu,
				strerror(-ret));
	}
	vu_poller_run(p);
	return NULL;
}

int vu_first_allowed_cpu(void)
{
	cpu_set_t allowed;

	if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
		return -errno;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &allowed))
			return cpu;
	return -ENOENT;
}
