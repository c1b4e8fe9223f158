/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Description: Beluga's CPU primitives, the one place user space touches
 * cache-maintenance instructions and streaming stores: write-back,
 * invalidate, fences, non-temporal copy (with or without the KV store's
 * block checksum computed on the way) and CPU feature detection.
 *
 * CXL memory shared between hosts is not kept coherent across them (the
 * paper's guideline O1): a writer must push every line it wrote to memory
 * (non-temporal stores, or ordinary stores followed by a write-back) and a
 * reader must drop stale lines before reading.  libbeluga (beluga_flush(),
 * beluga_copy_nt(), ...), the KV store (libbeluga/kvcache) and the data path
 * (libbeluga/xfer) all call these; no other library code issues clwb,
 * clflushopt, clflush or movnt (only the measuring kernels of the
 * benchmarks, bench/ and beluga-tool bench, which must not share the code
 * they measure).
 *
 * Static library `beluga_cpu`, no dependencies but pthreads; not installed.
 * Every function may be called from any thread.
 */
#ifndef BELUGA_CPU_H
#define BELUGA_CPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct bcpu_features {
	bool clflush;		/* CPUID.1:EDX.CLFSH */
	bool clflushopt;	/* CPUID.7.0:EBX bit 23 */
	bool clwb;		/* CPUID.7.0:EBX bit 24 */
	bool avx2;		/* and the OS saves the registers (XGETBV) */
	bool avx512f;
	bool movdir64b;		/* CPUID.7.0:ECX bit 28 (reported, not used) */
	unsigned int line;	/* cache-line size in bytes */
};

/*
 * Detected once (cpuid, pthread_once), read-only afterwards.  The
 * environment variable BELUGA_CPU_MAX_ISA=avx2 or sse2 hides the wider
 * vector extensions (tests run every copy loop that way).
 */
const struct bcpu_features *bcpu_features(void);

/*
 * bcpu_writeback - write the lines of [addr, addr+len) back to memory,
 * keeping them cached where the CPU can (clwb; else clflushopt, clflush),
 * then sfence.  Every line the range touches, partial ones included.
 */
void bcpu_writeback(const void *addr, size_t len);

/*
 * bcpu_flush - write back and invalidate the lines of [addr, addr+len)
 * (clflushopt, else clflush), then sfence: the next loads come from memory.
 */
void bcpu_flush(const void *addr, size_t len);

void bcpu_fence_store(void);	/* sfence */
void bcpu_fence_load(void);	/* lfence */
void bcpu_fence_full(void);	/* mfence */

/*
 * bcpu_copy_nt - copy @len bytes with non-temporal stores: the whole
 * 64-byte lines of @dst with the widest streaming stores the CPU has
 * (AVX-512, AVX2, SSE2), the unaligned head and tail with ordinary stores
 * that are then written back, and one sfence at the end.  On return every
 * byte of the destination is on its way to memory and ordered before the
 * caller's later stores, whatever the alignment of @dst, @src and @len.
 */
void bcpu_copy_nt(void *dst, const void *src, size_t len);

/*
 * Lane sums of the KV store's block checksum (BKV-F64,
 * Documentation/kvcache-format.md), computed while copying.  The data is
 * read as 32-byte groups of four little-endian 64-bit words w[0..3]; each
 * group does a[j] += w[j], b[j] += a[j] (mod 2^64) and counts itself in
 * @groups.  Zero-initialise a sum before its first piece.  A piece may end
 * in a partial group (it is summed zero-padded) only when it is the last
 * piece of what is summed.  The store combines and finalises the lanes.
 */
struct bcpu_sum {
	uint64_t a[4];
	uint64_t b[4];
	uint64_t groups;
};

/* Add @len bytes at @p to @s. */
void bcpu_sum_update(struct bcpu_sum *s, const void *p, size_t len);

/*
 * bcpu_copy_sum - copy @len bytes with ordinary stores and add them to @s
 * in the same pass.  Nothing is written back or fenced.
 */
void bcpu_copy_sum(void *dst, const void *src, size_t len, struct bcpu_sum *s);

/*
 * bcpu_copy_nt_sum - bcpu_copy_nt() and bcpu_sum_update() in one pass:
 * the same stores, write-backs and final sfence as bcpu_copy_nt(), and @s
 * gets the bytes as they are copied.  One pass needs @dst 32-byte aligned
 * (the store's payloads and pieces are 64-byte aligned); otherwise the
 * copy and the sum are two passes over @src, with the same result.
 */
void bcpu_copy_nt_sum(void *dst, const void *src, size_t len, struct bcpu_sum *s);

/*
 * "clflushopt+clwb", "clflushopt", "clflush" or "none": the instructions
 * bcpu_flush() and bcpu_writeback() use.
 */
const char *bcpu_flush_method(void);
/*
 * "avx512", "avx2", "sse2" or "memcpy": the stores of bcpu_copy_nt() and
 * bcpu_copy_nt_sum().
 */
const char *bcpu_copy_method(void);

/*
 * Instrumentation, for the KV store's non-coherent simulation and for
 * tests: every store range a primitive makes, every line range it writes
 * back and every fence, in order, reported after the fact, so that an
 * observer can replay what reached memory.  Always compiled: with no hook
 * installed a primitive pays one load and a not-taken branch per call (not
 * per line).  The hook is process-wide and is called from whichever thread
 * runs the primitive, concurrently when several do; it must be thread-safe
 * and must not call the primitives itself.
 */
enum bcpu_event {
	BCPU_EV_STORE = 1,	/* ordinary stores to [p, p+len) */
	BCPU_EV_NTSTORE,	/* non-temporal stores to [p, p+len), whole lines */
	BCPU_EV_WRITEBACK,	/* lines of [p, p+len) written back */
	BCPU_EV_FLUSH,		/* lines of [p, p+len) written back, invalidated */
	BCPU_EV_FENCE,		/* sfence or mfence */
};
typedef void (*bcpu_trace_fn)(enum bcpu_event ev, const void *p, size_t len, void *arg);
/*
 * Install @fn, called with @arg (NULL: none).  Meant to be set once, or
 * while no primitive runs: a primitive running meanwhile may report to the
 * previous hook.
 */
void bcpu_set_trace(bcpu_trace_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* BELUGA_CPU_H */
