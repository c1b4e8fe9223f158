// SPDX-License-Identifier: Apache-2.0
/*
 * Description: user-space backend - creating a region file.
 *
 * A region is built in an unnamed file (O_TMPFILE; a named "t.*" temp file
 * where the file system lacks it), sized, bound to its nodes, prefaulted and
 * chmod'ed, and only then linked under its name, so no other process can
 * ever open a half-made region.  The link happens under <dir>/.lock after
 * checking the other directory, so a name exists at most once in the pool.
 * hugetlbfs is tried first when it has enough free pages; any failure there
 * falls back to tmpfs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "user_internal.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

struct new_file {
	int fd;
	int dirfd;
	bool huge;
	char tmp[64];		/* named temp file, "" with O_TMPFILE */
};

static int open_named_temp(struct beluga_pool *pool, struct new_file *nf)
{
	const struct beluga_ops *o = &pool->ops;
	struct timespec ts;
	int fd = -EEXIST;

	for (int i = 0; i < 100 && fd == -EEXIST; i++) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		snprintf(nf->tmp, sizeof(nf->tmp), "t.%d.%lx.%d", getpid(),
			 (unsigned long)ts.tv_nsec, i);
		fd = o->openat(o->ctx, nf->dirfd, nf->tmp,
			       O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			       0600);
	}
	if (fd < 0)
		nf->tmp[0] = '\0';
	return fd;
}

static int open_temp(struct beluga_pool *pool, struct new_file *nf)
{
	const struct beluga_ops *o = &pool->ops;

	nf->tmp[0] = '\0';
	nf->fd = o->openat(o->ctx, nf->dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC,
			   0600);
	if (nf->fd == -EOPNOTSUPP || nf->fd == -EISDIR || nf->fd == -EINVAL)
		nf->fd = open_named_temp(pool, nf);
	return nf->fd < 0 ? nf->fd : 0;
}

static void discard(struct beluga_pool *pool, struct new_file *nf)
{
	if (nf->tmp[0])
		(void)pool->ops.unlinkat(pool->ops.ctx, nf->dirfd, nf->tmp, 0);
	beluga_close_fd(pool, nf->fd);
	nf->fd = -1;
	nf->tmp[0] = '\0';
}

/* Fault every page in now so the memory is allocated (and placed) at create. */
static int populate(struct beluga_pool *pool, void *addr, uint64_t size)
{
	int ret = pool->ops.madvise(pool->ops.ctx, addr, size, MADV_POPULATE_WRITE);

	if (ret == -EINVAL) {	/* kernel < 5.14: touch each page */
		long page = sysconf(_SC_PAGESIZE);

		for (uint64_t off = 0; off < size; off += (uint64_t)page)
			((volatile char *)addr)[off] = 0;
		return 0;
	}
	if (ret == -ENOMEM || ret == -EFAULT)
		return -ENOSPC;
	return ret;
}

static int fill(struct beluga_pool *pool, struct new_file *nf, uint64_t size,
		int32_t source)
{
	const struct beluga_ops *o = &pool->ops;
	void *addr;
	int ret, ret2;

	ret = o->ftruncate(o->ctx, nf->fd, (int64_t)size);
	if (ret)
		return ret == -EFBIG ? -ENOSPC : ret;
	ret = o->mmap(o->ctx, NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      nf->fd, 0, &addr);
	if (ret)
		return ret == -ENOMEM ? -ENOSPC : ret;
	ret = user_bind(pool, addr, size, source);
	if (!ret)
		ret = populate(pool, addr, size);
	ret2 = o->munmap(o->ctx, addr, size);
	return ret ? ret : ret2;
}

/* 0 if @file exists in neither directory, -EEXIST if it does, else -errno. */
static int name_free(struct beluga_pool *pool, const char *file)
{
	struct stat st;

	for (int i = 0; i < 2; i++) {
		int dfd = user_dirfd(pool, i), ret;

		if (dfd < 0)
			continue;
		ret = pool->ops.fstatat(pool->ops.ctx, dfd, file, &st,
					AT_SYMLINK_NOFOLLOW);
		if (ret != -ENOENT)
			return ret ? ret : -EEXIST;
	}
	return 0;
}

