// SPDX-License-Identifier: Apache-2.0
/*
 * Description: user-space backend - pool directories, info and sources.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include <linux/beluga.h>

#include "user_internal.h"

/*
 * Create @path as a sticky world-writable directory if missing (umask would
 * strip the bits, so chmod after mkdir) and open it.
 */
static int open_pool_dir(struct beluga_pool *pool, const char *path)
{
	const struct beluga_ops *o = &pool->ops;
	int ret = o->mkdirat(o->ctx, AT_FDCWD, path, 01777);

	if (ret == 0)
		ret = o->fchmodat(o->ctx, AT_FDCWD, path, 01777);
	if (ret && ret != -EEXIST) {
		blog_err(pool, "cannot create %s: %s", path, strerror(-ret));
		return ret;
	}
	ret = o->open(o->ctx, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (ret < 0)
		blog_err(pool, "cannot open %s: %s", path, strerror(-ret));
	return ret;
}

/*
 * Make sure <dir>/.lock exists (creates take an flock on it, each through its own open;
 * see publish() in user_create.c), readable by everyone.
 */
static int make_lock(struct beluga_pool *pool)
{
	const struct beluga_ops *o = &pool->ops;
	int fd = o->openat(o->ctx, pool->u.dirfd, ".lock",
			   O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	int ret = fd < 0 ? fd : 0;

	if (fd >= 0) {
		ret = o->fchmod(o->ctx, fd, 0644);	/* undo the umask */
		if (ret == -EPERM)			/* not ours: fine */
			ret = 0;
		beluga_close_fd(pool, fd);
	}
	if (ret)
		blog_err(pool, "%s/.lock: %s", pool->u.dir, strerror(-ret));
	return ret;
}

static const char *pick(const char *opt, const char *env, const char *def)
{
	const char *v = opt ? opt : secure_getenv(env);

	return v ? v : def;
}

static int open_hugetlbfs(struct beluga_pool *pool, const char *pool_name,
			  const char *opt)
{
	const char *v = pick(opt, "BELUGA_HUGETLBFS", NULL);
	char mnt[PATH_MAX];
	int ret;

	pool->u.hugefd = -1;
	if (v && (!*v || !strcmp(v, "none")))
		return 0;
	if (!v) {
		if (user_find_hugetlbfs(pool, mnt, sizeof(mnt)))
			return 0;	/* none mounted: tmpfs only */
		v = mnt;
	}
	ret = snprintf(pool->u.hugedir, sizeof(pool->u.hugedir), "%s/beluga-%s",
		       v, pool_name);
	if (ret < 0 || (size_t)ret >= sizeof(pool->u.hugedir))
		return -ENAMETOOLONG;
	ret = open_pool_dir(pool, pool->u.hugedir);
	if (ret >= 0) {
		pool->u.hugefd = ret;
		return 0;
	}
	if (opt || secure_getenv("BELUGA_HUGETLBFS"))
		return ret;	/* asked for explicitly: report it */
	blog_warn(pool, "hugetlbfs at %s unusable (%s): using tmpfs only", v,
		  strerror(-ret));
	return 0;
}

static void user_close(struct beluga_pool *pool)
{
	beluga_close_fd(pool, pool->u.hugefd);
	beluga_close_fd(pool, pool->u.dirfd);
}

static int user_setup(struct beluga_pool *pool,
		      const struct beluga_pool_options *opts)
{
	const char *name = pick(opts->pool_name, "BELUGA_POOL", "default");
	const char *dir = pick(opts->user_dir, "BELUGA_USER_DIR", NULL);
	int ret;

	if (!beluga_name_valid(name))
		return -EINVAL;
	if (dir)
		ret = snprintf(pool->u.dir, sizeof(pool->u.dir), "%s", dir);
	else
		ret = snprintf(pool->u.dir, sizeof(pool->u.dir),
			       "/dev/shm/beluga-%s", name);
	if (ret < 0 || (size_t)ret >= sizeof(pool->u.dir))
		return -ENAMETOOLONG;
	ret = user_scan_nodes(pool);
	if (ret)
		return ret;
	pool->u.dirfd = open_pool_dir(pool, pool->u.dir);
	if (pool->u.dirfd < 0)
		return pool->u.dirfd;
	ret = make_lock(pool);
	if (ret)
		return ret;
	return open_hugetlbfs(pool, name, opts->hugetlbfs_dir);
}

int beluga_user_open(struct beluga_pool *pool,
		     const struct beluga_pool_options *opts)
{
	int ret;

	pool->be = &beluga_user_backend;
	pool->u.dirfd = pool->u.hugefd = -1;
	ret = user_setup(pool, opts);
	if (ret) {
		user_close(pool);
		return ret;
	}
	blog_dbg(pool, "user backend: %s%s%s, %d node(s)", pool->u.dir,
		 pool->u.hugefd >= 0 ? " and " : "",
		 pool->u.hugefd >= 0 ? pool->u.hugedir : "", pool->u.nr_nodes);
	return 0;
}

static int user_source(struct beluga_pool *pool, uint32_t index,
		       struct beluga_pool_source_info *out)
{
	bool cpus = false;
	int ret;

	if (index >= (uint32_t)pool->u.nr_nodes)
		return -ENOENT;
	out->index = index;
	out->kind = BELUGA_SOURCE_KIND_NODE;
	out->node = pool->u.nodes[index];
	ret = user_node_bytes(pool, out->node, &out->total_bytes,
			      &out->free_bytes, &cpus);
	if (ret)
		return ret;
	out->flags = cpus ? BELUGA_SOURCE_HAS_CPUS : 0;
	return 0;
}

static int user_info(struct beluga_pool *pool, struct beluga_pool_info *out)
{
	struct statvfs vfs;
	size_t count;
	int ret;

	out->abi_version = out->min_abi_version = BELUGA_ABI_CURRENT;
	out->features = BELUGA_FEATURE_NODE_SOURCES | BELUGA_FEATURE_EPHEMERAL;
	if (pool->u.hugefd >= 0)
		out->features |= BELUGA_FEATURE_PMD_MAPPINGS;
	out->chunk_size = BELUGA_CHUNK;
	out->nr_sources = (uint32_t)pool->u.nr_nodes;
	for (uint32_t i = 0; i < out->nr_sources; i++) {
		struct beluga_pool_source_info s;

		ret = user_source(pool, i, &s);
		if (ret)
			return ret;
		out->total_bytes += s.total_bytes;
		out->free_bytes += s.free_bytes;
	}
	/* tmpfs has its own size limit (not injectable: read-only information). */
	if (pool->u.hugefd < 0 && !fstatvfs(pool->u.dirfd, &vfs) &&
	    (uint64_t)vfs.f_bavail * vfs.f_frsize < out->free_bytes)
		out->free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	ret = user_list(pool, NULL, 0, &count);
	out->nr_regions = (uint32_t)count;
	return ret;
}

static int user_counters(struct beluga_pool *pool, struct beluga_pool_counters *c)
{
	(void)pool; (void)c;
	return -EOPNOTSUPP;
}

const struct beluga_backend_ops beluga_user_backend = {
	.name = "user",
	.close = user_close,
	.info = user_info,
	.source = user_source,
	.counters = user_counters,
	.create = user_create,
	.open = user_open_region,
	.destroy = user_destroy,
	.stat = user_stat,
	.fd_stat = user_fd_stat,
	.list = user_list,
	.chmod = user_chmod,
	.chown = user_chown,
	.layout = user_layout,
	.map = user_map,
};
