// SPDX-License-Identifier: Apache-2.0
/*
 * Description: CMocka tests of the C API on the kernel backend, against the
 * fake driver of fake_ops.c: argument checks, the two-way ABI check, every
 * errno the driver can return, and a fault-injection sweep over every call
 * each operation makes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "sweep.h"

#define MiB (1ULL << 20)

struct ctx {
	struct fake f;
	struct beluga_pool *pool;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	struct beluga_pool_options o;

	fake_init(&c->f);
	fake_kernel_options(&c->f, &o);
	assert_int_equal(beluga_pool_open(&o, &c->pool), 0);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	beluga_pool_close(c->pool);
	fake_fini(&c->f);
	free(c);
	return 0;
}

static int open_with(struct fake *f, struct beluga_pool **pool)
{
	struct beluga_pool_options o;

	fake_kernel_options(f, &o);
	return beluga_pool_open(&o, pool);
}

/* ---- pool open and the ABI check ------------------------------------- */

static void pool_open_without_device_is_enodriver(void **state)
{
	struct beluga_pool_options o;
	struct beluga_pool *pool = (void *)1;

	(void)state;
	beluga_pool_options_init(&o);
	o.backend = BELUGA_BACKEND_KERNEL;
	o.device_path = "/nonexistent/beluga";
	assert_int_equal(beluga_pool_open(&o, &pool), -BELUGA_ENODRIVER);
	assert_null(pool);
}

static void pool_open_device_eacces_is_eacces(void **state)
{
	struct fake f;
	struct beluga_pool *pool;

	(void)state;
	fake_init(&f);
	f.fail_at = 1;		/* the open of the device */
	f.fail_errno = EACCES;
	assert_int_equal(open_with(&f, &pool), -EACCES);
	assert_string_equal(f.failed_op, "open");
	fake_fini(&f);
}

static void pool_open_driver_without_info_is_driver_too_old(void **state)
{
	struct fake f;
	struct beluga_pool *pool;

	(void)state;
	fake_init(&f);
	f.cmd_errno[_IOC_NR(BELUGA_IOC_INFO)] = ENOTTY;
	assert_int_equal(open_with(&f, &pool), -BELUGA_EDRIVER_TOO_OLD);
	fake_fini(&f);
}

static void check_abi(uint32_t abi, uint32_t min_abi, int expect)
{
	struct fake f;
	struct beluga_pool *pool = NULL;

	fake_init(&f);
	f.info.abi_version = abi;
	f.info.min_abi_version = min_abi;
	assert_int_equal(open_with(&f, &pool), expect);
	beluga_pool_close(pool);
	fake_fini(&f);
}

static void pool_open_old_driver_major_is_driver_too_old(void **state)
{
	(void)state;
	check_abi(BELUGA_ABI_VERSION(0, 9), BELUGA_ABI_VERSION(0, 1),
		  -BELUGA_EDRIVER_TOO_OLD);
}

static void pool_open_driver_dropping_our_abi_is_library_too_old(void **state)
{
	(void)state;
	check_abi(BELUGA_ABI_VERSION(1, 5), BELUGA_ABI_CURRENT + 1,
		  -BELUGA_ELIBRARY_TOO_OLD);
	check_abi(BELUGA_ABI_VERSION(2, 0), BELUGA_ABI_VERSION(2, 0),
		  -BELUGA_ELIBRARY_TOO_OLD);
}

static void pool_open_newer_driver_still_serving_us_is_ok(void **state)
{
	(void)state;
	check_abi(BELUGA_ABI_VERSION(1, 7), BELUGA_ABI_VERSION(1, 0), 0);
	check_abi(BELUGA_ABI_VERSION(2, 0), BELUGA_ABI_VERSION(1, 0), 0);
}

static void strerror_tells_driver_and_library_too_old_apart(void **state)
{
	const char *d = beluga_strerror(-BELUGA_EDRIVER_TOO_OLD);
	const char *l = beluga_strerror(BELUGA_ELIBRARY_TOO_OLD);

	(void)state;
	assert_string_not_equal(d, l);
	assert_non_null(strstr(d, "driver is too old"));
	assert_non_null(strstr(l, "libbeluga is too old"));
	assert_non_null(strstr(beluga_strerror(-BELUGA_ENODRIVER), "BELUGA_BACKEND=user"));
	assert_non_null(strstr(beluga_strerror(-EEXIST), "already exists"));
	assert_string_equal(beluga_strerror(0), "success");
	assert_string_equal(beluga_strerror(-EIO), "Input/output error");
	assert_string_equal(beluga_strerror(-99999), "unknown error");
}

static void pool_open_rejects_bad_options(void **state)
{
	struct beluga_pool_options o;
	struct beluga_pool *pool;
	struct beluga_ops ops;

	(void)state;
	assert_int_equal(beluga_pool_open(NULL, NULL), -EINVAL);
	beluga_pool_options_init(&o);
	o.size = 4;
	assert_int_equal(beluga_pool_open(&o, &pool), -EINVAL);
	beluga_pool_options_init(&o);
	o.backend = 7;
	assert_int_equal(beluga_pool_open(&o, &pool), -EINVAL);
	beluga_pool_options_init(&o);
	o.gpu_chunk_max = MiB;	/* rounds down to 0 chunks */
	assert_int_equal(beluga_pool_open(&o, &pool), -EINVAL);
	beluga_pool_options_init(&o);
	beluga_ops_init(&ops);
	ops.size = 1;
	o.ops = &ops;
	assert_int_equal(beluga_pool_open(&o, &pool), -EINVAL);
}

