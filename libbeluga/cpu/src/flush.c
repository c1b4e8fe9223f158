// SPDX-License-Identifier: Apache-2.0
/*
 * Description: cache-line write-back, invalidate and fences.
 *
 * The instruction is chosen at run time: clwb writes back and keeps the
 * line, clflushopt writes back and invalidates and is weakly ordered (hence
 * the sfence), clflush is the baseline.  On other architectures there is no
 * user-space cache maintenance: fences only.
 */
#include <stdint.h>

#include <beluga/cpu.h>

#include "trace.h"

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
	const struct bcpu_features *c = bcpu_features();
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
	bcpu_trace(keep ? BCPU_EV_WRITEBACK : BCPU_EV_FLUSH, (void *)p, end - p);
	_mm_sfence();
	bcpu_trace(BCPU_EV_FENCE, NULL, 0);
}

void bcpu_fence_store(void)
{
	_mm_sfence();
	bcpu_trace(BCPU_EV_FENCE, NULL, 0);
}

void bcpu_fence_load(void)
{
	_mm_lfence();
}

void bcpu_fence_full(void)
{
	_mm_mfence();
	bcpu_trace(BCPU_EV_FENCE, NULL, 0);
}

const char *bcpu_flush_method(void)
{
	const struct bcpu_features *c = bcpu_features();

	if (c->clflushopt && c->clwb)
		return "clflushopt+clwb";
	if (c->clflushopt)
		return "clflushopt";
	return c->clflush ? "clflush" : "none";
}

#else	/* not x86 */

static void each_line(const void *addr, size_t len, bool keep)
{
	bcpu_trace(keep ? BCPU_EV_WRITEBACK : BCPU_EV_FLUSH, addr, len);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	bcpu_trace(BCPU_EV_FENCE, NULL, 0);
}

void bcpu_fence_store(void)
{
	__atomic_thread_fence(__ATOMIC_RELEASE);
	bcpu_trace(BCPU_EV_FENCE, NULL, 0);
}

void bcpu_fence_load(void)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
}

void bcpu_fence_full(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	bcpu_trace(BCPU_EV_FENCE, NULL, 0);
}

const char *bcpu_flush_method(void)
{
	return "none";
}
#endif

void bcpu_flush(const void *addr, size_t len)
{
	each_line(addr, len, false);
}

void bcpu_writeback(const void *addr, size_t len)
{
	each_line(addr, len, true);
}
