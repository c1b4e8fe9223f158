// SPDX-License-Identifier: Apache-2.0
/*
 * Description: CMocka tests of GPU registration logic with a fake CUDA
 * behind the ops layer: chunking, rollback of earlier chunks, the
 * placement check, teardown order, and a fault-injection sweep.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "skip_report.h"

#include "sweep.h"

#define MiB (1ULL << 20)

struct ctx {
	struct fake f;
	struct beluga_pool *pool;
	struct beluga_region *region;
	struct beluga_mapping *map;
};

/* A kernel-backend pool on the fake driver (layout: nodes 1, 2, 1, ...). */
static struct ctx *open_ctx(uint64_t chunk_max, uint64_t size)
{
	struct ctx *c = calloc(1, sizeof(*c));
	struct beluga_pool_options o;

	fake_init(&c->f);
	c->f.gpus = 2;
	fake_kernel_options(&c->f, &o);
	o.gpu_chunk_max = chunk_max;
	assert_int_equal(beluga_pool_open(&o, &c->pool), 0);
	assert_int_equal(beluga_region_create(c->pool, "g", size, 0600, 0, -1,
					      &c->region), 0);
	assert_int_equal(beluga_region_map(c->region, 0, 0, BELUGA_PROT_READ |
					   BELUGA_PROT_WRITE, &c->map), 0);
	return c;
}

static void close_ctx(struct ctx *c)
{
	beluga_mapping_unmap(c->map);
	beluga_region_close(c->region);
	beluga_pool_close(c->pool);
	assert_int_equal(c->f.map_bytes, 0);
	assert_int_equal(c->f.gpu_registered, 0);
	fake_fini(&c->f);
	free(c);
}

static void gpu_count_without_gpu_is_enogpu(void **state)
{
	struct ctx *c = open_ctx(0, 2 * MiB);
	struct beluga_gpu_reg *reg;
	int n;

	(void)state;
	c->f.gpus = 0;
	assert_int_equal(beluga_gpu_count(c->pool, &n), -BELUGA_ENOGPU);
	assert_int_equal(beluga_gpu_register(c->map, 0, 0, &reg), -BELUGA_ENOGPU);
	assert_int_equal(beluga_gpu_count(c->pool, NULL), -EINVAL);
	close_ctx(c);
}

static void gpu_default_ops_report_no_gpu_or_no_cuda(void **state)
{
	const struct beluga_ops *d = beluga_default_ops();
	int n = -1, ret = d->gpu_count(NULL, &n);

	(void)state;
	/* a CI host: built with CUDA but no driver, or built without CUDA */
	if (ret >= 0) {
		assert_true(n > 0);
		beluga_skip_report(__func__, "a GPU machine: tests/libbeluga/test_gpu covers it");
		skip();
	}
	assert_true(ret == -BELUGA_ENOGPU || ret == -BELUGA_ENOCUDA);
	assert_int_equal(n, 0);
}

static void gpu_register_rejects_bad_arguments(void **state)
{
	struct ctx *c = open_ctx(0, 2 * MiB);
	struct beluga_gpu_reg *reg = (void *)1;

	(void)state;
	assert_int_equal(beluga_gpu_register(c->map, 0, 4, &reg), -EINVAL);
	assert_null(reg);
	assert_int_equal(beluga_gpu_register(c->map, -1, 0, &reg), -EINVAL);
	assert_int_equal(beluga_gpu_register(c->map, 2, 0, &reg), -ENODEV);
	assert_int_equal(beluga_gpu_register(NULL, 0, 0, &reg), -EINVAL);
	assert_int_equal(beluga_gpu_register(c->map, 0, 0, NULL), -EINVAL);
	assert_int_equal(c->f.gpu_register_calls, 0);
	close_ctx(c);
}

static void gpu_register_cuts_mapping_into_chunks(void **state)
{
	struct ctx *c = open_ctx(4 * MiB, 10 * MiB);
	struct beluga_gpu_reg *reg;

	(void)state;
	c->f.moved_node = -1;
	assert_int_equal(beluga_gpu_register(c->map, 1, BELUGA_GPU_NO_VERIFY, &reg), 0);
	assert_int_equal(beluga_gpu_reg_chunks(reg), 3);	/* 4 + 4 + 2 MiB */
	assert_int_equal(beluga_gpu_reg_chunk_bytes(reg), 4 * MiB);
	assert_int_equal(c->f.gpu_registered, 3);
	assert_ptr_equal(beluga_gpu_reg_device_pointer(reg), beluga_mapping_addr(c->map));
	beluga_gpu_unregister(reg);
	assert_int_equal(c->f.sync_calls, 1);
	assert_int_equal(c->f.gpu_registered, 0);
	beluga_gpu_unregister(NULL);
	close_ctx(c);
}

