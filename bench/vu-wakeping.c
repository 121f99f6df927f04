// SPDX-License-Identifier: MIT
/*
 * The platform's wake-up floor: how long a thread sleeping in epoll_wait
 * on one CPU takes to answer an eventfd write from another CPU after
 * idling.  A back-end that sleeps while idle pays this for the first
 * request after idling, whatever it does itself; bench/idle-cost.sh shows
 * it beside the back-ends' figures.
 *
 *   vu-wakeping [--sleeper-cpu N] [--pinger-cpu N] [--idle SECS] [--count N]
 *
 * The pinger sleeps SECS (default 0.2), writes the sleeper's eventfd and
 * spins on the answer (as vu-blkgen spins on the used ring), COUNT times
 * (default 9).  Prints the median and minimum round trip, and a JSON line.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "vu_poller.h"

#define MAX_COUNT 10000

struct sleeper {
	int ping_fd, pong_fd, epfd, cpu;
	bool stop;                      /* set before the last ping */
};

static void die(const char *what)
{
	fprintf(stderr, "vu-wakeping: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void pin(int cpu)
{
	if (cpu < 0)
		return;
	errno = -vu_pin_thread(cpu);
	if (errno)
		die("cannot pin to the CPU");
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *sleeper_run(void *arg)
{
	struct sleeper *s = arg;
	struct epoll_event ev;
	uint64_t v = 1;

	pin(s->cpu);
	for (;;) {
		if (epoll_wait(s->epfd, &ev, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		if (read(s->ping_fd, &v, sizeof(v)) != sizeof(v))
			continue;
		if (__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE))
			return NULL;
		v = 1;
		if (write(s->pong_fd, &v, sizeof(v)) != sizeof(v))
			die("write");
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vu-wakeping [--sleeper-cpu N] [--pinger-cpu N] [--idle SECS] [--count N]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sleeper-cpu", required_argument, NULL, 's' },
		{ "pinger-cpu", required_argument, NULL, 'p' },
		{ "idle", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sleeper s = { .cpu = 0 };
	struct epoll_event ev = { .events = EPOLLIN };
	int pinger_cpu = 1, count = 9, c;
	double idle = 0.2;
	uint64_t rtt[MAX_COUNT], v = 1;
	pthread_t th;
	char *end;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		long n = 0;

		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (c == '?') {
			usage(stderr);
			return 2;
		}
		errno = 0;
		if (c == 'i')
			idle = strtod(optarg, &end);
		else
			n = strtol(optarg, &end, 10);
		if (errno || *end || end == optarg || idle < 0 || n < -1 ||
		    (c == 'c' && (n < 1 || n > MAX_COUNT))) {
			fprintf(stderr, "vu-wakeping: bad value for --%s: %s\n",
				c == 's' ? "sleeper-cpu" : c == 'p' ? "pinger-cpu" :
				c == 'i' ? "idle" : "count", optarg);
			return 2;
		}
		if (c == 's')
			s.cpu = (int)n;
		else if (c == 'p')
			pinger_cpu = (int)n;
		else if (c == 'c')
			count = (int)n;
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	s.ping_fd = eventfd(0, EFD_NONBLOCK);
	s.pong_fd = eventfd(0, EFD_NONBLOCK);
	s.epfd = epoll_create1(0);
	if (s.ping_fd < 0 || s.pong_fd < 0 || s.epfd < 0)
		die("eventfd/epoll");
	if (epoll_ctl(s.epfd, EPOLL_CTL_ADD, s.ping_fd, &ev))
		die("epoll_ctl");
	errno = pthread_create(&th, NULL, sleeper_run, &s);
	if (errno)
		die("pthread_create");
	pin(pinger_cpu);
	for (int i = 0; i < count; i++) {
		struct timespec gap = { (time_t)idle, (long)((idle - (double)(time_t)idle) * 1e9) };
		uint64_t t0;

		nanosleep(&gap, NULL);
		t0 = now_ns();
		v = 1;
		if (write(s.ping_fd, &v, sizeof(v)) != sizeof(v))
			die("write");
		while (read(s.pong_fd, &v, sizeof(v)) != sizeof(v))
			;
		rtt[i] = now_ns() - t0;
	}
	__atomic_store_n(&s.stop, true, __ATOMIC_RELEASE);
	v = 1;
	if (write(s.ping_fd, &v, sizeof(v)) != sizeof(v))
		die("write");
	pthread_join(th, NULL);
	qsort(rtt, (size_t)count, sizeof(rtt[0]), cmp_u64);
	printf("wake-up round trip after %.3f s idle, %d times: median %.1f us, min %.1f us\n", idle,
	       count, (double)rtt[count / 2] / 1e3, (double)rtt[0] / 1e3);
	printf("JSON: {\"idle_s\": %.3f, \"count\": %d, \"median_ns\": %" PRIu64 ", \"min_ns\": %" PRIu64
	       "}\n", idle, count, rtt[count / 2], rtt[0]);
	return 0;
}
