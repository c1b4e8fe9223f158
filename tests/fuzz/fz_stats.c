// SPDX-License-Identifier: Apache-2.0
/*
 * fz_stats.c - counters, oracle violations and the per-thread trail.
 *
 * Workers are threads of several processes, so the counters live in one
 * MAP_SHARED anonymous mapping and are updated with atomics.  Output from
 * workers uses write(2) on a stack buffer: no stdio, no malloc, so it is
 * safe from threads and from forked children of threaded processes.
 */
#define _GNU_SOURCE
#include "fz.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const fz_op_names[FZ_OP_COUNT] = {
	[FZ_OP_INFO] = "INFO",
	[FZ_OP_SOURCE_INFO] = "SOURCE_INFO",
	[FZ_OP_CREATE] = "REGION_CREATE",
	[FZ_OP_OPEN] = "REGION_OPEN",
	[FZ_OP_DESTROY] = "REGION_DESTROY",
	[FZ_OP_STAT] = "REGION_STAT",
	[FZ_OP_LIST] = "REGION_LIST",
	[FZ_OP_SETATTR] = "REGION_SETATTR",
	[FZ_OP_QUOTA_GET] = "QUOTA_GET",
	[FZ_OP_QUOTA_SET] = "QUOTA_SET",
	[FZ_OP_SHARED_DEFINE] = "SHARED_DEFINE",
	[FZ_OP_DEV_UNKNOWN] = "dev: unknown cmd",
	[FZ_OP_FD_STAT] = "REGION_FD_STAT",
	[FZ_OP_LAYOUT] = "REGION_LAYOUT",
	[FZ_OP_GPU_REGISTER] = "GPU_REGISTER",
	[FZ_OP_GPU_UNREGISTER] = "GPU_UNREGISTER",
	[FZ_OP_RFD_UNKNOWN] = "region fd: unknown cmd",
	[FZ_OP_MMAP] = "mmap",
	[FZ_OP_MUNMAP] = "munmap",
	[FZ_OP_MPROTECT] = "mprotect",
	[FZ_OP_MADVISE] = "madvise",
	[FZ_OP_MREMAP] = "mremap",
	[FZ_OP_MSYNC] = "msync",
	[FZ_OP_MLOCK] = "mlock/munlock",
	[FZ_OP_TOUCH] = "touch",
	[FZ_OP_VMSPLICE] = "vmsplice",
	[FZ_OP_CLOSE] = "close",
	[FZ_OP_DUP] = "dup",
	[FZ_OP_PASS_FD] = "SCM_RIGHTS",
	[FZ_OP_FORK] = "fork",
	[FZ_OP_FD_SYSCALL] = "region fd syscalls",
	[FZ_OP_DEV_SYSCALL] = "dev syscalls",
};

const char *fz_op_name(enum fz_op op)
{
	return op < FZ_OP_COUNT ? fz_op_names[op] : "?";
}

uint64_t fz_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void fz_count(struct fz_ctx *c, enum fz_op op, long ret)
{
	long e = ret >= 0 ? 0 : -ret;

	if (e > FZ_MAX_ERRNO)
		e = FZ_MAX_ERRNO;
	__atomic_add_fetch(&c->env->sh->count[op][e], 1, __ATOMIC_RELAXED);
}

bool fz_tick(struct fz_ctx *c)
{
	struct fz_shared *sh = c->env->sh;
	uint64_t n = __atomic_add_fetch(&sh->calls, 1, __ATOMIC_RELAXED);

	if (__atomic_load_n(&sh->stop, __ATOMIC_RELAXED))
		return true;
	if ((c->env->max_calls && n >= c->env->max_calls) ||
	    (c->env->deadline_ms && (n & 63) == 0 && fz_now_ms() >= c->env->deadline_ms)) {
		__atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
		return true;
	}
	return false;
}

/* write(2) everything, ignoring errors: diagnostics only. */
static void fz_write(const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(STDOUT_FILENO, buf, len);

		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

void fz_trail(struct fz_ctx *c, const char *fmt, ...)
{
	char *slot = c->trail[c->trail_pos++ % FZ_TRAIL];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(slot, sizeof(c->trail[0]), fmt, ap);
	va_end(ap);
	if (c->env->verbose) {
		char line[160];
		int n = snprintf(line, sizeof(line), "[%u.%u%s] %s\n", c->proc,
				 c->thread, c->child ? "c" : "", slot);

		fz_write(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	}
}

void fz_violation(struct fz_ctx *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	unsigned int i;
	int n;

	__atomic_add_fetch(&c->env->sh->violations, 1, __ATOMIC_RELAXED);
	n = snprintf(line, sizeof(line), "VIOLATION [proc %u thread %u%s]: ",
		     c->proc, c->thread, c->child ? " (forked child)" : "");
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	fz_write(line, (size_t)n);
	fz_write("  recent operations, oldest first:\n", 35);
	for (i = 0; i < FZ_TRAIL; i++) {
		const char *t = c->trail[(c->trail_pos + i) % FZ_TRAIL];

		if (!*t)
			continue;
		n = snprintf(line, sizeof(line), "    %s\n", t);
		fz_write(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	}
}

/* Name of an errno for the table ("E123" for ones without a name here). */
static const char *fz_errno_name(int e, char *buf, size_t len)
{
	const char *s = e ? strerrorname_np(e) : "ok";

	if (s)
		return s;
	snprintf(buf, len, "E%d", e);
	return buf;
}

void fz_report(const struct fz_shared *sh, uint64_t elapsed_ms)
{
	uint64_t per_errno[FZ_MAX_ERRNO + 1] = { 0 };
	char nbuf[16];
	int op, e;

	printf("beluga-fuzz: %llu calls in %.1f s (%.0f calls/s), %llu violations,"
	       " %llu faults caught in touches, %llu children killed\n",
	       (unsigned long long)sh->calls, elapsed_ms / 1000.0,
	       elapsed_ms ? sh->calls * 1000.0 / elapsed_ms : 0.0,
	       (unsigned long long)sh->violations,
	       (unsigned long long)sh->faults_caught,
	       (unsigned long long)sh->kills);
	printf("beluga-fuzz: per operation (ok and errno counts):\n");
	for (op = 0; op < FZ_OP_COUNT; op++) {
		uint64_t total = 0;

		for (e = 0; e <= FZ_MAX_ERRNO; e++) {
			total += sh->count[op][e];
			per_errno[e] += sh->count[op][e];
		}
		printf("  %-22s %9llu:", fz_op_name(op), (unsigned long long)total);
		for (e = 0; e <= FZ_MAX_ERRNO; e++)
			if (sh->count[op][e])
				printf(" %s=%llu", fz_errno_name(e, nbuf, sizeof(nbuf)),
				       (unsigned long long)sh->count[op][e]);
		printf("\n");
	}
	printf("beluga-fuzz: per errno, all operations:");
	for (e = 0; e <= FZ_MAX_ERRNO; e++)
		if (per_errno[e])
			printf(" %s=%llu", fz_errno_name(e, nbuf, sizeof(nbuf)),
			       (unsigned long long)per_errno[e]);
	printf("\n");
	fflush(stdout);
}