static void pool_open_rejects_unknown_backend_env(void **state)
{
	struct beluga_pool *pool;

	(void)state;
	setenv("BELUGA_BACKEND", "bogus", 1);
	assert_int_equal(beluga_pool_open(NULL, &pool), -EINVAL);
	unsetenv("BELUGA_BACKEND");
}

static void pool_open_env_selects_kernel(void **state)
{
	struct beluga_pool_options o;
	struct beluga_pool *pool;
	struct fake f;

	(void)state;
	fake_init(&f);
	fake_kernel_options(&f, &o);
	o.backend = BELUGA_BACKEND_AUTO;
	setenv("BELUGA_BACKEND", "kernel", 1);
	assert_int_equal(beluga_pool_open(&o, &pool), 0);
	unsetenv("BELUGA_BACKEND");
	assert_int_equal(beluga_pool_backend(pool), BELUGA_BACKEND_KERNEL);
	beluga_pool_close(pool);
	fake_fini(&f);
}

static void pool_open_auto_uses_driver_when_device_exists(void **state)
{
	struct beluga_pool_options o;
	struct beluga_pool *pool;
	struct fake f;

	(void)state;
	fake_init(&f);
	fake_kernel_options(&f, &o);
	o.backend = BELUGA_BACKEND_AUTO;
	unsetenv("BELUGA_BACKEND");
	assert_int_equal(beluga_pool_open(&o, &pool), 0);
	assert_int_equal(beluga_pool_backend(pool), BELUGA_BACKEND_KERNEL);
	beluga_pool_close(pool);
	fake_fini(&f);
}

static void log_fn(void *ctx, int level, const char *msg)
{
	(void)level;
	snprintf(ctx, 256, "%s", msg);
}

static void pool_logs_only_when_asked(void **state)
{
	struct beluga_pool_options o;
	struct beluga_pool *pool;
	char msg[256] = "";

	(void)state;
	beluga_pool_options_init(&o);
	o.backend = BELUGA_BACKEND_KERNEL;
	o.device_path = "/nonexistent/beluga";
	o.log_fn = log_fn;
	o.log_ctx = msg;
	o.log_level = BELUGA_LOG_NONE;
	beluga_pool_open(&o, &pool);
	assert_string_equal(msg, "");
	o.log_level = -1;
	setenv("BELUGA_LOG", "1", 1);
	beluga_pool_open(&o, &pool);
	unsetenv("BELUGA_LOG");
	assert_non_null(strstr(msg, "cannot open the pool"));
}

/* ---- pool info, sources, counters ------------------------------------ */

static void pool_info_reports_driver_values(void **state)
{
	struct ctx *c = *state;
	struct beluga_pool_info i;

	assert_int_equal(beluga_pool_get_info(c->pool, &i), 0);
	assert_int_equal(i.backend, BELUGA_BACKEND_KERNEL);
	assert_int_equal(i.abi_version, BELUGA_ABI_CURRENT);
	assert_int_equal(i.total_bytes, 512 * MiB);
	assert_int_equal(i.free_bytes, 256 * MiB);
	assert_int_equal(i.chunk_size, 2 * MiB);
	assert_int_equal(i.nr_sources, 2);
	assert_true(i.features & BELUGA_FEATURE_USAGE_COUNTS);
	assert_true(i.features & BELUGA_FEATURE_LONGTERM_PIN);
	assert_int_equal(beluga_pool_get_info(c->pool, NULL), -EINVAL);
	assert_int_equal(beluga_pool_get_info(NULL, &i), -EINVAL);
}

