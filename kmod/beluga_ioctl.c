// SPDX-License-Identifier: GPL-2.0
/*
 * beluga_ioctl.c - the ioctl ABI of /dev/beluga (region files' own ioctls
 * are in beluga_file.c).
 *
 * Every handler copies its structure in, rejects unknown flags and non-zero
 * padding or reserved fields with EINVAL, does the work, and copies a fully
 * initialised structure out.  Command numbers encode structure sizes, so a
 * size mismatch is simply an unknown command (ENOTTY).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "beluga_internal.h"

#define BELUGA_LIST_MAX	65536	/* entries returned by one REGION_LIST */

static long beluga_ioc_info(void __user *argp)
{
	struct beluga_info info;

	if (copy_from_user(&info, argp, sizeof(info)))
		return -EFAULT;
	if (info.flags || info.__pad || !BELUGA_RESERVED_OK(&info))
		return -EINVAL;

	memset(&info, 0, sizeof(info));
	info.abi_version = BELUGA_ABI_CURRENT;
	info.min_abi_version = BELUGA_ABI_VERSION(1, 0);
	info.features = BELUGA_FEAT_NODE_SOURCES | BELUGA_FEAT_EPHEMERAL |
			BELUGA_FEAT_PMD_MAPPINGS | BELUGA_FEAT_LONGTERM_PIN |
			BELUGA_FEAT_RANGE_SOURCES | BELUGA_FEAT_GPU_REGISTER |
			BELUGA_FEAT_QUOTAS | BELUGA_FEAT_SHARED_REGIONS |
			BELUGA_FEAT_SOURCE_HOTPLUG;
	info.chunk_size = BELUGA_CHUNK_BYTES;
	mutex_lock(&beluga_pool.lock);
	info.total_bytes = (u64)beluga_pool.nr_chunks * BELUGA_CHUNK_BYTES;
	info.free_bytes = (u64)beluga_pool.nr_free * BELUGA_CHUNK_BYTES;
	info.quarantined_bytes = (u64)beluga_pool.nr_quarantined *
				 BELUGA_CHUNK_BYTES;
	info.nr_sources = beluga_pool.nr_sources;
	info.nr_regions = beluga_pool.nr_regions;
	mutex_unlock(&beluga_pool.lock);

	return copy_to_user(argp, &info, sizeof(info)) ? -EFAULT : 0;
}

static long beluga_ioc_source_info(void __user *argp)
{
	struct beluga_source_info si;
	struct beluga_source *src;
	u32 index;

	if (copy_from_user(&si, argp, sizeof(si)))
		return -EFAULT;
	if (si.flags || si.kind || si.node || si.total_bytes ||
	    si.free_bytes || !BELUGA_RESERVED_OK(&si))
		return -EINVAL;
	index = si.index;
	memset(&si, 0, sizeof(si));
	si.index = index;
	mutex_lock(&beluga_pool.lock);
	src = index < beluga_pool.nr_sources ? beluga_pool.sources[index] : NULL;
	if (!src) {
		mutex_unlock(&beluga_pool.lock);
		return -ENOENT;
	}
	si.kind = src->kind;
	si.node = src->nid;
	if (src->has_cpus)
		si.flags |= BELUGA_SOURCE_F_HAS_CPUS;
	si.total_bytes = (u64)src->nr_chunks * BELUGA_CHUNK_BYTES;
	si.free_bytes = (u64)src->nr_free * BELUGA_CHUNK_BYTES;
	mutex_unlock(&beluga_pool.lock);

	return copy_to_user(argp, &si, sizeof(si)) ? -EFAULT : 0;
}

/*
 * Install @file as a new fd and report it.  The structure is copied out
 * before fd_install() so a fault leaves no fd behind; @undo then reverses
 * whatever else the ioctl published.
 */
static long beluga_install_fd(struct file *file, bool cloexec, s32 *fd_field,
			      void __user *argp, void *req, size_t len)
{
	int fd = get_unused_fd_flags(cloexec ? O_CLOEXEC : 0);

	if (fd < 0) {
		fput(file);
		return fd;
	}
	*fd_field = fd;
	if (copy_to_user(argp, req, len)) {
		put_unused_fd(fd);
		fput(file);
		return -EFAULT;
	}
	fd_install(fd, file);
	return 0;
}

/*
 * Hand @r, a region this ioctl has just made (and named, unless it is
 * ephemeral), to the caller as a new writable fd, reporting its id in
 * @id_field and the fd in @fd_field of @req.  Consumes the caller's
 * reference.  On failure the region is unpublished again: nobody could have
 * opened it by name who may not see it vanish.  A file that cannot be made
 * counts as a creation refused for lack of kernel memory.
 */
