// SPDX-License-Identifier: Apache-2.0
// Every access the store makes to the shared region goes through a View, so
// that one code path serves three coherence modes:
//  - COHERENT:    plain atomics; flush/invalidate are no-ops;
//  - NONCOHERENT: CXL 2.0 between hosts: write back after writing,
//                 invalidate before reading another host's lines;
//  - SIMULATE:    the handle works on a private copy of the region (its
//                 "cache"); flush copies its dirty lines to the region,
//                 invalidate reloads clean lines from it.  Whatever the code
//                 forgets to flush or invalidate stays invisible or stale,
//                 deterministically, which is what the tests look for.
// Omission points (Point) name each flush/invalidate the protocol needs, so a
// test can drop exactly one and check that the failure is detected.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace bkv {

enum class Point : int {
	none = 0,
	payload_wb,	// writer: write back a payload written with ordinary stores
	payload_nt_wb,	// writer: the partial first and last lines of a non-temporal
			// payload copy, which the copy (libbeluga/cpu) writes back
			// itself: omitting it makes the simulation ignore those
			// write-backs, as if the copy had dropped them
	desc_commit,	// writer: descriptor after the payload (key, sum, even generation)
	index_publish,	// writer: index entry after inserting it
	pin_flush,	// reader: pin entry before validating the block
	inval_index,	// reader: index bucket before probing it
	inval_desc,	// reader: descriptor before reading it
	inval_payload,	// reader: payload before copying it
	inval_pins,	// writer: other hosts' pin entries before reusing a slot
	evict_take,	// evictor: the EVICTING state before reading the pins
	tick_flush,	// reader: its access tick (eviction reads other hosts' ticks)
	inval_ticks,	// evictor: other hosts' access ticks before judging a block
	claim_flush,	// claimant: its claim of a host index, before the claim window
	inval_claim,	// any host: another host's claim line (holder, heartbeat) before reading it
	beat_flush,	// holder: its heartbeat counter (others watch it move)
	takeover_flush,	// taker: its claim of a dead host's index
	summary_flush,	// writer: a summary counter word, before its segment's version
	summary_seg,	// writer: the segment version, before the summary generation
	summary_gen,	// writer: the summary generation, before the index entry
	inval_sum_gen,	// reader: another host's summary generation, each lookup call
	inval_sum_seg,	// reader: its segment versions, when the generation moved
	inval_summary,	// reader: a segment's counter words, when its version moved
	count
};
const char *point_name(Point p);
Point point_from_name(const char *name); // Point::count if unknown
Point omitted_point();			 // the process-wide test setting
void set_omitted_point(Point p);

class View {
public:
	enum Mode { coherent = 1, noncoherent = 2, simulate = 3 };

	View(uint8_t *mem, size_t size, Mode mode);
	~View();
	View(const View &) = delete;
	View &operator=(const View &) = delete;

	Mode mode() const { return mode_; }
	size_t size() const { return size_; }
	// This host's view of @off: the region itself, or the simulated cache.
	uint8_t *ptr(uint64_t off) const { return base_ + off; }
	// The region itself (what other hosts see), for diagnostics and tests.
	uint8_t *shared(uint64_t off) const { return mem_ + off; }

	uint64_t ld(uint64_t off) const
	{
		return __atomic_load_n(reinterpret_cast<uint64_t *>(base_ + off), __ATOMIC_ACQUIRE);
	}
	uint32_t ld32(uint64_t off) const
	{
		return __atomic_load_n(reinterpret_cast<uint32_t *>(base_ + off), __ATOMIC_ACQUIRE);
	}
	void st(uint64_t off, uint64_t v)
	{
		__atomic_store_n(reinterpret_cast<uint64_t *>(base_ + off), v, __ATOMIC_RELEASE);
		dirty(off, 8);
	}
	void st32(uint64_t off, uint32_t v)
	{
		__atomic_store_n(reinterpret_cast<uint32_t *>(base_ + off), v, __ATOMIC_RELEASE);
		dirty(off, 4);
	}
	bool cas(uint64_t off, uint64_t &expected, uint64_t desired)
	{
		return cas_word(off, expected, desired);
	}
	bool cas32(uint64_t off, uint32_t &expected, uint32_t desired)
	{
		return cas_word(off, expected, desired);
	}
	uint64_t add(uint64_t off, uint64_t v)
	{
		uint64_t old = __atomic_fetch_add(reinterpret_cast<uint64_t *>(base_ + off), v,
						  __ATOMIC_RELAXED);
		dirty(off, 8);
		return old;
	}
	// Bytes written through ptr() with ordinary stores.
	void dirty(uint64_t off, uint64_t len)
	{
		if (sim_)
			sim_mark(off, len);
	}

	// Writer: make this host's writes to [off, off+len) visible to other hosts.
	void flush(uint64_t off, uint64_t len, Point p = Point::none);
	// Reader: drop stale copies of another host's [off, off+len).
	void invalidate(uint64_t off, uint64_t len, Point p = Point::none);
	// Reader: invalidate the lines at @offs[0..n) (each one line), with one
	// fence after them all (@fence false: none; a later call's fence, or
	// any full fence, orders them before the reads that follow it).
	void invalidate_lines(const uint64_t *offs, size_t n, Point p, bool fence = true);
	void fence();

	// Simulation: what a CPU primitive (beluga/cpu.h trace) did to [p,
	// p+len) of this view's cache: ordinary stores dirty lines,
	// non-temporal stores go around the cache to the region, write-backs
	// copy dirty lines to the region.  false: @p is not in this view.
	// Called by the process-wide hook the first simulating View installs.
	bool observe_cpu(int event, const void *p, size_t len);

	// Simulation: the ranges this host may write (its host area and its
	// partition).  Writing back any other line, or finding one of them
	// dirty when invalidating it, is a single-writer violation.
	void set_owned(uint64_t a_off, uint64_t a_len, uint64_t b_off, uint64_t b_len);
	uint64_t violations() const;

private:
	template <typename T> bool cas_word(uint64_t off, T &expected, T desired)
	{
		bool ok = __atomic_compare_exchange_n(reinterpret_cast<T *>(base_ + off), &expected,
						      desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		if (ok)
			dirty(off, sizeof(T));
		return ok;
	}
	struct Sim;
	void sim_mark(uint64_t off, uint64_t len);
	void sim_writeback(uint64_t line);
	uint8_t *mem_;
	uint8_t *base_;
	size_t size_;
	Mode mode_;
	std::unique_ptr<Sim> sim_;
};

} // namespace bkv
