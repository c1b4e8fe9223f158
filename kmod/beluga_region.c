// SPDX-License-Identifier: GPL-2.0
/*
 * beluga_region.c - regions: namespace, permissions, lifetime.
 *
 * A region is reached only through region files (beluga_file.c).  Each
 * region has its own
 * anonymous inode on a private pseudo filesystem (as dma-buf does), so the
 * mapping code can decide per region how pages are mapped, and fstat() on a
 * region fd shows the region's owner, mode and size.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/ctype.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/pseudo_fs.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/stat.h>
#include <linux/string.h>

#include "beluga_internal.h"

#define BELUGA_FS_MAGIC 0x42454c55	/* "BELU" */

/* /proc/<pid>/maps and fd links show "beluga:<region name>". */
static char *beluga_fs_dname(struct dentry *dentry, char *buffer, int buflen)
{
	char tmp[BELUGA_NAME_MAX + 16];
	int sz;

	/* Like the kernel's (unexported) dynamic_dname(): fill from the end. */
	sz = snprintf(tmp, sizeof(tmp), "beluga:%s", dentry->d_name.name) + 1;
	if (sz > sizeof(tmp) || sz > buflen)
		return ERR_PTR(-ENAMETOOLONG);
	buffer += buflen - sz;
	return memcpy(buffer, tmp, sz);
}

static const struct dentry_operations beluga_fs_dentry_ops = {
	.d_dname = beluga_fs_dname,
};

static int beluga_fs_init_fs_context(struct fs_context *fc)
{
	struct pseudo_fs_context *ctx = init_pseudo(fc, BELUGA_FS_MAGIC);

	if (!ctx)
		return -ENOMEM;
	ctx->dops = &beluga_fs_dentry_ops;
	return 0;
}

/*
 * No .owner: the kernel-internal mount would otherwise hold a module
 * reference for its whole life and the module could never be unloaded.
 * The mount is dropped in module exit, after every region file is gone.
 */
static struct file_system_type beluga_fs_type = {
	.name = "beluga",
	.init_fs_context = beluga_fs_init_fs_context,
	.kill_sb = kill_anon_super,
};

/**
 * beluga_region_fs_init() - mount the pseudo filesystem of region inodes.
 *
 * Each region gets an anonymous inode on this kernel-internal mount.
 *
 * Context: module init, process context, may sleep.
 * Return: 0 or the errno of kern_mount().
 */
int beluga_region_fs_init(void)
{
	beluga_pool.mnt = kern_mount(&beluga_fs_type);
	return PTR_ERR_OR_ZERO(beluga_pool.mnt);
}

/**
 * beluga_region_fs_exit() - unmount the pseudo filesystem of region inodes.
 *
 * Context: module exit, after the last region file and region are gone;
 * process context, may sleep.
 */
void beluga_region_fs_exit(void)
{
	kern_unmount(beluga_pool.mnt);
}

/**
 * beluga_name_valid() - check a region name from user space.
 * @name: a BELUGA_NAME_MAX-byte field.
 * @allow_empty: accept an all-zero field (an ephemeral region's).
 *
 * A name is 1..63 bytes of [A-Za-z0-9._-] (ASCII only), NUL-terminated,
 * with every byte after the NUL zero.
 *
 * Context: any; reads @name only.
 * Return: true when @name is valid.
 */
bool beluga_name_valid(const char *name, bool allow_empty)
{
	size_t len = strnlen(name, BELUGA_NAME_MAX);
	size_t i;

	if (len == BELUGA_NAME_MAX || (!len && !allow_empty))
		return false;
	for (i = 0; i < len; i++) {
		char c = name[i];

		/* isalnum() alone would accept Latin-1 letters (0xc0-0xff). */
		if (!isascii(c) ||
		    (!isalnum(c) && c != '.' && c != '_' && c != '-'))
			return false;
	}
	for (; i < BELUGA_NAME_MAX; i++)
		if (name[i])
			return false;
	return true;
}

static struct beluga_region *beluga_name_find(const char *name)
{
	struct rb_node *n = beluga_pool.names.rb_node;

	lockdep_assert_held(&beluga_pool.lock);
	while (n) {
		struct beluga_region *r = rb_entry(n, struct beluga_region,
						   name_node);
		int cmp = strcmp(name, r->name);

		if (!cmp)
			return r;
		n = cmp < 0 ? n->rb_left : n->rb_right;
	}
	return NULL;
}

