/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Description: the test-build instrumentation of the CPU primitives
 * (include/beluga/cpu.h, bcpu_set_trace).  Without BCPU_TRACE every
 * trace() is an empty inline function.
 */
#ifndef BCPU_TRACE_H
#define BCPU_TRACE_H

#include <beluga/cpu.h>

#ifdef BCPU_TRACE
void bcpu_trace(enum bcpu_event ev, const void *p, size_t len);
#else
static inline void bcpu_trace(enum bcpu_event ev, const void *p, size_t len)
{
	(void)ev; (void)p; (void)len;
}
#endif

#endif /* BCPU_TRACE_H */
