// SPDX-License-Identifier: Apache-2.0
// Eviction: making room in this host's partition when it is full.
//
// Who writes what (the single-writer rule holds): a host evicts only from
// its own partition; the hand, the occupancy counter and the settings live in
// its own host area (kHostEvict line); what the policy needs to know about
// reads comes from every host's access ticks, each written only by the host
// that read (touch() in get.cpp), and from the insertion tick in the
// descriptor, written by the owner at commit.  Nobody writes a line of
// another host to mark a block as used.
//
// Policies:
//  - CLOCK (default): a hand sweeps the slots; a block read by any host
//    since the hand's previous revolution began, and since it was stored,
//    gets a second chance, any other block goes.  The revolution start is
//    kept per host rather than a reference bit per block, so the hand writes
//    nothing per block it passes.  After two revolutions without enough
//    victims (everything is being read), it takes whatever it meets.
//  - LRU: of 16 random blocks, the one read (or stored) longest ago.
// Slots at or above the capacity (after it was lowered) are evicted first.
//
// Never evicted: blocks being written (RESERVED, or PUBLISHED with an owner)
// and pinned blocks.  The pin check is the claim protocol's Dekker pair: the
// evictor moves the block to EVICTING (CAS, flush, fence), then reads every
// pin; a reader stores its pin (flush, fence), then re-reads the descriptor.
// Either the evictor sees the pin and puts the block back, or the reader
// sees EVICTING and misses.  A process killed mid-eviction left the slot in
// its reservation log: the reclaimer restores or retires it (slot_reclaim).
#include "internal.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace bkv {
namespace {

constexpr unsigned kLruSample = 16;

uint64_t settled() { return own_word(kPublished, 0, 0); }

// Move the hand one slot; the slot it passed.  Crossing slot 0 starts a
// new revolution: remember when, and when the previous one started.
uint32_t hand_next(beluga_kvc *kv)
{
	View &v = kv->v();
	uint64_t pos = v.add(kv->g.evict(kv->host, kEvHand), 1);
	auto slot = uint32_t(pos % kv->g.slots);
	if (slot == 0) {
		uint64_t revs = v.ld(kv->g.evict(kv->host, kEvRevs));
		v.st(kv->g.evict(kv->host, kEvRevs), uint64_t(tick_now(kv)) << 32 | (revs >> 32));
	}
	return slot;
}

// CLOCK's reference test: read since max(stored, previous revolution start)?
bool referenced(beluga_kvc *kv, uint32_t slot, uint64_t hosts)
{
	View &v = kv->v();
	uint32_t stored = v.ld32(kv->g.desc(kv->host, slot) + kDescInserted);
	auto prev_rev = uint32_t(v.ld(kv->g.evict(kv->host, kEvRevs)));
	uint32_t read = last_access(kv, kv->host, slot, hosts);
	return read && read >= std::max(stored, prev_rev);
}

// LRU's age: the latest of stored and read; slots above capacity first.
uint64_t recency(beluga_kvc *kv, uint32_t slot, uint64_t cap, uint64_t hosts)
{
	if (slot >= cap)
		return 0;
	uint32_t stored = kv->v().ld32(kv->g.desc(kv->host, slot) + kDescInserted);
	return std::max(stored, last_access(kv, kv->host, slot, hosts)) + 1ull;
}

uint64_t next_random()
{
	thread_local uint64_t x = uint64_t(getpid()) << 32 ^ now_ns();
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

// Evict one settled block, unless it is pinned or changed meanwhile.
bool evict_slot(beluga_kvc *kv, uint32_t slot, uint32_t resv)
{
	View &v = kv->v();
	uint64_t d = kv->g.desc(kv->host, slot);
	uint64_t log = kv->g.resv(kv->host, kv->session, resv);
	v.st32(log, slot + 1); // so that a reclaimer finds the slot if we die
	v.flush(log / kLine * kLine, kLine);
	uint64_t expect = settled(), mine = own_word(kEvicting, kv->session, kv->inc());
	bool done = false;
	if (v.cas(d + kDescOwn, expect, mine)) {
		v.flush(d, kLine, Point::evict_take); // visible before we read the pins
		if (slot_pinned(kv, slot, v.ld(d + kDescGen))) {
			expect = mine;
			v.cas(d + kDescOwn, expect, settled());
			v.flush(d, kLine);
			kv->stat(kStEvictPinned, 1);
		} else {
			hook(kHookEvictChecked, 1);
			uint8_t key[32];
			std::memcpy(key, v.ptr(d + kDescKey), 32);
			index_drop(kv, key, slot);
			expect = mine;
			v.cas(d + kDescOwn, expect, own_word(kRetired, 0, 0));
			v.flush(d, kLine);
			used_add(kv, -1);
			kv->stat(kStEvictions, 1);
			note_freed(kv, slot);
			done = true;
		}
	}
	v.st32(log, 0);
	return done;
}

// Stop when @n are evicted, or occupancy is down to @floor.
struct Goal {
	uint64_t n, floor;
	bool met(beluga_kvc *kv, uint64_t done) const
	{
		return done >= n || used_now(kv, kv->host) <= floor;
	}
};

uint64_t clock_evict(beluga_kvc *kv, const Goal &goal, uint32_t resv)
{
	const EvictCfg c = evict_cfg(kv, kv->host);
	uint64_t hosts = active_hosts(kv), done = 0, scanned = 0, slots = kv->g.slots;
	while (!goal.met(kv, done) && scanned < 3 * slots) {
		uint32_t slot = hand_next(kv);
		scanned++;
		if (kv->v().ld(kv->g.desc(kv->host, slot) + kDescOwn) != settled())
			continue; // free, retired, or being written or evicted
		// After two revolutions everything left was read lately: take it.
		bool force = slot >= c.capacity || scanned > 2 * slots;
		if (!force && referenced(kv, slot, hosts))
			continue;
		done += evict_slot(kv, slot, resv);
	}
	kv->stat(kStEvictScanned, scanned);
	return done;
}

uint64_t lru_evict(beluga_kvc *kv, const Goal &goal, uint32_t resv)
{
	const EvictCfg c = evict_cfg(kv, kv->host);
	uint64_t hosts = active_hosts(kv), done = 0, scanned = 0, slots = kv->g.slots;
	// Candidates below the capacity (all of them while blocks sit above it,
	// after it was lowered); a small partition is looked at whole: exact LRU.
	uint64_t range = used_now(kv, kv->host) > c.capacity ? slots : c.capacity;
	uint64_t sample = range <= 4 * kLruSample ? range : kLruSample;
	std::vector<uint32_t> kept; // pinned victims: not again in this call
	for (uint64_t round = 0; !goal.met(kv, done) && round < 4 * slots / kLruSample + 64; round++) {
		uint64_t best_age = ~0ull;
		uint32_t best = 0;
		for (uint64_t k = 0; k < sample; k++) {
			auto slot = uint32_t(sample == range ? k : next_random() % range);
			if (kv->v().ld(kv->g.desc(kv->host, slot) + kDescOwn) != settled() ||
			    std::find(kept.begin(), kept.end(), slot) != kept.end())
				continue;
			uint64_t age = recency(kv, slot, c.capacity, hosts);
			if (age < best_age) {
				best_age = age;
				best = slot;
			}
		}
		scanned += sample;
		if (best_age == ~0ull)
			continue;
		if (evict_slot(kv, best, resv))
			done++;
		else if (kept.size() < 4 * kLruSample)
			kept.push_back(best);
	}
	kv->stat(kStEvictScanned, scanned);
	return done;
}

uint64_t evict_goal(beluga_kvc *kv, const Goal &goal, uint32_t resv)
{
	uint64_t n = evict_cfg(kv, kv->host).policy == kPolicyLru ? lru_evict(kv, goal, resv)
								   : clock_evict(kv, goal, resv);
	flush_stats(kv);
	return n;
}

} // namespace

uint64_t used_now(beluga_kvc *kv, uint32_t h)
{
	auto u = int64_t(kv->v().ld(kv->g.evict(h, kEvUsed)));
	return uint64_t(std::clamp<int64_t>(u, 0, int64_t(kv->g.slots)));
}

bool room_for_one(beluga_kvc *kv)
{
	return used_now(kv, kv->host) < evict_cfg(kv, kv->host).capacity;
}

uint64_t evict_above(beluga_kvc *kv, uint64_t cap, uint32_t resv)
{
	uint64_t done = 0;
	for (uint64_t s = cap; s < kv->g.slots; s++)
		if (kv->v().ld(kv->g.desc(kv->host, uint32_t(s)) + kDescOwn) == settled())
			done += evict_slot(kv, uint32_t(s), resv);
	flush_stats(kv);
	return done;
}

EvictCfg evict_cfg(beluga_kvc *kv, uint32_t h)
{
	View &v = kv->v();
	if (kv->foreign(h))
		v.invalidate(kv->g.evict(h, kHostEvict), kLine);
	EvictCfg c;
	c.capacity = std::clamp<uint64_t>(v.ld(kv->g.evict(h, kEvCapacity)), 1, kv->g.slots);
	uint64_t wm = v.ld(kv->g.evict(h, kEvWatermarks));
	uint64_t high = std::clamp<uint64_t>(wm & 0xffffffff, 1, 100);
	uint64_t low = std::clamp<uint64_t>(wm >> 32, 1, high);
	c.policy = v.ld(kv->g.evict(h, kEvPolicy));
	if (c.policy != kPolicyNone && c.policy != kPolicyLru)
		c.policy = kPolicyClock; // what the code does with any other value
	c.high = std::max<uint64_t>(1, c.capacity * high / 100);
	c.low = c.capacity * low / 100;
	c.high_pct = uint32_t(high);
	c.low_pct = uint32_t(low);
	return c;
}

void used_add(beluga_kvc *kv, int64_t d)
{
	kv->v().add(kv->g.evict(kv->host, kEvUsed), uint64_t(d));
	kv->v().flush(kv->g.evict(kv->host, kHostEvict), kLine);
}

uint32_t last_access(beluga_kvc *kv, uint32_t p, uint32_t slot, uint64_t hosts)
{
	View &v = kv->v();
	uint32_t last = 0;
	for (uint32_t h = 0; hosts; h++, hosts >>= 1) {
		if (!(hosts & 1))
			continue;
		uint64_t off = kv->g.access(h, p, slot);
		if (kv->foreign(h))
			v.invalidate(off, 4, Point::inval_ticks);
		last = std::max(last, v.ld32(off));
	}
	return last;
}

void evict_for_put(beluga_kvc *kv, uint32_t resv)
{
	const EvictCfg c = evict_cfg(kv, kv->host);
	uint64_t used = used_now(kv, kv->host);
	if (c.policy == kPolicyNone || used + 1 <= c.high)
		return;
	kv->stat(kStEvictRounds, 1);
	// Down to the low watermark (with low == high: one block).  Concurrent
	// putters of this host share the counter, so together they stop there.
	uint64_t floor = std::min(c.low, c.high - 1);
	evict_goal(kv, Goal{used - floor, floor}, resv);
}

uint64_t evict_blocks(beluga_kvc *kv, uint64_t n, uint32_t resv)
{
	if (n)
		return evict_goal(kv, Goal{n, 0}, resv);
	const EvictCfg c = evict_cfg(kv, kv->host);
	uint64_t used = used_now(kv, kv->host);
	return used > c.low ? evict_goal(kv, Goal{used - c.low, c.low}, resv) : 0;
}

void used_resync(beluga_kvc *kv)
{
	View &v = kv->v();
	uint64_t n = 0;
	for (uint32_t s = 0; s < kv->g.slots; s++) {
		uint64_t own = v.ld(kv->g.desc(kv->host, s) + kDescOwn);
		uint64_t st = own_state(own);
		n += (st == kReserved || st == kPublished || st == kEvicting) &&
		     !slot_damaged(kv, s, own); // the allocator takes those back
	}
	// Puts running meanwhile may leave it off by the blocks they were
	// handling; the next resync corrects that.
	v.st(kv->g.evict(kv->host, kEvUsed), n);
	v.flush(kv->g.evict(kv->host, kHostEvict), kLine);
}

} // namespace bkv
