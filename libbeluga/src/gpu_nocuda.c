// SPDX-License-Identifier: Apache-2.0
/*
 * Description: GPU ops for builds without the CUDA toolkit: every call
 * reports -BELUGA_ENOCUDA, so callers can tell "not built in" from "no GPU".
 */
#include <beluga/beluga.h>

#include "gpu_ops.h"

int beluga_cuda_count(void *ctx, int *count)
{
	(void)ctx;
	*count = 0;
	return -BELUGA_ENOCUDA;
}

int beluga_cuda_register(void *ctx, int device, void *addr, size_t len,
			 unsigned int flags)
{
	(void)ctx; (void)device; (void)addr; (void)len; (void)flags;
	return -BELUGA_ENOCUDA;
}

int beluga_cuda_unregister(void *ctx, int device, void *addr)
{
	(void)ctx; (void)device; (void)addr;
	return -BELUGA_ENOCUDA;
}

int beluga_cuda_synchronize(void *ctx, int device)
{
	(void)ctx; (void)device;
	return -BELUGA_ENOCUDA;
}

int beluga_cuda_device_pointer(void *ctx, int device, void *host, void **dev)
{
	(void)ctx; (void)device; (void)host;
	*dev = NULL;
	return -BELUGA_ENOCUDA;
}

int beluga_cuda_pci_id(void *ctx, int device, uint32_t *domain, uint32_t *bdf)
{
	(void)ctx; (void)device;
	*domain = *bdf = 0;
	return -BELUGA_ENOCUDA;
}
