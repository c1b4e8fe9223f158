// SPDX-License-Identifier: Apache-2.0
/*
 * t_shared.c - shared regions (BELUGA_IOC_SHARED_DEFINE, ABI 1.2): a named
 * region over a fixed extent of a range source, never zeroed.
 *
 * Runs in boots with range sources (ranges-gpu, cxl); elsewhere the tests
 * that need one skip.  One kernel stands in for every host here: what a
 * second host would see is what the next definition of the same extent sees.
 * Covers: INFO reports ABI 1.2 and the feature bit; the errno of every bad
 * definition (unaligned, zero or past the source, node source, bad index,
 * unknown flag, non-zero output fields, name taken, overlapping shared
 * extent, a chunk in a private region, non-admin); a definition maps exactly
 * its extent (devmap PMDs, physically contiguous, two extents sit at the
 * distance of their offsets); defining, destroying and defining again
 * leaves the bytes as they were, while private regions created meanwhile
 * get other chunks and are zero; private regions can take every other chunk
 * of the source but never the extent's; destroy is EBUSY while an fd or a
 * mapping holds the region; a FOLL_LONGTERM pin outlives the region and
 * keeps the extent quarantined (a new definition is EBUSY) until unpinned;
 * stat, sysfs, no quota charge, and open permissions.
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
#include <unistd.h>

#define MAX_SRC 8

static int range_src = -1;		/* first range source */
static uint64_t range_bytes;		/* its size */
static uint64_t range_start;		/* its physical start (from ranges=) */
static int node_src = -1;		/* a node source, if any */

static int group_setup(void **state)
{
	struct bt_sources s;

	if (bt_group_setup(state) || bt_sources(bt_dev, &s))
		return 1;
	range_src = bt_source_find(&s, BELUGA_SOURCE_RANGE, 0);
	range_bytes = range_src >= 0 ? s.si[range_src].total_bytes : 0;
	node_src = bt_source_find(&s, BELUGA_SOURCE_NODE, 0);
	range_start = bt_first_range_start();
	printf("  range source %d (%" PRIu64 " MiB at %#" PRIx64 "), node source %d\n",
	       range_src, range_bytes >> 20, range_start, node_src);
	return 0;
}

static void need_range(void)
{
	if (range_src < 0)
		bt_skip("needs a range source (ranges= in the boot profile)");
	/* The tests place extents in the last 8 chunks of the source. */
	assert_true(range_bytes >= 16 * BT_CHUNK);
}

/* An offset @back chunks before the end of the range source. */
static uint64_t tail(unsigned int back)
{
	return range_bytes - (uint64_t)back * BT_CHUNK;
}

/* SHARED_DEFINE on @d: the fd (tracked, the name too) or -errno. */
static int define_on(int d, const char *name, int src, uint64_t off,
		     uint64_t size, uint32_t mode, uint64_t *id)
{
	struct beluga_shared_define s;
	int ret;

	memset(&s, 0, sizeof(s));
	snprintf(s.name, sizeof(s.name), "%s", name);
	s.offset = off;
	s.size = size;
	s.mode = mode;
	s.source_index = (uint32_t)src;
	s.flags = BELUGA_SHARED_CLOEXEC;
	ret = bt_ioctl(d, BELUGA_IOC_SHARED_DEFINE, &s);
	if (ret)
		return ret;
	if (id)
		*id = s.id;
	return s.fd;
}

static int define(const char *name, uint64_t off, uint64_t size)
{
	int fd = define_on(bt_dev, name, range_src, off, size, 0600, NULL);

	if (fd >= 0) {
		bt_track_name(name);
		bt_track_fd(fd);
	}
	return fd;
}

static int define_ok(const char *name, uint64_t off, uint64_t size)
{
	int fd = define(name, off, size);

	if (fd < 0)
		fail_msg("define '%s' at %#" PRIx64 "+%#" PRIx64 ": %s", name, off,
			 size, strerror(-fd));
	return fd;
}

