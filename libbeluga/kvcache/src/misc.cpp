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
	size_t i = 0;
	if (kv->g.hosts == 1) {
		// Our own partition only: nothing to invalidate, so the keys go
		// through a pipeline that keeps a few misses in flight.
		i = lookup_prefix_own(kv, keys, n);
	} else {
		i = lookup_prefix_hosts(kv, keys, n);
	}
	kv->stat(kStLookups, 1);
	kv->stat(kStLookupKeys, i < n ? i + 1 : n);
	kv->stat(kStLookupHits, i);
	// No write-back of the counters here: a lookup writes nothing shared,
	// and a write-back with its fence would cost as much as the probes of
	// a short chain.  The next call that writes, the keeper (every
	// heartbeat period) or detaching makes them visible to other hosts.
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
