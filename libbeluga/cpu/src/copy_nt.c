// SPDX-License-Identifier: Apache-2.0
/*
 * Description: copy with non-temporal stores (the paper's O1: CPU writes to
 * CXL memory use ntstore), optionally summing the KV store's checksum lanes
 * (struct bcpu_sum) in the same pass, and the lane sums on their own.
 *
 * Streaming stores bypass the cache: the destination is neither read for
 * ownership nor left behind as lines another host would not see.  The body
 * is copied in whole 64-byte lines of the destination with the widest
 * stores the CPU has (chosen at run time); the unaligned head and tail use
 * ordinary stores and are written back explicitly, and one sfence orders
 * everything at the end.  Every store range, write-back and fence is
 * reported to the trace hook (trace.h).
 *
 * The sum reads 32-byte groups counted from the start of the source; the
 * destination's lines line up with them when the destination is 32-byte
 * aligned (a head of 0 or 32 bytes), which is when the copy and the sum
 * share one pass.
 */
#include <stdint.h>
#include <string.h>

#include <beluga/cpu.h>

#include "trace.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* ---- the lane sums: the scalar loop is the definition ---- */

static uint64_t rd64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);	/* little-endian hosts (x86-64, aarch64 LE) */
	return v;
}

static void sum_scalar(struct bcpu_sum *s, const unsigned char *p, size_t groups)
{
	for (size_t g = 0; g < groups; g++, p += 32)
		for (int j = 0; j < 4; j++) {
			s->a[j] += rd64(p + 8 * j);
			s->b[j] += s->a[j];
		}
	s->groups += groups;
}

/* A last group of @len < 32 bytes, zero-padded. */
static void sum_partial(struct bcpu_sum *s, const unsigned char *p, size_t len)
{
	unsigned char pad[32] = {0};

	memcpy(pad, p, len);
	sum_scalar(s, pad, 1);
}

#if defined(__x86_64__)
/*
 * Whole groups, summed and (when @d is not NULL) copied with ordinary
 * stores.  SSE2 is the x86-64 baseline; AVX2 does a group per add.
 */
__attribute__((target("avx2")))
static void groups_avx2(struct bcpu_sum *s, unsigned char *d, const unsigned char *p,
			size_t groups)
{
	__m256i a = _mm256_loadu_si256((const __m256i *)s->a);
	__m256i b = _mm256_loadu_si256((const __m256i *)s->b);

	for (size_t g = 0; g < groups; g++, p += 32) {
		__m256i x = _mm256_loadu_si256((const __m256i *)p);

		a = _mm256_add_epi64(a, x);
		b = _mm256_add_epi64(b, a);
		if (d) {
			_mm256_storeu_si256((__m256i *)d, x);
			d += 32;
		}
	}
	_mm256_storeu_si256((__m256i *)s->a, a);
	_mm256_storeu_si256((__m256i *)s->b, b);
	s->groups += groups;
}

static void groups_sse2(struct bcpu_sum *s, unsigned char *d, const unsigned char *p,
			size_t groups)
{
	__m128i a0 = _mm_loadu_si128((const __m128i *)s->a);
	__m128i a1 = _mm_loadu_si128((const __m128i *)(s->a + 2));
	__m128i b0 = _mm_loadu_si128((const __m128i *)s->b);
	__m128i b1 = _mm_loadu_si128((const __m128i *)(s->b + 2));

	for (size_t g = 0; g < groups; g++, p += 32) {
		__m128i x0 = _mm_loadu_si128((const __m128i *)p);
		__m128i x1 = _mm_loadu_si128((const __m128i *)(p + 16));

		a0 = _mm_add_epi64(a0, x0);
		a1 = _mm_add_epi64(a1, x1);
		b0 = _mm_add_epi64(b0, a0);
		b1 = _mm_add_epi64(b1, a1);
		if (d) {
			_mm_storeu_si128((__m128i *)d, x0);
			_mm_storeu_si128((__m128i *)(d + 16), x1);
			d += 32;
		}
	}
	_mm_storeu_si128((__m128i *)s->a, a0);
	_mm_storeu_si128((__m128i *)(s->a + 2), a1);
	_mm_storeu_si128((__m128i *)s->b, b0);
	_mm_storeu_si128((__m128i *)(s->b + 2), b1);
	s->groups += groups;
}

static void groups(struct bcpu_sum *s, unsigned char *d, const unsigned char *p, size_t n)
{
	if (bcpu_features()->avx2)
		groups_avx2(s, d, p, n);
	else
		groups_sse2(s, d, p, n);
}
#else
static void groups(struct bcpu_sum *s, unsigned char *d, const unsigned char *p, size_t n)
{
	if (d)
		memcpy(d, p, n * 32);
	sum_scalar(s, p, n);
}
#endif

