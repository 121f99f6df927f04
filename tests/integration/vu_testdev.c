// SPDX-License-Identifier: MIT
/*
 * vu-testdev: a minimal device on the vhost-user library, for the
 * integration tests.  Each chain's readable bytes are copied into its
 * writable part (an echo), and the chain completes with the bytes
 * written.  A config space of 16 bytes: a u64 counter of completed
 * chains and a writable u64 that SIGHUP increments and reports with
 * CONFIG_CHANGE_MSG.
 *
 * Usage: vu-testdev --socket-path PATH [--client] [--num-queues N]
 *                   [--poll MODE] [--cpus A,B]
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

struct testdev {
	struct vu_dev *dev;
	uint64_t completed;     /* atomic */
	uint64_t generation;    /* config word bumped by SIGHUP */
};

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

struct poller_thread {
	struct vu_poller *p;
	int cpu;
	pthread_t t;
};

static void *poller_main(void *arg)
{
	struct poller_thread *pt = arg;

	if (pt->cpu >= 0)
		vu_pin_thread(pt->cpu);
	vu_poller_run(pt->p);
	return NULL;
}

static void on_sighup(void *arg)
{
	struct testdev *td = arg;

	td->generation++;
	vu_dev_notify_config_change(td->dev);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket-path", required_argument, NULL, 's' },
		{ "client", no_argument, NULL, 'c' },
		{ "num-queues", required_argument, NULL, 'q' },
		{ "poll", required_argument, NULL, 'p' },
		{ "pollers", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	struct vu_endpoint_config ecfg = { .mode = VU_EP_SERVER };
	struct poller_thread pt[MAX_POLLERS];
	struct vu_poller *plist[MAX_POLLERS];
	enum vu_poll_mode mode = VU_POLL_ADAPTIVE;
	uint32_t idle_us = VU_POLL_DEFAULT_IDLE_US;
	static struct testdev td;
	unsigned int nq = 2, np = 1;
	struct vu_endpoint *ep;
	struct vu_loop *loop;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': ecfg.path = optarg; break;
		case 'c': ecfg.mode = VU_EP_CLIENT; ecfg.reconnect_ms = 100; break;
		case 'q': nq = (unsigned int)atoi(optarg); break;
		case 'n': np = (unsigned int)atoi(optarg); break;
		case 'p':
			if (vu_poll_mode_parse(optarg, &mode, &idle_us))
				return 2;
			break;
		default: return 2;
		}
	}
	if (!ecfg.path || nq < 1 || nq > VU_DEV_MAX_QUEUES || np < 1 || np > MAX_POLLERS) {
		fprintf(stderr, "usage: vu-testdev --socket-path PATH [--client] [--num-queues N] [--pollers 1|2] [--poll MODE]\n");
		return 2;
	}
	loop = vu_loop_create();
	for (unsigned int i = 0; i < np; i++) {
		struct vu_poller_config pc = { .name = "testpoller", .mode = mode, .idle_us = idle_us,
					       .cpu = -1 };

		pt[i].p = plist[i] = vu_poller_create(&pc);
		pt[i].cpu = -1;
	}
	struct vu_dev_config dcfg = { .name = "testdev", .num_queues = (uint16_t)nq,
				      .pollers = plist, .npollers = np, .ops = &td_ops, .priv = &td };
	td.dev = vu_dev_create(&dcfg);
	ep = td.dev ? vu_endpoint_create(loop, td.dev, &ecfg) : NULL;
	if (!ep)
		return 2;
	for (unsigned int i = 0; i < np; i++)
		pthread_create(&pt[i].t, NULL, poller_main, &pt[i]);
	vu_loop_run(loop, on_sighup, &td);
	vu_endpoint_destroy(ep);
	vu_dev_destroy(td.dev);
	for (unsigned int i = 0; i < np; i++) {
		vu_poller_stop(pt[i].p);
		pthread_join(pt[i].t, NULL);
		vu_poller_destroy(pt[i].p);
	}
	vu_loop_destroy(loop);
	return 0;
}
