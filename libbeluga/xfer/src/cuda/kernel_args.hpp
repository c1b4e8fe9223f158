// SPDX-License-Identifier: Apache-2.0
// What one launch of the copy kernel needs, passed by value (about 2.2 KiB,
// under the 4 KiB kernel-parameter limit), and how a work unit maps to its
// two addresses.  Free of CUDA headers and compiled both by nvcc (device
// code) and by the host compiler, so that a CPU test can run the kernel's
// exact addressing against the reference without a GPU.
#pragma once

#include <beluga/kv_layout.h>

#include <cstdint>
#include <cstring>

#include "../plan.hpp"

#if defined(__CUDACC__)
#define BELUGA_HD __host__ __device__ __forceinline__
#else
#define BELUGA_HD inline
#endif

namespace beluga::xfer::cuda {

struct KernelArgs {
	const char *layer_base[BELUGA_KV_MAX_LAYERS]; // device addresses
	const beluga_kv_block_ref *refs;              // device memory
	uint64_t nrefs;
	uint64_t pieces_per_ref;
	uint64_t units_per_piece; // run_bytes / vector width
	int64_t sb, skv, st, sh;  // paged byte strides
	uint64_t row_bytes;
	uint32_t n_l, n_k, n_t, n_h;
	uint32_t tokens, heads;
	uint32_t layer_begin;
	uint32_t gather; // 1: paged -> pool, 0: pool -> paged
};

// Kernel geometry, shared with the CPU emulation test.
constexpr unsigned kThreads = 256;
constexpr int kUnroll = 4;

struct UnitAddr {
	const char *src;
	char *dst;
};

// Work unit u (a W-byte vector) of the transfer: where it is read and written.
// I is the index type: 32-bit whenever the transfer has fewer than 2^32 units
// (always in practice), because 64-bit division costs a GPU several times
// more instructions, and those are SM cycles taken from the model.
template <unsigned W, typename I> BELUGA_HD UnitAddr unit_addr(const KernelArgs &a, I u)
{
	const I upp = I(a.units_per_piece), ppr = I(a.pieces_per_ref);
	const I piece = u / upp;
	const I in_piece = (u - piece * upp) * W;
	const I r = piece / ppr;
	I p = piece - r * ppr;
	const I h = p % a.n_h;
	p /= a.n_h;
	const I t = p % a.n_t;
	p /= a.n_t;
	const I k = p % a.n_k;
	const uint32_t l = a.layer_begin + uint32_t(p / a.n_k);
	const beluga_kv_block_ref ref = a.refs[r];
	const char *paged = a.layer_base[l] + int64_t(ref.paged_block) * a.sb + int64_t(k) * a.skv +
			    int64_t(t) * a.st + int64_t(h) * a.sh + int64_t(in_piece);
	char *pool = static_cast<char *>(ref.pool) +
		     ((uint64_t(l) * 2 + k) * a.tokens + t) * a.heads * a.row_bytes + uint64_t(h) * a.row_bytes +
		     uint64_t(in_piece);
	if (a.gather)
		return {paged, pool};
	return {pool, const_cast<char *>(paged)};
}

// Largest grid a launch uses, so that a grid-stride step stays below 2^31.
constexpr unsigned kMaxGrid = 1u << 20;

// Whether every index of the transfer fits the 32-bit variant, including
// base + step past the end (total < 2^31 and step <= 2^30).
BELUGA_HD bool fits_32bit(const KernelArgs &a)
{
	const uint64_t total = a.nrefs * a.pieces_per_ref * a.units_per_piece;
	return total < (uint64_t(1) << 31) && a.units_per_piece * 16 < (uint64_t(1) << 31);
}

inline uint64_t abs64(int64_t v)
{
	return v < 0 ? uint64_t(-v) : uint64_t(v);
}

// Widest access (16, 8, 4, 2 or 1 bytes) that every address of the transfer
// is aligned to: OR together everything an address is built from and take the
// lowest set bit.
inline unsigned vector_bytes(const beluga_kv_xfer &x, const Plan &pl)
{
	uint64_t g = pl.run_bytes | pl.row_bytes | abs64(pl.sb);
	g |= pl.n_k > 1 ? abs64(pl.skv) : 0;
	g |= pl.n_t > 1 ? abs64(pl.st) : 0;
	g |= pl.n_h > 1 ? abs64(pl.sh) : 0;
	for (uint32_t l = x.layer_begin; l < x.layer_end; l++)
		g |= reinterpret_cast<uintptr_t>(x.paged->layer_base[l]);
	for (size_t i = 0; i < x.nrefs; i++)
		g |= reinterpret_cast<uintptr_t>(x.refs[i].pool);
	unsigned w = 16;
	while (w > 1 && (g & (w - 1)))
		w >>= 1;
	return w;
}

inline KernelArgs kernel_args(const beluga_kv_xfer &x, const Plan &pl, const beluga_kv_block_ref *dev_refs,
			      unsigned vec)
{
	KernelArgs a;
	std::memset(&a, 0, sizeof(a));
	for (uint32_t l = 0; l < x.paged->shape.num_layers; l++)
		a.layer_base[l] = static_cast<const char *>(x.paged->layer_base[l]);
	a.refs = dev_refs;
	a.nrefs = x.nrefs;
	a.pieces_per_ref = pl.pieces_per_ref;
	a.units_per_piece = pl.run_bytes / vec;
	a.sb = pl.sb, a.skv = pl.skv, a.st = pl.st, a.sh = pl.sh;
	a.row_bytes = pl.row_bytes;
	a.n_l = pl.n_l, a.n_k = pl.n_k, a.n_t = pl.n_t, a.n_h = pl.n_h;
	a.tokens = pl.tokens, a.heads = pl.heads;
	a.layer_begin = pl.layer_begin;
	a.gather = x.dir == BELUGA_KV_GATHER;
	return a;
}


} // namespace beluga::xfer::cuda
