/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The GPU programs link libstdc++ statically so that they start on GPU
 * machines with an older C++ runtime.  GCC 12's static libstdc++ drags in
 * std::random_device, which references arc4random, new in glibc 2.36; these
 * programs never call it.  This local definition keeps them loadable on
 * glibc 2.34/2.35 (e.g. Ubuntu 22.04), with the same meaning.
 */
#include <stdint.h>
#include <sys/random.h>

uint32_t arc4random(void);

uint32_t arc4random(void)
{
	uint32_t v = 0;
	while (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		;
	return v;
}
