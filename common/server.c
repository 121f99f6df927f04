// SPDX-License-Identifier: MIT
/*
 * The control thread's event loop and the endpoints that connect a device
 * to its front-end (see vu_server.h).  All of it runs on one thread.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "vu_dev.h"
#include "vu_server.h"
#include "vu_util.h"

#define LOOP_MAX_WATCHES 1024

struct watch {
	int fd;
	vu_loop_cb cb;
	void *arg;
};

struct vu_loop {
	int epfd;
	bool stop;
	struct watch watches[LOOP_MAX_WATCHES];
};

struct vu_endpoint {
	struct vu_loop *loop;
	struct vu_dev *dev;
	enum vu_endpoint_mode mode;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int listen_fd;
	int conn_fd;
	int timer_fd;          /* client mode: reconnect timer */
	uint32_t reconnect_ms;
	bool unlink_on_destroy;
};

/* The signals the loop takes from its signalfd. */
static void loop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
}

struct vu_loop *vu_loop_create(void)
{
	struct vu_loop *loop = calloc(1, sizeof(*loop));
	sigset_t set;

	if (!loop)
		return NULL;
	/* A signalfd sees only signals every thread blocks: block them now,
	 * so that threads created later (pollers) inherit the mask and a
	 * SIGTERM or SIGHUP never hits a poller with its default action. */
	loop_signals(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		free(loop);
		return NULL;
	}
	for (unsigned int i = 0; i < LOOP_MAX_WATCHES; i++)
		loop->watches[i].fd = -1;
	return loop;
}

void vu_loop_destroy(struct vu_loop *loop)
{
	if (!loop)
		return;
	close(loop->epfd);
	free(loop);
}

int vu_loop_add(struct vu_loop *loop, int fd, uint32_t events, vu_loop_cb cb, void *arg)
{
	struct epoll_event ev = { .events = events };

	for (unsigned int i = 0; i < LOOP_MAX_WATCHES; i++) {
		struct watch *w = &loop->watches[i];

		if (w->fd >= 0)
			continue;
		ev.data.ptr = w;
		if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			return -errno;
		w->fd = fd;
		w->cb = cb;
		w->arg = arg;
		return 0;
	}
	return -ENOSPC;
}

void vu_loop_del(struct vu_loop *loop, int fd)
{
	for (unsigned int i = 0; i < LOOP_MAX_WATCHES; i++) {
		if (loop->watches[i].fd == fd) {
			epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
			loop->watches[i].fd = -1;
			return;
		}
	}
}

void vu_loop_stop(struct vu_loop *loop)
{
	loop->stop = true;
}

int vu_loop_run(struct vu_loop *loop, void (*on_sighup)(void *arg), void *arg)
{
	struct epoll_event sev = { .events = EPOLLIN, .data.ptr = NULL };
	sigset_t set;
	int sfd, ret = 0;

	loop_signals(&set);
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0 || epoll_ctl(loop->epfd, EPOLL_CTL_ADD, sfd, &sev) < 0) {
		ret = -errno;
		goto out;
	}
	while (!loop->stop) {
		struct epoll_event evs[32];
		int n = epoll_wait(loop->epfd, evs, 32, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		for (int i = 0; i < n && !loop->stop; i++) {
			struct watch *w = evs[i].data.ptr;

			if (!w) {
				struct signalfd_siginfo si;

				while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGHUP) {
						if (on_sighup)
							on_sighup(arg);
					} else {
						vu_info("signal %u: shutting down", si.ssi_signo);
						loop->stop = true;
					}
				}
				continue;
			}
			/* A callback may remove watches; skip ones gone. */
			if (w->fd >= 0)
				w->cb(loop, w->fd, evs[i].events, w->arg);
		}
	}
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, sfd, NULL);
out:
	if (sfd >= 0)
		close(sfd);
	return ret;
}

static int fill_sun(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	strcpy(sun->sun_path, path);
	return 0;
}

/*
 * bind() creates the socket file with the permissions the umask leaves;
 * bind under an owner-only umask so that the file is never, even before
 * the chmod() to the wanted mode, open to others (the umask is the
 * process's: a file another thread creates meanwhile can only come out
 * stricter).  0 or -errno.
 */
