// SPDX-License-Identifier: Apache-2.0
// The per-host index: an open-addressing table of 64-byte buckets, each with
// seven 8-byte entries (tag << 32 | slot + 1; 0 empty) and a control word
// whose overflow bit sends lookups on to the next bucket.  Lookups take no
// lock: they read a bucket, then the descriptor of each entry whose tag
// matches, and trust a descriptor only if its generation is even and
// unchanged across the read (a seqlock).  Only processes of the owning host
// modify a table, with compare-and-swap on its lines; other hosts read it.
#include "internal.hpp"

#include <cstring>

namespace bkv {
namespace {

inline uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	std::memcpy(&v, p, 8);
	return v;
}

bool key_equal(View &v, uint64_t off, const uint8_t *key)
{
	for (int i = 0; i < 4; i++)
		if (v.ld(off + 8 * i) != rd64(key + 8 * i))
			return false;
	return true;
}

inline uint64_t entry(uint32_t tag, uint32_t slot) { return uint64_t(tag) << 32 | (slot + 1ull); }

inline bool tag_match(uint64_t val, uint32_t tag, uint64_t slots)
{
	return val != kEntryEmpty && uint32_t(val >> 32) == tag && uint32_t(val) - 1 < slots;
}

// Empty, or damaged beyond use: no writer stores an entry whose slot is out
// of range, so such an entry (memory damage) may be overwritten; lookups
// already skip it (tag_match).
inline bool free_entry(uint64_t val, uint64_t slots)
{
	return val == kEntryEmpty || uint32_t(val) - 1 >= slots;
}

// Calls @fn(entry offset, value, tag) for each entry of @key's probe
// sequence in partition @p until it returns true (then returns true).
template <typename Fn> bool walk(beluga_kvc *kv, uint32_t p, const uint8_t *key, Fn fn)
{
	View &v = kv->v();
	uint64_t b;
	uint32_t tag;
	key_hash(key, kv->g.buckets, b, tag);
	for (uint64_t probe = 0; probe < kv->g.buckets; probe++) {
		uint64_t off = kv->g.bucket(p, (b + probe) % kv->g.buckets);
		if (kv->foreign(p))
			v.invalidate(off, kLine, Point::inval_index);
		for (unsigned e = 0; e < kBucketEntries; e++)
			if (fn(off + 8 * e, v.ld(off + 8 * e), tag))
				return true;
		if (!(v.ld(off + kBucketCtl) & kBucketOverflow))
			return false;
	}
	return false;
}

void set_overflow(View &v, uint64_t off)
{
	uint64_t c = v.ld(off + kBucketCtl);
	while (!(c & kBucketOverflow) && !v.cas(off + kBucketCtl, c, c | kBucketOverflow)) {
	}
}

} // namespace

void key_hash(const uint8_t key[32], uint64_t buckets, uint64_t &bucket, uint32_t &tag)
{
	// Keys are usually SHA-256 already, but callers may pass weaker ones.
	uint64_t h = fmix64(rd64(key + 24));
	h = fmix64(rd64(key + 16) ^ h);
	h = fmix64(rd64(key + 8) ^ h);
	h = fmix64(rd64(key) ^ h);
	bucket = uint64_t((unsigned __int128)h * buckets >> 64);
	tag = uint32_t(fmix64(h ^ 0x5bd1e9955bd1e995ull));
}

bool read_desc(beluga_kvc *kv, uint32_t p, uint32_t slot, const uint8_t *key, Found &f)
{
	View &v = kv->v();
	uint64_t off = kv->g.desc(p, slot);
	if (kv->foreign(p))
		v.invalidate(off, kLine, Point::inval_desc);
	uint64_t g1 = v.ld(off + kDescGen);
	uint64_t own = v.ld(off + kDescOwn);
	if ((g1 & 1) || own_state(own) != kPublished)
		return false;
	if (key && !key_equal(v, off + kDescKey, key))
		return false;
	f.host = p;
	f.slot = slot;
	f.sum = v.ld(off + kDescSum);
	f.len = uint32_t(v.ld(off + kDescLen));
	f.gen = g1;
	return v.ld(off + kDescGen) == g1 && f.len && f.len <= kv->g.payload;
}

bool still_same(beluga_kvc *kv, const Found &f)
{
	// Removed meanwhile is fine: our pin kept the slot from being reused,
	// so an unchanged generation means unchanged bytes.
	View &v = kv->v();
	uint64_t off = kv->g.desc(f.host, f.slot);
	if (kv->foreign(f.host))
		v.invalidate(off, kLine, Point::inval_desc);
	uint64_t g1 = v.ld(off + kDescGen);
	bool same = g1 == f.gen && v.ld(off + kDescSum) == f.sum && uint32_t(v.ld(off + kDescLen)) == f.len;
	return same && v.ld(off + kDescGen) == g1;
}

bool lookup_host(beluga_kvc *kv, uint32_t p, const uint8_t key[32], Found &f)
{
	uint64_t slots = kv->g.slots;
	return walk(kv, p, key, [&](uint64_t, uint64_t val, uint32_t tag) {
		return tag_match(val, tag, slots) && read_desc(kv, p, uint32_t(val) - 1, key, f);
	});
}

