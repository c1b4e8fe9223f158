// SPDX-License-Identifier: Apache-2.0
/*
 * Description: run-time CPU feature detection (cpuid), and the trace hook.
 *
 * The result is computed once and never changes: the hardware cannot gain
 * or lose instructions while we run, and cpuid traps (slowly) in many VMs,
 * so it is cached in a write-once static rather than asked per call.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <beluga/cpu.h>

#include "trace.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

static struct bcpu_features cpu;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

static void detect(void)
{
	cpu.line = 64;
#if defined(__x86_64__) || defined(__i386__)
	unsigned int a, b, c, d;

	if (__get_cpuid(1, &a, &b, &c, &d)) {
		cpu.clflush = d & (1U << 19);
		if (cpu.clflush && ((b >> 8) & 0xff))
			cpu.line = ((b >> 8) & 0xff) * 8;
	}
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
		cpu.clflushopt = b & (1U << 23);
		cpu.clwb = b & (1U << 24);
		cpu.movdir64b = c & (1U << 28);
	}
	/* These also check that the OS saves the wide registers (XGETBV). */
	__builtin_cpu_init();
	cpu.avx2 = __builtin_cpu_supports("avx2");
	cpu.avx512f = __builtin_cpu_supports("avx512f");
	/*
	 * BELUGA_CPU_MAX_ISA=avx2 or sse2 turns the wider stores off, so that
	 * tests run every copy loop on one machine.
	 */
	const char *max = getenv("BELUGA_CPU_MAX_ISA");

	if (max && (!strcmp(max, "avx2") || !strcmp(max, "sse2")))
		cpu.avx512f = false;
	if (max && !strcmp(max, "sse2"))
		cpu.avx2 = false;
#endif
}

const struct bcpu_features *bcpu_features(void)
{
	pthread_once(&cpu_once, detect);
	return &cpu;
}

bcpu_trace_fn bcpu_trace_hook;
void *bcpu_trace_arg;

void bcpu_set_trace(bcpu_trace_fn fn, void *arg)
{
	__atomic_store_n(&bcpu_trace_arg, arg, __ATOMIC_RELAXED);
	__atomic_store_n(&bcpu_trace_hook, fn, __ATOMIC_RELEASE);
}