/* Sum (and copy, @d not NULL) @len bytes, the last group partial. */
static void sum_bytes(struct bcpu_sum *s, unsigned char *d, const unsigned char *p, size_t len)
{
	size_t n = len / 32;

	groups(s, d, p, n);
	if (len % 32) {
		if (d)
			memcpy(d + n * 32, p + n * 32, len % 32);
		sum_partial(s, p + n * 32, len % 32);
	}
}

void bcpu_sum_update(struct bcpu_sum *s, const void *p, size_t len)
{
	sum_bytes(s, NULL, p, len);
}

void bcpu_copy_sum(void *dst, const void *src, size_t len, struct bcpu_sum *s)
{
	sum_bytes(s, dst, src, len);
	if (len)
		bcpu_trace(BCPU_EV_STORE, dst, len);
}

/* ---- the non-temporal body: whole 64-byte lines of @d ---- */

#if defined(__x86_64__)
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

/* The same, summing each line's two groups. */
static void body_sum_sse2(struct bcpu_sum *st, char *d, const char *s, size_t lines)
{
	__m128i a0 = _mm_loadu_si128((const __m128i *)st->a);
	__m128i a1 = _mm_loadu_si128((const __m128i *)(st->a + 2));
	__m128i b0 = _mm_loadu_si128((const __m128i *)st->b);
	__m128i b1 = _mm_loadu_si128((const __m128i *)(st->b + 2));

	st->groups += 2 * lines;
	for (; lines; lines--, d += 64, s += 64) {
		__m128i x0 = _mm_loadu_si128((const __m128i *)s);
		__m128i x1 = _mm_loadu_si128((const __m128i *)(s + 16));
		__m128i x2 = _mm_loadu_si128((const __m128i *)(s + 32));
		__m128i x3 = _mm_loadu_si128((const __m128i *)(s + 48));

		_mm_stream_si128((__m128i *)d, x0);
		_mm_stream_si128((__m128i *)(d + 16), x1);
		_mm_stream_si128((__m128i *)(d + 32), x2);
		_mm_stream_si128((__m128i *)(d + 48), x3);
		a0 = _mm_add_epi64(a0, x0);
		a1 = _mm_add_epi64(a1, x1);
		b0 = _mm_add_epi64(b0, a0);
		b1 = _mm_add_epi64(b1, a1);
		a0 = _mm_add_epi64(a0, x2);
		a1 = _mm_add_epi64(a1, x3);
		b0 = _mm_add_epi64(b0, a0);
		b1 = _mm_add_epi64(b1, a1);
	}
	_mm_storeu_si128((__m128i *)st->a, a0);
	_mm_storeu_si128((__m128i *)(st->a + 2), a1);
	_mm_storeu_si128((__m128i *)st->b, b0);
	_mm_storeu_si128((__m128i *)(st->b + 2), b1);
}

__attribute__((target("avx2")))
static void body_sum_avx2(struct bcpu_sum *st, char *d, const char *s, size_t lines)
{
	__m256i a = _mm256_loadu_si256((const __m256i *)st->a);
	__m256i b = _mm256_loadu_si256((const __m256i *)st->b);

	st->groups += 2 * lines;
	for (; lines; lines--, d += 64, s += 64) {
		__m256i x = _mm256_loadu_si256((const __m256i *)s);
		__m256i y = _mm256_loadu_si256((const __m256i *)(s + 32));

		_mm256_stream_si256((__m256i *)d, x);
		_mm256_stream_si256((__m256i *)(d + 32), y);
		a = _mm256_add_epi64(a, x);
		b = _mm256_add_epi64(b, a);
		a = _mm256_add_epi64(a, y);
		b = _mm256_add_epi64(b, a);
	}
	_mm256_storeu_si256((__m256i *)st->a, a);
	_mm256_storeu_si256((__m256i *)st->b, b);
}

/*
 * A line X is two groups, x0 (low half) and x1.  Rather than stepping a and
 * b group by group, sum whole lines into S (S += X) and T (T += S, after
 * each line), 512 bits wide; for L lines from (a, b):
 *   a' = a + S.lo + S.hi
 *   b' = b + 2L a + 2 (T.lo + T.hi) - S.hi
 * (each line adds (a + P[k-1] + x0[k]) + (a + P[k]) to b, P[k] the sum of
 * the first k lines' groups), modulo 2^64 like the rest.
 */
