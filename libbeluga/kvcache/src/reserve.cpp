// SPDX-License-Identifier: Apache-2.0
// Zero-copy stores: the caller writes a block straight into its slot.
//   reserve -> as a put (write.hpp): one lookup, a log entry and a slot
//              (RESERVED, generation odd); the slot's address is returned
//   (the caller writes the payload there: CPU stores or a device's copy)
//   commit  -> checksum over the slot (or the caller's), write-back of the
//              payload (payload_wb), then publish as a put does
//   abort   -> the slot goes back to the allocator (FREE, generation even)
// A reservation keeps its entry in the session's reservation log until it
// ends, so a process killed while holding one leaves exactly what a put
// killed mid-copy leaves: the next process of the host reclaims the slot
// (session.cpp), and a slot that was never committed is never published.
//
// Reservations outlive the call, so this handle tracks which log entries
// they hold (beluga_kvc::resv_held, under beluga_kvc::mu): at most
// max_batch - 1, so that a put, removal or eviction of this process always
// finds an entry (they wait for one), even while its caller holds
// reservations; and an entry is taken out of that set before its commit or
// abort starts, so two threads ending one reservation cannot both do it.
#include "error.hpp"
#include "pieces.hpp"
#include "write.hpp"

#include <cerrno>
#include <memory>

