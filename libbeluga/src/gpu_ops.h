/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Description: default GPU members of struct beluga_ops (CUDA runtime or stubs).
 *
 * gpu_cuda.c implements them with the statically linked CUDA runtime when the
 * toolkit was found at build time; gpu_nocuda.c returns -BELUGA_ENOCUDA.
 */
#ifndef BELUGA_GPU_OPS_H
#define BELUGA_GPU_OPS_H

#include <stddef.h>
#include <stdint.h>

int beluga_cuda_count(void *ctx, int *count);
int beluga_cuda_register(void *ctx, int device, void *addr, size_t len,
			 unsigned int flags);
int beluga_cuda_unregister(void *ctx, int device, void *addr);
int beluga_cuda_synchronize(void *ctx, int device);
int beluga_cuda_device_pointer(void *ctx, int device, void *host, void **dev);
int beluga_cuda_pci_id(void *ctx, int device, uint32_t *domain, uint32_t *bdf);

#endif /* BELUGA_GPU_OPS_H */
