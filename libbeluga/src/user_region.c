// SPDX-License-Identifier: Apache-2.0
/*
 * Description: user-space backend - open, destroy, stat, list, chmod and
 * chown of region files.  Each name is looked up in the hugetlbfs
 * directory first, then in the tmpfs one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "user_internal.h"

void user_file_name(char out[USER_FILE_MAX], const char *name)
{
	snprintf(out, USER_FILE_MAX, USER_PREFIX "%s", name);
}

void user_info_from_stat(struct beluga_region_info *info, const char *name,
			 const struct stat *st, bool hugetlb)
{
	memset(info, 0, sizeof(*info));
	if (name)
		snprintf(info->name, sizeof(info->name), "%s", name);
	info->id = (uint64_t)st->st_ino | (hugetlb ? 1ULL << 62 : 0);
	info->size = (uint64_t)st->st_size;
	info->flags = BELUGA_INFO_NO_USAGE | (hugetlb ? BELUGA_INFO_HUGETLB : 0);
	if (st->st_nlink == 0)
		info->flags |= name ? BELUGA_INFO_DESTROYED : BELUGA_INFO_EPHEMERAL;
	info->mode = st->st_mode & 0777;
	info->uid = st->st_uid;
	info->gid = st->st_gid;
	info->source_kind = BELUGA_SOURCE_KIND_NODE;
	info->nr_chunks = (uint32_t)(info->size / BELUGA_CHUNK);
}

/* A region file is a regular file whose size is a non-zero multiple of 2 MiB. */
static int check_region_file(const struct stat *st)
{
	if (!S_ISREG(st->st_mode) || st->st_size <= 0 ||
	    st->st_size % (off_t)BELUGA_CHUNK)
		return -EINVAL;
	return 0;
}

/* Run @op on the name in each directory until one does not say ENOENT. */
#define FOR_EACH_DIR(pool, dfd, i, ret)					\
	for (int i = 0, dfd = user_dirfd(pool, 0); i < 2 && (ret) == -ENOENT; \
	     dfd = user_dirfd(pool, ++i))				\
		if (dfd >= 0)

int user_open_region(struct beluga_pool *pool, const char *name,
		     uint32_t flags, struct region_handle *out)
{
	const struct beluga_ops *o = &pool->ops;
	int oflags = O_CLOEXEC | O_NOFOLLOW |
		     (flags & BELUGA_REGION_RDONLY ? O_RDONLY : O_RDWR);
	char file[USER_FILE_MAX];
	struct stat st;
	int fd = -ENOENT, ret;
	bool huge = false;

	user_file_name(file, name);
	FOR_EACH_DIR(pool, dfd, i, fd) {
		fd = o->openat(o->ctx, dfd, file, oflags, 0);
		huge = i == 0;
	}
	if (fd < 0)
		return fd;
	ret = o->fstat(o->ctx, fd, &st);
	if (!ret)
		ret = check_region_file(&st);
	if (ret) {
		beluga_close_fd(pool, fd);
		return ret;
	}
	out->fd = fd;
	out->id = (uint64_t)st.st_ino | (huge ? 1ULL << 62 : 0);
	out->size = (uint64_t)st.st_size;
	return 0;
}

int user_destroy(struct beluga_pool *pool, const char *name)
{
	char file[USER_FILE_MAX];
	int ret = -ENOENT;

	user_file_name(file, name);
	FOR_EACH_DIR(pool, dfd, i, ret)
		ret = pool->ops.unlinkat(pool->ops.ctx, dfd, file, 0);
	return ret;
}

int user_stat(struct beluga_pool *pool, const char *name,
	      struct beluga_region_info *info)
{
	char file[USER_FILE_MAX];
	struct stat st;
	int ret = -ENOENT;
	bool huge = false;

	user_file_name(file, name);
	FOR_EACH_DIR(pool, dfd, i, ret) {
		ret = pool->ops.fstatat(pool->ops.ctx, dfd, file, &st,
					AT_SYMLINK_NOFOLLOW);
		huge = i == 0;
	}
	if (!ret)
		user_info_from_stat(info, name, &st, huge);
	return ret;
}

int user_chmod(struct beluga_pool *pool, const char *name, uint32_t mode)
{
	char file[USER_FILE_MAX];
	int ret = -ENOENT;

	user_file_name(file, name);
	FOR_EACH_DIR(pool, dfd, i, ret)
		ret = pool->ops.fchmodat(pool->ops.ctx, dfd, file, mode);
	return ret;
}

