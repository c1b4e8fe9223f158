// SPDX-License-Identifier: Apache-2.0
/*
 * t_quota.c - per-uid quotas on region bytes and count (ABI 1.1).
 *
 * Covers: QUOTA_GET of an unknown uid reports the module defaults and no
 * use; QUOTA_SET needs CAP_SYS_ADMIN (EPERM as uid 65534) and rejects bad
 * input (EINVAL); with a region limit of 2 and a byte limit of 3 chunks, an
 * unprivileged user creates up to the limit and then gets EDQUOT, sysfs
 * quotas/<uid>/ shows the use, usage returns after destroy (recovery), a
 * chown does not move the charge, and lifting the limits restores creation.
 * Quotas also hold under concurrent creation: 8 processes racing to create
 * regions end with exactly the limit created.
 */
#define _GNU_SOURCE
#include "bt_common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/stat.h>

/* The unprivileged user reaches /dev/beluga through its group. */
static int group_setup(void **state)
{
	return bt_group_setup(state) || bt_dev_node_chown(0, BT_NOBODY);
}

static int quota_set(uint32_t uid, uint32_t flags, uint64_t bytes, uint32_t regions)
{
	struct beluga_quota q = { .flags = flags, .uid = uid };

	if (flags & BELUGA_QUOTA_SET_BYTES)
		q.max_bytes = bytes;
	if (flags & BELUGA_QUOTA_SET_REGIONS)
		q.max_regions = regions;
	return bt_ioctl(bt_dev, BELUGA_IOC_QUOTA_SET, &q);
}

static void quota_get_ok(uint32_t uid, struct beluga_quota *q)
{
	memset(q, 0, sizeof(*q));
	q->uid = uid;
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_QUOTA_GET, q), 0);
}

static void lift(uint32_t uid)
{
	assert_int_equal(quota_set(uid, BELUGA_QUOTA_SET_ALL, 0, 0), 0);
}

static void test_get_defaults_and_errors(void **state)
{
	struct beluga_quota q;

	(void)state;
	quota_get_ok(4242, &q);
	assert_int_equal(q.used_bytes, 0);
	assert_int_equal(q.used_regions, 0);
	memset(&q, 0, sizeof(q));
	q.used_bytes = 1;
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_QUOTA_GET, &q), -EINVAL);
	assert_int_equal(quota_set(4242, 0, 0, 0), -EINVAL);	/* no flag */
	assert_int_equal(quota_set(4242, 4, 0, 0), -EINVAL);	/* unknown flag */
	/* A value without its flag. */
	memset(&q, 0, sizeof(q));
	q.flags = BELUGA_QUOTA_SET_REGIONS;
	q.max_bytes = 1;
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_QUOTA_SET, &q), -EINVAL);
	memset(&q, 0, sizeof(q));
	q.flags = BELUGA_QUOTA_SET_REGIONS;
	q.uid = (uint32_t)-1;	/* not a valid uid */
	assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_QUOTA_SET, &q), -EINVAL);
}

static int child_set_quota(void *arg)
{
	int d = bt_dev_open();
	struct beluga_quota q = { .flags = BELUGA_QUOTA_SET_REGIONS, .uid = BT_NOBODY };

	(void)arg;
	if (d < 0)
		return 10;
	return bt_ioctl(d, BELUGA_IOC_QUOTA_SET, &q) == -EPERM ? 0 : 1;
}

static void test_set_needs_admin(void **state)
{
	(void)state;
	assert_int_equal(bt_run_as(BT_NOBODY, BT_NOBODY, child_set_quota, NULL), 0);
}

struct create_arg {
	const char *prefix;
	int n;			/* creates to attempt */
	int expect_ok;		/* how many must succeed, the rest EDQUOT */
	uint64_t size;
};

/* As the unprivileged user: create n regions; count successes. */
static int child_create_n(void *p)
{
	struct create_arg *a = p;
	int d = bt_dev_open(), i, ok = 0;

	if (d < 0)
		return 100;
	for (i = 0; i < a->n; i++) {
		char name[BELUGA_NAME_MAX];
		int fd;

		snprintf(name, sizeof(name), "%s-%d", a->prefix, i);
		fd = bt_create(d, name, a->size, 0600, 0, NULL);
		if (fd >= 0) {
			ok++;
			close(fd);
		} else if (fd != -EDQUOT) {
			return 101;
		}
	}
	return ok;
}

static int child_destroy_n(void *p)
{
	struct create_arg *a = p;
	int d = bt_dev_open(), i;

	for (i = 0; i < a->n; i++) {
		char name[BELUGA_NAME_MAX];

		snprintf(name, sizeof(name), "%s-%d", a->prefix, i);
		bt_destroy(d, name);
	}
	return 0;
}

