// SPDX-License-Identifier: Apache-2.0
/*
 * t_pin.c - long-term pinning (FOLL_LONGTERM), and pins outliving a mapping.
 *
 * Covers: pin_user_pages(FOLL_WRITE | FOLL_LONGTERM) from the test helper
 * over a whole COLD (never touched) mapping pins every page, each the page
 * the page table maps (no mismatches), and leaves PMD mappings behind; a
 * pin over an unaligned sub-range; held pins show in REGION_STAT and sysfs
 * pinned_chunks and go away on UNPIN; pins that outlive the mapping, the fd
 * and the name (destroy) keep the chunks out of the pool as
 * quarantined_bytes, make unloading fail with EWOULDBLOCK, and after UNPIN
 * the chunks come back (polled with a deadline).
 */
#define _GNU_SOURCE
#include "bt_common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NR 8
#define SIZE (NR * BT_CHUNK)


static int new_region(uint64_t size, char name[BELUGA_NAME_MAX], uint64_t *id)
{
	bt_name(name, "pin");
	return bt_create_ok(bt_dev, name, size, 0600, id);
}

static void pin_ok(int tfd, void *p, uint64_t len, uint32_t flags,
		   struct beluga_test_pin *res)
{
	int ret = bt_pin(tfd, p, len, flags, res);

	if (ret)
		fail_msg("pin %" PRIu64 " bytes: %s", len, strerror(-ret));
	printf("  pinned %" PRIu64 " pages, %" PRIu64 " mismatches\n",
	       (uint64_t)res->nr_pinned, (uint64_t)res->nr_mismatch);
	assert_int_equal(res->nr_pinned, len / BT_PAGE);
	if (res->nr_mismatch)
		fail_msg("%" PRIu64 " pinned pages differ from the mapped page, first at %#" PRIx64,
			 (uint64_t)res->nr_mismatch,
			 (uint64_t)res->first_mismatch);
}

static void test_pin_cold_mapping(void **state)
{
	struct beluga_test_walk_entry e[NR];
	struct beluga_test_pin res;
	char name[BELUGA_NAME_MAX];
	int tfd = bt_test_open(), fd = new_region(SIZE, name, NULL);
	char *p = bt_map_ok(fd, SIZE, PROT_READ | PROT_WRITE, 0);

	(void)state;
	assert_int_equal(bt_walk(tfd, p, SIZE, e), 0);
	for (int i = 0; i < NR; i++)
		assert_int_equal(e[i].kind, BELUGA_TEST_MAP_NONE);	/* cold */
	pin_ok(tfd, p, SIZE, 0, &res);
	/* GUP faulted the chunks in through the same path: PMDs. */
	assert_int_equal(bt_walk(tfd, p, SIZE, e), 0);
	for (int i = 0; i < NR; i++) {
		assert_int_equal(e[i].kind, BELUGA_TEST_MAP_PMD);
		assert_int_equal(e[i].order, 9);
	}
	/* Pinned pages are the mapped pages: data written now is there. */
	bt_fill(p, SIZE, 0x91);
	assert_int_equal(bt_check(p, SIZE, 0x91), UINT64_MAX);
}

static void test_pin_subrange(void **state)
{
	struct beluga_test_pin res;
	char name[BELUGA_NAME_MAX];
	int tfd = bt_test_open(), fd = new_region(2 * BT_CHUNK, name, NULL);
	char *p = bt_map_ok(fd, 2 * BT_CHUNK, PROT_READ | PROT_WRITE, 0);

	(void)state;
	/* Crosses the chunk boundary, starts and ends mid-chunk. */
	pin_ok(tfd, p + 5 * BT_PAGE, BT_CHUNK + 7 * BT_PAGE, 0, &res);
}

static uint32_t region_pinned(const char *name)
{
	struct beluga_region_stat st;

	assert_int_equal(bt_stat(bt_dev, name, &st), 0);
	return st.pinned_chunks;
}