/* Map @size bytes of @fd read-write and return the pfn of each chunk. */
static void *map_walk(int fd, uint64_t size, uint64_t *pfn)
{
	struct beluga_test_walk_entry e[8];
	int tfd = bt_test_open();
	uint64_t i, n = size / BT_CHUNK;
	void *p = bt_map_ok(fd, size, PROT_READ | PROT_WRITE, 0);

	assert_true(n <= 8);
	for (i = 0; i < n; i++)
		((volatile char *)p)[i * BT_CHUNK] = ((volatile char *)p)[i * BT_CHUNK];
	assert_int_equal(bt_walk(tfd, p, size, e), 0);
	for (i = 0; i < n; i++) {
		assert_int_equal(e[i].kind, BELUGA_TEST_MAP_PMD);
		assert_true(e[i].flags & BELUGA_TEST_WALK_F_DEVMAP);
		assert_int_equal(e[i].nr_contig, 512);
		pfn[i] = e[i].pfn;
	}
	bt_close(tfd);
	return p;
}

static void test_info(void **state)
{
	struct beluga_info info = { 0 };

	(void)state;
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_INFO, &info), 0);
	assert_true(info.abi_version >= BELUGA_ABI_VERSION(1, 2));
	assert_true(info.features & BELUGA_FEAT_SHARED_REGIONS);
}

static void test_refusals(void **state)
{
	struct beluga_shared_define s;
	char name[BELUGA_NAME_MAX], other[BELUGA_NAME_MAX];
	uint64_t size = 2 * BT_CHUNK;

	(void)state;
	need_range();
	bt_name(name, "shr");
	bt_name(other, "shr");
	/* Unaligned offset or size, zero size. */
	assert_int_equal(define(name, tail(4) + 4096, size), -EINVAL);
	assert_int_equal(define(name, tail(4), size + 4096), -EINVAL);
	assert_int_equal(define(name, tail(4), 0), -EINVAL);
	/* Past the end of the source, and wrapping around. */
	assert_int_equal(define(name, tail(1), size), -ENXIO);
	assert_int_equal(define(name, range_bytes, BT_CHUNK), -ENXIO);
	assert_int_equal(define(name, tail(2), UINT64_MAX - BT_CHUNK + 1), -ENXIO);
	/* A source index that does not exist; a node source. */
	assert_int_equal(define_on(bt_dev, name, 1000, 0, size, 0600, NULL), -EINVAL);
	if (node_src >= 0)
		assert_int_equal(define_on(bt_dev, name, node_src, 0, size, 0600,
					   NULL), -EOPNOTSUPP);
	else
		printf("  no node source in this boot: node refusal not checked\n");
	/* Bad name, mode, flag, output or reserved fields. */
	assert_int_equal(define("", tail(4), size), -EINVAL);
	assert_int_equal(define_on(bt_dev, name, range_src, tail(4), size, 01000,
				   NULL), -EINVAL);
	memset(&s, 0, sizeof(s));
	snprintf(s.name, sizeof(s.name), "%s", name);
	s.offset = tail(4);
	s.size = size;
	s.source_index = (uint32_t)range_src;
	s.flags = 1U << 7;
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_SHARED_DEFINE, &s), -EINVAL);
	s.flags = 0;
	s.fd = 3;
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_SHARED_DEFINE, &s), -EINVAL);
	s.fd = 0;
	s.reserved[3] = 1;
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_SHARED_DEFINE, &s), -EINVAL);

	/* A name already taken (by a shared or a private region). */
	define_ok(name, tail(4), size);
	assert_int_equal(define(name, tail(8), size), -EEXIST);
	/* Overlapping extents: the same, a part, one that covers it. */
	assert_int_equal(define(other, tail(4), size), -EADDRINUSE);
	assert_int_equal(define(other, tail(3), size), -EADDRINUSE);
	assert_int_equal(define(other, tail(5), 4 * BT_CHUNK), -EADDRINUSE);
	/* Right next to it is fine. */
	define_ok(other, tail(2), size);
}

static int define_as_nobody(void *arg)
{
	const char *name = arg;
	int fd = define_on(bt_dev, name, range_src, tail(4), 2 * BT_CHUNK, 0666,
			   NULL);

	return fd == -EPERM ? 0 : 1;
}

