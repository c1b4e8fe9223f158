// SPDX-License-Identifier: Apache-2.0
/*
 * Description: GPU registration of mappings - chunking, rollback, placement
 * check and teardown order.  CUDA itself is behind the ops layer
 * (gpu_cuda.c), so this logic builds and is tested without a GPU.
 *
 * - cudaHostRegister keeps a 16-byte entry per 4 KiB page in one kvzalloc'd
 *   table; at 512 GiB that passes INT_MAX and fails, so registrations are cut
 *   into chunks of at most gpu_chunk_max (64 GiB, as LMCache does);
 * - a failing chunk unregisters the earlier ones, newest first;
 * - a long-term pin migrates ZONE_MOVABLE pages off a CPU-less node without
 *   failing, so the node of every chunk is compared with the region layout
 *   afterwards (move_pages), and a move is an error (BELUGA_EPLACEMENT);
 * - with a driver that does GPU accounting (kernel backend, ABI 1.1) the
 *   driver is asked first (pinnability, layout, socket, its chunk limit)
 *   and told last;
 * - teardown: synchronize the device, unregister (newest first), drop the
 *   mapping reference (which may unmap), then tell the driver.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct beluga_gpu_reg {
	struct beluga_mapping *mapping;
	struct beluga_region *region;
	int device;
	size_t nr_chunks;
	uint64_t chunk_max;
	void *device_ptr;
	bool driver;			/* the driver holds a GPU reference */
	struct kernel_gpu gpu;
	int socket;
};

static void chunk_at(const struct beluga_gpu_reg *r, size_t i, void **addr,
		     size_t *len)
{
	uint64_t off = (uint64_t)i * r->chunk_max;
	uint64_t left = r->mapping->size - off;

	*addr = (char *)r->mapping->addr + off;
	*len = left < r->chunk_max ? left : r->chunk_max;
}

/* Unregister chunks [0, upto), newest first; errors are only logged. */
static void unregister_chunks(struct beluga_gpu_reg *r, size_t upto)
{
	struct beluga_pool *pool = r->mapping->region->pool;

	while (upto--) {
		void *addr;
		size_t len;
		int ret;

		chunk_at(r, upto, &addr, &len);
		ret = pool->ops.gpu_unregister(pool->ops.ctx, r->device, addr);
		if (ret)
			blog_err(pool, "GPU %d: unregister chunk %zu at %p: %s",
				 r->device, upto, addr, beluga_strerror(ret));
	}
}

static int register_chunks(struct beluga_gpu_reg *r, uint32_t flags)
{
	struct beluga_pool *pool = r->mapping->region->pool;

	for (size_t i = 0; i < r->nr_chunks; i++) {
		void *addr;
		size_t len;
		int ret;

		chunk_at(r, i, &addr, &len);
		ret = pool->ops.gpu_register(pool->ops.ctx, r->device, addr, len,
					     flags & BELUGA_GPU_READONLY);
		if (ret) {
			blog_err(pool, "GPU %d: register chunk %zu (%zu bytes at %p): %s",
				 r->device, i, len, addr, beluga_strerror(ret));
			unregister_chunks(r, i);
			return ret;
		}
	}
	return 0;
}

/* The mapping's share of a per-region node array. */
static void mapping_nodes(const struct beluga_mapping *m, int32_t *all, size_t *nr)
{
	size_t first = m->offset / BELUGA_CHUNK;

	*nr = (m->size + BELUGA_CHUNK - 1) / BELUGA_CHUNK;
	memmove(all, all + first, *nr * sizeof(*all));
}

/* Nodes the region's layout promises for the chunks this mapping covers. */
static int expected_nodes(struct beluga_mapping *m, int32_t *all, size_t *nr)
{
	struct beluga_region *region = m->region;
	size_t total = region->size / BELUGA_CHUNK, got;
	int ret = region->pool->be->layout(region, all, total, &got);

	if (!ret)
		mapping_nodes(m, all, nr);
	return ret;
}

/*
 * Ask the driver (when it does GPU accounting) or the layout where the
 * chunks are; the driver may also lower the chunk limit.
 */
static int prepare(struct beluga_gpu_reg *r, uint32_t flags, int32_t *want,
		   size_t *nr)
{
	struct beluga_pool *pool = r->mapping->region->pool;
	size_t total = r->mapping->region->size / BELUGA_CHUNK;
	struct kernel_gpu_grant grant;
	int ret;

	if (!beluga_kernel_gpu_accounting(pool))
		return flags & BELUGA_GPU_NO_VERIFY ? 0 : expected_nodes(r->mapping, want, nr);
	ret = pool->ops.gpu_pci_id(pool->ops.ctx, r->device, &r->gpu.domain,
				   &r->gpu.bdf);
	if (!ret)
		ret = beluga_kernel_gpu_register(r->mapping->region, &r->gpu, want,
						 total, &grant);
	if (ret)
		return ret;
	r->driver = true;
	r->socket = grant.socket;
	if (grant.max_register_bytes >= BELUGA_CHUNK &&
	    grant.max_register_bytes < r->chunk_max)
		r->chunk_max = grant.max_register_bytes & ~(BELUGA_CHUNK - 1);
	if (grant.socket == BELUGA_GPU_SOCKET_OTHER ||
	    grant.socket == BELUGA_GPU_SOCKET_MIXED)
		blog_warn(pool, "GPU %d: %s of %s is on another socket: copies cross "
			  "the socket link", r->device,
			  grant.socket == BELUGA_GPU_SOCKET_OTHER ? "all" : "part",
			  r->mapping->region->name);
	if (!(flags & BELUGA_GPU_NO_VERIFY))
		mapping_nodes(r->mapping, want, nr);
	return 0;
}

