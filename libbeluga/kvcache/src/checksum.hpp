// SPDX-License-Identifier: Apache-2.0
// BKV-F64, the block checksum (kvcache-format.md, "Block checksum"): a
// Fletcher-style sum over four 64-bit lanes, position dependent, cheap
// enough to compute while copying (two adds per 32 bytes), combinable so
// that several threads can each sum a piece of one block.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bkv {

// The 64-bit finalizer of MurmurHash3 (fmix64): every input bit affects
// every output bit.  Ends the block checksum and mixes index keys.
constexpr uint64_t fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

struct F64 {
	uint64_t a[4] = {0, 0, 0, 0};
	uint64_t b[4] = {0, 0, 0, 0};
	uint64_t groups = 0; // 32-byte groups summed
};

// Sum @len bytes as the continuation of @s.  Only the last piece of a block
// may have a length that is not a multiple of 32 (it is zero-padded).
void f64_update(F64 &s, const void *p, size_t len);
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

// Copy @len bytes and sum them (as f64_update) in one pass.  @nt: the
// destination is written with non-temporal stores (it must then be 16-byte
// aligned; the pool's payloads are); the caller fences.
void copy_sum(void *dst, const void *src, size_t len, F64 &s, bool nt);

} // namespace bkv
