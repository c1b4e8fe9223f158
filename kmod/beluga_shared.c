// SPDX-License-Identifier: GPL-2.0
/*
 * beluga_shared.c - shared regions: a fixed extent of a range source.
 *
 * Hosts behind a CXL switch (or on a multi-headed device) see one range of
 * CXL memory each.  A private region's chunks are placed by each host's own
 * allocator and zeroed on create, so two hosts never agree on where a
 * region lives, and each would wipe what the other serves.  A shared region
 * is defined by an extent (source, offset, size) that every host gives the
 * same, so every host maps the same bytes; the driver never writes them.
 *
 * The rules checked here, before the region is created (beluga_region.c)
 * and its extent taken off the free list (beluga_pool.c):
 *  - defining one needs CAP_SYS_ADMIN: it reaches memory no allocation
 *    produced, which another host may be using;
 *  - the source is a range source: a node source is memory each kernel's
 *    page allocator owns, so it cannot be the same memory on two hosts;
 *  - offset and size are chunk aligned, the size is not zero and the
 *    extent ends inside the source.
 * Overlapping another shared extent (EADDRINUSE), or a chunk in a private
 * region or the quarantine (EBUSY), is found under the pool lock when the
 * extent is taken.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/err.h>

#include "beluga_internal.h"

/*
 * The request's values; the source (its kind, whether the extent ends
 * inside it) is checked under the pool lock when the extent is taken
 * (beluga_pool_take_extent()), since sources can be removed at run time.
 * The ioctl's own fields (flags, padding, output fields) are checked by
 * the caller.
 */
static int beluga_shared_check(const struct beluga_shared_define *req)
{
	if (!beluga_name_valid(req->name, false) || (req->mode & ~0777U))
		return -EINVAL;
	if (!req->size || !IS_ALIGNED(req->size, BELUGA_CHUNK_BYTES) ||
	    !IS_ALIGNED(req->offset, BELUGA_CHUNK_BYTES))
		return -EINVAL;
	if (req->source_index >= BELUGA_MAX_SOURCES)
		return -EINVAL;
	/* Larger than the whole pool: no source can hold it (no allocation). */
	if (req->size / BELUGA_CHUNK_BYTES > beluga_pool_total_chunks())
		return -ENXIO;
	return 0;
}

/**
 * beluga_shared_define() - create a shared region
 * @req: the request, whose flags, padding and output fields the caller has
 *	checked
 *
 * Context: process context (the ioctl); takes beluga_pool.lock.
 * Return: the region with one reference for the caller and one for the
 * name, or an ERR_PTR: -EPERM (no CAP_SYS_ADMIN), -EINVAL (name, mode,
 * alignment, no source at the index), -EOPNOTSUPP (not a range source),
 * -ENXIO (the extent ends past the source), -EEXIST (name taken),
 * -EADDRINUSE (another shared extent overlaps), -EBUSY (a chunk is in a
 * private region or the quarantine), -ENOMEM.
 */
struct beluga_region *beluga_shared_define(const struct beluga_shared_define *req)
{
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return ERR_PTR(-EPERM);
	ret = beluga_shared_check(req);
	if (ret)
		return ERR_PTR(ret);
	return beluga_region_create_shared(req->name, req->size, req->mode,
					   req->source_index, req->offset);
}
