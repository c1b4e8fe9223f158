// SPDX-License-Identifier: Apache-2.0
/*
 * Description: cache-line flush, write-back and fences (the paper's O1).
 *
 * CXL memory shared between hosts is not kept coherent across them: a reader
 * must drop stale lines before reading (flush), a writer must push its lines
 * out (write-back, or non-temporal stores in copy.c).  The instruction is
 * chosen at run time: clwb keeps the line cached, clflushopt is weakly
 * ordered (hence the sfence), clflush is the baseline.
 */
#include <stdint.h>

#include <beluga/beluga.h>

#include "cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

__attribute__((target("clflushopt")))
static void lines_clflushopt(uintptr_t p, uintptr_t end, unsigned int line)
{
	for (; p < end; p += line)
		_mm_clflushopt((void *)p);
}

__attribute__((target("clwb")))
static void lines_clwb(uintptr_t p, uintptr_t end, unsigned int line)
{
	for (; p < end; p += line)
		_mm_clwb((void *)p);
}

static void lines_clflush(uintptr_t p, uintptr_t end, unsigned int line)
{
	for (; p < end; p += line)
		_mm_clflush((void *)p);
}

static void each_line(const void *addr, size_t len, bool keep)
{
	const struct beluga_cpu *c = beluga_cpu();
	uintptr_t p = (uintptr_t)addr & ~(uintptr_t)(c->line - 1);
	uintptr_t end = (uintptr_t)addr + len;

	if (!len)
		return;
	if (keep && c->clwb)
		lines_clwb(p, end, c->line);
	else if (c->clflushopt)
		lines_clflushopt(p, end, c->line);
	else if (c->clflush)
		lines_clflush(p, end, c->line);
	_mm_sfence();
}

void beluga_flush(const void *addr, size_t len)
{
	each_line(addr, len, false);
}

void beluga_writeback(const void *addr, size_t len)
{
	each_line(addr, len, true);
}

void beluga_fence_store(void)
{
	_mm_sfence();
}

void beluga_fence_load(void)
{
	_mm_lfence();
}

void beluga_fence_full(void)
{
	_mm_mfence();
}

const char *beluga_cpu_flush_method(void)
{
	const struct beluga_cpu *c = beluga_cpu();

	if (c->clflushopt && c->clwb)
		return "clflushopt+clwb";
	if (c->clflushopt)
		return "clflushopt";
	return c->clflush ? "clflush" : "none";
}

#else	/* not x86: no user-space cache maintenance; fences only */

void beluga_flush(const void *addr, size_t len)
{
	(void)addr; (void)len;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void beluga_writeback(const void *addr, size_t len)
{
	(void)addr; (void)len;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void beluga_fence_store(void)
{
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

void beluga_fence_load(void)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
}

void beluga_fence_full(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

const char *beluga_cpu_flush_method(void)
{
	return "none";
}
#endif
