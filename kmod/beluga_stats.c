// SPDX-License-Identifier: GPL-2.0
/*
 * beluga_stats.c - region stats and pinned-chunk counts.
 *
 * The one place that reads a region's state into struct beluga_region_stat
 * and counts pinned chunks, for the ioctls (REGION_STAT, REGION_FD_STAT,
 * REGION_LIST) and sysfs (regions/<id>/, counters/pinned_chunks) alike, so
 * both report the same values.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cred.h>
#include <linux/string.h>
#include <linux/uidgid.h>

#include "beluga_internal.h"

static unsigned int beluga_region_pinned_chunks(struct beluga_region *r)
{
	unsigned int n = 0;
	unsigned long i;

	for (i = 0; i < r->nr_chunks; i++)
		n += beluga_chunk_is_pinned(r->chunks[i]);
	return n;
}

/* Fill @st from @r; caller holds the pool lock. */
static void __beluga_region_fill_stat(struct beluga_region *r,
				      struct beluga_region_stat *st)
{
	struct user_namespace *ns = current_user_ns();

	lockdep_assert_held(&beluga_pool.lock);
	memset(st, 0, sizeof(*st));
	memcpy(st->name, r->name, BELUGA_NAME_MAX);
	st->mode = r->mode;
	st->uid = from_kuid_munged(ns, r->uid);
	st->gid = from_kgid_munged(ns, r->gid);
	if (r->ephemeral)
		st->flags |= BELUGA_REGION_F_EPHEMERAL;
	else if (!r->named)
		st->flags |= BELUGA_REGION_F_DESTROYED;
	if (r->shared) {
		st->flags |= BELUGA_REGION_F_SHARED;
		st->shared_offset = r->shared_offset;
		st->shared_source = r->shared_source;
	}
	st->source_kind = r->source_kind;
	st->nr_chunks = r->nr_chunks;
	st->id = r->id;
	st->size = r->size;
	st->open_count = atomic_read(&r->open_count);
	st->map_count = atomic_read(&r->map_count);
	st->pinned_chunks = beluga_region_pinned_chunks(r);
}

/**
 * beluga_region_fill_stat() - snapshot a region
 * @r: the region; the caller holds a reference
 * @st: filled in whole (name, owner and mode as seen from the caller's user
 *	namespace, flags, kind, size, open, map and pinned-chunk counts)
 *
 * Context: process context, may sleep.  Takes beluga_pool.lock, so the
 * caller must not hold it.
 */
void beluga_region_fill_stat(struct beluga_region *r,
			     struct beluga_region_stat *st)
{
	mutex_lock(&beluga_pool.lock);
	__beluga_region_fill_stat(r, st);
	mutex_unlock(&beluga_pool.lock);
}

/**
 * beluga_region_stat_by_id() - snapshot the region with a given id
 * @id: the region id
 * @st: filled in as by beluga_region_fill_stat()
 *
 * For readers that hold no reference (sysfs): the lookup and the snapshot
 * happen under one hold of the pool lock, so a region being freed is either
 * seen whole or not at all.
 *
 * Context: process context, may sleep.  Takes beluga_pool.lock, so the
 * caller must not hold it.
 * Return: 0, or -ENODEV when no region has @id.
 */
int beluga_region_stat_by_id(u64 id, struct beluga_region_stat *st)
{
	struct beluga_region *r;
	int ret = 0;

	mutex_lock(&beluga_pool.lock);
	r = xa_load(&beluga_pool.regions, id);
	if (r)
		__beluga_region_fill_stat(r, st);
	else
		ret = -ENODEV;
	mutex_unlock(&beluga_pool.lock);
	return ret;
}

/**
 * beluga_pool_pinned_chunks() - count the chunks with a FOLL_PIN pin
 *
 * Context: process context, may sleep.  Takes beluga_pool.lock, so the
 * caller must not hold it.
 * Return: the number of chunks, in regions and in the quarantine, that have
 * a FOLL_PIN pin.
 */
unsigned long beluga_pool_pinned_chunks(void)
{
	struct beluga_region *r;
	struct beluga_chunk *c;
	unsigned long id, n = 0;

	mutex_lock(&beluga_pool.lock);
	xa_for_each(&beluga_pool.regions, id, r)
		n += beluga_region_pinned_chunks(r);
	list_for_each_entry(c, &beluga_pool.quarantine, node)
		n += beluga_chunk_is_pinned(c);
	mutex_unlock(&beluga_pool.lock);
	return n;
}
