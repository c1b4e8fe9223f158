// SPDX-License-Identifier: Apache-2.0
/*
 * t_range.c - physical-range sources (ZONE_DEVICE, the paper's pool mode).
 *
 * Runs in boots whose module parameters include ranges= (the "ranges-gpu"
 * profile reserves two ranges with memmap=; the "cxl" profile releases a
 * QEMU CXL type-3 device's devdax range); elsewhere every test skips.
 * Covers: INFO features and SOURCE_INFO kinds; a create with ANY over both
 * kinds takes one kind, and is EINVAL when only mixing kinds could hold it;
 * kind/index mismatches are EINVAL; range regions are
 * mapped with devmap PMD leaves over every 2 MiB (page-table walk) and are
 * shared between processes; FOLL_LONGTERM pins over a cold mapping; chunks
 * are zeroed on reuse (same pfns, zero content); chunks interleave across
 * two ranges; pages spliced into a pipe outlive the region and the fd, keep
 * the chunk quarantined and the module loaded (EWOULDBLOCK) until the pipe
 * is drained; 1000 create/map/unmap/destroy cycles leave the pool exactly
 * whole; unload and reload; load-time refusals (misaligned, System RAM,
 * overlapping ranges) with their dmesg lines; in the cxl boot, a range
 * given back to device-dax is refused with EBUSY naming the owner.
 */
#define _GNU_SOURCE
#include "bt_common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_RANGES 4

static int range_src[MAX_RANGES];	/* source indexes of range sources */
static int nr_range;
static int nr_node;
static uint64_t range_free;		/* free bytes of all range sources */

static int group_setup(void **state)
{
	struct bt_sources s;

	if (bt_group_setup(state) || bt_sources(bt_dev, &s))
		return 1;
	for (nr_range = 0; nr_range < MAX_RANGES; nr_range++) {
		range_src[nr_range] = bt_source_find(&s, BELUGA_SOURCE_RANGE, nr_range);
		if (range_src[nr_range] < 0)
			break;
	}
	nr_node = (int)bt_sources_count(&s, BELUGA_SOURCE_NODE);
	range_free = bt_sources_free(&s, BELUGA_SOURCE_RANGE);
	printf("  %d range source(s), %d node source(s)\n", nr_range, nr_node);
	return 0;
}

static void need_ranges(int n)
{
	if (nr_range < n)
		bt_skip("needs %d range source(s) (ranges= in the boot profile)", n);
}

static int create_range_ok(char name[BELUGA_NAME_MAX], uint64_t size, int index)
{
	int fd;

	bt_name(name, "rng");
	fd = bt_create_on_source(bt_dev, name, size, BELUGA_SOURCE_RANGE, index);
	if (fd < 0)
		fail_msg("create range region: %s", strerror(-fd));
	return fd;
}

static void test_info(void **state)
{
	struct beluga_info info = { 0 };

	(void)state;
	need_ranges(1);
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_INFO, &info), 0);
	assert_true(info.features & BELUGA_FEAT_RANGE_SOURCES);
	assert_int_equal(bt_sysfs_u64_ok("sources/%d/total_bytes", range_src[0]) %
			 BT_CHUNK, 0);
}

static void test_kind_selection(void **state)
{
	char name[BELUGA_NAME_MAX];

	(void)state;
	need_ranges(1);
	bt_name(name, "kind");
	if (nr_node) {
		struct beluga_info info;
		uint64_t node_free;

		/* ANY over both kinds takes one kind when one can hold it... */
		assert_true(bt_create_on_source(bt_dev, name, BT_CHUNK,
						BELUGA_SOURCE_ANY, -1) >= 0);
		bt_destroy_ok(bt_dev, name);
		/* ...and refuses a size only both kinds together could hold. */
		bt_info_ok(bt_dev, &info);
		node_free = info.free_bytes - range_free;
		assert_int_equal(bt_create_on_source(bt_dev, name,
						     (node_free > range_free ?
						      node_free : range_free) + BT_CHUNK,
						     BELUGA_SOURCE_ANY, -1), -EINVAL);
		/* More than the whole pool is ENOSPC as ever. */
		assert_int_equal(bt_create_on_source(bt_dev, name,
						     info.free_bytes + BT_CHUNK,
						     BELUGA_SOURCE_ANY, -1), -ENOSPC);
	}
	/* A range source asked for as a node source. */
	assert_int_equal(bt_create_on_source(bt_dev, name, BT_CHUNK,
					     BELUGA_SOURCE_NODE, range_src[0]), -EINVAL);
	/* The right kind, or the index alone, works. */
	assert_true(bt_create_on_source(bt_dev, name, BT_CHUNK, BELUGA_SOURCE_ANY,
					range_src[0]) >= 0);
	bt_destroy_ok(bt_dev, name);
}

