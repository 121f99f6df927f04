/* SPDX-License-Identifier: MIT */
/*
 * The rbd engine's two halves: the image (rbd_image.c, control thread)
 * and the per-poller engine (engine_rbd.c).
 */
#ifndef BLK_RBD_H
#define BLK_RBD_H

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "blk.h"

struct rbd_cluster;

/* An open image: blk_disk.store of an rbd disk. */
struct blk_rbd_image {
	char spec[512];           /* POOL[/NAMESPACE]/IMAGE[@SNAP], as given */
	char buf[512];            /* spec cut into the pieces below */
	const char *pool, *nspace, *image, *snap;
	struct rbd_cluster *cluster;
	rados_ioctx_t io;
	rbd_image_t rbd;
	uint64_t watch;
	bool watching;
};

int blk_rbd_open(struct blk_disk *disk, const struct blk_disk_config *cfg);
void blk_rbd_close(struct blk_disk *disk);
bool blk_rbd_refresh_size(struct blk_disk *disk);

#endif