static int beluga_name_insert(struct beluga_region *r)
{
	struct rb_node **link = &beluga_pool.names.rb_node, *parent = NULL;

	lockdep_assert_held(&beluga_pool.lock);
	while (*link) {
		struct beluga_region *cur = rb_entry(*link, struct beluga_region,
						     name_node);
		int cmp = strcmp(r->name, cur->name);

		if (!cmp)
			return -EEXIST;
		parent = *link;
		link = cmp < 0 ? &parent->rb_left : &parent->rb_right;
	}
	rb_link_node(&r->name_node, parent, link);
	rb_insert_color(&r->name_node, &beluga_pool.names);
	r->named = true;
	return 0;
}

static void beluga_name_remove(struct beluga_region *r)
{
	lockdep_assert_held(&beluga_pool.lock);
	rb_erase(&r->name_node, &beluga_pool.names);
	r->named = false;
}

/* Mirror owner and mode into the inode so fstat() on a region fd shows them. */
static void beluga_region_sync_inode(struct beluga_region *r)
{
	struct inode *inode = r->inode;

	inode->i_uid = r->uid;
	inode->i_gid = r->gid;
	inode->i_mode = (r->source_kind == BELUGA_SOURCE_RANGE ? S_IFCHR : S_IFREG) |
			r->mode;
}

/*
 * fchmod, fchown, ftruncate and utimes on a region fd: refused.  Owner and
 * mode belong to the driver (REGION_SETATTR checks them on every open), and
 * a region's size never changes; simple_setattr() would change the inode
 * alone and let fstat() disagree with what the driver enforces.
 */
static BELUGA_SETATTR_FN(beluga_region_inode_setattr, d, attr)
{
	return -EPERM;
}

static const struct inode_operations beluga_region_iops = {
	.setattr = beluga_region_inode_setattr,
};

static void beluga_region_free(struct beluga_region *r)
{
	if (r->inode)
		iput(r->inode);
	kvfree(r->chunks);
	kfree(r);
}

/* kref release: entered with the pool lock held (kref_put_mutex). */
static void beluga_region_release(struct kref *ref)
	__releases(&beluga_pool.lock)
{
	struct beluga_region *r = container_of(ref, struct beluga_region, ref);

	xa_erase(&beluga_pool.regions, r->id);
	beluga_pool.nr_regions--;
	beluga_pool_give_back(r);
	beluga_quota_uncharge(r);
	mutex_unlock(&beluga_pool.lock);

	beluga_sysfs_del_region(r);
	atomic64_inc(&beluga_pool.counters.regions_freed);
	beluga_region_free(r);
	module_put(THIS_MODULE);	/* taken in beluga_region_create() */
}

/**
 * beluga_region_put() - drop a reference to a region.
 * @r: the region.
 *
 * The last put takes beluga_pool.lock, removes the region from the id table,
 * gives its chunks back to the pool (or to the quarantine while a chunk is
 * still referenced elsewhere) and its quota charge back, then, without the
 * lock, removes its sysfs directory, frees it and drops its module
 * reference.
 *
 * Context: process context, may sleep.  Must not be called with
 * beluga_pool.lock held (the release takes it).
 */
void beluga_region_put(struct beluga_region *r)
{
	kref_put_mutex(&r->ref, beluga_region_release, &beluga_pool.lock);
}

static void beluga_region_zero(struct beluga_region *r)
{
	unsigned long i, p;

	for (i = 0; i < r->nr_chunks; i++) {
		struct page *head = r->chunks[i]->page;

		for (p = 0; p < BELUGA_CHUNK_PAGES; p++)
			clear_highpage(nth_page(head, p));
		cond_resched();
	}
}

/*
 * What a new region is made of.  A private region's chunks are placed by
 * the pool (@kind, @source_index) and zeroed; a shared region (@shared
 * set) maps a fixed extent of source @source_index and is never zeroed.
 */
struct beluga_region_spec {
	const char *name;
	u64 size;
	u32 mode;
	bool ephemeral;
	u32 kind;
	int source_index;
	bool shared;
	u64 extent_offset;
};

static struct beluga_region *beluga_region_alloc(const struct beluga_region_spec *spec)
{
	struct beluga_region *r;

	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return NULL;
	r->nr_chunks = spec->size / BELUGA_CHUNK_BYTES;
	r->chunks = kvcalloc(r->nr_chunks, sizeof(*r->chunks), GFP_KERNEL);
	if (!r->chunks)
		goto fail;
	r->inode = alloc_anon_inode(beluga_pool.mnt->mnt_sb);
	if (IS_ERR(r->inode)) {
		r->inode = NULL;
		goto fail;
	}
	kref_init(&r->ref);
	r->size = spec->size;
	r->ephemeral = spec->ephemeral;
	strscpy_pad(r->name, spec->name, BELUGA_NAME_MAX);
	r->uid = current_fsuid();
	r->gid = current_fsgid();
	r->mode = spec->mode;
	r->source_kind = spec->kind;
	if (spec->shared) {
		r->shared = true;
		r->shared_offset = spec->extent_offset;
	}
	RB_CLEAR_NODE(&r->name_node);
	r->inode->i_size = r->size;
	r->inode->i_private = r;
	r->inode->i_op = &beluga_region_iops;
	return r;
fail:
	beluga_region_free(r);
	return NULL;
}