namespace bkv {
namespace {

constexpr uint8_t kHeld = 1, kEnding = 2;

// A log entry for a reservation, or ~0u (none free for reservations).
uint32_t held_take(beluga_kvc *kv)
{
	std::lock_guard<std::mutex> l(kv->mu);
	if (kv->free_resv.empty() || kv->resv_held_n + 1 >= kv->g.batch)
		return ~0u;
	if (kv->resv_held.empty())
		kv->resv_held.assign(kv->g.batch, 0);
	uint32_t r = kv->free_resv.back();
	kv->free_resv.pop_back();
	kv->resv_held[r] = kHeld;
	kv->resv_held_n++;
	return r;
}

// The reservation's entry leaves the set (it had to be held or ending).
void held_give(beluga_kvc *kv, uint32_t r)
{
	std::lock_guard<std::mutex> l(kv->mu);
	kv->resv_held[r] = 0;
	kv->resv_held_n--;
	kv->free_resv.push_back(r);
}

void clear(beluga_kvc_reservation &it)
{
	it.data = nullptr;
	it.offset = 0;
	it.gen = 0;
	it.slot = 0;
	it.entry = 0;
}

// Start ending @it: 0 (its entry is now ours to end), -ENOENT (no
// reservation), -EINVAL (not one of this handle's, or being ended by
// another thread).
int begin_end(beluga_kvc *kv, const beluga_kvc_reservation &it)
{
	if (!it.data)
		return -ENOENT;
	const Geo &g = kv->g;
	if (it.entry >= g.batch || it.slot >= g.slots || it.offset != g.data(kv->host, it.slot) ||
	    it.data != kv->v().ptr(it.offset))
		return -EINVAL;
	View &v = kv->v();
	std::lock_guard<std::mutex> l(kv->mu);
	if (kv->resv_held.empty() || kv->resv_held[it.entry] != kHeld)
		return -EINVAL;
	// What the log and the descriptor say must be this reservation (a
	// host taken over no longer holds either: the caller checks first).
	if (v.ld32(g.resv(kv->host, kv->session, it.entry)) != it.slot + 1 ||
	    v.ld(g.desc(kv->host, it.slot) + kDescOwn) !=
		    own_word(kReserved, kv->session, kv->inc()) ||
	    v.ld(g.desc(kv->host, it.slot) + kDescGen) != it.gen)
		return -EINVAL;
	kv->resv_held[it.entry] = kEnding;
	return 0;
}

// Give the slot of a reservation being ended back unpublished.
void unreserve(beluga_kvc *kv, const beluga_kvc_reservation &it)
{
	View &v = kv->v();
	slot_unreserve(kv, it.slot, own_word(kReserved, kv->session, kv->inc()));
	v.flush(kv->g.desc(kv->host, it.slot), kLine);
	v.st32(kv->g.resv(kv->host, kv->session, it.entry), 0);
}

struct Job {
	size_t item;
	uint64_t len;
};

} // namespace

long reserve_batch(beluga_kvc *kv, beluga_kvc_reservation *items, size_t n, int *res)
{
	long got = 0;
	bool reclaimed = false;
	for (size_t i = 0; i < n; i++) {
		beluga_kvc_reservation &it = items[i];
		clear(it);
		if (!it.len || it.len > kv->g.payload) {
			res[i] = fail(-EINVAL, "beluga_kvc_reserve: item %zu: len %zu is not 1..%llu",
				      i, it.len, (unsigned long long)kv->g.payload);
			continue;
		}
		if (write_exists(kv, it.key)) {
			res[i] = BELUGA_KVC_EXISTS;
			continue;
		}
		Claim c;
		c.resv = held_take(kv);
		if (c.resv == ~0u) {
			res[i] = fail(-ENOBUFS, "beluga_kvc_reserve: this process holds %u "
						"reservations, the most max_batch %llu allows: commit "
						"or abort some first, or format with a larger max_batch",
				      kv->g.batch > 0 ? uint32_t(kv->g.batch - 1) : 0,
				      (unsigned long long)kv->g.batch);
			continue;
		}
		if (int err = write_claim(kv, c, reclaimed)) {
			held_give(kv, c.resv);
			res[i] = err;
			continue;
		}
		it.offset = kv->g.data(kv->host, c.slot);
		it.data = kv->v().ptr(it.offset);
		it.gen = c.gen;
		it.slot = c.slot;
		it.entry = c.resv;
		res[i] = 0;
		got++;
	}
	flush_stats(kv);
	return got;
}

long commit_batch(beluga_kvc *kv, beluga_kvc_reservation *items, size_t n, uint32_t flags,
		  int *res)
{
	bool given = flags & BELUGA_KVC_COMMIT_CHECKSUM;
	std::vector<Job> jobs;
	jobs.reserve(n); // no allocation failure once items are being ended
	for (size_t i = 0; i < n; i++) {
		beluga_kvc_reservation &it = items[i];
		if (it.data && (!it.len || it.len > kv->g.payload)) {
			res[i] = fail(-EINVAL, "beluga_kvc_commit: item %zu: len %zu is not 1..%llu", i,
				      it.len, (unsigned long long)kv->g.payload);
			continue;
		}
		res[i] = begin_end(kv, it);
		if (res[i] == -EINVAL)
			fail(-EINVAL, "beluga_kvc_commit: item %zu is not a reservation this handle "
				      "holds (its fields changed, or it is being ended by another thread)",
			     i);
		if (!res[i])
			jobs.push_back({i, it.len});
	}
	// Checksum and write-back, in pieces over the copy threads as a put's
	// copy is: the payload was written by the caller (ordinary stores, which
	// a non-coherent host must write back; non-temporal stores, which the
	// flush's fence orders; or a device), so every line is written back.
	std::unique_ptr<Pieces> pieces;
	try {
		pieces = std::make_unique<Pieces>(jobs.size(), kv->copier.threads() > 1,
						  [&](size_t j) { return jobs[j].len; });
		View &v = kv->v();
		kv->copier.run(pieces->size(), [&](size_t i) {
			Piece &p = (*pieces)[i];
			uint64_t off = items[jobs[p.job].item].offset + p.off;
			if (!given)
				f64_update(p.sum, v.ptr(off), p.len);
			v.dirty(off, p.len);
			v.flush(off, p.len, Point::payload_wb);
		});
	} catch (...) {
		// Out of memory: nothing was published; the reservations are held
		// again, for the caller's next commit or abort.
		std::lock_guard<std::mutex> l(kv->mu);
		for (const Job &j : jobs)
			kv->resv_held[items[j.item].entry] = kHeld;
		throw;
	}
	long stored = 0;
	for (size_t j = 0; j < jobs.size(); j++) {
		beluga_kvc_reservation &it = items[jobs[j].item];
		uint64_t sum = given ? it.sum : pieces->checksum(j, jobs[j].len);
		int r = write_publish(kv, it.key, Claim{it.entry, it.slot, it.gen}, sum, jobs[j].len);
		held_give(kv, it.entry);
		hook(kHookWriteEnd, 1);
		res[jobs[j].item] = r;
		stored += r == 0;
		clear(it);
	}
	flush_stats(kv);
	return stored;
}

long abort_batch(beluga_kvc *kv, beluga_kvc_reservation *items, size_t n)
{
	long aborted = 0;
	bool bad = false;
	bool lost = kv->lost.load();
	for (size_t i = 0; i < n; i++) {
		beluga_kvc_reservation &it = items[i];
		int r = lost ? (it.data ? 0 : -ENOENT) : begin_end(kv, it);
		if (r == -EINVAL)
			bad = true;
		if (r)
			continue;
		if (lost) {
			// Our host index belongs to another host now: its lines are
			// not ours to write (the taker reclaimed our session).  Only
			// this handle's bookkeeping goes, if the entry is really held.
			std::lock_guard<std::mutex> l(kv->mu);
			if (it.entry >= kv->resv_held.size() || kv->resv_held[it.entry] != kHeld) {
				bad = true;
				continue;
			}
			kv->resv_held[it.entry] = kEnding;
		} else {
			unreserve(kv, it);
		}
		held_give(kv, it.entry);
		hook(kHookWriteEnd, 1);
		clear(it);
		aborted++;
	}
	if (bad)
		return fail(-EINVAL, "beluga_kvc_abort: an item is not a reservation this handle "
				     "holds (its fields changed, or it is being ended by another "
				     "thread); the others were aborted");
	return aborted;
}

void reserve_abort_all(beluga_kvc *kv)
{
	// Detaching: no other call runs on this handle now.
	for (uint32_t r = 0; r < kv->resv_held.size(); r++) {
		if (kv->resv_held[r] == 0)
			continue;
		if (!kv->lost.load()) {
			View &v = kv->v();
			uint32_t e = v.ld32(kv->g.resv(kv->host, kv->session, r));
			if (e && e <= kv->g.slots) {
				slot_unreserve(kv, e - 1, own_word(kReserved, kv->session, kv->inc()));
				v.flush(kv->g.desc(kv->host, e - 1), kLine);
			}
			v.st32(kv->g.resv(kv->host, kv->session, r), 0);
		}
		held_give(kv, r);
		hook(kHookWriteEnd, 1);
	}
}

} // namespace bkv
