// SPDX-License-Identifier: GPL-2.0
/*
 * beluga_pool.c - memory sources, chunk carving, chunk hand-out and return.
 *
 * The pool is carved at module load, not on demand: a CXL node in
 * system-ram mode is ordinary page-allocator memory, so anything left uncarved
 * would slowly fill with kernel and page-cache allocations and fragment, and
 * order-9 allocations would then fail exactly when a region is wanted.
 * Carving at load turns "not enough contiguous memory" into a load-time error
 * an operator can act on, and keeps the node free of other users.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpumask.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/module.h>
#include <linux/nodemask.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmstat.h>

#include "beluga_internal.h"

/* Memory left to the kernel on a node whose size was not given. */
#define BELUGA_NODE_RESERVE	(64UL << 20)
/* How often the quarantine worker looks for chunks that became idle. */
#define BELUGA_QUARANTINE_PERIOD	(HZ / 10)

/*
 * No __GFP_MOVABLE: chunks must come from ZONE_NORMAL so FOLL_LONGTERM pins
 * never try to migrate them.  No __GFP_ZERO: chunks are zeroed when a region
 * gets them, which also covers reuse.
 */
#define BELUGA_CHUNK_GFP (GFP_KERNEL | __GFP_THISNODE | __GFP_COMP | \
			  __GFP_NOWARN | __GFP_RETRY_MAYFAIL)

struct beluga_pool beluga_pool;

/* Free pages a GFP_KERNEL allocation can use on @nid (zones up to NORMAL). */
static unsigned long beluga_node_kernel_free_pages(int nid)
{
	pg_data_t *pgdat = NODE_DATA(nid);
	unsigned long pages = 0;
	int z;

	for (z = 0; z <= ZONE_NORMAL; z++)
		pages += zone_page_state(&pgdat->node_zones[z], NR_FREE_PAGES);
	return pages;
}

static unsigned long beluga_node_kernel_managed_pages(int nid)
{
	pg_data_t *pgdat = NODE_DATA(nid);
	unsigned long pages = 0;
	int z;

	for (z = 0; z <= ZONE_NORMAL; z++)
		pages += zone_managed_pages(&pgdat->node_zones[z]);
	return pages;
}

/*
 * Check that @nid can be a source; print the one line that says what to do
 * when it cannot.
 */
static int beluga_node_check(int nid)
{
	if (nid < 0 || nid >= MAX_NUMNODES || !node_online(nid) ||
	    !node_state(nid, N_MEMORY)) {
		pr_err("node %d is offline or has no memory: online the CXL memory (daxctl reconfigure-device --mode=system-ram --no-movable) or fix nodes=\n",
		       nid);
		return -ENODEV;
	}
	if (!beluga_node_kernel_managed_pages(nid)) {
		pr_err("node %d has only ZONE_MOVABLE memory, which long-term pins migrate away: re-online it with 'daxctl online-memory --no-movable'\n",
		       nid);
		return -EINVAL;
	}
	if (!cpumask_empty(cpumask_of_node(nid)))
		pr_warn("node %d has CPUs: it is ordinary DRAM, not CXL memory; accepted for development\n",
			nid);
	return 0;
}

static void beluga_source_free(struct beluga_source *src)
{
	unsigned long i;

	if (src->kind == BELUGA_SOURCE_RANGE) {
		beluga_range_free(src);
		return;
	}
	for (i = 0; i < src->nr_chunks; i++) {
		struct page *page = src->chunks[i].page;

		/* The pool's own reference must be the last one. */
		if (WARN_ON_ONCE(page_ref_count(page) != 1))
			continue;	/* leak rather than free a used page */
		__free_pages(page, BELUGA_CHUNK_ORDER);
	}
	kvfree(src->chunks);
	kfree(src);
}

struct beluga_source *beluga_source_new(u32 kind, int nid)
{
	struct beluga_source *src = kzalloc(sizeof(*src), GFP_KERNEL);

	if (!src)
		return NULL;
	src->kind = kind;
	src->nid = nid;
	src->has_cpus = nid != NUMA_NO_NODE &&
			!cpumask_empty(cpumask_of_node(nid));
	INIT_LIST_HEAD(&src->free_list);
	return src;
}

