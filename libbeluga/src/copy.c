// SPDX-License-Identifier: Apache-2.0
/*
 * Description: copy with non-temporal stores (the paper's O1: CPU writes
 * to CXL memory use ntstore).
 *
 * Streaming stores bypass the cache: the destination is neither read for
 * ownership nor left behind as possibly stale lines.  The body is copied in
 * whole 64-byte lines with the widest stores the CPU has (chosen at run
 * time); the unaligned head and tail use ordinary stores and are written
 * back explicitly, and one sfence orders everything at the end.
 */
#include <stdint.h>
#include <string.h>

#include <beluga/beluga.h>

#include "cpu.h"

#if defined(__x86_64__)
#include <immintrin.h>

static void body_sse2(char *d, const char *s, size_t lines)
{
	for (; lines; lines--, d += 64, s += 64) {
		__m128i a = _mm_loadu_si128((const __m128i *)s);
		__m128i b = _mm_loadu_si128((const __m128i *)(s + 16));
		__m128i c = _mm_loadu_si128((const __m128i *)(s + 32));
		__m128i e = _mm_loadu_si128((const __m128i *)(s + 48));

		_mm_stream_si128((__m128i *)d, a);
		_mm_stream_si128((__m128i *)(d + 16), b);
		_mm_stream_si128((__m128i *)(d + 32), c);
		_mm_stream_si128((__m128i *)(d + 48), e);
	}
}

__attribute__((target("avx2")))
static void body_avx2(char *d, const char *s, size_t lines)
{
	for (; lines; lines--, d += 64, s += 64) {
		__m256i a = _mm256_loadu_si256((const __m256i *)s);
		__m256i b = _mm256_loadu_si256((const __m256i *)(s + 32));

		_mm256_stream_si256((__m256i *)d, a);
		_mm256_stream_si256((__m256i *)(d + 32), b);
	}
}

__attribute__((target("avx512f")))
static void body_avx512(char *d, const char *s, size_t lines)
{
	for (; lines; lines--, d += 64, s += 64)
		_mm512_stream_si512((void *)d,
				    _mm512_loadu_si512((const void *)s));
}

void beluga_copy_nt(void *dst, const void *src, size_t len)
{
	const struct beluga_cpu *c = beluga_cpu();
	char *d = dst;
	const char *s = src;
	size_t head = (64 - ((uintptr_t)d & 63)) & 63, lines;

	if (head > len)
		head = len;
	if (head) {	/* up to the first 64-byte boundary of dst */
		memcpy(d, s, head);
		beluga_writeback(d, head);
		d += head, s += head, len -= head;
	}
	lines = len / 64;
	if (c->avx512f)
		body_avx512(d, s, lines);
	else if (c->avx2)
		body_avx2(d, s, lines);
	else
		body_sse2(d, s, lines);
	d += lines * 64, s += lines * 64, len -= lines * 64;
	if (len) {
		memcpy(d, s, len);
		beluga_writeback(d, len);
	}
	_mm_sfence();
}

#else

void beluga_copy_nt(void *dst, const void *src, size_t len)
{
	memcpy(dst, src, len);
	beluga_writeback(dst, len);
}
#endif
