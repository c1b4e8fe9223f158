// SPDX-License-Identifier: Apache-2.0
// View: the three coherence modes (see view.hpp) and the omission hook.
#include "view.hpp"

#include <beluga/cpu.h>

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace bkv {
namespace {

#if defined(__x86_64__)
__attribute__((target("clflushopt"))) void clflushopt_line(const void *p) { _mm_clflushopt(const_cast<void *>(p)); }

// The lines at @mem + @offs[0..n) (offsets within a line are ignored), in
// one loop: lookups invalidate a line or a few per key.
__attribute__((target("clflushopt"))) void clflushopt_lines(uint8_t *mem, const uint64_t *offs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		_mm_clflushopt(mem + offs[i] / 64 * 64);
}

bool have_clflushopt()
{
	static const bool opt = bcpu_features()->clflushopt;
	return opt;
}
#endif

// Invalidate one line without a fence of its own: clflushopt is weakly
// ordered, so several lines' flushes overlap, and the caller's full fence
// completes them all (bcpu_flush fences after each range, which would make
// scattered lines wait for one another).
void flush_line_nofence(const uint8_t *p)
{
#if defined(__x86_64__)
	if (have_clflushopt()) {
		clflushopt_line(p);
		return;
	}
#endif
	bcpu_flush(p, 64);
}

constexpr const char *kPointNames[] = {
	"none", "payload_wb", "payload_nt_wb", "desc_commit", "index_publish",
	"pin_flush", "inval_index", "inval_desc", "inval_payload", "inval_pins",
	"evict_take", "tick_flush", "inval_ticks",
	"claim_flush", "inval_claim", "beat_flush", "takeover_flush",
	"summary_flush", "summary_seg", "summary_gen",
	"inval_sum_gen", "inval_sum_seg", "inval_summary",
};
static_assert(sizeof(kPointNames) / sizeof(kPointNames[0]) == size_t(Point::count));

#ifndef BKV_OMIT_POINT
#define BKV_OMIT_POINT ""
#endif

// The build default (CMake BELUGA_KVC_OMIT_POINT, for demonstrating that the
// tests catch a missing flush), overridden by BELUGA_KVC_TEST_OMIT.
Point default_point()
{
	const char *env = std::getenv("BELUGA_KVC_TEST_OMIT");
	Point p = point_from_name(env && *env ? env : BKV_OMIT_POINT);
	return p == Point::count ? Point::none : p;
}

std::atomic<int> &omit_setting()
{
	static std::atomic<int> v{int(default_point())};
	return v;
}

inline bool omitted(Point p)
{
	return p != Point::none && omit_setting().load(std::memory_order_relaxed) == int(p);
}

// Copy one line with 8-byte atomic accesses, so that concurrent atomic
// accesses to the same words by other threads never see torn words.
void copy_line(uint8_t *dst, const uint8_t *src)
{
	auto d = reinterpret_cast<uint64_t *>(dst);
	auto s = reinterpret_cast<const uint64_t *>(src);
	for (int i = 0; i < 8; i++)
		__atomic_store_n(d + i, __atomic_load_n(s + i, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
}

// The simulating views of this process, which the CPU primitives' trace
// reports to (View::observe_cpu).  The hook is installed once, by the first
// simulating view, and stays: with no view registered it finds none.
struct Simulated {
	std::shared_mutex mu;
	std::vector<View *> views;
};

Simulated &simulated()
{
	static Simulated s;
	return s;
}

void on_cpu_event(bcpu_event ev, const void *p, size_t len, void *)
{
	if (ev == BCPU_EV_FENCE || !len)
		return;
	Simulated &s = simulated();
	std::shared_lock lk(s.mu);
	for (View *v : s.views)
		if (v->observe_cpu(ev, p, len))
			return;
}

void simulate_register(View *v)
{
	static std::once_flag hook;
	std::call_once(hook, [] { bcpu_set_trace(on_cpu_event, nullptr); });
	Simulated &s = simulated();
	std::unique_lock lk(s.mu);
	s.views.push_back(v);
}

void simulate_unregister(View *v)
{
	Simulated &s = simulated();
	std::unique_lock lk(s.mu);
	s.views.erase(std::remove(s.views.begin(), s.views.end(), v), s.views.end());
}

} // namespace

const char *point_name(Point p)
{
	return p < Point::count ? kPointNames[int(p)] : "?";
}

Point point_from_name(const char *name)
{
	for (int i = 0; i < int(Point::count); i++)
		if (name && !std::strcmp(name, kPointNames[i]))
			return Point(i);
	return Point::count;
}

Point omitted_point() { return Point(omit_setting().load()); }
void set_omitted_point(Point p)
{
	omit_setting().store(int(p == Point::count ? default_point() : p));
}

struct View::Sim {
	uint8_t *cache = nullptr;
	size_t size = 0;
	std::unique_ptr<std::atomic<uint64_t>[]> dirty; // one bit per line
	std::atomic<uint64_t> violations{0};
	uint64_t owned[2][2] = {{0, ~0ull}, {0, 0}}; // [range][off, len]

	bool owns(uint64_t off) const
	{
		for (const auto &r : owned)
			if (off >= r[0] && off - r[0] < r[1])
				return true;
		return false;
	}

	bool test_and_clear(uint64_t line)
	{
		uint64_t bit = 1ull << (line % 64);
		return dirty[line / 64].fetch_and(~bit) & bit;
	}
};

View::View(uint8_t *mem, size_t size, Mode mode) : mem_(mem), base_(mem), size_(size), mode_(mode)
{
	if (mode != simulate)
		return;
	auto s = std::make_unique<Sim>();
	void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		throw std::bad_alloc();
	s->cache = static_cast<uint8_t *>(p);
	s->size = size;
	size_t words = (size / 64 + 63) / 64;
	s->dirty = std::make_unique<std::atomic<uint64_t>[]>(words);
	for (size_t i = 0; i < words; i++)
		s->dirty[i].store(0);
	// A fresh host "boots" with whatever memory holds now; from here on it
	// only sees what it reloads.
	std::memcpy(s->cache, mem, size); // aligned: whole 8-byte words, never torn
	base_ = s->cache;
	sim_ = std::move(s);
	simulate_register(this);
}

View::~View()
{
	if (!sim_)
		return;
	simulate_unregister(this);
	munmap(sim_->cache, sim_->size);
}

void View::sim_mark(uint64_t off, uint64_t len)
{
	for (uint64_t l = off / 64; l <= (off + len - 1) / 64; l++)
		sim_->dirty[l / 64].fetch_or(1ull << (l % 64), std::memory_order_release);
}

void View::set_owned(uint64_t a_off, uint64_t a_len, uint64_t b_off, uint64_t b_len)
{
	if (!sim_)
		return;
	sim_->owned[0][0] = a_off;
	sim_->owned[0][1] = a_len;
	sim_->owned[1][0] = b_off;
	sim_->owned[1][1] = b_len;
}

void View::sim_writeback(uint64_t l)
{
	if (!sim_->owns(l * 64))
		sim_->violations.fetch_add(1);
	copy_line(mem_ + l * 64, base_ + l * 64);
}

void View::flush(uint64_t off, uint64_t len, Point p)
{
	if (!len || omitted(p))
		return;
	if (mode_ == noncoherent)
		bcpu_writeback(mem_ + off, len);
	if (sim_)
		for (uint64_t l = off / 64; l <= (off + len - 1) / 64; l++)
			if (sim_->test_and_clear(l))
				sim_writeback(l);
	bcpu_fence_full();
}

void View::invalidate(uint64_t off, uint64_t len, Point p)
{
	if (!len || omitted(p))
		return;
	if (mode_ == noncoherent)
		bcpu_flush(mem_ + off, len);
	if (sim_)
		for (uint64_t l = off / 64; l <= (off + len - 1) / 64; l++) {
			// clflush writes a dirty line back before dropping it; for a
			// line of another host that means two writers.
			if (sim_->test_and_clear(l)) {
				sim_->violations.fetch_add(1);
				copy_line(mem_ + l * 64, base_ + l * 64);
			} else {
				copy_line(base_ + l * 64, mem_ + l * 64);
			}
		}
	bcpu_fence_full();
}

void View::invalidate_lines(const uint64_t *offs, size_t n, Point p, bool fence)
{
	if (!n || omitted(p))
		return;
#if defined(__x86_64__)
	if (mode_ == noncoherent && have_clflushopt()) {
		clflushopt_lines(mem_, offs, n);
		if (fence)
			bcpu_fence_full();
		return;
	}
#endif
	for (size_t i = 0; i < n; i++) {
		uint64_t l = offs[i] / 64;
		if (mode_ == noncoherent)
			flush_line_nofence(mem_ + l * 64);
		if (!sim_)
			continue;
		if (sim_->test_and_clear(l)) {
			sim_->violations.fetch_add(1);
			copy_line(mem_ + l * 64, base_ + l * 64);
		} else {
			copy_line(base_ + l * 64, mem_ + l * 64);
		}
	}
	if (fence)
		bcpu_fence_full();
}

bool View::observe_cpu(int event, const void *p, size_t len)
{
	auto a = static_cast<const uint8_t *>(p);
	if (!sim_ || a < base_ || a >= base_ + size_)
		return false;
	uint64_t off = uint64_t(a - base_);
	len = std::min<uint64_t>(len, size_ - off);
	uint64_t first = off / 64, last = (off + len - 1) / 64;
	switch (event) {
	case BCPU_EV_STORE:
		sim_mark(off, len);
		break;
	case BCPU_EV_NTSTORE:
		// Whole lines, around the cache: the region gets them.
		for (uint64_t l = first; l <= last; l++) {
			sim_->test_and_clear(l);
			sim_writeback(l);
		}
		break;
	case BCPU_EV_WRITEBACK:
	case BCPU_EV_FLUSH:
		if (omitted(Point::payload_nt_wb))
			break;
		for (uint64_t l = first; l <= last; l++)
			if (sim_->test_and_clear(l))
				sim_writeback(l);
		break;
	default:
		break;
	}
	return true;
}

void View::fence() { bcpu_fence_full(); }

uint64_t View::violations() const { return sim_ ? sim_->violations.load() : 0; }

} // namespace bkv