static int open_as_nobody(void *arg)
{
	const char *name = arg;
	int fd = bt_open(bt_dev, name, 0, NULL);

	if (fd >= 0)
		close(fd);
	return fd >= 0 ? 0 : -fd;
}

static void test_permissions(void **state)
{
	char name[BELUGA_NAME_MAX];
	struct beluga_region_setattr a;

	(void)state;
	need_range();
	bt_name(name, "shp");
	/* Only CAP_SYS_ADMIN defines (the device fd is already open). */
	assert_int_equal(bt_run_as(BT_NOBODY, BT_NOBODY, define_as_nobody, name), 0);
	/* Opening follows mode and owner like any region. */
	define_ok(name, tail(4), 2 * BT_CHUNK);
	assert_int_equal(bt_run_as(BT_NOBODY, BT_NOBODY, open_as_nobody, name),
			 EACCES);
	memset(&a, 0, sizeof(a));
	snprintf(a.name, sizeof(a.name), "%s", name);
	a.flags = BELUGA_SETATTR_UID | BELUGA_SETATTR_GID;
	a.uid = BT_NOBODY;
	a.gid = BT_NOBODY;
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_REGION_SETATTR, &a), 0);
	assert_int_equal(bt_run_as(BT_NOBODY, BT_NOBODY, open_as_nobody, name), 0);
}

static void test_stat_and_sysfs(void **state)
{
	struct beluga_quota q0 = { .uid = 0 }, q1 = { .uid = 0 };
	struct beluga_region_stat st;
	char name[BELUGA_NAME_MAX];
	uint64_t id = 0;
	int fd;

	(void)state;
	need_range();
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_QUOTA_GET, &q0), 0);
	bt_name(name, "shs");
	fd = define_on(bt_dev, name, range_src, tail(6), 3 * BT_CHUNK, 0640, &id);
	assert_true(fd >= 0);
	bt_track_name(name);
	bt_track_fd(fd);
	assert_int_equal(bt_stat(bt_dev, name, &st), 0);
	assert_true(st.flags & BELUGA_REGION_F_SHARED);
	assert_int_equal(st.shared_offset, tail(6));
	assert_int_equal(st.shared_source, range_src);
	assert_int_equal(st.size, 3 * BT_CHUNK);
	assert_int_equal(st.nr_chunks, 3);
	assert_int_equal(st.source_kind, BELUGA_SOURCE_RANGE);
	assert_int_equal(st.mode, 0640);
	assert_int_equal(st.uid, 0);
	assert_int_equal(st.id, id);
	assert_int_equal(st.open_count, 1);
	assert_int_equal(bt_sysfs_u64_ok("regions/%" PRIu64 "/shared", id), 1);
	/* Charged to no quota. */
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_QUOTA_GET, &q1), 0);
	assert_int_equal(q1.used_regions, q0.used_regions);
	assert_int_equal(q1.used_bytes, q0.used_bytes);
	/* The fd from the definition is read-write. */
	assert_int_equal(bt_fd_stat(fd, &st), 0);
	assert_true(st.flags & BELUGA_REGION_F_SHARED);
	bt_unmap(bt_map_ok(fd, BT_CHUNK, PROT_READ | PROT_WRITE, 0), BT_CHUNK);
}

/* The extent is the memory: contiguous, and where its offset says. */
static void test_fixed_extent(void **state)
{
	char a[BELUGA_NAME_MAX], b[BELUGA_NAME_MAX];
	uint64_t pa[4], pb[1];
	int fa, fb, i;

	(void)state;
	need_range();
	bt_name(a, "shx");
	bt_name(b, "shx");
	fa = define_ok(a, tail(8), 4 * BT_CHUNK);
	fb = define_ok(b, tail(1), BT_CHUNK);
	map_walk(fa, 4 * BT_CHUNK, pa);
	map_walk(fb, BT_CHUNK, pb);
	for (i = 1; i < 4; i++)
		assert_int_equal(pa[i], pa[0] + i * (BT_CHUNK / BT_PAGE));
	assert_int_equal(pb[0] - pa[0], (tail(1) - tail(8)) / BT_PAGE);
	if (range_start)
		assert_int_equal(pa[0] * BT_PAGE, range_start + tail(8));
	else
		printf("  range start unknown: absolute address not checked\n");
}

