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

/* walk_iomem_res_desc() callback: add up the bytes of top-level resources. */
static int beluga_covered(struct resource *res, void *arg)
{
	u64 *covered = arg;

	if (res->parent == &iomem_resource)
		*covered += resource_size(res);
	return 0;
}

/*
 * The checks every range passes before it is claimed.  Called with
 * beluga_pool.sources_lock held at run time (or at load, before anyone can
 * add a source), so the sources it compares with cannot change; it reads
 * them under the pool lock.
 * Return: 0; -EINVAL (alignment, System RAM); -EADDRINUSE (another range
 * source of the pool overlaps); -ENXIO (not all of it is memory the
 * platform describes in /proc/iomem: a bogus address).
 */
static int beluga_range_check(phys_addr_t start, u64 bytes)
{
	u64 covered = 0;
	unsigned int i;
	int ret = 0;

	if (!bytes || !IS_ALIGNED(start, BELUGA_CHUNK_BYTES) ||
	    !IS_ALIGNED(bytes, BELUGA_CHUNK_BYTES) || start + bytes < start) {
		pr_err("range %pa+%#llx is not 2 MiB aligned (or empty, or wraps): fix the range\n",
		       &start, bytes);
		return -EINVAL;
	}
	if (region_intersects(start, bytes, IORESOURCE_SYSTEM_RAM,
			      IORES_DESC_NONE) != REGION_DISJOINT) {
		pr_err("range %pa+%#llx overlaps System RAM: reserve it (memmap=, BIOS, or daxctl/ndctl, see the admin guide) or use nodes=\n",
		       &start, bytes);
		return -EINVAL;
	}
	mutex_lock(&beluga_pool.lock);
	for (i = 0; i < beluga_pool.nr_sources; i++) {
		struct beluga_source *src = beluga_pool.sources[i];

		if (src && src->kind == BELUGA_SOURCE_RANGE &&
		    start < src->phys + src->bytes && src->phys < start + bytes) {
			pr_err("range %pa+%#llx overlaps another range in ranges= or source %u\n",
			       &start, bytes, i);
			ret = -EADDRINUSE;
			break;
		}
	}
	mutex_unlock(&beluga_pool.lock);
	if (ret)
		return ret;
	walk_iomem_res_desc(IORES_DESC_NONE, IORESOURCE_MEM, start,
			    start + bytes - 1, &covered, beluga_covered);
	if (covered != bytes) {
		pr_err("range %pa+%#llx is not all platform memory (/proc/iomem covers %llu of its bytes): check the address\n",
		       &start, bytes, covered);
		return -ENXIO;
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

/**
 * beluga_range_add() - claim a physical range and pool it as a range source
 * @start: physical address of the range
 * @bytes: its length
 * @name: the source's name (empty for ranges=); the caller checked it is
 *	valid and unique
 * @identity: what names the memory on every host, shown in sysfs; may be
 *	empty
 *
 * Checks the range (beluga_range_check()), claims it, creates its struct
 * pages and chunks and registers the source (beluga_source_register()).
 *
 * Context: process context; at load, or with beluga_pool.sources_lock
 * held (BELUGA_IOC_SOURCE_ADD).  Takes beluga_pool.lock.
 * Return: the registered source, or an ERR_PTR: -EINVAL (alignment,
 * System RAM), -EADDRINUSE (overlaps a range source), -ENXIO (not platform
 * memory), -EBUSY (another driver owns part of it), -ENOSPC (no free source
 * slot), -ENOMEM, or memremap_pages()'s error.
 */
struct beluga_source *beluga_range_add(phys_addr_t start, u64 bytes,
				       const char *name, const char *identity)
{
	struct beluga_source *src;
	int ret;

	ret = beluga_range_check(start, bytes);
	if (ret)
		return ERR_PTR(ret);
	src = beluga_source_new(BELUGA_SOURCE_RANGE,
				memory_add_physaddr_to_nid(start),
				&beluga_range_ops);
	if (!src)
		return ERR_PTR(-ENOMEM);
	src->phys = start;
	src->bytes = bytes;
	strscpy_pad(src->name, name, sizeof(src->name));
	strscpy_pad(src->identity, identity, sizeof(src->identity));

	ret = beluga_range_claim(src);
	if (!ret)
		ret = beluga_range_map_pages(src);
	if (!ret)
		ret = beluga_range_chunks(src);
	if (!ret)
		ret = beluga_source_register(src);
	if (ret) {
		beluga_range_free(src);
		return ERR_PTR(ret);
	}
	pr_info("range %pa+%llu MiB on node %d: %lu chunks, source %u%s%s\n",
		&start, bytes >> 20, src->nid, src->nr_chunks, src->index,
		*name ? " " : "", name);
	return src;
}

/*
 * Undo beluga_range_add(); refuses (leaks) if any page is still in use.
 * Called for a source that is not (or no longer) in the pool's array.
 */
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
 * source or one line saying what to fix.  The sources already registered
 * when it fails are freed by beluga_pool_exit().
 *
 * Context: module load, after beluga_pool_init(), before /dev/beluga exists.
 * Return: 0 or a negative errno (-EINVAL for every bad range, as since ABI
 * 1.1; -EBUSY when another driver owns one; -ENOMEM).
 */
int beluga_ranges_parse(const char *param)
{
	struct beluga_source *src;
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
		src = beluga_range_add(start, bytes, "", "");
		if (IS_ERR(src)) {
			ret = PTR_ERR(src);
			/* ranges= has refused bad ranges with EINVAL since 1.1 */
			if (ret == -EADDRINUSE || ret == -ENXIO || ret == -ENOSPC)
				ret = -EINVAL;
			break;
		}
	}
	kfree(buf);
	return ret;
}
