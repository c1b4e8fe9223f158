// SPDX-License-Identifier: Apache-2.0
// Copies whose stores bypass the CPU caches.  Pool writes use them: the pool is
// CXL memory that other hosts read without coherence, and the paper's guideline
// O1 is "CPU writes use ntstore"; they also keep a large gather from evicting
// the engine's working set.
#pragma once

#include <cstddef>

namespace beluga::xfer {

// memcpy with non-temporal stores where the CPU has them (x86-64: SSE2 movntdq,
// 16-byte aligned), ordinary stores for the unaligned head and tail.  Call
// store_fence() before anything that publishes the data.
void copy_nt(void *dst, const void *src, size_t n);

// Orders this thread's earlier non-temporal stores before its later stores.
void store_fence();

} // namespace beluga::xfer
