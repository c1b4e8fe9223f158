// SPDX-License-Identifier: Apache-2.0
// Batch put: reserve every block, copy them all (non-temporal stores for
// large blocks, pieces spread over the copy threads, checksum computed on
// the way), make them visible, then commit and publish each one:
//   reserve  -> descriptor RESERVED, generation odd (flushed)
//   copy     -> payload (non-temporal, or ordinary stores + write-back)
//   commit   -> key, checksum, length, generation even, PUBLISHED (flushed)
//   publish  -> index entry (flushed): from here on readers find it
//   settle   -> the writer lets go of the slot
#include "error.hpp"
#include "internal.hpp"
#include "pieces.hpp"

#include <algorithm>
#include <cerrno>

namespace bkv {
namespace {

struct Job {
	size_t item;
	uint32_t slot;
	uint32_t resv;
	uint64_t gen;
	uint64_t len;
	uint64_t sum;
};

void copy_in(beluga_kvc *kv, const beluga_kvc_put *items, std::vector<Job> &jobs)
{
	Pieces pieces(jobs.size(), kv->copier.threads() > 1, [&](size_t j) { return jobs[j].len; });
	View &v = kv->v();
	kv->copier.run(pieces.size(), [&](size_t i) {
		Piece &p = pieces[i];
		const Job &j = jobs[p.job];
		uint64_t dst = kv->g.data(kv->host, j.slot) + p.off;
		auto src = static_cast<const uint8_t *>(items[j.item].data) + p.off;
		if (j.len >= kv->nt_min) {
			// Non-temporal; the copy writes back its partial lines and
			// fences (the simulation sees them through the CPU
			// primitives' trace: View::observe_cpu).
			copy_sum(v.ptr(dst), src, p.len, p.sum, true);
		} else {
			copy_sum(v.ptr(dst), src, p.len, p.sum, false);
			v.dirty(dst, p.len);
			v.flush(dst, p.len, Point::payload_wb);
		}
	});
	for (size_t j = 0; j < jobs.size(); j++)
		jobs[j].sum = pieces.checksum(j, jobs[j].len);
}

void publish(beluga_kvc *kv, const beluga_kvc_put *items, const Job &j, int *res, long &stored)
{
	const uint8_t *key = items[j.item].key;
	slot_commit(kv, j.slot, j.gen, key, j.sum, j.len);
	int r = index_insert(kv, key, j.slot);
	if (r == 0) {
		hook(kHookPublished, 1);
		slot_settle(kv, j.slot);
		kv->stat(kStPuts, 1);
		kv->stat(kStPutBytes, j.len);
		stored++;
	} else {
		// Another process of this host stored the key at the same moment,
		// or the index is full: this copy goes.
		slot_retire(kv, j.slot);
		kv->stat(r == BELUGA_KVC_EXISTS ? kStDupRetracted : kStPutNospace, 1);
	}
	res[j.item] = r;
	kv->v().st32(kv->g.resv(kv->host, kv->session, j.resv), 0);
}

// A slot for @j, evicting first when the host is above its high watermark.
int claim(beluga_kvc *kv, Job &j, bool &reclaimed)
{
	evict_for_put(kv, j.resv);
	if (!room_for_one(kv) && !reclaimed) {
		// At capacity: dead writers may be sitting on slots, or the
		// occupancy counter may be wrong (a process killed between a
		// slot's change and the count's, or a damaged counter): reclaim
		// and count again, once per batch.
		reclaimed = true;
		if (!reclaim_dead(kv))
			used_resync(kv);
		evict_for_put(kv, j.resv);
	}
	if (!room_for_one(kv))
		return -ENOSPC; // everything pinned or in flight, or policy NONE
	bool busy = false;
	int err = slot_claim(kv, j.resv, j.slot, j.gen, &busy);
	if (err == -ENOSPC && busy && !reclaimed) {
		reclaimed = true; // a dead writer may be sitting on slots
		if (reclaim_dead(kv))
			err = slot_claim(kv, j.resv, j.slot, j.gen);
	}
	if (err == -ENOSPC && evict_cfg(kv, kv->host).policy != kPolicyNone) {
		// Full although the occupancy counter said otherwise: count again.
		used_resync(kv);
		evict_for_put(kv, j.resv);
		err = slot_claim(kv, j.resv, j.slot, j.gen);
	}
	return err;
}

// Explain a refused put (beluga_kvc_last_error()).
void nospace(beluga_kvc *kv)
{
	EvictCfg c = evict_cfg(kv, kv->host);
	fail(-ENOSPC, "put: host %u is full (%llu of %llu blocks in use) and %s", kv->host,
	     (unsigned long long)used_now(kv, kv->host), (unsigned long long)c.capacity,
	     c.policy == kPolicyNone ? "its eviction policy is none: remove or evict blocks"
				     : "no block can be evicted: every one is pinned or being "
				       "written");
}

// Reserve what we can of items [i, n); returns the next item to look at.
size_t reserve(beluga_kvc *kv, const beluga_kvc_put *items, size_t i, size_t n, int *res,
	       std::vector<Job> &jobs)
{
	bool reclaimed = false;
	for (; i < n; i++) {
		const beluga_kvc_put &it = items[i];
		if (!it.data || !it.len || it.len > kv->g.payload) {
			res[i] = -EINVAL;
			continue;
		}
		Found f;
		if (lookup_any(kv, it.key, f)) {
			res[i] = BELUGA_KVC_EXISTS;
			kv->stat(kStPutExists, 1);
			continue;
		}
		uint32_t r = resv_take(kv);
		if (r == ~0u)
			break; // the batch is as large as it can be: copy these first
		Job j{i, 0, r, 0, it.len, 0};
		int err = claim(kv, j, reclaimed);
		if (err) {
			resv_give(kv, r);
			nospace(kv);
			res[i] = err;
			kv->stat(kStPutNospace, 1);
			continue;
		}
		hook(kHookWriteBegin, 1);
		jobs.push_back(j);
	}
	return i;
}

} // namespace

long put_batch(beluga_kvc *kv, const beluga_kvc_put *items, size_t n, int *res)
{
	long stored = 0;
	for (size_t i = 0; i < n;) {
		std::vector<Job> jobs;
		size_t next = reserve(kv, items, i, n, res, jobs);
		if (next == i && jobs.empty()) {
			// Every reservation entry is in use by other threads: wait for one.
			std::this_thread::yield();
			continue;
		}
		i = next;
		copy_in(kv, items, jobs);
		for (const Job &j : jobs) {
			publish(kv, items, j, res, stored);
			resv_give(kv, j.resv);
			hook(kHookWriteEnd, 1);
		}
	}
	flush_stats(kv);
	return stored;
}

} // namespace bkv
