// SPDX-License-Identifier: Apache-2.0
// Reading blocks: find, pin, validate, copy (or hand out a pointer), verify.
//   find     -> index entry and descriptor (even generation, PUBLISHED)
//   pin      -> pin entry in our session (flushed, fenced)
//   validate -> the descriptor again: same generation, still PUBLISHED; a
//               host reusing the slot either saw our pin or we see its change
//   copy     -> invalidate the payload (another host's), copy and checksum
//   verify   -> generation unchanged and checksum equal, else a miss
#include "internal.hpp"
#include "pieces.hpp"

#include <cerrno>

namespace bkv {
namespace {

// Find @key and pin it; 0, -ENOENT or -ENOBUFS (no pin entry).
int find_and_pin(beluga_kvc *kv, const uint8_t key[32], Found &f, uint32_t &pin)
{
	if (!lookup_any(kv, key, f))
		return -ENOENT;
	int idx = pin_take(kv, f);
	if (idx < 0)
		return idx;
	Found again;
	if (!read_desc(kv, f.host, f.slot, key, again) || again.gen != f.gen) {
		pin_drop(kv, uint32_t(idx));
		return -ENOENT;
	}
	pin = uint32_t(idx);
	return 0;
}

// The payload does not match the checksum of a descriptor that stayed the
// same while our pin held the slot: the block is damaged (a memory error, a
// stray write), not being rewritten.  In our own partition take it out of
// the index as a removal would, so that the next put of the key stores a
// good copy instead of answering EXISTS forever.  Another host's block is
// left to its owner (single-writer rule), which drops it when one of its
// processes reads it.  Best effort: without a free log entry it stays.
void drop_damaged(beluga_kvc *kv, const Found &f, const uint8_t key[32])
{
	if (kv->foreign(f.host))
		return;
	uint32_t resv = resv_take(kv);
	if (resv == ~0u)
		return;
	if (slot_take(kv, f.slot, resv)) { // settled, and now ours: no writer races us
		index_drop(kv, key, f.slot);
		slot_retire(kv, f.slot); // reused only once our pin is gone
		kv->v().st32(kv->g.resv(kv->host, kv->session, resv), 0);
	}
	resv_give(kv, resv);
}

// After the copy: the generation must not have moved, the sum must match.
bool verify(beluga_kvc *kv, const Found &f, uint64_t sum, const uint8_t key[32])
{
	bool same = still_same(kv, f);
	bool ok = sum == f.sum && same;
	if (!ok)
		kv->stat(kStChecksumFailures, 1);
	if (!ok && same)
		drop_damaged(kv, f, key);
	return ok;
}

struct Job {
	size_t item;
	Found f;
	uint32_t pin;
};

void copy_out(beluga_kvc *kv, const beluga_kvc_get *items, std::vector<Job> &jobs,
	      std::vector<uint64_t> &sums)
{
	Pieces pieces(jobs.size(), kv->copier.threads() > 1, [&](size_t j) { return jobs[j].f.len; });
	View &v = kv->v();
	kv->copier.run(pieces.size(), [&](size_t i) {
		Piece &p = pieces[i];
		const Found &f = jobs[p.job].f;
		uint64_t src = kv->g.data(f.host, f.slot) + p.off;
		if (kv->foreign(f.host))
			v.invalidate(src, p.len, Point::inval_payload);
		copy_sum(static_cast<uint8_t *>(items[jobs[p.job].item].dst) + p.off, v.ptr(src),
			 p.len, p.sum, false);
	});
	sums.resize(jobs.size());
	for (size_t j = 0; j < jobs.size(); j++)
		sums[j] = pieces.checksum(j, jobs[j].f.len);
}

} // namespace

void touch(beluga_kvc *kv, const Found &f)
{
	// For eviction (evict.cpp): when this host last read the block, kept in
	// our own host area, so the owner learns of it without us writing its
	// lines.  Skipped when the tick is already current (hot blocks).
	uint64_t off = kv->g.access(kv->host, f.host, f.slot);
	uint32_t tick = tick_now(kv);
	if (kv->v().ld32(off) == tick)
		return;
	kv->v().st32(off, tick);
	kv->v().flush(off, 4, Point::tick_flush);
}

long get_batch(beluga_kvc *kv, const beluga_kvc_get *items, size_t n, int *res)
{
	long hits = 0;
	for (size_t i = 0; i < n;) {
		std::vector<Job> jobs;
		for (; i < n; i++) {
			const beluga_kvc_get &it = items[i];
			if (!it.dst) {
				res[i] = -EINVAL;
				continue;
			}
			Job j{i, {}, 0};
			int r = find_and_pin(kv, it.key, j.f, j.pin);
			if (r == -ENOBUFS && !jobs.empty())
				break; // copy what we hold, unpin, then go on
			kv->stat(kStGets, 1);
			if (!r && j.f.len > it.cap) {
				pin_drop(kv, j.pin);
				r = -ENOBUFS;
			}
			if (r) {
				res[i] = r;
				kv->stat(kStGetMisses, 1);
				continue;
			}
			hook(kHookPinned, 1);
			jobs.push_back(j);
		}
		std::vector<uint64_t> sums;
		copy_out(kv, items, jobs, sums);
		for (size_t k = 0; k < jobs.size(); k++) {
			const Job &j = jobs[k];
			bool ok = verify(kv, j.f, sums[k], items[j.item].key);
			pin_drop(kv, j.pin);
			hook(kHookUnpinned, 1);
			res[j.item] = ok ? int(j.f.len) : -ENOENT;
			kv->stat(ok ? kStGetHits : kStGetMisses, 1);
			if (ok) {
				kv->stat(kStGetBytes, j.f.len);
				touch(kv, j.f);
				hits++;
			}
		}
	}
	flush_stats(kv);
	return hits;
}

long pin_batch(beluga_kvc *kv, const uint8_t (*keys)[32], size_t n, uint32_t flags,
	       beluga_kvc_ref *refs, int *res)
{
	View &v = kv->v();
	long pinned = 0;
	for (size_t i = 0; i < n; i++) {
		kv->stat(kStGets, 1);
		Found f;
		uint32_t pin = 0;
		int r = find_and_pin(kv, keys[i], f, pin);
		uint64_t data = r ? 0 : kv->g.data(f.host, f.slot);
		if (!r && kv->foreign(f.host))
			v.invalidate(data, f.len, Point::inval_payload);
		if (!r && (flags & BELUGA_KVC_PIN_VERIFY) && !verify(kv, f, f64(v.ptr(data), f.len), keys[i])) {
			pin_drop(kv, pin);
			r = -ENOENT;
		}
		res[i] = r;
		if (r) {
			kv->stat(kStGetMisses, 1);
			refs[i] = beluga_kvc_ref{};
			continue;
		}
		refs[i] = beluga_kvc_ref{v.ptr(data), f.len, f.gen, f.host, f.slot, pin, 0};
		kv->stat(kStGetHits, 1);
		kv->stat(kStPins, 1);
		touch(kv, f);
		hook(kHookPinned, 1);
		pinned++;
	}
	flush_stats(kv);
	return pinned;
}

int unpin_batch(beluga_kvc *kv, beluga_kvc_ref *refs, size_t n)
{
	View &v = kv->v();
	int err = 0;
	for (size_t i = 0; i < n; i++) {
		beluga_kvc_ref &r = refs[i];
		uint64_t off = r.pin < kv->g.pins ? kv->g.pin(kv->host, kv->session, r.pin) : 0;
		if (!off || !r.data ||
		    v.ld(off) != (kPinValid | uint64_t(r.host) << 32 | r.slot) ||
		    v.ld(off + 8) != r.gen) {
			err = -EINVAL;
			continue;
		}
		pin_drop(kv, r.pin);
		r = beluga_kvc_ref{};
		kv->stat(kStUnpins, 1);
		hook(kHookUnpinned, 1);
	}
	flush_stats(kv);
	return err;
}

} // namespace bkv
