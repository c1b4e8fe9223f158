// SPDX-License-Identifier: Apache-2.0
// Batch put: reserve every block, copy them all (non-temporal stores for
// large blocks, pieces spread over the copy threads, checksum computed on
// the way), make them visible, then commit and publish each one:
//   reserve  -> descriptor RESERVED, generation odd (flushed)
//   copy     -> payload (non-temporal, or ordinary stores + write-back)
//   commit   -> key, checksum, length, generation even, PUBLISHED (flushed)
//   publish  -> index entry (flushed): from here on readers find it
//   settle   -> the writer lets go of the slot
#include "internal.hpp"
#include "pieces.hpp"
#include "write.hpp"

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
	int r = write_publish(kv, items[j.item].key, Claim{j.resv, j.slot, j.gen}, j.sum, j.len);
	stored += r == 0;
	res[j.item] = r;
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
		if (write_exists(kv, it.key)) {
			res[i] = BELUGA_KVC_EXISTS;
			continue;
		}
		Claim c;
		c.resv = resv_take(kv);
		if (c.resv == ~0u)
			break; // the batch is as large as it can be: copy these first
		if (int err = write_claim(kv, c, reclaimed)) {
			resv_give(kv, c.resv);
			res[i] = err;
			continue;
		}
		jobs.push_back(Job{i, c.slot, c.resv, c.gen, it.len, 0});
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
