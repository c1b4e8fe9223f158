// SPDX-License-Identifier: Apache-2.0
/*
 * t_sysfs.c - /sys/kernel/beluga matches the ioctls and leaks no addresses.
 *
 * Covers: every documented file exists (top level, counters/, sources/<i>/,
 * regions/<id>/); abi_version is "1.0" and chunk_size 2 MiB; total, free,
 * quarantined and nr_regions equal INFO; each source equals SOURCE_INFO;
 * each region's files equal REGION_STAT (mode in octal, e.g. "0640"),
 * including destroyed=1 while still open, ephemeral=1, and the directory
 * going away when the region is freed; regions_created/regions_freed
 * count; every file is read-only (no write bits, O_WRONLY refused); no
 * file under /sys/kernel/beluga or /sys/module/beluga/parameters holds
 * anything that looks like a kernel address (ffff followed by 8+ hex).
 */
#define _GNU_SOURCE
#include "bt_common.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>


static const char *const top_files[] = {
	"abi_version", "chunk_size", "total_bytes", "free_bytes",
	"quarantined_bytes", "nr_regions",
};
static const char *const counter_files[] = {
	"pmd_faults", "pte_faults", "pinned_chunks", "alloc_failures",
	"regions_created", "regions_freed",
};
static const char *const source_files[] = {
	"kind", "node", "total_bytes", "free_bytes", "has_cpus",
};
static const char *const region_files[] = {
	"name", "size", "uid", "gid", "mode", "open_count", "map_count",
	"pinned_chunks", "ephemeral", "destroyed", "shared",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void expect_files(const char *dir, const char *const *files, size_t n)
{
	char buf[256];

	for (size_t i = 0; i < n; i++) {
		int ret = bt_sysfs_str(buf, sizeof(buf), "%s%s", dir, files[i]);

		if (ret)
			fail_msg("%s/%s%s: %s", BT_SYSFS, dir, files[i],
				 strerror(-ret));
	}
}

static void test_top_level(void **state)
{
	struct beluga_info info;
	char buf[64], want[32];

	(void)state;
	expect_files("", top_files, NELEM(top_files));
	expect_files("counters/", counter_files, NELEM(counter_files));
	bt_info_ok(bt_dev, &info);
	snprintf(want, sizeof(want), "%u.%u", info.abi_version >> 16,
		 info.abi_version & 0xffff);
	assert_int_equal(bt_sysfs_str(buf, sizeof(buf), "abi_version"), 0);
	assert_string_equal(buf, want);
	assert_int_equal(bt_sysfs_u64_ok("chunk_size"), BT_CHUNK);
	assert_int_equal(bt_sysfs_u64_ok("total_bytes"), info.total_bytes);
	assert_int_equal(bt_sysfs_u64_ok("free_bytes"), info.free_bytes);
	assert_int_equal(bt_sysfs_u64_ok("quarantined_bytes"),
			 info.quarantined_bytes);
	assert_int_equal(bt_sysfs_u64_ok("nr_regions"), info.nr_regions);
	for (size_t i = 0; i < NELEM(counter_files); i++)
		(void)bt_sysfs_u64_ok("counters/%s", counter_files[i]);
}

static void test_sources(void **state)
{
	struct beluga_source_info si;
	struct beluga_info info;
	char buf[64], dir[32];
	struct dirent *de;
	uint32_t dirs = 0;
	DIR *d;

	(void)state;
	bt_info_ok(bt_dev, &info);
	d = opendir(BT_SYSFS "/sources");
	assert_non_null(d);
	while ((de = readdir(d)))
		dirs += de->d_name[0] != '.';
	closedir(d);
	assert_int_equal(dirs, info.nr_sources);
	for (uint32_t i = 0; i < info.nr_sources; i++) {
		snprintf(dir, sizeof(dir), "sources/%u/", i);
		expect_files(dir, source_files, NELEM(source_files));
		bt_source_ok(bt_dev, i, &si);
		assert_int_equal(bt_sysfs_str(buf, sizeof(buf), "%skind", dir),
				 0);
		assert_string_equal(buf, "node");
		assert_int_equal(bt_sysfs_u64_ok("%snode", dir), si.node);
		assert_int_equal(bt_sysfs_u64_ok("%stotal_bytes", dir),
				 si.total_bytes);
		assert_int_equal(bt_sysfs_u64_ok("%sfree_bytes", dir),
				 si.free_bytes);
		assert_int_equal(bt_sysfs_u64_ok("%shas_cpus", dir),
				 !!(si.flags & BELUGA_SOURCE_F_HAS_CPUS));
	}
}

/* regions/<id>/ must equal REGION_FD_STAT of @fd. */
static void expect_region_matches(int fd)
{
	struct beluga_region_stat st;
	char dir[48], buf[128], mode[16];

	assert_int_equal(bt_fd_stat(fd, &st), 0);
	snprintf(dir, sizeof(dir), "regions/%" PRIu64 "/", (uint64_t)st.id);
	expect_files(dir, region_files, NELEM(region_files));
	assert_int_equal(bt_sysfs_str(buf, sizeof(buf), "%sname", dir), 0);
	assert_string_equal(buf, st.name);
	assert_int_equal(bt_sysfs_u64_ok("%ssize", dir), st.size);
	assert_int_equal(bt_sysfs_u64_ok("%suid", dir), st.uid);
	assert_int_equal(bt_sysfs_u64_ok("%sgid", dir), st.gid);
	snprintf(mode, sizeof(mode), "%04o", st.mode);
	assert_int_equal(bt_sysfs_str(buf, sizeof(buf), "%smode", dir), 0);
	assert_string_equal(buf, mode);
	assert_int_equal(bt_sysfs_u64_ok("%sopen_count", dir), st.open_count);
	assert_int_equal(bt_sysfs_u64_ok("%smap_count", dir), st.map_count);
	assert_int_equal(bt_sysfs_u64_ok("%spinned_chunks", dir),
			 st.pinned_chunks);
	assert_int_equal(bt_sysfs_u64_ok("%sephemeral", dir),
			 !!(st.flags & BELUGA_REGION_F_EPHEMERAL));
	assert_int_equal(bt_sysfs_u64_ok("%sdestroyed", dir),
			 !!(st.flags & BELUGA_REGION_F_DESTROYED));
	assert_int_equal(bt_sysfs_u64_ok("%sshared", dir),
			 !!(st.flags & BELUGA_REGION_F_SHARED));
}

static void wait_dir_gone(uint64_t id)
{
	uint64_t deadline = bt_now_ms() + BT_DEADLINE_MS;
	char path[96];

	snprintf(path, sizeof(path), BT_SYSFS "/regions/%" PRIu64, id);
	while (access(path, F_OK) == 0) {
		if (bt_now_ms() > deadline)
			fail_msg("%s still there after the region was freed",
				 path);
		bt_sleep_ms(10);
	}
}

static void test_regions(void **state)
{
	uint64_t created = bt_sysfs_u64_ok("counters/regions_created");
	uint64_t freed = bt_sysfs_u64_ok("counters/regions_freed");
	char name[BELUGA_NAME_MAX];
	uint64_t id, eid;
	int fd, fd2, efd;
	char *p;

	(void)state;
	bt_name(name, "sysfs");
	fd = bt_create_ok(bt_dev, name, 3 * BT_CHUNK, 0640, &id);
	assert_int_equal(bt_sysfs_u64_ok("counters/regions_created"),
			 created + 1);
	expect_region_matches(fd);
	fd2 = bt_open_ok(bt_dev, name, 0, NULL);
	p = bt_map_ok(fd2, BT_CHUNK, PROT_READ | PROT_WRITE, 0);
	p[0] = 1;
	expect_region_matches(fd);
	assert_int_equal(bt_sysfs_u64_ok("regions/%" PRIu64 "/open_count",
					 id), 2);
	assert_int_equal(bt_sysfs_u64_ok("regions/%" PRIu64 "/map_count",
					 id), 1);
	{
		struct beluga_info info;

		bt_info_ok(bt_dev, &info);
		assert_int_equal(bt_sysfs_u64_ok("nr_regions"), info.nr_regions);
	}
	bt_destroy_ok(bt_dev, name);
	expect_region_matches(fd);
	assert_int_equal(bt_sysfs_u64_ok("regions/%" PRIu64 "/destroyed", id),
			 1);

	efd = bt_create(bt_dev, NULL, BT_CHUNK, 0600, BELUGA_CREATE_EPHEMERAL,
			&eid);
	assert_true(efd >= 0);
	bt_track_fd(efd);
	expect_region_matches(efd);
	assert_int_equal(bt_sysfs_u64_ok("regions/%" PRIu64 "/ephemeral",
					 eid), 1);

	bt_unmap(p, BT_CHUNK);
	bt_close(fd2);
	bt_close(fd);
	bt_close(efd);
	wait_dir_gone(id);
	wait_dir_gone(eid);
	assert_int_equal(bt_sysfs_wait_eq(freed + 2, NULL,
					  "counters/regions_freed"), 0);
}

/* Apply @fn to every regular file below @dir. */
static void for_each_file(const char *dir, void (*fn)(const char *path))
{
	struct dirent *de;
	DIR *d = opendir(dir);

	assert_non_null(d);
	while ((de = readdir(d))) {
		char path[512];
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st))
			continue;
		if (S_ISDIR(st.st_mode))
			for_each_file(path, fn);
		else if (S_ISREG(st.st_mode))
			fn(path);
	}
	closedir(d);
}

