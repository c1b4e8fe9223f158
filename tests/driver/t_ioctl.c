// SPDX-License-Identifier: Apache-2.0
/*
 * t_ioctl.c - every Beluga ioctl: success path and each errno path.
 *
 * Covers: struct layouts identical for 32/64-bit (compile time) and the size
 * encoded in each command; INFO; SOURCE_INFO (incl. ENOENT past the end);
 * REGION_CREATE (flags, padding, reserved, mode, source selection, sizes
 * incl. overflowing ones and ENOSPC, names of length 0/63/64, every byte
 * value 0x01..0xff (only ASCII [A-Za-z0-9._-] passes), no NUL, bytes after
 * the NUL, EEXIST, ephemeral regions, CLOEXEC, EFAULT with
 * no region or fd leaked when the result cannot be copied out);
 * REGION_OPEN; REGION_DESTROY (shm_unlink semantics); REGION_STAT;
 * REGION_LIST (count-only, small capacity, huge capacity, order);
 * REGION_SETATTR; REGION_FD_STAT and REGION_LAYOUT on a region fd; ENOTTY
 * for unknown commands on the device and on a region fd.
 * Permission errnos (EACCES/EPERM) are in t_perm.c.
 */
#define _GNU_SOURCE
#include "bt_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * i386 aligns __u64 to 4 bytes: the layouts match only if every __u64 sits
 * at a multiple of 8 and every size is a multiple of 8.
 */
#define BT_SIZE(type, size) \
	_Static_assert(sizeof(struct type) == (size), #type " size")
#define BT_AL8(type, field) \
	_Static_assert(offsetof(struct type, field) % 8 == 0, #type "." #field)
BT_SIZE(beluga_info, 112);
BT_AL8(beluga_info, features);
BT_AL8(beluga_info, reserved);
BT_SIZE(beluga_source_info, 64);
BT_AL8(beluga_source_info, total_bytes);
BT_SIZE(beluga_region_create, 136);
BT_AL8(beluga_region_create, size);
BT_AL8(beluga_region_create, id);
BT_SIZE(beluga_region_open, 112);
BT_AL8(beluga_region_open, id);
BT_SIZE(beluga_region_name, 104);
BT_SIZE(beluga_region_stat, 152);
BT_AL8(beluga_region_stat, id);
BT_AL8(beluga_region_stat, size);
BT_SIZE(beluga_region_list, 56);
BT_AL8(beluga_region_list, entries);
BT_SIZE(beluga_region_setattr, 112);
BT_SIZE(beluga_region_layout, 64);
BT_AL8(beluga_region_layout, chunk_size);

static void *ro_page;		/* PROT_READ: copy_to_user must fail */
static void *no_page;		/* PROT_NONE: copy_from_user must fail */

static int group_setup(void **state)
{
	if (bt_group_setup(state))
		return 1;
	ro_page = mmap(NULL, BT_PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	no_page = mmap(NULL, BT_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	return ro_page == MAP_FAILED || no_page == MAP_FAILED;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* ioctl @cmd on a copy of @base with @len bytes at @off set to 0xff. */
static int ioctl_poked(int fd, unsigned long cmd, const void *base,
		       size_t size, size_t off, size_t len)
{
	unsigned char buf[512];
	int ret;

	assert_true(size <= sizeof(buf) && off + len <= size);
	memcpy(buf, base, size);
	memset(buf + off, 0xff, len);
	ret = bt_ioctl(fd, cmd, buf);
	/* A create that wrongly succeeded must not leak into later tests. */
	if (!ret && cmd == BELUGA_IOC_REGION_CREATE) {
		struct beluga_region_create *c = (void *)buf;

		bt_track_fd(c->fd);
		if (c->name[0])
			bt_track_name(c->name);
	}
	return ret;
}

#define EXPECT_FIELD_EINVAL(fd, cmd, s, field)				\
	assert_int_equal(ioctl_poked(fd, cmd, &(s), sizeof(s),		\
				     offsetof(typeof(s), field),	\
				     sizeof((s).field)), -EINVAL)

/* Every reserved word, one at a time. */
#define EXPECT_RESERVED_EINVAL(fd, cmd, s)				\
	for (size_t r_ = 0; r_ < sizeof((s).reserved) /			\
			     sizeof((s).reserved[0]); r_++)		\
		assert_int_equal(ioctl_poked(fd, cmd, &(s), sizeof(s),	\
			offsetof(typeof(s), reserved) +			\
			r_ * sizeof((s).reserved[0]),			\
			sizeof((s).reserved[0])), -EINVAL)

/* The three classic bad pointers: NULL, unmapped, and read-only. */
static void expect_efault(int fd, unsigned long cmd, bool writes_back)
{
	assert_int_equal(bt_ioctl(fd, cmd, NULL), -EFAULT);
	assert_int_equal(bt_ioctl(fd, cmd, no_page), -EFAULT);
	if (writes_back)
		assert_int_equal(bt_ioctl(fd, cmd, ro_page), -EFAULT);
}

static void test_cmd_sizes(void **state)
{
	(void)state;
	assert_int_equal(_IOC_SIZE(BELUGA_IOC_INFO), sizeof(struct beluga_info));
	assert_int_equal(_IOC_SIZE(BELUGA_IOC_REGION_CREATE),
			 sizeof(struct beluga_region_create));
	assert_int_equal(_IOC_SIZE(BELUGA_IOC_REGION_LAYOUT),
			 sizeof(struct beluga_region_layout));
	assert_int_equal(_IOC_TYPE(BELUGA_IOC_REGION_FD_STAT), BELUGA_IOC_MAGIC);
}

static void test_info(void **state)
{
	struct beluga_info info;
	uint64_t need = BELUGA_FEAT_NODE_SOURCES | BELUGA_FEAT_EPHEMERAL |
			BELUGA_FEAT_PMD_MAPPINGS | BELUGA_FEAT_LONGTERM_PIN;

	(void)state;
	bt_info_ok(bt_dev, &info);
	assert_int_equal(info.abi_version >> 16, BELUGA_ABI_MAJOR);
	assert_true(info.abi_version >= BELUGA_ABI_CURRENT);
	assert_true(info.min_abi_version <= BELUGA_ABI_CURRENT);
	assert_int_equal(info.features & need, need);
	assert_int_equal(info.chunk_size, BELUGA_CHUNK_SIZE);
	assert_true(info.total_bytes > 0);
	assert_int_equal(info.total_bytes % BT_CHUNK, 0);
	assert_true(info.free_bytes <= info.total_bytes);
	assert_int_equal(info.free_bytes % BT_CHUNK, 0);
	assert_true(info.nr_sources >= 1);
	assert_int_equal(info.flags, 0);
	assert_int_equal(info.__pad, 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(info.reserved[i], 0);
}

static void test_info_errors(void **state)
{
	struct beluga_info info = { 0 };

	(void)state;
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_INFO, info, flags);
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_INFO, info, __pad);
	EXPECT_RESERVED_EINVAL(bt_dev, BELUGA_IOC_INFO, info);
	expect_efault(bt_dev, BELUGA_IOC_INFO, true);
}

static void test_source_info(void **state)
{
	struct beluga_source_info si;
	struct beluga_info info;
	uint64_t total = 0, free_b = 0;

	(void)state;
	bt_info_ok(bt_dev, &info);
	for (uint32_t i = 0; i < info.nr_sources; i++) {
		bt_source_ok(bt_dev, i, &si);
		assert_int_equal(si.index, i);
		assert_int_equal(si.kind, BELUGA_SOURCE_NODE);
		assert_true(si.node >= 0);
		assert_int_equal(si.flags & ~BELUGA_SOURCE_F_HAS_CPUS, 0);
		assert_true(si.free_bytes <= si.total_bytes);
		assert_int_equal(si.total_bytes % BT_CHUNK, 0);
		total += si.total_bytes;
		free_b += si.free_bytes;
	}
	assert_int_equal(total, info.total_bytes);
	assert_int_equal(free_b, info.free_bytes);

	memset(&si, 0, sizeof(si));
	si.index = info.nr_sources;
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_SOURCE_INFO, &si), -ENOENT);
	si.index = UINT32_MAX;
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_SOURCE_INFO, &si), -ENOENT);
}

