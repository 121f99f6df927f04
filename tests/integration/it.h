/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the integration tests: the vu-testdev daemon as a child
 * process (fork/exec, socket in a private mkdtemp directory, stopped by
 * PID and reaped in the cmocka teardown, also after a failed assertion),
 * what /proc says about it (fds, RSS, CPU time), QEMU's start sequence
 * on a vuf connection, and an echo workload that posts chains of random
 * shape and checks every byte the device writes back.
 *
 * Every test program takes the path of vu-testdev as its only argument.
 * A test that fails has the daemon's log printed by the teardown.
 */
#ifndef IT_H
#define IT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <sys/types.h>

#include <cmocka.h>

#include "vu_util.h"
#include "vuf.h"

/* Guest memory of it_fe_start(): rings in one region, echo buffers in another. */
#define IT_GPA_RING     0x00100000ull
#define IT_RING_BYTES   (4u << 20)
#define IT_GPA_DATA     0x01000000ull
#define IT_DATA_BYTES   (16u << 20)
/* One chain's buffers: readable bytes in the first half, writable in the second. */
#define IT_SLOT_SIZE    16384u
#define IT_QSIZE        256u
#define IT_MAX_QUEUES   4
#define IT_QUEUE_AREA(qsize) ((uint64_t)(qsize) * IT_SLOT_SIZE)

#define IT_TIMEOUT_MS   5000
/* SET_STATUS of a driver that is ready: ACKNOWLEDGE | DRIVER | DRIVER_OK | FEATURES_OK. */
#define IT_STATUS_DRIVER_OK 0x0f
#define IT_MAX_FE       4

/* Protocol features the tests negotiate unless told otherwise: all the library offers. */
#define IT_PROTOCOL_ALL                                                                    \
	((1ull << VU_PROTOCOL_F_MQ) | (1ull << VU_PROTOCOL_F_LOG_SHMFD) |                    \
	 (1ull << VU_PROTOCOL_F_REPLY_ACK) | (1ull << VU_PROTOCOL_F_BACKEND_REQ) |           \
	 (1ull << VU_PROTOCOL_F_CONFIG) | (1ull << VU_PROTOCOL_F_INFLIGHT_SHMFD) |           \
	 (1ull << VU_PROTOCOL_F_RESET_DEVICE) | (1ull << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS) | \
	 (1ull << VU_PROTOCOL_F_STATUS))

/* The vu-testdev binary (argv[1]). */
extern const char *it_testdev;

/* ---- the daemon ---------------------------------------------------- */

struct it_daemon {
	pid_t pid;              /* 0: not running (never started, or reaped) */
	int status;             /* wait status once reaped */
	char log[160];          /* its stderr (appended to across restarts) */
};

/*
 * Start vu-testdev --socket-path sock plus args (NULL-terminated, may be
 * NULL), stderr to d->log.  With wait_socket, returns once sock exists
 * as a socket (a client of it may still see ECONNREFUSED for a moment:
 * vuf_connect retries).  0, or -errno (-ECHILD: the daemon exited first).
 */
int it_daemon_start(struct it_daemon *d, const char *sock, const char *const *args,
		    bool wait_socket);
/* True while the process has not exited (reaps it if it has). */
bool it_daemon_alive(struct it_daemon *d);
/*
 * SIGCONT + SIGTERM, wait for the exit (SIGKILL after 10 s).  Returns 0
 * if it exited with status 0 or had been reaped already, -1 otherwise
 * (the reason is printed): a crash, a sanitizer report, a hang.
 */
int it_daemon_stop(struct it_daemon *d);
/* SIGSTOP, and wait until every thread of it has stopped.  0 or -errno. */
int it_daemon_freeze(struct it_daemon *d);
/* SIGKILL and reap (the test's own crash). */
void it_daemon_kill(struct it_daemon *d);
/* Wait for it to exit on its own: its wait status, or -ETIMEDOUT. */
int it_daemon_wait_exit(struct it_daemon *d, int timeout_ms);
/* Occurrences of s in its log. */
unsigned int it_log_count(const struct it_daemon *d, const char *s);

