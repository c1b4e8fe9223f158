// SPDX-License-Identifier: Apache-2.0
/*
 * t_source.c - range sources added and removed at run time
 * (BELUGA_IOC_SOURCE_ADD / BELUGA_IOC_SOURCE_REMOVE, ABI 1.3), and
 * 'beluga-tool source add/remove daxX.Y', the hand-off of a device-dax
 * instance to the driver and back.
 *
 * Runs in every boot; the cases that need a range source (from ranges=)
 * skip without one, the dax case needs the cxl boot.
 * Covers: INFO reports ABI 1.3 and the feature bit; the errno of every bad
 * request (non-admin EPERM; unknown flags, non-zero index or reserved
 * fields, bad name or identity, unaligned, empty or wrapping range EINVAL;
 * System RAM EINVAL; a range no platform resource covers ENXIO; an unknown
 * source ENOENT; a node source EOPNOTSUPP); a range overlapping a source
 * EADDRINUSE; the same name twice EEXIST; removing the load-time range
 * source and adding it again by name (index reused, INFO and sysfs follow,
 * name and identity in sysfs, the slot's SOURCE_INFO is ENOENT while it is
 * out); removal refused with EBUSY while a private region, a shared region
 * or a long-term pin (quarantine) holds a chunk; and with the tool: the dax
 * device leaves device_dax, its set_cookie identity shows, remove is
 * refused while a region uses it and the device is bound to device_dax
 * again afterwards.  Every case leaves the module as it was booted.
 */
#define _GNU_SOURCE
#include "bt_common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define CXL_DAX_FILE "/etc/beluga/cxl-dax"
#define TOOL "/opt/beluga/tools/beluga-tool --backend kernel"

static int dev = -1;
static int range_src = -1;		/* first range source from ranges= */
static uint64_t range_start, range_bytes;
static int node_src = -1;

/* Physical start of the first range in ranges=. */
static uint64_t first_range_start(void)
{
	const char *p = bt_normal_params();
	const char *r = p ? strstr(p, "ranges=") : NULL;

	return r ? strtoull(r + 7, NULL, 0) : 0;
}

static void find_sources(void)
{
	struct beluga_info info;
	uint32_t i;

	range_src = node_src = -1;
	bt_info_ok(dev, &info);
	for (i = 0; i < info.nr_sources; i++) {
		struct beluga_source_info si = { .index = i };

		if (bt_ioctl(dev, BELUGA_IOC_SOURCE_INFO, &si))
			continue;
		if (si.kind == BELUGA_SOURCE_RANGE && range_src < 0) {
			range_src = (int)i;
			range_bytes = si.total_bytes;
		} else if (si.kind == BELUGA_SOURCE_NODE && node_src < 0) {
			node_src = (int)i;
		}
	}
	range_start = first_range_start();
}

static int group_setup(void **state)
{
	(void)state;
	dev = bt_dev_open();
	if (dev < 0)
		return 1;
	find_sources();
	printf("  range source %d (%" PRIu64 " MiB at %#" PRIx64 "), node source %d\n",
	       range_src, range_bytes >> 20, range_start, node_src);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (dev >= 0)
		close(dev);
	return 0;
}

/* Reload beluga as booted, so the next case (and the suite) finds it so. */
static void restore_module(void)
{
	if (dev >= 0)
		close(dev);
	dev = -1;
	if (bt_module_loaded())
		assert_int_equal(bt_module_unload(), 0);
	assert_int_equal(bt_module_restore(), 0);
	dev = bt_dev_open_ok();
	find_sources();
}

static int source_add(uint64_t start, uint64_t size, const char *name,
		      const char *identity, uint32_t *index)
{
	struct beluga_source_add a;
	int ret;

	memset(&a, 0, sizeof(a));
	a.start = start;
	a.size = size;
	strncpy(a.name, name, sizeof(a.name) - 1);
	strncpy(a.identity, identity, sizeof(a.identity) - 1);
	ret = bt_ioctl(dev, BELUGA_IOC_SOURCE_ADD, &a);
	if (!ret && index)
		*index = a.index;
	return ret;
}

static int source_remove(const char *name, uint32_t index)
{
	struct beluga_source_remove r;

	memset(&r, 0, sizeof(r));
	strncpy(r.name, name, sizeof(r.name) - 1);
	r.index = index;
	return bt_ioctl(dev, BELUGA_IOC_SOURCE_REMOVE, &r);
}

