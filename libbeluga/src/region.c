// SPDX-License-Identifier: Apache-2.0
/*
 * Description: region handles - argument checks shared by both backends,
 * create/open/destroy/stat/list/chmod/chown, reference counting.
 *
 * The checks here mirror the driver's, so both backends reject the same
 * arguments with the same errno before any system call is made.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int beluga_region_wrap(struct beluga_pool *pool, const struct region_handle *h,
		       const char *name, bool rdonly, struct beluga_region **out)
{
	struct beluga_region *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	atomic_init(&r->refs, 1);
	beluga_pool_ref(pool);
	r->pool = pool;
	r->fd = h->fd;
	r->rdonly = rdonly;
	r->size = h->size;
	r->id = h->id;
	if (name)
		strncpy(r->name, name, sizeof(r->name) - 1);
	*out = r;
	return 0;
}

void beluga_region_ref(struct beluga_region *region)
{
	atomic_fetch_add(&region->refs, 1);
}

void beluga_region_unref(struct beluga_region *region)
{
	struct beluga_pool *pool = region->pool;

	if (atomic_fetch_sub(&region->refs, 1) != 1)
		return;
	beluga_close_fd(pool, region->fd);
	free(region);
	beluga_pool_unref(pool);
}

void beluga_region_close(struct beluga_region *region)
{
	if (region)
		beluga_region_unref(region);
}

static int check_create(const char *name, uint64_t size, uint32_t mode,
			uint32_t flags, int32_t source)
{
	bool ephemeral = flags & BELUGA_REGION_EPHEMERAL;

	if (flags & ~BELUGA_REGION_EPHEMERAL)
		return -EINVAL;
	if (!(ephemeral && (!name || !*name)) && !beluga_name_valid(name))
		return -EINVAL;
	if (!size || size % BELUGA_CHUNK || mode > 0777 || source < -1)
		return -EINVAL;
	return 0;
}

/* Release a handle the backend made when wrapping it fails. */
static int wrap_or_close(struct beluga_pool *pool, struct region_handle *h,
			 const char *name, bool rdonly, struct beluga_region **out)
{
	int ret = beluga_region_wrap(pool, h, name, rdonly, out);

	if (ret)
		beluga_close_fd(pool, h->fd);
	return ret;
}

int beluga_region_create(struct beluga_pool *pool, const char *name,
			 uint64_t size, uint32_t mode, uint32_t flags,
			 int32_t source, struct beluga_region **out)
{
	struct region_handle h = { .fd = -1 };
	int ret;

	if (!pool || !out)
		return -EINVAL;
	*out = NULL;
	ret = check_create(name, size, mode, flags, source);
	if (!ret)
		ret = pool->be->create(pool, name && *name ? name : NULL, size,
				       mode, flags, source, &h);
	if (ret) {
		blog_dbg(pool, "create %s (%llu bytes): %s", name ? name : "",
			 (unsigned long long)size, beluga_strerror(ret));
		return ret;
	}
	return wrap_or_close(pool, &h, name, false, out);
}

int beluga_shared_define(struct beluga_pool *pool, const char *name,
			 uint32_t source, uint64_t offset, uint64_t size,
			 uint32_t mode, struct beluga_region **out)
{
	struct region_handle h = { .fd = -1 };
	int ret;

	if (!pool || !out)
		return -EINVAL;
	*out = NULL;
	if (!beluga_name_valid(name) || !size || size % BELUGA_CHUNK ||
	    offset % BELUGA_CHUNK || mode > 0777)
		return -EINVAL;
	if (!pool->be->shared_define) {
		blog_err(pool, "shared region %s: the %s backend has no memory another host can map",
			 name, pool->be->name);
		return -EOPNOTSUPP;
	}
	ret = pool->be->shared_define(pool, name, source, offset, size, mode,
				      &h);
	if (ret) {
		blog_dbg(pool, "define shared %s (source %u, offset %llu, %llu bytes): %s",
			 name, source, (unsigned long long)offset,
			 (unsigned long long)size, beluga_strerror(ret));
		return ret;
	}
	return wrap_or_close(pool, &h, name, false, out);
}

