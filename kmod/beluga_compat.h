/* SPDX-License-Identifier: GPL-2.0 */
/*
 * beluga_compat.h - every kernel-version difference Beluga depends on.
 *
 * The driver is developed and tested on Debian 12's 6.1 kernel.  Anything
 * that changed upstream since, and that the driver touches, is wrapped here
 * so that porting means editing this file only.
 */
#ifndef _BELUGA_COMPAT_H
#define _BELUGA_COMPAT_H

#include <linux/mm.h>
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
 * Mapping a chunk with one PMD relies on finish_fault() -> do_set_pmd()
 * mapping any compound page of HPAGE_PMD_ORDER returned by ->fault (6.1;
 * measured in the mapping matrix, variant V4).  Since 6.14 drivers can call
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
