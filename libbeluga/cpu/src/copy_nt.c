// SPDX-License-Identifier: Apache-2.0
/*
 * Description: copy with non-temporal stores (the paper's O1: CPU writes to
 * CXL memory use ntstore).
 *
 * Streaming stores bypass the cache: the destination is neither read for
 * ownership nor left behind as lines another host would not see.  The body
 * is copied in whole 64-byte lines of the destination with the widest
 * stores the CPU has (chosen at run time); the unaligned head and tail use
 * ordinary stores and are written back explicitly, and one sfence orders
 * everything at the end.
 */
#include <stdint.h>
#include <string.h>

#include <beluga/cpu.h>

#include "trace.h"

/* Ordinary stores to a head or tail, then pushed to memory like the rest. */
static void copy_partial(char *d, const char *s, size_t len)
{
	if (!len)
		return;
	memcpy(d, s, len);
	bcpu_trace(BCPU_EV_STORE, d, len);
	bcpu_writeback(d, len);
}

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
	for (; lines >= 2; lines -= 2, d += 128, s += 128) {
		__m256i a = _mm256_loadu_si256((const __m256i *)s);
		__m256i b = _mm256_loadu_si256((const __m256i *)(s + 32));
		__m256i c = _mm256_loadu_si256((const __m256i *)(s + 64));
		__m256i e = _mm256_loadu_si256((const __m256i *)(s + 96));

		_mm256_stream_si256((__m256i *)d, a);
		_mm256_stream_si256((__m256i *)(d + 32), b);
		_mm256_stream_si256((__m256i *)(d + 64), c);
		_mm256_stream_si256((__m256i *)(d + 96), e);
	}
	if (lines) {
		__m256i a = _mm256_loadu_si256((const __m256i *)s);
		__m256i b = _mm256_loadu_si256((const __m256i *)(s + 32));

		_mm256_stream_si256((__m256i *)d, a);
		_mm256_stream_si256((__m256i *)(d + 32), b);
	}
}

__attribute__((target("avx512f")))
static void body_avx512(char *d, const char *s, size_t lines)
{
	for (; lines >= 2; lines -= 2, d += 128, s += 128) {
		__m512i a = _mm512_loadu_si512((const void *)s);
		__m512i b = _mm512_loadu_si512((const void *)(s + 64));

		_mm512_stream_si512((void *)d, a);
		_mm512_stream_si512((void *)(d + 64), b);
	}
	if (lines)
		_mm512_stream_si512((void *)d, _mm512_loadu_si512((const void *)s));
}

static void body(char *d, const char *s, size_t lines)
{
	const struct bcpu_features *c = bcpu_features();

	if (c->avx512f)
		body_avx512(d, s, lines);
	else if (c->avx2)
		body_avx2(d, s, lines);
	else
		body_sse2(d, s, lines);
	bcpu_trace(BCPU_EV_NTSTORE, d, lines * 64);
}

const char *bcpu_copy_method(void)
{
	const struct bcpu_features *c = bcpu_features();

	return c->avx512f ? "avx512" : c->avx2 ? "avx2" : "sse2";
}

#else	/* no streaming stores: ordinary stores, written back */

static void body(char *d, const char *s, size_t lines)
{
	copy_partial(d, s, lines * 64);
}

const char *bcpu_copy_method(void)
{
	return "memcpy";
}
#endif

void bcpu_copy_nt(void *dst, const void *src, size_t len)
{
	char *d = dst;
	const char *s = src;
	size_t head = (64 - ((uintptr_t)d & 63)) & 63, lines;

	if (head > len)
		head = len;
	copy_partial(d, s, head);	/* up to the first 64-byte boundary */
	d += head, s += head, len -= head;
	lines = len / 64;
	if (lines)
		body(d, s, lines);
	d += lines * 64, s += lines * 64, len -= lines * 64;
	copy_partial(d, s, len);
	bcpu_fence_store();
}
