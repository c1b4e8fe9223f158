// SPDX-License-Identifier: Apache-2.0
/*
 * Description: kernel backend - opening /dev/beluga, the ABI check, pool
 * info, sources and the sysfs counters.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <linux/beluga.h>

#include "internal.h"

_Static_assert(BELUGA_FEATURE_SOURCE_HOTPLUG == BELUGA_FEAT_SOURCE_HOTPLUG,
	       "library and driver feature bits differ");

static int kernel_get_info(struct beluga_pool *pool, struct beluga_info *info)
{
	memset(info, 0, sizeof(*info));
	return pool->ops.ioctl(pool->ops.ctx, pool->k.devfd, BELUGA_IOC_INFO, info);
}

static int open_device(struct beluga_pool *pool, const char *dev)
{
	int fd = pool->ops.open(pool->ops.ctx, dev, O_RDWR | O_CLOEXEC, 0);

	if (fd == -ENOENT || fd == -ENODEV || fd == -ENXIO) {
		blog_err(pool, "%s: %s", dev, strerror(-fd));
		return -BELUGA_ENODRIVER;
	}
	if (fd < 0)
		blog_err(pool, "cannot open %s: %s", dev, strerror(-fd));
	return fd;
}

/* Two-way version check; ENOTTY means the device does not speak our ABI at all. */
static int check_driver(struct beluga_pool *pool)
{
	struct beluga_info info;
	int ret = kernel_get_info(pool, &info);

	if (ret == -ENOTTY)
		return -BELUGA_EDRIVER_TOO_OLD;
	if (ret)
		return ret;
	ret = beluga_check_abi(info.abi_version, info.min_abi_version);
	if (ret)
		blog_err(pool, "driver ABI %u.%u (serves >= %u.%u), library ABI %u.%u",
			 info.abi_version >> 16, info.abi_version & 0xffff,
			 info.min_abi_version >> 16, info.min_abi_version & 0xffff,
			 BELUGA_ABI_MAJOR, BELUGA_ABI_MINOR);
	pool->k.features = info.features;
	pool->k.abi_version = info.abi_version;
	pool->k.min_abi_version = info.min_abi_version;
	return ret;
}

int beluga_kernel_open(struct beluga_pool *pool,
		       const struct beluga_pool_options *opts)
{
	const char *dev = opts->device_path ? opts->device_path : BELUGA_DEVICE_PATH;
	const char *sysfs = opts->sysfs_dir ? opts->sysfs_dir : "/sys/kernel/beluga";
	int ret;

	if (strlen(sysfs) >= sizeof(pool->k.sysfs))
		return -ENAMETOOLONG;
	strcpy(pool->k.sysfs, sysfs);
	pool->be = &beluga_kernel_backend;
	pool->k.devfd = open_device(pool, dev);
	if (pool->k.devfd < 0)
		return pool->k.devfd;
	ret = check_driver(pool);
	if (ret) {
		beluga_close_fd(pool, pool->k.devfd);
		return ret;
	}
	blog_dbg(pool, "kernel backend: %s, driver ABI %u.%u", dev,
		 pool->k.abi_version >> 16, pool->k.abi_version & 0xffff);
	return 0;
}

static void kernel_close(struct beluga_pool *pool)
{
	beluga_close_fd(pool, pool->k.devfd);
}

static int kernel_info(struct beluga_pool *pool, struct beluga_pool_info *out)
{
	struct beluga_info info;
	int ret = kernel_get_info(pool, &info);

	if (ret)
		return ret;
	out->abi_version = info.abi_version;
	out->min_abi_version = info.min_abi_version;
	out->features = info.features | BELUGA_FEATURE_USAGE_COUNTS |
			BELUGA_FEATURE_COUNTERS;
	out->chunk_size = info.chunk_size;
	out->total_bytes = info.total_bytes;
	out->free_bytes = info.free_bytes;
	out->quarantined_bytes = info.quarantined_bytes;
	out->nr_sources = info.nr_sources;
	out->nr_regions = info.nr_regions;
	return 0;
}

static int kernel_source(struct beluga_pool *pool, uint32_t index,
			 struct beluga_pool_source_info *out)
{
	struct beluga_source_info si = { .index = index };
	int ret = pool->ops.ioctl(pool->ops.ctx, pool->k.devfd,
				  BELUGA_IOC_SOURCE_INFO, &si);

	if (ret)
		return ret;
	out->index = si.index;
	out->flags = si.flags & BELUGA_SOURCE_F_HAS_CPUS ? BELUGA_SOURCE_HAS_CPUS : 0;
	out->kind = si.kind;
	out->node = si.node;
	out->total_bytes = si.total_bytes;
	out->free_bytes = si.free_bytes;
	return 0;
}

