// SPDX-License-Identifier: GPL-2.0
/*
 * beluga_range.c - physical-range sources (the paper's pool mode), ranges=.
 *
 * A range is memory the kernel does not manage: BIOS- or memmap=-reserved,
 * soft-reserved, or a CXL region released from device-dax.  The driver
 * claims it (request_mem_region) and creates struct pages for it itself
 * with memremap_pages(MEMORY_DEVICE_GENERIC), as device-dax does, so its
 * mappings are devmap PMDs and GUP can pin them long-term.
 *
 * ZONE_DEVICE struct pages must outlive every reference to them: pipes,
 * pins and in-flight I/O hold page references after every file and mapping
 * is gone, and removing the struct pages under them crashes the kernel.
 * The pool's module references (every region, a non-empty quarantine) make
 * unload wait until every page is idle; beluga_range_free() checks again
 * and would rather leak the range than unmap referenced pages.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/ioport.h>
#include <linux/memory_hotplug.h>
#include <linux/memremap.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "beluga_internal.h"

struct beluga_owner_probe {
	char name[64];
};

/*
 * walk_iomem_res_desc() callback: name the first busy resource in the range.
 * The walker hands out copies without names, but with the real parent, so
 * the name is read from the parent's children.  resource_lock is not
 * exported to modules: this read is unlocked and runs only on the load
 * error path, to name the owner in one message; it copies the name and
 * keeps no pointer.
 */
static int beluga_find_owner(struct resource *res, void *arg)
{
	struct beluga_owner_probe *probe = arg;
	struct resource *p;

	if (!(res->flags & IORESOURCE_BUSY) || !res->parent)
		return 0;
	for (p = res->parent->child; p; p = p->sibling) {
		if (p->start <= res->start && res->end <= p->end && p->name) {
			strscpy(probe->name, p->name, sizeof(probe->name));
			return 1;
		}
	}
	return 0;
}

static int beluga_range_check(phys_addr_t start, u64 bytes)
{
	unsigned int i;

	if (!IS_ALIGNED(start, BELUGA_CHUNK_BYTES) ||
	    !IS_ALIGNED(bytes, BELUGA_CHUNK_BYTES) || start + bytes < start) {
		pr_err("range %pa+%#llx is not 2 MiB aligned: fix ranges=\n",
		       &start, bytes);
		return -EINVAL;
	}
	if (region_intersects(start, bytes, IORESOURCE_SYSTEM_RAM,
			      IORES_DESC_NONE) != REGION_DISJOINT) {
		pr_err("range %pa+%#llx overlaps System RAM: reserve it (memmap=, BIOS, or daxctl/ndctl, see the admin guide) or use nodes=\n",
		       &start, bytes);
		return -EINVAL;
	}
	for (i = 0; i < beluga_pool.nr_sources; i++) {
		struct beluga_source *src = beluga_pool.sources[i];

		if (src->kind == BELUGA_SOURCE_RANGE &&
		    start < src->phys + src->bytes && src->phys < start + bytes) {
			pr_err("range %pa+%#llx overlaps another range in ranges=\n",
			       &start, bytes);
			return -EINVAL;
		}
	}
	return 0;
}

static int beluga_range_claim(struct beluga_source *src)
{
	phys_addr_t start = src->phys;
	u64 bytes = src->bytes;

	src->res = request_mem_region(start, bytes, "beluga");
	if (!src->res) {
		struct beluga_owner_probe probe = { .name = "another driver" };

		walk_iomem_res_desc(IORES_DESC_NONE,
				    IORESOURCE_MEM | IORESOURCE_BUSY, start,
				    start + bytes - 1, &probe,
				    beluga_find_owner);
		pr_err("range %pa+%#llx is owned by '%s': release it to Beluga first (admin guide: daxctl/ndctl steps)\n",
		       &start, bytes, probe.name);
		return -EBUSY;
	}
	return 0;
}