static void test_source_info_errors(void **state)
{
	struct beluga_source_info si = { 0 };

	(void)state;
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_SOURCE_INFO, si, flags);
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_SOURCE_INFO, si, kind);
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_SOURCE_INFO, si, node);
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_SOURCE_INFO, si, total_bytes);
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_SOURCE_INFO, si, free_bytes);
	EXPECT_RESERVED_EINVAL(bt_dev, BELUGA_IOC_SOURCE_INFO, si);
	expect_efault(bt_dev, BELUGA_IOC_SOURCE_INFO, true);
}

static void fill_create(struct beluga_region_create *c, const char *name,
			uint64_t size)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->size = size;
	c->mode = 0600;
	c->source_kind = BELUGA_SOURCE_ANY;
	c->source_index = -1;
}

/* CREATE must fail with @err, and must not change the pool. */
static void create_fails(struct beluga_region_create *c, int err)
{
	struct beluga_info before, after;
	int ret;

	bt_info_ok(bt_dev, &before);
	ret = bt_ioctl(bt_dev, BELUGA_IOC_REGION_CREATE, c);
	if (!ret) {
		bt_track_fd(c->fd);
		if (c->name[0])
			bt_track_name(c->name);
	}
	if (ret != -err)
		fail_msg("create '%.64s' size %" PRIu64 " flags %#x: got %s, want %s",
			 c->name, (uint64_t)c->size, c->flags,
			 ret ? strerror(-ret) : "success", strerror(err));
	bt_info_ok(bt_dev, &after);
	assert_int_equal(after.nr_regions, before.nr_regions);
	assert_int_equal(after.free_bytes, before.free_bytes);
}