/*
 * Define, write, destroy, define again: the bytes are still there.  Private
 * regions created while it exists are zero and never get its chunks.
 */
static void test_never_zeroed(void **state)
{
	const uint64_t size = 2 * BT_CHUNK;
	char name[BELUGA_NAME_MAX], priv[BELUGA_NAME_MAX];
	uint64_t s0[2], s1[2], pp[4], salt = bt_seed();
	int fd, pfd, i, j;
	void *p;

	(void)state;
	need_range();
	bt_name(name, "shz");
	fd = define_ok(name, tail(3), size);
	p = map_walk(fd, size, s0);
	bt_fill(p, size, salt);
	bt_unmap(p, size);
	bt_close(fd);
	bt_destroy_ok(bt_dev, name);

	fd = define_ok(name, tail(3), size);
	/* A private region from the same source, meanwhile. */
	bt_name(priv, "shq");
	pfd = bt_create_on_source(bt_dev, priv, 4 * BT_CHUNK,
				  BELUGA_SOURCE_RANGE, range_src);
	assert_true(pfd >= 0);
	{
		void *q = map_walk(pfd, 4 * BT_CHUNK, pp);

		assert_int_equal(bt_check_zero(q, 4 * BT_CHUNK), UINT64_MAX);
	}
	p = map_walk(fd, size, s1);
	assert_int_equal(bt_check(p, size, salt), UINT64_MAX);
	for (i = 0; i < 2; i++) {
		assert_int_equal(s1[i], s0[i]);
		for (j = 0; j < 4; j++)
			assert_true(pp[j] != s1[i]);
	}
	/* Opening it again (as another host's process would) changes nothing. */
	bt_close(bt_open_ok(bt_dev, name, BELUGA_OPEN_RDONLY, NULL));
	assert_int_equal(bt_check(p, size, salt), UINT64_MAX);
}

/*
 * Private regions can have every other chunk of the source, never the
 * extent's, and zeroing them leaves the extent's bytes alone.
 */
static void test_private_never_inside(void **state)
{
	const uint64_t size = 2 * BT_CHUNK;
	struct beluga_source_info before, after;
	char name[BELUGA_NAME_MAX], priv[BELUGA_NAME_MAX];
	uint64_t salt = bt_seed() ^ 0x5a5a;
	int fd, pfd;
	void *p;

	(void)state;
	need_range();
	if (bt_slow_memory())
		bt_skip("the cxl boot's range is MMIO-emulated: zeroing all of it takes too long");
	bt_source_ok(bt_dev, (uint32_t)range_src, &before);
	bt_name(name, "shn");
	fd = define_ok(name, tail(5), size);
	p = bt_map_ok(fd, size, PROT_READ | PROT_WRITE, 0);
	bt_fill(p, size, salt);
	bt_source_ok(bt_dev, (uint32_t)range_src, &after);
	assert_int_equal(after.free_bytes, before.free_bytes - size);

	/* Every free chunk of the source into one private region... */
	bt_name(priv, "shf");
	pfd = bt_create_on_source(bt_dev, priv, after.free_bytes,
				  BELUGA_SOURCE_RANGE, range_src);
	if (pfd < 0)
		fail_msg("private region of every free chunk: %s", strerror(-pfd));
	/* ...zeroed without touching the extent; no chunk is left. */
	assert_int_equal(bt_check(p, size, salt), UINT64_MAX);
	bt_source_ok(bt_dev, (uint32_t)range_src, &after);
	assert_int_equal(after.free_bytes, 0);
	/* A shared extent over chunks a private region holds: EBUSY. */
	{
		char busy[BELUGA_NAME_MAX];

		bt_name(busy, "shb");
		assert_int_equal(define(busy, 0, BT_CHUNK), -EBUSY);
		/* Overlapping a shared extent is said first. */
		assert_int_equal(define(busy, tail(6), 2 * BT_CHUNK), -EADDRINUSE);
	}
	{
		char more[BELUGA_NAME_MAX];

		bt_name(more, "shm");
		assert_int_equal(bt_create_on_source(bt_dev, more, BT_CHUNK,
						     BELUGA_SOURCE_RANGE, range_src),
				 -ENOSPC);
	}
	bt_close(pfd);
	bt_destroy_ok(bt_dev, priv);
	bt_source_ok(bt_dev, (uint32_t)range_src, &after);
	assert_int_equal(after.free_bytes, before.free_bytes - size);
}

