// SPDX-License-Identifier: MIT
/*
 * The null engine: every request succeeds at once without I/O (reads
 * return whatever the guest buffer held), to measure the vhost path alone.
 */
#include <stdlib.h>

#include "blk.h"

struct blk_engine {
	int unused;
};

static struct blk_engine *null_create(struct vu_poller *poller)
{
	(void)poller;
	return calloc(1, sizeof(struct blk_engine));
}

static void null_destroy(struct blk_engine *eng)
{
	free(eng);
}

static void null_submit(struct blk_engine *eng, struct blk_req *req)
{
	(void)eng;
	req->pending = 1;
	blk_req_op_done(req, 0);
}

const struct blk_engine_ops blk_engine_null_ops = {
	.name = "null",
	.open_disk = blk_file_open,
	.close_disk = blk_file_close,
	.refresh_size = blk_file_refresh_size,
	.create = null_create,
	.destroy = null_destroy,
	.submit = null_submit,
};
