// SPDX-License-Identifier: Apache-2.0
#include "nt_copy.hpp"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__) || defined(__SSE2__)
#include <emmintrin.h>
#define BELUGA_HAVE_SSE2_NT 1
#endif

namespace beluga::xfer {

#ifdef BELUGA_HAVE_SSE2_NT

void copy_nt(void *dst, const void *src, size_t n)
{
	auto *d = static_cast<unsigned char *>(dst);
	auto *s = static_cast<const unsigned char *>(src);
	const size_t head = (16 - (reinterpret_cast<uintptr_t>(d) & 15)) & 15;
	if (n < head + 64) { // too short to be worth a streaming loop
		std::memcpy(d, s, n);
		return;
	}
	std::memcpy(d, s, head);
	d += head, s += head, n -= head;
	// 64 bytes (a cache line) per iteration: four loads, then four streaming stores.
	for (; n >= 64; d += 64, s += 64, n -= 64) {
		const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i *>(s));
		const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i *>(s + 16));
		const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i *>(s + 32));
		const __m128i e = _mm_loadu_si128(reinterpret_cast<const __m128i *>(s + 48));
		_mm_stream_si128(reinterpret_cast<__m128i *>(d), a);
		_mm_stream_si128(reinterpret_cast<__m128i *>(d + 16), b);
		_mm_stream_si128(reinterpret_cast<__m128i *>(d + 32), c);
		_mm_stream_si128(reinterpret_cast<__m128i *>(d + 48), e);
	}
	for (; n >= 16; d += 16, s += 16, n -= 16)
		_mm_stream_si128(reinterpret_cast<__m128i *>(d),
				 _mm_loadu_si128(reinterpret_cast<const __m128i *>(s)));
	std::memcpy(d, s, n);
}

void store_fence()
{
	_mm_sfence();
}

#else

void copy_nt(void *dst, const void *src, size_t n)
{
	std::memcpy(dst, src, n);
}

void store_fence()
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

#endif

} // namespace beluga::xfer