/* Enter @r into the id table (and the namespace if named).  Pool lock held. */
static int beluga_region_publish(struct beluga_region *r)
{
	int ret;

	ret = xa_err(xa_store(&beluga_pool.regions, r->id, r, GFP_KERNEL));
	if (ret)
		return ret;
	if (!r->ephemeral) {
		ret = beluga_name_insert(r);
		if (ret) {
			xa_erase(&beluga_pool.regions, r->id);
			return ret;
		}
		kref_get(&r->ref);	/* the name's reference */
	}
	beluga_pool.nr_regions++;
	return 0;
}

/*
 * Give @r its chunks; pool lock held.  A private region is charged to its
 * creator's quota and placed by the pool; a shared region takes its fixed
 * extent and is charged to no one (only CAP_SYS_ADMIN defines one).
 */
static int beluga_region_take(struct beluga_region *r,
			      const struct beluga_region_spec *spec)
{
	int ret;

	if (spec->shared)
		return beluga_pool_take_extent(r, spec->source_index,
					       spec->extent_offset);
	ret = beluga_quota_charge(r);
	if (ret)
		return ret;
	ret = beluga_pool_take(r, spec->kind, spec->source_index);
	if (ret) {
		if (ret == -ENOSPC)
			atomic64_inc(&beluga_pool.counters.alloc_failures);
		beluga_quota_uncharge(r);
	}
	return ret;
}

/*
 * Create a region from a validated spec.  Returns it with one reference
 * for the caller (plus the name's reference if named), or an ERR_PTR.
 */
static struct beluga_region *__beluga_region_create(const struct beluga_region_spec *spec)
{
	struct beluga_region *r;
	int ret;

	r = beluga_region_alloc(spec);
	if (!r) {
		atomic64_inc(&beluga_pool.counters.alloc_failures);
		return ERR_PTR(-ENOMEM);
	}

	mutex_lock(&beluga_pool.lock);
	if (!r->ephemeral && beluga_name_find(r->name)) {
		ret = -EEXIST;
		goto unlock_free;
	}
	ret = beluga_region_take(r, spec);
	if (ret)
		goto unlock_free;
	r->id = beluga_pool.next_id++;
	mutex_unlock(&beluga_pool.lock);

	/*
	 * The kind is known now (beluga_pool_take() may have picked it).
	 * Range regions are mapped like device-dax: S_DAX makes the 6.1 core
	 * call ->huge_fault, and a character-device inode keeps GUP from taking
	 * the VMA for fsdax (which refuses FOLL_LONGTERM).  Node regions must
	 * not be S_DAX: their PMDs come from finish_fault().
	 */
	if (r->source_kind == BELUGA_SOURCE_RANGE)
		r->inode->i_flags |= S_DAX;
	beluga_region_sync_inode(r);

	/*
	 * Not yet visible to anyone: zero and add sysfs without the lock.  A
	 * shared region's bytes may be in use by another host: never zeroed.
	 */
	if (!r->shared)
		beluga_region_zero(r);
	ret = beluga_sysfs_add_region(r);
	if (ret)
		goto give_back;

	mutex_lock(&beluga_pool.lock);
	ret = beluga_region_publish(r);
	if (ret) {
		mutex_unlock(&beluga_pool.lock);
		beluga_sysfs_del_region(r);
		goto give_back;
	}
	__module_get(THIS_MODULE);	/* dropped in beluga_region_release() */
	mutex_unlock(&beluga_pool.lock);
	atomic64_inc(&beluga_pool.counters.regions_created);
	return r;

give_back:
	mutex_lock(&beluga_pool.lock);
	beluga_pool_give_back(r);
	beluga_quota_uncharge(r);
unlock_free:
	mutex_unlock(&beluga_pool.lock);
	beluga_region_free(r);
	return ERR_PTR(ret);
}

