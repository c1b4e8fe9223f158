/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Description: CPU features the copy and flush primitives dispatch on.
 */
#ifndef BELUGA_CPU_H
#define BELUGA_CPU_H

#include <stdbool.h>

struct beluga_cpu {
	bool clflush;		/* CPUID.1:EDX.CLFSH */
	bool clflushopt;	/* CPUID.7.0:EBX bit 23 */
	bool clwb;		/* CPUID.7.0:EBX bit 24 */
	bool avx2;
	bool avx512f;
	unsigned int line;	/* cache-line size in bytes */
};

/* Detected once (pthread_once), read-only afterwards. */
const struct beluga_cpu *beluga_cpu(void);

#endif /* BELUGA_CPU_H */