static int bind_owner_only(int fd, const struct sockaddr_un *sun)
{
	mode_t old = umask(0177);
	int ret = bind(fd, (const struct sockaddr *)sun, sizeof(*sun)) < 0 ? -errno : 0;

	umask(old);
	return ret;
}

int vu_listen_unix(const char *path, mode_t mode)
{
	struct sockaddr_un sun;
	int fd, ret;

	ret = fill_sun(&sun, path);
	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = bind_owner_only(fd, &sun);
	if (ret == -EADDRINUSE) {
		/* Replace the file only if nothing listens on it (D.28). */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct stat st;

		ret = probe < 0 ? -errno : 0;
		if (!ret && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			ret = -EADDRINUSE;
		else if (!ret && errno != ECONNREFUSED)
			ret = -EADDRINUSE;
		if (probe >= 0)
			close(probe);
		if (!ret && (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode)))
			ret = -EEXIST;
		if (!ret && unlink(path) < 0)
			ret = -errno;
		if (!ret)
			ret = bind_owner_only(fd, &sun);
		if (ret)
			goto err;
	} else if (ret) {
		goto err;
	}
	if (chmod(path, mode ? mode : 0600) < 0 || listen(fd, 1) < 0) {
		ret = -errno;
		unlink(path);
		goto err;
	}
	return fd;
err:
	close(fd);
	return ret;
}

static void ep_on_conn(struct vu_loop *loop, int fd, uint32_t events, void *arg);
static void ep_on_listen(struct vu_loop *loop, int fd, uint32_t events, void *arg);
static void ep_try_connect(struct vu_endpoint *ep);

static void ep_arm_reconnect(struct vu_endpoint *ep)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = ep->reconnect_ms / 1000,
			      .tv_nsec = (long)(ep->reconnect_ms % 1000) * 1000000 },
	};

	timerfd_settime(ep->timer_fd, 0, &its, NULL);
}

static void ep_disconnect(struct vu_endpoint *ep)
{
	if (ep->conn_fd < 0)
		return;
	vu_loop_del(ep->loop, ep->conn_fd);
	vu_dev_disconnect(ep->dev);
	vu_close_fd(&ep->conn_fd);
	vu_info("%s: front-end disconnected", ep->dev->name);
	if (ep->mode == VU_EP_CLIENT)
		ep_arm_reconnect(ep);
}

static int ep_attach(struct vu_endpoint *ep, int fd)
{
	int ret = vu_loop_add(ep->loop, fd, EPOLLIN | EPOLLRDHUP, ep_on_conn, ep);

	if (ret) {
		close(fd);
		return ret;
	}
	ep->conn_fd = fd;
	vu_dev_connect(ep->dev, fd);
	vu_info("%s: front-end connected", ep->dev->name);
	return 0;
}

static void ep_on_conn(struct vu_loop *loop, int fd, uint32_t events, void *arg)
{
	struct vu_endpoint *ep = arg;
	struct vu_msg msg, reply;
	int ret;

	(void)loop;
	(void)events;
	ret = vu_msg_recv(fd, &msg);
	if (ret) {
		if (ret != -ECONNRESET)
			vu_warn("%s: bad message from the front-end: %s", ep->dev->name, strerror(-ret));
		ep_disconnect(ep);
		return;
	}
	ret = vu_dev_handle_msg(ep->dev, &msg, &reply);
	if (ret == VU_HANDLED_REPLY)
		ret = vu_msg_send(fd, &reply);
	if (ret < 0)
		ep_disconnect(ep);
}