static void pool_source_past_end_is_enoent(void **state)
{
	struct ctx *c = *state;
	struct beluga_pool_source_info s;

	assert_int_equal(beluga_pool_get_source(c->pool, 1, &s), 0);
	assert_int_equal(s.node, 2);
	assert_int_equal(s.kind, BELUGA_SOURCE_KIND_NODE);
	assert_int_equal(beluga_pool_get_source(c->pool, 2, &s), -ENOENT);
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void pool_counters_read_sysfs(void **state)
{
	static const char *const names[] = { "pmd_faults", "pte_faults",
		"pinned_chunks", "alloc_failures", "regions_created",
		"regions_freed" };
	char dir[] = "/tmp/beluga-sysfs-XXXXXX", path[256];
	struct beluga_pool_counters cnt;
	struct beluga_pool_options o;
	struct beluga_pool *pool;
	struct fake f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/counters", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	for (int i = 0; i < 6; i++) {
		char text[16];

		snprintf(path, sizeof(path), "%s/counters/%s", dir, names[i]);
		snprintf(text, sizeof(text), "%d\n", 10 + i);
		write_file(path, text);
	}
	fake_init(&f);
	fake_kernel_options(&f, &o);
	o.sysfs_dir = dir;
	assert_int_equal(beluga_pool_open(&o, &pool), 0);
	assert_int_equal(beluga_pool_get_counters(pool, &cnt), 0);
	assert_int_equal(cnt.pmd_faults, 10);
	assert_int_equal(cnt.regions_freed, 15);
	snprintf(path, sizeof(path), "%s/counters/pte_faults", dir);
	write_file(path, "lots\n");
	assert_int_equal(beluga_pool_get_counters(pool, &cnt), -EIO);
	unlink(path);
	assert_int_equal(beluga_pool_get_counters(pool, &cnt), -ENOENT);
	beluga_pool_close(pool);
	fake_fini(&f);
	for (int i = 0; i < 6; i++) {
		snprintf(path, sizeof(path), "%s/counters/%s", dir, names[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/counters", dir);
	rmdir(path);
	rmdir(dir);
}

/* ---- region arguments -------------------------------------------------- */

static void region_create_rejects_invalid_names(void **state)
{
	static const char *const bad[] = {
		"", "a/b", "a b", "caf\xc3\xa9", "x\n",
		"0123456789012345678901234567890123456789012345678901234567890123",
	};
	struct ctx *c = *state;
	struct beluga_region *r = (void *)1;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(beluga_region_create(c->pool, bad[i], 2 * MiB,
						      0600, 0, -1, &r), -EINVAL);
	assert_null(r);
	assert_int_equal(beluga_region_create(c->pool, NULL, 2 * MiB, 0600, 0,
					      -1, &r), -EINVAL);
	/* 63 bytes is the longest valid name */
	assert_int_equal(beluga_region_create(c->pool,
		"012345678901234567890123456789012345678901234567890123456789._-",
		2 * MiB, 0600, 0, -1, &r), 0);
	beluga_region_close(r);
	assert_int_equal(c->f.calls > 0, 1);
}

/*
 * Every byte value 0x01..0xff, alone and between two letters: only
 * [A-Za-z0-9._-] passes (the driver's rule, ASCII only).  The library must
 * reject before the driver sees the name, and pass every valid name on.
 */
static void region_names_are_ascii_only(void **state)
{
	static const char allowed[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
	struct ctx *c = *state;
	struct beluga_region_info info;
	int nr_valid = 0;

	for (int b = 1; b <= 0xff; b++) {
		const char alone[2] = { (char)b, 0 };
		const char mid[4] = { 'a', (char)b, 'z', 0 };
		bool valid = memchr(allowed, b, sizeof(allowed) - 1) != NULL;

		for (int k = 0; k < 2; k++) {
			const char *name = k ? mid : alone;
			long calls = c->f.calls;
			int ret = beluga_region_stat(c->pool, name, &info);

			if (valid && (ret != -ENOENT || c->f.calls == calls))
				fail_msg("byte 0x%02x (%s): %d, driver %scalled; want -ENOENT from the driver",
					 b, k ? "mid" : "alone", ret,
					 c->f.calls == calls ? "not " : "");
			if (!valid && (ret != -EINVAL || c->f.calls != calls))
				fail_msg("byte 0x%02x (%s): %d, driver %scalled; want -EINVAL before the driver",
					 b, k ? "mid" : "alone", ret,
					 c->f.calls == calls ? "not " : "");
		}
		nr_valid += valid;
	}
	assert_int_equal(nr_valid, 26 + 26 + 10 + 3);
	/* empty, NULL, 63 bytes (longest) and 64 bytes (too long) */
	assert_int_equal(beluga_region_stat(c->pool, "", &info), -EINVAL);
	assert_int_equal(beluga_region_stat(c->pool, NULL, &info), -EINVAL);
	assert_int_equal(beluga_region_stat(c->pool,
		"012345678901234567890123456789012345678901234567890123456789._-",
		&info), -ENOENT);
	assert_int_equal(beluga_region_stat(c->pool,
		"0123456789012345678901234567890123456789012345678901234567890123",
		&info), -EINVAL);
}

static void region_create_rejects_bad_size_mode_flags_source(void **state)
{
	struct ctx *c = *state;
	struct beluga_region *r;

	assert_int_equal(beluga_region_create(c->pool, "a", 0, 0600, 0, -1, &r), -EINVAL);
	assert_int_equal(beluga_region_create(c->pool, "a", MiB, 0600, 0, -1, &r), -EINVAL);
	assert_int_equal(beluga_region_create(c->pool, "a", 3 * MiB, 0600, 0, -1, &r), -EINVAL);
	assert_int_equal(beluga_region_create(c->pool, "a", 2 * MiB, 01000, 0, -1, &r), -EINVAL);
	assert_int_equal(beluga_region_create(c->pool, "a", 2 * MiB, 0600, 2, -1, &r), -EINVAL);
	assert_int_equal(beluga_region_create(c->pool, "a", 2 * MiB, 0600, 0, -2, &r), -EINVAL);
	assert_int_equal(beluga_region_create(c->pool, "a", 2 * MiB, 0600, 0, -1, NULL), -EINVAL);
	assert_int_equal(beluga_region_create(NULL, "a", 2 * MiB, 0600, 0, -1, &r), -EINVAL);
	/* a source the driver does not have: its EINVAL comes back */
	assert_int_equal(beluga_region_create(c->pool, "a", 2 * MiB, 0600, 0, 5, &r), -EINVAL);
}

static void region_create_open_stat_list(void **state)
{
	struct ctx *c = *state;
	struct beluga_region *r, *o;
	struct beluga_region_info info, list[4];
	size_t count;

	assert_int_equal(beluga_region_create(c->pool, "kv", 4 * MiB, 0640, 0, 1, &r), 0);
	assert_string_equal(beluga_region_name(r), "kv");
	assert_int_equal(beluga_region_size(r), 4 * MiB);
	assert_int_equal(beluga_region_id(r), 1);
	assert_true(beluga_region_fd(r) >= 0);
	assert_true(fcntl(beluga_region_fd(r), F_GETFD) & FD_CLOEXEC);
	assert_int_equal(beluga_region_open(c->pool, "kv", 0, &o), 0);
	assert_int_equal(beluga_region_size(o), 4 * MiB);
	assert_int_equal(beluga_region_id(o), 1);
	assert_int_equal(beluga_region_stat(c->pool, "kv", &info), 0);
	assert_string_equal(info.name, "kv");
	assert_int_equal(info.mode, 0640);
	assert_int_equal(info.nr_chunks, 2);
	assert_int_equal(info.uid, geteuid());
	assert_int_equal(info.flags & BELUGA_INFO_NO_USAGE, 0);
	assert_int_equal(beluga_region_list(c->pool, NULL, 0, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(beluga_region_list(c->pool, list, 4, &count), 0);
	assert_string_equal(list[0].name, "kv");
	assert_int_equal(beluga_region_list(c->pool, NULL, 4, &count), -EINVAL);
	assert_int_equal(beluga_region_list(c->pool, list, 4, NULL), -EINVAL);
	assert_int_equal(beluga_region_fstat(o, &info), 0);
	assert_int_equal(info.size, 4 * MiB);
	beluga_region_close(o);
	beluga_region_close(r);
}

static void region_create_existing_name_is_eexist(void **state)
{
	struct ctx *c = *state;
	struct beluga_region *r, *r2 = (void *)1;

	assert_int_equal(beluga_region_create(c->pool, "dup", 2 * MiB, 0600, 0, -1, &r), 0);
	assert_int_equal(beluga_region_create(c->pool, "dup", 2 * MiB, 0600, 0, -1, &r2), -EEXIST);
	assert_null(r2);
	beluga_region_close(r);
}

static void region_create_ephemeral_needs_no_name(void **state)
{
	struct ctx *c = *state;
	struct beluga_region *r;
	struct beluga_region_info info;

	assert_int_equal(beluga_region_create(c->pool, NULL, 2 * MiB, 0600,
					      BELUGA_REGION_EPHEMERAL, -1, &r), 0);
	assert_string_equal(beluga_region_name(r), "");
	assert_int_equal(beluga_region_fstat(r, &info), 0);
	assert_true(info.flags & BELUGA_INFO_EPHEMERAL);
	beluga_region_close(r);
}

static void region_driver_errnos_come_back(void **state)
{
	static const struct { unsigned long cmd; int err; } cases[] = {
		{ BELUGA_IOC_REGION_CREATE, ENOSPC },
		{ BELUGA_IOC_REGION_CREATE, ENOMEM },
		{ BELUGA_IOC_REGION_OPEN, EACCES },
		{ BELUGA_IOC_REGION_DESTROY, EPERM },
		{ BELUGA_IOC_REGION_SETATTR, EPERM },
		{ BELUGA_IOC_REGION_STAT, EFAULT },
		{ BELUGA_IOC_REGION_LIST, EFAULT },
		{ BELUGA_IOC_SOURCE_INFO, EINVAL },
	};
	struct ctx *c = *state;
	struct beluga_region *r;
	struct beluga_region_info info;
	struct beluga_pool_source_info s;
	size_t n;

	assert_int_equal(beluga_region_create(c->pool, "e", 2 * MiB, 0600, 0, -1, &r), 0);
	beluga_region_close(r);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int err = -cases[i].err, got = 0;

		c->f.cmd_errno[_IOC_NR(cases[i].cmd)] = cases[i].err;
		switch (cases[i].cmd) {
		case BELUGA_IOC_REGION_CREATE:
			got = beluga_region_create(c->pool, "x", 2 * MiB, 0600, 0, -1, &r);
			break;
		case BELUGA_IOC_REGION_OPEN:
			got = beluga_region_open(c->pool, "e", 0, &r);
			break;
		case BELUGA_IOC_REGION_DESTROY:
			got = beluga_region_destroy(c->pool, "e");
			break;
		case BELUGA_IOC_REGION_SETATTR:
			got = beluga_region_chmod(c->pool, "e", 0644);
			assert_int_equal(got, err);
			got = beluga_region_chown(c->pool, "e", 0, -1);
			break;
		case BELUGA_IOC_REGION_STAT:
			got = beluga_region_stat(c->pool, "e", &info);
			break;
		case BELUGA_IOC_REGION_LIST:
			got = beluga_region_list(c->pool, &info, 1, &n);
			break;
		case BELUGA_IOC_SOURCE_INFO:
			got = beluga_pool_get_source(c->pool, 0, &s);
			break;
		}
		assert_int_equal(got, err);
		c->f.cmd_errno[_IOC_NR(cases[i].cmd)] = 0;
	}
}

static void region_unknown_name_is_enoent(void **state)
{
	struct ctx *c = *state;
	struct beluga_region *r;
	struct beluga_region_info info;

	assert_int_equal(beluga_region_open(c->pool, "nope", 0, &r), -ENOENT);
	assert_int_equal(beluga_region_destroy(c->pool, "nope"), -ENOENT);
	assert_int_equal(beluga_region_stat(c->pool, "nope", &info), -ENOENT);
	assert_int_equal(beluga_region_chmod(c->pool, "nope", 0600), -ENOENT);
	assert_int_equal(beluga_region_chown(c->pool, "nope", 1, 1), -ENOENT);
}

static void region_calls_reject_bad_arguments(void **state)
{
	struct ctx *c = *state;
	struct beluga_region *r;
	struct beluga_region_info info;

	assert_int_equal(beluga_region_open(c->pool, "a", 4, &r), -EINVAL);
	assert_int_equal(beluga_region_open(c->pool, "a/b", 0, &r), -EINVAL);
	assert_int_equal(beluga_region_destroy(c->pool, ""), -EINVAL);
	assert_int_equal(beluga_region_stat(c->pool, "a", NULL), -EINVAL);
	assert_int_equal(beluga_region_chmod(c->pool, "a", 01777), -EINVAL);
	assert_int_equal(beluga_region_chown(c->pool, "a", -1, -1), -EINVAL);
	assert_int_equal(beluga_region_fstat(NULL, &info), -EINVAL);
	assert_int_equal(beluga_region_from_fd(c->pool, -1, &r), -EINVAL);
}

static void region_chmod_chown_reach_the_driver(void **state)
{
	struct ctx *c = *state;
	struct beluga_region *r;
	struct beluga_region_info info;

	assert_int_equal(beluga_region_create(c->pool, "m", 2 * MiB, 0600, 0, -1, &r), 0);
	assert_int_equal(beluga_region_chmod(c->pool, "m", 0644), 0);
	assert_int_equal(beluga_region_chown(c->pool, "m", 1234, -1), 0);
	assert_int_equal(beluga_region_stat(c->pool, "m", &info), 0);
	assert_int_equal(info.mode, 0644);
	assert_int_equal(info.uid, 1234);
	assert_int_equal(info.gid, getegid());
	beluga_region_close(r);
}

static void region_destroy_keeps_open_handles_working(void **state)
{
	struct ctx *c = *state;
	struct beluga_region *r;
	struct beluga_region_info info;

	assert_int_equal(beluga_region_create(c->pool, "gone", 2 * MiB, 0600, 0, -1, &r), 0);
	assert_int_equal(beluga_region_destroy(c->pool, "gone"), 0);
	assert_int_equal(beluga_region_stat(c->pool, "gone", &info), -ENOENT);
	assert_int_equal(beluga_region_fstat(r, &info), 0);
	assert_true(info.flags & BELUGA_INFO_DESTROYED);
	beluga_region_close(r);
}

/* ---- mappings ------------------------------------------------------------ */

static void map_rejects_bad_ranges(void **state)
{
	struct ctx *c = *state;
	struct beluga_region *r, *ro;
	struct beluga_mapping *m = (void *)1;
	const uint32_t rw = BELUGA_PROT_READ | BELUGA_PROT_WRITE;

	assert_int_equal(beluga_region_create(c->pool, "map", 4 * MiB, 0600, 0, -1, &r), 0);
	assert_int_equal(beluga_region_map(r, MiB, 0, rw, &m), -EINVAL);
	assert_null(m);
	assert_int_equal(beluga_region_map(r, 0, 100, rw, &m), -EINVAL);
	assert_int_equal(beluga_region_map(r, 0, 0, 0, &m), -EINVAL);
	assert_int_equal(beluga_region_map(r, 0, 0, 8, &m), -EINVAL);
	assert_int_equal(beluga_region_map(r, 4 * MiB, 0, rw, &m), -ENXIO);
	assert_int_equal(beluga_region_map(r, 2 * MiB, 4 * MiB, rw, &m), -ENXIO);
	assert_int_equal(beluga_region_map(r, 0, 0, rw, NULL), -EINVAL);
	assert_int_equal(beluga_region_open(c->pool, "map", BELUGA_REGION_RDONLY, &ro), 0);
	assert_int_equal(beluga_region_map(ro, 0, 0, rw, &m), -EACCES);
	assert_int_equal(beluga_region_map(ro, 0, 0, BELUGA_PROT_READ, &m), 0);
	beluga_mapping_unmap(m);
	beluga_region_close(ro);
	beluga_region_close(r);
	assert_int_equal(c->f.map_bytes, 0);
}

static void map_shares_bytes_between_handles(void **state)
{
	struct ctx *c = *state;
	struct beluga_region *r, *o;
	struct beluga_mapping *a, *b;

	assert_int_equal(beluga_region_create(c->pool, "share", 4 * MiB, 0600, 0, -1, &r), 0);
	assert_int_equal(beluga_region_open(c->pool, "share", 0, &o), 0);
	assert_int_equal(beluga_region_map(r, 2 * MiB, 0, BELUGA_PROT_WRITE, &a), 0);
	assert_int_equal(beluga_mapping_size(a), 2 * MiB);
	assert_int_equal(beluga_mapping_offset(a), 2 * MiB);
	assert_int_equal(beluga_region_map(o, 0, 0, BELUGA_PROT_READ, &b), 0);
	memset(beluga_mapping_addr(a), 0x5a, 4096);
	assert_int_equal(((unsigned char *)beluga_mapping_addr(b))[2 * MiB + 17], 0x5a);
	/* handles may be released in any order */
	beluga_region_close(r);
	beluga_region_close(o);
	beluga_pool_close(c->pool);
	c->pool = NULL;
	assert_int_equal(((unsigned char *)beluga_mapping_addr(a))[5], 0x5a);
	beluga_mapping_unmap(b);
	beluga_mapping_unmap(a);
	assert_int_equal(c->f.map_bytes, 0);
}

static void layout_reports_driver_nodes(void **state)
{
	struct ctx *c = *state;
	struct beluga_region *r;
	int32_t nodes[8];
	size_t n;

	assert_int_equal(beluga_region_create(c->pool, "lay", 6 * MiB, 0600, 0, -1, &r), 0);
	assert_int_equal(beluga_region_layout(r, NULL, 0, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(beluga_region_layout(r, nodes, 8, &n), 0);
	assert_int_equal(nodes[0], 1);
	assert_int_equal(nodes[1], 2);
	assert_int_equal(nodes[2], 1);
	assert_int_equal(beluga_region_layout(r, NULL, 3, &n), -EINVAL);
	beluga_region_close(r);
}

/* ---- passing regions ----------------------------------------------------- */

static void send_recv_passes_the_region(void **state)
{
	struct ctx *c = *state;
	struct beluga_region *r, *got;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(beluga_region_create(c->pool, "pass", 2 * MiB, 0600, 0, -1, &r), 0);
	assert_int_equal(beluga_region_send(r, sv[0]), 0);
	assert_int_equal(beluga_region_recv(c->pool, sv[1], &got), 0);
	assert_string_equal(beluga_region_name(got), "pass");
	assert_int_equal(beluga_region_id(got), beluga_region_id(r));
	assert_int_equal(beluga_region_size(got), 2 * MiB);
	beluga_region_close(got);
	/* garbage, then a closed peer */
	assert_int_equal(write(sv[0], "hello, world!!!!", 16), 16);
	assert_int_equal(beluga_region_recv(c->pool, sv[1], &got), -EPROTO);
	close(sv[0]);
	assert_int_equal(beluga_region_recv(c->pool, sv[1], &got), -ECONNRESET);
	close(sv[1]);
	assert_int_equal(beluga_region_send(r, -1), -EBADF);
	beluga_region_close(r);
}

static void from_fd_rejects_non_regions(void **state)
{
	struct ctx *c = *state;
	struct beluga_region *r;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	assert_int_equal(beluga_region_from_fd(c->pool, fd, &r), -EINVAL);
	close(fd);
	assert_int_equal(beluga_region_from_fd(c->pool, 12345, &r), -EBADF);
}

/* ---- fault-injection sweeps ------------------------------------------------ */

static const char *const kernel_tolerated[] = { "close", "munmap", NULL };

static int sc_open(struct fake *f, void *arg)
{
	struct beluga_pool *pool;
	struct beluga_pool_info info;
	int ret;

	(void)arg;
	ret = open_with(f, &pool);
	if (ret)
		return ret;
	ret = beluga_pool_get_info(pool, &info);
	beluga_pool_close(pool);
	return ret;
}

static int sc_lifecycle(struct fake *f, void *arg)
{
	struct beluga_pool *pool;
	struct beluga_region *r = NULL, *o = NULL;
	struct beluga_mapping *m = NULL;
	struct beluga_region_info info;
	int32_t nodes[2];
	size_t n;
	int ret;

	(void)arg;
	ret = open_with(f, &pool);
	if (ret)
		return ret;
	ret = beluga_region_create(pool, "life", 4 * MiB, 0600, 0, -1, &r);
	if (!ret)
		ret = beluga_region_open(pool, "life", BELUGA_REGION_RDONLY, &o);
	if (!ret)
		ret = beluga_region_map(o, 0, 0, BELUGA_PROT_READ, &m);
	if (!ret)
		ret = beluga_region_stat(pool, "life", &info);
	if (!ret)
		ret = beluga_region_fstat(o, &info);
	if (!ret)
		ret = beluga_region_layout(r, nodes, 2, &n);
	if (!ret)
		ret = beluga_region_list(pool, &info, 1, &n);
	if (!ret)
		ret = beluga_region_chmod(pool, "life", 0640);
	if (!ret)
		ret = beluga_region_destroy(pool, "life");
	beluga_mapping_unmap(m);
	beluga_region_close(o);
	beluga_region_close(r);
	beluga_pool_close(pool);
	return ret;
}

static int sc_pass(struct fake *f, void *arg)
{
	struct beluga_pool *pool;
	struct beluga_region *r = NULL, *got = NULL;
	int sv[2], ret;

	(void)arg;
	ret = open_with(f, &pool);
	if (ret)
		return ret;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	ret = beluga_region_create(pool, "p", 2 * MiB, 0600, 0, -1, &r);
	if (!ret)
		ret = beluga_region_send(r, sv[0]);
	if (!ret)
		ret = beluga_region_recv(pool, sv[1], &got);
	close(sv[0]);
	close(sv[1]);
	beluga_region_close(got);
	beluga_region_close(r);
	beluga_pool_close(pool);
	return ret;
}

static void every_failure_of_pool_open_is_reported(void **state)
{
	(void)state;
	assert_true(sweep(sc_open, NULL, kernel_tolerated) >= 3);
}

static void every_failure_of_region_lifecycle_is_reported(void **state)
{
	(void)state;
	assert_true(sweep(sc_lifecycle, NULL, kernel_tolerated) >= 15);
}

static void every_failure_of_region_passing_is_reported(void **state)
{
	(void)state;
	assert_true(sweep(sc_pass, NULL, kernel_tolerated) >= 6);
}

/* ---- shared regions (driver ABI 1.2) ------------------------------------ */

static void shared_define_sends_the_extent(void **state)
{
	struct ctx *c = *state;
	struct beluga_region *r = NULL, *o = NULL, *again = NULL;
	struct beluga_region_info info;

	assert_int_equal(beluga_shared_define(c->pool, "kv-pool", 1, 4 * MiB, 6 * MiB, 0640,
					      &r), 0);
	assert_int_equal(beluga_region_size(r), 6 * MiB);
	assert_int_equal(beluga_region_fstat(r, &info), 0);
	assert_true(info.flags & BELUGA_INFO_SHARED);
	assert_int_equal(info.shared_offset, 4 * MiB);
	assert_int_equal(info.shared_source, 1);
	assert_int_equal(info.mode, 0640);
	/* Opened by name like any region, and listed as shared. */
	assert_int_equal(beluga_region_open(c->pool, "kv-pool", BELUGA_REGION_RDONLY, &o), 0);
	assert_int_equal(beluga_region_stat(c->pool, "kv-pool", &info), 0);
	assert_true(info.flags & BELUGA_INFO_SHARED);
	assert_int_equal(beluga_shared_define(c->pool, "kv-pool", 1, 0, 2 * MiB, 0600, &again),
			 -EEXIST);
	assert_null(again);
	beluga_region_close(o);
	beluga_region_close(r);
}

static void shared_define_rejects_bad_arguments(void **state)
{
	struct ctx *c = *state;
	struct beluga_region *r = NULL;

	assert_int_equal(beluga_shared_define(NULL, "s", 0, 0, 2 * MiB, 0600, &r), -EINVAL);
	assert_int_equal(beluga_shared_define(c->pool, "s", 0, 0, 2 * MiB, 0600, NULL), -EINVAL);
	assert_int_equal(beluga_shared_define(c->pool, "", 0, 0, 2 * MiB, 0600, &r), -EINVAL);
	assert_int_equal(beluga_shared_define(c->pool, NULL, 0, 0, 2 * MiB, 0600, &r), -EINVAL);
	assert_int_equal(beluga_shared_define(c->pool, "s", 0, 0, 0, 0600, &r), -EINVAL);
	assert_int_equal(beluga_shared_define(c->pool, "s", 0, 0, 3 * MiB, 0600, &r), -EINVAL);
	assert_int_equal(beluga_shared_define(c->pool, "s", 0, MiB, 2 * MiB, 0600, &r), -EINVAL);
	assert_int_equal(beluga_shared_define(c->pool, "s", 0, 0, 2 * MiB, 01000, &r), -EINVAL);
	/* The driver's checks come back as they are. */
	assert_int_equal(beluga_shared_define(c->pool, "s", 7, 0, 2 * MiB, 0600, &r), -EINVAL);
	assert_null(r);
}

static void shared_define_driver_errnos_come_back(void **state)
{
	static const int errs[] = { EPERM, EOPNOTSUPP, ENXIO, EADDRINUSE, EBUSY, ENOMEM };
	struct ctx *c = *state;
	struct beluga_region *r = NULL;

	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		c->f.cmd_errno[_IOC_NR(BELUGA_IOC_SHARED_DEFINE)] = errs[i];
		assert_int_equal(beluga_shared_define(c->pool, "s", 0, 0, 2 * MiB, 0600, &r),
				 -errs[i]);
		assert_null(r);
	}
	assert_non_null(strstr(beluga_strerror(-EADDRINUSE), "overlaps a shared region"));
}

static void shared_define_on_a_1_1_driver_is_driver_too_old(void **state)
{
	struct fake f;
	struct beluga_pool *pool = NULL;
	struct beluga_region *r = NULL;

	(void)state;
	fake_init(&f);
	f.info.abi_version = BELUGA_ABI_VERSION(1, 1);
	f.info.features &= ~BELUGA_FEAT_SHARED_REGIONS;
	assert_int_equal(open_with(&f, &pool), 0);
	assert_int_equal(beluga_shared_define(pool, "s", 0, 0, 2 * MiB, 0600, &r),
			 -BELUGA_EDRIVER_TOO_OLD);
	assert_null(r);
	beluga_pool_close(pool);
	fake_fini(&f);
}

/* Run-time sources (ABI 1.3): argument checks, the request, errnos. */
static void source_add_and_remove(void **state)
{
	struct fake f;
	struct beluga_pool *pool = NULL;
	uint32_t idx = 99;

	(void)state;
	fake_init(&f);
	f.info.features |= BELUGA_FEAT_SOURCE_HOTPLUG;
	assert_int_equal(open_with(&f, &pool), 0);
	/* Refused before the driver is asked. */
	assert_int_equal(beluga_source_add(NULL, 0, 2 * MiB, "d", NULL, NULL), -EINVAL);
	assert_int_equal(beluga_source_add(pool, 0, 2 * MiB, "", NULL, NULL), -EINVAL);
	assert_int_equal(beluga_source_add(pool, 0, 2 * MiB, "a/b", NULL, NULL), -EINVAL);
	assert_int_equal(beluga_source_add(pool, 4096, 2 * MiB, "d", NULL, NULL), -EINVAL);
	assert_int_equal(beluga_source_add(pool, 0, 0, "d", NULL, NULL), -EINVAL);
	assert_int_equal(beluga_source_add(pool, 0, 3 * MiB, "d", NULL, NULL), -EINVAL);
	assert_int_equal(beluga_source_add(pool, 0, 2 * MiB, "d", "a b", NULL), -EINVAL);
	assert_int_equal(beluga_source_remove(pool, "a/b", 0), -EINVAL);
	assert_int_equal(f.last_add.size, 0);

	assert_int_equal(beluga_source_add(pool, 1ULL << 32, 64 * MiB, "dax0.0",
					   "set_cookie=0x1", &idx), 0);
	assert_int_equal(idx, 2);
	assert_int_equal(f.last_add.start, 1ULL << 32);
	assert_int_equal(f.last_add.size, 64 * MiB);
	assert_string_equal(f.last_add.name, "dax0.0");
	assert_string_equal(f.last_add.identity, "set_cookie=0x1");
	assert_int_equal(beluga_source_remove(pool, "dax0.0", 0), 0);
	assert_string_equal(f.last_remove.name, "dax0.0");
	assert_int_equal(beluga_source_remove(pool, NULL, 3), 0);
	assert_string_equal(f.last_remove.name, "");
	assert_int_equal(f.last_remove.index, 3);
	f.cmd_errno[_IOC_NR(BELUGA_IOC_SOURCE_REMOVE)] = EBUSY;
	assert_int_equal(beluga_source_remove(pool, "dax0.0", 0), -EBUSY);
	beluga_pool_close(pool);
	fake_fini(&f);

	/* A 1.2 driver: too old, nothing sent. */
	fake_init(&f);
	f.info.abi_version = BELUGA_ABI_VERSION(1, 2);
	assert_int_equal(open_with(&f, &pool), 0);
	assert_int_equal(beluga_source_add(pool, 0, 2 * MiB, "d", NULL, NULL),
			 -BELUGA_EDRIVER_TOO_OLD);
	assert_int_equal(beluga_source_remove(pool, "d", 0), -BELUGA_EDRIVER_TOO_OLD);
	beluga_pool_close(pool);
	fake_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pool_open_without_device_is_enodriver),
		cmocka_unit_test(pool_open_device_eacces_is_eacces),
		cmocka_unit_test(pool_open_driver_without_info_is_driver_too_old),
		cmocka_unit_test(pool_open_old_driver_major_is_driver_too_old),
		cmocka_unit_test(pool_open_driver_dropping_our_abi_is_library_too_old),
		cmocka_unit_test(pool_open_newer_driver_still_serving_us_is_ok),
		cmocka_unit_test(strerror_tells_driver_and_library_too_old_apart),
		cmocka_unit_test(pool_open_rejects_bad_options),
		cmocka_unit_test(pool_open_rejects_unknown_backend_env),
		cmocka_unit_test(pool_open_env_selects_kernel),
		cmocka_unit_test(pool_open_auto_uses_driver_when_device_exists),
		cmocka_unit_test(pool_logs_only_when_asked),
		cmocka_unit_test_setup_teardown(pool_info_reports_driver_values, setup, teardown),
		cmocka_unit_test_setup_teardown(pool_source_past_end_is_enoent, setup, teardown),
		cmocka_unit_test(pool_counters_read_sysfs),
		cmocka_unit_test_setup_teardown(region_create_rejects_invalid_names, setup, teardown),
		cmocka_unit_test_setup_teardown(region_names_are_ascii_only, setup, teardown),
		cmocka_unit_test_setup_teardown(region_create_rejects_bad_size_mode_flags_source, setup, teardown),
		cmocka_unit_test_setup_teardown(region_create_open_stat_list, setup, teardown),
		cmocka_unit_test_setup_teardown(region_create_existing_name_is_eexist, setup, teardown),
		cmocka_unit_test_setup_teardown(region_create_ephemeral_needs_no_name, setup, teardown),
		cmocka_unit_test_setup_teardown(region_driver_errnos_come_back, setup, teardown),
		cmocka_unit_test_setup_teardown(region_unknown_name_is_enoent, setup, teardown),
		cmocka_unit_test_setup_teardown(region_calls_reject_bad_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(region_chmod_chown_reach_the_driver, setup, teardown),
		cmocka_unit_test_setup_teardown(region_destroy_keeps_open_handles_working, setup, teardown),
		cmocka_unit_test_setup_teardown(map_rejects_bad_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(map_shares_bytes_between_handles, setup, teardown),
		cmocka_unit_test_setup_teardown(layout_reports_driver_nodes, setup, teardown),
		cmocka_unit_test_setup_teardown(send_recv_passes_the_region, setup, teardown),
		cmocka_unit_test_setup_teardown(from_fd_rejects_non_regions, setup, teardown),
		cmocka_unit_test_setup_teardown(shared_define_sends_the_extent, setup, teardown),
		cmocka_unit_test_setup_teardown(shared_define_rejects_bad_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(shared_define_driver_errnos_come_back, setup, teardown),
		cmocka_unit_test(shared_define_on_a_1_1_driver_is_driver_too_old),
		cmocka_unit_test(source_add_and_remove),
		cmocka_unit_test(every_failure_of_pool_open_is_reported),
		cmocka_unit_test(every_failure_of_region_lifecycle_is_reported),
		cmocka_unit_test(every_failure_of_region_passing_is_reported),
	};

	return cmocka_run_group_tests_name("libbeluga C API, kernel backend (fake driver)",
					   tests, NULL, NULL);
}
