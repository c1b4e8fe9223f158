// SPDX-License-Identifier: Apache-2.0
// The gather/scatter kernel.  One launch moves every piece of every block of
// a transfer: the work is flattened into vector-sized units, consecutive
// threads take consecutive units of a piece (coalesced on both sides), and
// each thread keeps kUnroll loads in flight before storing, which is what
// hides the PCIe latency of reads from host (CXL) memory.
#include "kernel_launch.hpp"

#include <algorithm>

namespace beluga::xfer::cuda {

namespace {

template <typename V, typename I> __global__ void __launch_bounds__(kThreads) copy_kernel(const KernelArgs a)
{
	const I total = I(a.nrefs * a.pieces_per_ref * a.units_per_piece);
	const I step = I(gridDim.x) * kThreads * kUnroll;
	for (I base = I(blockIdx.x) * kThreads * kUnroll + threadIdx.x; base < total; base += step) {
		V v[kUnroll];
		V *dst[kUnroll];
#pragma unroll
		for (int i = 0; i < kUnroll; i++) {
			const I u = base + I(i) * kThreads;
			dst[i] = nullptr;
			if (u < total) {
				const UnitAddr ad = unit_addr<sizeof(V), I>(a, u);
				v[i] = *reinterpret_cast<const V *>(ad.src);
				dst[i] = reinterpret_cast<V *>(ad.dst);
			}
		}
#pragma unroll
		for (int i = 0; i < kUnroll; i++)
			if (dst[i])
				*dst[i] = v[i];
	}
}

template <typename V> cudaError_t launch(const KernelArgs &a, unsigned max_ctas, cudaStream_t stream)
{
	const uint64_t total = a.nrefs * a.pieces_per_ref * a.units_per_piece;
	if (total == 0)
		return cudaSuccess;
	const uint64_t per_cta = uint64_t(kThreads) * kUnroll;
	const uint64_t want = (total + per_cta - 1) / per_cta;
	const unsigned grid = unsigned(std::min<uint64_t>(want, std::clamp(max_ctas, 1u, kMaxGrid)));
	if (fits_32bit(a))
		copy_kernel<V, uint32_t><<<grid, kThreads, 0, stream>>>(a);
	else
		copy_kernel<V, uint64_t><<<grid, kThreads, 0, stream>>>(a);
	return cudaGetLastError();
}

} // namespace

cudaError_t launch_copy(const KernelArgs &args, unsigned vec_bytes, unsigned max_ctas, cudaStream_t stream)
{
	switch (vec_bytes) {
	case 16:
		return launch<uint4>(args, max_ctas, stream);
	case 8:
		return launch<uint2>(args, max_ctas, stream);
	case 4:
		return launch<uint32_t>(args, max_ctas, stream);
	case 2:
		return launch<uint16_t>(args, max_ctas, stream);
	case 1:
		return launch<uint8_t>(args, max_ctas, stream);
	default:
		return cudaErrorInvalidValue;
	}
}

} // namespace beluga::xfer::cuda
