// SPDX-License-Identifier: Apache-2.0
/*
 * t_zero.c - chunks are zeroed before a region gets them.
 *
 * Write a pattern over a whole region, record its chunks' pfns with the
 * test helper's page-table WALK, destroy it, create a region of the same
 * size (freed chunks go back LIFO, so it normally gets the same chunks),
 * and check with WALK that at least one chunk is really reused (else the
 * test proves nothing and fails) and that every byte reads zero.  Done for
 * a named region destroyed after close and an ephemeral one freed on close.
 */
#define _GNU_SOURCE
#include "bt_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NR 4
#define SIZE (NR * BT_CHUNK)


/* pfn of the first 4 KiB page of each chunk mapped at @p (all touched). */
static void chunk_pfns(int tfd, void *p, uint64_t pfns[NR])
{
	struct beluga_test_walk_entry e[NR];

	assert_int_equal(bt_walk(tfd, p, SIZE, e), 0);
	for (int i = 0; i < NR; i++) {
		if (e[i].kind == BELUGA_TEST_MAP_NONE || !e[i].nr_present)
			fail_msg("chunk %d not mapped after touching it", i);
		pfns[i] = e[i].pfn - e[i].first_index;
	}
}

/* Create, fill, record pfns, release; @ephemeral: freed by close. */
static void dirty_region(int tfd, bool ephemeral, uint64_t pfns[NR])
{
	char name[BELUGA_NAME_MAX];
	int fd;
	void *p;

	bt_name(name, "dirty");
	if (ephemeral) {
		fd = bt_create(bt_dev, NULL, SIZE, 0600, BELUGA_CREATE_EPHEMERAL,
			       NULL);
		assert_true(fd >= 0);
		bt_track_fd(fd);
	} else {
		fd = bt_create_ok(bt_dev, name, SIZE, 0600, NULL);
	}
	p = bt_map_ok(fd, SIZE, PROT_READ | PROT_WRITE, 0);
	bt_fill(p, SIZE, 0xd1);
	chunk_pfns(tfd, p, pfns);
	bt_unmap(p, SIZE);
	bt_close(fd);
	if (!ephemeral)
		bt_destroy_ok(bt_dev, name);
}

static void zero_after_reuse(bool ephemeral)
{
	uint64_t free_b = bt_free_ok(bt_dev), old[NR], new[NR], off;
	char name[BELUGA_NAME_MAX];
	int tfd = bt_test_open(), fd, common = 0;
	void *p;

	dirty_region(tfd, ephemeral, old);
	bt_wait_pool_ok(bt_dev, free_b);

	bt_name(name, "clean");
	fd = bt_create_ok(bt_dev, name, SIZE, 0600, NULL);
	p = bt_map_ok(fd, SIZE, PROT_READ | PROT_WRITE, 0);
	bt_touch(p, SIZE);	/* rewrites what it reads: keeps the content */
	chunk_pfns(tfd, p, new);
	off = bt_check_zero(p, SIZE);
	for (int i = 0; i < NR; i++)
		for (int k = 0; k < NR; k++)
			common += new[i] == old[k];
	printf("  %d of %d chunks reused\n", common, NR);
	if (off != UINT64_MAX)
		fail_msg("byte %#" PRIx64 " not zero in a reused region", off);
	if (!common)
		fail_msg("no chunk reused: zeroing not proved (LIFO reuse expected)");
}

static void test_zero_named(void **state)
{
	(void)state;
	zero_after_reuse(false);
}

static void test_zero_ephemeral(void **state)
{
	(void)state;
	zero_after_reuse(true);
}

#define T(fn) cmocka_unit_test_teardown(fn, bt_cleanup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_zero_named), T(test_zero_ephemeral),
	};

	return bt_main("drv_zero", tests, sizeof(tests) / sizeof(tests[0]),
		       bt_group_setup, bt_group_teardown);
}
