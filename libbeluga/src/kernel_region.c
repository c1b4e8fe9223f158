// SPDX-License-Identifier: Apache-2.0
/*
 * Description: kernel backend - region ioctls on /dev/beluga and region fds.
 *
 * Every ioctl structure is zeroed first: the driver rejects non-zero padding,
 * reserved fields and output fields (fd, id) with EINVAL.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <linux/beluga.h>

#include "internal.h"

_Static_assert(BELUGA_REGION_NAME_MAX == BELUGA_NAME_MAX, "name size");
_Static_assert(BELUGA_REGION_ALIGN == BELUGA_CHUNK_SIZE, "chunk size");
_Static_assert(BELUGA_FEATURE_QUOTAS == BELUGA_FEAT_QUOTAS, "feature bits");
_Static_assert(BELUGA_FEATURE_SHARED_REGIONS == BELUGA_FEAT_SHARED_REGIONS,
	       "feature bits");
_Static_assert(BELUGA_SOURCE_KIND_NODE == BELUGA_SOURCE_NODE, "source kind");
_Static_assert(BELUGA_SOURCE_KIND_RANGE == BELUGA_SOURCE_RANGE, "source kind");

static int dev_ioctl(struct beluga_pool *pool, unsigned long req, void *arg)
{
	return pool->ops.ioctl(pool->ops.ctx, pool->k.devfd, req, arg);
}

static void info_from_stat(struct beluga_region_info *out,
			   const struct beluga_region_stat *s)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->name, s->name, sizeof(out->name));
	out->name[sizeof(out->name) - 1] = '\0';
	out->id = s->id;
	out->size = s->size;
	if (s->flags & BELUGA_REGION_F_EPHEMERAL)
		out->flags |= BELUGA_INFO_EPHEMERAL;
	if (s->flags & BELUGA_REGION_F_DESTROYED)
		out->flags |= BELUGA_INFO_DESTROYED;
	if (s->flags & BELUGA_REGION_F_SHARED) {
		out->flags |= BELUGA_INFO_SHARED;
		out->shared_source = s->shared_source;
		out->shared_offset = s->shared_offset;
	}
	out->mode = s->mode;
	out->uid = s->uid;
	out->gid = s->gid;
	out->source_kind = s->source_kind;
	out->nr_chunks = s->nr_chunks;
	out->open_count = s->open_count;
	out->map_count = s->map_count;
	out->pinned_chunks = s->pinned_chunks;
}

int beluga_kernel_create(struct beluga_pool *pool, const char *name,
			 uint64_t size, uint32_t mode, uint32_t flags,
			 int32_t source, struct region_handle *out)
{
	struct beluga_region_create c;
	int ret;

	memset(&c, 0, sizeof(c));
	if (name)
		strcpy(c.name, name);
	c.size = size;
	c.flags = BELUGA_CREATE_CLOEXEC;
	if (flags & BELUGA_REGION_EPHEMERAL)
		c.flags |= BELUGA_CREATE_EPHEMERAL;
	c.mode = mode;
	c.source_kind = BELUGA_SOURCE_ANY;
	c.source_index = source;
	ret = dev_ioctl(pool, BELUGA_IOC_REGION_CREATE, &c);
	if (ret)
		return ret;
	out->fd = c.fd;
	out->id = c.id;
	out->size = size;
	return 0;
}

int beluga_kernel_shared_define(struct beluga_pool *pool, const char *name,
				uint32_t source, uint64_t offset, uint64_t size,
				uint32_t mode, struct region_handle *out)
{
	struct beluga_shared_define s;
	int ret;

	if (!(pool->k.features & BELUGA_FEAT_SHARED_REGIONS))
		return -BELUGA_EDRIVER_TOO_OLD;
	memset(&s, 0, sizeof(s));
	strcpy(s.name, name);
	s.offset = offset;
	s.size = size;
	s.flags = BELUGA_SHARED_CLOEXEC;
	s.mode = mode;
	s.source_index = source;
	ret = dev_ioctl(pool, BELUGA_IOC_SHARED_DEFINE, &s);
	if (ret)
		return ret;
	out->fd = s.fd;
	out->id = s.id;
	out->size = size;
	return 0;
}

int beluga_kernel_fd_stat(struct beluga_pool *pool, int fd,
			  struct beluga_region_info *info)
{
	struct beluga_region_stat s;
	int ret;

	memset(&s, 0, sizeof(s));
	ret = pool->ops.ioctl(pool->ops.ctx, fd, BELUGA_IOC_REGION_FD_STAT, &s);
	if (ret == -ENOTTY)
		return -EINVAL;		/* not a beluga region fd */
	if (!ret)
		info_from_stat(info, &s);
	return ret;
}

