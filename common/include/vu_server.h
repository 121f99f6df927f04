/* SPDX-License-Identifier: MIT */
/*
 * The control thread: an epoll loop that owns the sockets, and the
 * endpoints that connect a vu_dev to its front-end.
 *
 * An endpoint is one of:
 *  - server: listens on a path (owner-only permissions unless a mode is
 *    given; a stale socket file is replaced only if nothing listens on
 *    it, SECURITY.md D.28) and accepts one front-end at a time;
 *  - client: connects to a listening front-end (QEMU `server=on`),
 *    retrying until it answers, and again after a disconnect;
 *  - fd: an inherited socket (--fd), listening or already connected.
 */
#ifndef VU_SERVER_H
#define VU_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct vu_dev;
struct vu_loop;
struct vu_endpoint;

typedef void (*vu_loop_cb)(struct vu_loop *loop, int fd, uint32_t events, void *arg);

/*
 * Create / destroy the loop.  destroy accepts NULL.  create blocks
 * SIGINT, SIGTERM and SIGHUP in the calling thread (the loop takes them
 * from a signalfd): call it before creating any other thread.
 */
struct vu_loop *vu_loop_create(void);
void vu_loop_destroy(struct vu_loop *loop);

/* Watch fd for events (EPOLLIN...).  0 or -errno. */
int vu_loop_add(struct vu_loop *loop, int fd, uint32_t events, vu_loop_cb cb, void *arg);
void vu_loop_del(struct vu_loop *loop, int fd);

/*
 * Run until vu_loop_stop() or a SIGINT/SIGTERM (taken through a
 * signalfd).  on_sighup, if set, runs on SIGHUP.  Returns 0 or -errno.
 */
int vu_loop_run(struct vu_loop *loop, void (*on_sighup)(void *arg), void *arg);
void vu_loop_stop(struct vu_loop *loop);

enum vu_endpoint_mode {
	VU_EP_SERVER,
	VU_EP_CLIENT,
	VU_EP_FD,
};

struct vu_endpoint_config {
	enum vu_endpoint_mode mode;
	const char *path;          /* server, client */
	int fd;                    /* fd mode */
	mode_t socket_mode;        /* server: 0 = 0600 */
	uint32_t reconnect_ms;     /* client: retry period; 0 = 1000 */
};

/*
 * Create an endpoint serving dev on loop.  Server mode: the socket is
 * listening when this returns.  Client mode: the first attempt is made
 * at once.  Returns NULL with errno set (a log line names the problem).
 */
struct vu_endpoint *vu_endpoint_create(struct vu_loop *loop, struct vu_dev *dev,
				       const struct vu_endpoint_config *cfg);

/* Disconnect the front-end, close sockets, unlink our socket file. */
void vu_endpoint_destroy(struct vu_endpoint *ep);

/* True while a front-end is connected. */
bool vu_endpoint_connected(const struct vu_endpoint *ep);

/*
 * Create a listening Unix socket at path with permissions mode, replacing
 * a stale socket file only if connecting to it fails with ECONNREFUSED.
 * Returns the fd or -errno (-EADDRINUSE if something listens there).
 */
int vu_listen_unix(const char *path, mode_t mode);

#endif