static void test_create_basic(void **state)
{
	struct beluga_info before, after;
	struct beluga_region_stat st, fst;
	char name[BELUGA_NAME_MAX];
	uint64_t id;
	int fd;

	(void)state;
	bt_info_ok(bt_dev, &before);
	bt_name(name, "basic");
	fd = bt_create_ok(bt_dev, name, 2 * BT_CHUNK, 0640, &id);
	assert_true(id > 0);
	assert_true(fcntl(fd, F_GETFD) >= 0);
	assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
	bt_info_ok(bt_dev, &after);
	assert_int_equal(after.free_bytes, before.free_bytes - 2 * BT_CHUNK);
	assert_int_equal(after.nr_regions, before.nr_regions + 1);

	assert_int_equal(bt_stat(bt_dev, name, &st), 0);
	assert_string_equal(st.name, name);
	assert_int_equal(st.flags, 0);
	assert_int_equal(st.mode, 0640);
	assert_int_equal(st.uid, getuid());
	assert_int_equal(st.gid, getgid());
	assert_int_equal(st.source_kind, BELUGA_SOURCE_NODE);
	assert_int_equal(st.nr_chunks, 2);
	assert_int_equal(st.id, id);
	assert_int_equal(st.size, 2 * BT_CHUNK);
	assert_int_equal(st.open_count, 1);
	assert_int_equal(st.map_count, 0);
	assert_int_equal(st.pinned_chunks, 0);
	assert_int_equal(st.__pad, 0);

	assert_int_equal(bt_fd_stat(fd, &fst), 0);
	assert_memory_equal(&st, &fst, sizeof(st));

	bt_destroy_ok(bt_dev, name);
	bt_close(fd);
	bt_wait_pool_ok(bt_dev, before.free_bytes);
}

static void test_create_cloexec(void **state)
{
	char name[BELUGA_NAME_MAX];
	int fd;

	(void)state;
	bt_name(name, "cloexec");
	fd = bt_create(bt_dev, name, BT_CHUNK, 0600, BELUGA_CREATE_CLOEXEC, NULL);
	assert_true(fd >= 0);
	bt_track_name(name);
	bt_track_fd(fd);
	assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	fd = bt_open_ok(bt_dev, name, BELUGA_OPEN_CLOEXEC, NULL);
	assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	fd = bt_open_ok(bt_dev, name, 0, NULL);
	assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
}

static void test_create_flag_errors(void **state)
{
	struct beluga_region_create c;
	struct beluga_info info;
	char name[BELUGA_NAME_MAX];

	(void)state;
	bt_info_ok(bt_dev, &info);
	bt_name(name, "cflags");
	fill_create(&c, name, BT_CHUNK);
	c.flags = 1U << 2;
	create_fails(&c, EINVAL);
	c.flags = 1U << 31;
	create_fails(&c, EINVAL);
	fill_create(&c, name, BT_CHUNK);
	c.mode = 01000;
	create_fails(&c, EINVAL);
	c.mode = 04755;
	create_fails(&c, EINVAL);
	fill_create(&c, name, BT_CHUNK);
	c.source_kind = BELUGA_SOURCE_RANGE;	/* none in part 1 */
	create_fails(&c, EINVAL);
	c.source_kind = 99;
	create_fails(&c, EINVAL);
	fill_create(&c, name, BT_CHUNK);
	c.source_index = (int32_t)info.nr_sources;
	create_fails(&c, EINVAL);
	c.source_index = -2;
	create_fails(&c, EINVAL);
	c.source_index = INT32_MIN;
	create_fails(&c, EINVAL);
	fill_create(&c, name, BT_CHUNK);
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_REGION_CREATE, c, __pad);
	EXPECT_RESERVED_EINVAL(bt_dev, BELUGA_IOC_REGION_CREATE, c);
	/* Output-only fields must be zero on input too. */
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_REGION_CREATE, c, fd);
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_REGION_CREATE, c, id);
}

static void test_create_sizes(void **state)
{
	static const uint64_t bad[] = {
		0, BT_PAGE, BT_CHUNK - BT_PAGE, BT_CHUNK + BT_PAGE,
		BT_CHUNK + 1, UINT64_MAX,
	};
	struct beluga_region_create c;
	char name[BELUGA_NAME_MAX];
	uint64_t free_b = bt_free_ok(bt_dev);
	uint64_t nospc[] = {
		free_b + BT_CHUNK, 1ULL << 63, UINT64_MAX & ~(BT_CHUNK - 1),
		(1ULL << 32) * BT_CHUNK,	/* chunk count overflows 32 bits */
		((1ULL << 32) + 1) * BT_CHUNK,	/* ... and wraps to 1 chunk */
	};

	(void)state;
	bt_name(name, "sizes");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fill_create(&c, name, bad[i]);
		create_fails(&c, EINVAL);
	}
	for (size_t i = 0; i < sizeof(nospc) / sizeof(nospc[0]); i++) {
		fill_create(&c, name, nospc[i]);
		create_fails(&c, ENOSPC);
	}
}

