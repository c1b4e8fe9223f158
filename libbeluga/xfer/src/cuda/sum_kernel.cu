// SPDX-License-Identifier: Apache-2.0
// The KV store's block checksum on the GPU (the math: f64_sum.hpp).
//
// Both kernels give each item (a pool block, or a buffer) blockIdx.y and split
// its units over blockIdx.x; each thread keeps kSumUnroll loads in flight,
// adds every unit it reads to its own partial sums (registers), and the block
// adds its threads' sums (warp shuffles, then shared memory) into the item's
// eight accumulator words with one atomicAdd each.  The sums are plain sums
// mod 2^64, so the result does not depend on the split, the order of the
// atomics or the grid size.
//
// The gather variant is the copy kernel's loop (copy_kernel.cu, same unit
// addressing) with the sum added: in the fused mode every unit is loaded once
// from GPU memory, stored to the pool and summed from the register it was
// loaded into; no byte crosses the bus twice.
#include "sum_launch.hpp"

#include <algorithm>

namespace beluga::xfer::cuda {

namespace {

__device__ __forceinline__ void unit_words(const uint4 &v, uint64_t &lo, uint64_t &hi)
{
	lo = uint64_t(v.x) | uint64_t(v.y) << 32;
	hi = uint64_t(v.z) | uint64_t(v.w) << 32;
}
__device__ __forceinline__ void unit_words(const uint2 &v, uint64_t &lo, uint64_t &hi)
{
	lo = uint64_t(v.x) | uint64_t(v.y) << 32;
	hi = 0;
}
template <typename T> __device__ __forceinline__ void unit_words(const T &v, uint64_t &lo, uint64_t &hi)
{
	lo = uint64_t(v);
	hi = 0;
}

template <typename V> __device__ __forceinline__ void add_unit(F64Acc &s, uint64_t off, const V &v)
{
	uint64_t lo, hi;
	unit_words(v, lo, hi);
	f64_add_unit(s, off, lo, hi, sizeof(V));
}

// Adds the block's partial sums into acc[0..7].  Every thread of the block
// must call it (it synchronises the block).
__device__ void block_add(F64Acc &s, unsigned long long *acc)
{
	__shared__ unsigned long long part[kSumThreads / 32][8];
	const unsigned lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
	for (int k = 0; k < 4; k++)
#pragma unroll
		for (int d = 16; d > 0; d >>= 1) {
			s.a[k] += __shfl_down_sync(0xffffffffu, s.a[k], d);
			s.c[k] += __shfl_down_sync(0xffffffffu, s.c[k], d);
		}
	if (lane == 0)
#pragma unroll
		for (int k = 0; k < 4; k++) {
			part[warp][k] = s.a[k];
			part[warp][4 + k] = s.c[k];
		}
	__syncthreads();
	if (threadIdx.x < 8) {
		unsigned long long t = 0;
		for (unsigned w = 0; w < kSumThreads / 32; w++)
			t += part[w][threadIdx.x];
		if (t)
			atomicAdd(acc + threadIdx.x, t);
	}
	__syncthreads();
}

// At least 4 resident blocks per SM (64 registers), the copy kernel's default
// grid (4 per SM) in one wave: more loads in flight beat the few bytes that
// ptxas then spills (sm_90, CUDA 13.0: 8 bytes for 16-byte units).
template <typename V, typename I, SumMode M>
__global__ void __launch_bounds__(kSumThreads, 4) gather_sum_kernel(const KernelArgs a, unsigned long long *acc)
{
	const I upr = I(a.pieces_per_ref * a.units_per_piece);
	const I step = I(gridDim.x) * kSumThreads * kSumUnroll;
	for (uint64_t r = blockIdx.y; r < a.nrefs; r += gridDim.y) {
		const char *pool = static_cast<const char *>(a.refs[r].pool);
		F64Acc s;
		f64_zero(s);
		for (I base = I(blockIdx.x) * kSumThreads * kSumUnroll + threadIdx.x; base < upr; base += step) {
			V v[kSumUnroll];
			uint64_t off[kSumUnroll];
			V *dst[kSumUnroll];
			bool have[kSumUnroll];
#pragma unroll
			for (unsigned i = 0; i < kSumUnroll; i++) {
				const I u = base + I(i) * kSumThreads;
				have[i] = u < upr;
				dst[i] = nullptr;
				off[i] = 0;
				if (have[i]) {
					const UnitAddr ad = unit_addr<sizeof(V), I>(a, I(r) * upr + u);
					const char *from = M == SumMode::Readback ? ad.dst : ad.src;
					v[i] = *reinterpret_cast<const V *>(from);
					off[i] = uint64_t(ad.dst - pool);
					if (M == SumMode::Fused)
						dst[i] = reinterpret_cast<V *>(ad.dst);
				}
			}
#pragma unroll
			for (unsigned i = 0; i < kSumUnroll; i++)
				if (have[i]) {
					if (M == SumMode::Fused)
						*dst[i] = v[i];
					add_unit(s, off[i], v[i]);
				}
		}
		block_add(s, acc + r * 8);
	}
}

// Units of W bytes (the widest the buffer's address allows), then the bytes
// that do not fill a unit, summed one by one by the first block.
template <typename V> __device__ void sum_buffer(F64Acc &s, const unsigned char *p, uint64_t len)
{
	const uint64_t units = len / sizeof(V);
	const uint64_t step = uint64_t(gridDim.x) * kSumThreads * kSumUnroll;
	for (uint64_t base = uint64_t(blockIdx.x) * kSumThreads * kSumUnroll + threadIdx.x; base < units;
	     base += step) {
		V v[kSumUnroll];
#pragma unroll
		for (unsigned i = 0; i < kSumUnroll; i++) {
			const uint64_t u = base + i * kSumThreads;
			if (u < units)
				v[i] = reinterpret_cast<const V *>(p)[u];
		}
#pragma unroll
		for (unsigned i = 0; i < kSumUnroll; i++) {
			const uint64_t u = base + i * kSumThreads;
			if (u < units)
				add_unit(s, u * sizeof(V), v[i]);
		}
	}
	const uint64_t tail = units * sizeof(V);
	if (blockIdx.x == 0 && tail + threadIdx.x < len)
		f64_add_unit(s, tail + threadIdx.x, p[tail + threadIdx.x], 0, 1);
}

__global__ void __launch_bounds__(kSumThreads) checksum_kernel(const SumItem *items, uint64_t n,
								unsigned long long *acc)
{
	for (uint64_t r = blockIdx.y; r < n; r += gridDim.y) {
		const SumItem it = items[r];
		F64Acc s;
		f64_zero(s);
		switch (sum_vec_bytes(reinterpret_cast<uintptr_t>(it.p))) { // uniform over the block
		case 16:
			sum_buffer<uint4>(s, it.p, it.len);
			break;
		case 8:
			sum_buffer<uint2>(s, it.p, it.len);
			break;
		case 4:
			sum_buffer<uint32_t>(s, it.p, it.len);
			break;
		case 2:
			sum_buffer<uint16_t>(s, it.p, it.len);
			break;
		default:
			sum_buffer<uint8_t>(s, it.p, it.len);
			break;
		}
		block_add(s, acc + r * 8);
	}
}

__global__ void finish_kernel(const unsigned long long *acc, const SumItem *items, uint64_t len, uint64_t n,
			      uint64_t *out)
{
	const uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
	if (i >= n)
		return;
	F64Acc s;
	for (int k = 0; k < 4; k++) {
		s.a[k] = acc[i * 8 + k];
		s.c[k] = acc[i * 8 + 4 + k];
	}
	out[i] = f64_finish(s, items ? items[i].len : len);
}

template <typename V, typename I>
cudaError_t launch_mode(const KernelArgs &a, SumMode mode, dim3 grid, unsigned long long *acc, cudaStream_t stream)
{
	switch (mode) {
	case SumMode::Fused:
		gather_sum_kernel<V, I, SumMode::Fused><<<grid, kSumThreads, 0, stream>>>(a, acc);
		break;
	case SumMode::Source:
		gather_sum_kernel<V, I, SumMode::Source><<<grid, kSumThreads, 0, stream>>>(a, acc);
		break;
	case SumMode::Readback:
		gather_sum_kernel<V, I, SumMode::Readback><<<grid, kSumThreads, 0, stream>>>(a, acc);
		break;
	default:
		return cudaErrorInvalidValue;
	}
	return cudaGetLastError();
}

template <typename V>
cudaError_t launch_vec(const KernelArgs &a, SumMode mode, unsigned max_ctas, unsigned long long *acc,
		       cudaStream_t stream)
{
	const SumGrid g = sum_grid(a.nrefs, a.pieces_per_ref * a.units_per_piece, max_ctas);
	const dim3 grid(g.x, g.y);
	if (fits_32bit(a))
		return launch_mode<V, uint32_t>(a, mode, grid, acc, stream);
	return launch_mode<V, uint64_t>(a, mode, grid, acc, stream);
}

} // namespace

cudaError_t launch_gather_sum(const KernelArgs &a, unsigned vec_bytes, SumMode mode, unsigned max_ctas,
			      unsigned long long *acc, cudaStream_t stream)
{
	if (a.nrefs == 0)
		return cudaSuccess;
	switch (vec_bytes) {
	case 16:
		return launch_vec<uint4>(a, mode, max_ctas, acc, stream);
	case 8:
		return launch_vec<uint2>(a, mode, max_ctas, acc, stream);
	case 4:
		return launch_vec<uint32_t>(a, mode, max_ctas, acc, stream);
	case 2:
		return launch_vec<uint16_t>(a, mode, max_ctas, acc, stream);
	case 1:
		return launch_vec<uint8_t>(a, mode, max_ctas, acc, stream);
	default:
		return cudaErrorInvalidValue;
	}
}

cudaError_t launch_checksum(const SumItem *items, const SumItem *host_items, uint64_t n, unsigned max_ctas,
			    unsigned long long *acc, cudaStream_t stream)
{
	if (n == 0)
		return cudaSuccess;
	uint64_t most = 0;
	for (uint64_t i = 0; i < n; i++)
		most = std::max(most, host_items[i].len / sum_vec_bytes(reinterpret_cast<uintptr_t>(host_items[i].p)));
	const SumGrid g = sum_grid(n, most, max_ctas);
	checksum_kernel<<<dim3(g.x, g.y), kSumThreads, 0, stream>>>(items, n, acc);
	return cudaGetLastError();
}

cudaError_t launch_finish(const unsigned long long *acc, const SumItem *items, uint64_t len, uint64_t n,
			  uint64_t *out, cudaStream_t stream)
{
	if (n == 0)
		return cudaSuccess;
	constexpr unsigned kT = 128;
	finish_kernel<<<unsigned((n + kT - 1) / kT), kT, 0, stream>>>(acc, items, len, n, out);
	return cudaGetLastError();
}

} // namespace beluga::xfer::cuda
