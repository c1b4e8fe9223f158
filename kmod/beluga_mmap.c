// SPDX-License-Identifier: GPL-2.0
/*
 * beluga_mmap.c - mapping region memory into user space.
 *
 * Technique (Documentation/design.md has the measurements): each chunk is an
 * order-9 compound page; ->fault returns the subpage at the faulting offset
 * with a reference, and the core mm's finish_fault() maps the whole compound
 * page with one PMD when the 2 MiB range fits the VMA (do_set_pmd()), or the
 * single 4 KiB page otherwise.  The VMA is neither VM_PFNMAP nor
 * VM_MIXEDMAP, so the pages are ordinary struct pages to GUP: long-term pins
 * (cudaHostRegister, RDMA, O_DIRECT) work on cold and warm mappings.
 * VM_PFNMAP + vmf_insert_pfn_pmd() would give PMDs that GUP refuses;
 * vm_insert_pages() would give pinnable 4 KiB PTEs only.
 *
 * Range regions (ZONE_DEVICE pages, beluga_range.c) are mapped the way
 * device-dax maps them: the inode is S_DAX so the core calls ->huge_fault,
 * which inserts devmap PMDs (PFN_DEV | PFN_MAP), with devmap PTEs as the
 * fallback.  Devmap entries take no page references; GUP takes its own.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/io.h>
#include <linux/mman.h>
#include <linux/pagemap.h>
#include <linux/overflow.h>
#include <linux/pfn_t.h>
#include <linux/sched.h>

#include "beluga_internal.h"

static void beluga_vm_open(struct vm_area_struct *vma)
{
	struct beluga_region *r = beluga_file_region(vma->vm_file);

	atomic_inc(&r->map_count);
}

static void beluga_vm_close(struct vm_area_struct *vma)
{
	struct beluga_region *r = beluga_file_region(vma->vm_file);

	atomic_dec(&r->map_count);
}

/*
 * Predict whether finish_fault() will map this fault with a PMD, for the
 * fault counters only: the PMD must still be empty and the aligned 2 MiB
 * range must lie inside a VMA whose start is congruent to its offset.
 */
static bool beluga_fault_is_pmd(struct vm_fault *vmf)
{
	pmd_t pmd = READ_ONCE(*vmf->pmd);

	return pmd_none(pmd) && beluga_pmd_suitable(vmf->vma, vmf->address);
}

static vm_fault_t beluga_vm_fault(struct vm_fault *vmf)
{
	struct beluga_region *r = beluga_file_region(vmf->vma->vm_file);
	unsigned long idx = vmf->pgoff >> BELUGA_CHUNK_ORDER;
	struct page *page;

	if (idx >= r->nr_chunks)
		return VM_FAULT_SIGBUS;

	page = nth_page(r->chunks[idx]->page,
			vmf->pgoff & (BELUGA_CHUNK_PAGES - 1));
	get_page(page);		/* becomes the page-table entry's reference */
	vmf->page = page;

	if (beluga_fault_is_pmd(vmf))
		atomic64_inc(&beluga_pool.counters.pmd_faults);
	else
		atomic64_inc(&beluga_pool.counters.pte_faults);
	return 0;
}

static const struct vm_operations_struct beluga_vm_ops = {
	.open = beluga_vm_open,
	.close = beluga_vm_close,
	.fault = beluga_vm_fault,
};

/* Physical address of the page at @pgoff of @r, or 0 beyond the end. */
static phys_addr_t beluga_range_phys(struct beluga_region *r, pgoff_t pgoff)
{
	unsigned long idx = pgoff >> BELUGA_CHUNK_ORDER;

	if (idx >= r->nr_chunks)
		return 0;
	return page_to_phys(r->chunks[idx]->page) +
	       ((pgoff & (BELUGA_CHUNK_PAGES - 1)) << PAGE_SHIFT);
}

static vm_fault_t beluga_range_pmd_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct beluga_region *r = beluga_file_region(vma->vm_file);
	unsigned long pmd_addr = vmf->address & PMD_MASK;
	bool write = vmf->flags & FAULT_FLAG_WRITE;
	vm_fault_t ret;
	phys_addr_t phys;
	pgoff_t pgoff;

	if (pmd_addr < vma->vm_start || pmd_addr + PMD_SIZE > vma->vm_end)
		return VM_FAULT_FALLBACK;
	pgoff = linear_page_index(vma, pmd_addr);
	if (pgoff & (BELUGA_CHUNK_PAGES - 1))
		return VM_FAULT_FALLBACK;	/* moved by a misaligned mremap */
	phys = beluga_range_phys(r, pgoff);
	if (!phys)
		return VM_FAULT_SIGBUS;
	ret = vmf_insert_pfn_pmd(vmf, phys_to_pfn_t(phys, PFN_DEV | PFN_MAP),
				 write);
	if (ret == VM_FAULT_NOPAGE)
		atomic64_inc(&beluga_pool.counters.pmd_faults);
	return ret;
}

