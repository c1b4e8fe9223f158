// SPDX-License-Identifier: Apache-2.0
/*
 * Description: pool handles - options, backend choice, open/close, info.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include <linux/beluga.h>

#include "internal.h"

void beluga_pool_options_init(struct beluga_pool_options *opts)
{
	if (!opts)
		return;
	memset(opts, 0, sizeof(*opts));
	opts->size = sizeof(*opts);
	opts->backend = BELUGA_BACKEND_AUTO;
	opts->log_level = -1;
}

/* Copy the caller's options; members past an older caller's size keep defaults. */
static int options_copy(struct beluga_pool_options *dst,
			const struct beluga_pool_options *src)
{
	beluga_pool_options_init(dst);
	if (!src)
		return 0;
	if (src->size < offsetof(struct beluga_pool_options, device_path))
		return -EINVAL;
	memcpy(dst, src, src->size < sizeof(*dst) ? src->size : sizeof(*dst));
	dst->size = sizeof(*dst);
	return 0;
}

static int backend_from_env(struct beluga_pool *pool, int *backend)
{
	const char *v = secure_getenv("BELUGA_BACKEND");

	if (!v || !*v || !strcmp(v, "auto"))
		*backend = BELUGA_BACKEND_AUTO;
	else if (!strcmp(v, "kernel"))
		*backend = BELUGA_BACKEND_KERNEL;
	else if (!strcmp(v, "user"))
		*backend = BELUGA_BACKEND_USER;
	else {
		blog_err(pool, "BELUGA_BACKEND=%s: expected kernel, user or auto", v);
		return -EINVAL;
	}
	return 0;
}

/* Option, then BELUGA_BACKEND, then: the driver if its device exists. */
static int choose_backend(struct beluga_pool *pool,
			  const struct beluga_pool_options *opts, int *backend)
{
	const char *dev = opts->device_path ? opts->device_path : BELUGA_DEVICE_PATH;
	struct stat st;
	int ret;

	*backend = opts->backend;
	if (*backend == BELUGA_BACKEND_KERNEL || *backend == BELUGA_BACKEND_USER)
		return 0;
	if (*backend != BELUGA_BACKEND_AUTO)
		return -EINVAL;
	ret = backend_from_env(pool, backend);
	if (ret || *backend != BELUGA_BACKEND_AUTO)
		return ret;
	ret = pool->ops.fstatat(pool->ops.ctx, AT_FDCWD, dev, &st, 0);
	*backend = ret == -ENOENT ? BELUGA_BACKEND_USER : BELUGA_BACKEND_KERNEL;
	blog_dbg(pool, "%s %s: %s backend", dev, ret ? "absent" : "present",
		 *backend == BELUGA_BACKEND_USER ? "user" : "kernel");
	return 0;
}

static int pool_setup(struct beluga_pool *pool,
		      const struct beluga_pool_options *o)
{
	atomic_init(&pool->refs, 1);
	beluga_ops_resolve(&pool->ops, o->ops);
	pool->log_level = o->log_level < 0 ? beluga_log_level_from_env()
					   : o->log_level;
	if (pool->log_level > BELUGA_LOG_DEBUG)
		pool->log_level = BELUGA_LOG_DEBUG;
	pool->log_fn = o->log_fn;
	pool->log_ctx = o->log_ctx;
	pool->gpu_chunk_max = o->gpu_chunk_max ? o->gpu_chunk_max
					       : BELUGA_DEFAULT_GPU_CHUNK;
	pool->gpu_chunk_max &= ~(BELUGA_CHUNK - 1);
	if (!pool->gpu_chunk_max)
		return -EINVAL;
	if (o->ops && o->ops->size < offsetof(struct beluga_ops, open))
		return -EINVAL;
	return 0;
}

int beluga_pool_open(const struct beluga_pool_options *opts,
		     struct beluga_pool **out)
{
	struct beluga_pool_options o;
	struct beluga_pool *pool;
	int backend, ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	ret = options_copy(&o, opts);
	if (ret)
		return ret;
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	ret = pool_setup(pool, &o);
	if (!ret)
		ret = choose_backend(pool, &o, &backend);
	if (!ret) {
		pool->backend = backend;
		ret = backend == BELUGA_BACKEND_KERNEL ? beluga_kernel_open(pool, &o)
						       : beluga_user_open(pool, &o);
	}
	if (ret) {
		blog_err(pool, "cannot open the pool: %s", beluga_strerror(ret));
		free(pool);
		return ret;
	}
	*out = pool;
	return 0;
}

void beluga_pool_ref(struct beluga_pool *pool)
{
	atomic_fetch_add(&pool->refs, 1);
}

void beluga_pool_unref(struct beluga_pool *pool)
{
	if (atomic_fetch_sub(&pool->refs, 1) != 1)
		return;
	pool->be->close(pool);
	free(pool);
}

void beluga_pool_close(struct beluga_pool *pool)
{
	if (pool)
		beluga_pool_unref(pool);
}

int beluga_pool_backend(const struct beluga_pool *pool)
{
	return pool ? pool->backend : -EINVAL;
}

int beluga_pool_get_info(struct beluga_pool *pool, struct beluga_pool_info *info)
{
	if (!pool || !info)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	info->backend = (uint32_t)pool->backend;
	return pool->be->info(pool, info);
}

int beluga_pool_get_source(struct beluga_pool *pool, uint32_t index,
		       struct beluga_pool_source_info *info)
{
	if (!pool || !info)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	return pool->be->source(pool, index, info);
}

/* 0..63 printable ASCII bytes without spaces (the driver's rule). */
static bool identity_valid(const char *id)
{
	size_t len = strnlen(id, BELUGA_NAME_MAX);

	if (len == BELUGA_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (id[i] <= ' ' || id[i] > '~')
			return false;
	return true;
}

int beluga_source_add(struct beluga_pool *pool, uint64_t start, uint64_t size,
		      const char *name, const char *identity, uint32_t *index)
{
	int ret;

	if (!pool || !beluga_name_valid(name) || !size ||
	    start % BELUGA_CHUNK || size % BELUGA_CHUNK ||
	    !identity_valid(identity ? identity : ""))
		return -EINVAL;
	if (!pool->be->source_add) {
		blog_err(pool, "source %s: the %s backend takes no memory sources",
			 name, pool->be->name);
		return -EOPNOTSUPP;
	}
	ret = pool->be->source_add(pool, start, size, name,
				   identity ? identity : "", index);
	if (ret)
		blog_dbg(pool, "add source %s (%llu bytes): %s", name,
			 (unsigned long long)size, beluga_strerror(ret));
	return ret;
}

int beluga_source_remove(struct beluga_pool *pool, const char *name,
			 uint32_t index)
{
	int ret;

	if (!pool || (name && *name && !beluga_name_valid(name)))
		return -EINVAL;
	if (!pool->be->source_remove)
		return -EOPNOTSUPP;
	ret = pool->be->source_remove(pool, name ? name : "", index);
	if (ret)
		blog_dbg(pool, "remove source %s (index %u): %s",
			 name ? name : "", index, beluga_strerror(ret));
	return ret;
}

int beluga_pool_get_counters(struct beluga_pool *pool,
			 struct beluga_pool_counters *counters)
{
	if (!pool || !counters)
		return -EINVAL;
	memset(counters, 0, sizeof(*counters));
	return pool->be->counters(pool, counters);
}
