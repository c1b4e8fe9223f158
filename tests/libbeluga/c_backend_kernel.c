// SPDX-License-Identifier: Apache-2.0
/*
 * Description: the kernel backend of the C API contract suite, against the
 * fake driver of fake_ops.c, and the cases only the kernel backend has: the
 * device and the two-way ABI check, backend selection, the driver's values
 * passed through (info, sources, ids, layout, chown to any uid), sysfs
 * counters, every errno the driver can return, shared regions (ABI 1.2), and
 * a fault-injection sweep over pool open.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "c_contract.h"

/* ---- the backend ------------------------------------------------------------ */

static int open_with(struct fake *f, struct beluga_pool **pool)
{
	struct beluga_pool_options o;

	fake_kernel_options(f, &o);
	return beluga_pool_open(&o, pool);
}

static int kernel_open(struct fake *f, const char *dir, struct beluga_pool **pool)
{
	(void)dir;
	return open_with(f, pool);
}

/* Named regions the fake driver holds (not destroyed). */
static int kernel_entries(struct fake *f, const char *dir)
{
	int n = 0;

	(void)dir;
	for (int i = 0; i < FAKE_MAX_REGIONS; i++)
		n += f->r[i].used && !f->r[i].destroyed && f->r[i].name[0];
	return n;
}

static const char *const kernel_tolerated[] = { "close", "munmap", NULL };

const struct c_backend c_kernel_backend = {
	.name = "kernel",
	.id = BELUGA_BACKEND_KERNEL,
	.open = kernel_open,
	.entries = kernel_entries,
	.a_source = 1,
	.maps_aligned = false,
	.usage_counts = true,
	.tolerated = kernel_tolerated,
	.min_lifecycle_calls = 20,
	.other = &c_user_backend,
};

/* ---- pool open and the ABI check ------------------------------------------- */

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

/* ---- pool info, sources, counters ----------------------------------------- */

static void pool_info_reports_driver_values(void **state)
{
	struct c_ctx *c = *state;
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
	struct c_ctx *c = *state;
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

/* ---- driver errnos ------------------------------------------------------------ */

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
	struct c_ctx *c = *state;
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

/* ---- shared regions (driver ABI 1.2) --------------------------------------- */

static void shared_define_sends_the_extent(void **state)
{
	struct c_ctx *c = *state;
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
	struct c_ctx *c = *state;
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
	struct c_ctx *c = *state;
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

/* ---- fault injection over pool open --------------------------------------- */

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

static void every_failure_of_pool_open_is_reported(void **state)
{
	(void)state;
	assert_true(sweep(sc_open, NULL, kernel_tolerated) >= 3);
}

/* ---- what the driver decides ------------------------------------------------- */

static void region_ids_and_layout_come_from_the_driver(void **state)
{
	struct c_ctx *c = *state;
	struct beluga_region *r;
	int32_t nodes[8];
	size_t n;

	assert_int_equal(beluga_region_create(c->pool, "lay", 6 * MiB, 0600, 0, -1, &r), 0);
	assert_int_equal(beluga_region_id(r), 1);
	assert_int_equal(beluga_region_layout(r, nodes, 8, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(nodes[0], 1);
	assert_int_equal(nodes[1], 2);
	assert_int_equal(nodes[2], 1);
	beluga_region_close(r);
}

/* The driver decides who may chown; the library passes any uid on. */
static void region_chown_to_another_uid_reaches_the_driver(void **state)
{
	struct c_ctx *c = *state;
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

/* ---- the table --------------------------------------------------------------- */

#define K(f) cmocka_unit_test_prestate(f, (void *)&c_kernel_backend)
#define KPOOL(f) cmocka_unit_test_prestate_setup_teardown(f, c_setup, c_teardown, \
							  (void *)&c_kernel_backend)

static const struct CMUnitTest kernel_cases[] = {
	K(pool_open_without_device_is_enodriver),
	K(pool_open_device_eacces_is_eacces),
	K(pool_open_driver_without_info_is_driver_too_old),
	K(pool_open_old_driver_major_is_driver_too_old),
	K(pool_open_driver_dropping_our_abi_is_library_too_old),
	K(pool_open_newer_driver_still_serving_us_is_ok),
	K(pool_open_env_selects_kernel),
	K(pool_open_auto_uses_driver_when_device_exists),
	KPOOL(pool_info_reports_driver_values),
	KPOOL(pool_source_past_end_is_enoent),
	K(pool_counters_read_sysfs),
	KPOOL(region_ids_and_layout_come_from_the_driver),
	KPOOL(region_chown_to_another_uid_reaches_the_driver),
	KPOOL(region_driver_errnos_come_back),
	KPOOL(shared_define_sends_the_extent),
	KPOOL(shared_define_rejects_bad_arguments),
	KPOOL(shared_define_driver_errnos_come_back),
	K(shared_define_on_a_1_1_driver_is_driver_too_old),
	K(source_add_and_remove),
	K(every_failure_of_pool_open_is_reported),
};

size_t c_kernel_cases(struct CMUnitTest *out, size_t cap)
{
	assert_true(NELEM(kernel_cases) <= cap);
	memcpy(out, kernel_cases, sizeof(kernel_cases));
	return NELEM(kernel_cases);
}
