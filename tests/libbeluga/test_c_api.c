// SPDX-License-Identifier: Apache-2.0
/*
 * Description: CMocka tests of libbeluga's C API.  One contract suite
 * (c_contract.c) runs on each backend, followed by the cases only that
 * backend has (c_backend_kernel.c: the fake driver of fake_ops.c;
 * c_backend_user.c); the "library" group holds what depends on no backend
 * (error strings, option checks, BELUGA_BACKEND, logging).  The "driver"
 * group runs the contract on the real driver (c_backend_driver.c), in the
 * VM suite.
 *
 *   test_c_api kernel|user|library|driver   one group
 *   test_c_api                              kernel, user and library
 *
 * Exit status: 0 when every case of the groups run passed, 77 when the
 * driver group cannot run here (reported with its reason), 1 otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c_contract.h"
#include "skip_report.h"

#define MAX_CASES 64

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

static int run_backend(const struct c_backend *b, const char *group,
		       size_t (*extra)(struct CMUnitTest *, size_t))
{
	struct CMUnitTest cases[MAX_CASES];
	size_t n = c_contract_cases(b, cases, MAX_CASES);

	n += extra(cases + n, MAX_CASES - n);
	return _cmocka_run_group_tests(group, cases, n, NULL, NULL);
}

static size_t no_extra(struct CMUnitTest *out, size_t cap)
{
	(void)out;
	(void)cap;
	return 0;
}

static int run_library(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(strerror_tells_driver_and_library_too_old_apart),
		cmocka_unit_test(pool_open_rejects_bad_options),
		cmocka_unit_test(pool_open_rejects_unknown_backend_env),
		cmocka_unit_test(pool_logs_only_when_asked),
	};

	return cmocka_run_group_tests_name("libbeluga C API, no backend", tests, NULL, NULL);
}

int main(int argc, char **argv)
{
	const char *which = argc > 1 ? argv[1] : "all";
	bool all = !strcmp(which, "all");
	int failed = 0;

	if (argc > 2 || (!all && strcmp(which, "kernel") && strcmp(which, "user") &&
			 strcmp(which, "library") && strcmp(which, "driver"))) {
		fprintf(stderr, "usage: %s [kernel|user|library|driver]\n", argv[0]);
		return 2;
	}
	if (!strcmp(which, "driver")) {
		const char *why = c_driver_unusable();

		if (why) {
			beluga_skip_report("driver", why);
			printf("driver: skipped: %s\n", why);
			return 77;
		}
		return run_backend(&c_driver_backend,
				   "libbeluga C API contract, kernel backend (beluga.ko)",
				   no_extra) ? 1 : 0;
	}
	if (all || !strcmp(which, "library"))
		failed += run_library();
	if (all || !strcmp(which, "kernel"))
		failed += run_backend(&c_kernel_backend,
				      "libbeluga C API contract, kernel backend (fake driver)",
				      c_kernel_cases);
	if (all || !strcmp(which, "user"))
		failed += run_backend(&c_user_backend,
				      "libbeluga C API contract, user-space backend",
				      c_user_cases);
	return failed ? 1 : 0;
}
