// SPDX-License-Identifier: Apache-2.0
/*
 * t_perm.c - region permissions, checked against a really unprivileged user.
 *
 * CI runs as root, so every check runs in a forked child that drops to
 * uid/gid 65534 with no supplementary groups (and so no capabilities).
 * Covers: /dev/beluga is mode 0660 root:root and nobody cannot open it; with
 * the node's group set to 65534 (what an operator does for a "beluga"
 * group) nobody can; a 0600 root region -> EACCES (RDWR and RDONLY); a 0644
 * region: RDONLY open and PROT_READ mapping work, RDWR -> EACCES, PROT_WRITE
 * -> EACCES; group bits apply to the region's gid; 0666 lets the other user
 * write and root sees it; destroy and SETATTR of another user's region ->
 * EPERM; a non-root user creates, chmods and destroys its own region, owns
 * it (uid/gid 65534) but cannot chown it (EPERM); root (CAP_SYS_ADMIN,
 * CAP_DAC_OVERRIDE) can open and destroy the user's region.
 */
#define _GNU_SOURCE
#include "bt_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>


/* Let group 65534 open the device node, as an operator would. */
static void grant_device(void)
{
	assert_int_equal(bt_dev_node_chown(0, BT_NOBODY), 0);
}

/* --- what the child does: returns 0 or the errno it saw ----------------- */

struct job {
	const char *name;
	uint32_t open_flags;
	int prot;
	uint32_t mode;
	uint64_t off;		/* byte to write/read through a mapping */
	char byte;
};

static int child_open_dev(void *arg)
{
	int fd = bt_dev_open();

	(void)arg;
	return fd < 0 ? -fd : 0;
}

static int child_open(void *arg)
{
	struct job *j = arg;
	int d = bt_dev_open(), fd;
	char *p;

	if (d < 0)
		return 200;
	fd = bt_open(d, j->name, j->open_flags, NULL);
	if (fd < 0)
		return -fd;
	if (!j->prot)
		return 0;
	p = bt_map(fd, BT_CHUNK, j->prot, 0);
	if (p == MAP_FAILED)
		return errno;
	if (j->prot & PROT_WRITE)
		p[j->off] = j->byte;
	else if (p[j->off] != j->byte)
		return 201;
	return 0;
}

static int child_destroy(void *arg)
{
	struct job *j = arg;
	int d = bt_dev_open();

	return d < 0 ? 200 : -bt_destroy(d, j->name);
}

static int child_setattr(void *arg)
{
	struct job *j = arg;
	struct beluga_region_setattr a;
	int d = bt_dev_open();

	if (d < 0)
		return 200;
	memset(&a, 0, sizeof(a));
	snprintf(a.name, sizeof(a.name), "%s", j->name);
	a.flags = j->open_flags;	/* reused: the SETATTR flags */
	/* Fields without their flag must be zero. */
	if (a.flags & BELUGA_SETATTR_MODE)
		a.mode = j->mode;
	if (a.flags & BELUGA_SETATTR_UID)
		a.uid = BT_NOBODY;
	if (a.flags & BELUGA_SETATTR_GID)
		a.gid = BT_NOBODY;
	return -bt_ioctl(d, BELUGA_IOC_REGION_SETATTR, &a);
}

/* Create, check ownership, chmod, try chown, destroy: all as nobody. */
static int child_own_region(void *arg)
{
	struct job *j = arg;
	struct beluga_region_stat st;
	int d = bt_dev_open(), fd, ret;
	char *p;

	if (d < 0)
		return 200;
	fd = bt_create(d, j->name, BT_CHUNK, 0600, 0, NULL);
	if (fd < 0)
		return 100 + -fd % 100;
	if (bt_stat(d, j->name, &st) || st.uid != BT_NOBODY ||
	    st.gid != BT_NOBODY || st.mode != 0600)
		return 202;
	p = bt_map(fd, BT_CHUNK, PROT_READ | PROT_WRITE, 0);
	if (p == MAP_FAILED)
		return 203;
	p[0] = 'n';
	j->open_flags = BELUGA_SETATTR_MODE;
	j->mode = 0640;
	ret = child_setattr(j);
	if (ret)
		return 204;
	j->open_flags = BELUGA_SETATTR_UID;
	if (child_setattr(j) != EPERM)
		return 205;
	j->open_flags = BELUGA_SETATTR_GID;
	if (child_setattr(j) != EPERM)
		return 206;
	ret = bt_destroy(d, j->name);
	return ret ? 207 : 0;
}

static int as_nobody(bt_child_fn fn, struct job *j)
{
	return bt_run_as(BT_NOBODY, BT_NOBODY, fn, j);
}

/* --- tests ---------------------------------------------------------------- */

static void test_device_node(void **state)
{
	(void)state;
	const struct stat *st = bt_dev_node_at_setup();

	assert_int_equal(st->st_mode & 07777, 0660);
	assert_true(S_ISCHR(st->st_mode));
	assert_int_equal(st->st_uid, 0);
	assert_int_equal(st->st_gid, 0);
	assert_int_equal(as_nobody(child_open_dev, NULL), EACCES);
	grant_device();
	assert_int_equal(as_nobody(child_open_dev, NULL), 0);
}

static void make_region(char name[BELUGA_NAME_MAX], uint32_t mode, char byte)
{
	int fd;
	char *p;

	bt_name(name, "perm");
	fd = bt_create_ok(bt_dev, name, BT_CHUNK, mode, NULL);
	p = bt_map_ok(fd, BT_CHUNK, PROT_READ | PROT_WRITE, 0);
	p[100] = byte;
}