/* The whole pool can be taken, and then not one chunk more. */
static void test_create_whole_pool(void **state)
{
	char name[BELUGA_NAME_MAX], other[BELUGA_NAME_MAX];
	struct beluga_region_create c;
	uint64_t free_b = bt_free_ok(bt_dev);
	int fd;

	(void)state;
	bt_name(name, "whole");
	fd = bt_create_ok(bt_dev, name, free_b, 0600, NULL);
	assert_int_equal(bt_free_ok(bt_dev), 0);
	bt_name(other, "none-left");
	fill_create(&c, other, BT_CHUNK);
	create_fails(&c, ENOSPC);
	bt_destroy_ok(bt_dev, name);
	bt_close(fd);
	bt_wait_pool_ok(bt_dev, free_b);
}

static void test_create_names(void **state)
{
	static const char *const bad[] = {
		"", "a/b", "a b", "tab\tx", "nl\n", "star*", "semi;", "pct%",
		"\xc3\xa9t\xc3\xa9", "\x7f", "colon:x", "back\\slash",
	};
	struct beluga_region_create c;
	char name[BELUGA_NAME_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fill_create(&c, bad[i], BT_CHUNK);
		create_fails(&c, EINVAL);
	}
	/* 64 name bytes and no NUL. */
	fill_create(&c, "", BT_CHUNK);
	memset(c.name, 'a', sizeof(c.name));
	create_fails(&c, EINVAL);
	/* Bytes after the NUL must be zero. */
	fill_create(&c, "ok", BT_CHUNK);
	c.name[10] = 'x';
	create_fails(&c, EINVAL);
	/* Every allowed character, and exactly 63 bytes. */
	snprintf(name, sizeof(name), "AZaz09._-%d", (int)getpid());
	bt_create_ok(bt_dev, name, BT_CHUNK, 0600, NULL);
	snprintf(name, sizeof(name), "bt63-%d-", (int)getpid());
	memset(name + strlen(name), 'q', 63 - strlen(name));
	name[63] = '\0';
	assert_int_equal(strlen(name), 63);
	bt_create_ok(bt_dev, name, BT_CHUNK, 0600, NULL);
}

/*
 * Every byte value 0x01..0xff, alone and inside a name: only
 * [A-Za-z0-9._-] is accepted, ASCII only (the kernel's isalnum() also
 * accepts the Latin-1 letters 0xc0..0xff).  STAT checks the name before the
 * lookup (EINVAL for a bad name, ENOENT for a good absent one); CREATE with
 * the byte inside a unique name fails with EINVAL or creates the region.
 */
static void test_name_bytes(void **state)
{
	static const char allowed[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
	struct beluga_region_create c;
	struct beluga_region_stat st;
	char name[BELUGA_NAME_MAX];
	int nr_valid = 0;

	(void)state;
	for (int b = 1; b <= 0xff; b++) {
		bool valid = memchr(allowed, b, sizeof(allowed) - 1) != NULL;
		const char alone[2] = { (char)b, 0 };
		int ret, fd;

		snprintf(name, sizeof(name), "bt-byte-%d-%c-x", (int)getpid(),
			 (char)b);
		ret = bt_stat(bt_dev, alone, &st);
		if (ret != (valid ? -ENOENT : -EINVAL))
			fail_msg("stat of the name 0x%02x: %s, want %s", b,
				 strerror(-ret), valid ? "ENOENT" : "EINVAL");
		ret = bt_stat(bt_dev, name, &st);
		if (ret != (valid ? -ENOENT : -EINVAL))
			fail_msg("stat of a name holding 0x%02x: %s, want %s", b,
				 strerror(-ret), valid ? "ENOENT" : "EINVAL");
		fill_create(&c, name, BT_CHUNK);
		if (!valid) {
			create_fails(&c, EINVAL);
			continue;
		}
		nr_valid++;
		fd = bt_create_ok(bt_dev, name, BT_CHUNK, 0600, NULL);
		assert_int_equal(bt_stat(bt_dev, name, &st), 0);
		assert_string_equal(st.name, name);
		bt_destroy_ok(bt_dev, name);
		bt_close(fd);
	}
	assert_int_equal(nr_valid, 26 + 26 + 10 + 3);
}

static void test_create_eexist(void **state)
{
	struct beluga_region_create c;
	char name[BELUGA_NAME_MAX];
	uint64_t id1, id2;
	int fd;

	(void)state;
	bt_name(name, "exist");
	fd = bt_create_ok(bt_dev, name, BT_CHUNK, 0600, &id1);
	fill_create(&c, name, BT_CHUNK);
	create_fails(&c, EEXIST);
	fill_create(&c, name, 2 * BT_CHUNK);	/* other size: same answer */
	create_fails(&c, EEXIST);
	/* Destroy frees the name at once, even while the region is open. */
	bt_destroy_ok(bt_dev, name);
	bt_create_ok(bt_dev, name, BT_CHUNK, 0600, &id2);
	assert_int_not_equal(id1, id2);
	(void)fd;
}

static void test_create_ephemeral(void **state)
{
	struct beluga_info before, during;
	struct beluga_region_stat st;
	uint64_t id;
	int fd;

	(void)state;
	bt_info_ok(bt_dev, &before);
	fd = bt_create(bt_dev, NULL, 2 * BT_CHUNK, 0600, BELUGA_CREATE_EPHEMERAL,
		       &id);
	assert_true(fd >= 0);
	bt_track_fd(fd);
	bt_info_ok(bt_dev, &during);
	assert_int_equal(during.nr_regions, before.nr_regions + 1);
	assert_int_equal(during.free_bytes, before.free_bytes - 2 * BT_CHUNK);
	assert_int_equal(bt_fd_stat(fd, &st), 0);
	assert_int_equal(st.flags & BELUGA_REGION_F_EPHEMERAL,
			 BELUGA_REGION_F_EPHEMERAL);
	assert_int_equal(st.name[0], '\0');
	assert_int_equal(st.id, id);
	/* Freed on last close, with no destroy. */
	bt_close(fd);
	bt_wait_pool_ok(bt_dev, before.free_bytes);
	bt_info_ok(bt_dev, &during);
	assert_int_equal(during.nr_regions, before.nr_regions);
}

/* A result that cannot be copied out must not leave a region or an fd. */
static void test_create_efault(void **state)
{
	struct beluga_region_create c, *ro;
	struct beluga_region_stat st;
	struct beluga_info before, after;
	char name[BELUGA_NAME_MAX];
	int fds = count_fds();

	(void)state;
	expect_efault(bt_dev, BELUGA_IOC_REGION_CREATE, false);
	/* A valid request on a read-only page: only the copy-out fails. */
	bt_info_ok(bt_dev, &before);
	ro = mmap(NULL, BT_PAGE, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(ro != MAP_FAILED);
	bt_track_map(ro, BT_PAGE);
	bt_name(name, "efault");
	bt_track_name(name);
	fill_create(&c, name, BT_CHUNK);
	memcpy(ro, &c, sizeof(c));
	assert_int_equal(mprotect(ro, BT_PAGE, PROT_READ), 0);
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_REGION_CREATE, ro), -EFAULT);
	assert_int_equal(bt_stat(bt_dev, name, &st), -ENOENT);
	bt_wait_pool_ok(bt_dev, before.free_bytes);
	bt_info_ok(bt_dev, &after);
	assert_int_equal(after.nr_regions, before.nr_regions);
	assert_int_equal(count_fds(), fds);
}