static void test_pmd_and_share(void **state)
{
	const uint64_t size = 4 * BT_CHUNK;
	struct beluga_test_walk_entry e[4];
	struct beluga_region_stat st;
	char name[BELUGA_NAME_MAX];
	uint64_t before = bt_sysfs_u64_ok("counters/pmd_faults");
	int fd, tfd, i, rfd;
	void *p, *q;

	(void)state;
	need_ranges(1);
	fd = create_range_ok(name, size, -1);
	p = bt_map_ok(fd, size, PROT_READ | PROT_WRITE, 0);
	assert_int_equal(bt_check_zero(p, size), UINT64_MAX);
	bt_fill(p, size, 0x5151);

	tfd = bt_test_open();
	assert_int_equal(bt_walk(tfd, p, size, e), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(e[i].kind, BELUGA_TEST_MAP_PMD);
		assert_true(e[i].flags & BELUGA_TEST_WALK_F_DEVMAP);
		assert_int_equal(e[i].nr_contig, 512);
	}
	assert_true(bt_sysfs_u64_ok("counters/pmd_faults") >= before + 4);

	/* Another open file description sees the same bytes. */
	rfd = bt_open_ok(bt_dev, name, BELUGA_OPEN_RDONLY, NULL);
	q = bt_map_ok(rfd, size, PROT_READ, 0);
	assert_int_equal(bt_check(q, size, 0x5151), UINT64_MAX);
	assert_int_equal(bt_fd_stat(fd, &st), 0);
	assert_int_equal(st.source_kind, BELUGA_SOURCE_RANGE);
	assert_int_equal(st.map_count, 2);
}

static void test_longterm_pin_cold(void **state)
{
	const uint64_t size = 4 * BT_CHUNK;
	struct beluga_test_pin pin;
	char name[BELUGA_NAME_MAX];
	int fd, tfd, ret;
	void *p;

	(void)state;
	need_ranges(1);
	fd = create_range_ok(name, size, -1);
	p = bt_map_ok(fd, size, PROT_READ | PROT_WRITE, 0);
	tfd = bt_test_open();
	ret = bt_pin(tfd, p, size, 0, &pin);	/* never touched: GUP faults */
	if (ret)
		fail_msg("FOLL_LONGTERM pin of a cold range mapping: %s",
			 strerror(-ret));
	printf("  pinned %" PRIu64 " pages, %" PRIu64 " mismatches\n",
	       (uint64_t)pin.nr_pinned, (uint64_t)pin.nr_mismatch);
	assert_int_equal(pin.nr_pinned, size / BT_PAGE);
	assert_int_equal(pin.nr_mismatch, 0);
}

static void test_zero_on_reuse(void **state)
{
	const uint64_t size = 2 * BT_CHUNK;
	struct beluga_test_walk_entry a[2], b[2];
	char name[BELUGA_NAME_MAX];
	int fd, tfd, i, j, same = 0;
	void *p;

	(void)state;
	need_ranges(1);
	tfd = bt_test_open();
	fd = create_range_ok(name, size, range_src[0]);
	p = bt_map_ok(fd, size, PROT_READ | PROT_WRITE, 0);
	bt_fill(p, size, 0xabcd);
	assert_int_equal(bt_walk(tfd, p, size, a), 0);
	bt_unmap(p, size);
	bt_close(fd);
	bt_destroy_ok(bt_dev, name);

	fd = create_range_ok(name, size, range_src[0]);
	p = bt_map_ok(fd, size, PROT_READ | PROT_WRITE, 0);
	assert_int_equal(bt_check_zero(p, size), UINT64_MAX);
	assert_int_equal(bt_walk(tfd, p, size, b), 0);
	for (i = 0; i < 2; i++)
		for (j = 0; j < 2; j++)
			same += a[i].pfn == b[j].pfn;
	printf("  %d of 2 chunks reused, all zero\n", same);
	assert_true(same >= 1);
}

