// SPDX-License-Identifier: Apache-2.0
// beluga_kvc_check: a read-only walk over every partition, index and session
// that counts slot states and reports inconsistencies (tests, tools).
#include "internal.hpp"

#include <cstring>

namespace bkv {
namespace {

bool session_live(beluga_kvc *kv, uint32_t h, uint32_t s, uint64_t live)
{
	View &v = kv->v();
	uint64_t off = kv->g.session(h, s);
	if (kv->remote(h))
		v.invalidate(off, kLine);
	uint64_t lock = v.ld(off + kSesLock);
	if (!lock)
		return false;
	if (kv->remote(h))
		return foreign_session_live(kv, h, off, live);
	return local_alive(kv, lock, v.ld(off + kSesBoot), v.ld(off + kSesStart));
}

bool owner_live(beluga_kvc *kv, uint32_t p, uint64_t own, uint64_t live)
{
	uint32_t s = own_session(own);
	if (s >= kv->g.sessions)
		return false;
	uint64_t lock = kv->v().ld(kv->g.session(p, s) + kSesLock);
	return uint32_t(lock >> 32) == own_inc(own) && session_live(kv, p, s, live);
}

void check_sessions(beluga_kvc *kv, beluga_kvc_check_report &r, uint64_t live)
{
	View &v = kv->v();
	for (uint32_t h = 0; h < kv->g.hosts; h++)
		for (uint32_t s = 0; s < kv->g.sessions; s++) {
			uint64_t off = kv->g.session(h, s);
			if (kv->remote(h))
				v.invalidate(off, kv->g.session_bytes);
			if (!v.ld(off + kSesLock))
				continue;
			if (!session_live(kv, h, s, live)) {
				r.dead_sessions++;
				continue;
			}
			r.live_sessions++;
			uint64_t hwm = std::min<uint64_t>(v.ld(off + kSesPinsHwm), kv->g.pins);
			for (uint64_t i = 0; i < hwm; i++)
				r.held_pins += v.ld(kv->g.pin(h, s, i)) != 0;
		}
}

void check_index(beluga_kvc *kv, uint32_t p, beluga_kvc_check_report &r, uint64_t live)
{
	View &v = kv->v();
	for (uint64_t b = 0; b < kv->g.buckets; b++) {
		uint64_t off = kv->g.bucket(p, b);
		for (unsigned e = 0; e < kBucketEntries; e++) {
			uint64_t val = v.ld(off + 8 * e);
			if (val == kEntryEmpty)
				continue;
			r.index_entries++;
			uint32_t slot = uint32_t(val) - 1;
			if (slot >= kv->g.slots) {
				r.errors++;
				continue;
			}
			uint64_t d = kv->g.desc(p, slot);
			KeyPos k = key_pos(v.ptr(d + kDescKey), kv->g.buckets);
			uint64_t own = v.ld(d + kDescOwn);
			bool settled = own_session(own) == 0 && own_inc(own) == 0;
			if (own_state(own) != kPublished || uint32_t(val >> 32) != k.tag)
				r.errors++;
			// A wrong check word hides the block from prefix lookups; a
			// live writer has yet to write it.
			else if (v.ld32(off + kBucketCheck + 4 * e) != k.check &&
				 (settled || !owner_live(kv, p, own, live)))
				r.errors++;
		}
	}
}

void check_slots(beluga_kvc *kv, uint32_t p, bool verify, beluga_kvc_check_report &r,
		 uint64_t live)
{
	View &v = kv->v();
	for (uint32_t slot = 0; slot < kv->g.slots; slot++) {
		uint64_t d = kv->g.desc(p, slot);
		uint64_t own = v.ld(d + kDescOwn);
		r.slots++;
		switch (own_state(own)) {
		case kFree:
			r.free_slots++;
			break;
		case kRetired:
			r.retired_slots++;
			break;
		case kEvicting: // counted as cached until the evictor is done
			r.published_slots++;
			if (!owner_live(kv, p, own, live))
				r.errors++; // a dead evictor's slot not restored
			break;
		case kReserved:
			r.reserved_slots++;
			if (!owner_live(kv, p, own, live))
				r.errors++; // a dead writer's reservation not given back
			break;
		case kPublished: {
			r.published_slots++;
			uint8_t key[32];
			std::memcpy(key, v.ptr(d + kDescKey), 32);
			bool settled = own_session(own) == 0 && own_inc(own) == 0;
			if (!index_points_to(kv, p, key, slot) && (settled || !owner_live(kv, p, own, live)))
				r.errors++; // unreachable block
			uint64_t len = uint32_t(v.ld(d + kDescLen));
			if (len == 0 || len > kv->g.payload || (v.ld(d + kDescGen) & 1))
				r.errors++;
			else if (verify) {
				uint64_t data = kv->g.data(p, slot);
				if (kv->foreign(p))
					v.invalidate(data, len);
				if (f64(v.ptr(data), len) != v.ld(d + kDescSum))
					r.errors++;
			}
			break;
		}
		default:
			r.errors++;
		}
	}
}

} // namespace

int check(beluga_kvc *kv, bool verify, beluga_kvc_check_report &r)
{
	std::memset(&r, 0, sizeof(r));
	uint64_t live = live_hosts(kv); // hosts whose sessions count
	check_sessions(kv, r, live);
	for (uint32_t p = 0; p < kv->g.hosts; p++) {
		if (kv->foreign(p)) {
			kv->v().invalidate(kv->g.bucket(p, 0), kv->g.buckets * kLine);
			kv->v().invalidate(kv->g.desc(p, 0), kv->g.slots * kLine);
		}
		check_index(kv, p, r, live);
		check_slots(kv, p, verify, r, live);
	}
	return 0;
}

} // namespace bkv