static void gpu_chunk_limit_rounds_down_to_2mib_and_defaults_to_64gib(void **state)
{
	struct ctx *c = open_ctx(5 * MiB, 8 * MiB);	/* -> 4 MiB chunks */
	struct beluga_gpu_reg *reg;

	(void)state;
	assert_int_equal(beluga_gpu_register(c->map, 0, BELUGA_GPU_NO_VERIFY, &reg), 0);
	assert_int_equal(beluga_gpu_reg_chunks(reg), 2);
	beluga_gpu_unregister(reg);
	close_ctx(c);
	c = open_ctx(0, 8 * MiB);
	assert_int_equal(beluga_gpu_register(c->map, 0, BELUGA_GPU_NO_VERIFY, &reg), 0);
	assert_int_equal(beluga_gpu_reg_chunks(reg), 1);
	beluga_gpu_unregister(reg);
	close_ctx(c);
}

static void gpu_register_failure_rolls_back_earlier_chunks(void **state)
{
	struct ctx *c = open_ctx(2 * MiB, 8 * MiB);
	struct beluga_gpu_reg *reg = (void *)1;

	(void)state;
	c->f.gpu_fail_register_at = 3;
	assert_int_equal(beluga_gpu_register(c->map, 0, BELUGA_GPU_NO_VERIFY, &reg), -ENOMEM);
	assert_null(reg);
	assert_int_equal(c->f.gpu_register_calls, 3);
	assert_int_equal(c->f.gpu_registered, 0);
	close_ctx(c);
}

static void gpu_register_detects_pages_that_moved(void **state)
{
	struct ctx *c = open_ctx(2 * MiB, 4 * MiB);
	struct beluga_gpu_reg *reg;

	(void)state;
	c->f.moved_node = 0;	/* layout says 1, 2; move_pages says 0 */
	assert_int_equal(beluga_gpu_register(c->map, 0, 0, &reg), -BELUGA_EPLACEMENT);
	assert_int_equal(c->f.gpu_registered, 0);
	assert_non_null(strstr(beluga_strerror(-BELUGA_EPLACEMENT), "--no-movable"));
	assert_int_equal(beluga_gpu_register(c->map, 0, BELUGA_GPU_NO_VERIFY, &reg), 0);
	beluga_gpu_unregister(reg);
	close_ctx(c);
}

static void gpu_register_passes_when_pages_stay(void **state)
{
	struct ctx *c = open_ctx(2 * MiB, 2 * MiB);
	struct beluga_gpu_reg *reg;

	(void)state;
	c->f.moved_node = 1;	/* the one chunk is on node 1, as laid out */
	assert_int_equal(beluga_gpu_register(c->map, 0, 0, &reg), 0);
	beluga_gpu_unregister(reg);
	close_ctx(c);
}

static void gpu_registration_keeps_mapping_until_unregistered(void **state)
{
	struct ctx *c = open_ctx(0, 4 * MiB);
	struct beluga_gpu_reg *reg;
	char *p = beluga_mapping_addr(c->map);

	(void)state;
	assert_int_equal(beluga_gpu_register(c->map, 0, BELUGA_GPU_NO_VERIFY, &reg), 0);
	beluga_mapping_unmap(c->map);	/* user drops it: still mapped for the GPU */
	c->map = NULL;
	beluga_region_close(c->region);
	c->region = NULL;
	p[4 * MiB - 1] = 1;
	assert_int_equal(c->f.map_bytes, 4 * MiB);
	beluga_gpu_unregister(reg);	/* sync, unregister, then munmap */
	assert_int_equal(c->f.map_bytes, 0);
	close_ctx(c);
}

/* ---- the driver's GPU accounting (ABI 1.1) ------------------------------- */

static struct ctx *open_accounting_ctx(uint64_t driver_limit, uint64_t size)
{
	struct ctx *c = calloc(1, sizeof(*c));
	struct beluga_pool_options o;

	fake_init(&c->f);
	c->f.gpus = 1;
	c->f.info.features |= BELUGA_FEAT_GPU_REGISTER;
	c->f.gpu_max_register_bytes = driver_limit;
	fake_kernel_options(&c->f, &o);
	assert_int_equal(beluga_pool_open(&o, &c->pool), 0);
	assert_int_equal(beluga_region_create(c->pool, "g", size, 0600, 0, -1,
					      &c->region), 0);
	assert_int_equal(beluga_region_map(c->region, 0, 0, BELUGA_PROT_READ, &c->map), 0);
	return c;
}

static void gpu_driver_accounting_wraps_the_registration(void **state)
{
	struct ctx *c = open_accounting_ctx(4 * MiB, 10 * MiB);
	struct beluga_gpu_reg *reg;

	(void)state;
	c->f.moved_node = -1;
	assert_int_equal(beluga_gpu_register(c->map, 0, BELUGA_GPU_NO_VERIFY, &reg), 0);
	assert_int_equal(c->f.driver_gpu_refs, 1);
	assert_int_equal(beluga_gpu_reg_chunks(reg), 3);	/* the driver's 4 MiB limit */
	assert_int_equal(beluga_gpu_reg_socket(reg), BELUGA_GPU_SOCKET_SAME);
	assert_int_equal(beluga_region_destroy(c->pool, "g"), -EBUSY);
	beluga_gpu_unregister(reg);
	assert_int_equal(c->f.driver_gpu_refs, 0);
	assert_int_equal(beluga_region_destroy(c->pool, "g"), 0);
	close_ctx(c);
}

