// SPDX-License-Identifier: MIT
/*
 * The store of the rbd engine: an RBD image opened through librbd, on a
 * cluster connection shared by every disk with the same configuration
 * file and client name.  Control thread only: the connections are opened
 * before any poller runs and closed after they stopped.
 *
 * Errors name what failed (configuration, connection, credentials, pool,
 * image, snapshot) in one line.  A cluster that does not answer fails the
 * connection after client_mount_timeout, which we lower from Ceph's 300 s
 * to RBD_MOUNT_TIMEOUT unless the configuration sets it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "blk.h"
#include "rbd.h"
#include "vu_util.h"

#define RBD_MOUNT_TIMEOUT "10"

struct rbd_cluster {
	struct rbd_cluster *next;
	char *conf;               /* NULL: Ceph's default search */
	char *id;                 /* NULL: admin */
	rados_t rados;
	unsigned int refs;
	bool announced;           /* logged once an image opened on it */
};

static struct rbd_cluster *clusters;

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static const char *client_name(const char *id)
{
	return id ? id : "admin";
}

static const char *conf_name(const char *conf)
{
	return conf ? conf : "the default Ceph configuration";
}

static void cluster_put(struct rbd_cluster *c)
{
	if (!c || --c->refs)
		return;
	for (struct rbd_cluster **p = &clusters; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	rados_shutdown(c->rados);
	free(c->conf);
	free(c->id);
	free(c);
}

static const char *connect_hint(int err)
{
	switch (err) {
	case -EACCES:
	case -EPERM:
		return " (bad credentials? check the key of this client in the keyring)";
	case -ETIMEDOUT:
		return " (no monitor answered: check mon_host)";
	case -ENOENT:
		return " (no keyring found for this client?)";
	default:
		return "";
	}
}

/* The connection for (conf, id), opened on first use. */
static struct rbd_cluster *cluster_get(const char *conf, const char *id)
{
	struct rbd_cluster *c;
	int ret;

	for (c = clusters; c; c = c->next)
		if (same_str(c->conf, conf) && same_str(c->id, id)) {
			c->refs++;
			return c;
		}
	c = calloc(1, sizeof(*c));
	if (!c || (conf && !(c->conf = strdup(conf))) || (id && !(c->id = strdup(id)))) {
		vu_err("rbd: out of memory");
		goto fail_alloc;
	}
	ret = rados_create(&c->rados, id);
	if (ret < 0) {
		vu_err("rbd: cannot create a Ceph client for client.%s: %s", client_name(id),
		       strerror(-ret));
		goto fail_alloc;
	}
	/* Ours first, so that the configuration file may override it. */
	rados_conf_set(c->rados, "client_mount_timeout", RBD_MOUNT_TIMEOUT);
	ret = rados_conf_read_file(c->rados, conf);
	if (ret < 0) {
		vu_err("rbd: cannot read the Ceph configuration %s: %s", conf_name(conf),
		       strerror(-ret));
		goto fail;
	}
	rados_conf_parse_env(c->rados, NULL);
	ret = rados_connect(c->rados);
	if (ret < 0) {
		vu_err("rbd: cannot connect to the Ceph cluster of %s as client.%s: %s%s",
		       conf_name(conf), client_name(id), strerror(-ret), connect_hint(ret));
		goto fail;
	}
	c->refs = 1;
	c->next = clusters;
	clusters = c;
	return c;
fail:
	rados_shutdown(c->rados);
fail_alloc:
	if (c) {
		free(c->conf);
		free(c->id);
		free(c);
	}
	return NULL;
}

/* Split POOL[/NAMESPACE]/IMAGE[@SNAP] into img's fields; false if malformed. */
static bool parse_spec(struct blk_rbd_image *img, const char *spec)
{
	char *s, *slash, *at;

	if (strlen(spec) >= sizeof(img->spec))
		return false;
	strcpy(img->spec, spec);
	strcpy(img->buf, spec);
	s = img->buf;
	at = strchr(s, '@');
	if (at) {
		*at = '\0';
		img->snap = at + 1;
		if (!*img->snap)
			return false;
	}
	slash = strchr(s, '/');
	if (!slash)
		return false;
	*slash = '\0';
	img->pool = s;
	img->image = slash + 1;
	slash = strchr(img->image, '/');
	if (slash) {
		*slash = '\0';
		img->nspace = img->image;
		img->image = slash + 1;
	}
	return *img->pool && *img->image && !strchr(img->image, '/') &&
	       (!img->nspace || *img->nspace);
}

static void image_free(struct blk_rbd_image *img)
{
	if (img->watching)
		rbd_update_unwatch(img->rbd, img->watch);
	if (img->rbd)
		rbd_close(img->rbd);  /* flushes librbd's cache, waits for I/O */
	if (img->io)
		rados_ioctx_destroy(img->io);
	cluster_put(img->cluster);
	free(img);
}

/* librbd thread: the image's header changed (size, snapshots, ...). */
static void image_updated(void *arg)
{
	struct blk_disk *disk = arg;
	uint64_t one = 1;

	if (write(disk->change_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: already signalled and not yet read */
	}
}

static int open_image(struct blk_disk *disk, struct blk_rbd_image *img)
{
	const struct blk_disk_config *cfg = &disk->cfg;
	int ret;

	img->cluster = cluster_get(cfg->ceph_conf, cfg->ceph_id);
	if (!img->cluster)
		return -EIO;
	ret = rados_ioctx_create(img->cluster->rados, img->pool, &img->io);
	if (ret < 0) {
		img->io = NULL;
		vu_err("rbd: %s: pool '%s': %s", img->spec, img->pool,
		       ret == -ENOENT ? "no such pool" : strerror(-ret));
		return ret;
	}
	if (img->nspace)
		rados_ioctx_set_namespace(img->io, img->nspace);
	if (cfg->read_only || img->snap)
		ret = rbd_open_read_only(img->io, img->image, &img->rbd, img->snap);
	else
		ret = rbd_open(img->io, img->image, &img->rbd, NULL);
	if (ret < 0) {
		img->rbd = NULL;
		if (ret == -ENOENT)
			vu_err("rbd: %s: no such image%s", img->spec, img->snap ? " or snapshot" : "");
		else
			vu_err("rbd: %s: cannot open the image: %s%s", img->spec, strerror(-ret),
			       ret == -EPERM || ret == -EACCES ? " (check the client's caps)" : "");
		return ret;
	}
	return 0;
}

int blk_rbd_open(struct blk_disk *disk, const struct blk_disk_config *cfg)
{
	struct blk_rbd_image *img = calloc(1, sizeof(*img));
	uint64_t bytes;
	int ret;

	if (!img)
		return -ENOMEM;
	if (!parse_spec(img, cfg->rbd)) {
		vu_err("rbd: '%s' is not POOL[/NAMESPACE]/IMAGE[@SNAP]", cfg->rbd);
		free(img);
		return -EINVAL;
	}
	blk_disk_init(disk, cfg, img->spec);
	disk->store = img;
	ret = open_image(disk, img);
	if (ret == 0) {
		ret = rbd_get_size(img->rbd, &bytes);
		if (ret < 0)
			vu_err("rbd: %s: cannot read its size: %s", img->spec, strerror(-ret));
	}
	if (ret == 0) {
		disk->change_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		ret = disk->change_fd < 0 ? -errno : rbd_update_watch(img->rbd, &img->watch,
								       image_updated, disk);
		if (ret < 0)
			vu_err("rbd: %s: cannot watch the image for resizes: %s", img->spec,
			       strerror(-ret));
		img->watching = ret == 0;
	}
	if (ret < 0) {
		blk_rbd_close(disk);
		return ret;
	}
	if (!img->cluster->announced) {
		/* Only now: a failed start prints nothing but its error. */
		vu_info("rbd: connected to the Ceph cluster of %s as client.%s",
			conf_name(cfg->ceph_conf), client_name(cfg->ceph_id));
		img->cluster->announced = true;
	}
	blk_disk_set_size(disk, bytes);
	if (img->snap)
		disk->cfg.read_only = true;
	if (!cfg->serial)
		memcpy(disk->serial, img->image, strnlen(img->image, sizeof(disk->serial)));
	return 0;
}

void blk_rbd_close(struct blk_disk *disk)
{
	if (disk->store)
		image_free(disk->store);
	disk->store = NULL;
	vu_close_fd(&disk->change_fd);
}

bool blk_rbd_refresh_size(struct blk_disk *disk)
{
	struct blk_rbd_image *img = disk->store;
	uint64_t bytes;
	int ret = rbd_get_size(img->rbd, &bytes);

	if (ret < 0) {
		vu_warn("rbd: %s: cannot read its size: %s", img->spec, strerror(-ret));
		return false;
	}
	return blk_disk_set_size(disk, bytes);
}
