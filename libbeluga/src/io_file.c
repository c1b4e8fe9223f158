// SPDX-License-Identifier: Apache-2.0
/*
 * Description: saving and loading a mapping's bytes to and from a file.
 *
 * O_DIRECT moves the data between the device and region memory without the
 * page cache; io_uring keeps several 1 MiB requests in flight.  The buffers
 * are ordinary (not registered): on 6.1 io_uring refuses to register
 * buffers that live in a char-device mapping such as the driver's.  Where
 * the file system has no O_DIRECT (tmpfs) the file is opened buffered, and
 * where io_uring is unavailable (old kernel, seccomp, io_uring_disabled)
 * plain pread/pwrite do the same work.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <liburing.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define SLICE (1U << 20)
#define QD 8

struct slice {
	uint64_t off;
	uint32_t len;
	uint32_t done;
};

struct io_job {
	int fd;
	char *buf;
	uint64_t total;		/* bytes to transfer */
	uint64_t limit;		/* reads: file size; stop there */
	bool write;
};

static void prep(struct io_uring *ring, const struct io_job *j, struct slice *s)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	char *b = j->buf + s->off + s->done;
	uint32_t n = s->len - s->done;

	if (j->write)
		io_uring_prep_write(sqe, j->fd, b, n, s->off + s->done);
	else
		io_uring_prep_read(sqe, j->fd, b, n, s->off + s->done);
	io_uring_sqe_set_data(sqe, s);
}

/* Account one completion; returns true when the slice needs resubmitting. */
static bool complete(const struct io_job *j, struct slice *s, int res, int *err)
{
	if (res == -EINTR || res == -EAGAIN)
		return true;
	if (res < 0) {
		*err = *err ? *err : res;
		return false;
	}
	if (res == 0) {		/* EOF: fine for reads past the file's end */
		if (j->write || s->off + s->done < j->limit)
			*err = *err ? *err : -EIO;
		return false;
	}
	s->done += (uint32_t)res;
	return s->done < s->len && s->off + s->done < j->limit;
}

static int uring_run(const struct io_job *j)
{
	struct slice slots[QD], *free_slots[QD];
	struct io_uring ring;
	uint64_t next = 0;
	int nfree = QD, err = 0, ret;

	ret = io_uring_queue_init(QD, &ring, 0);
	if (ret < 0)
		return ret;
	for (int i = 0; i < QD; i++)
		free_slots[i] = &slots[i];
	while (nfree < QD || (next < j->total && !err)) {
		struct io_uring_cqe *cqe;
		struct slice *s;

		for (; nfree && next < j->total && !err; next += s->len) {
			s = free_slots[--nfree];
			s->off = next;
			s->len = (uint32_t)(j->total - next < SLICE ? j->total - next
								    : SLICE);
			s->done = 0;
			prep(&ring, j, s);
		}
		ret = io_uring_submit_and_wait(&ring, 1);
		if (ret < 0 && ret != -EINTR) {
			err = err ? err : ret;
			break;	/* cannot reap safely: nothing more in flight */
		}
		if (io_uring_peek_cqe(&ring, &cqe))
			continue;
		s = io_uring_cqe_get_data(cqe);
		ret = cqe->res;
		io_uring_cqe_seen(&ring, cqe);
		if (complete(j, s, ret, &err) && !err)
			prep(&ring, j, s);
		else
			free_slots[nfree++] = s;
	}
	io_uring_queue_exit(&ring);
	return err;
}

static int sync_run(const struct io_job *j)
{
	for (uint64_t off = 0; off < j->total && off < j->limit;) {
		ssize_t n = j->write ? pwrite(j->fd, j->buf + off, j->total - off, off)
				     : pread(j->fd, j->buf + off, j->total - off, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return j->write ? -EIO : 0;
		off += (uint64_t)n;
	}
	return 0;
}

static int run(struct beluga_pool *pool, const struct io_job *j)
{
	int ret = uring_run(j);

	if (ret == -ENOSYS || ret == -EPERM || ret == -EOPNOTSUPP) {
		blog_dbg(pool, "io_uring unavailable (%s): using pread/pwrite",
			 strerror(-ret));
		ret = sync_run(j);
	}
	return ret;
}

/* O_DIRECT where the file system supports it, else buffered. */
static int open_file(struct beluga_pool *pool, const char *path, int flags)
{
	const struct beluga_ops *o = &pool->ops;
	int fd = o->open(o->ctx, path, flags | O_DIRECT | O_CLOEXEC, 0600);

	if (fd == -EINVAL) {
		blog_dbg(pool, "%s: no O_DIRECT here, using buffered I/O", path);
		fd = o->open(o->ctx, path, flags | O_CLOEXEC, 0600);
	}
	return fd;
}

int beluga_mapping_save(struct beluga_mapping *m, const char *path)
{
	struct beluga_pool *pool;
	struct io_job j;
	int ret;

	if (!m || !path)
		return -EINVAL;
	if (!(m->prot & BELUGA_PROT_READ))
		return -EACCES;
	pool = m->region->pool;
	j = (struct io_job){ .buf = m->addr, .total = m->size, .limit = m->size,
			     .write = true };
	j.fd = open_file(pool, path, O_WRONLY | O_CREAT | O_TRUNC);
	if (j.fd < 0)
		return j.fd;
	ret = run(pool, &j);
	if (!ret && fdatasync(j.fd))
		ret = -errno;
	beluga_close_fd(pool, j.fd);
	return ret;
}

/* Bytes in a regular file, or in a block device (e.g. /dev/ram0, an NVMe partition). */
static int file_size(struct beluga_pool *pool, int fd, uint64_t *size)
{
	struct stat st;
	int ret = pool->ops.fstat(pool->ops.ctx, fd, &st);

	if (ret)
		return ret;
	if (S_ISBLK(st.st_mode))
		return pool->ops.ioctl(pool->ops.ctx, fd, BLKGETSIZE64, size);
	*size = (uint64_t)st.st_size;
	return 0;
}

int beluga_mapping_load(struct beluga_mapping *m, const char *path)
{
	struct beluga_pool *pool;
	struct io_job j;
	int ret;

	if (!m || !path)
		return -EINVAL;
	if (!(m->prot & BELUGA_PROT_WRITE))
		return -EACCES;
	pool = m->region->pool;
	j = (struct io_job){ .buf = m->addr, .write = false };
	j.fd = open_file(pool, path, O_RDONLY);
	if (j.fd < 0)
		return j.fd;
	ret = file_size(pool, j.fd, &j.limit);
	if (!ret && j.limit > m->size)
		ret = -EFBIG;
	if (!ret) {
		/* Whole pages, so O_DIRECT lengths stay aligned; EOF ends early. */
		j.total = (j.limit + 4095) & ~4095ULL;
		ret = run(pool, &j);
	}
	beluga_close_fd(pool, j.fd);
	return ret;
}