static int link_name(struct beluga_pool *pool, struct new_file *nf,
		     const char *file)
{
	const struct beluga_ops *o = &pool->ops;
	char proc[64];
	int ret;

	if (nf->tmp[0]) {
		ret = o->linkat(o->ctx, nf->dirfd, nf->tmp, nf->dirfd, file, 0);
		if (!ret) {
			(void)o->unlinkat(o->ctx, nf->dirfd, nf->tmp, 0);
			nf->tmp[0] = '\0';
		}
		return ret;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", nf->fd);
	ret = o->linkat(o->ctx, AT_FDCWD, proc, nf->dirfd, file, AT_SYMLINK_FOLLOW);
	if (ret == -ENOENT)
		blog_err(pool, "linking %s needs /proc mounted", file);
	return ret;
}

/*
 * Give the finished file its name, unless another process got there first.
 * The lock file is opened per call: flock() locks belong to the open file
 * description, so threads sharing one fd would not exclude each other.
 */
static int publish(struct beluga_pool *pool, struct new_file *nf,
		   const char *name)
{
	const struct beluga_ops *o = &pool->ops;
	char file[USER_FILE_MAX];
	int lock, ret;

	user_file_name(file, name);
	lock = o->openat(o->ctx, pool->u.dirfd, ".lock",
			 O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0);
	if (lock < 0)
		return lock;
	ret = o->flock(o->ctx, lock, LOCK_EX);
	if (!ret) {
		ret = name_free(pool, file);
		if (!ret)
			ret = link_name(pool, nf, file);
	}
	beluga_close_fd(pool, lock);	/* also drops the lock */
	return ret;
}

/*
 * The creator's fd still refers to the unnamed (or temp-named) dentry, so
 * /proc/self/fd would not tell the region's name to fd-based lookups
 * (beluga_region_fstat, beluga_region_recv).  Swap it for an fd opened by
 * the new name, if that still is the same file.
 */
static int reopen_named(struct beluga_pool *pool, struct new_file *nf,
			const char *name)
{
	const struct beluga_ops *o = &pool->ops;
	char file[USER_FILE_MAX];
	struct stat a, b;
	int fd, ret;

	user_file_name(file, name);
	fd = o->openat(o->ctx, nf->dirfd, file, O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0);
	if (fd < 0)
		return fd;
	ret = o->fstat(o->ctx, nf->fd, &a);
	if (!ret)
		ret = o->fstat(o->ctx, fd, &b);
	if (!ret && a.st_ino != b.st_ino)
		ret = -ENOENT;	/* destroyed and re-created meanwhile */
	if (ret) {
		beluga_close_fd(pool, fd);
		return ret;
	}
	beluga_close_fd(pool, nf->fd);
	nf->fd = fd;
	return 0;
}

/* After publish(): a failing reopen takes the name back (like a destroy). */
static int reopen_or_unpublish(struct beluga_pool *pool, struct new_file *nf,
			       const char *name)
{
	char file[USER_FILE_MAX];
	int ret = reopen_named(pool, nf, name);

	if (ret == -ENOENT) {	/* someone destroyed it already: still ours */
		blog_warn(pool, "%s: destroyed while being created", name);
		return 0;
	}
	if (ret) {
		user_file_name(file, name);
		(void)pool->ops.unlinkat(pool->ops.ctx, nf->dirfd, file, 0);
	}
	return ret;
}

static int create_in(struct beluga_pool *pool, struct new_file *nf,
		     const char *name, uint64_t size, uint32_t mode,
		     int32_t source)
{
	int ret = open_temp(pool, nf);

	if (ret)
		return ret;
	ret = fill(pool, nf, size, source);
	if (!ret)
		ret = pool->ops.fchmod(pool->ops.ctx, nf->fd, mode);
	if (!ret && name) {
		ret = publish(pool, nf, name);
		if (!ret)
			ret = reopen_or_unpublish(pool, nf, name);
	} else if (!ret && nf->tmp[0]) {	/* ephemeral: drop the temp name now */
		ret = pool->ops.unlinkat(pool->ops.ctx, nf->dirfd, nf->tmp, 0);
		if (!ret)
			nf->tmp[0] = '\0';
	}
	if (ret)
		discard(pool, nf);
	return ret;
}

static bool huge_first(struct beluga_pool *pool, uint64_t size)
{
	return pool->u.hugefd >= 0 &&
	       user_free_hugepages(pool, -1) >= size / BELUGA_CHUNK;
}

static bool retry_on_tmpfs(int err)
{
	return err == -ENOMEM || err == -ENOSPC || err == -EINVAL ||
	       err == -EOPNOTSUPP;
}

int user_create(struct beluga_pool *pool, const char *name, uint64_t size,
		uint32_t mode, uint32_t flags, int32_t source,
		struct region_handle *out)
{
	struct new_file nf = { .fd = -1 };
	struct stat st;
	char file[USER_FILE_MAX];
	int ret = -ENOSPC;

	(void)flags;	/* ephemeral <=> name == NULL here */
	if (source >= pool->u.nr_nodes)
		return -EINVAL;
	if (name) {
		user_file_name(file, name);
		ret = name_free(pool, file);
		if (ret)
			return ret;
	}
	if (huge_first(pool, size)) {
		nf.dirfd = pool->u.hugefd;
		nf.huge = true;
		ret = create_in(pool, &nf, name, size, mode, source);
		if (ret && retry_on_tmpfs(ret))
			blog_dbg(pool, "hugetlbfs: %s; trying tmpfs", strerror(-ret));
	}
	if (!nf.huge || (ret && retry_on_tmpfs(ret))) {
		nf.dirfd = pool->u.dirfd;
		nf.huge = false;
		ret = create_in(pool, &nf, name, size, mode, source);
	}
	if (ret)
		return ret;
	ret = pool->ops.fstat(pool->ops.ctx, nf.fd, &st);
	if (ret) {
		if (name)
			(void)pool->ops.unlinkat(pool->ops.ctx, nf.dirfd, file, 0);
		beluga_close_fd(pool, nf.fd);
		return ret;
	}
	out->fd = nf.fd;
	out->id = (uint64_t)st.st_ino | (nf.huge ? 1ULL << 62 : 0);
	out->size = size;
	return 0;
}