static void test_info(void **state)
{
	struct beluga_info info;

	(void)state;
	bt_info_ok(dev, &info);
	assert_int_equal(info.abi_version, BELUGA_ABI_VERSION(1, 3));
	assert_true(info.features & BELUGA_FEAT_SOURCE_HOTPLUG);
}

static int add_as_nobody(void *arg)
{
	(void)arg;
	return source_add(1ULL << 40, BT_CHUNK, "bt-nobody", "", NULL) == -EPERM &&
	       source_remove("bt-nobody", 0) == -EPERM ? 0 : 1;
}

/* Refusals that need no range source: run in every boot. */
static void test_refusals(void **state)
{
	struct beluga_source_add a;
	struct beluga_source_remove r;
	const uint64_t far = 1ULL << 45;	/* no platform resource here */

	(void)state;
	/* Not root: EPERM (the child keeps the inherited /dev/beluga fd). */
	assert_int_equal(bt_run_as(BT_NOBODY, BT_NOBODY, add_as_nobody, NULL), 0);

	memset(&a, 0, sizeof(a));
	a.start = far;
	a.size = BT_CHUNK;
	strcpy(a.name, "bt-src");
	a.flags = 1;
	assert_int_equal(bt_ioctl(dev, BELUGA_IOC_SOURCE_ADD, &a), -EINVAL);
	a.flags = 0;
	a.index = 1;
	assert_int_equal(bt_ioctl(dev, BELUGA_IOC_SOURCE_ADD, &a), -EINVAL);
	a.index = 0;
	a.reserved[3] = 1;
	assert_int_equal(bt_ioctl(dev, BELUGA_IOC_SOURCE_ADD, &a), -EINVAL);

	assert_int_equal(source_add(far, BT_CHUNK, "", "", NULL), -EINVAL);
	assert_int_equal(source_add(far, BT_CHUNK, "bad/name", "", NULL), -EINVAL);
	assert_int_equal(source_add(far, BT_CHUNK, "bt-src", "has space", NULL), -EINVAL);
	assert_int_equal(source_add(far + 4096, BT_CHUNK, "bt-src", "", NULL), -EINVAL);
	assert_int_equal(source_add(far, BT_CHUNK + 4096, "bt-src", "", NULL), -EINVAL);
	assert_int_equal(source_add(far, 0, "bt-src", "", NULL), -EINVAL);
	assert_int_equal(source_add(UINT64_MAX - BT_CHUNK + 1, 2 * BT_CHUNK, "bt-src", "",
				    NULL), -EINVAL);
	/* System RAM (16 MiB is RAM in every boot). */
	assert_int_equal(source_add(16 * BT_MIB, BT_CHUNK, "bt-src", "", NULL), -EINVAL);
	/* Nothing the platform describes: a bogus address. */
	assert_int_equal(source_add(far, BT_CHUNK, "bt-src", "id=1", NULL), -ENXIO);

	memset(&r, 0, sizeof(r));
	r.flags = 1;
	assert_int_equal(bt_ioctl(dev, BELUGA_IOC_SOURCE_REMOVE, &r), -EINVAL);
	r.flags = 0;
	r.reserved[0] = 1;
	assert_int_equal(bt_ioctl(dev, BELUGA_IOC_SOURCE_REMOVE, &r), -EINVAL);
	assert_int_equal(source_remove("bt-src", 1), -EINVAL);	/* name and index */
	assert_int_equal(source_remove("bad/name", 0), -EINVAL);
	assert_int_equal(source_remove("bt-no-such-source", 0), -ENOENT);
	assert_int_equal(source_remove("", 1000), -ENOENT);
	if (node_src >= 0)
		assert_int_equal(source_remove("", (uint32_t)node_src), -EOPNOTSUPP);
}

static void need_range(void)
{
	if (range_src < 0 || !range_start)
		bt_skip("needs a range source from ranges= (ranges-gpu, cxl boots)");
}

static void sysfs_str_ok(char *buf, size_t len, const char *file, int index)
{
	assert_int_equal(bt_sysfs_str(buf, len, "sources/%d/%s", index, file), 0);
	buf[strcspn(buf, "\n")] = '\0';
}

/* Overlaps with the load-time range source: EADDRINUSE; a name twice: EEXIST. */
static void test_overlap(void **state)
{
	(void)state;
	need_range();
	assert_int_equal(source_add(range_start, range_bytes, "bt-overlap", "", NULL),
			 -EADDRINUSE);
	assert_int_equal(source_add(range_start + BT_CHUNK, BT_CHUNK, "bt-overlap", "", NULL),
			 -EADDRINUSE);
	/* The load-time source is unnamed: a range source with no name is not found. */
	assert_int_equal(source_remove("bt-overlap", 0), -ENOENT);
}

