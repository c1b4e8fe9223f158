/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * beluga_test_uapi.h - ABI of the TEST-ONLY helper module beluga_test.ko
 *
 * /dev/beluga_test (root only) lets the VM test suite look at what the MMU
 * and GUP really see for a mapping of the calling process, the way the
 * kernel's own mm/gup_test.c does:
 *  - WALK:  page-table walk in 2 MiB steps: PMD leaf, PTEs (how many), or
 *           nothing, with the pfn and NUMA node of the first mapped page.
 *  - PIN:   pin_user_pages(FOLL_WRITE | FOLL_LONGTERM) over a user range;
 *           every returned page is checked against the page table.  With
 *           BELUGA_TEST_PIN_HOLD the pins stay, owned by the open file,
 *           until UNPIN or close, so tests can make pins outlive a mapping.
 *  - UNPIN: release held pins.
 * Never ship or load this module outside tests: it exposes pfns.
 *
 * Same rules as the Beluga ABI: fixed-width fields, explicit padding, sizes
 * a multiple of 8, unknown flags and non-zero padding/reserved -> EINVAL.
 */
#ifndef _UAPI_BELUGA_TEST_H
#define _UAPI_BELUGA_TEST_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define BELUGA_TEST_DEVICE_PATH "/dev/beluga_test"
#define BELUGA_TEST_IOC_MAGIC 0xBF
#define BELUGA_TEST_STEP (2ULL << 20)		/* WALK granule (one PMD) */
#define BELUGA_TEST_WALK_MAX (1ULL << 40)	/* longest WALK range */
#define BELUGA_TEST_PIN_MAX (4ULL << 30)	/* longest PIN range */

/* struct beluga_test_walk_entry.kind */
#define BELUGA_TEST_MAP_NONE	0 /* no page table entry at all */
#define BELUGA_TEST_MAP_PMD	1 /* one PMD leaf maps the whole step */
#define BELUGA_TEST_MAP_PTE	2 /* a PTE table; @nr_present PTEs present */
#define BELUGA_TEST_MAP_PUD	3 /* a 1 GiB PUD leaf covers the step */
#define BELUGA_TEST_MAP_OTHER	4 /* non-present entry (swap, migration) */

/* struct beluga_test_walk_entry.flags (of the first mapped page) */
#define BELUGA_TEST_WALK_F_DEVMAP	(1U << 0) /* pmd_devmap/pte_devmap */
#define BELUGA_TEST_WALK_F_WRITE	(1U << 1) /* writable entry */
#define BELUGA_TEST_WALK_F_SPECIAL	(1U << 2) /* pte_special (PFNMAP) */
#define BELUGA_TEST_WALK_F_NOPAGE	(1U << 3) /* pfn has no struct page */
#define BELUGA_TEST_WALK_F_TRANSHUGE	(1U << 4) /* pmd_trans_huge */

/*
 * struct beluga_test_walk_entry - one 2 MiB step of a WALK.
 * @addr:        user address of the step.
 * @pfn:         pfn of the first mapped 4 KiB page of the step (0: none).
 * @kind:        BELUGA_TEST_MAP_*.
 * @flags:       BELUGA_TEST_WALK_F_*.
 * @nr_present:  4 KiB pages of the step that are mapped (512 for a leaf).
 * @nr_contig:   present pages whose pfn continues @pfn at their index
 *               (512 for a leaf; < nr_present if PTEs map scattered pages).
 * @first_index: 4 KiB index inside the step of the page at @pfn.
 * @nid:         page_to_nid() of that page, -1 if none or no struct page.
 * @order:       compound order of that page's head (9 for a 2 MiB chunk).
 */
struct beluga_test_walk_entry {
	__u64 addr;
	__u64 pfn;
	__u32 kind;
	__u32 flags;
	__u32 nr_present;
	__u32 nr_contig;
	__u32 first_index;
	__s32 nid;
	__u32 order;
	__u32 __pad;
};

/*
 * struct beluga_test_walk - BELUGA_TEST_IOC_WALK.
 * @addr:     in: user address, BELUGA_TEST_STEP aligned.
 * @length:   in: bytes, a non-zero multiple of BELUGA_TEST_STEP, at most
 *            BELUGA_TEST_WALK_MAX, inside the user address space.
 * @entries:  in: user pointer to @capacity struct beluga_test_walk_entry.
 * @capacity: in: entries available (0 to ask for the count).
 * @flags:    in: must be 0.
 * @count:    out: steps in the range; min(count, capacity) written.
 */
struct beluga_test_walk {
	__u64 addr;
	__u64 length;
	__u64 entries;
	__u32 capacity;
	__u32 flags;
	__u32 count;
	__u32 __pad;
	__u64 reserved[2];
};

/*
 * struct beluga_test_pin - BELUGA_TEST_IOC_PIN.
 * @addr:     in: user address, page aligned.
 * @length:   in: bytes, a non-zero multiple of the page size, at most
 *            BELUGA_TEST_PIN_MAX, inside the user address space.
 * @flags:    in: BELUGA_TEST_PIN_* bits.
 * @handle:   out: with BELUGA_TEST_PIN_HOLD, the handle for UNPIN (>= 1).
 * @nr_pinned: out: pages pinned (length / page size on success).
 * @nr_mismatch: out: pinned pages that are not the page the page table
 *            maps at their address (must be 0).
 * @first_mismatch: out: address of the first mismatch (0 if none).
 * Fails with GUP's errno (all pins dropped) if any page cannot be pinned.
 */
#define BELUGA_TEST_PIN_HOLD	(1U << 0) /* keep the pins until UNPIN/close */
#define BELUGA_TEST_PIN_FLAGS_ALL BELUGA_TEST_PIN_HOLD

struct beluga_test_pin {
	__u64 addr;
	__u64 length;
	__u32 flags;
	__u32 handle;
	__u64 nr_pinned;
	__u64 nr_mismatch;
	__u64 first_mismatch;
	__u64 reserved[2];
};

/*
 * struct beluga_test_unpin - BELUGA_TEST_IOC_UNPIN.
 * @handle: in: a handle from PIN (ignored with BELUGA_TEST_UNPIN_ALL).
 * @flags:  in: BELUGA_TEST_UNPIN_* bits.
 * @nr_unpinned: out: pages released.
 * ENOENT if @handle is not held by this open file.
 */
#define BELUGA_TEST_UNPIN_ALL	(1U << 0) /* release every held pin */
#define BELUGA_TEST_UNPIN_FLAGS_ALL BELUGA_TEST_UNPIN_ALL

struct beluga_test_unpin {
	__u32 handle;
	__u32 flags;
	__u64 nr_unpinned;
	__u64 reserved[2];
};

#define BELUGA_TEST_IOC_WALK	_IOWR(BELUGA_TEST_IOC_MAGIC, 0x00, struct beluga_test_walk)
#define BELUGA_TEST_IOC_PIN	_IOWR(BELUGA_TEST_IOC_MAGIC, 0x01, struct beluga_test_pin)
#define BELUGA_TEST_IOC_UNPIN	_IOWR(BELUGA_TEST_IOC_MAGIC, 0x02, struct beluga_test_unpin)

#endif /* _UAPI_BELUGA_TEST_H */