static int beluga_range_map_pages(struct beluga_source *src)
{
	void *addr;

	src->pgmap.type = MEMORY_DEVICE_GENERIC;
	src->pgmap.range.start = src->phys;
	src->pgmap.range.end = src->phys + src->bytes - 1;
	src->pgmap.nr_range = 1;
	addr = memremap_pages(&src->pgmap, src->nid);
	if (IS_ERR(addr)) {
		pr_err("range %pa+%#llx: creating struct pages failed (%ld)\n",
		       &src->phys, src->bytes, PTR_ERR(addr));
		return PTR_ERR(addr);
	}
	src->pgmap_live = true;
	return 0;
}

/*
 * Range chunks are 512 order-0 ZONE_DEVICE pages idling at one reference
 * each (devmap page-table entries take none; GUP and pipes do).
 */
static bool beluga_range_chunk_idle(struct beluga_chunk *c)
{
	unsigned long i;

	for (i = 0; i < BELUGA_CHUNK_PAGES; i++)
		if (page_ref_count(nth_page(c->page, i)) != 1)
			return false;
	return true;
}

static bool beluga_range_chunk_pinned(struct beluga_chunk *c)
{
	unsigned long i;

	for (i = 0; i < BELUGA_CHUNK_PAGES; i++)
		if (beluga_page_pinned(nth_page(c->page, i)))
			return true;
	return false;
}

static void beluga_range_free(struct beluga_source *src);

static const struct beluga_source_ops beluga_range_ops = {
	.chunk_idle = beluga_range_chunk_idle,
	.chunk_pinned = beluga_range_chunk_pinned,
	.free = beluga_range_free,
};

static int beluga_range_chunks(struct beluga_source *src)
{
	unsigned long i, pfn = PHYS_PFN(src->phys);
	unsigned long n = src->bytes / BELUGA_CHUNK_BYTES;

	src->chunks = kvcalloc(n, sizeof(*src->chunks), GFP_KERNEL);
	if (!src->chunks)
		return -ENOMEM;
	src->nr_chunks = n;
	for (i = 0; i < n; i++) {
		src->chunks[i].page = pfn_to_page(pfn + i * BELUGA_CHUNK_PAGES);
		src->chunks[i].src = src;
		list_add_tail(&src->chunks[i].node, &src->free_list);
	}
	return 0;
}

static int beluga_range_add(phys_addr_t start, u64 bytes)
{
	struct beluga_source *src;
	int ret;

	ret = beluga_range_check(start, bytes);
	if (ret)
		return ret;
	src = beluga_source_new(BELUGA_SOURCE_RANGE,
				memory_add_physaddr_to_nid(start),
				&beluga_range_ops);
	if (!src)
		return -ENOMEM;
	src->phys = start;
	src->bytes = bytes;

	ret = beluga_range_claim(src);
	if (!ret)
		ret = beluga_range_map_pages(src);
	if (!ret)
		ret = beluga_range_chunks(src);
	if (!ret)
		ret = beluga_source_register(src);
	if (ret) {
		beluga_range_free(src);
		return ret;
	}
	pr_info("range %pa+%llu MiB on node %d: %lu chunks\n", &start,
		bytes >> 20, src->nid, src->nr_chunks);
	return 0;
}

/* Undo beluga_range_add(); refuses (leaks) if any page is still in use. */
static void beluga_range_free(struct beluga_source *src)
{
	unsigned long i;

	for (i = 0; i < src->nr_chunks; i++) {
		if (WARN_ON_ONCE(!beluga_range_chunk_idle(&src->chunks[i]))) {
			pr_err("range %pa: pages still referenced; leaking the range\n",
			       &src->phys);
			return;
		}
	}
	if (src->pgmap_live)
		memunmap_pages(&src->pgmap);
	if (src->res)
		release_mem_region(src->phys, src->bytes);
	kvfree(src->chunks);
	kfree(src);
}

/**
 * beluga_ranges_parse() - create the sources named by the ranges= parameter
 * @param: "start+size,start+size,..." (memparse syntax)
 *
 * Claims, maps and registers each range in turn, printing one line per
 * source or one line saying what to fix.  Called at module load, after
 * beluga_pool_init(); the sources already registered when it fails are
 * freed by beluga_pool_exit().
 *
 * Return: 0 or a negative errno.
 */
int beluga_ranges_parse(const char *param)
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