int beluga_region_open(struct beluga_pool *pool, const char *name,
		       uint32_t flags, struct beluga_region **out)
{
	struct region_handle h = { .fd = -1 };
	int ret;

	if (!pool || !out)
		return -EINVAL;
	*out = NULL;
	if (!beluga_name_valid(name) || (flags & ~BELUGA_REGION_RDONLY))
		return -EINVAL;
	ret = pool->be->open(pool, name, flags, &h);
	if (ret) {
		blog_dbg(pool, "open %s: %s", name, beluga_strerror(ret));
		return ret;
	}
	return wrap_or_close(pool, &h, name, flags & BELUGA_REGION_RDONLY, out);
}

int beluga_region_destroy(struct beluga_pool *pool, const char *name)
{
	if (!pool || !beluga_name_valid(name))
		return -EINVAL;
	return pool->be->destroy(pool, name);
}

int beluga_region_stat(struct beluga_pool *pool, const char *name,
		       struct beluga_region_info *info)
{
	if (!pool || !info || !beluga_name_valid(name))
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	return pool->be->stat(pool, name, info);
}

int beluga_region_list(struct beluga_pool *pool,
		       struct beluga_region_info *entries, size_t capacity,
		       size_t *count)
{
	if (!pool || !count || (capacity && !entries))
		return -EINVAL;
	*count = 0;
	if (capacity)
		memset(entries, 0, capacity * sizeof(*entries));
	return pool->be->list(pool, entries, capacity, count);
}

int beluga_region_chmod(struct beluga_pool *pool, const char *name,
			uint32_t mode)
{
	if (!pool || !beluga_name_valid(name) || mode > 0777)
		return -EINVAL;
	return pool->be->chmod(pool, name, mode);
}

int beluga_region_chown(struct beluga_pool *pool, const char *name,
			uint32_t uid, uint32_t gid)
{
	if (!pool || !beluga_name_valid(name) ||
	    (uid == UINT32_MAX && gid == UINT32_MAX))
		return -EINVAL;
	return pool->be->chown(pool, name, uid, gid);
}

const char *beluga_region_name(const struct beluga_region *region)
{
	return region ? region->name : "";
}

uint64_t beluga_region_size(const struct beluga_region *region)
{
	return region ? region->size : 0;
}

uint64_t beluga_region_id(const struct beluga_region *region)
{
	return region ? region->id : 0;
}

int beluga_region_fd(const struct beluga_region *region)
{
	return region ? region->fd : -EINVAL;
}

int beluga_region_fstat(struct beluga_region *region,
			struct beluga_region_info *info)
{
	if (!region || !info)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	return region->pool->be->fd_stat(region->pool, region->fd, info);
}

int beluga_region_layout(struct beluga_region *region, int32_t *nodes,
			 size_t capacity, size_t *nr_chunks)
{
	if (!region || !nr_chunks || (capacity && !nodes))
		return -EINVAL;
	*nr_chunks = 0;
	return region->pool->be->layout(region, nodes, capacity, nr_chunks);
}

/* A duplicate of @fd, described by the backend, with the fd's access mode. */
int beluga_region_from_fd(struct beluga_pool *pool, int fd,
			  struct beluga_region **out)
{
	const struct beluga_ops *o;
	struct beluga_region_info info;
	struct region_handle h;
	int ret, flags;

	if (!pool || !out || fd < 0)
		return -EINVAL;
	*out = NULL;
	o = &pool->ops;
	flags = o->fcntl(o->ctx, fd, F_GETFL, 0);
	if (flags < 0)
		return flags;
	ret = pool->be->fd_stat(pool, fd, &info);
	if (ret)
		return ret;
	h.fd = o->fcntl(o->ctx, fd, F_DUPFD_CLOEXEC, 0);
	if (h.fd < 0)
		return h.fd;
	h.id = info.id;
	h.size = info.size;
	return wrap_or_close(pool, &h, info.name,
			     (flags & O_ACCMODE) == O_RDONLY, out);
}