/*
 * Take the load-time range source out and add it again under a name; the
 * pool, INFO, SOURCE_INFO and sysfs follow; removal is EBUSY while a
 * region, a shared region or a pin holds a chunk.
 */
static void test_remove_add(void **state)
{
	struct beluga_info before, info;
	struct beluga_source_info si;
	char name[BELUGA_NAME_MAX], buf[128];
	uint32_t idx = UINT32_MAX;
	int rfd, tfd;
	void *p;

	(void)state;
	need_range();
	bt_info_ok(dev, &before);
	assert_int_equal(source_remove("", (uint32_t)range_src), 0);
	bt_info_ok(dev, &info);
	assert_int_equal(info.total_bytes, before.total_bytes - range_bytes);
	assert_int_equal(info.free_bytes, before.free_bytes - range_bytes);
	si = (struct beluga_source_info){ .index = (uint32_t)range_src };
	assert_int_equal(bt_ioctl(dev, BELUGA_IOC_SOURCE_INFO, &si), -ENOENT);
	assert_int_equal(bt_sysfs_str(buf, sizeof(buf), "sources/%d/kind", range_src),
			 -ENOENT);
	/* Removed means released: adding it again works (lowest free slot). */
	assert_int_equal(source_add(range_start, range_bytes, "bt-range", "test=1", &idx), 0);
	assert_int_equal(idx, (uint32_t)range_src);
	assert_int_equal(source_add(range_start, range_bytes, "bt-range", "", NULL), -EEXIST);
	bt_info_ok(dev, &info);
	assert_int_equal(info.total_bytes, before.total_bytes);
	assert_int_equal(info.nr_sources, before.nr_sources);
	sysfs_str_ok(buf, sizeof(buf), "name", range_src);
	assert_string_equal(buf, "bt-range");
	sysfs_str_ok(buf, sizeof(buf), "identity", range_src);
	assert_string_equal(buf, "test=1");
	sysfs_str_ok(buf, sizeof(buf), "kind", range_src);
	assert_string_equal(buf, "range");

	/* A private region on it: EBUSY until destroyed. */
	{
		struct beluga_region_create c;

		memset(&c, 0, sizeof(c));
		bt_name(c.name, "src");
		c.size = BT_CHUNK;
		c.mode = 0600;
		c.source_index = (int32_t)idx;
		assert_int_equal(bt_ioctl(dev, BELUGA_IOC_REGION_CREATE, &c), 0);
		strcpy(name, c.name);
		rfd = c.fd;
	}
	bt_track_name(name);
	bt_track_fd(rfd);
	assert_int_equal(source_remove("bt-range", 0), -EBUSY);
	bt_close(rfd);
	bt_destroy_ok(dev, name);
	bt_wait_pool_ok(dev, before.free_bytes);

	/* A shared region on it: EBUSY until destroyed. */
	{
		struct beluga_shared_define d;

		memset(&d, 0, sizeof(d));
		bt_name(d.name, "src-sh");
		d.offset = 0;
		d.size = BT_CHUNK;
		d.mode = 0600;
		d.source_index = idx;
		assert_int_equal(bt_ioctl(dev, BELUGA_IOC_SHARED_DEFINE, &d), 0);
		bt_track_name(d.name);
		bt_track_fd(d.fd);
		assert_int_equal(source_remove("bt-range", 0), -EBUSY);

		/* A long-term pin outlives the region: the chunk is quarantined. */
		tfd = bt_test_open();
		p = bt_map_ok(d.fd, BT_CHUNK, PROT_READ | PROT_WRITE, 0);
		{
			struct beluga_test_pin pin;

			assert_int_equal(bt_pin(tfd, p, BT_CHUNK, BELUGA_TEST_PIN_HOLD, &pin), 0);
			bt_unmap(p, BT_CHUNK);
			bt_close(d.fd);
			bt_destroy_ok(dev, d.name);
			assert_int_equal(source_remove("bt-range", 0), -EBUSY);
			assert_int_equal(bt_unpin(tfd, pin.handle, 0, NULL), 0);
		}
		close(tfd);
		bt_wait_pool_ok(dev, before.free_bytes);
	}
	assert_int_equal(source_remove("bt-range", 0), 0);
	assert_int_equal(bt_sysfs_str(buf, sizeof(buf), "sources/%d/name", range_src), -ENOENT);
	restore_module();
}