/* Make a carved source part of the pool. */
int beluga_source_register(struct beluga_source *src)
{
	if (beluga_pool.nr_sources == BELUGA_MAX_SOURCES) {
		pr_err("too many sources (at most %d)\n", BELUGA_MAX_SOURCES);
		return -EINVAL;
	}
	src->index = beluga_pool.nr_sources;
	src->nr_free = src->nr_chunks;
	beluga_pool.sources[beluga_pool.nr_sources++] = src;
	beluga_pool.nr_chunks += src->nr_chunks;
	beluga_pool.nr_free += src->nr_chunks;
	return 0;
}

/*
 * A chunk can be reused only when nothing but the pool references it.
 * Node chunks are compound pages: the head's count covers every subpage.
 * Range chunks are 512 order-0 ZONE_DEVICE pages idling at one reference
 * each (devmap page-table entries take none; GUP and pipes do).
 */
bool beluga_chunk_idle(struct beluga_chunk *c)
{
	unsigned long i;

	if (c->src->kind == BELUGA_SOURCE_NODE)
		return page_ref_count(c->page) == 1;
	for (i = 0; i < BELUGA_CHUNK_PAGES; i++)
		if (page_ref_count(nth_page(c->page, i)) != 1)
			return false;
	return true;
}

bool beluga_chunk_is_pinned(struct beluga_chunk *c)
{
	unsigned long i;

	if (c->src->kind == BELUGA_SOURCE_NODE)
		return beluga_chunk_pinned(c->page);
	for (i = 0; i < BELUGA_CHUNK_PAGES; i++)
		if (beluga_page_pinned(nth_page(c->page, i)))
			return true;
	return false;
}

/* Carve @want chunks (0: as many as the node can spare) from @nid. */
static int beluga_source_carve(struct beluga_source *src, unsigned long want,
			       bool sized)
{
	unsigned long i;

	src->chunks = kvcalloc(want, sizeof(*src->chunks), GFP_KERNEL);
	if (!src->chunks)
		return -ENOMEM;

	for (i = 0; i < want; i++) {
		struct page *page = alloc_pages_node(src->nid, BELUGA_CHUNK_GFP,
						     BELUGA_CHUNK_ORDER);

		if (!page)
			break;
		if (WARN_ON_ONCE(page_to_nid(page) != src->nid ||
				 page_zonenum(page) == ZONE_MOVABLE)) {
			__free_pages(page, BELUGA_CHUNK_ORDER);
			break;
		}
		src->chunks[i].page = page;
		src->chunks[i].src = src;
		list_add_tail(&src->chunks[i].node, &src->free_list);
		src->nr_chunks++;
		cond_resched();
	}

	if (sized && src->nr_chunks < want) {
		pr_err("node %d: only %lu MiB of the %lu MiB asked for could be carved into 2 MiB chunks: free memory on the node or lower the size in nodes=\n",
		       src->nid, (src->nr_chunks * BELUGA_CHUNK_BYTES) >> 20,
		       (want * BELUGA_CHUNK_BYTES) >> 20);
		return -ENOMEM;
	}
	if (!src->nr_chunks) {
		pr_err("node %d: no free 2 MiB block could be carved: free memory on the node\n",
		       src->nid);
		return -ENOMEM;
	}
	return 0;
}

