// SPDX-License-Identifier: Apache-2.0
/*
 * t_odirect.c - O_DIRECT I/O into and out of region mappings.
 *
 * O_DIRECT pins the user pages with GUP, so it fails on mappings GUP cannot
 * handle.  Loads brd (modprobe brd rd_nr=1 rd_size=16384: a 16 MiB
 * /dev/ram0), writes a pattern from a mapping to the disk with O_DIRECT,
 * reads it back with O_DIRECT into a second region's COLD mapping, compares,
 * and checks the disk content through an ordinary buffer as well.  Also an
 * unaligned-in-chunk 1 MiB transfer.  Skipped if brd is unavailable.
 */
#define _GNU_SOURCE
#include "bt_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RAM "/dev/ram0"
#define SIZE (2 * BT_CHUNK)

static int ram = -1, ram_err;

static int group_setup(void **state)
{
	if (bt_group_setup(state))
		return 1;
	if (access(RAM, F_OK) && system("modprobe brd rd_nr=1 rd_size=16384"))
		fprintf(stderr, "modprobe brd failed\n");
	ram = open(RAM, O_RDWR | O_DIRECT | O_CLOEXEC);
	ram_err = errno;
	return 0;
}

static int group_teardown(void **state)
{
	if (ram >= 0)
		close(ram);
	return bt_group_teardown(state);
}

static char *new_mapping(void)
{
	char name[BELUGA_NAME_MAX];
	int fd;

	bt_name(name, "odirect");
	fd = bt_create_ok(bt_dev, name, SIZE, 0600, NULL);
	return bt_map_ok(fd, SIZE, PROT_READ | PROT_WRITE, 0);
}

static void need_ram(void)
{
	if (ram < 0)
		bt_skip("%s: %s", RAM, strerror(ram_err));
}

static void test_roundtrip(void **state)
{
	char *src, *dst, *buf = NULL;

	(void)state;
	need_ram();
	src = new_mapping();
	dst = new_mapping();	/* never touched before the read */
	bt_fill(src, SIZE, 0x0d);
	assert_int_equal(pwrite(ram, src, SIZE, 0), SIZE);
	assert_int_equal(pread(ram, dst, SIZE, 0), SIZE);
	assert_int_equal(bt_check(dst, SIZE, 0x0d), UINT64_MAX);
	/* The data really went through the disk. */
	assert_int_equal(posix_memalign((void **)&buf, BT_PAGE, SIZE), 0);
	memset(buf, 0, SIZE);
	assert_int_equal(pread(ram, buf, SIZE, 0), SIZE);
	assert_int_equal(bt_check(buf, SIZE, 0x0d), UINT64_MAX);
	free(buf);
}

static void test_mid_chunk(void **state)
{
	const uint64_t off = BT_CHUNK - 512 * 1024, len = BT_MIB;
	char *src, *dst;

	(void)state;
	need_ram();
	src = new_mapping();
	dst = new_mapping();
	bt_fill(src, SIZE, 0x0e);
	/* Straddles the chunk boundary on both sides. */
	assert_int_equal(pwrite(ram, src + off, len, 8 * BT_MIB), (ssize_t)len);
	assert_int_equal(pread(ram, dst + off, len, 8 * BT_MIB), (ssize_t)len);
	assert_memory_equal(dst + off, src + off, len);
	assert_int_equal(bt_check_zero(dst, off), UINT64_MAX);
}

#define T(fn) cmocka_unit_test_teardown(fn, bt_cleanup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_roundtrip), T(test_mid_chunk),
	};

	return bt_main("drv_odirect", tests, sizeof(tests) / sizeof(tests[0]),
		       group_setup, group_teardown);
}
