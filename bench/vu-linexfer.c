// SPDX-License-Identifier: MIT
/*
 * How long a cache line takes to move from one CPU to another: two
 * threads, one on each CPU, hand a counter back and forth through one
 * line.  On this project's two-vCPU test VMs it is 25-45 ns while the
 * host runs both vCPUs on one L3 and 160-185 ns while it does not (the
 * host moves them, every few seconds to minutes): the benchmarks' "fast"
 * and "slow" modes.  A back-end that stalls on one miss per request or
 * packet runs 3-4x slower in the slow mode; the scripts print this figure
 * every round so that each run's mode is known.
 *
 *   vu-linexfer [--cpus A,B] [--count N]
 *
 * Prints the one-way transfer time (the median of 5 batches of N round
 * trips, default 20000) and a JSON line.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vu_poller.h"

#define BATCHES 5

static struct {
	uint64_t turn __attribute__((aligned(64)));
	char pad[56];
} line;
static unsigned long count = 20000;
static int cpus[2] = { 0, 1 };

static void pin_or_die(int cpu)
{
	int err = vu_pin_thread(cpu);

	if (err) {
		fprintf(stderr, "vu-linexfer: cannot pin to CPU %d: %s\n", cpu, strerror(-err));
		exit(1);
	}
}

/* The odd turns are the echo thread's. */
static void *echo(void *arg)
{
	pin_or_die(cpus[1]);
	for (uint64_t t = 1; t < 2 * count * BATCHES; t += 2) {
		while (__atomic_load_n(&line.turn, __ATOMIC_ACQUIRE) != t)
			;
		__atomic_store_n(&line.turn, t + 1, __ATOMIC_RELEASE);
	}
	return arg;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cpus", required_argument, NULL, 'c' },
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double ns[BATCHES];
	uint64_t t = 0;
	pthread_t th;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		errno = 0;
		if (c == 'c' && sscanf(optarg, "%d,%d", &cpus[0], &cpus[1]) == 2 && cpus[0] >= 0 &&
		    cpus[1] >= 0 && cpus[0] != cpus[1])
			continue;
		if (c == 'n') {
			count = strtoul(optarg, &end, 10);
			if (!errno && !*end && end != optarg && count > 0 && count <= 10000000)
				continue;
		}
		if (c == 'h') {
			printf("usage: vu-linexfer [--cpus A,B] [--count N]\n");
			return 0;
		}
		fprintf(stderr, "usage: vu-linexfer [--cpus A,B (two different CPUs)] [--count N (1-10000000)]\n");
		return 2;
	}
	if (optind != argc) {
		fprintf(stderr, "usage: vu-linexfer [--cpus A,B] [--count N]\n");
		return 2;
	}
	pin_or_die(cpus[0]);
	errno = pthread_create(&th, NULL, echo, NULL);
	if (errno) {
		perror("vu-linexfer: pthread_create");
		return 1;
	}
	for (int b = 0; b < BATCHES; b++) {
		uint64_t t0 = now_ns();

		for (unsigned long i = 0; i < count; i++, t += 2) {
			__atomic_store_n(&line.turn, t + 1, __ATOMIC_RELEASE);
			while (__atomic_load_n(&line.turn, __ATOMIC_ACQUIRE) != t + 2)
				;
		}
		ns[b] = (double)(now_ns() - t0) / (2.0 * (double)count);
	}
	pthread_join(th, NULL);
	qsort(ns, BATCHES, sizeof(ns[0]), cmp_double);
	printf("cache line CPU %d <-> CPU %d: %.0f ns one way (median of %d x %lu round trips; min %.0f, max %.0f)\n",
	       cpus[0], cpus[1], ns[BATCHES / 2], BATCHES, count, ns[0], ns[BATCHES - 1]);
	printf("JSON: {\"cpus\": [%d, %d], \"one_way_ns\": %.1f, \"min_ns\": %.1f, \"max_ns\": %.1f}\n",
	       cpus[0], cpus[1], ns[BATCHES / 2], ns[0], ns[BATCHES - 1]);
	return 0;
}
