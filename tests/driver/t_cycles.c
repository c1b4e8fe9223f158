// SPDX-License-Identifier: Apache-2.0
/*
 * t_cycles.c - 1000 create/map/unmap/destroy cycles leak nothing.
 *
 * Each cycle creates a 2-chunk region (one chunk per node source), maps
 * it, writes every chunk, unmaps and destroys it; odd cycles destroy while
 * the fd is still open, even ones after closing it.  Afterwards free_bytes
 * is back exactly where it started in INFO, in every source's SOURCE_INFO
 * and in sysfs (global and per source), nr_regions too, and the
 * regions_created/regions_freed counters grew by exactly the cycle count.
 */
#define _GNU_SOURCE
#include "bt_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CYCLES 1000
#define SIZE (2 * BT_CHUNK)
#define MAX_SRC 16


struct snapshot {
	struct beluga_info info;
	uint64_t src_free[MAX_SRC], src_sysfs[MAX_SRC];
	uint64_t sysfs_free, created, freed;
};

static void snap(struct snapshot *s)
{
	memset(s, 0, sizeof(*s));
	bt_info_ok(bt_dev, &s->info);
	assert_true(s->info.nr_sources <= MAX_SRC);
	for (uint32_t i = 0; i < s->info.nr_sources; i++) {
		struct beluga_source_info si;

		bt_source_ok(bt_dev, i, &si);
		s->src_free[i] = si.free_bytes;
		s->src_sysfs[i] = bt_sysfs_u64_ok("sources/%u/free_bytes", i);
	}
	s->sysfs_free = bt_sysfs_u64_ok("free_bytes");
	s->created = bt_sysfs_u64_ok("counters/regions_created");
	s->freed = bt_sysfs_u64_ok("counters/regions_freed");
}

static void one_cycle(int i)
{
	char name[BELUGA_NAME_MAX];
	char *p;
	int fd;

	bt_name(name, "cyc");
	fd = bt_create_ok(bt_dev, name, SIZE, 0600, NULL);
	p = bt_map_ok(fd, SIZE, PROT_READ | PROT_WRITE, 0);
	p[0] = (char)i;
	p[BT_CHUNK] = (char)i;
	bt_unmap(p, SIZE);
	if (i & 1) {
		bt_destroy_ok(bt_dev, name);
		bt_close(fd);
	} else {
		bt_close(fd);
		bt_destroy_ok(bt_dev, name);
	}
}

static void test_cycles(void **state)
{
	struct snapshot a, b;

	(void)state;
	snap(&a);
	for (int i = 0; i < CYCLES; i++)
		one_cycle(i);
	bt_wait_pool_ok(bt_dev, a.info.free_bytes);
	snap(&b);
	printf("  %d cycles: free %" PRIu64 " -> %" PRIu64 "\n", CYCLES,
	       (uint64_t)a.info.free_bytes, (uint64_t)b.info.free_bytes);
	assert_int_equal(b.info.free_bytes, a.info.free_bytes);
	assert_int_equal(b.info.nr_regions, a.info.nr_regions);
	assert_int_equal(b.info.quarantined_bytes, 0);
	assert_int_equal(b.sysfs_free, a.sysfs_free);
	for (uint32_t i = 0; i < a.info.nr_sources; i++) {
		assert_int_equal(b.src_free[i], a.src_free[i]);
		assert_int_equal(b.src_sysfs[i], a.src_sysfs[i]);
	}
	assert_int_equal(b.created - a.created, CYCLES);
	assert_int_equal(b.freed - a.freed, CYCLES);
}

#define T(fn) cmocka_unit_test_teardown(fn, bt_cleanup)

int main(void)
{
	const struct CMUnitTest tests[] = { T(test_cycles) };

	return bt_main("drv_cycles", tests, sizeof(tests) / sizeof(tests[0]),
		       bt_group_setup, bt_group_teardown);
}
