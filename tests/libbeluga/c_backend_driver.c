// SPDX-License-Identifier: Apache-2.0
/*
 * Description: the kernel backend of the C API contract suite on the real
 * driver (/dev/beluga), for the VM suite: the same contract cases as on the
 * fake driver, every call still through the counting, fault-injecting ops
 * layer of fake_ops.c, but each ioctl answered by beluga.ko.  The contract
 * names its regions ("kv", "life", ...) and destroys what is left between
 * cases, so it runs only where the pool is its own: inside the VM suite
 * (BELUGA_VM=1) with no region in the pool when it starts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c_contract.h"

/* A pool on the driver with the library's own ops (nothing counted). */
static int plain_pool(struct beluga_pool **pool)
{
	struct beluga_pool_options o;

	beluga_pool_options_init(&o);
	o.backend = BELUGA_BACKEND_KERNEL;
	o.log_level = 0;
	return beluga_pool_open(&o, pool);
}

static int driver_open(struct fake *f, const char *dir, struct beluga_pool **pool)
{
	struct beluga_pool_options o;

	(void)dir;
	fake_driver_options(f, &o);
	return beluga_pool_open(&o, pool);
}

/*
 * A region still in the namespace: the driver also lists ephemeral regions
 * (no name) and destroyed ones that files or mappings keep alive.
 */
static bool named(const struct beluga_region_info *i)
{
	return i->name[0] && !(i->flags & BELUGA_INFO_DESTROYED);
}

/* Regions in the namespace. */
static int driver_entries(struct fake *f, const char *dir)
{
	struct beluga_region_info v[32];
	struct beluga_pool *pool;
	size_t n;
	int nr = 0;

	(void)f;
	(void)dir;
	assert_int_equal(plain_pool(&pool), 0);
	assert_int_equal(beluga_region_list(pool, v, NELEM(v), &n), 0);
	for (size_t i = 0; i < n && i < NELEM(v); i++)
		nr += named(&v[i]);
	beluga_pool_close(pool);
	return nr;
}

/* Destroy every named region the cases left (the pool is ours, see above). */
static void driver_clean(const char *dir)
{
	struct beluga_region_info v[32];
	struct beluga_pool *pool;
	size_t n;

	(void)dir;
	if (plain_pool(&pool))
		return;
	if (!beluga_region_list(pool, v, NELEM(v), &n))
		for (size_t i = 0; i < n && i < NELEM(v); i++)
			if (named(&v[i]))
				beluga_region_destroy(pool, v[i].name);
	beluga_pool_close(pool);
}

static const char *const driver_tolerated[] = { "close", "munmap", NULL };

const struct c_backend c_driver_backend = {
	.name = "driver",
	.id = BELUGA_BACKEND_KERNEL,
	.open = driver_open,
	.entries = driver_entries,
	.clean = driver_clean,
	.a_source = 0,
	.maps_aligned = true,
	.usage_counts = true,
	.tolerated = driver_tolerated,
	.min_lifecycle_calls = 20,
	.other = &c_user_backend,
};

/*
 * Why the contract cannot run on the real driver here, or NULL: outside the
 * VM suite the pool belongs to others, and regions already in it would be
 * destroyed.
 */
const char *c_driver_unusable(void)
{
	static char why[160];
	struct beluga_pool_info info;
	struct beluga_pool *pool;
	int ret;

	if (!getenv("BELUGA_VM"))
		return "runs only in the VM suite (BELUGA_VM=1): it destroys the regions it finds";
	ret = plain_pool(&pool);
	if (ret) {
		snprintf(why, sizeof(why), "no driver: %s", beluga_strerror(ret));
		return why;
	}
	ret = beluga_pool_get_info(pool, &info);
	beluga_pool_close(pool);
	if (ret || info.nr_regions) {
		snprintf(why, sizeof(why), "the pool is not empty (%u regions)",
			 ret ? 0 : info.nr_regions);
		return why;
	}
	return NULL;
}
