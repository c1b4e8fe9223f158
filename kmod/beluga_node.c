// SPDX-License-Identifier: GPL-2.0
/*
 * beluga_node.c - NUMA-node sources: checks, carving at load, nodes=.
 *
 * A node is carved at module load, not on demand: a CXL node in
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
#include <linux/nodemask.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmstat.h>

#include "beluga_internal.h"

/* Memory left to the kernel on a node whose size was not given. */
#define BELUGA_NODE_RESERVE	(64UL << 20)

/*
 * No __GFP_MOVABLE: chunks must come from ZONE_NORMAL so FOLL_LONGTERM pins
 * never try to migrate them.  No __GFP_ZERO: chunks are zeroed when a region
 * gets them, which also covers reuse.
 */
#define BELUGA_CHUNK_GFP (GFP_KERNEL | __GFP_THISNODE | __GFP_COMP | \
			  __GFP_NOWARN | __GFP_RETRY_MAYFAIL)

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

/*
 * Node chunks are compound pages: the head's count covers every subpage, so
 * a chunk is idle when the head holds only the pool's reference.
 */
static bool beluga_node_chunk_idle(struct beluga_chunk *c)
{
	return page_ref_count(c->page) == 1;
}

static bool beluga_node_chunk_pinned(struct beluga_chunk *c)
{
	return beluga_chunk_pinned(c->page);
}

/* Undo beluga_node_add(); leaks (with a warning) any page still in use. */
static void beluga_node_free(struct beluga_source *src)
{
	unsigned long i;

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

static const struct beluga_source_ops beluga_node_ops = {
	.chunk_idle = beluga_node_chunk_idle,
	.chunk_pinned = beluga_node_chunk_pinned,
	.free = beluga_node_free,
};

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

	/* Load time, before /dev/beluga exists: nothing changes the array. */
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

	src = beluga_source_new(BELUGA_SOURCE_NODE, nid, &beluga_node_ops);
	if (!src)
		return -ENOMEM;
	ret = beluga_source_carve(src, want, bytes != 0);
	if (!ret) {
		ret = beluga_source_register(src);
		if (ret == -ENOSPC)
			ret = -EINVAL;	/* as since ABI 1.0 */
	}
	if (ret) {
		beluga_node_free(src);
		return ret;
	}
	pr_info("node %d: %lu MiB in %lu chunks%s\n", nid,
		(src->nr_chunks * BELUGA_CHUNK_BYTES) >> 20, src->nr_chunks,
		src->has_cpus ? " (DRAM node with CPUs)" : "");
	return 0;
}

/**
 * beluga_nodes_parse() - create the sources named by the nodes= parameter
 * @param: "nid[:size],nid[:size],..."
 *
 * Carves and registers each node in turn, printing one line per source or
 * one line saying what to fix.  The sources already registered when it
 * fails are freed by beluga_pool_exit().  Node sources exist from load to
 * unload only: BELUGA_IOC_SOURCE_REMOVE refuses them.
 *
 * Context: module load, after beluga_pool_init(), before /dev/beluga exists.
 * Return: 0 or a negative errno (-EINVAL bad parameter, -ENODEV node
 * offline or empty, -ENOMEM not enough free memory on the node).
 */
int beluga_nodes_parse(const char *param)
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
