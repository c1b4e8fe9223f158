// SPDX-License-Identifier: Apache-2.0
/*
 * Description: run-time CPU feature detection (cpuid).
 *
 * The result is computed once and never changes: the hardware cannot gain
 * or lose instructions while we run, and cpuid traps (slowly) in many VMs,
 * so it is cached in a write-once static rather than asked per call.  This
 * is the library's only static data and holds no per-user state.
 */
#include <pthread.h>

#include "cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

static struct beluga_cpu cpu;
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
	}
	/* These also check that the OS saves the wide registers (XGETBV). */
	__builtin_cpu_init();
	cpu.avx2 = __builtin_cpu_supports("avx2");
	cpu.avx512f = __builtin_cpu_supports("avx512f");
#endif
}

const struct beluga_cpu *beluga_cpu(void)
{
	pthread_once(&cpu_once, detect);
	return &cpu;
}