/* True if the peer of a connected socket has closed its end. */
static bool peer_gone(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static void ep_on_listen(struct vu_loop *loop, int fd, uint32_t events, void *arg)
{
	struct vu_endpoint *ep = arg;
	int c;

	(void)loop;
	(void)events;
	/* The front-end is gone, its hang-up just not handled yet (it left
	 * before we accepted it, and the listening socket came first in
	 * this batch of events): it must not make us turn away the one that
	 * follows.  That one is accepted on the next turn of the loop (the
	 * listening socket is level-triggered), once this batch, which may
	 * still hold an event of the old connection, is over. */
	if (ep->conn_fd >= 0 && peer_gone(ep->conn_fd)) {
		ep_disconnect(ep);
		return;
	}
	c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	if (ep->conn_fd >= 0) {
		/* One front-end per device at a time. */
		vu_warn("%s: refusing a second front-end while one is connected", ep->dev->name);
		close(c);
		return;
	}
	ep_attach(ep, c);
}

static void ep_on_timer(struct vu_loop *loop, int fd, uint32_t events, void *arg)
{
	uint64_t v;

	(void)loop;
	(void)events;
	if (read(fd, &v, sizeof(v)) < 0) {
		/* spurious */
	}
	ep_try_connect(arg);
}

static void ep_try_connect(struct vu_endpoint *ep)
{
	struct sockaddr_un sun;
	int fd;

	if (ep->conn_fd >= 0 || fill_sun(&sun, ep->path))
		return;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (fd >= 0)
			close(fd);
		ep_arm_reconnect(ep);
		return;
	}
	ep_attach(ep, fd);
}

struct vu_endpoint *vu_endpoint_create(struct vu_loop *loop, struct vu_dev *dev,
				       const struct vu_endpoint_config *cfg)
{
	struct vu_endpoint *ep = calloc(1, sizeof(*ep));
	int ret = 0, listening = 0;
	socklen_t len = sizeof(listening);

	if (!ep)
		return NULL;
	ep->loop = loop;
	ep->dev = dev;
	ep->mode = cfg->mode;
	ep->listen_fd = ep->conn_fd = ep->timer_fd = -1;
	ep->reconnect_ms = cfg->reconnect_ms ? cfg->reconnect_ms : 1000;
	if (cfg->path && strlen(cfg->path) >= sizeof(ep->path)) {
		vu_err("socket path too long: %s", cfg->path);
		ret = -ENAMETOOLONG;
		goto err;
	}
	if (cfg->path)
		strcpy(ep->path, cfg->path);

	switch (cfg->mode) {
	case VU_EP_SERVER:
		ret = vu_listen_unix(ep->path, cfg->socket_mode);
		if (ret < 0) {
			vu_err("cannot listen on %s: %s", ep->path,
			       ret == -EADDRINUSE ? "another process listens there" : strerror(-ret));
			goto err;
		}
		ep->listen_fd = ret;
		ep->unlink_on_destroy = true;
		ret = vu_loop_add(loop, ep->listen_fd, EPOLLIN, ep_on_listen, ep);
		break;
	case VU_EP_CLIENT:
		ep->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (ep->timer_fd < 0) {
			ret = -errno;
			goto err;
		}
		ret = vu_loop_add(loop, ep->timer_fd, EPOLLIN, ep_on_timer, ep);
		if (ret == 0)
			ep_try_connect(ep);
		break;
	case VU_EP_FD:
		if (getsockopt(cfg->fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0) {
			ret = -errno;
			vu_err("--fd %d is not a socket: %s", cfg->fd, strerror(errno));
			goto err;
		}
		if (listening) {
			ep->listen_fd = cfg->fd;
			ret = vu_loop_add(loop, ep->listen_fd, EPOLLIN, ep_on_listen, ep);
		} else {
			ret = ep_attach(ep, cfg->fd);
		}
		break;
	}
	if (ret)
		goto err;
	return ep;
err:
	vu_endpoint_destroy(ep);
	errno = -ret;
	return NULL;
}

void vu_endpoint_destroy(struct vu_endpoint *ep)
{
	if (!ep)
		return;
	ep->mode = VU_EP_SERVER;        /* no reconnect from here on */
	ep_disconnect(ep);
	if (ep->listen_fd >= 0) {
		vu_loop_del(ep->loop, ep->listen_fd);
		close(ep->listen_fd);
		if (ep->unlink_on_destroy)
			unlink(ep->path);
	}
	if (ep->timer_fd >= 0) {
		vu_loop_del(ep->loop, ep->timer_fd);
		close(ep->timer_fd);
	}
	free(ep);
}

bool vu_endpoint_connected(const struct vu_endpoint *ep)
{
	return ep->conn_fd >= 0;
}