/* Which range a pfn belongs to, by the ranges' pfn spans seen in walks. */
static void test_interleave_two_ranges(void **state)
{
	const uint64_t size = 4 * BT_CHUNK;
	struct beluga_test_walk_entry e[4], one[1];
	char name[BELUGA_NAME_MAX], n0[BELUGA_NAME_MAX];
	uint64_t base0, span;
	int fd, f0, tfd, i;
	void *p, *p0;

	(void)state;
	need_ranges(2);
	tfd = bt_test_open();
	/* A chunk known to be in range 0 gives that range's pfn window. */
	f0 = create_range_ok(n0, BT_CHUNK, range_src[0]);
	p0 = bt_map_ok(f0, BT_CHUNK, PROT_READ | PROT_WRITE, 0);
	bt_touch(p0, BT_CHUNK);
	assert_int_equal(bt_walk(tfd, p0, BT_CHUNK, one), 0);
	span = bt_sysfs_u64_ok("sources/%d/total_bytes", range_src[0]) / BT_PAGE;
	base0 = one[0].pfn;

	fd = create_range_ok(name, size, -1);
	p = bt_map_ok(fd, size, PROT_READ | PROT_WRITE, 0);
	bt_touch(p, size);
	assert_int_equal(bt_walk(tfd, p, size, e), 0);
	for (i = 0; i < 4; i++) {
		/* Range 0 holds pfns within span of base0; range 1 does not. */
		bool in0 = e[i].pfn + span > base0 && e[i].pfn < base0 + span;
		bool prev0 = i && (e[i - 1].pfn + span > base0 &&
				   e[i - 1].pfn < base0 + span);

		printf("  chunk %d: range %d\n", i, in0 ? 0 : 1);
		if (i)
			assert_true(in0 != prev0);
	}
}

static void test_pipe_outlives_region(void **state)
{
	const uint64_t size = BT_CHUNK;
	char name[BELUGA_NAME_MAX], buf[65536];
	struct beluga_info info;
	struct iovec iov;
	uint64_t free0;
	int fd, pp[2], ret;
	void *p;

	(void)state;
	need_ranges(1);
	bt_info_ok(bt_dev, &info);
	free0 = info.free_bytes;
	fd = create_range_ok(name, size, -1);
	p = bt_map_ok(fd, size, PROT_READ | PROT_WRITE, 0);
	bt_fill(p, size, 0x77);
	assert_int_equal(pipe(pp), 0);
	iov.iov_base = p;
	iov.iov_len = sizeof(buf);
	assert_int_equal(vmsplice(pp[1], &iov, 1, 0), (ssize_t)sizeof(buf));

	bt_unmap(p, size);
	bt_close(fd);
	bt_destroy_ok(bt_dev, name);
	bt_info_ok(bt_dev, &info);
	assert_int_equal(info.quarantined_bytes, BT_CHUNK);
	assert_int_equal(info.free_bytes, free0 - BT_CHUNK);
	/* Only the quarantined chunk holds the module now. */
	close(bt_dev);
	ret = bt_module_unload();
	bt_dev = bt_dev_open();
	assert_int_equal(ret, -EWOULDBLOCK);
	assert_true(bt_dev >= 0);

	/* The pipe still reads the region's bytes; then the chunk returns. */
	assert_int_equal(read(pp[0], buf, sizeof(buf)), (ssize_t)sizeof(buf));
	assert_int_equal(bt_check(buf, sizeof(buf), 0x77), UINT64_MAX);
	close(pp[0]);
	close(pp[1]);
	bt_wait_pool_ok(bt_dev, free0);
}

static void test_cycles(void **state)
{
	struct beluga_source_info si[MAX_RANGES];
	const int cycles = bt_slow_memory() ? 16 : 1000;
	char name[BELUGA_NAME_MAX];
	uint64_t free0;
	int i, k;

	(void)state;
	need_ranges(1);
	printf("  %d cycles\n", cycles);
	free0 = bt_free_ok(bt_dev);
	for (k = 0; k < nr_range; k++)
		bt_source_ok(bt_dev, range_src[k], &si[k]);
	bt_name(name, "cyc");
	for (i = 0; i < cycles; i++) {
		int fd = bt_create_on_source(bt_dev, name, BT_CHUNK,
					     BELUGA_SOURCE_RANGE, -1);
		char *p;

		if (fd < 0)
			fail_msg("cycle %d: create: %s", i, strerror(-fd));
		p = bt_map_ok(fd, BT_CHUNK, PROT_READ | PROT_WRITE, 0);
		p[i % BT_CHUNK] = 1;
		bt_unmap(p, BT_CHUNK);
		bt_close(fd);
		bt_destroy_ok(bt_dev, name);
	}
	bt_wait_pool_ok(bt_dev, free0);
	for (k = 0; k < nr_range; k++) {
		struct beluga_source_info now;

		bt_source_ok(bt_dev, range_src[k], &now);
		assert_int_equal(now.free_bytes, si[k].free_bytes);
	}
}

