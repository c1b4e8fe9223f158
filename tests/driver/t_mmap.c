// SPDX-License-Identifier: Apache-2.0
/*
 * t_mmap.c - mmap of a region fd.
 *
 * Covers: MAP_PRIVATE -> EINVAL; offset/length beyond the region (or huge)
 * -> EINVAL, unaligned offset; mmap of /dev/beluga itself -> ENODEV; msync
 * works; mremap cannot grow a mapping; a region fd
 * opened with BELUGA_OPEN_RDONLY: PROT_READ works, PROT_WRITE -> EACCES and
 * mprotect(PROT_WRITE) later -> EACCES too; the kernel-chosen address is
 * 2 MiB aligned (congruent to the offset mod 2 MiB for a 4 KiB offset);
 * MAP_FIXED at a non-congruent address -> EINVAL and at a congruent one
 * works; two mappings of one region (different offsets) see each other's
 * writes; map_count follows mmap, munmap, a partial munmap, and fork.
 */
#define _GNU_SOURCE
#include "bt_common.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>


static int new_region(uint64_t size, char name[BELUGA_NAME_MAX])
{
	bt_name(name, "mmap");
	return bt_create_ok(bt_dev, name, size, 0600, NULL);
}

/* mmap must fail with one of @e1/@e2 (0 for none). */
static void map_fails(int fd, uint64_t len, int prot, int flags, uint64_t off,
		      int e1, int e2)
{
	void *p = mmap(NULL, len, prot, flags, fd, (off_t)off);
	int err = errno;

	if (p != MAP_FAILED) {
		munmap(p, len);
		fail_msg("mmap len %#llx off %#llx prot %d flags %#x succeeded",
			 (unsigned long long)len, (unsigned long long)off, prot,
			 flags);
	}
	if (err != e1 && err != e2)
		fail_msg("mmap len %#llx off %#llx: %s, want %s",
			 (unsigned long long)len, (unsigned long long)off,
			 strerror(err), strerror(e1));
}

static void test_private_einval(void **state)
{
	char name[BELUGA_NAME_MAX];
	int fd = new_region(BT_CHUNK, name);

	(void)state;
	map_fails(fd, BT_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE, 0,
		  EINVAL, 0);
	map_fails(fd, BT_CHUNK, PROT_READ, MAP_PRIVATE, 0, EINVAL, 0);
}

static void test_beyond_size(void **state)
{
	char name[BELUGA_NAME_MAX];
	int fd = new_region(2 * BT_CHUNK, name);
	int rw = PROT_READ | PROT_WRITE;

	(void)state;
	map_fails(fd, 3 * BT_CHUNK, rw, MAP_SHARED, 0, EINVAL, 0);
	map_fails(fd, 2 * BT_CHUNK, rw, MAP_SHARED, BT_CHUNK, EINVAL, 0);
	map_fails(fd, BT_PAGE, rw, MAP_SHARED, 2 * BT_CHUNK, EINVAL, 0);
	map_fails(fd, BT_CHUNK, rw, MAP_SHARED, 64 * BT_CHUNK, EINVAL, 0);
	map_fails(fd, 2 * BT_CHUNK + BT_PAGE, rw, MAP_SHARED, 0, EINVAL, 0);
	/* Unaligned offsets are the kernel's EINVAL. */
	map_fails(fd, BT_PAGE, rw, MAP_SHARED, 100, EINVAL, 0);
	/* A near-2^63 offset (pgoff + len overflow paths). */
	map_fails(fd, BT_CHUNK, rw, MAP_SHARED, (1ULL << 62), EINVAL, 0);
	/* Exactly the region, and its last page, are fine. */
	bt_unmap(bt_map_ok(fd, 2 * BT_CHUNK, rw, 0), 2 * BT_CHUNK);
	bt_unmap(bt_map_ok(fd, BT_PAGE, rw, 2 * BT_CHUNK - BT_PAGE), BT_PAGE);
}

static void test_device_and_misc(void **state)
{
	char name[BELUGA_NAME_MAX];
	int fd = new_region(2 * BT_CHUNK, name);
	char *p, *q;

	(void)state;
	map_fails(bt_dev, BT_CHUNK, PROT_READ, MAP_SHARED, 0, ENODEV, 0);
	p = bt_map_ok(fd, BT_CHUNK, PROT_READ | PROT_WRITE, 0);
	p[0] = 1;
	assert_int_equal(msync(p, BT_CHUNK, MS_SYNC), 0);
	/* VM_DONTEXPAND: growing fails (the kernel says EFAULT). */
	q = mremap(p, BT_CHUNK, 2 * BT_CHUNK, MREMAP_MAYMOVE);
	assert_true(q == MAP_FAILED);
	assert_int_equal(errno, EFAULT);
	assert_int_equal(p[0], 1);
}

static void test_rdonly_fd(void **state)
{
	char name[BELUGA_NAME_MAX];
	char *w, *r;
	int fd = new_region(BT_CHUNK, name), ro;

	(void)state;
	w = bt_map_ok(fd, BT_CHUNK, PROT_READ | PROT_WRITE, 0);
	w[100] = 'b';
	ro = bt_open_ok(bt_dev, name, BELUGA_OPEN_RDONLY, NULL);
	map_fails(ro, BT_CHUNK, PROT_READ | PROT_WRITE, MAP_SHARED, 0,
		  EACCES, 0);
	map_fails(ro, BT_CHUNK, PROT_WRITE, MAP_SHARED, 0, EACCES, 0);
	r = bt_map_ok(ro, BT_CHUNK, PROT_READ, 0);
	assert_int_equal(r[100], 'b');
	w[101] = 'c';
	assert_int_equal(r[101], 'c');
	/* The read-only mapping must not be upgradable later. */
	assert_int_equal(mprotect(r, BT_CHUNK, PROT_READ | PROT_WRITE), -1);
	assert_int_equal(errno, EACCES);
}