void it_sleep_ms(unsigned int ms);

/* ---- /proc ----------------------------------------------------------- */

int it_proc_fds(pid_t pid);
/* Lines of /proc/PID/maps: a leaked mmap shows here. */
int it_proc_maps(pid_t pid);
long it_proc_rss_kb(pid_t pid);
/* User + system CPU time of the whole process, in seconds. */
double it_proc_cpu_s(pid_t pid);
/* Poll until pid has want fds (a disconnect is handled asynchronously); the last count. */
int it_wait_fds(pid_t pid, int want, int timeout_ms);

/* ---- fixture ----------------------------------------------------------- */

struct it_fe;

struct it_fixture {
	char dir[64];           /* mkdtemp */
	char sock[128];         /* dir/vu.sock */
	struct it_daemon d[2];
	struct it_fe *fe[IT_MAX_FE];
	const void *priv_case;  /* the test's initial state (CMUnitTest) */
	bool passed;
	/* Run first by the teardown (threads of the test that use fe[]). */
	void (*cleanup)(void *arg);
	void *cleanup_arg;
};

/* cmocka setup/teardown: the directory; teardown closes fe[], stops the
 * daemons (failing if one did not exit cleanly) and removes the directory. */
int it_setup(void **state);
int it_teardown(void **state);
/* The test reached its end: teardown does not print the daemon logs. */
static inline void it_pass(struct it_fixture *f)
{
	f->passed = true;
}

/* Start daemon i on f->sock (asserts). */
void it_start(struct it_fixture *f, unsigned int i, const char *const *args);

/* ---- front-end ----------------------------------------------------------- */

struct it_fe_opts {
	uint64_t features;      /* virtio bits wanted besides VERSION_1 (EVENT_IDX, ...) */
	uint64_t protocol;      /* protocol features wanted; 0: IT_PROTOCOL_ALL */
	unsigned int nqueues;   /* queues started: 0 .. nqueues-1 */
	unsigned int qsize;     /* 0: IT_QSIZE */
	bool inflight;          /* GET_INFLIGHT_FD + SET_INFLIGHT_FD */
	bool hot_add;           /* memory through ADD_MEM_REG instead of SET_MEM_TABLE */
};

struct it_echo;

struct it_fe {
	struct vuf *vuf;
	struct vuf_vq *vq[IT_MAX_QUEUES];
	struct it_echo *echo[IT_MAX_QUEUES];
	unsigned int nqueues;
	unsigned int qsize;
	uint64_t features;      /* acknowledged */
};

/*
 * Connect to sock and run QEMU's sequence (vhost_user_backend_init,
 * vhost_dev_init, vhost-user-blk realize and start): GET_FEATURES,
 * GET/SET_PROTOCOL_FEATURES, GET_QUEUE_NUM, GET_MAX_MEM_SLOTS,
 * SET_BACKEND_REQ_FD, SET_OWNER, GET_FEATURES, GET_CONFIG, [GET/SET_INFLIGHT_FD],
 * SET_FEATURES, the memory table, per queue NUM BASE ADDR KICK CALL
 * ENABLE, SET_STATUS.  Each started queue gets an echo workload on its
 * own IT_QUEUE_AREA of the data region.  0 or -errno.
 */
int it_fe_start(const char *sock, const struct it_fe_opts *o, struct it_fe **out);
/* Same on a connected socket (taken, also on error): QEMU with server=on. */
int it_fe_start_fd(int fd, const struct it_fe_opts *o, struct it_fe **out);
/*
 * The first part of it_fe_start, for tests that lay out memory
 * themselves: connect and negotiate, up to SET_FEATURES (and the
 * inflight area if asked).  Then it_fe_add_queue creates queue i (rings
 * from the first local region with room, vuf_alloc) and its echo
 * workload on area (none if area is 0); the test shares memory and
 * starts the queues.
 */
