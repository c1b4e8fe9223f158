// SPDX-License-Identifier: Apache-2.0
// Remove, prefix lookup, statistics.
#include "internal.hpp"

#include <algorithm>
#include <cerrno>
#include <thread>

namespace bkv {

long remove_batch(beluga_kvc *kv, const uint8_t (*keys)[32], size_t n, int *res)
{
	long removed = 0;
	uint32_t resv;
	while ((resv = resv_take(kv)) == ~0u) // every entry busy with puts of other threads
		std::this_thread::yield();
	for (size_t i = 0; i < n; i++) {
		int k = index_remove(kv, keys[i], resv);
		Found f;
		if (k > 0) {
			res[i] = 0;
			removed++;
			kv->stat(kStRemoves, 1);
		} else {
			// Found but not taken: another host's block, or one of ours
			// that a writer of this host holds (or whose owner word is
			// damaged): only the owning host, once it lets go, may drop it.
			res[i] = !lookup_any(kv, keys[i], f) ? -ENOENT
				 : f.host != kv->host	     ? -EXDEV
							     : -EBUSY;
		}
	}
	resv_give(kv, resv);
	flush_stats(kv);
	return removed;
}

long lookup_prefix(beluga_kvc *kv, const uint8_t (*keys)[32], size_t n)
{
	// The keys' buckets and descriptors are independent cache misses: start
	// them ahead (a bucket 8 keys ahead, the descriptors it names 4 keys
	// ahead), so that several are in flight at once.
	constexpr size_t kAhead = 8;
	size_t i = 0;
	uint64_t hosts = kv->g.hosts > 1 ? active_hosts(kv) : 1;
	for (size_t k = 0; k < std::min(n, kAhead); k++)
		prefetch_lookup(kv, keys[k], k < kAhead / 2);
	for (; i < n; i++) {
		if (i + kAhead < n)
			prefetch_lookup(kv, keys[i + kAhead], false);
		if (i + kAhead / 2 < n)
			prefetch_lookup(kv, keys[i + kAhead / 2], true);
		Found f;
		if (!lookup_any(kv, keys[i], f, hosts))
			break;
	}
	kv->stat(kStLookups, 1);
	kv->stat(kStLookupKeys, i < n ? i + 1 : n);
	kv->stat(kStLookupHits, i);
	flush_stats(kv);
	return long(i);
}

void flush_stats(beluga_kvc *kv)
{
	// Coherent memory needs no write-back, and counters no fence.
	if (kv->observer || kv->v().mode() == View::coherent)
		return;
	kv->v().flush(kv->g.stat(kv->host, 0), kStatCount * 8);
}

void read_stats(beluga_kvc *kv, uint32_t h, beluga_kvc_stats &s)
{
	View &v = kv->v();
	if (kv->foreign(h))
		v.invalidate(kv->g.stat(h, 0), kStatCount * 8);
	auto out = reinterpret_cast<uint64_t *>(&s);
	for (unsigned i = 0; i < kStatCount; i++)
		out[i] += v.ld(kv->g.stat(h, i));
}

} // namespace bkv