/* Destroy is refused while an fd or a mapping holds the region. */
static void test_destroy_in_use(void **state)
{
	const uint64_t size = 2 * BT_CHUNK;
	struct beluga_source_info before, after;
	char name[BELUGA_NAME_MAX];
	int fd;
	void *p;

	(void)state;
	need_range();
	bt_source_ok(bt_dev, (uint32_t)range_src, &before);
	bt_name(name, "shd");
	fd = define_ok(name, tail(7), size);
	assert_int_equal(bt_destroy(bt_dev, name), -EBUSY);
	p = bt_map_ok(fd, size, PROT_READ | PROT_WRITE, 0);
	bt_close(fd);
	assert_int_equal(bt_destroy(bt_dev, name), -EBUSY);	/* mapped */
	bt_unmap(p, size);
	bt_destroy_ok(bt_dev, name);
	bt_source_ok(bt_dev, (uint32_t)range_src, &after);
	assert_int_equal(after.free_bytes, before.free_bytes);
	assert_int_equal(bt_destroy(bt_dev, name), -ENOENT);
}

/*
 * A FOLL_LONGTERM pin of a cold shared mapping works, outlives the region,
 * and keeps the extent out of the pool (a new definition is EBUSY) until it
 * is released; the bytes survive all of it.
 */
static void test_longterm_pin(void **state)
{
	const uint64_t size = 2 * BT_CHUNK;
	struct beluga_test_pin pin;
	struct beluga_info info;
	char name[BELUGA_NAME_MAX];
	uint64_t free0, salt = bt_seed() ^ 0x77;
	int fd, tfd, ret;
	void *p;

	(void)state;
	need_range();
	free0 = bt_free_ok(bt_dev);
	tfd = bt_test_open();
	bt_name(name, "shl");
	fd = define_ok(name, tail(3), size);
	p = bt_map_ok(fd, size, PROT_READ | PROT_WRITE, 0);
	ret = bt_pin(tfd, p, size, BELUGA_TEST_PIN_HOLD, &pin);	/* cold */
	if (ret)
		fail_msg("FOLL_LONGTERM pin of a cold shared mapping: %s",
			 strerror(-ret));
	assert_int_equal(pin.nr_pinned, size / BT_PAGE);
	assert_int_equal(pin.nr_mismatch, 0);
	bt_fill(p, size, salt);
	bt_unmap(p, size);
	bt_close(fd);
	bt_destroy_ok(bt_dev, name);
	bt_info_ok(bt_dev, &info);
	assert_int_equal(info.quarantined_bytes, size);
	assert_int_equal(define(name, tail(3), size), -EBUSY);

	assert_int_equal(bt_unpin(tfd, pin.handle, 0, NULL), 0);
	bt_wait_pool_ok(bt_dev, free0);
	fd = define_ok(name, tail(3), size);
	p = bt_map_ok(fd, size, PROT_READ, 0);
	assert_int_equal(bt_check(p, size, salt), UINT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_info, bt_cleanup),
		cmocka_unit_test_teardown(test_refusals, bt_cleanup),
		cmocka_unit_test_teardown(test_permissions, bt_cleanup),
		cmocka_unit_test_teardown(test_stat_and_sysfs, bt_cleanup),
		cmocka_unit_test_teardown(test_fixed_extent, bt_cleanup),
		cmocka_unit_test_teardown(test_never_zeroed, bt_cleanup),
		cmocka_unit_test_teardown(test_private_never_inside, bt_cleanup),
		cmocka_unit_test_teardown(test_destroy_in_use, bt_cleanup),
		cmocka_unit_test_teardown(test_longterm_pin, bt_cleanup),
	};

	return bt_main("shared", tests, sizeof(tests) / sizeof(tests[0]),
		       group_setup, bt_group_teardown);
}
