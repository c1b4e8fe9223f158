// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "kernel_args.hpp"

#include <cuda_runtime_api.h>

namespace beluga::xfer::cuda {

// Launches the kernel for `vec_bytes`-byte accesses (16, 8, 4, 2 or 1) with at
// most max_ctas blocks; returns the launch status.
cudaError_t launch_copy(const KernelArgs &args, unsigned vec_bytes, unsigned max_ctas, cudaStream_t stream);

} // namespace beluga::xfer::cuda
