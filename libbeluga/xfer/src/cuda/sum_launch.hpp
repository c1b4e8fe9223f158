// SPDX-License-Identifier: Apache-2.0
// Launchers of the checksum kernels (sum_kernel.cu): the store's block
// checksum computed on the GPU, alone over buffers, or fused with the gather
// of paged KV blocks into pool blocks.  Partial sums (struct F64Acc, 8 words
// per item) are added atomically into `acc`, which the caller zeroes; the
// finishing kernel turns them into checksums.
#pragma once

#include "f64_sum.hpp"
#include "kernel_args.hpp"

#include <cuda_runtime_api.h>

namespace beluga::xfer::cuda {

// What the gather-sum kernel reads and writes.
enum class SumMode : int {
	Fused = 0,    // copy each unit from the paged cache to the pool and sum it
	Source = 1,   // sum the paged cache's units (GPU memory), copy nothing
	Readback = 2, // sum the pool's units (host memory, over the bus), copy nothing
};

// One buffer of the plain checksum kernel: device-visible address, length.
struct SumItem {
	const unsigned char *p;
	uint64_t len;
};

// `a` is a gather (a.gather == 1) whose layer range starts at layer 0, so that
// a unit's pool address minus its ref's pool address is its block offset.
// `acc`: 8 words per ref.
cudaError_t launch_gather_sum(const KernelArgs &a, unsigned vec_bytes, SumMode mode, unsigned max_ctas,
			      unsigned long long *acc, cudaStream_t stream);

// items: n entries in device memory (`host_items` the same on the host, to
// size the grid).  acc: 8 words per item.
cudaError_t launch_checksum(const SumItem *items, const SumItem *host_items, uint64_t n, unsigned max_ctas,
			    unsigned long long *acc, cudaStream_t stream);

// out[i] = f64_finish(acc[i], items ? items[i].len : len), in device memory.
cudaError_t launch_finish(const unsigned long long *acc, const SumItem *items, uint64_t len, uint64_t n,
			  uint64_t *out, cudaStream_t stream);

} // namespace beluga::xfer::cuda
