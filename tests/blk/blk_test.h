/* SPDX-License-Identifier: MIT */
/*
 * Shared helper of the vhost-blk integration tests: starts the real
 * daemon as a separate process (fork/exec, its socket, backing files and
 * log in a private mkdtemp directory), connects to it with the vuf
 * front-end over the real socket, and builds virtio-blk requests
 * (header, data, status segments) in vuf guest memory.
 *
 * Each test gets a struct blkt from blkt_setup() and gives it back to
 * blkt_teardown(), which cmocka runs also when an assertion failed: the
 * daemon is killed by its PID and reaped, the directory removed, and the
 * daemon's log printed unless the test reached blkt_pass().  The daemon
 * also gets SIGKILL if the test process dies (PR_SET_PDEATHSIG).
 *
 * Guest memory: region 0 (BLKT_GPA_RING) holds the rings, indirect
 * tables and request headers (vuf_alloc); regions 1 and 2 are the data
 * arena (blkt_data), contiguous in guest-physical space, so that a
 * buffer may cross from one region to the next (SECURITY.md B.11).
 *
 * Functions named blkt_try_* return 0 or -errno and may run on any
 * thread (one thread per queue); the others use cmocka assertions and
 * belong to the test's main thread.
 *
 * Environment: BLKT_VERBOSE=1 prints every daemon log, BLKT_KEEP=1 keeps
 * the test directories, BLKT_FILTER=PATTERN runs only matching tests.
 * A test binary exits 77 (skipped) where io_uring is not available.
 */
#ifndef BLK_TEST_H
#define BLK_TEST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/virtio_blk.h>

#include "vuf.h"

#define BLKT_SECTOR 512u
#define BLKT_MAX_QUEUES 8
/* Data segments one request may carry in these tests (seg_max is 126). */
#define BLKT_MAX_SEGS 160
#define BLKT_WAIT_MS 10000

#define BLKT_GPA_RING 0x40000000ull
#define BLKT_RING_SIZE (16u << 20)
#define BLKT_GPA_DATA 0x100000000ull
#define BLKT_DATA_SIZE (32u << 20)
/* Region 2 starts where region 1 ends. */
#define BLKT_GPA_DATA2 (BLKT_GPA_DATA + BLKT_DATA_SIZE)
#define BLKT_DATA2_SIZE (4u << 20)

/* The daemon under test (argv[1] of the test binary). */
extern const char *blkt_daemon;

/*
 * Parse the test binary's arguments: exits 1 with a message if the
 * daemon is missing, 77 (skip) if this process cannot use io_uring.
 */
void blkt_init(int argc, char **argv);

struct blkt {
	char dir[64];
	char sock[128];
	char file[128];
	char log[128];
	pid_t pid;                /* the daemon, 0 if none */
	int wstatus;              /* its wait status once reaped */
	char *argv[64];           /* the last command line, for blkt_respawn */
	unsigned int argc;
	struct vuf *vuf;
	struct vuf_vq *vq[BLKT_MAX_QUEUES];
	unsigned int nq;
	bool packed;
	uint64_t data_used;       /* bump offset into the data arena */
	bool passed;              /* the test body ran to blkt_pass() */
	void *priv;               /* for the test */
};

/* cmocka fixture: a fresh struct blkt in *state, with its directory. */
int blkt_setup(void **state);
/*
 * cmocka fixture: close the connection, stop the daemon (SIGTERM, then
 * SIGKILL after 10 s) and reap it, remove the directory.  Fails (and
 * prints the daemon's log) if the daemon's log holds a sanitizer report,
 * or if the test passed but the daemon did not exit 0 on SIGTERM.
 */
int blkt_teardown(void **state);

/*
 * End of a test body: the daemon is still running (it did not crash),
 * and no queue saw a missing call or a completion longer than its buffer.
 */
void blkt_pass(struct blkt *t);

/* path inside the test's directory. */
void blkt_path(const struct blkt *t, char *buf, size_t size, const char *name);

/* Create a file of bytes (sparse) filled with blkt_pattern(seed) unless seed is 0. */
void blkt_make_file(const char *path, uint64_t bytes, uint64_t seed);

/*
 * Start the daemon with exactly argv (argv[0] is ignored and replaced by
 * blkt_daemon), stdout and stderr appended to t->log, stdin /dev/null.
 */
void blkt_spawn_argv(struct blkt *t, const char *const *argv);
/*
 * Start the daemon on t->sock and t->file, pinned (--cpus 0) with
 * adaptive polling, plus the NULL-terminated extra arguments (a later
 * --cpus overrides the default one).
 */
void blkt_spawn(struct blkt *t, const char *const *extra);
/*
 * Run the daemon with argv (argv[0] ignored) to its exit, stdout and
 * stderr to the files out and err; SIGKILL after timeout_ms.  Returns
 * the wait status, -1 if it had to be killed.  t->pid is not used.
 */
int blkt_run(const char *const *argv, const char *out, const char *err, int timeout_ms);
/* Start the daemon again with the last command line. */
void blkt_respawn(struct blkt *t);
/* Send sig to the daemon (asserting it runs); nothing is reaped. */
void blkt_signal(struct blkt *t, int sig);
/* Kill (SIGKILL) and reap the daemon; no-op without one. */
void blkt_kill(struct blkt *t);
/*
 * Ask the daemon to exit (SIGTERM), reap it, SIGKILL after timeout_ms;
 * returns the wait status (-1 without a daemon).  Thread: main.
 */