static long beluga_give_new_region(struct beluga_region *r, bool cloexec,
				   u64 *id_field, s32 *fd_field,
				   void __user *argp, void *req, size_t len)
{
	struct file *file;
	long ret;

	file = beluga_region_file(r, true);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		atomic64_inc(&beluga_pool.counters.alloc_failures);
		goto undo;
	}
	*id_field = r->id;
	ret = beluga_install_fd(file, cloexec, fd_field, argp, req, len);
	if (ret)
		goto undo;
	beluga_region_put(r);	/* the file and the name hold it now */
	return 0;

undo:
	if (!r->ephemeral)
		beluga_region_unpublish(r);
	beluga_region_put(r);
	return ret;
}

static bool beluga_create_valid(const struct beluga_region_create *req)
{
	bool ephemeral = req->flags & BELUGA_CREATE_EPHEMERAL;

	if (req->flags & ~BELUGA_CREATE_FLAGS_ALL)
		return false;
	if (req->fd || req->__pad || req->id || !BELUGA_RESERVED_OK(req))
		return false;
	if (!beluga_name_valid(req->name, ephemeral))
		return false;
	if (req->mode & ~0777U)
		return false;
	if (!req->size || req->size % BELUGA_CHUNK_BYTES)
		return false;
	if (req->source_kind > BELUGA_SOURCE_RANGE)
		return false;
	/* Whether a source has that index is checked under the pool lock. */
	if (req->source_index < -1 || req->source_index >= BELUGA_MAX_SOURCES)
		return false;
	return true;
}

static long beluga_ioc_region_create(void __user *argp)
{
	struct beluga_region_create req;
	struct beluga_region *r;
	int kind;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (!beluga_create_valid(&req))
		return -EINVAL;
	kind = beluga_pool_resolve_kind(req.source_kind, req.source_index);
	if (kind < 0)
		return kind;
	/* More than the whole pool can never succeed: say so without work. */
	if (req.size / BELUGA_CHUNK_BYTES > beluga_pool_total_chunks())
		return -ENOSPC;

	r = beluga_region_create(&req, kind);
	if (IS_ERR(r))
		return PTR_ERR(r);
	return beluga_give_new_region(r, req.flags & BELUGA_CREATE_CLOEXEC,
				      &req.id, &req.fd, argp, &req, sizeof(req));
}

static long beluga_ioc_shared_define(void __user *argp)
{
	struct beluga_shared_define req;
	struct beluga_region *r;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if ((req.flags & ~BELUGA_SHARED_FLAGS_ALL) || req.fd || req.id ||
	    !BELUGA_RESERVED_OK(&req))
		return -EINVAL;

	r = beluga_shared_define(&req);
	if (IS_ERR(r))
		return PTR_ERR(r);
	return beluga_give_new_region(r, req.flags & BELUGA_SHARED_CLOEXEC,
				      &req.id, &req.fd, argp, &req, sizeof(req));
}

static long beluga_ioc_region_open(void __user *argp)
{
	struct beluga_region_open req;
	struct beluga_region *r;
	struct file *file;
	bool write;
	long ret;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if ((req.flags & ~BELUGA_OPEN_FLAGS_ALL) || req.fd || req.id ||
	    !BELUGA_RESERVED_OK(&req) || !beluga_name_valid(req.name, false))
		return -EINVAL;
	write = !(req.flags & BELUGA_OPEN_RDONLY);

	r = beluga_region_lookup(req.name);
	if (IS_ERR(r))
		return PTR_ERR(r);
	ret = beluga_region_may_open(r, write);
	if (ret)
		goto out;
	file = beluga_region_file(r, write);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto out;
	}
	req.id = r->id;
	ret = beluga_install_fd(file, req.flags & BELUGA_OPEN_CLOEXEC, &req.fd,
				argp, &req, sizeof(req));
out:
	beluga_region_put(r);
	return ret;
}

static long beluga_ioc_region_destroy(void __user *argp)
{
	struct beluga_region_name req;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (req.flags || req.__pad || !BELUGA_RESERVED_OK(&req) ||
	    !beluga_name_valid(req.name, false))
		return -EINVAL;
	return beluga_region_destroy(req.name);
}

static bool beluga_stat_in_valid(const struct beluga_region_stat *st)
{
	/* Everything but the name is output and must come in zeroed. */
	return beluga_zeroed((const char *)st + BELUGA_NAME_MAX,
			     sizeof(*st) - BELUGA_NAME_MAX);
}