static int beluga_node_add(int nid, unsigned long long bytes)
{
	struct beluga_source *src;
	unsigned long want;
	unsigned int i;
	int ret;

	for (i = 0; i < beluga_pool.nr_sources; i++) {
		if (beluga_pool.sources[i]->kind == BELUGA_SOURCE_NODE &&
		    beluga_pool.sources[i]->nid == nid) {
			pr_err("node %d is named twice in nodes=\n", nid);
			return -EINVAL;
		}
	}
	ret = beluga_node_check(nid);
	if (ret)
		return ret;

	if (bytes) {
		if (bytes % BELUGA_CHUNK_BYTES) {
			pr_err("node %d: size %llu is not a multiple of 2 MiB\n",
			       nid, bytes);
			return -EINVAL;
		}
		want = bytes / BELUGA_CHUNK_BYTES;
		if (bytes > (u64)beluga_node_kernel_free_pages(nid) << PAGE_SHIFT) {
			pr_err("node %d: %llu MiB asked for but only %lu MiB free: free memory on the node or lower the size in nodes=\n",
			       nid, bytes >> 20,
			       beluga_node_kernel_free_pages(nid) >> (20 - PAGE_SHIFT));
			return -ENOMEM;
		}
	} else {
		unsigned long free = beluga_node_kernel_free_pages(nid) << PAGE_SHIFT;
		unsigned long reserve = min(BELUGA_NODE_RESERVE, free / 16);

		want = (free - reserve) / BELUGA_CHUNK_BYTES;
		if (!want) {
			pr_err("node %d: no free memory to carve\n", nid);
			return -ENOMEM;
		}
	}

	src = beluga_source_new(BELUGA_SOURCE_NODE, nid);
	if (!src)
		return -ENOMEM;
	ret = beluga_source_carve(src, want, bytes != 0);
	if (!ret)
		ret = beluga_source_register(src);
	if (ret) {
		beluga_source_free(src);
		return ret;
	}
	pr_info("node %d: %lu MiB in %lu chunks%s\n", nid,
		(src->nr_chunks * BELUGA_CHUNK_BYTES) >> 20, src->nr_chunks,
		src->has_cpus ? " (DRAM node with CPUs)" : "");
	return 0;
}

