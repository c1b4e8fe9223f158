// SPDX-License-Identifier: Apache-2.0
/*
 * Description: small file helpers (sysfs, /proc) over the ops layer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int beluga_close_fd(struct beluga_pool *pool, int fd)
{
	int ret;

	if (fd < 0)
		return 0;
	ret = pool->ops.close(pool->ops.ctx, fd);
	if (ret)
		blog_warn(pool, "close(%d): %s", fd, strerror(-ret));
	return ret;
}

/* Read up to len - 1 bytes of a small file, NUL-terminate; returns length. */
int beluga_read_file(struct beluga_pool *pool, int dirfd, const char *path,
		     char *buf, size_t len)
{
	const struct beluga_ops *o = &pool->ops;
	size_t used = 0;
	int fd = o->openat(o->ctx, dirfd, path, O_RDONLY | O_CLOEXEC, 0);

	if (fd < 0)
		return fd;
	while (used + 1 < len) {
		ssize_t n = o->read(o->ctx, fd, buf + used, len - 1 - used);

		if (n == -EINTR)
			continue;
		if (n < 0) {
			beluga_close_fd(pool, fd);
			return (int)n;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	buf[used] = '\0';
	beluga_close_fd(pool, fd);
	return (int)used;
}

int beluga_read_u64(struct beluga_pool *pool, int dirfd, const char *path,
		    uint64_t *value)
{
	char buf[64], *end;
	int ret = beluga_read_file(pool, dirfd, path, buf, sizeof(buf));

	if (ret < 0)
		return ret;
	errno = 0;
	*value = strtoull(buf, &end, 0);
	if (errno || end == buf || (*end && *end != '\n'))
		return -EIO;
	return 0;
}

/*
 * Call @fn for each entry name of directory @dirfd/@path.  The directory is
 * opened anew so concurrent walks of the same pool do not share an offset.
 */
int beluga_for_each_dirent(struct beluga_pool *pool, int dirfd,
			   const char *path,
			   int (*fn)(void *arg, const char *name), void *arg)
{
	const struct beluga_ops *o = &pool->ops;
	char buf[4096] __attribute__((aligned(8)));
	int fd = o->openat(o->ctx, dirfd, path,
			   O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	int ret = 0;

	if (fd < 0)
		return fd;
	for (;;) {
		ssize_t n = o->getdents(o->ctx, fd, buf, sizeof(buf));

		if (n <= 0) {
			ret = (int)n;
			break;
		}
		for (ssize_t off = 0; off < n && !ret;) {
			/* struct linux_dirent64: ino, off, reclen, type, name */
			unsigned short reclen;

			memcpy(&reclen, buf + off + 16, sizeof(reclen));
			ret = fn(arg, buf + off + 19);
			off += reclen;
		}
		if (ret)
			break;
	}
	beluga_close_fd(pool, fd);
	return ret;
}
