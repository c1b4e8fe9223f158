// SPDX-License-Identifier: Apache-2.0
// The KV store's block checksum (BKV-F64, Documentation/kvcache-format.md)
// the way the GPU computes it: as a sum over 8-byte words in which no word
// depends on another, so that any thread may sum any word, in any order.
// Free of CUDA headers and compiled both by nvcc (device code) and by the host
// compiler, so that a CPU test (tests/xfer/test_xfer_sum_emu.cpp) runs the
// kernels' exact per-unit math and work split against the store's checksum
// (libbeluga/cpu's lane sums, which stay the one CPU implementation).
//
// The definition sums groups g = 0..G-1 of four words w[g][j] (G = the
// payload's 32-byte groups, the last one zero-padded):
//     a[j] += w[g][j];  b[j] += a[j]
// so word w[g][j] is added to a[j] once and to b[j] once per remaining group,
// G - g times:
//     a[j] = sum_g w[g][j]
//     b[j] = G * a[j] - c[j],   c[j] = sum_g g * w[g][j]        (mod 2^64)
// a and c are plain sums (commutative, associative mod 2^64), so partial sums
// of any subsets of words add up to the same bits whatever the split or the
// order: threads sum their units, warps and blocks add, atomics add.  The
// finaliser is the definition's, applied to a and b.
#pragma once

#include <beluga/cpu_final.hpp>

#include <cstddef>
#include <cstdint>

#ifndef BELUGA_HD
#if defined(__CUDACC__)
#define BELUGA_HD __host__ __device__ __forceinline__
#else
#define BELUGA_HD inline
#endif
#endif

namespace beluga::xfer::cuda {

// Partial sums of one block (or of any subset of its words).
struct F64Acc {
	uint64_t a[4];
	uint64_t c[4];
};

BELUGA_HD void f64_zero(F64Acc &s)
{
	for (int k = 0; k < 4; k++)
		s.a[k] = s.c[k] = 0;
}

// Word w (little-endian, zero where the payload has no byte) at byte offset
// off of the block, off a multiple of 8.  The lane is selected without
// indexing the arrays (a loop of constant count 4, which nvcc unrolls), so
// that they stay in registers on the GPU.
BELUGA_HD void f64_add_word(F64Acc &s, uint64_t off, uint64_t w)
{
	const uint64_t g = off >> 5;
	const unsigned j = unsigned(off >> 3) & 3u;
	const uint64_t gw = g * w;
	for (unsigned k = 0; k < 4; k++) {
		s.a[k] += k == j ? w : 0;
		s.c[k] += k == j ? gw : 0;
	}
}

// One access unit of W bytes (16, 8, 4, 2 or 1) at block offset off, a
// multiple of W: lo holds its first 8 bytes (or its W bytes, zero-extended),
// hi the next 8 when W is 16.  A unit narrower than a word is its bytes
// shifted into place: the sum is linear in each word, so the pieces of a
// word may be added separately.
BELUGA_HD void f64_add_unit(F64Acc &s, uint64_t off, uint64_t lo, uint64_t hi, unsigned W)
{
	if (W == 16) {
		f64_add_word(s, off, lo);
		f64_add_word(s, off + 8, hi);
	} else if (W == 8) {
		f64_add_word(s, off, lo);
	} else {
		f64_add_word(s, off & ~uint64_t(7), lo << ((off & 7) * 8));
	}
}

// s += t.
BELUGA_HD void f64_merge(F64Acc &s, const F64Acc &t)
{
	for (int k = 0; k < 4; k++) {
		s.a[k] += t.a[k];
		s.c[k] += t.c[k];
	}
}

// The checksum of a block of len bytes whose every word was added to s: the
// store's finaliser (beluga/cpu_final.hpp) applied to a and b = G * a - c.
BELUGA_HD uint64_t f64_finish(const F64Acc &s, uint64_t len)
{
	const uint64_t groups = (len + 31) / 32;
	uint64_t b[4];
	for (int k = 0; k < 4; k++)
		b[k] = groups * s.a[k] - s.c[k];
	return beluga::cpu::f64_final(s.a, b, len);
}

// ---- the kernels' work split, shared with the CPU emulation ----

// Threads per block and loads in flight per thread (as the copy kernel).
constexpr unsigned kSumThreads = 256;
constexpr unsigned kSumUnroll = 4;

// The grid of one launch: x splits each item (block or buffer) into chunks,
// y walks the items (an item loop covers more than 65535 of them).  At most
// max_ctas blocks in all, at least one per item up to the y limit.
struct SumGrid {
	unsigned x, y;
};

inline SumGrid sum_grid(uint64_t items, uint64_t units_per_item, unsigned max_ctas)
{
	constexpr uint64_t kMaxY = 65535;
	const uint64_t per_cta = uint64_t(kSumThreads) * kSumUnroll;
	SumGrid g;
	g.y = unsigned(items < kMaxY ? (items ? items : 1) : kMaxY);
	uint64_t want = (units_per_item + per_cta - 1) / per_cta;
	uint64_t room = max_ctas / g.y;
	if (room < 1)
		room = 1;
	if (want > room)
		want = room;
	if (want > 65535)
		want = 65535;
	g.x = unsigned(want ? want : 1);
	return g;
}

// Widest unit (16, 8, 4, 2 or 1 bytes) the address allows: what the checksum
// kernel reads a buffer with.
BELUGA_HD unsigned sum_vec_bytes(uintptr_t addr)
{
	unsigned w = 16;
	while (w > 1 && (addr & (w - 1)))
		w >>= 1;
	return w;
}

} // namespace beluga::xfer::cuda
