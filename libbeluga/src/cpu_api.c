// SPDX-License-Identifier: Apache-2.0
/*
 * Description: libbeluga's public copy, flush and fence functions
 * (beluga.h), exported from the shared library.  The instructions live in
 * the CPU-primitives library (libbeluga/cpu, beluga/cpu.h) that the KV
 * store and the data path use too; these only give them their public names.
 */
#include <beluga/beluga.h>
#include <beluga/cpu.h>

void beluga_copy_nt(void *dst, const void *src, size_t len)
{
	bcpu_copy_nt(dst, src, len);
}

void beluga_flush(const void *addr, size_t len)
{
	bcpu_flush(addr, len);
}

void beluga_writeback(const void *addr, size_t len)
{
	bcpu_writeback(addr, len);
}

void beluga_fence_store(void)
{
	bcpu_fence_store();
}

void beluga_fence_load(void)
{
	bcpu_fence_load();
}

void beluga_fence_full(void)
{
	bcpu_fence_full();
}

const char *beluga_cpu_flush_method(void)
{
	return bcpu_flush_method();
}
