// SPDX-License-Identifier: GPL-2.0
/*
 * beluga_file.c - region files: creating them, their file operations and
 * their ioctls.
 *
 * A region file is an open file description on the region's inode
 * (beluga_region.c); its private data, struct beluga_rfile, also owns the
 * GPU registrations made through it (beluga_gpu.c).  Mapping is in
 * beluga_mmap.c.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/file.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "beluga_internal.h"

static long beluga_ioc_region_fd_stat(struct beluga_region *r,
				      void __user *argp)
{
	struct beluga_region_stat st;

	if (copy_from_user(&st, argp, sizeof(st)))
		return -EFAULT;
	if (!beluga_zeroed(&st, sizeof(st)))
		return -EINVAL;
	beluga_region_fill_stat(r, &st);
	return copy_to_user(argp, &st, sizeof(st)) ? -EFAULT : 0;
}

static long beluga_ioc_region_layout(struct beluga_region *r,
				     void __user *argp)
{
	struct beluga_region_layout req;
	s32 __user *nodes;
	unsigned long i, n;

	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (req.flags || req.nr_chunks || req.__pad || req.chunk_size ||
	    !BELUGA_RESERVED_OK(&req) || (req.capacity && !req.nodes))
		return -EINVAL;

	nodes = u64_to_user_ptr(req.nodes);
	n = min_t(unsigned long, req.capacity, r->nr_chunks);
	for (i = 0; i < n; i++)
		if (put_user(r->chunks[i]->src->nid, nodes + i))
			return -EFAULT;
	req.nr_chunks = r->nr_chunks;
	req.chunk_size = BELUGA_CHUNK_BYTES;
	return copy_to_user(argp, &req, sizeof(req)) ? -EFAULT : 0;
}

static long beluga_region_ioctl(struct file *file, unsigned int cmd,
				unsigned long arg)
{
	struct beluga_region *r = beluga_file_region(file);
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case BELUGA_IOC_REGION_FD_STAT:
		return beluga_ioc_region_fd_stat(r, argp);
	case BELUGA_IOC_REGION_LAYOUT:
		return beluga_ioc_region_layout(r, argp);
	case BELUGA_IOC_GPU_REGISTER:
		return beluga_gpu_register(file, argp);
	case BELUGA_IOC_GPU_UNREGISTER:
		return beluga_gpu_unregister(file, argp);
	default:
		return -ENOTTY;
	}
}

static int beluga_region_file_release(struct inode *inode, struct file *file)
{
	struct beluga_rfile *rf = file->private_data;
	struct beluga_region *r = rf->region;

	beluga_gpu_release_all(rf);
	atomic_dec(&r->open_count);
	beluga_region_put(r);
	mutex_destroy(&rf->lock);
	kfree(rf);
	return 0;
}

static const struct file_operations beluga_region_fops = {
	.owner = THIS_MODULE,
	.release = beluga_region_file_release,
	.mmap = beluga_region_mmap,
	.get_unmapped_area = beluga_region_get_unmapped_area,
	.unlocked_ioctl = beluga_region_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.fsync = noop_fsync,	/* msync(MS_SYNC) must not fail */
	.llseek = noop_llseek,
};

/**
 * beluga_is_region_file() - whether a file is a Beluga region file
 * @file: any open file
 *
 * Context: any; compares @file's operations only.
 * Return: true if @file was made by beluga_region_file().
 */
bool beluga_is_region_file(struct file *file)
{
	return file->f_op == &beluga_region_fops;
}

/**
 * beluga_region_file() - a new open file description for a region
 * @r: the region; the caller holds a reference
 * @write: open it read-write (else read-only)
 *
 * The file takes its own region reference (dropped in ->release) and a
 * module reference (dropped by fput()); the caller installs it in an fd or
 * fput()s it.
 *
 * Context: process context, may sleep; takes no driver lock.
 * Return: the file, or an ERR_PTR: -ENOMEM, or the errno of
 * alloc_file_pseudo().
 */
struct file *beluga_region_file(struct beluga_region *r, bool write)
{
	struct beluga_rfile *rf;
	struct file *file;

	rf = kzalloc(sizeof(*rf), GFP_KERNEL);
	if (!rf)
		return ERR_PTR(-ENOMEM);
	rf->region = r;
	mutex_init(&rf->lock);
	INIT_LIST_HEAD(&rf->gpus);

	__module_get(THIS_MODULE);	/* put by fput() via fops_put() */
	ihold(r->inode);
	file = alloc_file_pseudo(r->inode, beluga_pool.mnt,
				 r->name[0] ? r->name : "[ephemeral]",
				 write ? O_RDWR : O_RDONLY, &beluga_region_fops);
	if (IS_ERR(file)) {
		iput(r->inode);
		module_put(THIS_MODULE);
		kfree(rf);
		return file;
	}
	kref_get(&r->ref);
	atomic_inc(&r->open_count);
	file->private_data = rf;
	return file;
}
