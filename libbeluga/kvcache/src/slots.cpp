// SPDX-License-Identifier: Apache-2.0
// Slot descriptors and the allocator.  A slot's own word (state, owning
// session, incarnation) changes only by compare-and-swap among the processes
// of the owning host; its generation is odd while the payload is being
// written and even once stable, and readers compare it before and after
// copying.  Claiming records the slot in the session's reservation log
// first, so a process killed at any point leaves a slot its successor can
// give back (session.cpp, slot_reclaim).  Only slots below the host's
// capacity are handed out; every slot that leaves or enters FREE/RETIRED
// moves the host's occupancy counter (evict.cpp).
#include "internal.hpp"

#include <cstring>

namespace bkv {
namespace {

// The owner that @own names for our @slot does not hold it: only damage
// can have left the word so.  Every owner (live, or dead and not yet
// reclaimed) records a slot in its session's reservation log before taking
// it and clears the entry only after letting go, and its lock word keeps
// its incarnation until then.  No /proc: a few loads of the owner's lines.
bool owner_gone(beluga_kvc *kv, uint32_t slot, uint64_t own)
{
	View &v = kv->v();
	uint32_t s = own_session(own);
	if (s >= kv->g.sessions ||
	    uint32_t(v.ld(kv->g.session(kv->host, s) + kSesLock) >> 32) != own_inc(own))
		return true;
	for (uint64_t i = 0; i < kv->g.batch; i++)
		if (v.ld32(kv->g.resv(kv->host, s, i)) == slot + 1)
			return false;
	return true;
}

} // namespace

bool slot_damaged(beluga_kvc *kv, uint32_t slot, uint64_t own)
{
	uint64_t st = own_state(own);
	return st > kEvicting ||
	       ((st == kReserved || st == kEvicting) && owner_gone(kv, slot, own));
}

namespace {

// Take slot @c if it is free (or retired or damaged, and unpinned): on success @gen is
// its new (odd) generation.  @busy learns of reserved slots on the way.
bool try_claim(beluga_kvc *kv, uint32_t c, uint64_t resv, uint64_t mine, uint64_t &gen,
	       bool *busy)
{
	View &v = kv->v();
	uint64_t d = kv->g.desc(kv->host, c);
	uint64_t own = v.ld(d + kDescOwn);
	uint64_t st = own_state(own);
	if (st == kReserved && busy)
		*busy = true; // maybe a dead writer's: worth a reclaim
	// Damage: the slot is taken back like a retired one (unless a reader
	// pinned it before).
	if (st != kFree && st != kRetired && !slot_damaged(kv, c, own))
		return false;
	uint64_t old = v.ld(d + kDescGen);
	if (st != kFree && slot_pinned(kv, c, old))
		return false;
	v.st32(resv, c + 1);
	v.flush(resv / kLine * kLine, kLine);
	if (!v.cas(d + kDescOwn, own, mine))
		return false;
	gen = (old + 1) | 1; // odd: being written
	v.st(d + kDescGen, gen);
	v.st(d + kDescLen, 0);
	// Defence in depth: readers also catch a reuse by the checksum.
	v.flush(d, kLine);
	used_add(kv, 1);
	return true;
}

// A slot this process retired lately, if any (see beluga_kvc::freed).
bool pop_freed(beluga_kvc *kv, uint32_t &c)
{
	std::lock_guard lock(kv->freed_mu);
	if (kv->freed.empty())
		return false;
	c = kv->freed.back();
	kv->freed.pop_back();
	return true;
}

} // namespace

void note_freed(beluga_kvc *kv, uint32_t slot)
{
	std::lock_guard lock(kv->freed_mu);
	if (kv->freed.size() < kFreedHints)
		kv->freed.push_back(slot);
}

int slot_claim(beluga_kvc *kv, uint32_t resv_idx, uint32_t &slot, uint64_t &gen, bool *busy)
{
	View &v = kv->v();
	const Geo &g = kv->g;
	uint64_t cursor = g.host(kv->host) + kHostCursor;
	uint64_t resv = g.resv(kv->host, kv->session, resv_idx);
	uint64_t mine = own_word(kReserved, kv->session, kv->inc());
	uint64_t cap = evict_cfg(kv, kv->host).capacity;
	// Slots our own evictions just freed first: at capacity, one eviction
	// per put would otherwise cost a scan of half the descriptors.
	for (uint32_t c; pop_freed(kv, c);)
		if (c < cap && try_claim(kv, c, resv, mine, gen, busy)) {
			slot = c;
			return 0;
		}
	for (uint64_t n = 0; n < cap; n++) {
		auto c = uint32_t(v.add(cursor, 1) % cap);
		if (try_claim(kv, c, resv, mine, gen, busy)) {
			slot = c;
			return 0;
		}
	}
	v.st32(resv, 0);
	return -ENOSPC;
}

void slot_commit(beluga_kvc *kv, uint32_t slot, uint64_t gen, const uint8_t key[32],
		 uint64_t sum, uint64_t len)
{
	View &v = kv->v();
	uint64_t d = kv->g.desc(kv->host, slot);
	for (int i = 0; i < 4; i++) {
		uint64_t w;
		std::memcpy(&w, key + 8 * i, 8);
		v.st(d + kDescKey + 8 * i, w);
	}
	v.st(d + kDescSum, sum);
	v.st(d + kDescLen, len | uint64_t(tick_now(kv)) << 32); // + insertion tick
	v.st(d + kDescGen, gen + 1); // even: stable
	uint64_t own = own_word(kReserved, kv->session, kv->inc());
	v.cas(d + kDescOwn, own, own_word(kPublished, kv->session, kv->inc()));
	v.flush(d, kLine, Point::desc_commit);
}

// Published and indexed: the writer lets go of the slot.
void slot_settle(beluga_kvc *kv, uint32_t slot)
{
	View &v = kv->v();
	uint64_t d = kv->g.desc(kv->host, slot);
	uint64_t own = own_word(kPublished, kv->session, kv->inc());
	if (v.cas(d + kDescOwn, own, own_word(kPublished, 0, 0)))
		v.flush(d, kLine);
}

// A published, settled slot becomes ours (for removal), recorded in our
// reservation log first like a claim.
bool slot_take(beluga_kvc *kv, uint32_t slot, uint32_t resv_idx)
{
	View &v = kv->v();
	uint64_t d = kv->g.desc(kv->host, slot);
	uint64_t own = v.ld(d + kDescOwn);
	// Settled, or "held" by an owner that does not hold it (a damaged owner
	// word: taken over).  Judged before our own log names the slot.
	if (own != own_word(kPublished, 0, 0) &&
	    (own_state(own) != kPublished || !owner_gone(kv, slot, own)))
		return false;
	uint64_t resv = kv->g.resv(kv->host, kv->session, resv_idx);
	v.st32(resv, slot + 1);
	v.flush(resv / kLine * kLine, kLine);
	if (!v.cas(d + kDescOwn, own, own_word(kPublished, kv->session, kv->inc()))) {
		v.st32(resv, 0);
		return false;
	}
	// Written back before the caller drops the index entry: a host that
	// crashes after the entry went must leave the slot owned by its dead
	// session (which its successor retires), not settled and unreachable.
	v.flush(d, kLine);
	return true;
}

uint32_t resv_take(beluga_kvc *kv)
{
	std::lock_guard<std::mutex> l(kv->mu);
	if (kv->free_resv.empty())
		return ~0u;
	uint32_t r = kv->free_resv.back();
	kv->free_resv.pop_back();
	return r;
}

void resv_give(beluga_kvc *kv, uint32_t r)
{
	std::lock_guard<std::mutex> l(kv->mu);
	kv->free_resv.push_back(r);
}

// Out of the index: reusable once no pin names (slot, generation).
void slot_retire(beluga_kvc *kv, uint32_t slot)
{
	View &v = kv->v();
	uint64_t d = kv->g.desc(kv->host, slot);
	uint64_t own = v.ld(d + kDescOwn);
	bool retired = false;
	while (own_state(own) == kPublished &&
	       !(retired = v.cas(d + kDescOwn, own, own_word(kRetired, 0, 0)))) {
	}
	v.flush(d, kLine);
	if (retired)
		used_add(kv, -1);
}

bool slot_unreserve(beluga_kvc *kv, uint32_t slot, uint64_t own)
{
	View &v = kv->v();
	uint64_t d = kv->g.desc(kv->host, slot);
	uint64_t gen = v.ld(d + kDescGen);
	v.st(d + kDescGen, (gen + 1) & ~1ull);
	if (!v.cas(d + kDescOwn, own, own_word(kFree, 0, 0)))
		return false;
	used_add(kv, -1);
	return true;
}

void slot_reclaim(beluga_kvc *kv, uint32_t slot, uint32_t session, uint32_t inc)
{
	View &v = kv->v();
	uint64_t d = kv->g.desc(kv->host, slot);
	uint64_t own = v.ld(d + kDescOwn);
	if (own_session(own) != session || own_inc(own) != inc)
		return; // not (or no longer) the dead session's
	if (own_state(own) == kReserved) {
		if (slot_unreserve(kv, slot, own))
			kv->stat(kStReservationsReclaimed, 1);
	} else if (own_state(own) == kPublished || own_state(own) == kEvicting) {
		// Killed between publishing the descriptor and settling, in the
		// middle of a removal or of an eviction: keep the block if the
		// index has it, else nobody can reach it.
		uint8_t key[32];
		std::memcpy(key, v.ptr(d + kDescKey), 32);
		bool indexed = index_adopt(kv, key, slot);
		if (v.cas(d + kDescOwn, own, own_word(indexed ? kPublished : kRetired, 0, 0)) &&
		    !indexed) {
			kv->stat(kStReservationsReclaimed, 1);
			used_add(kv, -1);
		}
	}
	v.flush(d, kLine);
}

} // namespace bkv