__attribute__((target("avx512f")))
static void body_sum_avx512(struct bcpu_sum *st, char *d, const char *s, size_t lines)
{
	__m512i S = _mm512_setzero_si512(), T = _mm512_setzero_si512();
	uint64_t sv[8], tv[8];
	size_t n = lines;

	for (; n >= 4; n -= 4, d += 256, s += 256) {
		__m512i x0 = _mm512_loadu_si512((const void *)s);
		__m512i x1 = _mm512_loadu_si512((const void *)(s + 64));
		__m512i x2 = _mm512_loadu_si512((const void *)(s + 128));
		__m512i x3 = _mm512_loadu_si512((const void *)(s + 192));

		_mm512_stream_si512((void *)d, x0);
		_mm512_stream_si512((void *)(d + 64), x1);
		_mm512_stream_si512((void *)(d + 128), x2);
		_mm512_stream_si512((void *)(d + 192), x3);
		S = _mm512_add_epi64(S, x0);
		T = _mm512_add_epi64(T, S);
		S = _mm512_add_epi64(S, x1);
		T = _mm512_add_epi64(T, S);
		S = _mm512_add_epi64(S, x2);
		T = _mm512_add_epi64(T, S);
		S = _mm512_add_epi64(S, x3);
		T = _mm512_add_epi64(T, S);
	}
	for (; n; n--, d += 64, s += 64) {
		__m512i x = _mm512_loadu_si512((const void *)s);

		_mm512_stream_si512((void *)d, x);
		S = _mm512_add_epi64(S, x);
		T = _mm512_add_epi64(T, S);
	}
	_mm512_storeu_si512((void *)sv, S);
	_mm512_storeu_si512((void *)tv, T);
	for (int j = 0; j < 4; j++) {
		uint64_t a = st->a[j];

		st->b[j] += 2 * (uint64_t)lines * a + 2 * (tv[j] + tv[j + 4]) - sv[j + 4];
		st->a[j] = a + sv[j] + sv[j + 4];
	}
	st->groups += 2 * lines;
}

static void body(char *d, const char *s, size_t lines, struct bcpu_sum *sum)
{
	const struct bcpu_features *c = bcpu_features();

	if (sum) {
		if (c->avx512f)
			body_sum_avx512(sum, d, s, lines);
		else if (c->avx2)
			body_sum_avx2(sum, d, s, lines);
		else
			body_sum_sse2(sum, d, s, lines);
	} else {
		if (c->avx512f)
			body_avx512(d, s, lines);
		else if (c->avx2)
			body_avx2(d, s, lines);
		else
			body_sse2(d, s, lines);
	}
	bcpu_trace(BCPU_EV_NTSTORE, d, lines * 64);
}

const char *bcpu_copy_method(void)
{
	const struct bcpu_features *c = bcpu_features();

	return c->avx512f ? "avx512" : c->avx2 ? "avx2" : "sse2";
}

#else	/* no streaming stores: ordinary stores, written back */

static void partial(char *d, const char *s, size_t len, struct bcpu_sum *sum);

static void body(char *d, const char *s, size_t lines, struct bcpu_sum *sum)
{
	partial(d, s, lines * 64, sum);
}

const char *bcpu_copy_method(void)
{
	return "memcpy";
}
#endif

/* Ordinary stores to a head or tail, then pushed to memory like the rest. */
static void partial(char *d, const char *s, size_t len, struct bcpu_sum *sum)
{
	if (!len)
		return;
	if (sum)
		sum_bytes(sum, (unsigned char *)d, (const unsigned char *)s, len);
	else
		memcpy(d, s, len);
	bcpu_trace(BCPU_EV_STORE, d, len);
	bcpu_writeback(d, len);
}

/*
 * Head up to the first 64-byte boundary of @dst, whole lines, tail; with
 * @sum, @dst is 32-byte aligned so that the head is whole groups (or the
 * whole copy) and the lines are pairs of groups.
 */
static void copy_nt(char *d, const char *s, size_t len, struct bcpu_sum *sum)
{
	size_t head = (64 - ((uintptr_t)d & 63)) & 63, lines;

	if (head > len)
		head = len;
	partial(d, s, head, sum);
	d += head, s += head, len -= head;
	lines = len / 64;
	if (lines)
		body(d, s, lines, sum);
	d += lines * 64, s += lines * 64, len -= lines * 64;
	partial(d, s, len, sum);
	bcpu_fence_store();
}

void bcpu_copy_nt(void *dst, const void *src, size_t len)
{
	copy_nt(dst, src, len, NULL);
}

void bcpu_copy_nt_sum(void *dst, const void *src, size_t len, struct bcpu_sum *s)
{
	if ((uintptr_t)dst & 31) {
		/* The lines of @dst straddle the groups of @src: two passes. */
		copy_nt(dst, src, len, NULL);
		bcpu_sum_update(s, src, len);
		return;
	}
	copy_nt(dst, src, len, s);
}
