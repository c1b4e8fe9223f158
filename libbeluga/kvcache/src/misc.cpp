// SPDX-License-Identifier: Apache-2.0
// Remove, prefix lookup, statistics.
#include "internal.hpp"

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
			res[i] = lookup_any(kv, keys[i], f) ? -EXDEV : -ENOENT;
		}
	}
	resv_give(kv, resv);
	flush_stats(kv);
	return removed;
}

long lookup_prefix(beluga_kvc *kv, const uint8_t (*keys)[32], size_t n)
{
	size_t i = 0;
	uint64_t hosts = kv->g.hosts > 1 ? active_hosts(kv) : 1;
	for (; i < n; i++) {
		if (i + 2 < n) { // the next buckets are independent misses: start them early
			uint64_t b;
			uint32_t tag;
			key_hash(keys[i + 2], kv->g.buckets, b, tag);
			__builtin_prefetch(kv->v().ptr(kv->g.bucket(kv->host, b)));
		}
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
	if (kv->observer)
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