static void check_read_only(const char *path)
{
	struct stat st;
	int fd;

	assert_int_equal(stat(path, &st), 0);
	if (st.st_mode & 0222)
		fail_msg("%s is writable (mode %o)", path, st.st_mode & 0777);
	fd = open(path, O_WRONLY);
	if (fd >= 0) {
		close(fd);
		fail_msg("%s opened for writing", path);
	}
}

/* "ffff" followed by at least 8 more hex digits, with or without 0x. */
static bool looks_like_kernel_address(const char *s)
{
	for (const char *p = s; *p; p++) {
		size_t n = 0;

		if (strncasecmp(p, "ffff", 4))
			continue;
		while (isxdigit((unsigned char)p[n]))
			n++;
		if (n >= 12)
			return true;
	}
	return false;
}

static unsigned int files_scanned;

static void check_no_address(const char *path)
{
	char buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return;		/* write-only or root-only: not readable */
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return;
	buf[n] = '\0';
	files_scanned++;
	if (looks_like_kernel_address(buf))
		fail_msg("%s looks like it holds a kernel address: %s", path,
			 buf);
}

static void test_read_only(void **state)
{
	char name[BELUGA_NAME_MAX];

	(void)state;
	bt_name(name, "ro");
	bt_create_ok(bt_dev, name, BT_CHUNK, 0600, NULL);
	for_each_file(BT_SYSFS, check_read_only);
}