static void expect_load_refused(const char *params, int err, const char *needle)
{
	char first[256] = "";
	int kfd = bt_kmsg_open(), ret, n;

	ret = bt_module_load(params);
	n = bt_kmsg_count(kfd, needle, first, sizeof(first), NULL);
	close(kfd);
	printf("  %s -> %s; dmesg: %s\n", params, strerror(-ret), first);
	assert_int_equal(ret, -err);
	assert_true(n >= 1);
}

static void test_unload_reload_and_refusals(void **state)
{
	(void)state;
	need_ranges(1);
	close(bt_dev);	/* an open /dev/beluga holds the module */
	bt_dev = -1;
	assert_int_equal(bt_module_unload(), 0);
	expect_load_refused("ranges=0x1000+2M", EINVAL, "not 2 MiB aligned");
	expect_load_refused("ranges=0x1000000+2M", EINVAL, "overlaps System RAM");
	expect_load_refused("ranges=0x1000000", EINVAL, "bad range");
	{
		/* Two pieces of the boot's first range that overlap. */
		unsigned long long start = bt_first_range_start();
		char params[96];

		assert_true(start != 0);
		snprintf(params, sizeof(params), "ranges=%#llx+4M,%#llx+4M",
			 start, start + (2ULL << 20));
		expect_load_refused(params, EINVAL, "overlaps another range");
	}
	assert_int_equal(bt_module_restore(), 0);
	bt_dev = bt_dev_open();
	assert_true(bt_dev >= 0);
	assert_int_equal(bt_sysfs_u64_ok("free_bytes"),
			 bt_sysfs_u64_ok("total_bytes"));
	assert_true(bt_sysfs_u64_ok("sources/%d/total_bytes", range_src[0]) > 0);
}

/*
 * cxl boot only: give the range back to device-dax; Beluga must then refuse
 * it with EBUSY and name the owner; release it again and reload.
 */
static void test_busy_owner(void **state)
{
	char dax[64] = "", cmd[160], needle[96];
	FILE *f = fopen(BT_CXL_DAX_FILE, "r");

	(void)state;
	if (!f)
		bt_skip("needs the cxl boot (a devdax range released to Beluga)");
	if (!fgets(dax, sizeof(dax), f))
		dax[0] = '\0';
	fclose(f);
	dax[strcspn(dax, "\n")] = '\0';
	assert_true(dax[0]);

	close(bt_dev);
	bt_dev = -1;
	assert_int_equal(bt_module_unload(), 0);
	snprintf(cmd, sizeof(cmd), "daxctl enable-device %s >/dev/null", dax);
	assert_int_equal(system(cmd), 0);
	snprintf(needle, sizeof(needle), "is owned by '%s'", dax);
	expect_load_refused(bt_normal_params(), EBUSY, needle);
	snprintf(cmd, sizeof(cmd), "daxctl disable-device %s >/dev/null", dax);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(bt_module_restore(), 0);
	bt_dev = bt_dev_open();
	assert_true(bt_dev >= 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_info, bt_cleanup),
		cmocka_unit_test_teardown(test_kind_selection, bt_cleanup),
		cmocka_unit_test_teardown(test_pmd_and_share, bt_cleanup),
		cmocka_unit_test_teardown(test_longterm_pin_cold, bt_cleanup),
		cmocka_unit_test_teardown(test_zero_on_reuse, bt_cleanup),
		cmocka_unit_test_teardown(test_interleave_two_ranges, bt_cleanup),
		cmocka_unit_test_teardown(test_pipe_outlives_region, bt_cleanup),
		cmocka_unit_test_teardown(test_cycles, bt_cleanup),
		cmocka_unit_test_teardown(test_unload_reload_and_refusals,
					  bt_cleanup),
		cmocka_unit_test_teardown(test_busy_owner, bt_cleanup),
	};

	return bt_main("range", tests, sizeof(tests) / sizeof(tests[0]),
		       group_setup, bt_group_teardown);
}