uint64_t active_hosts(beluga_kvc *kv)
{
	View &v = kv->v();
	uint64_t mask = 0;
	for (uint32_t h = 0; h < kv->g.hosts; h++) {
		uint64_t off = kv->g.host(h) + kHostActive;
		if (kv->foreign(h))
			v.invalidate(off, kLine);
		if (v.ld(off) || h == kv->host)
			mask |= 1ull << h;
	}
	return mask;
}

bool lookup_any(beluga_kvc *kv, const uint8_t key[32], Found &f, uint64_t hosts)
{
	if (lookup_host(kv, kv->host, key, f))
		return true;
	if (kv->g.hosts == 1)
		return false;
	uint64_t mask = (hosts ? hosts : active_hosts(kv)) & ~(1ull << kv->host);
	for (uint32_t h = 0; mask; h++, mask >>= 1)
		if ((mask & 1) && lookup_host(kv, h, key, f))
			return true;
	return false;
}

int index_insert(beluga_kvc *kv, const uint8_t key[32], uint32_t slot)
{
	View &v = kv->v();
	uint64_t b;
	uint32_t tag;
	key_hash(key, kv->g.buckets, b, tag);
	uint64_t mine = entry(tag, slot), at = 0;
	for (uint64_t probe = 0; probe < kv->g.buckets && !at; probe++) {
		uint64_t off = kv->g.bucket(kv->host, (b + probe) % kv->g.buckets);
		for (unsigned e = 0; e < kBucketEntries && !at; e++) {
			uint64_t val = v.ld(off + 8 * e);
			if (free_entry(val, kv->g.slots) && v.cas(off + 8 * e, val, mine))
				at = off + 8 * e;
		}
		if (!at) { // full: keys homed here may now live further on
			if (v.ld(off + kBucketCtl) & kBucketOverflow)
				continue;
			set_overflow(v, off);
		}
		v.flush(off, kLine, Point::index_publish);
	}
	if (!at)
		return -ENOSPC;
	// Two processes of this host may have stored the same key at once: the
	// copy that sits later in the probe sequence withdraws.
	bool dup = false;
	walk(kv, kv->host, key, [&](uint64_t off, uint64_t val, uint32_t) {
		if (off == at)
			return true;
		Found f;
		dup = tag_match(val, tag, kv->g.slots) && uint32_t(val) - 1 != slot &&
		      read_desc(kv, kv->host, uint32_t(val) - 1, key, f);
		return dup;
	});
	if (!dup)
		return 0;
	uint64_t expect = mine;
	if (v.cas(at, expect, kEntryEmpty))
		v.flush(at / kLine * kLine, kLine, Point::index_publish);
	return BELUGA_KVC_EXISTS;
}

int index_remove(beluga_kvc *kv, const uint8_t key[32], uint32_t resv_idx)
{
	View &v = kv->v();
	int n = 0;
	walk(kv, kv->host, key, [&](uint64_t off, uint64_t val, uint32_t tag) {
		Found f;
		uint32_t slot = uint32_t(val) - 1;
		if (!tag_match(val, tag, kv->g.slots) || !read_desc(kv, kv->host, slot, key, f))
			return false;
		// Own the slot first (recorded in our reservation log), so that a
		// kill between dropping the entry and retiring the slot leaves a
		// slot our successor can settle or retire.
		if (!slot_take(kv, slot, resv_idx))
			return false; // being published right now by another process
		uint64_t expect = val;
		if (v.cas(off, expect, kEntryEmpty)) {
			v.flush(off / kLine * kLine, kLine, Point::index_publish);
			n++;
		}
		slot_retire(kv, slot);
		v.st32(kv->g.resv(kv->host, kv->session, resv_idx), 0);
		return false;
	});
	return n;
}

void prefetch_lookup(beluga_kvc *kv, const uint8_t key[32], bool descs)
{
	uint64_t b;
	uint32_t tag;
	key_hash(key, kv->g.buckets, b, tag);
	const uint8_t *bucket = kv->v().ptr(kv->g.bucket(kv->host, b));
	if (!descs) {
		__builtin_prefetch(bucket);
		return;
	}
	for (unsigned e = 0; e < kBucketEntries; e++) {
		uint64_t val = __atomic_load_n(reinterpret_cast<const uint64_t *>(bucket) + e,
					       __ATOMIC_RELAXED);
		if (tag_match(val, tag, kv->g.slots))
			__builtin_prefetch(kv->v().ptr(kv->g.desc(kv->host, uint32_t(val) - 1)));
	}
}

void index_drop(beluga_kvc *kv, const uint8_t key[32], uint32_t slot)
{
	View &v = kv->v();
	uint64_t want = slot + 1ull;
	walk(kv, kv->host, key, [&](uint64_t off, uint64_t val, uint32_t tag) {
		if (val == kEntryEmpty || uint32_t(val >> 32) != tag || (val & 0xffffffff) != want)
			return false;
		if (v.cas(off, val, kEntryEmpty))
			v.flush(off / kLine * kLine, kLine, Point::index_publish);
		return true;
	});
}

bool index_points_to(beluga_kvc *kv, uint32_t p, const uint8_t key[32], uint32_t slot)
{
	uint64_t want = slot + 1ull;
	return walk(kv, p, key, [&](uint64_t, uint64_t val, uint32_t tag) {
		return val != kEntryEmpty && uint32_t(val >> 32) == tag && (val & 0xffffffff) == want;
	});
}

} // namespace bkv
