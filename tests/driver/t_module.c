// SPDX-License-Identifier: Apache-2.0
/*
 * t_module.c - unloading and reloading beluga.ko.
 *
 * Covers: delete_module fails with EWOULDBLOCK (== EAGAIN, "in use") while
 * /dev/beluga is open and while a region exists with no fd open at all;
 * after destroy it succeeds and /dev/beluga and /sys/kernel/beluga vanish;
 * finit_module with /etc/beluga/params brings back the same pool, whole
 * (free == total, no regions) and usable; bad parameters fail and log
 * exactly one dmesg line: a nonexistent node (nodes=7) -> ENODEV, more
 * memory than the node has (nodes=1:64G) -> ENOMEM, unparsable -> EINVAL;
 * node 0 (has CPUs) loads with a warning and reports has_cpus.  Every test
 * leaves the module loaded with the normal parameters.
 */
#define _GNU_SOURCE
#include "bt_common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct beluga_info boot_info;	/* the pool as the guest booted */

static int group_setup(void **state)
{
	int dev = bt_dev_open(), ret;

	(void)state;
	if (dev < 0)
		return 1;
	ret = bt_ioctl(dev, BELUGA_IOC_INFO, &boot_info);
	close(dev);
	return ret || !bt_normal_params();
}

static int restore(void **state)
{
	(void)state;
	bt_cleanup(NULL);
	return bt_module_restore();
}

static void unload_ok(void)
{
	int ret = bt_module_unload();

	if (ret)
		fail_msg("delete_module(beluga): %s", strerror(-ret));
	assert_false(bt_module_loaded());
	assert_int_not_equal(access(BELUGA_DEVICE_PATH, F_OK), 0);
	assert_int_not_equal(access(BT_SYSFS, F_OK), 0);
}

static void load_ok(const char *params)
{
	int ret = bt_module_load(params);

	if (ret)
		fail_msg("finit_module(beluga, '%s'): %s", params,
			 strerror(-ret));
	assert_true(bt_module_loaded());
	assert_int_equal(access(BELUGA_DEVICE_PATH, F_OK), 0);
}

static void test_unload_refused_while_open(void **state)
{
	int dev = bt_dev_open_ok();

	(void)state;
	assert_int_equal(bt_module_unload(), -EWOULDBLOCK);
	assert_true(bt_module_loaded());
	close(dev);
}

static void test_unload_refused_with_region(void **state)
{
	char name[BELUGA_NAME_MAX];
	int dev = bt_dev_open_ok(), fd;

	(void)state;
	bt_name(name, "unload");
	fd = bt_create_ok(dev, name, BT_CHUNK, 0600, NULL);
	bt_close(fd);
	close(dev);
	/* Nothing is open: only the region itself holds the module. */
	assert_int_equal(bt_module_unload(), -EWOULDBLOCK);
	assert_int_equal(EWOULDBLOCK, EAGAIN);
	assert_true(bt_module_loaded());
	dev = bt_dev_open_ok();
	bt_destroy_ok(dev, name);
	close(dev);
	unload_ok();
	load_ok(bt_normal_params());
}

static void test_reload_pool_whole(void **state)
{
	struct beluga_info info;
	char name[BELUGA_NAME_MAX];
	int dev, fd;

	(void)state;
	unload_ok();
	load_ok(bt_normal_params());
	dev = bt_dev_open_ok();
	bt_info_ok(dev, &info);
	assert_int_equal(info.total_bytes, boot_info.total_bytes);
	assert_int_equal(info.free_bytes, info.total_bytes);
	assert_int_equal(info.nr_regions, 0);
	assert_int_equal(info.quarantined_bytes, 0);
	assert_int_equal(info.nr_sources, boot_info.nr_sources);
	bt_name(name, "reloaded");
	fd = bt_create_ok(dev, name, 2 * BT_CHUNK, 0600, NULL);
	bt_close(fd);
	bt_destroy_ok(dev, name);
	close(dev);
}

/* Loading with @params fails with @err and logs exactly one line. */
static void load_fails(const char *params, int err)
{
	char line[512] = "";
	int kfd, ret, lines, level;

	unload_ok();
	kfd = bt_kmsg_open();
	assert_true(kfd >= 0);
	ret = bt_module_load(params);
	lines = bt_kmsg_count(kfd, "beluga", line, sizeof(line), &level);
	close(kfd);
	printf("  '%s': %s; dmesg: %s\n", params,
	       ret ? strerror(-ret) : "loaded", line);
	if (!ret)
		fail_msg("beluga loaded with '%s'", params);
	assert_false(bt_module_loaded());
	if (ret != -err)
		fail_msg("'%s': %s, want %s", params, strerror(-ret),
			 strerror(err));
	if (lines != 1)
		fail_msg("'%s': %d dmesg lines, want 1", params, lines);
	if (level > 3)	/* KERN_ERR or worse: the load failed */
		fail_msg("'%s': dmesg line at level %d, want <= 3", params,
			 level);
	load_ok(bt_normal_params());
}

static void test_load_missing_node(void **state)
{
	(void)state;
	load_fails("nodes=7", ENODEV);
}

static void test_load_too_large(void **state)
{
	(void)state;
	load_fails("nodes=1:64G", ENOMEM);
}

static void test_load_bad_syntax(void **state)
{
	(void)state;
	load_fails("nodes=1:banana", EINVAL);
}

static void test_load_cpu_node(void **state)
{
	struct beluga_source_info si;
	char line[512] = "";
	int kfd, dev, lines, level;

	(void)state;
	unload_ok();
	kfd = bt_kmsg_open();
	assert_true(kfd >= 0);
	load_ok("nodes=0:64M");
	lines = bt_kmsg_count(kfd, "has CPUs", line, sizeof(line), &level);
	close(kfd);
	printf("  nodes=0:64M: %s (level %d)\n", line, level);
	assert_int_equal(lines, 1);
	assert_int_equal(level, 4);	/* KERN_WARNING */
	dev = bt_dev_open_ok();
	bt_source_ok(dev, 0, &si);
	assert_int_equal(si.node, 0);
	assert_int_equal(si.flags & BELUGA_SOURCE_F_HAS_CPUS,
			 BELUGA_SOURCE_F_HAS_CPUS);
	assert_int_equal(si.total_bytes, 64 * BT_MIB);
	assert_int_equal(bt_sysfs_u64_ok("sources/0/has_cpus"), 1);
	close(dev);
	unload_ok();
	load_ok(bt_normal_params());
}

#define T(fn) cmocka_unit_test_teardown(fn, restore)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_unload_refused_while_open),
		T(test_unload_refused_with_region), T(test_reload_pool_whole),
		T(test_load_missing_node), T(test_load_too_large),
		T(test_load_bad_syntax), T(test_load_cpu_node),
	};

	return bt_main("drv_module", tests, sizeof(tests) / sizeof(tests[0]),
		       group_setup, NULL);
}
