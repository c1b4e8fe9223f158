// SPDX-License-Identifier: GPL-2.0
/*
 * beluga_test.c - TEST-ONLY helper for the Beluga VM test suite.
 *
 * /dev/beluga_test (mode 0600) answers three ioctls about the *calling*
 * process's address space (see beluga_test_uapi.h):
 *  - WALK walks the page tables (pgd/p4d/pud/pmd/pte, under mmap_read_lock)
 *    in 2 MiB steps and says whether each step is one PMD leaf, PTEs, or
 *    unmapped, with the first page's pfn and node.  This is the only
 *    reliable proof of a 2 MiB mapping: smaps skips PFNMAP VMAs and does not
 *    count devmap PMDs.
 *  - PIN calls pin_user_pages(FOLL_WRITE | FOLL_LONGTERM) in batches, as
 *    RDMA, O_DIRECT and cudaHostRegister do, and checks every returned page
 *    against the page table.  Held pins belong to the open file.
 *  - UNPIN drops held pins.
 * Modelled on mm/gup_test.c.  Not for production kernels.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pgtable.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/version.h>

#include "beluga_test_uapi.h"

#define BT_WALK_BATCH	64	/* entries walked per mmap_read_lock hold */
#define BT_PIN_BATCH	512	/* pages per pin_user_pages() call */

/* A set of pages pinned by one PIN with BELUGA_TEST_PIN_HOLD. */
struct bt_pinset {
	struct list_head node;
	u32 handle;
	unsigned long nr;
	struct page **pages;
};

/* Per open file: the held pin sets, released on UNPIN or close. */
struct bt_file {
	struct mutex lock;	/* protects @pins and @next_handle */
	struct list_head pins;
	u32 next_handle;
};

/* 6.5 dropped the vmas argument of pin_user_pages(). */
static long bt_pin_user_pages(unsigned long start, unsigned long nr,
			      unsigned int gup_flags, struct page **pages)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
	return pin_user_pages(start, nr, gup_flags, pages);
#else
	return pin_user_pages(start, nr, gup_flags, pages, NULL);
#endif
}

/* Node, compound order and struct-page presence of a mapped pfn. */
static void bt_describe_pfn(struct beluga_test_walk_entry *e, unsigned long pfn)
{
	struct page *page;

	e->pfn = pfn;
	if (!pfn_valid(pfn)) {
		e->flags |= BELUGA_TEST_WALK_F_NOPAGE;
		return;
	}
	page = pfn_to_page(pfn);
	e->nid = page_to_nid(page);
	e->order = compound_order(compound_head(page));
}

/*
 * PTE tables are read through apply_to_page_range(), which maps and locks
 * them itself: 6.5 moved pte_offset_map_lock() out of line into
 * __pte_offset_map_lock() ("mm/pgtable: allow pte_offset_map[_lock]() to
 * fail"), which modules cannot call.  It is called only on a PMD that points
 * to a PTE table, so it allocates nothing.  apply_to_existing_page_range()
 * would be the read-only form, but kernels without "mm: fix
 * apply_to_existing_page_range()" (6.15, and stable backports) read the
 * wrong entries after an empty one.
 */
struct bt_pte_walk {
	struct beluga_test_walk_entry *e;
	unsigned long step;		/* 2 MiB-aligned start of the step */
	unsigned long first_pfn;
};

static int bt_count_pte(pte_t *ptep, unsigned long addr, void *data)
{
	struct bt_pte_walk *w = data;
	struct beluga_test_walk_entry *e = w->e;
	unsigned int i = (addr - w->step) >> PAGE_SHIFT;
	pte_t pte = ptep_get(ptep);

	if (!pte_present(pte))
		return 0;
	if (!e->nr_present) {
		w->first_pfn = pte_pfn(pte);
		e->first_index = i;
		if (pte_devmap(pte))
			e->flags |= BELUGA_TEST_WALK_F_DEVMAP;
		if (pte_special(pte))
			e->flags |= BELUGA_TEST_WALK_F_SPECIAL;
		if (pte_write(pte))
			e->flags |= BELUGA_TEST_WALK_F_WRITE;
	}
	if (pte_pfn(pte) == w->first_pfn + (i - e->first_index))
		e->nr_contig++;
	e->nr_present++;
	return 0;
}

/*
 * Count the present PTEs of the 2 MiB step at @addr, which a PTE table maps;
 * the caller holds mmap_lock.
 */
static void bt_walk_ptes(struct mm_struct *mm, unsigned long addr,
			 struct beluga_test_walk_entry *e)
{
	struct bt_pte_walk w = { .e = e, .step = addr };

