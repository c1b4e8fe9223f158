// SPDX-License-Identifier: Apache-2.0
/*
 * Description: GPU ops over the CUDA runtime (linked statically).
 *
 * The static runtime loads libcuda.so at the first call, so a binary starts
 * on hosts without an NVIDIA driver and these calls report -BELUGA_ENOGPU.
 * Every CUDA return code is checked and turned into -errno; after a failure
 * cudaGetLastError() clears the sticky error so it cannot surface later in
 * an unrelated call.
 */
#include <errno.h>

#include <cuda_runtime_api.h>

#include <beluga/beluga.h>

#include "gpu_ops.h"

static int cuda_errno(cudaError_t err)
{
	switch (err) {
	case cudaSuccess:
		return 0;
	case cudaErrorInvalidValue:
	case cudaErrorInvalidDevice:
		return -EINVAL;
	case cudaErrorMemoryAllocation:
		return -ENOMEM;
	case cudaErrorHostMemoryAlreadyRegistered:
		return -EEXIST;
	case cudaErrorHostMemoryNotRegistered:
		return -ENOENT;
	case cudaErrorNotSupported:
		return -EOPNOTSUPP;
	case cudaErrorNotPermitted:
		return -EPERM;
	case cudaErrorInitializationError:
	case cudaErrorInsufficientDriver:
	case cudaErrorNoDevice:
	case cudaErrorStubLibrary:
	case cudaErrorDevicesUnavailable:
	case cudaErrorSystemDriverMismatch:
	case cudaErrorCompatNotSupportedOnDevice:
		return -BELUGA_ENOGPU;
	default:
		return -EIO;
	}
}

/* Convert and clear the sticky error state after a failed call. */
static int checked(cudaError_t err)
{
	if (err != cudaSuccess)
		(void)cudaGetLastError();
	return cuda_errno(err);
}

int beluga_cuda_count(void *ctx, int *count)
{
	int n = 0;
	int ret = checked(cudaGetDeviceCount(&n));

	(void)ctx;
	*count = ret ? 0 : n;
	if (!ret && n == 0)
		return -BELUGA_ENOGPU;
	return ret;
}

int beluga_cuda_register(void *ctx, int device, void *addr, size_t len,
			 unsigned int flags)
{
	unsigned int cflags = cudaHostRegisterPortable | cudaHostRegisterMapped;
	int ret = checked(cudaSetDevice(device));

	(void)ctx;
	if (ret)
		return ret;
	if (flags & BELUGA_GPU_READONLY)
		cflags |= cudaHostRegisterReadOnly;
	return checked(cudaHostRegister(addr, len, cflags));
}

int beluga_cuda_unregister(void *ctx, int device, void *addr)
{
	int ret = checked(cudaSetDevice(device));

	(void)ctx;
	return ret ? ret : checked(cudaHostUnregister(addr));
}

int beluga_cuda_synchronize(void *ctx, int device)
{
	int ret = checked(cudaSetDevice(device));

	(void)ctx;
	return ret ? ret : checked(cudaDeviceSynchronize());
}

int beluga_cuda_device_pointer(void *ctx, int device, void *host, void **dev)
{
	int ret = checked(cudaSetDevice(device));

	(void)ctx;
	*dev = NULL;
	return ret ? ret : checked(cudaHostGetDevicePointer(dev, host, 0));
}

/* PCI address for the driver's GPU accounting; CUDA gives no function: 0. */
int beluga_cuda_pci_id(void *ctx, int device, uint32_t *domain, uint32_t *bdf)
{
	int dom = 0, bus = 0, dev = 0;
	int ret = checked(cudaDeviceGetAttribute(&dom, cudaDevAttrPciDomainId, device));

	(void)ctx;
	if (!ret)
		ret = checked(cudaDeviceGetAttribute(&bus, cudaDevAttrPciBusId, device));
	if (!ret)
		ret = checked(cudaDeviceGetAttribute(&dev, cudaDevAttrPciDeviceId, device));
	*domain = (uint32_t)dom;
	*bdf = (uint32_t)(bus << 8 | dev << 3);
	return ret;
}