int blkt_stop(struct blkt *t, int timeout_ms);
/* True while the daemon runs (reaps it if it exited). */
bool blkt_alive(struct blkt *t);
/* Contents of the daemon's log (malloc'ed, NUL-terminated). */
char *blkt_read_log(const struct blkt *t);

struct blkt_conn_opts {
	unsigned int nq;          /* queues to start (0: 1) */
	unsigned int qsize;       /* 0: 128 */
	bool packed;
	bool inflight;            /* GET/SET_INFLIGHT_FD before the queues start */
	bool backend_channel;     /* SET_BACKEND_REQ_FD */
	uint64_t drop_features;   /* virtio features not to acknowledge */
	unsigned int indirect_max; /* per indirect table; 0: 128 */
	const char *sock;         /* NULL: t->sock */
};

/*
 * Connect to the daemon (retrying while its socket appears), negotiate
 * every offered feature (minus drop_features) and the protocol features
 * the tests use, share guest memory and start the queues.
 */
void blkt_connect(struct blkt *t, const struct blkt_conn_opts *o);
/* Close the connection (the daemon stays). */
void blkt_disconnect(struct blkt *t);

/* Data arena: len bytes aligned to align (power of two, 0: 4096). */
void *blkt_data(struct blkt *t, size_t len, size_t align, uint64_t *gpa);
void blkt_data_reset(struct blkt *t);
/* Copy to / from guest memory at gpa; the range may cross regions. */
void blkt_gwrite(struct blkt *t, uint64_t gpa, const void *src, size_t len);
void blkt_gread(struct blkt *t, uint64_t gpa, void *dst, size_t len);

/*
 * Deterministic content: the 8-byte word at disk byte offset off
 * (a multiple of 8) under seed.  Seed 0 is all zeroes.
 */
void blkt_pattern(void *buf, size_t len, uint64_t disk_off, uint64_t seed);
/* Index of the first byte of buf that differs from the pattern, or -1. */
long blkt_pattern_diff(const void *buf, size_t len, uint64_t disk_off, uint64_t seed);

struct blkt_buf {
	uint64_t gpa;
	uint32_t len;
};

/* One request: its header and status byte live in region 0. */
struct blkt_req {
	struct virtio_blk_outhdr *ghdr;
	uint64_t hdr_gpa;
	uint8_t *gstatus;
	uint64_t status_gpa;
	struct vuf_seg seg[BLKT_MAX_SEGS + 4];
	unsigned int nseg;
	unsigned int post_flags;  /* VUF_POST_INDIRECT */
	/* Completion: */
	bool done;
	uint32_t len;             /* bytes the device says it wrote */
};

/* Allocate r's header and status byte (once per struct). */
void blkt_req_init(struct blkt *t, struct blkt_req *r);
/*
 * Build the usual chain: the 16-byte header (type, sector), the data
 * segments (device-writable for IN and GET_ID, readable otherwise), then
 * the status byte, preset to 0xff.  Thread-safe.
 */
void blkt_req_build(struct blkt_req *r, uint32_t type, uint64_t sector,
		    const struct blkt_buf *data, unsigned int n);
/* Status byte as the device left it (0xff: never written). */
uint8_t blkt_req_status(const struct blkt_req *r);

/* Post r on queue q and kick.  0 or -errno (-ENOSPC: ring full). */
int blkt_try_post(struct blkt *t, unsigned int q, struct blkt_req *r);
/* Wait for completions on q and mark their requests done; returns the count or -errno. */
int blkt_try_reap(struct blkt *t, unsigned int q, int timeout_ms);

/* Post r (asserting) and wait until it completes; returns its status byte. */
uint8_t blkt_do(struct blkt *t, unsigned int q, struct blkt_req *r);
/* Wait until r completed (other completions are recorded on the way). */
void blkt_wait_req(struct blkt *t, unsigned int q, struct blkt_req *r);

/* One-segment request in a fresh request struct; *len receives the completion length. */
uint8_t blkt_rw(struct blkt *t, unsigned int q, uint32_t type, uint64_t sector, uint64_t gpa,
		uint32_t len, uint32_t *done_len);
/* Request without data (FLUSH, unknown types). */
uint8_t blkt_nodata(struct blkt *t, unsigned int q, uint32_t type, uint64_t sector);
/* Write nsect sectors of blkt_pattern(seed) at sector; returns the status. */
uint8_t blkt_write_pattern(struct blkt *t, unsigned int q, uint64_t sector, uint32_t nsect,
			   uint64_t seed);
/* Read nsect sectors and assert status OK, length and the pattern. */
void blkt_check_read(struct blkt *t, unsigned int q, uint64_t sector, uint32_t nsect,
		     uint64_t seed);
/* DISCARD / WRITE_ZEROES with n ranges (host byte order, converted here). */
uint8_t blkt_ranges(struct blkt *t, unsigned int q, uint32_t type,
		    const struct virtio_blk_discard_write_zeroes *ranges, unsigned int n);

/* Assert the file holds blkt_pattern(seed) at [off, off + len). */
void blkt_check_file(const char *path, uint64_t off, uint64_t len, uint64_t seed);

/*
 * Queue 0 of the inflight area (of a queue of qsize): chains marked in
 * flight, and (split ring) how many of them the used ring already holds
 * without the area knowing.
 */
unsigned int blkt_inflight(struct blkt *t, unsigned int qsize, unsigned int *in_used);
/* The number in the daemon's last "resubmitting N in-flight requests" line, or -1. */
long blkt_resubmitted(const struct blkt *t);

/* The whole config space. */
void blkt_get_config(struct blkt *t, struct virtio_blk_config *cfg);

#endif
