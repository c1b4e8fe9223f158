// SPDX-License-Identifier: Apache-2.0
/*
 * t_interleave.c - chunks interleave round-robin across the node sources.
 *
 * With the guest's two CPU-less nodes (1 and 2): REGION_LAYOUT of a region
 * created over all sources alternates the sources' nodes (1,2,1,2... or
 * 2,1,2,1...), each source's free_bytes drops by its share, and the test
 * helper's WALK shows every mapped chunk really on the node LAYOUT names
 * (page_to_nid of the PMD's page).  source_index pins a region to one
 * source.  Skipped with fewer than two sources.
 */
#define _GNU_SOURCE
#include "bt_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NR 6
#define SIZE (NR * BT_CHUNK)
static struct bt_sources srcs;

static int group_setup(void **state)
{
	return bt_group_setup(state) || bt_sources(bt_dev, &srcs);
}

static bool need_two_sources(void)
{
	if (srcs.nr >= 2)
		return true;
	bt_note_skip("%u source(s): interleaving needs two", srcs.nr);
	return false;
}

static int create_on(int32_t index, char name[BELUGA_NAME_MAX])
{
	int fd;

	bt_name(name, "ilv");
	fd = bt_create_on_source(bt_dev, name, SIZE, BELUGA_SOURCE_NODE, index);
	if (fd < 0)
		fail_msg("create on node source %d: %s", index, strerror(-fd));
	return fd;
}

/* WALK after touching: each chunk's page sits on nodes[i]. */
static void check_walk_nodes(int fd, const int32_t *nodes)
{
	struct beluga_test_walk_entry e[NR];
	int tfd = bt_test_open();
	char *p = bt_map_ok(fd, SIZE, PROT_READ | PROT_WRITE, 0);

	bt_touch(p, SIZE);
	assert_int_equal(bt_walk(tfd, p, SIZE, e), 0);
	for (int i = 0; i < NR; i++) {
		if (e[i].nid != nodes[i])
			fail_msg("chunk %d: page on node %d, LAYOUT says %d",
				 i, e[i].nid, nodes[i]);
	}
}

static void test_round_robin(void **state)
{
	uint64_t free0[BT_MAX_SOURCES];
	char name[BELUGA_NAME_MAX];
	int32_t nodes[NR];
	uint32_t n = srcs.nr;
	int fd, start = -1;

	(void)state;
	if (!need_two_sources())
		skip();
	for (uint32_t s = 0; s < n; s++) {
		bt_source_ok(bt_dev, s, &srcs.si[s]);
		free0[s] = srcs.si[s].free_bytes;
	}
	fd = create_on(-1, name);
	assert_int_equal(bt_layout(fd, nodes, NR), NR);
	printf("  layout:");
	for (int i = 0; i < NR; i++)
		printf(" %d", nodes[i]);
	printf("\n");
	for (uint32_t s = 0; s < n; s++)
		if (srcs.si[s].node == nodes[0])
			start = (int)s;
	assert_true(start >= 0);
	for (int i = 0; i < NR; i++)
		assert_int_equal(nodes[i], srcs.si[(start + i) % n].node);
	for (uint32_t s = 0; s < n; s++) {
		struct beluga_source_info now;
		uint64_t share = 0;

		for (int i = 0; i < NR; i++)
			share += nodes[i] == srcs.si[s].node ? BT_CHUNK : 0;
		bt_source_ok(bt_dev, s, &now);
		assert_int_equal(now.free_bytes, free0[s] - share);
	}
	check_walk_nodes(fd, nodes);
}

static void test_one_source(void **state)
{
	char name[BELUGA_NAME_MAX];
	int32_t nodes[NR];

	(void)state;
	if (!need_two_sources())
		skip();
	for (uint32_t s = 0; s < 2; s++) {
		int fd = create_on((int32_t)s, name);

		assert_int_equal(bt_layout(fd, nodes, NR), NR);
		for (int i = 0; i < NR; i++)
			assert_int_equal(nodes[i], srcs.si[s].node);
		check_walk_nodes(fd, nodes);
	}
}

#define T(fn) cmocka_unit_test_teardown(fn, bt_cleanup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_round_robin), T(test_one_source),
	};

	return bt_main("drv_interleave", tests,
		       sizeof(tests) / sizeof(tests[0]), group_setup,
		       bt_group_teardown);
}
