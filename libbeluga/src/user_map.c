// SPDX-License-Identifier: Apache-2.0
/*
 * Description: user-space backend - mapping region files 2 MiB aligned and
 * locked, and reading back where their chunks live.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "user_internal.h"

/*
 * Reserve len + 2 MiB of address space, then map the file over an aligned
 * part of it, so tmpfs mappings start 2 MiB aligned like the driver's (and
 * can use huge pages where shmem THP is on).  hugetlbfs needs it anyway.
 */
static int map_aligned(struct beluga_pool *pool, int fd, uint64_t offset,
		       size_t len, int prot, void **out)
{
	const struct beluga_ops *o = &pool->ops;
	size_t span = len + BELUGA_CHUNK;
	uintptr_t base, start;
	void *res, *addr;
	int ret;

	ret = o->mmap(o->ctx, NULL, span, PROT_NONE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, &res);
	if (ret)
		return ret;
	base = (uintptr_t)res;
	start = (base + BELUGA_CHUNK - 1) & ~(uintptr_t)(BELUGA_CHUNK - 1);
	ret = o->mmap(o->ctx, (void *)start, len, prot, MAP_SHARED | MAP_FIXED,
		      fd, (int64_t)offset, &addr);
	if (ret) {
		(void)o->munmap(o->ctx, res, span);
		return ret;
	}
	/* Give back the unused head and tail of the reservation. */
	if (start > base)
		(void)o->munmap(o->ctx, res, start - base);
	if (base + span > start + len)
		(void)o->munmap(o->ctx, (void *)(start + len),
				base + span - start - len);
	*out = addr;
	return 0;
}

int user_map(struct beluga_region *region, uint64_t offset, size_t length,
	     int prot, void **addr)
{
	struct beluga_pool *pool = region->pool;
	int ret = map_aligned(pool, region->fd, offset, length, prot, addr);

	if (ret)
		return ret;
	/* Locked like the driver's pinned chunks, where RLIMIT_MEMLOCK allows. */
	ret = pool->ops.mlock(pool->ops.ctx, *addr, length);
	if (ret)
		blog_warn(pool, "mlock of %zu bytes failed (%s): the mapping stays "
			  "unlocked; raise RLIMIT_MEMLOCK (ulimit -l) to lock it",
			  length, strerror(-ret));
	return 0;
}

/* Fault each chunk in (read) on a temporary mapping and ask move_pages. */
int user_layout(struct beluga_region *region, int32_t *nodes, size_t capacity,
		size_t *nr_chunks)
{
	struct beluga_pool *pool = region->pool;
	size_t n = region->size / BELUGA_CHUNK;
	void *addr;
	int ret;

	*nr_chunks = n;
	if (!capacity)
		return 0;
	if (capacity > n)
		capacity = n;
	ret = pool->ops.mmap(pool->ops.ctx, NULL, capacity * BELUGA_CHUNK,
			     PROT_READ, MAP_SHARED, region->fd, 0, &addr);
	if (ret)
		return ret;
	for (size_t i = 0; i < capacity; i++)
		(void)((volatile char *)addr)[i * BELUGA_CHUNK];
	ret = beluga_query_nodes(pool, addr, capacity * BELUGA_CHUNK, nodes,
				 capacity);
	(void)pool->ops.munmap(pool->ops.ctx, addr, capacity * BELUGA_CHUNK);
	return ret;
}