int it_fe_connect(const char *sock, const struct it_fe_opts *o, struct it_fe **out);
int it_fe_add_queue(struct it_fe *fe, unsigned int i, uint64_t area);
/* Close the connection and free everything.  Accepts NULL. */
void it_fe_close(struct it_fe *fe);
/* it_fe_start that asserts, registered in f->fe[] for the teardown. */
struct it_fe *it_fe(struct it_fixture *f, const struct it_fe_opts *o);
/* Register fe in f->fe[] for the teardown. */
void it_fe_register(struct it_fixture *f, struct it_fe *fe);
/* Close and unregister. */
void it_fe_drop(struct it_fixture *f, struct it_fe *fe);

/* ---- echo workload ------------------------------------------------------- */

#define IT_ECHO_INDIRECT (1u << 0)   /* post half of the chains as indirect tables */
#define IT_POST_HOLD     (1u << 1)   /* readable part starts with HOLDHOLD (vu-testdev --hold) */

/*
 * An echo workload on vq with one IT_SLOT_SIZE slot per ring entry from
 * gpa (IT_QUEUE_AREA(queue size) bytes of guest memory).  Chains have
 * 0-3 readable and 0-3 writable segments (at least one), random lengths,
 * writable segments separated by poisoned gaps.  A completion must
 * report min(readable, writable) bytes, the writable part must hold the
 * readable bytes and nothing else, the readable part must be unchanged,
 * and each chain must complete exactly once.
 */
struct it_echo *it_echo_create(struct vuf *vuf, struct vuf_vq *vq, uint64_t gpa,
			       unsigned int flags, uint32_t seed);
void it_echo_destroy(struct it_echo *e);
/* Buffers of chains posted from now on come from gpa (another area of the same size). */
int it_echo_set_area(struct it_echo *e, uint64_t gpa);
/* Post up to max chains (fewer if the ring is full); not kicked.  Count or -errno. */
int it_echo_post(struct it_echo *e, unsigned int max, unsigned int flags);
/* Kick (as the driver does, honouring suppression).  1 kicked, 0 not needed, -errno. */
int it_echo_kick(struct it_echo *e);
/* Reap and check what completed.  Count, or -EBADMSG (it_echo_error says why) / -EIO. */
int it_echo_reap(struct it_echo *e);
/* Post n more chains keeping the ring full, until all n completed and checked.  0 or -errno. */
int it_echo_run(struct it_echo *e, uint64_t n, int timeout_ms);
/* Wait until only held chains are in flight (kicks once first).  0 or -errno. */
int it_echo_drain(struct it_echo *e, int timeout_ms);
/* Wait, without kicking, until nothing (held chains included) is in flight.  0 or -errno. */
int it_echo_wait_all(struct it_echo *e, int timeout_ms);
/* Every chain posted completed exactly once (held ones too).  0 or -EBADMSG. */
int it_echo_check_all_done(struct it_echo *e);
/* Run it_echo_run on a thread of its own; join returns its result. */
int it_echo_run_async(struct it_echo *e, uint64_t n, int timeout_ms);
int it_echo_join(struct it_echo *e);

uint64_t it_echo_posted(const struct it_echo *e);
uint64_t it_echo_completed(const struct it_echo *e);
unsigned int it_echo_inflight(const struct it_echo *e);
unsigned int it_echo_held(const struct it_echo *e);
const char *it_echo_error(const struct it_echo *e);
struct vuf_vq *it_echo_vq(const struct it_echo *e);

/* Assert that an echo call returned 0, printing the reason if not. */
#define it_assert_echo(e, call)                                                        \
	do {                                                                           \
		int it_ret_ = (call);                                                  \
		if (it_ret_ < 0)                                                       \
			fail_msg("%s: %d (%s)", #call, it_ret_, it_echo_error(e));     \
	} while (0)

/* Main of a test program: argv[1] is vu-testdev; runs the group. */
int it_main(int argc, char **argv, const char *name, const struct CMUnitTest *tests, size_t n);

#endif
