// SPDX-License-Identifier: GPL-2.0
/*
 * beluga_main.c - module entry: parameters, /dev/beluga, init and exit.
 *
 * Beluga pools CXL memory (CPU-less NUMA nodes, reserved physical ranges)
 * in pinned 2 MiB chunks and
 * hands out named regions that processes map and share.  See
 * Documentation/design.md for the design and Documentation/uapi.md for the
 * ABI.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

#include "beluga_internal.h"

static char *nodes;
module_param(nodes, charp, 0444);
MODULE_PARM_DESC(nodes,
		 "CXL NUMA nodes to pool: <nid>[:<size>],... e.g. 1:64G,2:64G (no size: all free memory less a reserve)");

static char *ranges;
module_param(ranges, charp, 0444);
MODULE_PARM_DESC(ranges,
		 "Reserved physical ranges to pool: <start>+<size>,... e.g. 0x4080000000+256G (2 MiB aligned, not System RAM)");

static char *quota_bytes;
module_param(quota_bytes, charp, 0444);
MODULE_PARM_DESC(quota_bytes, "Default per-uid limit on region bytes, e.g. 64G (default: unlimited)");

static uint quota_regions;
module_param(quota_regions, uint, 0444);
MODULE_PARM_DESC(quota_regions, "Default per-uid limit on regions (default 0: unlimited)");

static ushort dev_mode = 0660;
module_param(dev_mode, ushort, 0444);
MODULE_PARM_DESC(dev_mode, "Permission bits of /dev/beluga (default 0660)");

static const struct file_operations beluga_dev_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = beluga_dev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice beluga_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "beluga",
	.fops = &beluga_dev_fops,
};

/*
 * The pool and its sources, from nodes= and ranges=.  Neither is allowed:
 * the pool is then empty until BELUGA_IOC_SOURCE_ADD adds a range source.
 */
static int beluga_sources_init(void)
{
	bool have_nodes = nodes && *nodes;
	bool have_ranges = ranges && *ranges;
	int ret = 0;

	beluga_pool_init();
	if (!have_nodes && !have_ranges)
		pr_info("no memory source yet: add range sources with 'beluga-tool source add daxX.Y' (or load with nodes= or ranges=)\n");
	if (have_nodes)
		ret = beluga_nodes_parse(nodes);
	if (!ret && have_ranges)
		ret = beluga_ranges_parse(ranges);
	if (ret)
		beluga_pool_exit();
	return ret;
}

static int __init beluga_init(void)
{
	int ret;

	if (dev_mode & ~0777) {
		pr_err("dev_mode=%#o is not a permission mode (0..0777)\n",
		       dev_mode);
		return -EINVAL;
	}
	beluga_misc.mode = dev_mode;
	if (quota_bytes && *quota_bytes) {
		char *end;

		beluga_pool.default_quota_bytes = memparse(quota_bytes, &end);
		if (*end) {
			pr_err("quota_bytes=%s is not a size: use e.g. 64G\n",
			       quota_bytes);
			return -EINVAL;
		}
	}
	beluga_pool.default_quota_regions = quota_regions;

	ret = beluga_sources_init();
	if (ret)
		return ret;
	ret = beluga_region_fs_init();
	if (ret)
		goto pool_exit;
	ret = beluga_sysfs_init();
	if (ret)
		goto fs_exit;
	/* Last: once the device exists, user space can reach everything. */
	ret = misc_register(&beluga_misc);
	if (ret)
		goto sysfs_exit;
	pr_info("ready: %lu MiB in %u sources, ABI %u.%u\n",
		(beluga_pool.nr_chunks * BELUGA_CHUNK_BYTES) >> 20,
		beluga_pool.nr_sources, BELUGA_ABI_MAJOR, BELUGA_ABI_MINOR);
	return 0;

sysfs_exit:
	beluga_quota_exit();
	beluga_sysfs_exit();
fs_exit:
	beluga_region_fs_exit();
pool_exit:
	beluga_pool_exit();
	return ret;
}

/*
 * Reached only when nothing references the module: every region and every
 * quarantined chunk holds a module reference, so the pool is whole here.
 */
static void __exit beluga_exit(void)
{
	misc_deregister(&beluga_misc);
	beluga_quota_exit();
	beluga_sysfs_exit();
	beluga_region_fs_exit();
	beluga_pool_exit();
	pr_info("unloaded\n");
}

module_init(beluga_init);
module_exit(beluga_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("The Beluga authors");
MODULE_DESCRIPTION("Beluga: a CXL memory pool for LLM KV caches");
MODULE_VERSION("0.1.0");
