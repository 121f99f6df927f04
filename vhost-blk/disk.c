// SPDX-License-Identifier: MIT
/*
 * The backing store of a disk: a regular file or a block device, opened
 * with O_DIRECT when the filesystem allows it, plus a buffered fd for
 * requests whose buffers O_DIRECT refuses.  Never creates or truncates.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blk.h"
#include "vu_util.h"

static int disk_size(struct blk_disk *disk, uint64_t *bytes)
{
	struct stat st;

	if (fstat(disk->fd, &st) < 0)
		return -errno;
	if (disk->is_blockdev)
		return ioctl(disk->fd, BLKGETSIZE64, bytes) < 0 ? -errno : 0;
	*bytes = (uint64_t)st.st_size;
	return 0;
}

int blk_disk_open(struct blk_disk *disk, const struct blk_disk_config *cfg)
{
	int flags = (cfg->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct stat st;
	uint64_t bytes;
	int ret;

	memset(disk, 0, sizeof(*disk));
	disk->cfg = *cfg;
	disk->fd = disk->fd_buffered = -1;
	disk->fd_buffered = open(cfg->file, flags);
	if (disk->fd_buffered < 0) {
		ret = -errno;
		vu_err("cannot open %s: %s", cfg->file, strerror(errno));
		return ret;
	}
	if (fstat(disk->fd_buffered, &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))) {
		vu_err("%s is neither a regular file nor a block device", cfg->file);
		blk_disk_close(disk);
		return -EINVAL;
	}
	disk->is_blockdev = S_ISBLK(st.st_mode);
	if (cfg->direct) {
		disk->fd = open(cfg->file, flags | O_DIRECT);
		if (disk->fd >= 0)
			disk->direct = true;
		else
			vu_warn("%s: O_DIRECT refused (%s); using the page cache", cfg->file,
				strerror(errno));
	}
	if (disk->fd < 0)
		disk->fd = dup(disk->fd_buffered);
	if (disk->fd < 0) {
		ret = -errno;
		blk_disk_close(disk);
		return ret;
	}
	ret = disk_size(disk, &bytes);
	if (ret) {
		vu_err("%s: cannot read its size: %s", cfg->file, strerror(-ret));
		blk_disk_close(disk);
		return ret;
	}
	disk->capacity = bytes >> BLK_SECTOR_SHIFT;
	disk->blk_size = BLK_SECTOR_SIZE;
	if (disk->is_blockdev) {
		int lbs = 0;
		unsigned int pbs = 0;

		if (ioctl(disk->fd, BLKSSZGET, &lbs) == 0 && lbs >= 512 && lbs <= 65536)
			disk->blk_size = (uint32_t)lbs;
		if (ioctl(disk->fd, BLKPBSZGET, &pbs) == 0 && pbs > disk->blk_size)
			disk->physical_block_exp = (uint8_t)(__builtin_ctz(pbs) - __builtin_ctz(disk->blk_size));
	}
	disk->discard = true;
	disk->write_zeroes = true;
	disk->wce = cfg->writeback;
	memset(disk->serial, 0, sizeof(disk->serial));
	if (cfg->serial)
		memcpy(disk->serial, cfg->serial, strnlen(cfg->serial, sizeof(disk->serial)));
	return 0;
}

void blk_disk_close(struct blk_disk *disk)
{
	vu_close_fd(&disk->fd);
	vu_close_fd(&disk->fd_buffered);
}

bool blk_disk_refresh_size(struct blk_disk *disk)
{
	uint64_t bytes, sectors;

	if (disk_size(disk, &bytes))
		return false;
	sectors = bytes >> BLK_SECTOR_SHIFT;
	if (sectors == __atomic_load_n(&disk->capacity, __ATOMIC_RELAXED))
		return false;
	vu_info("%s: size changed from %llu to %llu sectors", disk->cfg.file,
		(unsigned long long)disk->capacity, (unsigned long long)sectors);
	__atomic_store_n(&disk->capacity, sectors, __ATOMIC_RELEASE);
	return true;
}
