// SPDX-License-Identifier: Apache-2.0
// BKV-F64, the block checksum (kvcache-format.md, "Block checksum"): a
// Fletcher-style sum over four 64-bit lanes, position dependent, cheap
// enough to compute while copying (two adds per 32 bytes), combinable so
// that several threads can each sum a piece of one block.  The lane sums,
// alone or fused with a copy, are CPU primitives (beluga/cpu.h, struct
// bcpu_sum); combining the lanes and finalising them is defined here.
#pragma once

#include <beluga/cpu.h>
#include <beluga/cpu_final.hpp>

#include <cstddef>
#include <cstdint>

namespace bkv {

// The 64-bit finalizer (beluga/cpu_final.hpp): ends the block checksum and
// mixes index keys.
using beluga::cpu::fmix64;

// The lanes of a block (or of a piece of one); zero when constructed.
struct F64 : bcpu_sum {
	F64() : bcpu_sum{} {}
};

// Sum @len bytes as the continuation of @s.  Only the last piece of a block
// may have a length that is not a multiple of 32 (it is zero-padded).
inline void f64_update(F64 &s, const void *p, size_t len) { bcpu_sum_update(&s, p, len); }
// @s followed by @next.
void f64_combine(F64 &s, const F64 &next);
// The checksum of a block of @len bytes summed into @s.
uint64_t f64_final(const F64 &s, uint64_t len);
inline uint64_t f64(const void *p, size_t len)
{
	F64 s;
	f64_update(s, p, len);
	return f64_final(s, len);
}

// Copy @len bytes and sum them (as f64_update) in one pass.  @nt: with
// non-temporal stores, the partial first and last lines written back and a
// store fence at the end (bcpu_copy_nt_sum); else ordinary stores, which the
// caller writes back if they must reach memory.
inline void copy_sum(void *dst, const void *src, size_t len, F64 &s, bool nt)
{
	if (nt)
		bcpu_copy_nt_sum(dst, src, len, &s);
	else
		bcpu_copy_sum(dst, src, len, &s);
}

} // namespace bkv