/* /sys/kernel/beluga/counters/<name>, one decimal number each. */
static int kernel_counters(struct beluga_pool *pool,
			   struct beluga_pool_counters *c)
{
	static const struct { const char *name; size_t off; } files[] = {
#define C(f) { #f, offsetof(struct beluga_pool_counters, f) }
		C(pmd_faults), C(pte_faults), C(pinned_chunks),
		C(alloc_failures), C(regions_created), C(regions_freed),
#undef C
	};
	char path[PATH_MAX + 64];

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		uint64_t *v = (uint64_t *)((char *)c + files[i].off);
		int ret;

		snprintf(path, sizeof(path), "%s/counters/%s", pool->k.sysfs,
			 files[i].name);
		ret = beluga_read_u64(pool, AT_FDCWD, path, v);
		if (ret) {
			blog_err(pool, "%s: %s", path, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int kernel_source_add(struct beluga_pool *pool, uint64_t start,
			     uint64_t size, const char *name,
			     const char *identity, uint32_t *index)
{
	struct beluga_source_add a;
	int ret;

	if (!(pool->k.features & BELUGA_FEAT_SOURCE_HOTPLUG))
		return -BELUGA_EDRIVER_TOO_OLD;
	memset(&a, 0, sizeof(a));
	a.start = start;
	a.size = size;
	strcpy(a.name, name);
	strcpy(a.identity, identity);
	ret = pool->ops.ioctl(pool->ops.ctx, pool->k.devfd,
			      BELUGA_IOC_SOURCE_ADD, &a);
	if (!ret && index)
		*index = a.index;
	return ret;
}

static int kernel_source_remove(struct beluga_pool *pool, const char *name,
				uint32_t index)
{
	struct beluga_source_remove r;

	if (!(pool->k.features & BELUGA_FEAT_SOURCE_HOTPLUG))
		return -BELUGA_EDRIVER_TOO_OLD;
	memset(&r, 0, sizeof(r));
	strcpy(r.name, name);
	if (!*name)
		r.index = index;
	return pool->ops.ioctl(pool->ops.ctx, pool->k.devfd,
			       BELUGA_IOC_SOURCE_REMOVE, &r);
}

/* The region half of the backend lives in kernel_region.c. */
int beluga_kernel_create(struct beluga_pool *pool, const char *name,
			 uint64_t size, uint32_t mode, uint32_t flags,
			 int32_t source, struct region_handle *out);
int beluga_kernel_open_region(struct beluga_pool *pool, const char *name,
			      uint32_t flags, struct region_handle *out);
int beluga_kernel_shared_define(struct beluga_pool *pool, const char *name,
				uint32_t source, uint64_t offset, uint64_t size,
				uint32_t mode, struct region_handle *out);
int beluga_kernel_destroy(struct beluga_pool *pool, const char *name);
int beluga_kernel_stat(struct beluga_pool *pool, const char *name,
		       struct beluga_region_info *info);
int beluga_kernel_fd_stat(struct beluga_pool *pool, int fd,
			  struct beluga_region_info *info);
int beluga_kernel_list(struct beluga_pool *pool,
		       struct beluga_region_info *entries, size_t capacity,
		       size_t *count);
int beluga_kernel_chmod(struct beluga_pool *pool, const char *name,
			uint32_t mode);
int beluga_kernel_chown(struct beluga_pool *pool, const char *name,
			uint32_t uid, uint32_t gid);
int beluga_kernel_layout(struct beluga_region *region, int32_t *nodes,
			 size_t capacity, size_t *nr_chunks);
int beluga_kernel_map(struct beluga_region *region, uint64_t offset,
		      size_t length, int prot, void **addr);

const struct beluga_backend_ops beluga_kernel_backend = {
	.name = "kernel",
	.close = kernel_close,
	.info = kernel_info,
	.source = kernel_source,
	.counters = kernel_counters,
	.create = beluga_kernel_create,
	.open = beluga_kernel_open_region,
	.shared_define = beluga_kernel_shared_define,
	.source_add = kernel_source_add,
	.source_remove = kernel_source_remove,
	.destroy = beluga_kernel_destroy,
	.stat = beluga_kernel_stat,
	.fd_stat = beluga_kernel_fd_stat,
	.list = beluga_kernel_list,
	.chmod = beluga_kernel_chmod,
	.chown = beluga_kernel_chown,
	.layout = beluga_kernel_layout,
	.map = beluga_kernel_map,
};
