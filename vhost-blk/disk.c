// SPDX-License-Identifier: MIT
/*
 * What every backing store shares (defaults, capacity changes), and the
 * file store of the io_uring and null engines: a regular file or a block
 * device, opened with O_DIRECT when the filesystem allows it, plus a
 * buffered fd for requests whose buffers O_DIRECT refuses.  Never creates
 * or truncates.
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

void blk_disk_init(struct blk_disk *disk, const struct blk_disk_config *cfg, const char *name)
{
	memset(disk, 0, sizeof(*disk));
	disk->cfg = *cfg;
	disk->name = name;
	disk->change_fd = -1;
	disk->fd = disk->fd_buffered = -1;
	disk->blk_size = BLK_SECTOR_SIZE;
	disk->wce = cfg->writeback;
	if (cfg->serial)
		memcpy(disk->serial, cfg->serial, strnlen(cfg->serial, sizeof(disk->serial)));
}

bool blk_disk_set_size(struct blk_disk *disk, uint64_t bytes)
{
	uint64_t sectors = bytes >> BLK_SECTOR_SHIFT;
	uint64_t old = __atomic_load_n(&disk->capacity, __ATOMIC_RELAXED);

	if (sectors == old)
		return false;
	if (old)
		vu_info("%s: size changed from %llu to %llu sectors", disk->name,
			(unsigned long long)old, (unsigned long long)sectors);
	/* Release: pairs with the request path's acquire load. */
	__atomic_store_n(&disk->capacity, sectors, __ATOMIC_RELEASE);
	return true;
}

int blk_file_open(struct blk_disk *disk, const struct blk_disk_config *cfg)
{
	int flags = (cfg->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct stat st;
	uint64_t bytes;
	int ret;

	blk_disk_init(disk, cfg, cfg->file);
	disk->fd_buffered = open(cfg->file, flags);
	if (disk->fd_buffered < 0) {
		ret = -errno;
		vu_err("cannot open %s: %s", cfg->file, strerror(errno));
		return ret;
	}
	if (fstat(disk->fd_buffered, &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))) {
		vu_err("%s is neither a regular file nor a block device", cfg->file);
		blk_file_close(disk);
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
		blk_file_close(disk);
		return ret;
	}
	ret = disk_size(disk, &bytes);
	if (ret) {
		vu_err("%s: cannot read its size: %s", cfg->file, strerror(-ret));
		blk_file_close(disk);
		return ret;
	}
	blk_disk_set_size(disk, bytes);
	if (disk->is_blockdev) {
		int lbs = 0;
		unsigned int pbs = 0;

		if (ioctl(disk->fd, BLKSSZGET, &lbs) == 0 && lbs >= 512 && lbs <= 65536)
			disk->blk_size = (uint32_t)lbs;
		if (ioctl(disk->fd, BLKPBSZGET, &pbs) == 0 && pbs > disk->blk_size)
			disk->physical_block_exp = (uint8_t)(__builtin_ctz(pbs) - __builtin_ctz(disk->blk_size));
	}
	return 0;
}

void blk_file_close(struct blk_disk *disk)
{
	vu_close_fd(&disk->fd);
	vu_close_fd(&disk->fd_buffered);
}

bool blk_file_refresh_size(struct blk_disk *disk)
{
	uint64_t bytes;

	return disk_size(disk, &bytes) == 0 && blk_disk_set_size(disk, bytes);
}
