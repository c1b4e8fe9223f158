// SPDX-License-Identifier: Apache-2.0
// See write.hpp: the steps of storing a block that put and reserve/commit
// share.
#include "write.hpp"

#include "error.hpp"

#include <cerrno>

namespace bkv {
namespace {

// A slot for @c, evicting first when the host is above its high watermark.
int claim(beluga_kvc *kv, Claim &c, bool &reclaimed)
{
	evict_for_put(kv, c.resv);
	if (!room_for_one(kv) && !reclaimed) {
		// At capacity: dead writers may be sitting on slots, or the
		// occupancy counter may be wrong (a process killed between a
		// slot's change and the count's, or a damaged counter): reclaim
		// and count again, once per batch.
		reclaimed = true;
		if (!reclaim_dead(kv))
			used_resync(kv);
		evict_for_put(kv, c.resv);
	}
	if (!room_for_one(kv))
		return -ENOSPC; // everything pinned or in flight, or policy NONE
	bool busy = false;
	int err = slot_claim(kv, c.resv, c.slot, c.gen, &busy);
	if (err == -ENOSPC && busy && !reclaimed) {
		reclaimed = true; // a dead writer may be sitting on slots
		if (reclaim_dead(kv))
			err = slot_claim(kv, c.resv, c.slot, c.gen);
	}
	if (err == -ENOSPC && evict_cfg(kv, kv->host).policy != kPolicyNone) {
		// Full although the occupancy counter said otherwise: count again.
		used_resync(kv);
		evict_for_put(kv, c.resv);
		err = slot_claim(kv, c.resv, c.slot, c.gen);
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

} // namespace

bool write_exists(beluga_kvc *kv, const uint8_t key[32])
{
	Found f;
	if (!lookup_any(kv, key, f))
		return false;
	// Ours: a damaged check word would hide it from prefix lookups for
	// good (the engine would compute and store it again and again).
	if (f.host == kv->host)
		index_adopt(kv, key, f.slot);
	kv->stat(kStPutExists, 1);
	return true;
}

int write_claim(beluga_kvc *kv, Claim &c, bool &reclaimed)
{
	int err = claim(kv, c, reclaimed);
	if (err) {
		nospace(kv);
		kv->stat(kStPutNospace, 1);
		return err;
	}
	hook(kHookWriteBegin, 1);
	return 0;
}

int write_publish(beluga_kvc *kv, const uint8_t key[32], const Claim &c, uint64_t sum,
		  uint64_t len)
{
	slot_commit(kv, c.slot, c.gen, key, sum, len);
	int r = index_insert(kv, key, c.slot);
	if (r == 0) {
		hook(kHookPublished, 1);
		slot_settle(kv, c.slot);
		kv->stat(kStPuts, 1);
		kv->stat(kStPutBytes, len);
	} else {
		// Another process of this host stored the key at the same moment,
		// or the index is full: this copy goes.
		slot_retire(kv, c.slot);
		kv->stat(r == BELUGA_KVC_EXISTS ? kStDupRetracted : kStPutNospace, 1);
	}
	kv->v().st32(kv->g.resv(kv->host, kv->session, c.resv), 0);
	return r;
}

} // namespace bkv