	e->kind = BELUGA_TEST_MAP_PTE;
	if (apply_to_page_range(mm, addr, BELUGA_TEST_STEP, bt_count_pte, &w))
		e->kind = BELUGA_TEST_MAP_OTHER;	/* changed under us */
	else if (e->nr_present)
		bt_describe_pfn(e, w.first_pfn);
}

/* Describe a PMD leaf; called under the PMD lock. */
static void bt_walk_pmd_leaf(pmd_t pmd, struct beluga_test_walk_entry *e)
{
	e->kind = BELUGA_TEST_MAP_PMD;
	e->nr_present = PTRS_PER_PMD;
	e->nr_contig = PTRS_PER_PMD;
	if (pmd_trans_huge(pmd))
		e->flags |= BELUGA_TEST_WALK_F_TRANSHUGE;
	if (pmd_devmap(pmd))
		e->flags |= BELUGA_TEST_WALK_F_DEVMAP;
	if (pmd_write(pmd))
		e->flags |= BELUGA_TEST_WALK_F_WRITE;
	bt_describe_pfn(e, pmd_pfn(pmd));
}

/*
 * Walk pgd/p4d/pud for @addr.  Returns the PMD entry's address, or NULL
 * after describing in @e what was found instead (nothing, a PUD leaf, a
 * non-present PUD).  The caller holds mmap_read_lock.
 */
static pmd_t *bt_walk_upper(struct mm_struct *mm, unsigned long addr,
			    struct beluga_test_walk_entry *e)
{
	pgd_t *pgd;
	p4d_t *p4d;
	pud_t *pudp, pud;

	pgd = pgd_offset(mm, addr);
	if (pgd_none(*pgd) || pgd_bad(*pgd))
		return NULL;
	p4d = p4d_offset(pgd, addr);
	if (p4d_none(*p4d) || p4d_bad(*p4d))
		return NULL;
	pudp = pud_offset(p4d, addr);
	pud = READ_ONCE(*pudp);
	if (pud_none(pud))
		return NULL;
	if (pud_leaf(pud)) {
		e->kind = BELUGA_TEST_MAP_PUD;
		e->nr_present = PTRS_PER_PMD;
		e->nr_contig = PTRS_PER_PMD;
		bt_describe_pfn(e, pud_pfn(pud) +
				((addr & ~PUD_MASK) >> PAGE_SHIFT));
		return NULL;
	}
	if (!pud_present(pud) || pud_bad(pud)) {
		e->kind = BELUGA_TEST_MAP_OTHER;
		return NULL;
	}
	return pmd_offset(pudp, addr);
}

/*
 * Walk one 2 MiB step at @addr; the caller holds mmap_read_lock.  Returns
 * the PMD entry's address when the step is mapped by a PTE table.
 */
static pmd_t *bt_walk_step(struct mm_struct *mm, unsigned long addr,
			   struct beluga_test_walk_entry *e)
{
	spinlock_t *ptl;
	pmd_t *pmdp, pmd;

	memset(e, 0, sizeof(*e));
	e->addr = addr;
	e->nid = NUMA_NO_NODE;
	e->kind = BELUGA_TEST_MAP_NONE;

	pmdp = bt_walk_upper(mm, addr, e);
	if (!pmdp)
		return NULL;
	ptl = pmd_lock(mm, pmdp);
	pmd = *pmdp;
	if (pmd_none(pmd)) {
		spin_unlock(ptl);
		return NULL;
	}
	if (!pmd_present(pmd)) {
		e->kind = BELUGA_TEST_MAP_OTHER;	/* migration entry */
		spin_unlock(ptl);
		return NULL;
	}
	if (pmd_leaf(pmd)) {
		bt_walk_pmd_leaf(pmd, e);
		spin_unlock(ptl);
		return NULL;
	}
	spin_unlock(ptl);
	/*
	 * A PTE table.  mmap_read_lock keeps it from being freed (collapse and
	 * free_pgtables need the write lock), so it may be walked after the
	 * PMD lock is dropped.
	 */
	bt_walk_ptes(mm, addr, e);
	return pmdp;
}

static int bt_check_range(u64 addr, u64 length, u64 align, u64 max)
{
	if (!length || length > max || !IS_ALIGNED(addr, align) ||
	    !IS_ALIGNED(length, align))
		return -EINVAL;
	if (length > TASK_SIZE || addr > TASK_SIZE - length)
		return -EINVAL;
	return 0;
}