int beluga_kernel_open_region(struct beluga_pool *pool, const char *name,
			      uint32_t flags, struct region_handle *out)
{
	struct beluga_region_open o;
	struct beluga_region_info info;
	int ret;

	memset(&o, 0, sizeof(o));
	strcpy(o.name, name);
	o.flags = BELUGA_OPEN_CLOEXEC;
	if (flags & BELUGA_REGION_RDONLY)
		o.flags |= BELUGA_OPEN_RDONLY;
	ret = dev_ioctl(pool, BELUGA_IOC_REGION_OPEN, &o);
	if (ret)
		return ret;
	ret = beluga_kernel_fd_stat(pool, o.fd, &info);
	if (ret) {
		beluga_close_fd(pool, o.fd);
		return ret;
	}
	out->fd = o.fd;
	out->id = o.id;
	out->size = info.size;
	return 0;
}

int beluga_kernel_destroy(struct beluga_pool *pool, const char *name)
{
	struct beluga_region_name n;

	memset(&n, 0, sizeof(n));
	strcpy(n.name, name);
	return dev_ioctl(pool, BELUGA_IOC_REGION_DESTROY, &n);
}

int beluga_kernel_stat(struct beluga_pool *pool, const char *name,
		       struct beluga_region_info *info)
{
	struct beluga_region_stat s;
	int ret;

	memset(&s, 0, sizeof(s));
	strcpy(s.name, name);
	ret = dev_ioctl(pool, BELUGA_IOC_REGION_STAT, &s);
	if (!ret)
		info_from_stat(info, &s);
	return ret;
}

int beluga_kernel_list(struct beluga_pool *pool,
		       struct beluga_region_info *entries, size_t capacity,
		       size_t *count)
{
	struct beluga_region_stat *tmp = NULL;
	struct beluga_region_list l;
	int ret;

	if (capacity > UINT32_MAX)
		capacity = UINT32_MAX;
	if (capacity) {
		tmp = calloc(capacity, sizeof(*tmp));
		if (!tmp)
			return -ENOMEM;
	}
	memset(&l, 0, sizeof(l));
	l.entries = (uintptr_t)tmp;
	l.capacity = (uint32_t)capacity;
	ret = dev_ioctl(pool, BELUGA_IOC_REGION_LIST, &l);
	if (!ret) {
		*count = l.count;
		for (size_t i = 0; i < capacity && i < l.count; i++)
			info_from_stat(&entries[i], &tmp[i]);
	}
	free(tmp);
	return ret;
}

static int setattr(struct beluga_pool *pool, const char *name, uint32_t flags,
		   uint32_t mode, uint32_t uid, uint32_t gid)
{
	struct beluga_region_setattr a;

	memset(&a, 0, sizeof(a));
	strcpy(a.name, name);
	a.flags = flags;
	a.mode = mode;
	a.uid = uid;
	a.gid = gid;
	return dev_ioctl(pool, BELUGA_IOC_REGION_SETATTR, &a);
}

int beluga_kernel_chmod(struct beluga_pool *pool, const char *name,
			uint32_t mode)
{
	return setattr(pool, name, BELUGA_SETATTR_MODE, mode, 0, 0);
}

int beluga_kernel_chown(struct beluga_pool *pool, const char *name,
			uint32_t uid, uint32_t gid)
{
	uint32_t flags = 0;

	if (uid != UINT32_MAX)
		flags |= BELUGA_SETATTR_UID;
	if (gid != UINT32_MAX)
		flags |= BELUGA_SETATTR_GID;
	return setattr(pool, name, flags, 0, flags & BELUGA_SETATTR_UID ? uid : 0,
		       flags & BELUGA_SETATTR_GID ? gid : 0);
}

int beluga_kernel_layout(struct beluga_region *region, int32_t *nodes,
			 size_t capacity, size_t *nr_chunks)
{
	struct beluga_pool *pool = region->pool;
	struct beluga_region_layout l;
	int ret;

	memset(&l, 0, sizeof(l));
	l.nodes = (uintptr_t)nodes;
	l.capacity = capacity > UINT32_MAX ? UINT32_MAX : (uint32_t)capacity;
	ret = pool->ops.ioctl(pool->ops.ctx, region->fd, BELUGA_IOC_REGION_LAYOUT,
			      &l);
	if (!ret)
		*nr_chunks = l.nr_chunks;
	return ret;
}

/* The driver picks a 2 MiB-aligned address for region fds itself. */
int beluga_kernel_map(struct beluga_region *region, uint64_t offset,
		      size_t length, int prot, void **addr)
{
	struct beluga_pool *pool = region->pool;

	return pool->ops.mmap(pool->ops.ctx, NULL, length, prot, MAP_SHARED,
			      region->fd, (int64_t)offset, addr);
}
