// SPDX-License-Identifier: MIT
/*
 * vu-testdev: a minimal device on the vhost-user library, for the
 * integration tests.  Each chain's readable bytes are copied into its
 * writable part (an echo), and the chain completes with the bytes
 * written.  A config space of 16 bytes: a u64 counter of completed
 * chains and a writable u64 that SIGHUP increments and reports with
 * CONFIG_CHANGE_MSG.
 *
 * With --hold, a chain whose readable part starts with the 8 bytes
 * "HOLDHOLD" is taken and never completed: the integration tests use it
 * to have requests in flight when they kill the daemon (inflight
 * recovery).  The device keeps nothing of such a chain (it has no
 * queue_inflight), so a pause or a disconnect never waits for it.
 *
 * Usage: vu-testdev --socket-path PATH [--client] [--num-queues N]
 *                   [--pollers 1|2] [--poll MODE] [--cpus A[,B]] [--hold]
 * Exit status: 0 after SIGINT/SIGTERM, 2 on a usage or setup error.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vu_dev.h"
#include "vu_poller.h"
#include "vu_server.h"
#include "vu_util.h"

#define MAX_POLLERS 2
#define CHAIN_IOV 64
#define HOLD_MAGIC "HOLDHOLD"

struct testdev {
	struct vu_dev *dev;
	uint64_t completed;     /* atomic */
	uint64_t generation;    /* config word bumped by SIGHUP */
	bool hold;              /* --hold: never complete chains marked HOLD_MAGIC */
};

/* A chain the test asked the device to take and never complete (see --hold). */
static bool td_held(const struct testdev *td, const struct vu_chain *c)
{
	return td->hold && c->nout && c->iov[0].iov_len >= sizeof(HOLD_MAGIC) - 1 &&
	       !memcmp(c->iov[0].iov_base, HOLD_MAGIC, sizeof(HOLD_MAGIC) - 1);
}

static uint32_t td_get_config(struct vu_dev *dev, uint8_t *buf, uint32_t len)
{
	struct testdev *td = dev->priv;
	uint64_t cfg[2] = { __atomic_load_n(&td->completed, __ATOMIC_RELAXED), td->generation };

	if (len > sizeof(cfg))
		len = sizeof(cfg);
	memcpy(buf, cfg, len);
	return len;
}

static int td_set_config(struct vu_dev *dev, const uint8_t *data, uint32_t offset, uint32_t size,
			 uint32_t flags)
{
	struct testdev *td = dev->priv;

	(void)flags;
	if (offset != 8 || size != 8)
		return -EPERM;
	memcpy(&td->generation, data, 8);
	return 0;
}

static unsigned int td_process(struct vu_dev *dev, struct vu_vq *vq, unsigned int budget)
{
	struct testdev *td = dev->priv;
	struct iovec iov[CHAIN_IOV];
	uint64_t gpa[CHAIN_IOV];
	struct vu_chain c;
	unsigned int n = 0;

	vu_chain_init(&c, iov, gpa, CHAIN_IOV);
	while (n < budget && vu_vq_pop(vq, &c) == 1) {
		uint32_t written = 0;
		unsigned int o = 0, i = c.nout;
		size_t ooff = 0, ioff = 0;

		if (td_held(td, &c)) {
			n++;
			continue;
		}
		/* Echo the readable bytes into the writable part. */
		while (o < c.nout && i < (unsigned int)c.nout + c.nin) {
			size_t l = iov[o].iov_len - ooff;

			if (l > iov[i].iov_len - ioff)
				l = iov[i].iov_len - ioff;
			memcpy((uint8_t *)iov[i].iov_base + ioff, (uint8_t *)iov[o].iov_base + ooff, l);
			written += (uint32_t)l;
			ooff += l;
			ioff += l;
			if (ooff == iov[o].iov_len) {
				o++;
				ooff = 0;
			}
			if (ioff == iov[i].iov_len) {
				i++;
				ioff = 0;
			}
		}
		vu_vq_push(vq, &c, written);
		__atomic_fetch_add(&td->completed, 1, __ATOMIC_RELAXED);
		n++;
	}
	return n;
}

static const struct vu_dev_ops td_ops = {
	.features = 0,
	.get_config = td_get_config,
	.set_config = td_set_config,
	.queue_process = td_process,
};

static void on_sighup(void *arg)
{
	struct testdev *td = arg;

	td->generation++;
	vu_dev_notify_config_change(td->dev);
}