static void test_aligned_address(void **state)
{
	char name[BELUGA_NAME_MAX];
	int fd = new_region(4 * BT_CHUNK, name);
	int rw = PROT_READ | PROT_WRITE;
	static const uint64_t lens[] = { BT_PAGE, BT_CHUNK, 3 * BT_CHUNK,
					 4 * BT_CHUNK };

	(void)state;
	/* Several mappings in a row: each is aligned, not just the first. */
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			char *p = bt_map_ok(fd, lens[i], rw, 0);

			assert_int_equal((uintptr_t)p % BT_CHUNK, 0);
		}
	}
	{
		char *p = bt_map_ok(fd, 2 * BT_CHUNK, rw, BT_CHUNK);

		assert_int_equal((uintptr_t)p % BT_CHUNK, 0);
		p = bt_map_ok(fd, BT_PAGE, rw, BT_PAGE);
		/* Congruent to the offset, so a PMD fits where it can. */
		assert_int_equal((uintptr_t)p % BT_CHUNK, BT_PAGE);
	}
}

static void test_map_fixed(void **state)
{
	char name[BELUGA_NAME_MAX];
	int fd = new_region(2 * BT_CHUNK, name);
	int rw = PROT_READ | PROT_WRITE;
	char *hole, *base, *p;

	(void)state;
	/* Reserve 8 MiB so the fixed addresses are ours to use. */
	hole = mmap(NULL, 8 * BT_MIB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	assert_true(hole != MAP_FAILED);
	bt_track_map(hole, 8 * BT_MIB);
	base = (char *)(((uintptr_t)hole + BT_CHUNK - 1) & ~(BT_CHUNK - 1));
	p = mmap(base + BT_PAGE, BT_CHUNK, rw, MAP_SHARED | MAP_FIXED, fd, 0);
	if (p != MAP_FAILED)
		fail_msg("MAP_FIXED at +4 KiB for offset 0 succeeded");
	assert_int_equal(errno, EINVAL);
	p = mmap(base + BT_PAGE, BT_PAGE, rw, MAP_SHARED | MAP_FIXED, fd,
		 BT_PAGE);
	assert_true(p == base + BT_PAGE);	/* congruent: fine */
	p = mmap(base, BT_CHUNK, rw, MAP_SHARED | MAP_FIXED, fd, BT_CHUNK);
	assert_true(p == base);
	p[0] = 1;
}

static void test_two_mappings_coherent(void **state)
{
	char name[BELUGA_NAME_MAX];
	int fd = new_region(4 * BT_CHUNK, name);
	int rw = PROT_READ | PROT_WRITE;
	char *all, *part;

	(void)state;
	all = bt_map_ok(fd, 4 * BT_CHUNK, rw, 0);
	part = bt_map_ok(fd, 2 * BT_CHUNK, rw, 2 * BT_CHUNK);
	bt_fill(all, 4 * BT_CHUNK, 11);
	/* part maps region offset 4 MiB: the same bytes as all + 4 MiB. */
	assert_memory_equal(part, all + 2 * BT_CHUNK, 2 * BT_CHUNK);
	part[12345] = 'x';
	assert_int_equal(all[2 * BT_CHUNK + 12345], 'x');
}

static void expect_map_count(const char *name, uint32_t want)
{
	uint64_t deadline = bt_now_ms() + BT_DEADLINE_MS;
	struct beluga_region_stat st;

	for (;;) {
		assert_int_equal(bt_stat(bt_dev, name, &st), 0);
		if (st.map_count == want)
			return;
		if (bt_now_ms() > deadline)
			fail_msg("map_count %u, want %u", st.map_count, want);
		bt_sleep_ms(10);
	}
}

static void test_map_count(void **state)
{
	char name[BELUGA_NAME_MAX];
	int fd = new_region(2 * BT_CHUNK, name);
	int rw = PROT_READ | PROT_WRITE, status;
	char *a, *b;
	pid_t pid;

	(void)state;
	expect_map_count(name, 0);
	a = bt_map_ok(fd, 2 * BT_CHUNK, rw, 0);
	expect_map_count(name, 1);
	b = bt_map_ok(fd, BT_CHUNK, rw, 0);
	expect_map_count(name, 2);
	bt_unmap(b, BT_CHUNK);
	expect_map_count(name, 1);
	/* A 4 KiB hole splits the VMA in two: the count must balance. */
	a[0] = 1;
	assert_int_equal(munmap(a + BT_PAGE, BT_PAGE), 0);
	expect_map_count(name, 2);
	/* fork copies the VMAs into the child. */
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	expect_map_count(name, 4);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	expect_map_count(name, 2);
	bt_unmap(a, 2 * BT_CHUNK);	/* munmap over the hole is fine */
	expect_map_count(name, 0);
}

#define T(fn) cmocka_unit_test_teardown(fn, bt_cleanup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_private_einval), T(test_beyond_size),
		T(test_device_and_misc), T(test_rdonly_fd),
		T(test_aligned_address), T(test_map_fixed),
		T(test_two_mappings_coherent), T(test_map_count),
	};

	return bt_main("drv_mmap", tests, sizeof(tests) / sizeof(tests[0]),
		       bt_group_setup, bt_group_teardown);
}
