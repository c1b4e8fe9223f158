// SPDX-License-Identifier: Apache-2.0
// Description: the benchmark's innermost loops, written with SSE2 intrinsics
// (always present on x86-64) rather than plain C++ so that the compiler can
// neither turn a store loop into memset (glibc's memset switches to
// non-temporal stores for large sizes, which would blur "plain store") nor
// drop reads whose result is unused.  clflushopt and clwb use per-function
// target attributes, so the tool runs on CPUs without them (the bench then
// reports those methods as skipped).
#include "kernels.hpp"

#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace bench {

#if defined(__x86_64__)

static CpuFeatures detect()
{
	CpuFeatures f;
	unsigned a, b, c, d;

	f.x86 = true;
	if (__get_cpuid(1, &a, &b, &c, &d)) {
		f.clflush = d & (1u << 19);
		if (f.clflush)
			f.line = ((b >> 8) & 0xff) * 8;
	}
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
		f.clflushopt = b & (1u << 23);
		f.clwb = b & (1u << 24);
		f.movdir64b = c & (1u << 28);
	}
	if (f.line == 0)
		f.line = 64;
	return f;
}

const CpuFeatures &cpu()
{
	static const CpuFeatures f = detect();

	return f;
}

std::uint64_t read_block(const std::byte *p, std::size_t len)
{
	__m128i acc0 = _mm_setzero_si128(), acc1 = acc0, acc2 = acc0, acc3 = acc0;

	for (std::size_t i = 0; i < len; i += 64) {
		const __m128i *q = reinterpret_cast<const __m128i *>(p + i);

		acc0 = _mm_xor_si128(acc0, _mm_load_si128(q));
		acc1 = _mm_xor_si128(acc1, _mm_load_si128(q + 1));
		acc2 = _mm_xor_si128(acc2, _mm_load_si128(q + 2));
		acc3 = _mm_xor_si128(acc3, _mm_load_si128(q + 3));
	}
	acc0 = _mm_xor_si128(_mm_xor_si128(acc0, acc1), _mm_xor_si128(acc2, acc3));
	return static_cast<std::uint64_t>(_mm_cvtsi128_si64(acc0));
}

void store_block(std::byte *p, std::size_t len, std::uint64_t v)
{
	__m128i x = _mm_set1_epi64x(static_cast<long long>(v));

	for (std::size_t i = 0; i < len; i += 64) {
		__m128i *q = reinterpret_cast<__m128i *>(p + i);

		_mm_store_si128(q, x);
		_mm_store_si128(q + 1, x);
		_mm_store_si128(q + 2, x);
		_mm_store_si128(q + 3, x);
	}
}

void nt_store_block(std::byte *p, std::size_t len, std::uint64_t v)
{
	__m128i x = _mm_set1_epi64x(static_cast<long long>(v));

	for (std::size_t i = 0; i < len; i += 64) {
		__m128i *q = reinterpret_cast<__m128i *>(p + i);

		_mm_stream_si128(q, x);
		_mm_stream_si128(q + 1, x);
		_mm_stream_si128(q + 2, x);
		_mm_stream_si128(q + 3, x);
	}
}

void copy_block(std::byte *dst, const std::byte *src, std::size_t len)
{
	for (std::size_t i = 0; i < len; i += 64) {
		const __m128i *s = reinterpret_cast<const __m128i *>(src + i);
		__m128i *d = reinterpret_cast<__m128i *>(dst + i);
		__m128i a = _mm_load_si128(s), b = _mm_load_si128(s + 1);
		__m128i c = _mm_load_si128(s + 2), e = _mm_load_si128(s + 3);

		_mm_store_si128(d, a);
		_mm_store_si128(d + 1, b);
		_mm_store_si128(d + 2, c);
		_mm_store_si128(d + 3, e);
	}
}

void clflush_block(const std::byte *p, std::size_t len)
{
	for (std::size_t i = 0; i < len; i += 64)
		_mm_clflush(p + i);
}

__attribute__((target("clflushopt")))
void clflushopt_block(const std::byte *p, std::size_t len)
{
	for (std::size_t i = 0; i < len; i += 64)
		_mm_clflushopt(const_cast<std::byte *>(p + i));
}

__attribute__((target("clwb")))
void clwb_block(const std::byte *p, std::size_t len)
{
	for (std::size_t i = 0; i < len; i += 64)
		_mm_clwb(const_cast<std::byte *>(p + i));
}

void sfence()
{
	_mm_sfence();
}

void mfence()
{
	_mm_mfence();
}

#else	// not x86: plain loops; no cache maintenance (methods report skipped)

const CpuFeatures &cpu()
{
	static const CpuFeatures f;

	return f;
}

std::uint64_t read_block(const std::byte *p, std::size_t len)
{
	std::uint64_t acc = 0;

	for (std::size_t i = 0; i < len; i += 8)
		acc ^= *reinterpret_cast<const volatile std::uint64_t *>(p + i);
	return acc;
}

void store_block(std::byte *p, std::size_t len, std::uint64_t v)
{
	for (std::size_t i = 0; i < len; i += 8)
		*reinterpret_cast<volatile std::uint64_t *>(p + i) = v;
}

void nt_store_block(std::byte *p, std::size_t len, std::uint64_t v)
{
	store_block(p, len, v);
}

void copy_block(std::byte *dst, const std::byte *src, std::size_t len)
{
	std::memcpy(dst, src, len);
}

void clflush_block(const std::byte *, std::size_t) {}
void clflushopt_block(const std::byte *, std::size_t) {}
void clwb_block(const std::byte *, std::size_t) {}
void sfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
void mfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

#endif

} // namespace bench
