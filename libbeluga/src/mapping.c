// SPDX-License-Identifier: Apache-2.0
/*
 * Description: mapping handles - argument checks shared by both backends
 * and the reference counting that orders teardown (GPU, munmap, fd).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

static int check_range(const struct beluga_region *r, uint64_t offset,
		       size_t *length, uint32_t prot)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);

	if (!prot || (prot & ~(BELUGA_PROT_READ | BELUGA_PROT_WRITE)))
		return -EINVAL;
	if (offset % BELUGA_CHUNK || *length % page)
		return -EINVAL;
	if (offset >= r->size)
		return -ENXIO;
	if (!*length)
		*length = r->size - offset;
	if (*length > r->size - offset)
		return -ENXIO;
	if ((prot & BELUGA_PROT_WRITE) && r->rdonly)
		return -EACCES;
	return 0;
}

int beluga_region_map(struct beluga_region *region, uint64_t offset,
		      size_t length, uint32_t prot, struct beluga_mapping **out)
{
	struct beluga_mapping *m;
	int mprot = 0, ret;
	void *addr;

	if (!region || !out)
		return -EINVAL;
	*out = NULL;
	ret = check_range(region, offset, &length, prot);
	if (ret)
		return ret;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	if (prot & BELUGA_PROT_READ)
		mprot |= PROT_READ;
	if (prot & BELUGA_PROT_WRITE)
		mprot |= PROT_WRITE;
	ret = region->pool->be->map(region, offset, length, mprot, &addr);
	if (ret) {
		blog_dbg(region->pool, "map %s [%llu, +%zu): %s", region->name,
			 (unsigned long long)offset, length, beluga_strerror(ret));
		free(m);
		return ret;
	}
	atomic_init(&m->refs, 1);
	atomic_init(&m->gpu_regs, 0);
	beluga_region_ref(region);
	m->region = region;
	m->addr = addr;
	m->size = length;
	m->offset = offset;
	m->prot = prot;
	*out = m;
	return 0;
}

void beluga_mapping_ref(struct beluga_mapping *mapping)
{
	atomic_fetch_add(&mapping->refs, 1);
}

void beluga_mapping_unref(struct beluga_mapping *m)
{
	struct beluga_pool *pool;
	int ret;

	if (atomic_fetch_sub(&m->refs, 1) != 1)
		return;
	pool = m->region->pool;
	ret = pool->ops.munmap(pool->ops.ctx, m->addr, m->size);
	if (ret)
		blog_warn(pool, "munmap(%p, %zu): %s", m->addr, m->size,
			  strerror(-ret));
	beluga_region_unref(m->region);
	free(m);
}

void beluga_mapping_unmap(struct beluga_mapping *mapping)
{
	if (mapping)
		beluga_mapping_unref(mapping);
}

void *beluga_mapping_addr(const struct beluga_mapping *mapping)
{
	return mapping ? mapping->addr : NULL;
}

size_t beluga_mapping_size(const struct beluga_mapping *mapping)
{
	return mapping ? mapping->size : 0;
}

uint64_t beluga_mapping_offset(const struct beluga_mapping *mapping)
{
	return mapping ? mapping->offset : 0;
}