static void test_limits_and_recovery(void **state)
{
	char prefix[BELUGA_NAME_MAX - 8];
	struct create_arg a;
	struct beluga_quota q;

	(void)state;
	snprintf(prefix, sizeof(prefix), "bt-quota-%d", getpid());
	assert_int_equal(quota_set(BT_NOBODY, BELUGA_QUOTA_SET_REGIONS, 0, 2), 0);
	a = (struct create_arg){ prefix, 3, 2, BT_CHUNK };
	assert_int_equal(bt_run_as(BT_NOBODY, BT_NOBODY, child_create_n, &a), 2);
	quota_get_ok(BT_NOBODY, &q);
	assert_int_equal(q.used_regions, 2);
	assert_int_equal(q.used_bytes, 2 * BT_CHUNK);
	assert_int_equal(bt_sysfs_u64_ok("quotas/%d/used_regions", BT_NOBODY), 2);
	assert_int_equal(bt_sysfs_u64_ok("quotas/%d/max_regions", BT_NOBODY), 2);
	/* Root chowns one to root: the charge stays with its creator. */
	{
		struct beluga_region_setattr s = { .flags = BELUGA_SETATTR_UID, .uid = 0 };

		snprintf(s.name, sizeof(s.name), "%s-0", prefix);
		assert_int_equal(bt_ioctl(bt_dev, BELUGA_IOC_REGION_SETATTR, &s), 0);
	}
	quota_get_ok(BT_NOBODY, &q);
	assert_int_equal(q.used_regions, 2);

	/* Recovery: destroy (root may), then creation works again. */
	a.n = 2;
	assert_int_equal(child_destroy_n(&a), 0);
	quota_get_ok(BT_NOBODY, &q);
	assert_int_equal(q.used_regions, 0);
	assert_int_equal(q.used_bytes, 0);

	/* A byte limit of 3 chunks: two 2-chunk regions do not fit. */
	assert_int_equal(quota_set(BT_NOBODY, BELUGA_QUOTA_SET_ALL, 3 * BT_CHUNK, 0), 0);
	a = (struct create_arg){ prefix, 2, 1, 2 * BT_CHUNK };
	assert_int_equal(bt_run_as(BT_NOBODY, BT_NOBODY, child_create_n, &a), 1);
	assert_int_equal(bt_run_as(BT_NOBODY, BT_NOBODY, child_destroy_n, &a), 0);
	lift(BT_NOBODY);
	assert_int_equal(bt_run_as(BT_NOBODY, BT_NOBODY, child_create_n, &a), 2);
	assert_int_equal(bt_run_as(BT_NOBODY, BT_NOBODY, child_destroy_n, &a), 0);
}

static void test_concurrent_creation(void **state)
{
	const int procs = 8, limit = 5;
	char prefix[8][BELUGA_NAME_MAX - 8];
	struct create_arg a[8];
	pid_t pids[8];
	int i, total = 0, status;
	struct beluga_quota q;

	(void)state;
	assert_int_equal(quota_set(BT_NOBODY, BELUGA_QUOTA_SET_REGIONS, 0, limit), 0);
	for (i = 0; i < procs; i++) {
		snprintf(prefix[i], sizeof(prefix[i]), "bt-qc-%d-%d", getpid(), i);
		a[i] = (struct create_arg){ prefix[i], 2, 0, BT_CHUNK };
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (!pids[i])
			_exit(bt_run_as(BT_NOBODY, BT_NOBODY, child_create_n, &a[i]));
	}
	for (i = 0; i < procs; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) <= 2);
		total += WEXITSTATUS(status);
	}
	printf("  %d processes created %d regions under a limit of %d\n",
	       procs, total, limit);
	assert_int_equal(total, limit);
	quota_get_ok(BT_NOBODY, &q);
	assert_int_equal(q.used_regions, limit);
	for (i = 0; i < procs; i++)
		child_destroy_n(&a[i]);
	lift(BT_NOBODY);
	quota_get_ok(BT_NOBODY, &q);
	assert_int_equal(q.used_regions, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_get_defaults_and_errors, bt_cleanup),
		cmocka_unit_test_teardown(test_set_needs_admin, bt_cleanup),
		cmocka_unit_test_teardown(test_limits_and_recovery, bt_cleanup),
		cmocka_unit_test_teardown(test_concurrent_creation, bt_cleanup),
	};

	return bt_main("quota", tests, sizeof(tests) / sizeof(tests[0]),
		       group_setup, bt_group_teardown);
}
