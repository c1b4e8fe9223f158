/* SPDX-License-Identifier: GPL-2.0 */
/*
 * beluga_compat.h - every kernel-version difference Beluga depends on.
 *
 * The driver builds and is tested on Debian 12's 6.1 kernel and on 6.12 LTS
 * (Debian 12's bookworm-security, Debian 13).  Anything that changed upstream
 * between them, and that the driver touches, is wrapped here, each with the
 * upstream change it covers, so that porting means editing this file only.
 */
#ifndef _BELUGA_COMPAT_H
#define _BELUGA_COMPAT_H

#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/version.h>

/* 6.3 made vma->vm_flags read-only behind vm_flags_set()/vm_flags_clear(). */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
static inline void beluga_vm_flags_set(struct vm_area_struct *vma,
				       unsigned long flags)
{
	vma->vm_flags |= flags;
}
#else
static inline void beluga_vm_flags_set(struct vm_area_struct *vma,
				       unsigned long flags)
{
	vm_flags_set(vma, flags);
}
#endif

/*
 * Whether a chunk (a compound page of HPAGE_PMD_ORDER) has a FOLL_PIN pin.
 * folio_maybe_dma_pinned() exists from 5.16 on; for large folios it reads
 * the exact pin count, so it is not a guess for our chunks.
 */
static inline bool beluga_chunk_pinned(struct page *head)
{
	return folio_maybe_dma_pinned(page_folio(head));
}

/*
 * Whether a single page (a range chunk's order-0 ZONE_DEVICE page) has a
 * FOLL_PIN pin.  page_maybe_dma_pinned() went away in 6.11 ("mm: remove
 * page_maybe_dma_pinned()"); the folio call it wrapped exists on 6.1 too.
 */
static inline bool beluga_page_pinned(struct page *page)
{
	return folio_maybe_dma_pinned(page_folio(page));
}

/*
 * Whether FOLL_LONGTERM pins accept @page where it is (not ZONE_MOVABLE,
 * CMA or coherent device memory).  6.5 removed is_longterm_pinnable_page()
 * ("mm: remove is_longterm_pinnable_page() and reimplement
 * folio_is_longterm_pinnable()"); the folio form exists on 6.1 too.
 */
static inline bool beluga_page_longterm_pinnable(struct page *page)
{
	return folio_is_longterm_pinnable(page_folio(page));
}

/*
 * Whether the 2 MiB-aligned range around @addr lies inside @vma at a file
 * offset congruent to it, i.e. can be one PMD.  6.8 renamed
 * transhuge_vma_suitable() to thp_vma_suitable_order() with an order
 * argument ("mm: thp: introduce multi-size THP sysfs interface").
 */
static inline bool beluga_pmd_suitable(struct vm_area_struct *vma,
				       unsigned long addr)
{
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 8, 0)
	return transhuge_vma_suitable(vma, addr);
#else
	return thp_vma_suitable_order(vma, addr, PMD_ORDER);
#endif
}

/*
 * The process's default get_unmapped_area (top-down or legacy layout).
 * 6.10 replaced the mm->get_unmapped_area pointer with a flag and the
 * exported mm_get_unmapped_area() ("mm: switch mm->get_unmapped_area() to
 * a flag").
 */
static inline unsigned long beluga_mm_get_unmapped_area(struct file *file,
							unsigned long addr,
							unsigned long len,
							unsigned long pgoff,
							unsigned long flags)
{
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 10, 0)
	return current->mm->get_unmapped_area(file, addr, len, pgoff, flags);
#else
	return mm_get_unmapped_area(current->mm, file, addr, len, pgoff, flags);
#endif
}

/*
 * Mapping a chunk with one PMD relies on finish_fault() -> do_set_pmd()
 * mapping any compound page of HPAGE_PMD_ORDER returned by ->fault (6.1
 * and 6.12: drv-pmd checks it on both, through the test helper's page-table
 * walk).  Since 6.14 drivers can call
 * vmf_insert_folio_pmd() explicitly; a port to such kernels should switch to
 * a ->huge_fault handler here.
 */
#define BELUGA_CHUNK_ORDER	HPAGE_PMD_ORDER

/* 6.6 replaced ->huge_fault's enum page_entry_size with a page order. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 6, 0)
#define BELUGA_HUGE_FAULT_FN(name, vmf, size) \
	vm_fault_t name(struct vm_fault *vmf, enum page_entry_size size)
#define BELUGA_HUGE_FAULT_IS_PMD(size)	((size) == PE_SIZE_PMD)
#define BELUGA_HUGE_FAULT_IS_PTE(size)	((size) == PE_SIZE_PTE)
#else
#define BELUGA_HUGE_FAULT_FN(name, vmf, size) \
	vm_fault_t name(struct vm_fault *vmf, unsigned int size)
#define BELUGA_HUGE_FAULT_IS_PMD(size)	((size) == PMD_ORDER)
#define BELUGA_HUGE_FAULT_IS_PTE(size)	((size) == 0)
#endif

/* 6.3 passes ->setattr the mount's idmap instead of its user namespace. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
#define BELUGA_SETATTR_FN(name, d, attr) \
	int name(struct user_namespace *ns, struct dentry *d, struct iattr *attr)
#else
#define BELUGA_SETATTR_FN(name, d, attr) \
	int name(struct mnt_idmap *idmap, struct dentry *d, struct iattr *attr)
#endif

#endif /* _BELUGA_COMPAT_H */
