// SPDX-License-Identifier: Apache-2.0
/*
 * t_pmd.c - every chunk is mapped by one 2 MiB PMD.
 *
 * Proved with the test helper's page-table WALK over every 2 MiB of a
 * mapping after touching it (write faults, read faults, in a forked child,
 * after MADV_DONTNEED), and by the sysfs fault counters: pmd_faults grows by
 * at least one per chunk and pte_faults does not move.  Each leaf maps a
 * 2 MiB-aligned pfn of an order-9 compound page; chunks are distinct.
 * A 4 KiB mapping (where no PMD fits) still works through PTEs, maps the
 * same page and counts a PTE fault.
 */
#define _GNU_SOURCE
#include "bt_common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <unistd.h>

#define NR 8
#define SIZE (NR * BT_CHUNK)


/* 0 if every 2 MiB step of [p, p+len) is a PMD leaf on a distinct chunk. */
static int check_pmds(int tfd, void *p, uint64_t len, uint64_t *pfns)
{
	struct beluga_test_walk_entry e[NR];
	uint64_t n = len / BT_CHUNK;

	if (n > NR || bt_walk(tfd, p, len, e))
		return 1;
	for (uint64_t i = 0; i < n; i++) {
		if (e[i].kind != BELUGA_TEST_MAP_PMD) {
			fprintf(stderr, "step %" PRIu64 ": kind %u, %u PTEs present\n",
				i, e[i].kind, e[i].nr_present);
			return 2;
		}
		if (e[i].pfn % 512 || e[i].order != 9 ||
		    (e[i].flags & BELUGA_TEST_WALK_F_NOPAGE) || e[i].nid < 0) {
			fprintf(stderr, "step %" PRIu64 ": pfn %#" PRIx64
				" order %u flags %#x nid %d\n", i,
				(uint64_t)e[i].pfn, e[i].order, e[i].flags,
				e[i].nid);
			return 3;
		}
		for (uint64_t k = 0; k < i; k++)
			if (e[k].pfn == e[i].pfn)
				return 4;
		if (pfns)
			pfns[i] = e[i].pfn;
	}
	return 0;
}

static int new_region(uint64_t size)
{
	char name[BELUGA_NAME_MAX];

	bt_name(name, "pmd");
	return bt_create_ok(bt_dev, name, size, 0600, NULL);
}

static void test_pmd_write_faults(void **state)
{
	uint64_t pmd0 = bt_sysfs_u64_ok("counters/pmd_faults");
	uint64_t pte0 = bt_sysfs_u64_ok("counters/pte_faults");
	int tfd = bt_test_open(), fd = new_region(SIZE);
	char *p = bt_map_ok(fd, SIZE, PROT_READ | PROT_WRITE, 0);
	uint64_t pmd1, pte1;

	(void)state;
	bt_fill(p, SIZE, 0x77);		/* writes every page */
	assert_int_equal(check_pmds(tfd, p, SIZE, NULL), 0);
	assert_int_equal(bt_check(p, SIZE, 0x77), UINT64_MAX);
	pmd1 = bt_sysfs_u64_ok("counters/pmd_faults");
	pte1 = bt_sysfs_u64_ok("counters/pte_faults");
	printf("  pmd_faults +%" PRIu64 ", pte_faults +%" PRIu64 "\n",
	       pmd1 - pmd0, pte1 - pte0);
	assert_true(pmd1 - pmd0 >= NR);
	assert_int_equal(pte1 - pte0, 0);
}

static void test_pmd_read_faults(void **state)
{
	int tfd = bt_test_open(), fd = new_region(SIZE);
	char *p = bt_map_ok(fd, SIZE, PROT_READ, 0);

	(void)state;
	assert_int_equal(bt_check_zero(p, SIZE), UINT64_MAX);
	assert_int_equal(check_pmds(tfd, p, SIZE, NULL), 0);
}

/* A partial mapping at a chunk-aligned offset is PMD-mapped too. */
static void test_pmd_offset_mapping(void **state)
{
	int tfd = bt_test_open(), fd = new_region(SIZE);
	char *p = bt_map_ok(fd, 3 * BT_CHUNK, PROT_READ | PROT_WRITE,
			    5 * BT_CHUNK);

	(void)state;
	bt_touch(p, 3 * BT_CHUNK);
	assert_int_equal(check_pmds(tfd, p, 3 * BT_CHUNK, NULL), 0);
}

