/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Description: the C API contract suite (CMocka), run once per backend.
 * c_contract.c holds the cases every backend must pass; a backend supplies
 * a struct c_backend that opens its pools, plus the cases only it has:
 * c_backend_kernel.c (the kernel backend on the fake driver of fake_ops.c),
 * c_backend_user.c (the user-space backend in a private tmpfs directory) and
 * c_backend_driver.c (the kernel backend on the real driver, VM suite only).
 * test_c_api.c runs the groups: `test_c_api kernel|user|library|driver`.
 */
#ifndef BELUGA_TEST_C_CONTRACT_H
#define BELUGA_TEST_C_CONTRACT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sweep.h"

#define MiB (1ULL << 20)
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct c_ctx;

struct c_backend {
	const char *name;			/* "kernel", "user" */
	int id;					/* BELUGA_BACKEND_* */
	/*
	 * Open a pool of this backend on @f's ops; @dir is the pool
	 * directory of the user backend (ignored by the kernel one).
	 */
	int (*open)(struct fake *f, const char *dir, struct beluga_pool **pool);
	/* Regions (and, for the user backend, stray files) left in the pool. */
	int (*entries)(struct fake *f, const char *dir);
	/* Remove what open() created on disk (user backend). */
	void (*clean)(const char *dir);
	/* A source index that exists, and whether usage counts are kept. */
	int32_t a_source;
	bool usage_counts;
	/* Mappings start on 2 MiB (the fake driver's memfds do not). */
	bool maps_aligned;
	/* The fault-injection sweep: failures tolerated, calls at least. */
	const char *const *tolerated;
	long min_lifecycle_calls;
	const struct c_backend *other;		/* the other backend */
};

struct c_ctx {
	const struct c_backend *b;
	struct fake f;
	struct beluga_pool *pool;
	char dir[128];			/* user backend: pool directory */
	char huge[128];			/* user backend: simulated hugetlbfs */
	char log[512];			/* captured log messages */
};

extern const struct c_backend c_kernel_backend, c_user_backend, c_driver_backend;
/* Why the real driver cannot be tested here, or NULL (c_backend_driver.c). */
const char *c_driver_unusable(void);

/* A context for @b without a pool (c->pool NULL); c_ctx_free() undoes it. */
struct c_ctx *c_ctx_new(const struct c_backend *b);
void c_ctx_free(struct c_ctx *c);
/* Fixtures: the prestate is the backend, the state becomes a c_ctx. */
int c_setup(void **state);		/* with an open pool */
int c_setup_nopool(void **state);	/* without */
int c_teardown(void **state);

/* Cases: each fills @out (room for @cap) with its backend in the prestate. */
size_t c_contract_cases(const struct c_backend *b, struct CMUnitTest *out, size_t cap);
size_t c_kernel_cases(struct CMUnitTest *out, size_t cap);
size_t c_user_cases(struct CMUnitTest *out, size_t cap);

/* Log callback writing the last message into a 512-byte buffer. */
void c_capture_log(void *ctx, int level, const char *msg);

#endif /* BELUGA_TEST_C_CONTRACT_H */