/**
 * beluga_region_create() - create a private region.
 * @req: a REGION_CREATE request whose fields the caller validated.
 * @kind: the source kind asked for (BELUGA_SOURCE_ANY, _NODE or _RANGE).
 *
 * Allocates the region, charges it to the caller's fsuid quota, takes its
 * chunks from the pool as @kind and @req->source_index ask, zeroes them,
 * adds the region's sysfs directory and publishes it: into the id table
 * and, unless @req asks for an ephemeral region, the namespace.  The region
 * takes a module reference until it is freed.  On failure everything is
 * given back.
 *
 * Context: process context, may sleep (zeroing takes time proportional to
 * the size).  Takes beluga_pool.lock twice, never across the zeroing nor the
 * sysfs calls; the caller holds no driver lock.
 * Return: the region with one reference for the caller and one for the name
 * if named, or an ERR_PTR: -EEXIST (name taken), -EDQUOT (quota), -ENOSPC or
 * -EINVAL (beluga_pool_take()), or -ENOMEM.
 */
struct beluga_region *beluga_region_create(const struct beluga_region_create *req,
					   u32 kind)
{
	const struct beluga_region_spec spec = {
		.name = req->name,
		.size = req->size,
		.mode = req->mode,
		.ephemeral = req->flags & BELUGA_CREATE_EPHEMERAL,
		.kind = kind,
		.source_index = req->source_index,
	};

	return __beluga_region_create(&spec);
}

/**
 * beluga_region_create_shared() - a named region over a fixed extent
 * @name: a valid, non-empty name
 * @size: bytes, a non-zero multiple of BELUGA_CHUNK_BYTES
 * @mode: permission bits
 * @source_index: the source; beluga_pool_take_extent() checks under the
 *	pool lock that it exists, is a range source and holds the extent
 * @offset: bytes into the source, chunk aligned
 *
 * The caller (beluga_shared.c) has checked name, size, mode and alignment.
 * The region's memory is never zeroed, and it is charged to no quota.
 *
 * Context: process context, may sleep.  Takes beluga_pool.lock itself; the
 * caller holds no driver lock.
 * Return: the region with one reference for the caller and one for the
 * name, or an ERR_PTR: -EEXIST (name), -EINVAL, -EOPNOTSUPP, -ENXIO,
 * -EADDRINUSE, -EBUSY (beluga_pool_take_extent()), -ENOMEM.
 */
struct beluga_region *beluga_region_create_shared(const char *name, u64 size,
						  u32 mode,
						  unsigned int source_index,
						  u64 offset)
{
	const struct beluga_region_spec spec = {
		.name = name,
		.size = size,
		.mode = mode,
		.kind = BELUGA_SOURCE_RANGE,
		.source_index = source_index,
		.shared = true,
		.extent_offset = offset,
	};

	return __beluga_region_create(&spec);
}

/**
 * beluga_region_lookup() - find a named region and take a reference to it.
 * @name: a valid region name.
 *
 * Context: process context, may sleep.  Takes beluga_pool.lock.
 * Return: the region (drop the reference with beluga_region_put()), or
 * ERR_PTR(-ENOENT).
 */
struct beluga_region *beluga_region_lookup(const char *name)
{
	struct beluga_region *r;

	mutex_lock(&beluga_pool.lock);
	r = beluga_name_find(name);
	if (r)
		kref_get(&r->ref);
	mutex_unlock(&beluga_pool.lock);
	return r ? r : ERR_PTR(-ENOENT);
}

/**
 * beluga_region_is_owner() - whether the caller's fsuid owns a region.
 * @r: the region.
 *
 * Context: process context; reads @r->uid, which beluga_pool.lock protects:
 * hold it unless a stale answer is harmless.
 * Return: true when current_fsuid() is the region's owner.
 */
bool beluga_region_is_owner(struct beluga_region *r)
{
	return uid_eq(current_fsuid(), r->uid);
}

/**
 * beluga_region_may_open() - file-style permission check on a region.
 * @r: the region, referenced by the caller.
 * @write: whether write access is asked for (read is always asked for).
 *
 * Uses the owner bits when the caller's fsuid owns the region, else the
 * group bits when the caller is in its group, else the other bits;
 * CAP_DAC_OVERRIDE passes.
 *
 * Context: process context, may sleep.  Takes beluga_pool.lock.
 * Return: 0 or -EACCES.
 */
int beluga_region_may_open(struct beluga_region *r, bool write)
{
	umode_t want = write ? 0006 : 0004;	/* r/w in the 'other' position */
	umode_t mode;

	mutex_lock(&beluga_pool.lock);
	mode = r->mode;
	if (beluga_region_is_owner(r))
		mode >>= 6;
	else if (in_group_p(r->gid))
		mode >>= 3;
	mutex_unlock(&beluga_pool.lock);

	if ((mode & want) == want || capable(CAP_DAC_OVERRIDE))
		return 0;
	return -EACCES;
}