static void gpu_driver_refusal_registers_nothing(void **state)
{
	struct ctx *c = open_accounting_ctx(0, 4 * MiB);
	struct beluga_gpu_reg *reg;

	(void)state;
	c->f.cmd_errno[_IOC_NR(BELUGA_IOC_GPU_REGISTER)] = ENODEV;
	assert_int_equal(beluga_gpu_register(c->map, 0, 0, &reg), -ENODEV);
	assert_int_equal(c->f.gpu_register_calls, 0);
	assert_int_equal(c->f.driver_gpu_refs, 0);
	close_ctx(c);
}

static void gpu_driver_reference_is_dropped_on_rollback(void **state)
{
	struct ctx *c = open_accounting_ctx(2 * MiB, 4 * MiB);
	struct beluga_gpu_reg *reg;

	(void)state;
	c->f.gpu_fail_register_at = 2;
	assert_int_equal(beluga_gpu_register(c->map, 0, BELUGA_GPU_NO_VERIFY, &reg), -ENOMEM);
	assert_int_equal(c->f.driver_gpu_refs, 0);
	assert_int_equal(c->f.gpu_registered, 0);
	c->f.moved_node = 0;	/* the driver says nodes 1, 2 */
	c->f.gpu_fail_register_at = 0;
	assert_int_equal(beluga_gpu_register(c->map, 0, 0, &reg), -BELUGA_EPLACEMENT);
	assert_int_equal(c->f.driver_gpu_refs, 0);
	close_ctx(c);
}

static const char *const gpu_tolerated[] = {
	"close", "munmap", "gpu_unregister", "gpu_synchronize", NULL
};

static int sc_gpu(struct fake *f, void *arg)
{
	bool accounting = arg != NULL;
	struct beluga_pool_options o;
	struct beluga_pool *pool;
	struct beluga_region *r = NULL;
	struct beluga_mapping *m = NULL;
	struct beluga_gpu_reg *reg = NULL;
	int ret;

	f->gpus = 1;
	f->moved_node = 1;
	if (accounting)
		f->info.features |= BELUGA_FEAT_GPU_REGISTER;
	fake_kernel_options(f, &o);
	o.gpu_chunk_max = 2 * MiB;
	ret = beluga_pool_open(&o, &pool);
	if (ret)
		return ret;
	ret = beluga_region_create(pool, "g", 2 * MiB, 0600, 0, -1, &r);
	if (!ret)
		ret = beluga_region_map(r, 0, 0, BELUGA_PROT_READ, &m);
	if (!ret)
		ret = beluga_gpu_register(m, 0, 0, &reg);
	beluga_gpu_unregister(reg);
	beluga_mapping_unmap(m);
	beluga_region_close(r);
	beluga_pool_close(pool);
	if (f->gpu_registered && strcmp(f->failed_op ? f->failed_op : "", "gpu_unregister"))
		fail_msg("%d chunk(s) left registered", f->gpu_registered);
	if (f->driver_gpu_refs && strcmp(f->failed_op ? f->failed_op : "", "ioctl"))
		fail_msg("the driver still holds a GPU reference");
	return ret;
}

static void every_failure_of_gpu_registration_is_reported(void **state)
{
	(void)state;
	assert_true(sweep(sc_gpu, NULL, gpu_tolerated) >= 8);
}

static const char *const accounting_tolerated[] = {
	"close", "munmap", "gpu_unregister", "gpu_synchronize", "ioctl", NULL
};

static void every_failure_with_driver_accounting_is_reported(void **state)
{
	(void)state;
	assert_true(sweep(sc_gpu, "accounting", accounting_tolerated) >= 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(gpu_count_without_gpu_is_enogpu),
		cmocka_unit_test(gpu_default_ops_report_no_gpu_or_no_cuda),
		cmocka_unit_test(gpu_register_rejects_bad_arguments),
		cmocka_unit_test(gpu_register_cuts_mapping_into_chunks),
		cmocka_unit_test(gpu_chunk_limit_rounds_down_to_2mib_and_defaults_to_64gib),
		cmocka_unit_test(gpu_register_failure_rolls_back_earlier_chunks),
		cmocka_unit_test(gpu_register_detects_pages_that_moved),
		cmocka_unit_test(gpu_register_passes_when_pages_stay),
		cmocka_unit_test(gpu_registration_keeps_mapping_until_unregistered),
		cmocka_unit_test(gpu_driver_accounting_wraps_the_registration),
		cmocka_unit_test(gpu_driver_refusal_registers_nothing),
		cmocka_unit_test(gpu_driver_reference_is_dropped_on_rollback),
		cmocka_unit_test(every_failure_of_gpu_registration_is_reported),
		cmocka_unit_test(every_failure_with_driver_accounting_is_reported),
	};

	return cmocka_run_group_tests_name("libbeluga GPU registration logic (fake CUDA)",
					   tests, NULL, NULL);
}