static void test_pin_counts(void **state)
{
	struct beluga_test_pin res;
	char name[BELUGA_NAME_MAX];
	uint64_t id, last, nr;
	int tfd = bt_test_open(), fd = new_region(4 * BT_CHUNK, name, &id);
	char *p = bt_map_ok(fd, 4 * BT_CHUNK, PROT_READ | PROT_WRITE, 0);

	(void)state;
	assert_int_equal(region_pinned(name), 0);
	pin_ok(tfd, p, 3 * BT_CHUNK, BELUGA_TEST_PIN_HOLD, &res);
	assert_true(res.handle >= 1);
	assert_int_equal(region_pinned(name), 3);
	assert_int_equal(bt_sysfs_wait_eq(3, &last,
					  "regions/%" PRIu64 "/pinned_chunks",
					  id), 0);
	assert_true(bt_sysfs_u64_ok("counters/pinned_chunks") >= 3);
	assert_int_equal(bt_unpin(tfd, res.handle + 1000, 0, NULL), -ENOENT);
	assert_int_equal(bt_unpin(tfd, res.handle, 0, &nr), 0);
	assert_int_equal(nr, 3 * BT_CHUNK / BT_PAGE);
	if (bt_sysfs_wait_eq(0, &last, "regions/%" PRIu64 "/pinned_chunks",
			     id))
		fail_msg("pinned_chunks still %" PRIu64 " after UNPIN", last);
	assert_int_equal(region_pinned(name), 0);
}

static void test_pins_outlive_mapping(void **state)
{
	struct beluga_test_pin res;
	struct beluga_info info;
	char name[BELUGA_NAME_MAX];
	uint64_t free_b = bt_free_ok(bt_dev), deadline, nr;
	int tfd = bt_test_open(), fd = new_region(4 * BT_CHUNK, name, NULL);
	char *p = bt_map_ok(fd, 4 * BT_CHUNK, PROT_READ | PROT_WRITE, 0);
	int ret;

	(void)state;
	bt_fill(p, 4 * BT_CHUNK, 0x42);
	pin_ok(tfd, p, 4 * BT_CHUNK, BELUGA_TEST_PIN_HOLD, &res);
	bt_unmap(p, 4 * BT_CHUNK);
	bt_close(fd);
	bt_destroy_ok(bt_dev, name);

	/* Released by every user but the pins: quarantined, not free. */
	deadline = bt_now_ms() + BT_DEADLINE_MS;
	for (;;) {
		bt_info_ok(bt_dev, &info);
		if (info.quarantined_bytes == 4 * BT_CHUNK ||
		    bt_now_ms() > deadline)
			break;
		bt_sleep_ms(10);
	}
	assert_int_equal(info.quarantined_bytes, 4 * BT_CHUNK);
	assert_int_equal(info.free_bytes, free_b - 4 * BT_CHUNK);
	assert_int_equal(bt_sysfs_u64_ok("quarantined_bytes"), 4 * BT_CHUNK);
	assert_int_equal(bt_sysfs_u64_ok("free_bytes"), free_b - 4 * BT_CHUNK);

	/* Unload must be refused although no region and no fd is left. */
	close(bt_dev);
	bt_dev = -1;
	ret = bt_module_unload();
	if (!ret) {
		bt_module_restore();
		fail_msg("beluga unloaded while its chunks were pinned");
	}
	assert_int_equal(ret, -EWOULDBLOCK);
	assert_true(bt_module_loaded());
	bt_dev = bt_dev_open_ok();

	assert_int_equal(bt_unpin(tfd, res.handle, 0, &nr), 0);
	assert_int_equal(nr, 4 * BT_CHUNK / BT_PAGE);
	bt_wait_pool_ok(bt_dev, free_b);
}

/* Closing the helper fd (e.g. the process dies) drops its pins too. */
static void test_pins_dropped_on_close(void **state)
{
	struct beluga_test_pin res;
	char name[BELUGA_NAME_MAX];
	uint64_t free_b = bt_free_ok(bt_dev);
	int tfd = bt_test_open(), fd = new_region(2 * BT_CHUNK, name, NULL);
	char *p = bt_map_ok(fd, 2 * BT_CHUNK, PROT_READ | PROT_WRITE, 0);

	(void)state;
	pin_ok(tfd, p, 2 * BT_CHUNK, BELUGA_TEST_PIN_HOLD, &res);
	bt_unmap(p, 2 * BT_CHUNK);
	bt_close(fd);
	bt_destroy_ok(bt_dev, name);
	bt_close(tfd);
	bt_wait_pool_ok(bt_dev, free_b);
}

#define T(fn) cmocka_unit_test_teardown(fn, bt_cleanup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_pin_cold_mapping), T(test_pin_subrange),
		T(test_pin_counts), T(test_pins_outlive_mapping),
		T(test_pins_dropped_on_close),
	};

	return bt_main("drv_pin", tests, sizeof(tests) / sizeof(tests[0]),
		       bt_group_setup, bt_group_teardown);
}
