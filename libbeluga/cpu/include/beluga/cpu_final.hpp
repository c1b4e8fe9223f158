// SPDX-License-Identifier: Apache-2.0
// The finishing steps of the KV store's hashes, in one place for every
// compiler that needs them: the host compiler (the store's block checksum and
// its index, libbeluga/kvcache) and nvcc (the GPU block checksum of the data
// path, libbeluga/xfer).  Header only, no CUDA headers; nvcc compiles the
// functions for the host and the device.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define BCPU_HD __host__ __device__ __forceinline__
#else
#define BCPU_HD inline
#endif

namespace beluga::cpu {

// The 64-bit finalizer of MurmurHash3 (fmix64): every input bit affects
// every output bit.  Ends the block checksum and mixes index keys.
BCPU_HD constexpr uint64_t fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

// The block checksum (BKV-F64, Documentation/kvcache-format.md) of a
// payload of @len bytes whose lane sums are @a and @b.
BCPU_HD constexpr uint64_t f64_final(const uint64_t (&a)[4], const uint64_t (&b)[4], uint64_t len)
{
	constexpr uint64_t k = 0x9e3779b97f4a7c15ull;
	uint64_t h = len ^ 0x42454c5547414b56ull;
	for (int i = 0; i < 8; i++) {
		h ^= i < 4 ? a[i] : b[i - 4];
		h = (h << 27 | h >> 37) * k;
	}
	return fmix64(h);
}

} // namespace beluga::cpu
