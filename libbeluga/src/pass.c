// SPDX-License-Identifier: Apache-2.0
/*
 * Description: passing a region to another process over a unix socket.
 *
 * The message carries a small header (magic, backend) and the region fd as
 * SCM_RIGHTS, so a receiver of the other backend fails cleanly (EPROTO)
 * instead of misreading a tmpfs file as a driver region or vice versa.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

#define PASS_MAGIC "BELUGA1"

struct pass_msg {
	char magic[8];
	uint32_t backend;
	uint32_t reserved;
};

int beluga_region_send(struct beluga_region *region, int sock)
{
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	struct pass_msg pm = { .magic = PASS_MAGIC };
	struct iovec iov = { &pm, sizeof(pm) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c;
	struct beluga_pool *pool;
	ssize_t n;

	if (!region)
		return -EINVAL;
	pool = region->pool;
	pm.backend = (uint32_t)pool->backend;
	memset(&u, 0, sizeof(u));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &region->fd, sizeof(int));
	do
		n = pool->ops.sendmsg(pool->ops.ctx, sock, &msg, MSG_NOSIGNAL);
	while (n == -EINTR);
	if (n < 0)
		return (int)n;
	return n == sizeof(pm) ? 0 : -EIO;
}

/* The fd of the first SCM_RIGHTS message, -1 if none; closes any extras. */
static int take_fd(struct beluga_pool *pool, struct msghdr *msg)
{
	int fd = -1;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fd < 0)
				fd = f;
			else
				beluga_close_fd(pool, f);
		}
	}
	return fd;
}

int beluga_region_recv(struct beluga_pool *pool, int sock,
		       struct beluga_region **out)
{
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	struct pass_msg pm;
	struct iovec iov = { &pm, sizeof(pm) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	ssize_t n;
	int fd, ret;

	if (!pool || !out)
		return -EINVAL;
	*out = NULL;
	do
		n = pool->ops.recvmsg(pool->ops.ctx, sock, &msg, MSG_CMSG_CLOEXEC);
	while (n == -EINTR);
	if (n < 0)
		return (int)n;
	if (n == 0)
		return -ECONNRESET;
	fd = take_fd(pool, &msg);
	if (fd < 0 || n != sizeof(pm) || (msg.msg_flags & MSG_CTRUNC) ||
	    memcmp(pm.magic, PASS_MAGIC, sizeof(pm.magic)) ||
	    pm.backend != (uint32_t)pool->backend) {
		blog_err(pool, "received a message that is not a %s-backend region",
			 pool->be->name);
		beluga_close_fd(pool, fd);
		return -EPROTO;
	}
	ret = beluga_region_from_fd(pool, fd, out);
	beluga_close_fd(pool, fd);
	return ret;
}