static void test_open(void **state)
{
	struct beluga_region_open o;
	struct beluga_region_stat st;
	char name[BELUGA_NAME_MAX], missing[BELUGA_NAME_MAX];
	uint64_t id, id2;
	int fd;

	(void)state;
	bt_name(name, "open");
	bt_create_ok(bt_dev, name, BT_CHUNK, 0600, &id);
	fd = bt_open_ok(bt_dev, name, 0, &id2);
	assert_int_equal(id, id2);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
	fd = bt_open_ok(bt_dev, name, BELUGA_OPEN_RDONLY, &id2);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	assert_int_equal(bt_stat(bt_dev, name, &st), 0);
	assert_int_equal(st.open_count, 3);

	memset(&o, 0, sizeof(o));
	snprintf(o.name, sizeof(o.name), "%s", name);
	o.flags = 1U << 2;
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_REGION_OPEN, &o), -EINVAL);
	o.flags = 0;
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_REGION_OPEN, o, fd);
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_REGION_OPEN, o, id);
	EXPECT_RESERVED_EINVAL(bt_dev, BELUGA_IOC_REGION_OPEN, o);
	o.name[60] = 'x';	/* garbage after the NUL */
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_REGION_OPEN, &o), -EINVAL);
	memset(o.name, 'a', sizeof(o.name));
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_REGION_OPEN, &o), -EINVAL);
	assert_int_equal(bt_open(bt_dev, "", 0, NULL), -EINVAL);
	assert_int_equal(bt_open(bt_dev, "bad/name", 0, NULL), -EINVAL);
	bt_name(missing, "missing");
	assert_int_equal(bt_open(bt_dev, missing, 0, NULL), -ENOENT);
	expect_efault(bt_dev, BELUGA_IOC_REGION_OPEN, false);
	/* Destroyed: the name is gone even though fds are still open. */
	bt_destroy_ok(bt_dev, name);
	assert_int_equal(bt_open(bt_dev, name, 0, NULL), -ENOENT);
	assert_int_equal(bt_fd_stat(fd, &st), 0);
	assert_int_equal(st.flags & BELUGA_REGION_F_DESTROYED,
			 BELUGA_REGION_F_DESTROYED);
}