/**
 * beluga_region_unpublish() - remove a region's name if it still has one.
 * @r: the region, referenced by the caller.
 *
 * Drops the name's reference; the caller's reference keeps @r alive.
 *
 * Context: process context, may sleep.  Takes beluga_pool.lock; the caller
 * holds no driver lock.
 * Return: 0, or -ENOENT when the name was already gone.
 */
int beluga_region_unpublish(struct beluga_region *r)
{
	mutex_lock(&beluga_pool.lock);
	if (!r->named) {
		mutex_unlock(&beluga_pool.lock);
		return -ENOENT;
	}
	beluga_name_remove(r);
	mutex_unlock(&beluga_pool.lock);
	beluga_region_put(r);
	return 0;
}

/**
 * beluga_region_destroy() - REGION_DESTROY: remove a region's name.
 * @name: a valid region name.
 *
 * Only the owner (or CAP_SYS_ADMIN) may destroy.  The name is removed at
 * once; the region lives on while files or mappings hold it.  Refused while
 * a GPU registration holds the region, and, for a shared region, while
 * anything but the name holds it.
 *
 * Context: process context, may sleep.  Takes beluga_pool.lock and drops
 * the name's reference after releasing it.
 * Return: 0, -ENOENT (no such name), -EPERM (not the owner) or -EBUSY.
 */
int beluga_region_destroy(const char *name)
{
	struct beluga_region *r;
	int ret = 0;

	mutex_lock(&beluga_pool.lock);
	r = beluga_name_find(name);
	if (!r)
		ret = -ENOENT;
	else if (!beluga_region_is_owner(r) && !capable(CAP_SYS_ADMIN))
		ret = -EPERM;
	else if (r->gpu_registrations)
		ret = -EBUSY;	/* a GPU may be using it: unregister first */
	else if (r->shared && kref_read(&r->ref) > 1)
		/*
		 * Only the name holds a shared region: a file (and so a
		 * mapping) or an ioctl holds a reference.  Lookups take theirs
		 * under this lock, so none can appear before the name is gone.
		 */
		ret = -EBUSY;
	else
		beluga_name_remove(r);
	mutex_unlock(&beluga_pool.lock);
	if (!ret)
		beluga_region_put(r);	/* the name's reference */
	return ret;
}

/**
 * beluga_region_setattr() - REGION_SETATTR: change a region's mode or owner.
 * @req: the request; the caller validated its flags, name and mode.
 *
 * The owner (or CAP_SYS_ADMIN) may change the mode; changing the uid or gid
 * needs CAP_SYS_ADMIN.  The ids are read in the caller's user namespace.
 * The region's inode mirrors the result, so fstat() on its files shows it.
 *
 * Context: process context, may sleep.  Takes beluga_pool.lock.
 * Return: 0, -EINVAL (an id not mapped in the caller's namespace), -EPERM
 * or -ENOENT.
 */
int beluga_region_setattr(const struct beluga_region_setattr *req)
{
	kuid_t uid = current_fsuid();
	kgid_t gid = current_fsgid();
	struct beluga_region *r;
	int ret = 0;

	if (req->flags & BELUGA_SETATTR_UID) {
		uid = make_kuid(current_user_ns(), req->uid);
		if (!uid_valid(uid))
			return -EINVAL;
	}
	if (req->flags & BELUGA_SETATTR_GID) {
		gid = make_kgid(current_user_ns(), req->gid);
		if (!gid_valid(gid))
			return -EINVAL;
	}
	if ((req->flags & (BELUGA_SETATTR_UID | BELUGA_SETATTR_GID)) &&
	    !capable(CAP_SYS_ADMIN))
		return -EPERM;

	mutex_lock(&beluga_pool.lock);
	r = beluga_name_find(req->name);
	if (!r) {
		ret = -ENOENT;
	} else if (!beluga_region_is_owner(r) && !capable(CAP_SYS_ADMIN)) {
		ret = -EPERM;
	} else {
		if (req->flags & BELUGA_SETATTR_MODE)
			r->mode = req->mode;
		if (req->flags & BELUGA_SETATTR_UID)
			r->uid = uid;
		if (req->flags & BELUGA_SETATTR_GID)
			r->gid = gid;
		beluga_region_sync_inode(r);
	}
	mutex_unlock(&beluga_pool.lock);
	return ret;
}
