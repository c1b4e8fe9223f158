// SPDX-License-Identifier: GPL-2.0
/*
 * beluga_pool.c - the pool: sources, chunk hand-out and return, quarantine.
 *
 * Sources are created at module load by the file of their kind
 * (beluga_node.c, beluga_range.c), which carves them into chunks and
 * registers them here.  From then on the pool treats every source alike;
 * what differs between kinds (whether a chunk is idle or pinned, how the
 * memory goes back to the kernel) is behind the source's beluga_source_ops.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpumask.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/topology.h>

#include "beluga_internal.h"

/* How often the quarantine worker looks for chunks that became idle. */
#define BELUGA_QUARANTINE_PERIOD	(HZ / 10)

struct beluga_pool beluga_pool;

/**
 * beluga_source_new() - allocate an empty source
 * @kind: BELUGA_SOURCE_NODE or BELUGA_SOURCE_RANGE
 * @nid: the NUMA node of its memory (NUMA_NO_NODE if unknown)
 * @ops: the operations of sources of @kind
 *
 * The caller fills in its chunks, then calls beluga_source_register(), or
 * @ops->free() on failure.
 *
 * Context: process context, may sleep.
 * Return: the source, or NULL when out of memory.
 */
struct beluga_source *beluga_source_new(u32 kind, int nid,
					const struct beluga_source_ops *ops)
{
	struct beluga_source *src = kzalloc(sizeof(*src), GFP_KERNEL);

	if (!src)
		return NULL;
	src->kind = kind;
	src->ops = ops;
	src->nid = nid;
	src->has_cpus = nid != NUMA_NO_NODE &&
			!cpumask_empty(cpumask_of_node(nid));
	INIT_LIST_HEAD(&src->free_list);
	return src;
}

/**
 * beluga_source_register() - make a carved source part of the pool
 * @src: a source from beluga_source_new() whose chunks are all on its free
 *	list
 *
 * Puts @src in the lowest free slot of the sources array, which becomes
 * its index.  From now on the pool owns @src: beluga_source_unregister()
 * or beluga_pool_exit() hands it back to @src->ops->free().
 *
 * Context: process context; at module load, or with
 * beluga_pool.sources_lock held.  Takes beluga_pool.lock.
 * Return: 0, or -ENOSPC when every one of the BELUGA_MAX_SOURCES slots is
 * in use.
 */
int beluga_source_register(struct beluga_source *src)
{
	unsigned int i;

	mutex_lock(&beluga_pool.lock);
	for (i = 0; i < BELUGA_MAX_SOURCES && beluga_pool.sources[i]; i++)
		;
	if (i == BELUGA_MAX_SOURCES) {
		mutex_unlock(&beluga_pool.lock);
		pr_err("too many sources (at most %d)\n", BELUGA_MAX_SOURCES);
		return -ENOSPC;
	}
	src->index = i;
	src->nr_free = src->nr_chunks;
	beluga_pool.sources[i] = src;
	beluga_pool.nr_sources = max(beluga_pool.nr_sources, i + 1);
	beluga_pool.nr_chunks += src->nr_chunks;
	beluga_pool.nr_free += src->nr_chunks;
	mutex_unlock(&beluga_pool.lock);
	return 0;
}

/**
 * beluga_source_unregister() - take an unused range source out of the pool
 * @name: the source's name, or "" to find it by @index
 * @index: the source's index when @name is empty
 *
 * All or nothing, under the pool lock: a source any of whose chunks is in
 * a region (private or shared) or the quarantine stays.  Once out of the
 * array nothing can reach the source any more (see "Source lifetime" in
 * beluga_internal.h); the caller removes its sysfs directory and frees it
 * with @src->ops->free().  The other sources keep their indexes.
 *
 * Context: process context with beluga_pool.sources_lock held.  Takes
 * beluga_pool.lock.
 * Return: the source, or an ERR_PTR: -ENOENT (no such source),
 * -EOPNOTSUPP (a node source), -EBUSY (a chunk is in use).
 */