/* The tool's exit status for @args (beluga-tool --backend kernel ...). */
static int tool(const char *args)
{
	char cmd[256];
	int st;

	snprintf(cmd, sizeof(cmd), TOOL " %s", args);
	printf("  $ beluga-tool %s\n", args);
	fflush(stdout);
	st = system(cmd);
	return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

/* The dax device's driver ("device_dax"), or "" when none is bound. */
static void dax_driver(const char *dax, char *out, size_t len)
{
	char path[128], target[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/dax/devices/%s/driver", dax);
	n = readlink(path, target, sizeof(target) - 1);
	out[0] = '\0';
	if (n > 0) {
		const char *base;

		target[n] = '\0';
		base = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
		if (strlen(base) < len)
			memcpy(out, base, strlen(base) + 1);
	}
}

/*
 * cxl boot: the tool hands the dax device to a module loaded without
 * sources, and gives it back.
 */
static void test_tool_dax(void **state)
{
	char dax[64] = "", drv[64], buf[128], cmd[160];
	struct beluga_info info;
	FILE *f = fopen(CXL_DAX_FILE, "r");
	int rfd;

	(void)state;
	if (!f)
		bt_skip("needs the cxl boot (a devdax namespace)");
	if (!fgets(dax, sizeof(dax), f))
		dax[0] = '\0';
	fclose(f);
	dax[strcspn(dax, "\n")] = '\0';
	assert_true(dax[0]);

	/* As an operator finds it: module loaded without sources, dax bound. */
	close(dev);
	dev = -1;
	assert_int_equal(bt_module_unload(), 0);
	snprintf(cmd, sizeof(cmd), "echo %s > /sys/bus/dax/drivers/device_dax/bind", dax);
	assert_int_equal(system(cmd), 0);
	dax_driver(dax, drv, sizeof(drv));
	assert_string_equal(drv, "device_dax");
	assert_int_equal(bt_module_load(""), 0);
	dev = bt_dev_open_ok();
	bt_info_ok(dev, &info);
	assert_int_equal(info.nr_sources, 0);
	assert_int_equal(info.total_bytes, 0);

	snprintf(cmd, sizeof(cmd), "source add %s", dax);
	assert_int_equal(tool(cmd), 0);
	dax_driver(dax, drv, sizeof(drv));
	assert_string_equal(drv, "");
	bt_info_ok(dev, &info);
	assert_int_equal(info.nr_sources, 1);
	assert_true(info.total_bytes >= 2 * BT_CHUNK);
	sysfs_str_ok(buf, sizeof(buf), "name", 0);
	assert_string_equal(buf, dax);
	sysfs_str_ok(buf, sizeof(buf), "identity", 0);
	printf("  identity of %s: %s\n", dax, buf);
	assert_true(strncmp(buf, "set_cookie=0x", 13) == 0);
	/* Adding it twice: the name exists (exit 5); the device stays released. */
	assert_int_equal(tool(cmd), 5);
	assert_int_equal(tool("source list"), 0);

	/* In use: refused (exit 8, EBUSY), the device stays with Beluga. */
	rfd = bt_create_ok(dev, "bt-tool-dax", BT_CHUNK, 0600, NULL);
	bt_track_name("bt-tool-dax");
	snprintf(cmd, sizeof(cmd), "source remove %s", dax);
	assert_int_equal(tool(cmd), 8);
	dax_driver(dax, drv, sizeof(drv));
	assert_string_equal(drv, "");
	bt_close(rfd);
	bt_destroy_ok(dev, "bt-tool-dax");
	bt_wait_pool_ok(dev, info.total_bytes);

	assert_int_equal(tool(cmd), 0);
	dax_driver(dax, drv, sizeof(drv));
	assert_string_equal(drv, "device_dax");
	bt_info_ok(dev, &info);
	assert_int_equal(info.nr_sources, 0);
	assert_int_equal(tool(cmd), 2);	/* gone: ENOENT */

	/* Back to the boot's state: released, module loaded with ranges=. */
	snprintf(cmd, sizeof(cmd), "echo %s > /sys/bus/dax/devices/%s/driver/unbind", dax, dax);
	assert_int_equal(system(cmd), 0);
	restore_module();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_info, bt_cleanup),
		cmocka_unit_test_teardown(test_refusals, bt_cleanup),
		cmocka_unit_test_teardown(test_overlap, bt_cleanup),
		cmocka_unit_test_teardown(test_remove_add, bt_cleanup),
		cmocka_unit_test_teardown(test_tool_dax, bt_cleanup),
	};

	return bt_main("source", tests, sizeof(tests) / sizeof(tests[0]),
		       group_setup, group_teardown);
}