static long beluga_ioc_region_stat(void __user *argp)
{
	struct beluga_region_stat st;
	struct beluga_region *r;

	if (copy_from_user(&st, argp, sizeof(st)))
		return -EFAULT;
	if (!beluga_stat_in_valid(&st) || !beluga_name_valid(st.name, false))
		return -EINVAL;
	r = beluga_region_lookup(st.name);
	if (IS_ERR(r))
		return PTR_ERR(r);
	beluga_region_fill_stat(r, &st);
	beluga_region_put(r);
	return copy_to_user(argp, &st, sizeof(st)) ? -EFAULT : 0;
}

/*
 * Snapshot min(@want, number of regions) regions, ascending id, into a new
 * array *@out (kvfree() it); returns the number of regions, or -ENOMEM.
 * The arrays are sized and filled under one hold of the pool lock, so that
 * the count returned and the entries written describe the same moment: a
 * caller that offered room for every region gets every one of them.
 */
static long beluga_list_snapshot(u32 want, struct beluga_region_stat **out)
{
	struct beluga_region *r, **refs = NULL;
	unsigned long id;
	u32 n = 0, total, cap, i;

	*out = NULL;
	mutex_lock(&beluga_pool.lock);
	total = beluga_pool.nr_regions;
	cap = min(want, total);
	if (cap) {
		refs = kvcalloc(cap, sizeof(*refs), GFP_KERNEL);
		*out = kvcalloc(cap, sizeof(**out), GFP_KERNEL);
		if (!refs || !*out) {
			mutex_unlock(&beluga_pool.lock);
			kvfree(refs);
			kvfree(*out);
			*out = NULL;
			return -ENOMEM;
		}
	}
	xa_for_each(&beluga_pool.regions, id, r) {
		if (n == cap)
			break;
		kref_get(&r->ref);
		refs[n++] = r;
	}
	mutex_unlock(&beluga_pool.lock);

	/* fill_stat takes the pool lock itself; we hold references. */
	for (i = 0; i < n; i++) {
		beluga_region_fill_stat(refs[i], &(*out)[i]);
		beluga_region_put(refs[i]);
	}
	kvfree(refs);
	return total;
}

static long beluga_ioc_region_list(void __user *argp)
{
	struct beluga_region_list req;
	struct beluga_region_stat *out;
	u32 want;
	long ret, total;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (req.flags || req.count || req.__pad || !BELUGA_RESERVED_OK(&req) ||
	    (req.capacity && !req.entries))
		return -EINVAL;

	want = min_t(u32, req.capacity, BELUGA_LIST_MAX);
	total = beluga_list_snapshot(want, &out);
	if (total < 0)
		return total;
	ret = 0;
	if (out && copy_to_user(u64_to_user_ptr(req.entries), out,
				min_t(u32, want, total) * sizeof(*out))) {
		ret = -EFAULT;
		goto out;
	}
	req.count = total;
	if (copy_to_user(argp, &req, sizeof(req)))
		ret = -EFAULT;
out:
	kvfree(out);
	return ret;
}

static long beluga_ioc_region_setattr(void __user *argp)
{
	struct beluga_region_setattr req;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (!req.flags || (req.flags & ~BELUGA_SETATTR_FLAGS_ALL) ||
	    !BELUGA_RESERVED_OK(&req) || !beluga_name_valid(req.name, false))
		return -EINVAL;
	if (!(req.flags & BELUGA_SETATTR_MODE) && req.mode)
		return -EINVAL;
	if (!(req.flags & BELUGA_SETATTR_UID) && req.uid)
		return -EINVAL;
	if (!(req.flags & BELUGA_SETATTR_GID) && req.gid)
		return -EINVAL;
	if (req.mode & ~0777U)
		return -EINVAL;
	return beluga_region_setattr(&req);
}