struct beluga_source *beluga_source_unregister(const char *name,
					       unsigned int index)
{
	struct beluga_source *src = NULL;
	unsigned int i;

	lockdep_assert_held(&beluga_pool.sources_lock);
	mutex_lock(&beluga_pool.lock);
	for (i = 0; i < beluga_pool.nr_sources; i++) {
		struct beluga_source *s = beluga_pool.sources[i];

		if (s && (*name ? !strcmp(s->name, name) : i == index)) {
			src = s;
			break;
		}
	}
	if (!src) {
		src = ERR_PTR(-ENOENT);
	} else if (src->kind != BELUGA_SOURCE_RANGE) {
		src = ERR_PTR(-EOPNOTSUPP);
	} else if (src->nr_free != src->nr_chunks) {
		src = ERR_PTR(-EBUSY);
	} else {
		beluga_pool.sources[i] = NULL;
		while (beluga_pool.nr_sources &&
		       !beluga_pool.sources[beluga_pool.nr_sources - 1])
			beluga_pool.nr_sources--;
		beluga_pool.nr_chunks -= src->nr_chunks;
		beluga_pool.nr_free -= src->nr_chunks;
	}
	mutex_unlock(&beluga_pool.lock);
	return src;
}

/**
 * beluga_pool_total_chunks() - the chunks of every source
 *
 * Context: process context; takes beluga_pool.lock.
 * Return: the number of chunks carved from all sources now.
 */
unsigned long beluga_pool_total_chunks(void)
{
	unsigned long n;

	mutex_lock(&beluga_pool.lock);
	n = beluga_pool.nr_chunks;
	mutex_unlock(&beluga_pool.lock);
	return n;
}

static void beluga_chunk_return(struct beluga_chunk *c)
{
	c->state = BELUGA_CHUNK_FREE;
	list_add(&c->node, &c->src->free_list);
	c->src->nr_free++;
	beluga_pool.nr_free++;
}

static void beluga_quarantine_work(struct work_struct *work)
{
	struct beluga_chunk *c, *tmp;
	bool drop_module = false;

	mutex_lock(&beluga_pool.lock);
	list_for_each_entry_safe(c, tmp, &beluga_pool.quarantine, node) {
		if (!beluga_chunk_idle(c))
			continue;
		list_del(&c->node);
		beluga_pool.nr_quarantined--;
		beluga_chunk_return(c);
	}
	if (!list_empty(&beluga_pool.quarantine)) {
		schedule_delayed_work(&beluga_pool.quarantine_work,
				      BELUGA_QUARANTINE_PERIOD);
	} else if (beluga_pool.quarantine_holds_module) {
		beluga_pool.quarantine_holds_module = false;
		drop_module = true;
	}
	mutex_unlock(&beluga_pool.lock);
	if (drop_module)
		module_put(THIS_MODULE);
}

/**
 * beluga_pool_init() - initialise the empty pool
 *
 * Sources are added next (beluga_nodes_parse(), beluga_ranges_parse());
 * beluga_pool_exit() undoes both.
 *
 * Context: module load, before anything else touches the pool.
 */
void beluga_pool_init(void)
{
	mutex_init(&beluga_pool.lock);
	mutex_init(&beluga_pool.sources_lock);
	INIT_LIST_HEAD(&beluga_pool.quarantine);
	INIT_LIST_HEAD(&beluga_pool.quotas);
	INIT_DELAYED_WORK(&beluga_pool.quarantine_work, beluga_quarantine_work);
	beluga_pool.names = RB_ROOT;
	xa_init(&beluga_pool.regions);
	beluga_pool.next_id = 1;
}

/**
 * beluga_pool_exit() - free every source
 *
 * Context: module unload, when no region and no quarantined chunk can
 * exist and /dev/beluga is gone, or when loading failed.  Nothing else
 * runs, so the sources array is read without the lock.
 */
void beluga_pool_exit(void)
{
	unsigned int i;

	cancel_delayed_work_sync(&beluga_pool.quarantine_work);
	WARN_ON_ONCE(!list_empty(&beluga_pool.quarantine));
	WARN_ON_ONCE(!xa_empty(&beluga_pool.regions));
	for (i = 0; i < beluga_pool.nr_sources; i++) {
		struct beluga_source *src = beluga_pool.sources[i];

		beluga_pool.sources[i] = NULL;
		if (src)
			src->ops->free(src);
	}
	beluga_pool.nr_sources = 0;
	beluga_pool.nr_chunks = 0;
	beluga_pool.nr_free = 0;
	xa_destroy(&beluga_pool.regions);
}

static bool beluga_source_matches(struct beluga_source *src, u32 kind,
				  int source_index)
{
	if (kind != BELUGA_SOURCE_ANY && src->kind != kind)
		return false;
	return source_index < 0 || src->index == (unsigned int)source_index;
}

