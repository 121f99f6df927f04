/* SPDX-License-Identifier: MIT */
/* Device internals shared by device.c and handlers.c. */
#ifndef VU_DEV_PRIV_H
#define VU_DEV_PRIV_H

#include "vu_dev.h"
#include "vu_util.h"

/* Start a queue whose size, addresses and memory are set.  Caller paused. */
int dev_queue_start(struct vu_dev *dev, struct vu_vq *vq);
/* Stop a started queue (removes it from its poller).  Caller paused. */
void dev_queue_stop(struct vu_dev *dev, struct vu_vq *vq);
/* Stop every queue and return each to its initial state.  Caller paused. */
void dev_reset_queues(struct vu_dev *dev);

#endif