/* "A" or "A,B": one CPU per poller.  0 or -EINVAL. */
static int parse_cpus(const char *s, int *cpus, unsigned int max, unsigned int *n)
{
	*n = 0;
	while (*s) {
		char *end;
		long v;

		errno = 0;
		v = strtol(s, &end, 10);
		if (errno || end == s || v < 0 || v > 4095 || *n == max)
			return -EINVAL;
		cpus[(*n)++] = (int)v;
		if (*end == ',')
			end++;
		else if (*end)
			return -EINVAL;
		s = end;
	}
	return *n ? 0 : -EINVAL;
}

static void usage(void)
{
	fprintf(stderr, "usage: vu-testdev --socket-path PATH [--client] [--num-queues N] "
		"[--pollers 1|2] [--poll MODE] [--cpus A[,B]] [--hold]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket-path", required_argument, NULL, 's' },
		{ "client", no_argument, NULL, 'c' },
		{ "num-queues", required_argument, NULL, 'q' },
		{ "poll", required_argument, NULL, 'p' },
		{ "pollers", required_argument, NULL, 'n' },
		{ "cpus", required_argument, NULL, 'C' },
		{ "hold", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	struct vu_endpoint_config ecfg = { .mode = VU_EP_SERVER };
	pthread_t threads[MAX_POLLERS];
	struct vu_poller *plist[MAX_POLLERS] = { NULL };
	enum vu_poll_mode mode = VU_POLL_ADAPTIVE;
	uint32_t idle_us = VU_POLL_DEFAULT_IDLE_US;
	int cpus[MAX_POLLERS] = { -1, -1 };
	static struct testdev td;
	unsigned int nq = 2, np = 1, ncpus = 0, started = 0;
	struct vu_endpoint *ep = NULL;
	struct vu_loop *loop;
	int c, ret = 2;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': ecfg.path = optarg; break;
		case 'c': ecfg.mode = VU_EP_CLIENT; ecfg.reconnect_ms = 100; break;
		case 'q': nq = (unsigned int)atoi(optarg); break;
		case 'n': np = (unsigned int)atoi(optarg); break;
		case 'H': td.hold = true; break;
		case 'C':
			if (parse_cpus(optarg, cpus, MAX_POLLERS, &ncpus)) {
				usage();
				return 2;
			}
			break;
		case 'p':
			if (vu_poll_mode_parse(optarg, &mode, &idle_us)) {
				usage();
				return 2;
			}
			break;
		default:
			usage();
			return 2;
		}
	}
	if (!ecfg.path || nq < 1 || nq > VU_DEV_MAX_QUEUES || np < 1 || np > MAX_POLLERS ||
	    (ncpus && ncpus != np)) {
		usage();
		return 2;
	}
	/* Before any thread: the loop blocks the signals it takes. */
	loop = vu_loop_create();
	if (!loop)
		return 2;
	for (unsigned int i = 0; i < np; i++) {
		struct vu_poller_config pc = { .name = "testpoller", .mode = mode, .idle_us = idle_us,
					       .cpu = cpus[i] };

		plist[i] = vu_poller_create(&pc);
		if (!plist[i]) {
			fprintf(stderr, "vu-testdev: cannot create poller %u: %s\n", i, strerror(errno));
			goto out_pollers;
		}
	}
	struct vu_dev_config dcfg = { .name = "testdev", .num_queues = (uint16_t)nq,
				      .pollers = plist, .npollers = np, .ops = &td_ops, .priv = &td };
	td.dev = vu_dev_create(&dcfg);
	if (!td.dev)
		goto out_pollers;
	ep = vu_endpoint_create(loop, td.dev, &ecfg);
	if (!ep)
		goto out_dev;
	for (started = 0; started < np; started++) {
		if (pthread_create(&threads[started], NULL, vu_poller_thread, plist[started])) {
			fprintf(stderr, "vu-testdev: cannot start poller %u\n", started);
			goto out_threads;
		}
	}
	if (vu_loop_run(loop, on_sighup, &td) == 0)
		ret = 0;
out_threads:
	vu_endpoint_destroy(ep);
	vu_dev_destroy(td.dev);
	for (unsigned int i = 0; i < started; i++) {
		vu_poller_stop(plist[i]);
		pthread_join(threads[i], NULL);
	}
	td.dev = NULL;
out_dev:
	vu_dev_destroy(td.dev);
out_pollers:
	for (unsigned int i = 0; i < np; i++)
		vu_poller_destroy(plist[i]);
	vu_loop_destroy(loop);
	return ret;
}
