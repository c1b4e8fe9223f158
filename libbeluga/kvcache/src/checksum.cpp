// SPDX-License-Identifier: Apache-2.0
// BKV-F64 and the fused copy-and-sum loops.  The scalar loop is the
// definition; the SSE2 (x86-64 baseline) and AVX2 loops compute the same
// lanes with vector adds and are checked against it by the tests.
#include "checksum.hpp"

#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace bkv {
namespace {

inline uint64_t rd64(const unsigned char *p)
{
	uint64_t v;
	std::memcpy(&v, p, 8); // little-endian host (x86-64, aarch64 LE)
	return v;
}

void scalar_groups(F64 &s, const unsigned char *p, size_t groups)
{
	for (size_t g = 0; g < groups; g++, p += 32)
		for (int j = 0; j < 4; j++) {
			s.a[j] += rd64(p + 8 * j);
			s.b[j] += s.a[j];
		}
	s.groups += groups;
}

void tail_group(F64 &s, const unsigned char *p, size_t len)
{
	unsigned char pad[32] = {};
	std::memcpy(pad, p, len);
	scalar_groups(s, pad, 1);
}

#if defined(__x86_64__)
bool have_avx2()
{
	static const bool v = __builtin_cpu_supports("avx2");
	return v;
}

__attribute__((target("avx2"))) size_t copy_groups_avx2(F64 &s, unsigned char *d,
							  const unsigned char *p, size_t groups,
							  bool nt, bool copy)
{
	__m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(s.a));
	__m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(s.b));
	for (size_t g = 0; g < groups; g++, p += 32, d += 32) {
		__m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p));
		a = _mm256_add_epi64(a, x);
		b = _mm256_add_epi64(b, a);
		if (!copy)
			continue;
		if (nt && !(reinterpret_cast<uintptr_t>(d) & 31))
			_mm256_stream_si256(reinterpret_cast<__m256i *>(d), x);
		else
			_mm256_storeu_si256(reinterpret_cast<__m256i *>(d), x);
	}
	_mm256_storeu_si256(reinterpret_cast<__m256i *>(s.a), a);
	_mm256_storeu_si256(reinterpret_cast<__m256i *>(s.b), b);
	s.groups += groups;
	return groups;
}

size_t copy_groups_sse2(F64 &s, unsigned char *d, const unsigned char *p, size_t groups,
			bool nt, bool copy)
{
	__m128i a0 = _mm_loadu_si128(reinterpret_cast<const __m128i *>(s.a));
	__m128i a1 = _mm_loadu_si128(reinterpret_cast<const __m128i *>(s.a + 2));
	__m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i *>(s.b));
	__m128i b1 = _mm_loadu_si128(reinterpret_cast<const __m128i *>(s.b + 2));
	bool stream = nt && !(reinterpret_cast<uintptr_t>(d) & 15);
	for (size_t g = 0; g < groups; g++, p += 32, d += 32) {
		__m128i x0 = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
		__m128i x1 = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p + 16));
		a0 = _mm_add_epi64(a0, x0);
		a1 = _mm_add_epi64(a1, x1);
		b0 = _mm_add_epi64(b0, a0);
		b1 = _mm_add_epi64(b1, a1);
		if (!copy)
			continue;
		if (stream) {
			_mm_stream_si128(reinterpret_cast<__m128i *>(d), x0);
			_mm_stream_si128(reinterpret_cast<__m128i *>(d + 16), x1);
		} else {
			_mm_storeu_si128(reinterpret_cast<__m128i *>(d), x0);
			_mm_storeu_si128(reinterpret_cast<__m128i *>(d + 16), x1);
		}
	}
	_mm_storeu_si128(reinterpret_cast<__m128i *>(s.a), a0);
	_mm_storeu_si128(reinterpret_cast<__m128i *>(s.a + 2), a1);
	_mm_storeu_si128(reinterpret_cast<__m128i *>(s.b), b0);
	_mm_storeu_si128(reinterpret_cast<__m128i *>(s.b + 2), b1);
	s.groups += groups;
	return groups;
}
#endif

void body(F64 &s, unsigned char *d, const unsigned char *p, size_t groups, bool nt, bool copy)
{
#if defined(__x86_64__)
	if (have_avx2())
		copy_groups_avx2(s, d, p, groups, nt, copy);
	else
		copy_groups_sse2(s, d, p, groups, nt, copy);
#else
	if (copy)
		std::memcpy(d, p, groups * 32);
	scalar_groups(s, p, groups);
#endif
}

} // namespace

void f64_update(F64 &s, const void *src, size_t len)
{
	auto p = static_cast<const unsigned char *>(src);
	body(s, const_cast<unsigned char *>(p), p, len / 32, false, false);
	if (len % 32)
		tail_group(s, p + len / 32 * 32, len % 32);
}

void f64_combine(F64 &s, const F64 &next)
{
	for (int j = 0; j < 4; j++) {
		s.b[j] += next.b[j] + s.a[j] * next.groups;
		s.a[j] += next.a[j];
	}
	s.groups += next.groups;
}

uint64_t f64_final(const F64 &s, uint64_t len)
{
	constexpr uint64_t k = 0x9e3779b97f4a7c15ull;
	uint64_t h = len ^ 0x42454c5547414b56ull;
	const uint64_t v[8] = {s.a[0], s.a[1], s.a[2], s.a[3], s.b[0], s.b[1], s.b[2], s.b[3]};
	for (uint64_t x : v) {
		h ^= x;
		h = (h << 27 | h >> 37) * k;
	}
	return fmix64(h);
}

void copy_sum(void *dst, const void *src, size_t len, F64 &s, bool nt)
{
	auto d = static_cast<unsigned char *>(dst);
	auto p = static_cast<const unsigned char *>(src);
	size_t groups = len / 32;
	body(s, d, p, groups, nt, true);
	if (len % 32) {
		std::memcpy(d + groups * 32, p + groups * 32, len % 32);
		tail_group(s, p + groups * 32, len % 32);
	}
}

} // namespace bkv