static vm_fault_t beluga_range_fault(struct vm_fault *vmf)
{
	struct beluga_region *r = beluga_file_region(vmf->vma->vm_file);
	phys_addr_t phys = beluga_range_phys(r, vmf->pgoff);

	if (!phys)
		return VM_FAULT_SIGBUS;
	atomic64_inc(&beluga_pool.counters.pte_faults);
	return vmf_insert_mixed(vmf->vma, vmf->address,
				phys_to_pfn_t(phys, PFN_DEV | PFN_MAP));
}

static BELUGA_HUGE_FAULT_FN(beluga_range_huge_fault, vmf, size)
{
	if (BELUGA_HUGE_FAULT_IS_PMD(size))
		return beluga_range_pmd_fault(vmf);
	if (BELUGA_HUGE_FAULT_IS_PTE(size))
		return beluga_range_fault(vmf);
	return VM_FAULT_FALLBACK;
}

static const struct vm_operations_struct beluga_range_vm_ops = {
	.open = beluga_vm_open,
	.close = beluga_vm_close,
	.fault = beluga_range_fault,
	.huge_fault = beluga_range_huge_fault,
};

/**
 * beluga_region_mmap() - the ->mmap of a region file.
 * @file: the region file.
 * @vma: the new mapping.
 *
 * Accepts shared mappings that lie inside the region and whose start is
 * congruent to their offset modulo 2 MiB (so that every whole chunk can be
 * one PMD), marks the VMA VM_DONTEXPAND | VM_HUGEPAGE and installs the fault
 * handlers of the region's source kind: compound pages mapped by the core
 * for node sources, devmap PMDs for range sources.  The VMA holds @file,
 * which keeps the region alive; its open/close count the region's mappings.
 *
 * Context: process context, mmap_lock held for writing by the caller; takes
 * no driver lock (the region's size and source kind never change).
 * Return: 0, or -EINVAL for a private mapping, one past the end of the
 * region or an address not congruent to the offset modulo 2 MiB.
 */
int beluga_region_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct beluga_region *r = beluga_file_region(file);
	unsigned long end_pgoff;

	/* Shared only: a private COW copy of pool memory makes no sense. */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (check_add_overflow(vma->vm_pgoff, vma_pages(vma), &end_pgoff) ||
	    end_pgoff > (r->size >> PAGE_SHIFT))
		return -EINVAL;
	/* A PMD needs the address congruent to the offset modulo 2 MiB. */
	if (!IS_ALIGNED((vma->vm_start >> PAGE_SHIFT) - vma->vm_pgoff,
			BELUGA_CHUNK_PAGES))
		return -EINVAL;

	/*
	 * VM_DONTEXPAND: mremap() may not grow past the region.  It is also in
	 * VM_SPECIAL, which keeps mlock() from marking these non-LRU pages
	 * PG_mlocked.  VM_HUGEPAGE: PMD mappings are the point.
	 * Never VM_PFNMAP/VM_MIXEDMAP: GUP and zap_huge_pmd() need normal pages.
	 */
	beluga_vm_flags_set(vma, VM_DONTEXPAND | VM_HUGEPAGE);
	vma->vm_ops = r->source_kind == BELUGA_SOURCE_RANGE ?
		      &beluga_range_vm_ops : &beluga_vm_ops;
	beluga_vm_open(vma);
	return 0;
}

/**
 * beluga_region_get_unmapped_area() - the ->get_unmapped_area of a region file.
 * @file: the region file.
 * @addr: the address hint.
 * @len: length of the mapping in bytes.
 * @pgoff: offset of the mapping in the region, in pages.
 * @flags: the mmap() flags.
 *
 * Picks an address congruent to the file offset modulo 2 MiB, as device-dax
 * does, so every whole chunk in the mapping can be one PMD: it asks the mm
 * for @len plus 2 MiB and moves up inside that.  Small mappings are aligned
 * too: beluga_region_mmap() refuses incongruent addresses, so the only way
 * to get one is MAP_FIXED, whose @addr is returned as it is.
 *
 * Context: process context, called by the mm with mmap_lock held; takes no
 * driver lock.
 * Return: the address, or a negative errno as an unsigned long: -ENOMEM
 * when @len plus 2 MiB overflows or exceeds TASK_SIZE, or the mm's error.
 */
unsigned long beluga_region_get_unmapped_area(struct file *file,
					      unsigned long addr,
					      unsigned long len,
					      unsigned long pgoff,
					      unsigned long flags)
{
	const unsigned long align = BELUGA_CHUNK_BYTES;
	unsigned long off, len_align, addr_align;

	if (flags & MAP_FIXED)
		return addr;

	off = pgoff << PAGE_SHIFT;
	if (check_add_overflow(len, align, &len_align) || len_align > TASK_SIZE)
		return -ENOMEM;

	addr_align = beluga_mm_get_unmapped_area(file, addr, len_align, pgoff,
						 flags);
	if (IS_ERR_VALUE(addr_align))
		return addr_align;
	return addr_align + ((off - addr_align) & (align - 1));
}
