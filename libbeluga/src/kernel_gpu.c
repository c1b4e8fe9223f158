// SPDX-License-Identifier: Apache-2.0
/*
 * Description: kernel backend - the driver's side of GPU registration
 * (BELUGA_IOC_GPU_REGISTER/UNREGISTER, ABI 1.1, BELUGA_FEAT_GPU_REGISTER).
 *
 * The driver cannot talk to the GPU driver; it checks that the region can
 * be pinned long term, holds a reference that makes destroy fail with EBUSY
 * while a GPU may DMA into the memory, and reports the region's layout, the
 * GPU's socket and the largest span for one cudaHostRegister().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include <linux/beluga.h>

#include "internal.h"

_Static_assert(BELUGA_GPU_SOCKET_MIXED == 3 && BELUGA_GPU_SOCKET_SAME == 1,
	       "library and driver socket values agree");

bool beluga_kernel_gpu_accounting(const struct beluga_pool *pool)
{
	return pool->backend == BELUGA_BACKEND_KERNEL &&
	       (pool->k.features & BELUGA_FEAT_GPU_REGISTER);
}

int beluga_kernel_gpu_register(struct beluga_region *region,
			       const struct kernel_gpu *gpu, int32_t *nodes,
			       size_t capacity, struct kernel_gpu_grant *out)
{
	struct beluga_pool *pool = region->pool;
	struct beluga_gpu_register g;
	int ret;

	memset(&g, 0, sizeof(g));
	g.pci_domain = gpu->domain;
	g.pci_bdf = gpu->bdf;
	g.capacity = capacity > UINT32_MAX ? UINT32_MAX : (uint32_t)capacity;
	g.nodes = (uintptr_t)nodes;
	ret = pool->ops.ioctl(pool->ops.ctx, region->fd, BELUGA_IOC_GPU_REGISTER, &g);
	if (ret) {
		blog_err(pool, "driver refused GPU %04x:%02x:%02x.%x for %s: %s",
			 gpu->domain, gpu->bdf >> 8, (gpu->bdf >> 3) & 0x1f,
			 gpu->bdf & 7, region->name, beluga_strerror(ret));
		return ret;
	}
	out->socket = (int)g.socket;
	out->max_register_bytes = g.max_register_bytes;
	return 0;
}

void beluga_kernel_gpu_unregister(struct beluga_region *region,
				  const struct kernel_gpu *gpu)
{
	struct beluga_pool *pool = region->pool;
	struct beluga_gpu_unregister u;
	int ret;

	memset(&u, 0, sizeof(u));
	u.pci_domain = gpu->domain;
	u.pci_bdf = gpu->bdf;
	ret = pool->ops.ioctl(pool->ops.ctx, region->fd, BELUGA_IOC_GPU_UNREGISTER, &u);
	if (ret)
		blog_err(pool, "GPU_UNREGISTER of %s: %s", region->name,
			 beluga_strerror(ret));
}