static int child_touch_and_walk(void *arg)
{
	char *p = arg;
	int tfd = open(BELUGA_TEST_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	if (tfd < 0)
		return 90;
	bt_touch(p, SIZE);
	return check_pmds(tfd, p, SIZE, NULL);
}

/* fork: the child's own page tables get PMDs on its own faults. */
static void test_pmd_in_forked_child(void **state)
{
	int tfd = bt_test_open(), fd = new_region(SIZE);
	char *p = bt_map_ok(fd, SIZE, PROT_READ | PROT_WRITE, 0);

	(void)state;
	(void)tfd;
	assert_int_equal(bt_run_as(0, 0, child_touch_and_walk, p), 0);
}

/* MADV_DONTNEED drops the PMD; the next touch maps the same chunk again. */
static void test_pmd_after_dontneed(void **state)
{
	int tfd = bt_test_open(), fd = new_region(2 * BT_CHUNK);
	char *p = bt_map_ok(fd, 2 * BT_CHUNK, PROT_READ | PROT_WRITE, 0);
	uint64_t before[NR], after[NR];
	struct beluga_test_walk_entry e[2];

	(void)state;
	bt_fill(p, 2 * BT_CHUNK, 0x55);
	assert_int_equal(check_pmds(tfd, p, 2 * BT_CHUNK, before), 0);
	assert_int_equal(madvise(p, BT_CHUNK, MADV_DONTNEED), 0);
	assert_int_equal(bt_walk(tfd, p, 2 * BT_CHUNK, e), 0);
	assert_int_equal(e[0].kind, BELUGA_TEST_MAP_NONE);
	assert_int_equal(bt_check(p, 2 * BT_CHUNK, 0x55), UINT64_MAX);
	assert_int_equal(check_pmds(tfd, p, 2 * BT_CHUNK, after), 0);
	assert_int_equal(before[0], after[0]);
	assert_int_equal(before[1], after[1]);
}

/* Where a PMD cannot fit, 4 KiB PTEs map the same chunk. */
static void test_pte_fallback(void **state)
{
	uint64_t pte0 = bt_sysfs_u64_ok("counters/pte_faults"), pfn[NR];
	int tfd = bt_test_open(), fd = new_region(BT_CHUNK);
	char *all = bt_map_ok(fd, BT_CHUNK, PROT_READ | PROT_WRITE, 0);
	char *small = bt_map_ok(fd, BT_PAGE, PROT_READ | PROT_WRITE,
				 3 * BT_PAGE);
	struct beluga_test_walk_entry e;
	char *step = (char *)((uintptr_t)small & ~(BT_CHUNK - 1));

	(void)state;
	all[0] = 1;
	assert_int_equal(check_pmds(tfd, all, BT_CHUNK, pfn), 0);
	small[5] = 'p';
	assert_int_equal(all[3 * BT_PAGE + 5], 'p');
	assert_int_equal(bt_walk(tfd, step, BT_CHUNK, &e), 0);
	assert_int_equal(e.kind, BELUGA_TEST_MAP_PTE);
	assert_int_equal(e.nr_present, 1);
	assert_int_equal(e.pfn, pfn[0] + 3);
	assert_true(bt_sysfs_u64_ok("counters/pte_faults") > pte0);
}

/*
 * Control for the walker itself: anonymous memory with THP disabled must
 * show up as 512 PTEs per step, and a hole as nothing, or the PMD results
 * above would prove nothing.
 */
static void test_walker_control(void **state)
{
	struct beluga_test_walk_entry e[3];
	struct beluga_test_pin res;
	int tfd = bt_test_open();
	char *raw, *p;

	(void)state;
	raw = mmap(NULL, 4 * BT_CHUNK, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(raw != MAP_FAILED);
	bt_track_map(raw, 4 * BT_CHUNK);
	p = (char *)(((uintptr_t)raw + BT_CHUNK - 1) & ~(BT_CHUNK - 1));
	assert_int_equal(madvise(p, 2 * BT_CHUNK, MADV_NOHUGEPAGE), 0);
	bt_touch(p, 2 * BT_CHUNK);
	assert_int_equal(munmap(p + 2 * BT_CHUNK, BT_CHUNK), 0);
	assert_int_equal(bt_walk(tfd, p, 3 * BT_CHUNK, e), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(e[i].kind, BELUGA_TEST_MAP_PTE);
		assert_int_equal(e[i].nr_present, 512);
		assert_int_equal(e[i].order, 0);
	}
	assert_int_equal(e[2].kind, BELUGA_TEST_MAP_NONE);
	assert_int_equal(bt_pin(tfd, p, 2 * BT_CHUNK, 0, &res), 0);
	assert_int_equal(res.nr_pinned, 2 * BT_CHUNK / BT_PAGE);
	assert_int_equal(res.nr_mismatch, 0);
	/* The helper's own input checks. */
	assert_int_equal(bt_walk(tfd, p + BT_PAGE, BT_CHUNK, e), -EINVAL);
	assert_int_equal(bt_walk(tfd, p, BT_CHUNK + BT_PAGE, e), -EINVAL);
	assert_int_equal(bt_pin(tfd, p, 0, 0, &res), -EINVAL);
	assert_int_equal(bt_pin(tfd, p + 1, BT_PAGE, 0, &res), -EINVAL);
	assert_int_equal(bt_pin(tfd, p, BT_PAGE, 1U << 5, &res), -EINVAL);
	/* The hole cannot be pinned. */
	assert_int_equal(bt_pin(tfd, p + 2 * BT_CHUNK, BT_PAGE, 0, &res),
			 -EFAULT);
}

#define T(fn) cmocka_unit_test_teardown(fn, bt_cleanup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_walker_control), T(test_pmd_write_faults), T(test_pmd_read_faults),
		T(test_pmd_offset_mapping), T(test_pmd_in_forked_child),
		T(test_pmd_after_dontneed), T(test_pte_fallback),
	};

	return bt_main("drv_pmd", tests, sizeof(tests) / sizeof(tests[0]),
		       bt_group_setup, bt_group_teardown);
}