/**
 * beluga_pool_resolve_kind() - the kind of source a create asks for
 * @kind: BELUGA_SOURCE_* from the request
 * @source_index: the source asked for, or -1
 *
 * Resolved as far as the request alone allows: a source index fixes the
 * kind; a kind of which no source exists is EINVAL.  BELUGA_SOURCE_ANY with
 * sources of both kinds stays ANY and is decided by beluga_pool_take() from
 * free space.  Sources may come and go after this returns:
 * beluga_pool_take() checks again under the lock.
 *
 * Context: process context; takes beluga_pool.lock.
 * Return: the kind, or -EINVAL.
 */
int beluga_pool_resolve_kind(u32 kind, int source_index)
{
	u32 found = BELUGA_SOURCE_ANY;
	unsigned int i;
	int ret;

	mutex_lock(&beluga_pool.lock);
	if (source_index >= 0) {
		struct beluga_source *src = NULL;

		if (source_index < beluga_pool.nr_sources)
			src = beluga_pool.sources[source_index];
		if (src)
			found = src->kind;
		ret = src && (kind == BELUGA_SOURCE_ANY || kind == found) ?
		      found : -EINVAL;
		goto out;
	}
	ret = -EINVAL;
	for (i = 0; i < beluga_pool.nr_sources; i++) {
		struct beluga_source *src = beluga_pool.sources[i];

		if (!src || (kind != BELUGA_SOURCE_ANY && src->kind != kind))
			continue;
		if (found != BELUGA_SOURCE_ANY && src->kind != found) {
			ret = BELUGA_SOURCE_ANY;	/* both kinds: decide later */
			goto out;
		}
		found = src->kind;
		ret = found;
	}
out:
	mutex_unlock(&beluga_pool.lock);
	return ret;
}

/*
 * ANY over both kinds: one mapping cannot mix ZONE_DEVICE range pages
 * (devmap entries, S_DAX) with buddy node pages (THP entries) on 6.1, so
 * take the kind with more free space; if neither kind alone can hold the
 * region but both together could, the create would have to mix: EINVAL.
 */
static int beluga_pool_pick_kind(unsigned long nr_chunks)
{
	unsigned long node = 0, range = 0;
	unsigned int i;

	for (i = 0; i < beluga_pool.nr_sources; i++) {
		struct beluga_source *src = beluga_pool.sources[i];

		if (!src)
			continue;
		if (src->kind == BELUGA_SOURCE_NODE)
			node += src->nr_free;
		else
			range += src->nr_free;
	}
	if (max(node, range) >= nr_chunks)
		return node >= range ? BELUGA_SOURCE_NODE : BELUGA_SOURCE_RANGE;
	return node + range >= nr_chunks ? -EINVAL : -ENOSPC;
}

/**
 * beluga_pool_take() - give a region its chunks
 * @r: the region; @r->nr_chunks says how many, @r->chunks receives them
 * @kind: the kind from beluga_pool_resolve_kind()
 * @source_index: the source asked for, or -1
 *
 * Interleaved round-robin over the matching sources (guideline O9: spread
 * bandwidth over every device).  Each region starts at a rotating source so
 * small regions spread evenly too.  Sets @r->source_kind.
 *
 * Context: process context with beluga_pool.lock held.
 * Return: 0, -ENOSPC when the matching sources have too few free chunks,
 * or -EINVAL when none matches or the region would have to mix kinds.
 */
int beluga_pool_take(struct beluga_region *r, u32 kind, int source_index)
{
	struct beluga_source *cand[BELUGA_MAX_SOURCES];
	unsigned long avail = 0, i;
	unsigned int n = 0, k, pos;

	lockdep_assert_held(&beluga_pool.lock);
	if (kind == BELUGA_SOURCE_ANY && source_index < 0) {
		int picked = beluga_pool_pick_kind(r->nr_chunks);

		if (picked < 0)
			return picked;
		kind = picked;
	}
	for (k = 0; k < beluga_pool.nr_sources; k++) {
		struct beluga_source *src = beluga_pool.sources[k];

		if (src && beluga_source_matches(src, kind, source_index)) {
			cand[n++] = src;
			avail += src->nr_free;
		}
	}
	if (!n)
		return -EINVAL;
	if (avail < r->nr_chunks)
		return -ENOSPC;

	pos = beluga_pool.rr_cursor++ % n;
	for (i = 0; i < r->nr_chunks; i++) {
		struct beluga_chunk *c;

		while (!cand[pos]->nr_free)
			pos = (pos + 1) % n;
		c = list_first_entry(&cand[pos]->free_list, struct beluga_chunk,
				     node);
		list_del_init(&c->node);
		c->state = BELUGA_CHUNK_PRIVATE;
		cand[pos]->nr_free--;
		r->chunks[i] = c;
		pos = (pos + 1) % n;
	}
	beluga_pool.nr_free -= r->nr_chunks;
	r->source_kind = cand[0]->kind;
	return 0;
}

