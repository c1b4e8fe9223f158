// SPDX-License-Identifier: Apache-2.0
/*
 * Description: fault-injection sweep (see sweep.h).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sweep.h"

#define INJECTED EIO

static bool listed(const char *op, const char *const *list)
{
	for (; list && *list; list++)
		if (!strcmp(op, *list))
			return true;
	return false;
}

long sweep(scenario_fn fn, void *arg, const char *const *tolerated)
{
	int fds = count_fds();
	struct fake f;
	long n;
	int ret;

	fake_init(&f);
	ret = fn(&f, arg);
	n = f.calls;
	assert_int_equal(f.map_bytes, 0);
	fake_fini(&f);
	assert_int_equal(ret, 0);
	assert_int_equal(count_fds(), fds);
	for (long k = 1; k <= n; k++) {
		fake_init(&f);
		f.fail_at = k;
		f.fail_errno = INJECTED;
		ret = fn(&f, arg);
		if (!f.failed_op) {
			fake_fini(&f);
			fail_msg("call %ld of %ld was never made", k, n);
		}
		if (ret != -INJECTED && !(ret == 0 && listed(f.failed_op, tolerated)))
			fail_msg("call %ld (%s) failed with EIO: scenario returned %d",
				 k, f.failed_op, ret);
		if (strcmp(f.failed_op, "munmap"))	/* that one really leaks */
			assert_int_equal(f.map_bytes, 0);
		fake_fini(&f);
		if (count_fds() != fds)
			fail_msg("call %ld (%s) failing leaked %d fd(s)", k,
				 f.failed_op, count_fds() - fds);
	}
	print_message("swept %ld calls\n", n);
	return n;
}