static long bt_ioc_walk(void __user *uarg)
{
	struct beluga_test_walk_entry *buf;
	struct beluga_test_walk_entry __user *out;
	struct mm_struct *mm = current->mm;
	struct beluga_test_walk w;
	u64 steps, done, n, i;
	int ret;

	if (copy_from_user(&w, uarg, sizeof(w)))
		return -EFAULT;
	if (w.flags || w.__pad || w.reserved[0] || w.reserved[1])
		return -EINVAL;
	ret = bt_check_range(w.addr, w.length, BELUGA_TEST_STEP,
			     BELUGA_TEST_WALK_MAX);
	if (ret)
		return ret;
	steps = w.length / BELUGA_TEST_STEP;
	w.count = steps;
	out = u64_to_user_ptr(w.entries);

	buf = kmalloc_array(BT_WALK_BATCH, sizeof(*buf), GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	for (done = 0; done < min_t(u64, steps, w.capacity); done += n) {
		n = min_t(u64, BT_WALK_BATCH, w.capacity - done);
		n = min_t(u64, n, steps - done);
		ret = mmap_read_lock_killable(mm);
		if (ret)
			goto out;
		for (i = 0; i < n; i++)
			bt_walk_step(mm, w.addr + (done + i) * BELUGA_TEST_STEP,
				     &buf[i]);
		mmap_read_unlock(mm);
		/* Copy out without mmap_lock: the copy may fault. */
		if (copy_to_user(out + done, buf, n * sizeof(*buf))) {
			ret = -EFAULT;
			goto out;
		}
	}
	ret = copy_to_user(uarg, &w, sizeof(w)) ? -EFAULT : 0;
out:
	kfree(buf);
	return ret;
}

static int bt_read_pfn(pte_t *ptep, unsigned long addr, void *data)
{
	pte_t pte = ptep_get(ptep);

	if (pte_present(pte))
		*(unsigned long *)data = pte_pfn(pte);
	return 0;
}

/* The pfn the page table maps at @addr, or 0; caller holds mmap_lock. */
static unsigned long bt_lookup_pfn(struct mm_struct *mm, unsigned long addr)
{
	unsigned long step = addr & ~(BELUGA_TEST_STEP - 1);
	unsigned long idx = (addr - step) >> PAGE_SHIFT;
	struct beluga_test_walk_entry e;
	unsigned long pfn = 0;

	if (!bt_walk_step(mm, step, &e)) {
		if (e.kind == BELUGA_TEST_MAP_PMD ||
		    e.kind == BELUGA_TEST_MAP_PUD)
			return e.pfn + idx;
		return 0;
	}
	/* A PTE table (see bt_walk_ptes()). */
	if (apply_to_page_range(mm, addr & PAGE_MASK, PAGE_SIZE, bt_read_pfn,
				&pfn))
		return 0;
	return pfn;
}

/* Pin @nr pages at @addr into @pages and count page-table mismatches. */
static long bt_pin_batch(struct mm_struct *mm, unsigned long addr,
			 unsigned long nr, struct page **pages,
			 struct beluga_test_pin *p)
{
	unsigned long i;
	long got;

	got = bt_pin_user_pages(addr, nr, FOLL_WRITE | FOLL_LONGTERM, pages);
	if (got <= 0)
		return got ? got : -EFAULT;
	for (i = 0; i < got; i++) {
		unsigned long va = addr + i * PAGE_SIZE;

		if (page_to_pfn(pages[i]) == bt_lookup_pfn(mm, va))
			continue;
		if (!p->nr_mismatch)
			p->first_mismatch = va;
		p->nr_mismatch++;
	}
	p->nr_pinned += got;
	return got;
}

/*
 * Pin [addr, addr + length) into @pages (which has room for all of it when
 * @hold, else for one batch that is unpinned after checking).
 */
static long bt_pin_range(struct beluga_test_pin *p, struct page **pages,
			 bool hold)
{
	unsigned long nr = p->length >> PAGE_SHIFT, done = 0;
	struct mm_struct *mm = current->mm;
	long got = 0;

	if (mmap_read_lock_killable(mm))
		return -EINTR;
	while (done < nr) {
		struct page **dst = hold ? pages + done : pages;
		unsigned long n = min_t(unsigned long, nr - done, BT_PIN_BATCH);

		got = bt_pin_batch(mm, p->addr + done * PAGE_SIZE, n, dst, p);
		if (got < 0)
			break;
		if (!hold)
			unpin_user_pages(dst, got);
		done += got;
	}
	mmap_read_unlock(mm);
	if (got < 0 && hold)
		unpin_user_pages(pages, done);
	return got < 0 ? got : 0;
}

static long bt_ioc_pin(struct bt_file *bf, void __user *uarg)
{
	struct bt_pinset *set = NULL;
	struct beluga_test_pin p;
	struct page **pages;
	bool hold;
	long ret;

	if (copy_from_user(&p, uarg, sizeof(p)))
		return -EFAULT;
	if ((p.flags & ~BELUGA_TEST_PIN_FLAGS_ALL) || p.handle || p.nr_pinned ||
	    p.nr_mismatch || p.first_mismatch || p.reserved[0] ||
	    p.reserved[1])
		return -EINVAL;
	ret = bt_check_range(p.addr, p.length, PAGE_SIZE, BELUGA_TEST_PIN_MAX);
	if (ret)
		return ret;
	hold = p.flags & BELUGA_TEST_PIN_HOLD;
	pages = kvmalloc_array(hold ? p.length >> PAGE_SHIFT : BT_PIN_BATCH,
			       sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	if (hold) {
		set = kzalloc(sizeof(*set), GFP_KERNEL);
		if (!set) {
			ret = -ENOMEM;
			goto free_pages;
		}
	}
	ret = bt_pin_range(&p, pages, hold);
	if (ret)
		goto free_set;
	if (hold) {
		set->pages = pages;
		set->nr = p.nr_pinned;
		mutex_lock(&bf->lock);
		set->handle = ++bf->next_handle;
		list_add_tail(&set->node, &bf->pins);
		mutex_unlock(&bf->lock);
		p.handle = set->handle;
	} else {
		kvfree(pages);
	}
	/* The pins stay valid even if this copy fails; close drops them. */
	return copy_to_user(uarg, &p, sizeof(p)) ? -EFAULT : 0;

free_set:
	kfree(set);
free_pages:
	kvfree(pages);
	return ret;
}

static void bt_pinset_free(struct bt_pinset *set)
{
	unpin_user_pages(set->pages, set->nr);
	kvfree(set->pages);
	kfree(set);
}

static long bt_ioc_unpin(struct bt_file *bf, void __user *uarg)
{
	struct bt_pinset *set, *tmp;
	struct beluga_test_unpin u;
	LIST_HEAD(drop);

	if (copy_from_user(&u, uarg, sizeof(u)))
		return -EFAULT;
	if ((u.flags & ~BELUGA_TEST_UNPIN_FLAGS_ALL) || u.nr_unpinned ||
	    u.reserved[0] || u.reserved[1])
		return -EINVAL;
	mutex_lock(&bf->lock);
	list_for_each_entry_safe(set, tmp, &bf->pins, node) {
		if ((u.flags & BELUGA_TEST_UNPIN_ALL) || set->handle == u.handle)
			list_move_tail(&set->node, &drop);
	}
	mutex_unlock(&bf->lock);
	if (list_empty(&drop) && !(u.flags & BELUGA_TEST_UNPIN_ALL))
		return -ENOENT;
	list_for_each_entry_safe(set, tmp, &drop, node) {
		u.nr_unpinned += set->nr;
		list_del(&set->node);
		bt_pinset_free(set);
	}
	return copy_to_user(uarg, &u, sizeof(u)) ? -EFAULT : 0;
}

static long bt_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct bt_file *bf = file->private_data;
	void __user *uarg = (void __user *)arg;

	/* Only the process that walks/pins its own mm makes sense. */
	if (!current->mm)
		return -EINVAL;
	switch (cmd) {
	case BELUGA_TEST_IOC_WALK:
		return bt_ioc_walk(uarg);
	case BELUGA_TEST_IOC_PIN:
		return bt_ioc_pin(bf, uarg);
	case BELUGA_TEST_IOC_UNPIN:
		return bt_ioc_unpin(bf, uarg);
	default:
		return -ENOTTY;
	}
}

static int bt_open(struct inode *inode, struct file *file)
{
	struct bt_file *bf = kzalloc(sizeof(*bf), GFP_KERNEL);

	if (!bf)
		return -ENOMEM;
	mutex_init(&bf->lock);
	INIT_LIST_HEAD(&bf->pins);
	file->private_data = bf;
	return 0;
}

static int bt_release(struct inode *inode, struct file *file)
{
	struct bt_file *bf = file->private_data;
	struct bt_pinset *set, *tmp;

	list_for_each_entry_safe(set, tmp, &bf->pins, node) {
		list_del(&set->node);
		bt_pinset_free(set);
	}
	mutex_destroy(&bf->lock);
	kfree(bf);
	return 0;
}

static const struct file_operations bt_fops = {
	.owner = THIS_MODULE,
	.open = bt_open,
	.release = bt_release,
	.unlocked_ioctl = bt_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice bt_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "beluga_test",
	.fops = &bt_fops,
	.mode = 0600,
};

static int __init bt_init(void)
{
	int ret = misc_register(&bt_misc);

	if (ret)
		pr_err("cannot register /dev/beluga_test: %d\n", ret);
	return ret;
}

static void __exit bt_exit(void)
{
	misc_deregister(&bt_misc);
}

module_init(bt_init);
module_exit(bt_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Beluga test-only helper: page-table walk and long-term pins");