static void test_no_kernel_addresses(void **state)
{
	char name[BELUGA_NAME_MAX];
	int fd;
	char *p;

	(void)state;
	assert_true(looks_like_kernel_address("0xffff888012345678"));
	assert_true(looks_like_kernel_address("x ffffffffc0a01000\n"));
	assert_false(looks_like_kernel_address("18446744073709551615"));
	bt_name(name, "addr");
	fd = bt_create_ok(bt_dev, name, 2 * BT_CHUNK, 0600, NULL);
	p = bt_map_ok(fd, 2 * BT_CHUNK, PROT_READ | PROT_WRITE, 0);
	p[0] = 1;
	files_scanned = 0;
	for_each_file(BT_SYSFS, check_no_address);
	if (access("/sys/module/beluga/parameters", F_OK) == 0)
		for_each_file("/sys/module/beluga/parameters",
			      check_no_address);
	printf("  %u files scanned\n", files_scanned);
	assert_true(files_scanned >= NELEM(top_files) + NELEM(counter_files) +
		    NELEM(region_files));
}

#define T(fn) cmocka_unit_test_teardown(fn, bt_cleanup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_top_level), T(test_sources), T(test_regions),
		T(test_read_only), T(test_no_kernel_addresses),
	};

	return bt_main("drv_sysfs", tests, sizeof(tests) / sizeof(tests[0]),
		       bt_group_setup, bt_group_teardown);
}