static int verify_placement(struct beluga_gpu_reg *r, const int32_t *want,
			    size_t nr)
{
	struct beluga_pool *pool = r->mapping->region->pool;
	int32_t *now = calloc(nr, sizeof(*now));
	int ret;

	if (!now)
		return -ENOMEM;
	ret = beluga_query_nodes(pool, r->mapping->addr, r->mapping->size, now, nr);
	for (size_t i = 0; !ret && i < nr; i++) {
		if (want[i] < 0 || now[i] == want[i])
			continue;
		blog_err(pool, "GPU %d: chunk %zu moved from node %d to node %d "
			 "when pinned", r->device, i, want[i], now[i]);
		ret = -BELUGA_EPLACEMENT;
	}
	free(now);
	return ret;
}

static int check_device(struct beluga_pool *pool, int device)
{
	int count = 0;
	int ret = pool->ops.gpu_count(pool->ops.ctx, &count);

	if (ret)
		return ret;
	return device < count ? 0 : -ENODEV;
}

/* Register, then verify; on any failure nothing stays registered. */
static int setup(struct beluga_gpu_reg *r, uint32_t flags)
{
	struct beluga_pool *pool = r->mapping->region->pool;
	int32_t *want = calloc(r->mapping->region->size / BELUGA_CHUNK, sizeof(*want));
	size_t nr = 0;
	int ret;

	if (!want)
		return -ENOMEM;
	ret = prepare(r, flags, want, &nr);
	r->nr_chunks = (r->mapping->size + r->chunk_max - 1) / r->chunk_max;
	if (!ret)
		ret = register_chunks(r, flags);
	if (!ret) {
		ret = pool->ops.gpu_device_pointer(pool->ops.ctx, r->device,
						   r->mapping->addr, &r->device_ptr);
		if (!ret && nr)
			ret = verify_placement(r, want, nr);
		if (ret)
			unregister_chunks(r, r->nr_chunks);
	}
	if (ret && r->driver)
		beluga_kernel_gpu_unregister(r->mapping->region, &r->gpu);
	free(want);
	return ret;
}

int beluga_gpu_register(struct beluga_mapping *mapping, int device,
			uint32_t flags, struct beluga_gpu_reg **out)
{
	struct beluga_pool *pool;
	struct beluga_gpu_reg *r;
	int ret;

	if (out)
		*out = NULL;
	if (!mapping || !out || device < 0 ||
	    (flags & ~(BELUGA_GPU_READONLY | BELUGA_GPU_NO_VERIFY)))
		return -EINVAL;
	pool = mapping->region->pool;
	ret = check_device(pool, device);
	if (ret)
		return ret;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->mapping = mapping;
	r->region = mapping->region;
	r->device = device;
	r->chunk_max = pool->gpu_chunk_max;
	ret = setup(r, flags);
	if (ret) {
		free(r);
		return ret;
	}
	beluga_region_ref(r->region);
	beluga_mapping_ref(mapping);
	atomic_fetch_add(&mapping->gpu_regs, 1);
	*out = r;
	return 0;
}

void beluga_gpu_unregister(struct beluga_gpu_reg *r)
{
	struct beluga_pool *pool;
	int ret;

	if (!r)
		return;
	pool = r->mapping->region->pool;
	/* In-flight copies may still read the memory: wait for them first. */
	ret = pool->ops.gpu_synchronize(pool->ops.ctx, r->device);
	if (ret)
		blog_err(pool, "GPU %d: synchronize: %s", r->device,
			 beluga_strerror(ret));
	unregister_chunks(r, r->nr_chunks);
	atomic_fetch_sub(&r->mapping->gpu_regs, 1);
	beluga_mapping_unref(r->mapping);
	if (r->driver)		/* last: the memory is unmapped by now */
		beluga_kernel_gpu_unregister(r->region, &r->gpu);
	beluga_region_unref(r->region);
	free(r);
}

void *beluga_gpu_reg_device_pointer(const struct beluga_gpu_reg *reg)
{
	return reg ? reg->device_ptr : NULL;
}

size_t beluga_gpu_reg_chunks(const struct beluga_gpu_reg *reg)
{
	return reg ? reg->nr_chunks : 0;
}

uint64_t beluga_gpu_reg_chunk_bytes(const struct beluga_gpu_reg *reg)
{
	return reg ? reg->chunk_max : 0;
}

int beluga_gpu_reg_socket(const struct beluga_gpu_reg *reg)
{
	return reg ? reg->socket : BELUGA_GPU_SOCKET_UNKNOWN;
}

int beluga_gpu_count(struct beluga_pool *pool, int *count)
{
	if (!pool || !count)
		return -EINVAL;
	return pool->ops.gpu_count(pool->ops.ctx, count);
}
