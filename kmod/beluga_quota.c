// SPDX-License-Identifier: GPL-2.0
/*
 * beluga_quota.c - per-uid limits on region bytes and region count.
 *
 * A region is charged, for its whole life, to the uid that created it
 * (changing the owner later does not move the charge, so chown cannot be
 * used to escape a quota).  Limits default to the module parameters
 * quota_bytes and quota_regions (0: unlimited); BELUGA_IOC_QUOTA_SET
 * (CAP_SYS_ADMIN) changes them per uid.  Lowering a limit below current use
 * only refuses new regions.  Entries live until the module is unloaded:
 * there is one per uid that ever created a region or had a limit set.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "beluga_internal.h"

static struct beluga_quota_entry *beluga_quota_find(kuid_t uid, bool create)
{
	struct beluga_quota_entry *e;

	lockdep_assert_held(&beluga_pool.lock);
	list_for_each_entry(e, &beluga_pool.quotas, node)
		if (uid_eq(e->uid, uid))
			return e;
	if (!create)
		return NULL;

	e = kzalloc(sizeof(*e), GFP_KERNEL);
	if (!e)
		return NULL;
	e->uid = uid;
	e->max_bytes = beluga_pool.default_quota_bytes;
	e->max_regions = beluga_pool.default_quota_regions;
	/* A missing sysfs directory is not worth failing the charge for. */
	beluga_sysfs_add_quota(e);
	list_add_tail(&e->node, &beluga_pool.quotas);
	return e;
}

/**
 * beluga_quota_charge() - charge a new region to the uid that creates it.
 * @r: the region, not yet published; @r->uid and @r->size are set.
 *
 * Finds the quota entry of @r->uid, creating it with the module's default
 * limits (and its sysfs directory) on first use, and adds one region and
 * @r->size bytes to its use if both stay within the limits (0: unlimited).
 * The entry is remembered in @r->quota, so the charge stays with the creator
 * whoever owns the region later.
 *
 * Context: process context, may sleep (allocates); beluga_pool.lock held.
 * Return: 0, -EDQUOT when the region count or the bytes would pass a limit,
 * or -ENOMEM.
 */
int beluga_quota_charge(struct beluga_region *r)
{
	struct beluga_quota_entry *e = beluga_quota_find(r->uid, true);

	if (!e)
		return -ENOMEM;
	if (e->max_regions && e->used_regions >= e->max_regions)
		return -EDQUOT;
	if (e->max_bytes && e->used_bytes + r->size > e->max_bytes)
		return -EDQUOT;
	e->used_regions++;
	e->used_bytes += r->size;
	r->quota = e;
	return 0;
}

/**
 * beluga_quota_uncharge() - give a region's charge back to its creator.
 * @r: the region; nothing happens when it was never charged.
 *
 * Context: beluga_pool.lock held; does not sleep.
 */
void beluga_quota_uncharge(struct beluga_region *r)
{
	lockdep_assert_held(&beluga_pool.lock);
	if (!r->quota)
		return;
	r->quota->used_regions--;
	r->quota->used_bytes -= r->size;
	r->quota = NULL;
}

static void beluga_quota_fill(struct beluga_quota *q,
			      const struct beluga_quota_entry *e)
{
	if (e) {
		q->max_bytes = e->max_bytes;
		q->used_bytes = e->used_bytes;
		q->max_regions = e->max_regions;
		q->used_regions = e->used_regions;
	} else {
		q->max_bytes = beluga_pool.default_quota_bytes;
		q->max_regions = beluga_pool.default_quota_regions;
	}
}

/**
 * beluga_ioc_quota_get() - BELUGA_IOC_QUOTA_GET: one uid's limits and use.
 * @argp: user pointer to a struct beluga_quota; @uid is read in the
 *        caller's user namespace.
 *
 * A uid that never created a region nor had a limit set reads the default
 * limits and no use; no entry is created for it.
 *
 * Context: process context, may sleep.  Takes beluga_pool.lock; copies to
 * and from user space without it.
 * Return: 0, -EFAULT, or -EINVAL (a flag, output or reserved field set, or
 * a uid not mapped in the caller's namespace).
 */
long beluga_ioc_quota_get(void __user *argp)
{
	struct beluga_quota q;
	kuid_t uid;

	if (copy_from_user(&q, argp, sizeof(q)))
		return -EFAULT;
	if (q.flags || q.max_bytes || q.used_bytes || q.max_regions ||
	    q.used_regions || memchr_inv(q.reserved, 0, sizeof(q.reserved)))
		return -EINVAL;
	uid = make_kuid(current_user_ns(), q.uid);
	if (!uid_valid(uid))
		return -EINVAL;

	mutex_lock(&beluga_pool.lock);
	beluga_quota_fill(&q, beluga_quota_find(uid, false));
	mutex_unlock(&beluga_pool.lock);
	return copy_to_user(argp, &q, sizeof(q)) ? -EFAULT : 0;
}

/**
 * beluga_ioc_quota_set() - BELUGA_IOC_QUOTA_SET: change one uid's limits.
 * @argp: user pointer to a struct beluga_quota; @flags selects which of
 *        @max_bytes and @max_regions to set (0: unlimited).
 *
 * Creates the uid's entry if needed and writes back its limits and use.  A
 * limit lowered below current use only refuses new regions.
 *
 * Context: process context, may sleep.  Takes beluga_pool.lock; copies to
 * and from user space without it.
 * Return: 0, -EFAULT, -EINVAL (no or an unknown flag, an output, reserved or
 * unselected field set, or an unmapped uid), -EPERM (no CAP_SYS_ADMIN) or
 * -ENOMEM.
 */
long beluga_ioc_quota_set(void __user *argp)
{
	struct beluga_quota_entry *e;
	struct beluga_quota q;
	kuid_t uid;

	if (copy_from_user(&q, argp, sizeof(q)))
		return -EFAULT;
	if (!q.flags || (q.flags & ~BELUGA_QUOTA_SET_ALL) || q.used_bytes ||
	    q.used_regions || memchr_inv(q.reserved, 0, sizeof(q.reserved)))
		return -EINVAL;
	if ((!(q.flags & BELUGA_QUOTA_SET_BYTES) && q.max_bytes) ||
	    (!(q.flags & BELUGA_QUOTA_SET_REGIONS) && q.max_regions))
		return -EINVAL;
	uid = make_kuid(current_user_ns(), q.uid);
	if (!uid_valid(uid))
		return -EINVAL;
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;

	mutex_lock(&beluga_pool.lock);
	e = beluga_quota_find(uid, true);
	if (e) {
		if (q.flags & BELUGA_QUOTA_SET_BYTES)
			e->max_bytes = q.max_bytes;
		if (q.flags & BELUGA_QUOTA_SET_REGIONS)
			e->max_regions = q.max_regions;
		beluga_quota_fill(&q, e);
	}
	mutex_unlock(&beluga_pool.lock);
	if (!e)
		return -ENOMEM;
	return copy_to_user(argp, &q, sizeof(q)) ? -EFAULT : 0;
}

/**
 * beluga_quota_exit() - free every quota entry and its sysfs directory.
 *
 * Context: module exit only, after the last region is gone (every entry is
 * unused) and nothing else can reach the list; takes no lock, may sleep.
 */
void beluga_quota_exit(void)
{
	struct beluga_quota_entry *e, *tmp;

	list_for_each_entry_safe(e, tmp, &beluga_pool.quotas, node) {
		list_del(&e->node);
		beluga_sysfs_del_quota(e);
		kfree(e);
	}
}