int user_chown(struct beluga_pool *pool, const char *name, uint32_t uid,
	       uint32_t gid)
{
	char file[USER_FILE_MAX];
	int ret = -ENOENT;

	user_file_name(file, name);
	FOR_EACH_DIR(pool, dfd, i, ret)
		ret = pool->ops.fchownat(pool->ops.ctx, dfd, file, (uid_t)uid,
					 (gid_t)gid);
	return ret;
}

/* Path of an open fd without " (deleted)"; -errno if /proc cannot say. */
static int fd_path(struct beluga_pool *pool, int fd, char *buf, size_t len)
{
	char proc[64];
	ssize_t n;
	char *del;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = pool->ops.readlink(pool->ops.ctx, proc, buf, len - 1);
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	del = strstr(buf, " (deleted)");
	if (del && !del[10])
		*del = '\0';
	return 0;
}

/*
 * Which pool directory holds @path: 0 hugetlbfs, 1 tmpfs, -EINVAL neither,
 * or -errno.  @base gets the file name.
 */
static int which_dir(struct beluga_pool *pool, char *path, const char **base)
{
	char *slash = strrchr(path, '/');
	char dir[PATH_MAX];

	if (!slash)
		return -EINVAL;
	*slash = '\0';
	*base = slash + 1;
	for (int i = 0; i < 2; i++) {
		int ret;

		if (user_dirfd(pool, i) < 0)
			continue;
		ret = fd_path(pool, user_dirfd(pool, i), dir, sizeof(dir));
		if (ret)
			return ret;
		if (!strcmp(dir, path))
			return i;
	}
	return -EINVAL;	/* a file, but not one of this pool */
}

int user_fd_stat(struct beluga_pool *pool, int fd,
		 struct beluga_region_info *info)
{
	char path[PATH_MAX];
	const char *base = "", *name = NULL;
	struct stat st;
	int ret, dir = 1;

	ret = pool->ops.fstat(pool->ops.ctx, fd, &st);
	if (!ret)
		ret = check_region_file(&st);
	if (ret)
		return ret;
	ret = fd_path(pool, fd, path, sizeof(path));
	if (!ret) {
		dir = which_dir(pool, path, &base);
		if (dir < 0)
			return dir;
	} else if (ret != -ENOENT) {	/* ENOENT: no /proc, name unknown */
		return ret;
	}
	if (!strncmp(base, USER_PREFIX, 2) && beluga_name_valid(base + 2))
		name = base + 2;
	user_info_from_stat(info, name, &st, dir == 0);
	return 0;
}

struct list_ctx {
	struct beluga_pool *pool;
	int dirfd;
	bool huge;
	struct beluga_region_info *v;
	size_t n, cap;
};

static int list_one(void *arg, const char *file)
{
	struct list_ctx *c = arg;
	struct stat st;
	int ret;

	if (strncmp(file, USER_PREFIX, 2) || !beluga_name_valid(file + 2))
		return 0;
	ret = c->pool->ops.fstatat(c->pool->ops.ctx, c->dirfd, file, &st,
				   AT_SYMLINK_NOFOLLOW);
	if (ret)
		return ret == -ENOENT ? 0 : ret;	/* ENOENT: destroyed meanwhile */
	if (check_region_file(&st))
		return 0;	/* not a region: ignore it */
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 16;
		void *v = realloc(c->v, cap * sizeof(*c->v));

		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	user_info_from_stat(&c->v[c->n++], file + 2, &st, c->huge);
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	const struct beluga_region_info *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

int user_list(struct beluga_pool *pool, struct beluga_region_info *entries,
	      size_t capacity, size_t *count)
{
	struct list_ctx c = { .pool = pool };
	int ret = 0;

	for (int i = 0; i < 2 && !ret; i++) {
		c.dirfd = user_dirfd(pool, i);
		c.huge = i == 0;
		if (c.dirfd >= 0)
			ret = beluga_for_each_dirent(pool, c.dirfd, ".", list_one, &c);
	}
	if (!ret) {
		if (c.n)
			qsort(c.v, c.n, sizeof(*c.v), cmp_id);
		*count = c.n;
		for (size_t i = 0; i < capacity && i < c.n; i++)
			entries[i] = c.v[i];
	}
	free(c.v);
	return ret;
}