static void test_destroy(void **state)
{
	struct beluga_region_name d;
	struct beluga_region_stat st;
	char name[BELUGA_NAME_MAX];
	uint64_t free_b = bt_free_ok(bt_dev);
	int fd;
	char *p;

	(void)state;
	bt_name(name, "destroy");
	fd = bt_create_ok(bt_dev, name, BT_CHUNK, 0600, NULL);
	p = bt_map_ok(fd, BT_CHUNK, PROT_READ | PROT_WRITE, 0);
	p[0] = 42;

	memset(&d, 0, sizeof(d));
	snprintf(d.name, sizeof(d.name), "%s", name);
	d.flags = 1;
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_REGION_DESTROY, &d), -EINVAL);
	d.flags = 0;
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_REGION_DESTROY, d, __pad);
	EXPECT_RESERVED_EINVAL(bt_dev, BELUGA_IOC_REGION_DESTROY, d);
	assert_int_equal(bt_destroy(bt_dev, ""), -EINVAL);
	assert_int_equal(bt_destroy(bt_dev, "no such"), -EINVAL);
	assert_int_equal(bt_destroy(bt_dev, "bt-never-created"), -ENOENT);
	expect_efault(bt_dev, BELUGA_IOC_REGION_DESTROY, false);

	/* shm_unlink semantics: name gone, memory kept while in use. */
	bt_destroy_ok(bt_dev, name);
	assert_int_equal(bt_destroy(bt_dev, name), -ENOENT);
	assert_int_equal(bt_stat(bt_dev, name, &st), -ENOENT);
	assert_int_equal(p[0], 42);
	assert_int_equal(bt_free_ok(bt_dev), free_b - BT_CHUNK);
	bt_close(fd);
	assert_int_equal(p[0], 42);	/* the mapping still holds it */
	assert_int_equal(bt_free_ok(bt_dev), free_b - BT_CHUNK);
	bt_unmap(p, BT_CHUNK);
	bt_wait_pool_ok(bt_dev, free_b);
}

static void test_stat_errors(void **state)
{
	struct beluga_region_stat st;
	char name[BELUGA_NAME_MAX];

	(void)state;
	bt_name(name, "stat");
	bt_create_ok(bt_dev, name, BT_CHUNK, 0600, NULL);
	memset(&st, 0, sizeof(st));
	snprintf(st.name, sizeof(st.name), "%s", name);
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_REGION_STAT, &st), 0);
	memset(&st, 0, sizeof(st));
	snprintf(st.name, sizeof(st.name), "%s", name);
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_REGION_STAT, st, flags);
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_REGION_STAT, st, mode);
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_REGION_STAT, st, uid);
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_REGION_STAT, st, id);
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_REGION_STAT, st, size);
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_REGION_STAT, st, open_count);
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_REGION_STAT, st, __pad);
	EXPECT_RESERVED_EINVAL(bt_dev, BELUGA_IOC_REGION_STAT, st);
	assert_int_equal(bt_stat(bt_dev, "", &st), -EINVAL);
	assert_int_equal(bt_stat(bt_dev, "x y", &st), -EINVAL);
	assert_int_equal(bt_stat(bt_dev, "bt-never-created", &st), -ENOENT);
	expect_efault(bt_dev, BELUGA_IOC_REGION_STAT, false);
}

static int list(struct beluga_region_stat *e, uint32_t cap, uint32_t *count)
{
	struct beluga_region_list l;
	int ret;

	memset(&l, 0, sizeof(l));
	l.entries = (uintptr_t)e;
	l.capacity = cap;
	ret = bt_ioctl(bt_dev, BELUGA_IOC_REGION_LIST, &l);
	*count = l.count;
	return ret;
}

static void test_list(void **state)
{
	struct beluga_region_stat *e, *big;
	struct beluga_region_list l;
	char names[3][BELUGA_NAME_MAX];
	uint32_t count, n0, found = 0;
	uint64_t ids[3];

	(void)state;
	assert_int_equal(list(NULL, 0, &n0), 0);
	for (int i = 0; i < 3; i++) {
		bt_name(names[i], "list");
		bt_create_ok(bt_dev, names[i], BT_CHUNK, 0600, &ids[i]);
	}
	assert_int_equal(list(NULL, 0, &count), 0);
	assert_int_equal(count, n0 + 3);

	/* Capacity 1: one entry written, the next one untouched. */
	e = calloc(count + 2, sizeof(*e));
	assert_non_null(e);
	memset(e, 0x5a, (count + 2) * sizeof(*e));
	assert_int_equal(list(e, 1, &count), 0);
	assert_int_equal(count, n0 + 3);
	assert_int_equal(e[1].name[0], 0x5a);
	assert_int_equal(e[1].id, 0x5a5a5a5a5a5a5a5aULL);

	assert_int_equal(list(e, count + 2, &count), 0);
	for (uint32_t i = 0; i < count; i++) {
		if (i)
			assert_true(e[i].id > e[i - 1].id);
		for (int k = 0; k < 3; k++) {
			if (e[i].id != ids[k])
				continue;
			assert_string_equal(e[i].name, names[k]);
			assert_int_equal(e[i].size, BT_CHUNK);
			assert_int_equal(e[i].open_count, 1);
			found++;
		}
	}
	assert_int_equal(found, 3);
	assert_int_equal(e[count].name[0], 0x5a);

	/* A huge capacity is fine when the regions fit. */
	big = calloc(count + 8, sizeof(*big));
	assert_non_null(big);
	assert_int_equal(list(big, UINT32_MAX, &n0), 0);
	assert_int_equal(n0, count);
	free(big);

	assert_int_equal(list(NULL, 4, &n0), -EINVAL);	/* documented */
	assert_int_equal(list(no_page, 4, &n0), -EFAULT);
	assert_int_equal(list(ro_page, 4, &n0), -EFAULT);
	memset(&l, 0, sizeof(l));
	l.entries = (uintptr_t)e;
	l.capacity = 1;
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_REGION_LIST, l, flags);
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_REGION_LIST, l, count);
	EXPECT_FIELD_EINVAL(bt_dev, BELUGA_IOC_REGION_LIST, l, __pad);
	EXPECT_RESERVED_EINVAL(bt_dev, BELUGA_IOC_REGION_LIST, l);
	expect_efault(bt_dev, BELUGA_IOC_REGION_LIST, true);
	free(e);
}