/**
 * beluga_pool_take_extent() - give a shared region a fixed extent of a source
 * @r: the region; @r->nr_chunks says how many, @r->chunks receives them
 * @source_index: the source, which must be a range source
 * @offset: bytes into the source of the extent's start, chunk aligned
 *
 * All or nothing: every chunk of the extent must be free.  Taken off the
 * free list, they can be in no other region until @r gives them back, so
 * private regions never receive them, and the source cannot be removed.
 * Sets @r->source_kind and @r->shared_source.
 *
 * Context: process context with beluga_pool.lock held.
 * Return: 0; -EINVAL (no source at @source_index); -EOPNOTSUPP (a node
 * source: memory each host's kernel owns); -ENXIO (the extent ends past
 * the source); -EADDRINUSE when a chunk is in another shared region's
 * extent; -EBUSY when a chunk is in a private region or the quarantine.
 */
int beluga_pool_take_extent(struct beluga_region *r, unsigned int source_index,
			    u64 offset)
{
	struct beluga_source *src = NULL;
	unsigned long i, first;

	lockdep_assert_held(&beluga_pool.lock);
	if (source_index < beluga_pool.nr_sources)
		src = beluga_pool.sources[source_index];
	if (!src)
		return -EINVAL;
	if (src->kind != BELUGA_SOURCE_RANGE)
		return -EOPNOTSUPP;
	if (offset >= (u64)src->nr_chunks * BELUGA_CHUNK_BYTES ||
	    r->nr_chunks > src->nr_chunks - offset / BELUGA_CHUNK_BYTES)
		return -ENXIO;
	first = offset / BELUGA_CHUNK_BYTES;
	for (i = 0; i < r->nr_chunks; i++)
		if (src->chunks[first + i].state == BELUGA_CHUNK_SHARED)
			return -EADDRINUSE;
	for (i = 0; i < r->nr_chunks; i++)
		if (src->chunks[first + i].state != BELUGA_CHUNK_FREE)
			return -EBUSY;
	for (i = 0; i < r->nr_chunks; i++) {
		struct beluga_chunk *c = &src->chunks[first + i];

		list_del_init(&c->node);
		c->state = BELUGA_CHUNK_SHARED;
		r->chunks[i] = c;
	}
	src->nr_free -= r->nr_chunks;
	beluga_pool.nr_free -= r->nr_chunks;
	r->source_kind = src->kind;
	r->shared_source = src->index;
	return 0;
}

/**
 * beluga_pool_give_back() - return a region's chunks
 * @r: the region; entries of @r->chunks may be NULL
 *
 * Chunks still referenced from outside (pins, pipes, I/O) are quarantined:
 * reusing them would hand one tenant's memory to another while a device may
 * still write it.  Reverse order keeps the region's first chunk at the head
 * of its free list, so the next region of the same shape gets the same
 * chunks (which the zeroing test relies on).
 *
 * Context: process context with beluga_pool.lock held.
 */
void beluga_pool_give_back(struct beluga_region *r)
{
	unsigned long i = r->nr_chunks;
	bool quarantined = false;

	lockdep_assert_held(&beluga_pool.lock);
	while (i--) {
		struct beluga_chunk *c = r->chunks[i];

		if (!c)
			continue;
		if (beluga_chunk_idle(c)) {
			beluga_chunk_return(c);
			continue;
		}
		c->state = BELUGA_CHUNK_QUARANTINED;
		list_add_tail(&c->node, &beluga_pool.quarantine);
		beluga_pool.nr_quarantined++;
		quarantined = true;
	}
	if (quarantined) {
		if (!beluga_pool.quarantine_holds_module) {
			__module_get(THIS_MODULE);
			beluga_pool.quarantine_holds_module = true;
		}
		schedule_delayed_work(&beluga_pool.quarantine_work,
				      BELUGA_QUARANTINE_PERIOD);
	}
}