static void test_0600_other_user(void **state)
{
	char name[BELUGA_NAME_MAX];
	struct job j = { .name = name };

	(void)state;
	grant_device();
	make_region(name, 0600, 'r');
	assert_int_equal(as_nobody(child_open, &j), EACCES);
	j.open_flags = BELUGA_OPEN_RDONLY;
	assert_int_equal(as_nobody(child_open, &j), EACCES);
}

static void test_0644_read_only(void **state)
{
	char name[BELUGA_NAME_MAX];
	struct job j = { .name = name, .off = 100, .byte = 'r' };

	(void)state;
	grant_device();
	make_region(name, 0644, 'r');
	j.open_flags = BELUGA_OPEN_RDONLY;
	j.prot = PROT_READ;
	assert_int_equal(as_nobody(child_open, &j), 0);
	j.prot = PROT_READ | PROT_WRITE;
	assert_int_equal(as_nobody(child_open, &j), EACCES);
	j.open_flags = 0;
	j.prot = 0;
	assert_int_equal(as_nobody(child_open, &j), EACCES);
}

static void test_group_and_other_bits(void **state)
{
	struct beluga_region_setattr a;
	char name[BELUGA_NAME_MAX];
	struct job j = { .name = name, .off = 200, .byte = 'w',
			 .prot = PROT_READ | PROT_WRITE };
	int fd;
	char *p;

	(void)state;
	grant_device();
	bt_name(name, "permg");
	fd = bt_create_ok(bt_dev, name, BT_CHUNK, 0606, NULL);
	p = bt_map_ok(fd, BT_CHUNK, PROT_READ | PROT_WRITE, 0);
	/* Other bits rw: nobody writes, root sees it. */
	assert_int_equal(as_nobody(child_open, &j), 0);
	assert_int_equal(p[200], 'w');
	/* Group 65534 with mode 0606: group bits (0) win over other bits. */
	memset(&a, 0, sizeof(a));
	snprintf(a.name, sizeof(a.name), "%s", name);
	a.flags = BELUGA_SETATTR_GID;
	a.gid = BT_NOBODY;
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_REGION_SETATTR, &a), 0);
	assert_int_equal(as_nobody(child_open, &j), EACCES);
	/* Mode 0060: the group may read and write. */
	a.flags = BELUGA_SETATTR_MODE;
	a.gid = 0;
	a.mode = 0060;
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_REGION_SETATTR, &a), 0);
	j.byte = 'g';
	assert_int_equal(as_nobody(child_open, &j), 0);
	assert_int_equal(p[200], 'g');
}

static void test_eperm_other_user(void **state)
{
	struct beluga_region_stat st;
	char name[BELUGA_NAME_MAX];
	struct job j = { .name = name };

	(void)state;
	grant_device();
	make_region(name, 0666, 'x');
	assert_int_equal(as_nobody(child_destroy, &j), EPERM);
	assert_int_equal(bt_stat(bt_dev, name, &st), 0);	/* still there */
	j.open_flags = BELUGA_SETATTR_MODE;
	j.mode = 0600;
	assert_int_equal(as_nobody(child_setattr, &j), EPERM);
	j.open_flags = BELUGA_SETATTR_UID;
	assert_int_equal(as_nobody(child_setattr, &j), EPERM);
	assert_int_equal(bt_stat(bt_dev, name, &st), 0);
	assert_int_equal(st.mode, 0666);
	assert_int_equal(st.uid, 0);
}

static int child_create_and_leave(void *arg)
{
	struct job *j = arg;
	int d = bt_dev_open(), fd;

	if (d < 0)
		return 200;
	fd = bt_create(d, j->name, BT_CHUNK, 0600, 0, NULL);
	return fd < 0 ? -fd : 0;
}

static void test_nonroot_owns_region(void **state)
{
	char name[BELUGA_NAME_MAX];
	struct job j = { .name = name };
	struct beluga_region_stat st;
	int fd;
	char *p;

	(void)state;
	grant_device();
	bt_name(name, "nobody");
	bt_track_name(name);
	assert_int_equal(as_nobody(child_own_region, &j), 0);
	assert_int_equal(bt_stat(bt_dev, name, &st), -ENOENT);

	/* Left behind by nobody: root may open it (DAC override) and
	 * destroy it (CAP_SYS_ADMIN). */
	assert_int_equal(as_nobody(child_create_and_leave, &j), 0);
	assert_int_equal(bt_stat(bt_dev, name, &st), 0);
	assert_int_equal(st.uid, BT_NOBODY);
	assert_int_equal(st.gid, BT_NOBODY);
	assert_int_equal(st.open_count, 0);
	fd = bt_open_ok(bt_dev, name, 0, NULL);
	p = bt_map_ok(fd, BT_CHUNK, PROT_READ | PROT_WRITE, 0);
	p[0] = 'r';
	bt_destroy_ok(bt_dev, name);
}

#define T(fn) cmocka_unit_test_teardown(fn, bt_cleanup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_device_node), T(test_0600_other_user),
		T(test_0644_read_only), T(test_group_and_other_bits),
		T(test_eperm_other_user), T(test_nonroot_owns_region),
	};

	return bt_main("drv_perm", tests, sizeof(tests) / sizeof(tests[0]),
		       bt_group_setup, bt_group_teardown);
}