static int setattr(const char *name, uint32_t flags, uint32_t mode,
		   uint32_t uid, uint32_t gid)
{
	struct beluga_region_setattr a;

	memset(&a, 0, sizeof(a));
	snprintf(a.name, sizeof(a.name), "%s", name);
	a.flags = flags;
	a.mode = mode;
	a.uid = uid;
	a.gid = gid;
	return bt_ioctl(bt_dev, BELUGA_IOC_REGION_SETATTR, &a);
}

static void test_setattr(void **state)
{
	struct beluga_region_setattr a;
	struct beluga_region_stat st;
	char name[BELUGA_NAME_MAX];

	(void)state;
	bt_name(name, "setattr");
	bt_create_ok(bt_dev, name, BT_CHUNK, 0600, NULL);
	assert_int_equal(setattr(name, BELUGA_SETATTR_MODE, 0640, 0, 0), 0);
	assert_int_equal(bt_stat(bt_dev, name, &st), 0);
	assert_int_equal(st.mode, 0640);
	assert_int_equal(st.uid, 0);
	assert_int_equal(setattr(name, BELUGA_SETATTR_UID | BELUGA_SETATTR_GID,
				 0, 1234, 4321), 0);
	assert_int_equal(bt_stat(bt_dev, name, &st), 0);
	assert_int_equal(st.mode, 0640);
	assert_int_equal(st.uid, 1234);
	assert_int_equal(st.gid, 4321);
	assert_int_equal(setattr(name, BELUGA_SETATTR_FLAGS_ALL, 0604, 0, 0),
			 0);
	assert_int_equal(bt_stat(bt_dev, name, &st), 0);
	assert_int_equal(st.mode, 0604);
	assert_int_equal(st.uid, 0);
	assert_int_equal(st.gid, 0);
	/* A field whose flag is not set must be zero. */
	assert_int_equal(setattr(name, BELUGA_SETATTR_MODE, 0640, 7, 0),
			 -EINVAL);
	assert_int_equal(setattr(name, BELUGA_SETATTR_MODE, 0640, 0, 7),
			 -EINVAL);
	assert_int_equal(setattr(name, BELUGA_SETATTR_UID, 0640, 0, 0),
			 -EINVAL);
	assert_int_equal(bt_stat(bt_dev, name, &st), 0);
	assert_int_equal(st.mode, 0604);
	/* uid -1 is not a valid id in any namespace. */
	assert_int_equal(setattr(name, BELUGA_SETATTR_UID, 0, UINT32_MAX, 0),
			 -EINVAL);

	assert_int_equal(setattr(name, 0, 0600, 0, 0), -EINVAL);
	assert_int_equal(setattr(name, 1U << 3, 0600, 0, 0), -EINVAL);
	assert_int_equal(setattr(name, BELUGA_SETATTR_MODE, 01000, 0, 0),
			 -EINVAL);
	assert_int_equal(setattr(name, BELUGA_SETATTR_MODE, 0, 0, 0), 0);
	assert_int_equal(setattr("bt-never-created", BELUGA_SETATTR_MODE,
				 0600, 0, 0), -ENOENT);
	assert_int_equal(setattr("bad name", BELUGA_SETATTR_MODE, 0600, 0, 0),
			 -EINVAL);
	memset(&a, 0, sizeof(a));
	snprintf(a.name, sizeof(a.name), "%s", name);
	a.flags = BELUGA_SETATTR_MODE;
	EXPECT_RESERVED_EINVAL(bt_dev, BELUGA_IOC_REGION_SETATTR, a);
	expect_efault(bt_dev, BELUGA_IOC_REGION_SETATTR, false);
}

