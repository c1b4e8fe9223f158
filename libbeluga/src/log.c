// SPDX-License-Identifier: Apache-2.0
/*
 * Description: opt-in logging.  A library must not print on its own, so
 * nothing is written unless BELUGA_LOG (or the pool options) asks for it.
 * The level lives in the pool handle, not in a global.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

int beluga_log_level_from_env(void)
{
	const char *v = secure_getenv("BELUGA_LOG");
	char *end;
	long level;

	if (!v || !*v)
		return BELUGA_LOG_NONE;
	level = strtol(v, &end, 10);
	if (*end || level < BELUGA_LOG_NONE)
		return BELUGA_LOG_ERROR;	/* "yes", "on": errors at least */
	return level > BELUGA_LOG_DEBUG ? BELUGA_LOG_DEBUG : (int)level;
}

void beluga_log(const struct beluga_pool *pool, int level, const char *fmt, ...)
{
	static const char *const tag[] = { "", "error", "warning", "debug" };
	char msg[512];
	va_list ap;

	if (!pool || level > pool->log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (pool->log_fn)
		pool->log_fn(pool->log_ctx, level, msg);
	else
		fprintf(stderr, "libbeluga: %s: %s\n", tag[level], msg);
}