/* Parse "nid[:size],nid[:size],..." and carve each source. */
static int beluga_nodes_parse(const char *param)
{
	char *buf, *cur, *tok;
	int ret = 0;

	buf = kstrdup(param, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;

	cur = buf;
	while ((tok = strsep(&cur, ",")) != NULL) {
		char *size_str = strchr(tok, ':');
		unsigned long long bytes = 0;
		int nid;

		if (size_str) {
			char *end;

			*size_str++ = '\0';
			bytes = memparse(size_str, &end);
			if (*end || !bytes) {
				pr_err("bad size '%s' in nodes=: use e.g. 1:64G\n",
				       size_str);
				ret = -EINVAL;
				break;
			}
		}
		if (kstrtoint(tok, 10, &nid)) {
			pr_err("bad node '%s' in nodes=: use e.g. nodes=1:64G,2:64G\n",
			       tok);
			ret = -EINVAL;
			break;
		}
		ret = beluga_node_add(nid, bytes);
		if (ret)
			break;
	}
	kfree(buf);
	return ret;
}

static void beluga_chunk_return(struct beluga_chunk *c)
{
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

/* Parse "start+size,start+size,..." (memparse syntax) and claim each. */
static int beluga_ranges_parse(const char *param)
{
	char *buf, *cur, *tok;
	int ret = 0;

	buf = kstrdup(param, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	cur = buf;
	while ((tok = strsep(&cur, ",")) != NULL) {
		char *plus = strchr(tok, '+'), *end;
		unsigned long long start, bytes;

		if (!plus) {
			pr_err("bad range '%s' in ranges=: use <start>+<size>, e.g. 0x100000000+64G\n",
			       tok);
			ret = -EINVAL;
			break;
		}
		*plus++ = '\0';
		start = memparse(tok, &end);
		if (*end || !*tok) {
			pr_err("bad range start '%s' in ranges=\n", tok);
			ret = -EINVAL;
			break;
		}
		bytes = memparse(plus, &end);
		if (*end || !bytes) {
			pr_err("bad range size '%s' in ranges=\n", plus);
			ret = -EINVAL;
			break;
		}
		ret = beluga_range_add(start, bytes);
		if (ret)
			break;
	}
	kfree(buf);
	return ret;
}

int beluga_pool_init(const char *nodes_param, const char *ranges_param)
{
	bool have_nodes = nodes_param && *nodes_param;
	bool have_ranges = ranges_param && *ranges_param;
	int ret = 0;

	mutex_init(&beluga_pool.lock);
	INIT_LIST_HEAD(&beluga_pool.quarantine);
	INIT_LIST_HEAD(&beluga_pool.quotas);
	INIT_DELAYED_WORK(&beluga_pool.quarantine_work, beluga_quarantine_work);
	beluga_pool.names = RB_ROOT;
	xa_init(&beluga_pool.regions);
	beluga_pool.next_id = 1;

	if (!have_nodes && !have_ranges) {
		pr_err("no memory source: load with nodes=<nid>[:<size>],... (CXL NUMA nodes) or ranges=<start>+<size>,... (reserved physical ranges)\n");
		return -EINVAL;
	}
	if (have_nodes)
		ret = beluga_nodes_parse(nodes_param);
	if (!ret && have_ranges)
		ret = beluga_ranges_parse(ranges_param);
	if (ret)
		beluga_pool_exit();
	return ret;
}

/* Called at unload, when no region and no quarantined chunk can exist. */
void beluga_pool_exit(void)
{
	unsigned int i;

	cancel_delayed_work_sync(&beluga_pool.quarantine_work);
	WARN_ON_ONCE(!list_empty(&beluga_pool.quarantine));
	WARN_ON_ONCE(!xa_empty(&beluga_pool.regions));
	for (i = 0; i < beluga_pool.nr_sources; i++)
		beluga_source_free(beluga_pool.sources[i]);
	beluga_pool.nr_sources = 0;
	xa_destroy(&beluga_pool.regions);
}

static bool beluga_source_matches(struct beluga_source *src, u32 kind,
				  int source_index)
{
	if (kind != BELUGA_SOURCE_ANY && src->kind != kind)
		return false;
	return source_index < 0 || src->index == (unsigned int)source_index;
}

/*
 * The kind of source a create asks for, resolved as far as the request
 * alone allows: a source index fixes the kind; a kind of which no source
 * exists is EINVAL.  BELUGA_SOURCE_ANY with sources of both kinds stays ANY
 * and is decided by beluga_pool_take() from free space.  Sources never
 * change after load, so no lock is needed.
 */
int beluga_pool_resolve_kind(u32 kind, int source_index)
{
	u32 found = BELUGA_SOURCE_ANY;
	unsigned int i;

	if (source_index >= 0) {
		if (source_index >= beluga_pool.nr_sources)
			return -EINVAL;
		found = beluga_pool.sources[source_index]->kind;
		return (kind == BELUGA_SOURCE_ANY || kind == found) ? found : -EINVAL;
	}
	for (i = 0; i < beluga_pool.nr_sources; i++) {
		u32 k = beluga_pool.sources[i]->kind;

		if (kind != BELUGA_SOURCE_ANY && k != kind)
			continue;
		if (found != BELUGA_SOURCE_ANY && k != found)
			return BELUGA_SOURCE_ANY;	/* both kinds: decide later */
		found = k;
	}
	return found == BELUGA_SOURCE_ANY ? -EINVAL : found;
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

		if (src->kind == BELUGA_SOURCE_NODE)
			node += src->nr_free;
		else
			range += src->nr_free;
	}
	if (max(node, range) >= nr_chunks)
		return node >= range ? BELUGA_SOURCE_NODE : BELUGA_SOURCE_RANGE;
	return node + range >= nr_chunks ? -EINVAL : -ENOSPC;
}

/*
 * Give @r->nr_chunks chunks, interleaved round-robin over the matching
 * sources (guideline O9: spread bandwidth over every device).  Each region
 * starts at a rotating source so small regions spread evenly too.
 * Caller holds the pool lock.
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

		if (beluga_source_matches(src, kind, source_index)) {
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
		cand[pos]->nr_free--;
		r->chunks[i] = c;
		pos = (pos + 1) % n;
	}
	beluga_pool.nr_free -= r->nr_chunks;
	r->source_kind = cand[0]->kind;
	return 0;
}

/*
 * Return @r's chunks.  Chunks still referenced from outside (pins, pipes,
 * I/O) are quarantined: reusing them would hand one tenant's memory to
 * another while a device may still write it.  Reverse order keeps the
 * region's first chunk at the head of its free list, so the next region
 * of the same shape gets the same chunks (which the zeroing test relies on).
 * Caller holds the pool lock.
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

/* Chunks with a FOLL_PIN pin, in regions and in the quarantine. */
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
