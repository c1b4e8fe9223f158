// SPDX-License-Identifier: Apache-2.0
// See platform.hpp.  With libbeluga (BKV_HAVE_LIBBELUGA) every function is a
// one-line call into it; the fallback below only exists so that the store
// builds and is tested before and without libbeluga.
#include "platform.hpp"

#include <cstdint>

#if defined(BKV_HAVE_LIBBELUGA)
#include <beluga/beluga.h>

namespace bkv::cpu {
void writeback(const void *p, size_t len) { beluga_writeback(p, len); }
void invalidate(const void *p, size_t len)
{
	beluga_flush(p, len);
	beluga_fence_full();
}
void fence_store() { beluga_fence_store(); }
void fence_full() { beluga_fence_full(); }
const char *method() { return beluga_cpu_flush_method(); }
} // namespace bkv::cpu

#elif defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

namespace bkv::cpu {
namespace {

struct Caps {
	bool clwb = false, clflushopt = false;
	Caps()
	{
		unsigned a, b, c, d;
		if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
			clflushopt = b & (1u << 23);
			clwb = b & (1u << 24);
		}
	}
};
const Caps &caps()
{
	static const Caps c;
	return c;
}

__attribute__((target("clwb"))) void lines_clwb(uintptr_t p, uintptr_t e)
{
	for (; p < e; p += 64)
		_mm_clwb(reinterpret_cast<void *>(p));
}
__attribute__((target("clflushopt"))) void lines_clflushopt(uintptr_t p, uintptr_t e)
{
	for (; p < e; p += 64)
		_mm_clflushopt(reinterpret_cast<void *>(p));
}
void lines_clflush(uintptr_t p, uintptr_t e)
{
	for (; p < e; p += 64)
		_mm_clflush(reinterpret_cast<void *>(p));
}
void each_line(const void *addr, size_t len, bool keep)
{
	if (!len)
		return;
	uintptr_t p = reinterpret_cast<uintptr_t>(addr) & ~uintptr_t(63);
	uintptr_t e = reinterpret_cast<uintptr_t>(addr) + len;
	if (keep && caps().clwb)
		lines_clwb(p, e);
	else if (caps().clflushopt)
		lines_clflushopt(p, e);
	else
		lines_clflush(p, e);
}

} // namespace

void writeback(const void *p, size_t len)
{
	each_line(p, len, true);
	_mm_sfence();
}
void invalidate(const void *p, size_t len)
{
	each_line(p, len, false);
	_mm_mfence();
}
void fence_store() { _mm_sfence(); }
void fence_full() { _mm_mfence(); }
const char *method()
{
	return caps().clwb ? "clflushopt+clwb" : caps().clflushopt ? "clflushopt" : "clflush";
}
} // namespace bkv::cpu

#else
#include <atomic>

namespace bkv::cpu {
void writeback(const void *, size_t) { std::atomic_thread_fence(std::memory_order_seq_cst); }
void invalidate(const void *, size_t) { std::atomic_thread_fence(std::memory_order_seq_cst); }
void fence_store() { std::atomic_thread_fence(std::memory_order_seq_cst); }
void fence_full() { std::atomic_thread_fence(std::memory_order_seq_cst); }
const char *method() { return "none"; }
} // namespace bkv::cpu
#endif