/* 0..63 printable ASCII bytes without spaces, NUL-terminated, rest zero. */
static bool beluga_identity_valid(const char *id)
{
	size_t len = strnlen(id, BELUGA_NAME_MAX), i;

	if (len == BELUGA_NAME_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (id[i] <= ' ' || id[i] > '~')
			return false;
	return beluga_zeroed(id + len, BELUGA_NAME_MAX - len);
}

static bool beluga_source_name_taken(const char *name)
{
	bool taken = false;
	unsigned int i;

	mutex_lock(&beluga_pool.lock);
	for (i = 0; i < beluga_pool.nr_sources && !taken; i++)
		taken = beluga_pool.sources[i] &&
			!strcmp(beluga_pool.sources[i]->name, name);
	mutex_unlock(&beluga_pool.lock);
	return taken;
}

/*
 * BELUGA_IOC_SOURCE_ADD.  Under beluga_pool.sources_lock, so that the name
 * check, the overlap check and the registration see the same sources, and
 * a source is never visible without its sysfs directory for long.
 */
static long beluga_ioc_source_add(void __user *argp)
{
	struct beluga_source_add req;
	struct beluga_source *src;
	long ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (req.flags || req.index || !BELUGA_RESERVED_OK(&req) ||
	    !beluga_name_valid(req.name, false) ||
	    !beluga_identity_valid(req.identity))
		return -EINVAL;

	/* Fault now rather than once the source is in the pool. */
	if (copy_to_user(argp, &req, sizeof(req)))
		return -EFAULT;

	mutex_lock(&beluga_pool.sources_lock);
	if (beluga_source_name_taken(req.name)) {
		ret = -EEXIST;
		goto out;
	}
	src = beluga_range_add(req.start, req.size, req.name, req.identity);
	if (IS_ERR(src)) {
		ret = PTR_ERR(src);
		goto out;
	}
	if (beluga_sysfs_add_source(src)) {
		struct beluga_source *back;

		/* Unless a region took a chunk already, undo the add. */
		back = beluga_source_unregister("", src->index);
		if (!IS_ERR(back)) {
			src->ops->free(src);
			ret = -ENOMEM;
			goto out;
		}
		pr_warn("source %u: no memory for its sysfs directory\n",
			src->index);
	}
	req.index = src->index;
	ret = copy_to_user(argp, &req, sizeof(req)) ? -EFAULT : 0;
out:
	mutex_unlock(&beluga_pool.sources_lock);
	return ret;
}

/* BELUGA_IOC_SOURCE_REMOVE. */
static long beluga_ioc_source_remove(void __user *argp)
{
	struct beluga_source_remove req;
	struct beluga_source *src;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (req.flags || !BELUGA_RESERVED_OK(&req) ||
	    !beluga_name_valid(req.name, true) || (req.name[0] && req.index))
		return -EINVAL;

	mutex_lock(&beluga_pool.sources_lock);
	src = beluga_source_unregister(req.name, req.index);
	if (!IS_ERR(src)) {
		pr_info("source %u%s%s removed: range %pa+%llu MiB released\n",
			src->index, src->name[0] ? " " : "", src->name,
			&src->phys, src->bytes >> 20);
		beluga_sysfs_del_source(src);
		src->ops->free(src);
	}
	mutex_unlock(&beluga_pool.sources_lock);
	return PTR_ERR_OR_ZERO(src);
}

/**
 * beluga_dev_ioctl() - the ioctls of /dev/beluga
 * @file: the open control device
 * @cmd: BELUGA_IOC_* (Documentation/uapi.md)
 * @arg: user pointer to the command's structure
 *
 * Context: process context; each command takes the locks it needs.
 * Return: 0 or a negative errno as listed for the command in
 * Documentation/uapi.md; -ENOTTY for an unknown command.
 */
long beluga_dev_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case BELUGA_IOC_INFO:
		return beluga_ioc_info(argp);
	case BELUGA_IOC_SOURCE_INFO:
		return beluga_ioc_source_info(argp);
	case BELUGA_IOC_REGION_CREATE:
		return beluga_ioc_region_create(argp);
	case BELUGA_IOC_REGION_OPEN:
		return beluga_ioc_region_open(argp);
	case BELUGA_IOC_REGION_DESTROY:
		return beluga_ioc_region_destroy(argp);
	case BELUGA_IOC_REGION_STAT:
		return beluga_ioc_region_stat(argp);
	case BELUGA_IOC_REGION_LIST:
		return beluga_ioc_region_list(argp);
	case BELUGA_IOC_REGION_SETATTR:
		return beluga_ioc_region_setattr(argp);
	case BELUGA_IOC_QUOTA_GET:
		return beluga_ioc_quota_get(argp);
	case BELUGA_IOC_QUOTA_SET:
		return beluga_ioc_quota_set(argp);
	case BELUGA_IOC_SHARED_DEFINE:
		return beluga_ioc_shared_define(argp);
	case BELUGA_IOC_SOURCE_ADD:
		return beluga_ioc_source_add(argp);
	case BELUGA_IOC_SOURCE_REMOVE:
		return beluga_ioc_source_remove(argp);
	default:
		return -ENOTTY;
	}
}
