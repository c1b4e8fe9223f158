/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Description: the instrumentation of the CPU primitives
 * (include/beluga/cpu.h, bcpu_set_trace): one load and a not-taken branch
 * per call while no hook is installed.
 */
#ifndef BCPU_TRACE_H
#define BCPU_TRACE_H

#include <beluga/cpu.h>

extern bcpu_trace_fn bcpu_trace_hook;
extern void *bcpu_trace_arg;

static inline void bcpu_trace(enum bcpu_event ev, const void *p, size_t len)
{
	bcpu_trace_fn fn = __atomic_load_n(&bcpu_trace_hook, __ATOMIC_ACQUIRE);

	if (__builtin_expect(fn != NULL, 0))
		fn(ev, p, len, __atomic_load_n(&bcpu_trace_arg, __ATOMIC_RELAXED));
}

#endif /* BCPU_TRACE_H */