static void test_region_fd_ioctls(void **state)
{
	struct beluga_region_layout l;
	struct beluga_region_stat st;
	char name[BELUGA_NAME_MAX];
	int32_t nodes[8];
	int fd;

	(void)state;
	bt_name(name, "fdioc");
	fd = bt_create_ok(bt_dev, name, 4 * BT_CHUNK, 0600, NULL);
	memset(&st, 0, sizeof(st));
	EXPECT_FIELD_EINVAL(fd, BELUGA_IOC_REGION_FD_STAT, st, name);
	EXPECT_FIELD_EINVAL(fd, BELUGA_IOC_REGION_FD_STAT, st, flags);
	EXPECT_FIELD_EINVAL(fd, BELUGA_IOC_REGION_FD_STAT, st, id);
	EXPECT_FIELD_EINVAL(fd, BELUGA_IOC_REGION_FD_STAT, st, __pad);
	EXPECT_RESERVED_EINVAL(fd, BELUGA_IOC_REGION_FD_STAT, st);
	expect_efault(fd, BELUGA_IOC_REGION_FD_STAT, true);

	/* LAYOUT: count-only, short array (rest untouched), full. */
	assert_int_equal(bt_layout(fd, NULL, 0), 4);
	for (int i = 0; i < 8; i++)
		nodes[i] = -100;
	assert_int_equal(bt_layout(fd, nodes, 2), 4);
	assert_true(nodes[0] >= 0 && nodes[1] >= 0);
	assert_int_equal(nodes[2], -100);
	assert_int_equal(bt_layout(fd, nodes, 8), 4);
	assert_true(nodes[3] >= 0);
	assert_int_equal(nodes[4], -100);
	memset(&l, 0, sizeof(l));
	l.nodes = (uintptr_t)nodes;
	l.capacity = 8;
	assert_int_equal(bt_ioctl(fd, BELUGA_IOC_REGION_LAYOUT, &l), 0);
	assert_int_equal(l.chunk_size, BT_CHUNK);
	assert_int_equal(l.nr_chunks, 4);
	memset(&l, 0, sizeof(l));
	l.nodes = (uintptr_t)nodes;
	l.capacity = 8;
	EXPECT_FIELD_EINVAL(fd, BELUGA_IOC_REGION_LAYOUT, l, flags);
	EXPECT_FIELD_EINVAL(fd, BELUGA_IOC_REGION_LAYOUT, l, nr_chunks);
	EXPECT_FIELD_EINVAL(fd, BELUGA_IOC_REGION_LAYOUT, l, __pad);
	EXPECT_FIELD_EINVAL(fd, BELUGA_IOC_REGION_LAYOUT, l, chunk_size);
	EXPECT_RESERVED_EINVAL(fd, BELUGA_IOC_REGION_LAYOUT, l);
	l.nodes = 0;		/* capacity without an array: documented EINVAL */
	assert_int_equal(bt_ioctl(fd, BELUGA_IOC_REGION_LAYOUT, &l), -EINVAL);
	l.nodes = (uintptr_t)no_page;
	assert_int_equal(bt_ioctl(fd, BELUGA_IOC_REGION_LAYOUT, &l), -EFAULT);
	l.nodes = (uintptr_t)ro_page;
	assert_int_equal(bt_ioctl(fd, BELUGA_IOC_REGION_LAYOUT, &l), -EFAULT);
	expect_efault(fd, BELUGA_IOC_REGION_LAYOUT, true);
}

static void expect_enotty(int fd)
{
	char buf[256] = { 0 };

	assert_int_equal(bt_ioctl(fd, _IO(BELUGA_IOC_MAGIC, 0x3f), buf), -ENOTTY);
	assert_int_equal(bt_ioctl(fd, _IOWR(BELUGA_IOC_MAGIC, 0x7f, __u64), buf),
			 -ENOTTY);
	/* A known number with another size is another command. */
	assert_int_equal(bt_ioctl(fd, _IOWR(BELUGA_IOC_MAGIC, 0x00, __u64), buf),
			 -ENOTTY);
	assert_int_equal(bt_ioctl(fd, _IOWR(BELUGA_IOC_MAGIC, 0x40, __u64), buf),
			 -ENOTTY);
	assert_int_equal(bt_ioctl(fd, _IOR('x', 0x00, int), buf), -ENOTTY);
	assert_int_equal(bt_ioctl(fd, 0, buf), -ENOTTY);
}

static void test_enotty(void **state)
{
	char name[BELUGA_NAME_MAX];
	struct beluga_region_stat st;
	struct beluga_info info = { 0 };
	int fd;

	(void)state;
	expect_enotty(bt_dev);
	bt_name(name, "enotty");
	fd = bt_create_ok(bt_dev, name, BT_CHUNK, 0600, NULL);
	expect_enotty(fd);
	/* Device commands on a region fd and region commands on the device. */
	assert_int_equal(bt_ioctl(fd, BELUGA_IOC_INFO, &info), -ENOTTY);
	assert_int_equal(bt_stat(fd, name, &st), -ENOTTY);
	memset(&st, 0, sizeof(st));
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_REGION_FD_STAT, &st), -ENOTTY);
	assert_int_equal(bt_layout(bt_dev, NULL, 0), -ENOTTY);
}

#define T(fn) cmocka_unit_test_teardown(fn, bt_cleanup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_cmd_sizes), T(test_info), T(test_info_errors),
		T(test_source_info), T(test_source_info_errors),
		T(test_create_basic), T(test_create_cloexec),
		T(test_create_flag_errors), T(test_create_sizes),
		T(test_create_whole_pool), T(test_create_names),
		T(test_name_bytes),
		T(test_create_eexist), T(test_create_ephemeral),
		T(test_create_efault), T(test_open), T(test_destroy),
		T(test_stat_errors), T(test_list), T(test_setattr),
		T(test_region_fd_ioctls), T(test_enotty),
	};

	return bt_main("drv_ioctl", tests, sizeof(tests) / sizeof(tests[0]),
		       group_setup, bt_group_teardown);
}
