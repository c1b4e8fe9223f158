// SPDX-License-Identifier: Apache-2.0
// Deliberate damage to a live cache (see "Corruption and recovery" in
// Documentation/kvcache.md): garbage written into
// payloads, descriptors, index buckets, host areas and the superblock, and a
// full pool.  What must hold whatever the damage: no crash, no out-of-bounds
// access (run the ASan build), no wrong block (every block a call returns is
// checked against the test's own content hash, kvc_util.hpp), and the store
// goes on working: a damaged block is a miss, a later put of its key stores
// a good copy, a damaged header refuses to attach and names the field.
// Documentation/kvcache.md, "Corruption and recovery", lists what is detected
// and how it is recovered from.
//
// Two modes: COHERENT (one host, one handle both writes and reads) and the
// non-coherent SIMULATE (host 0 writes, host 1 reads through its own stale
// copy; damage lands in the region and in every handle's copy, as a memory
// error would).
#include "kvc_fixture.hpp"

#include "format.hpp"
#include "kvcache_test.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using namespace kvt;

constexpr size_t kRegion = 8 << 20;
constexpr size_t kPayload = 16 * 1024;

std::string mode_name(const ::testing::TestParamInfo<uint32_t> &i)
{
	return i.param == BELUGA_KVC_COHERENT ? "Coherent" : "Simulated";
}

// The test's own length for key @i: every block it reads back must have it.
size_t len_of(uint64_t i) { return 64 + (i * 977) % (kPayload - 64); }

class Corrupt : public ::testing::TestWithParam<uint32_t> {
protected:
	void SetUp() override { make(BELUGA_KVC_EVICT_NONE); }
	void TearDown() override { close(); }

	bool sim() const { return GetParam() == BELUGA_KVC_SIMULATE; }

	void make(uint32_t policy)
	{
		close();
		std::memset(r_.base(), 0, r_.size());
		cfg_ = config(opaque_fp(kPayload), sim() ? 2 : 1);
		cfg_.eviction = policy;
		ASSERT_EQ(beluga_kvc_format(r_.base(), r_.size(), &cfg_), 0) << beluga_kvc_last_error();
		w_ = attach(0);
		rd_ = sim() ? attach(1) : w_;
		ASSERT_TRUE(w_ && rd_);
		std::memcpy(&sb_, r_.bytes(), sizeof(sb_));
	}
	void close()
	{
		for (beluga_kvc *kv : {w_, rd_})
			if (kv && sim()) {
				EXPECT_EQ(bkv::test::sim_violations(kv), 0u);
			}
		if (rd_ != w_)
			beluga_kvc_detach(rd_);
		beluga_kvc_detach(w_);
		w_ = rd_ = nullptr;
	}
	beluga_kvc *attach(uint32_t host) { return attach_checked(r_, cfg_, opts(host, GetParam())); }

	// ---- where things are (host 0's partition holds every block) ----
	uint64_t part() const { return sb_.part_off; }
	uint64_t desc(uint32_t slot) const { return part() + sb_.desc_off + 64 * slot; }
	uint64_t data(uint32_t slot) const { return part() + sb_.data_off + sb_.slot_stride * slot; }
	uint64_t bucket(uint64_t b) const { return part() + sb_.index_off + 64 * b; }
	uint64_t host_area(uint32_t h) const { return sb_.host_area_off + h * sb_.host_area_bytes; }
	uint64_t session(uint32_t s) const
	{
		return host_area(0) + sb_.session_off + s * sb_.session_bytes;
	}

	// Damage: the same bytes in the region and in every handle's copy.
	void poke(uint64_t off, const void *src, size_t n)
	{
		ASSERT_LE(off + n, r_.size());
		std::memcpy(r_.bytes() + off, src, n);
		for (beluga_kvc *kv : {w_, rd_})
			std::memcpy(bkv::test::view_ptr(kv, off), src, n);
	}
	void poke64(uint64_t off, uint64_t v) { poke(off, &v, 8); }
	uint64_t peek64(uint64_t off) const
	{
		uint64_t v;
		std::memcpy(&v, r_.bytes() + off, 8);
		return v;
	}
	void flip_bit(uint64_t off, unsigned bit)
	{
		uint8_t b = r_.bytes()[off] ^ uint8_t(1u << bit);
		poke(off, &b, 1);
	}

	// ---- the store's calls, checked ----
	int put(beluga_kvc *kv, uint64_t i)
	{
		long n = 0;
		int res = put_block(kv, i, len_of(i), &n);
		EXPECT_EQ(n, res == 0 ? 1 : 0);
		return res;
	}
	int put(uint64_t i) { return put(w_, i); }
	// A hit must be exactly key @i's block: never another one, never damaged.
	int get(beluga_kvc *kv, uint64_t i)
	{
		GetResult g = get_block(kv, i, kPayload);
		EXPECT_EQ(g.batch, g.res > 0 ? 1 : 0);
		if (g.res > 0) {
			EXPECT_EQ(size_t(g.res), len_of(i)) << "key " << i << ": wrong block length";
			EXPECT_TRUE(g.intact) << "key " << i << ": wrong bytes returned";
		}
		return g.res;
	}
	int get(uint64_t i) { return get(rd_, i); }
	// Pin with verification; the pinned bytes must be key @i's.
	int pin_verified(beluga_kvc *kv, uint64_t i)
	{
		uint8_t key[1][32];
		make_key(i, key[0]);
		beluga_kvc_ref ref{};
		int res = 99;
		beluga_kvc_pin(kv, key, 1, BELUGA_KVC_PIN_VERIFY, &ref, &res);
		if (res == 0) {
			EXPECT_EQ(ref.len, len_of(i));
			EXPECT_TRUE(check_block(i, static_cast<const uint8_t *>(ref.data), ref.len))
				<< "key " << i << ": wrong pinned bytes";
			EXPECT_EQ(beluga_kvc_unpin(kv, &ref, 1), 0) << beluga_kvc_last_error();
		}
		return res;
	}
	long lookup(beluga_kvc *kv, uint64_t first, size_t n)
	{
		std::vector<uint8_t> keys(32 * n);
		for (size_t k = 0; k < n; k++)
			make_key(first + k, &keys[32 * k]);
		return beluga_kvc_lookup_prefix(kv, reinterpret_cast<const uint8_t(*)[32]>(keys.data()),
						n);
	}
	int remove(uint64_t i)
	{
		uint8_t key[1][32];
		make_key(i, key[0]);
		int res = 99;
		beluga_kvc_remove(w_, key, 1, &res);
		return res;
	}
	uint32_t slot_of(uint64_t i)
	{
		uint8_t key[32];
		make_key(i, key);
		beluga_kvc_block_info info{};
		EXPECT_EQ(beluga_kvc_inspect(w_, key, 0, &info), 0) << "key " << i;
		EXPECT_EQ(info.host, 0u);
		return info.slot;
	}
	// The check word of the index entry at @entry.
	static uint64_t check_of(uint64_t entry)
	{
		uint64_t line = entry / 64 * 64;
		return line + bkv::kBucketCheck + 4 * ((entry - line) / 8);
	}
	// Offset of the index entry that names @slot (there is exactly one).
	uint64_t entry_of(uint32_t slot)
	{
		for (uint64_t b = 0; b < sb_.buckets_per_host; b++)
			for (unsigned e = 0; e < bkv::kBucketEntries; e++)
				if (uint32_t(peek64(bucket(b) + 8 * e)) == slot + 1)
					return bucket(b) + 8 * e;
		ADD_FAILURE() << "no index entry names slot " << slot;
		return 0;
	}
	beluga_kvc_stats stats(beluga_kvc *kv)
	{
		beluga_kvc_stats s{};
		EXPECT_EQ(beluga_kvc_get_stats(kv, -1, &s), 0);
		return s;
	}
	// A damaged key misses for every reader and then stores again.
	// Prefix lookups read no descriptor and no payload: they answer from
	// the index, so they report the key while its entry is there
	// (@indexed: no read dropped it) and the first get misses; once the
	// key is stored again, both find it.
	void expect_miss_then_recovers(uint64_t i, bool indexed)
	{
		EXPECT_EQ(get(i), -ENOENT) << "key " << i;
		EXPECT_EQ(pin_verified(rd_, i), -ENOENT) << "key " << i;
		if (sim()) { // the owner drops it when one of its own reads fails
			EXPECT_EQ(get(w_, i), -ENOENT) << "key " << i;
		}
		EXPECT_EQ(lookup(rd_, i, 1), indexed ? 1 : 0) << "key " << i;
		EXPECT_EQ(put(i), 0) << "key " << i << ": " << beluga_kvc_last_error();
		EXPECT_EQ(get(i), int(len_of(i))) << "key " << i;
		EXPECT_EQ(lookup(rd_, i, 1), 1) << "key " << i;
	}
	void expect_intact(uint64_t first, uint64_t n)
	{
		for (uint64_t i = first; i < first + n; i++)
			EXPECT_EQ(get(i), int(len_of(i))) << "key " << i;
	}

	ShmRegion r_{kRegion};
	beluga_kvc_config cfg_{};
	bkv::Super sb_{};
	beluga_kvc *w_ = nullptr, *rd_ = nullptr;
};

// ---- payloads --------------------------------------------------------------

// One bit, one byte, the whole block: each a checksum failure (a miss,
// counted), never the damaged bytes; the next put of the key stores it again.
TEST_P(Corrupt, PayloadDamageIsAMissThenRecovers)
{
	for (uint64_t i = 1; i <= 6; i++)
		ASSERT_EQ(put(i), 0);
	uint64_t fails = stats(rd_).checksum_failures;
	flip_bit(data(slot_of(1)) + 5, 3);
	uint8_t byte = 0x5a ^ r_.bytes()[data(slot_of(2)) + len_of(2) - 1];
	poke(data(slot_of(2)) + len_of(2) - 1, &byte, 1);
	std::vector<uint8_t> junk(kPayload);
	uint64_t s = 7;
	for (auto &b : junk)
		b = uint8_t(splitmix(s));
	poke(data(slot_of(3)), junk.data(), junk.size());
	for (uint64_t i = 1; i <= 3; i++) {
		EXPECT_EQ(get(i), -ENOENT) << "key " << i;
		EXPECT_EQ(stats(rd_).checksum_failures, ++fails);
	}
	// Bytes past the block's length are not part of it.
	flip_bit(data(slot_of(4)) + len_of(4), 0);
	expect_intact(4, 3);
	for (uint64_t i = 1; i <= 3; i++)
		expect_miss_then_recovers(i, false); // the owner's failed read dropped it
}

// ---- descriptors -----------------------------------------------------------

TEST_P(Corrupt, DescriptorDamageIsAMissThenRecovers)
{
	for (uint64_t i = 1; i <= 10; i++)
		ASSERT_EQ(put(i), 0);
	uint32_t slot[11];
	for (uint64_t i = 1; i <= 10; i++)
		slot[i] = slot_of(i);
	using namespace bkv;
	poke64(desc(slot[1]) + kDescLen, 0xffffffffull); // length beyond the slot
	poke64(desc(slot[2]) + kDescLen, len_of(2) - 1); // shorter: the checksum tells
	poke64(desc(slot[3]) + kDescLen, 0);		 // no length
	flip_bit(desc(slot[4]) + kDescKey + 17, 6);	 // key
	// A writer "in progress" forever (odd generation), a wrong checksum,
	// a state no writer stores, a slot "being written" by no session.
	poke64(desc(slot[5]) + kDescGen, peek64(desc(slot[5]) + kDescGen) | 1);
	poke64(desc(slot[6]) + kDescSum, peek64(desc(slot[6]) + kDescSum) ^ 1);
	poke64(desc(slot[7]) + kDescOwn, ~0ull);
	poke64(desc(slot[8]) + kDescOwn, own_word(kReserved, 77, 77));
	std::vector<uint8_t> junk(64, 0xa5);
	poke(desc(slot[9]), junk.data(), 64); // the whole line
	// 2 and 6 are checksum failures: the owner's read drops them from the
	// index (drop_damaged); the others cannot be read at all and stay.
	for (uint64_t i = 1; i <= 9; i++)
		expect_miss_then_recovers(i, i != 2 && i != 6);
	expect_intact(1, 10);
	beluga_kvc_check_report rep;
	ASSERT_EQ(beluga_kvc_check(w_, 1, &rep), 0);
	EXPECT_GT(rep.errors, 0u); // the damaged slots are reported
}

// A copied descriptor makes two slots claim one key: whatever the index
// finds, the bytes returned are the key's own or nothing.
TEST_P(Corrupt, CopiedDescriptorNeverServesTheWrongBlock)
{
	for (uint64_t i = 1; i <= 4; i++)
		ASSERT_EQ(put(i), 0);
	uint32_t a = slot_of(1), b = slot_of(2);
	std::vector<uint8_t> line(r_.bytes() + desc(a), r_.bytes() + desc(a) + 64);
	poke(desc(b), line.data(), 64);
	EXPECT_EQ(get(1), int(len_of(1)));
	EXPECT_EQ(get(2), -ENOENT); // its descriptor names key 1 now
	EXPECT_EQ(put(2), 0);
	expect_intact(1, 4);
	// And the index entry of key 1 pointed at the copy: key 1 is in the
	// descriptor, key 2's bytes are in the payload: a checksum failure.
	poke64(entry_of(a), (peek64(entry_of(a)) & ~0xffffffffull) | (b + 1));
	EXPECT_EQ(get(1), -ENOENT);
	EXPECT_EQ(pin_verified(rd_, 1), -ENOENT);
	expect_intact(2, 3);
}

// A damaged owner word on a readable block: reads go on.  An owner that
// does not hold the slot (no such session, or a live one whose reservation
// log does not name it) is taken over and the removal works; one that does
// (as while a writer settles) makes a removal answer -EBUSY.
TEST_P(Corrupt, DamagedOwnerKeepsTheBlockReadable)
{
	using namespace bkv;
	for (uint64_t i = 1; i <= 3; i++)
		ASSERT_EQ(put(i), 0);
	uint64_t lock = peek64(session(0) + kSesLock); // the writer's own session
	ASSERT_NE(lock, 0u);
	uint64_t held = own_word(kPublished, 0, lock >> 32);
	poke64(desc(slot_of(1)) + kDescOwn, held);
	poke64(desc(slot_of(2)) + kDescOwn, own_word(kPublished, 0xabcdef, 9));
	poke64(desc(slot_of(3)) + kDescOwn, held);
	uint64_t log = session(0) + kSesResv + 4 * (sb_.max_batch - 1); // its last entry
	uint32_t named = slot_of(3) + 1;
	poke(log, &named, 4);
	for (uint64_t i = 1; i <= 3; i++) {
		EXPECT_EQ(get(i), int(len_of(i)));
		EXPECT_EQ(put(i), BELUGA_KVC_EXISTS);
	}
	EXPECT_EQ(remove(3), -EBUSY) << beluga_kvc_last_error();
	EXPECT_EQ(lookup(rd_, 3, 1), 1);
	for (uint64_t i = 1; i <= 2; i++) {
		EXPECT_EQ(remove(i), 0);
		EXPECT_EQ(lookup(rd_, i, 1), 0);
		EXPECT_EQ(put(i), 0);
	}
	named = 0;
	poke(log, &named, 4);
	EXPECT_EQ(remove(3), 0);
	expect_intact(1, 2);
}

// A slot whose state is damaged is taken back by the allocator: a full
// host (policy none) stores the key again in that very slot.
TEST_P(Corrupt, DamagedStateSlotIsReused)
{
	beluga_kvc_eviction e{};
	e.policy = BELUGA_KVC_EVICT_NONE;
	e.capacity_blocks = 4;
	e.high_watermark_pct = e.low_watermark_pct = 100;
	ASSERT_EQ(beluga_kvc_set_eviction(w_, &e), 0) << beluga_kvc_last_error();
	for (uint64_t i = 1; i <= 4; i++)
		ASSERT_EQ(put(i), 0);
	EXPECT_EQ(put(5), -ENOSPC);
	// A state no writer stores; "being written" by an owner no session holds.
	uint32_t a = slot_of(2), b = slot_of(3);
	poke64(desc(a) + bkv::kDescOwn, 0x77ull << 56 | 0x1234);
	poke64(desc(b) + bkv::kDescOwn, bkv::own_word(bkv::kReserved, 5, 0xdead));
	for (uint64_t i = 2; i <= 3; i++) {
		EXPECT_EQ(get(i), -ENOENT);
		EXPECT_EQ(put(i), 0) << beluga_kvc_last_error();
	}
	uint32_t x = slot_of(2), y = slot_of(3); // the same two slots, in some order
	EXPECT_TRUE((x == a && y == b) || (x == b && y == a)) << x << " " << y;
	expect_intact(1, 4);
	EXPECT_EQ(put(5), -ENOSPC);
}

// ---- index -----------------------------------------------------------------

TEST_P(Corrupt, IndexDamageMissesOrFindsTheRightBlock)
{
	for (uint64_t i = 1; i <= 6; i++)
		ASSERT_EQ(put(i), 0);
	uint64_t e1 = entry_of(slot_of(1)), e2 = entry_of(slot_of(2));
	uint64_t e3 = entry_of(slot_of(3));
	poke64(e1, (peek64(e1) & ~0xffffffffull) | (sb_.slots_per_host + 5)); // beyond the slots
	poke64(e2, (peek64(e2) & ~0xffffffffull) | (slot_of(4) + 1));	  // another key's slot
	poke64(e3, peek64(e3) | 0xffffffffull);				  // slot 2^32 - 2
	// Key 2's entry keeps its tag and check: a prefix lookup, which reads
	// no descriptor, reports it; get, pin and remove compare the key.
	for (uint64_t i = 1; i <= 3; i++) {
		EXPECT_EQ(lookup(rd_, i, 1), i == 2 ? 1 : 0) << "key " << i;
		EXPECT_EQ(get(i), -ENOENT) << "key " << i;
		EXPECT_EQ(remove(i), -ENOENT) << "key " << i;
		EXPECT_EQ(put(i), 0) << "key " << i << ": " << beluga_kvc_last_error();
	}
	expect_intact(1, 6);
	EXPECT_EQ(lookup(rd_, 1, 6), 6);
	for (uint64_t i = 1; i <= 6; i++)
		EXPECT_EQ(remove(i), 0) << "key " << i;
	EXPECT_EQ(lookup(rd_, 1, 6), 0);
}

// A bucket full of garbage (entries and control word): its keys miss, puts
// still find room (a garbage entry names no slot and is reused), reads are right.
TEST_P(Corrupt, GarbageBucketIsSurvived)
{
	for (uint64_t i = 1; i <= 6; i++)
		ASSERT_EQ(put(i), 0);
	uint64_t line = entry_of(slot_of(1)) / 64 * 64;
	std::vector<uint64_t> lost; // keys whose entry sits in that bucket
	for (uint64_t i = 1; i <= 6; i++)
		if (entry_of(slot_of(i)) / 64 * 64 == line)
			lost.push_back(i);
	std::vector<uint8_t> junk(64);
	uint64_t s = 99;
	for (auto &x : junk)
		x = uint8_t(splitmix(s));
	poke(line, junk.data(), 64);
	for (uint64_t i : lost) {
		EXPECT_EQ(get(i), -ENOENT) << "key " << i;
		EXPECT_EQ(put(i), 0) << "key " << i << ": " << beluga_kvc_last_error();
	}
	expect_intact(1, 6);
	// Every bucket's overflow bit set: lookups probe on, and still stop.
	for (uint64_t k = 0; k < sb_.buckets_per_host; k++) {
		uint32_t ctl;
		std::memcpy(&ctl, r_.bytes() + bucket(k) + bkv::kBucketCtl, 4);
		ctl |= bkv::kBucketOverflow;
		poke(bucket(k) + bkv::kBucketCtl, &ctl, 4);
	}
	expect_intact(1, 6);
	EXPECT_EQ(lookup(rd_, 1000, 1), 0);
	EXPECT_EQ(get(1000), -ENOENT);
	EXPECT_EQ(put(1000), 0);
	EXPECT_EQ(get(1000), int(len_of(1000)));
}

// The same entry twice (with its check word): found once, both removed at
// once, stored again.
TEST_P(Corrupt, DuplicateEntryIsHarmless)
{
	ASSERT_EQ(put(1), 0);
	uint64_t e = entry_of(slot_of(1)), line = e / 64 * 64, dup = 0;
	for (unsigned x = 0; x < bkv::kBucketEntries && !dup; x++)
		if (line + 8 * x != e && !peek64(line + 8 * x))
			dup = line + 8 * x;
	ASSERT_NE(dup, 0u);
	poke64(dup, peek64(e));
	poke(check_of(dup), r_.bytes() + check_of(e), 4);
	EXPECT_EQ(get(1), int(len_of(1)));
	EXPECT_EQ(put(1), BELUGA_KVC_EXISTS);
	EXPECT_EQ(remove(1), 0);
	EXPECT_EQ(peek64(e), 0u);
	EXPECT_EQ(peek64(dup), 0u);
	EXPECT_EQ(lookup(rd_, 1, 1), 0);
	EXPECT_EQ(get(1), -ENOENT);
	EXPECT_EQ(put(1), 0);
	EXPECT_EQ(get(1), int(len_of(1)));
}

// A wrong check word hides a block from prefix lookups only: gets find it,
// the checker reports it, and the next put of the key (EXISTS) rewrites it.
TEST_P(Corrupt, CheckWordDamageIsRepairedByThePut)
{
	for (uint64_t i = 1; i <= 3; i++)
		ASSERT_EQ(put(i), 0);
	uint64_t e = entry_of(slot_of(2));
	flip_bit(check_of(e) + 1, 4);
	EXPECT_EQ(lookup(rd_, 1, 3), 1);
	EXPECT_EQ(get(2), int(len_of(2)));
	beluga_kvc_check_report rep;
	ASSERT_EQ(beluga_kvc_check(w_, 0, &rep), 0);
	EXPECT_EQ(rep.errors, 1u);
	EXPECT_EQ(put(2), BELUGA_KVC_EXISTS);
	EXPECT_EQ(lookup(rd_, 1, 3), 3);
	ASSERT_EQ(beluga_kvc_check(w_, 0, &rep), 0);
	EXPECT_EQ(rep.errors, 0u);
	expect_intact(1, 3);
}

// ---- host area -------------------------------------------------------------

// A session of a process that is gone, full of garbage (reservation log
// naming slots out of range and a live block, pins, a huge pin count): the
// next reclaim clears it and the blocks are unharmed.
TEST_P(Corrupt, DeadSessionGarbageIsReclaimed)
{
	for (uint64_t i = 1; i <= 4; i++)
		ASSERT_EQ(put(i), 0);
	uint32_t s = uint32_t(sb_.max_sessions - 1); // unused by this test's handles
	uint64_t off = session(s);
	using namespace bkv;
	poke64(off + kSesLock, 3ull << 32 | 0x7ffffff0); // no such pid
	poke64(off + kSesBoot, 12345);			   // another boot: dead
	poke64(off + kSesStart, 1);
	poke64(off + kSesPinsHwm, ~0ull);
	uint32_t log[4] = {~0u, uint32_t(sb_.slots_per_host + 1), slot_of(2) + 1, 0x7fffffff};
	poke(off + kSesResv, log, sizeof(log));
	for (uint64_t p = 0; p < 8; p++) {
		poke64(off + sb_.pins_off + 16 * p, kPinValid | p << 32 | (slot_of(1) + p));
		poke64(off + sb_.pins_off + 16 * p + 8, ~p);
	}
	beluga_kvc_stats before = stats(w_);
	EXPECT_EQ(beluga_kvc_reclaim(w_), 1) << beluga_kvc_last_error();
	beluga_kvc_stats after = stats(w_);
	EXPECT_EQ(after.sessions_reclaimed, before.sessions_reclaimed + 1);
	EXPECT_EQ(after.pins_reclaimed, before.pins_reclaimed + 8);
	EXPECT_EQ(peek64(off + kSesLock), 0u);
	expect_intact(1, 4);
	EXPECT_EQ(remove(1), 0); // its slot is reusable: no pin is left on it
	EXPECT_EQ(put(1), 0);
	beluga_kvc_check_report rep;
	ASSERT_EQ(beluga_kvc_check(w_, 1, &rep), 0);
	EXPECT_EQ(rep.dead_sessions, 0u);
	EXPECT_EQ(rep.errors, 0u);
}

// The host's control and eviction lines full of garbage: settings are
// clamped, a damaged occupancy count is recounted, puts and gets go on.
TEST_P(Corrupt, HostControlGarbageIsClampedAndRecounted)
{
	for (uint64_t i = 1; i <= 4; i++)
		ASSERT_EQ(put(i), 0);
	using namespace bkv;
	uint64_t h = host_area(0);
	poke64(h + kHostCursor, ~0ull - 3);
	poke64(h + kEvCapacity, ~0ull);
	poke64(h + kEvWatermarks, 0xffffffff00000000ull | 500);
	poke64(h + kEvHand, ~0ull - 1);
	poke64(h + kEvUsed, ~0ull >> 1); // "full"
	poke64(h + kEvRevs, ~0ull);
	beluga_kvc_eviction ev{};
	ASSERT_EQ(beluga_kvc_get_eviction(w_, 0, &ev), 0);
	EXPECT_EQ(ev.capacity_blocks, sb_.slots_per_host);
	EXPECT_EQ(ev.high_watermark_pct, 100u);
	EXPECT_EQ(ev.low_watermark_pct, 100u);
	EXPECT_EQ(ev.policy, uint32_t(BELUGA_KVC_EVICT_NONE));
	for (uint64_t i = 5; i <= 8; i++)
		EXPECT_EQ(put(i), 0) << "key " << i << ": " << beluga_kvc_last_error();
	ASSERT_EQ(beluga_kvc_get_eviction(w_, 0, &ev), 0);
	EXPECT_EQ(ev.used_blocks, 8u); // recounted
	expect_intact(1, 8);
	// Access ticks and statistics are only numbers: garbage there is harmless.
	std::vector<uint8_t> junk(sb_.access_bytes, 0xee);
	poke(h + sb_.access_off, junk.data(), junk.size());
	poke64(h + kHostStats + 8 * kStChecksumFailures, ~0ull);
	poke64(h + kEvPolicy, 77); // a policy no one sets: the code runs CLOCK
	ASSERT_EQ(beluga_kvc_get_eviction(w_, 0, &ev), 0);
	EXPECT_EQ(ev.policy, uint32_t(BELUGA_KVC_EVICT_CLOCK));
	EXPECT_EQ(beluga_kvc_evict(w_, 2), 2);
	int hits = 0;
	for (uint64_t i = 1; i <= 8; i++)
		hits += get(i) > 0; // and every hit is the right block
	EXPECT_EQ(hits, 6);
}

// ---- superblock ------------------------------------------------------------

class Header : public Corrupt {
protected:
	// Attach a new handle to the damaged region: the error and its sentence.
	int attach_err(std::string &msg)
	{
		beluga_kvc *kv = nullptr;
		auto o = opts(0, GetParam());
		int r = beluga_kvc_attach(r_.base(), r_.size(), &cfg_.fingerprint, &o, &kv);
		msg = beluga_kvc_last_error();
		beluga_kvc_detach(kv);
		return r;
	}
	// A field changed with the header checksum made to match again.
	template <typename T> void forge(size_t off, T v)
	{
		std::memcpy(r_.bytes() + off, &v, sizeof(v));
		uint64_t sum = beluga_kvc_checksum(r_.bytes(), offsetof(bkv::Super, header_sum));
		std::memcpy(r_.bytes() + offsetof(bkv::Super, header_sum), &sum, 8);
	}
	void restore() { std::memcpy(r_.bytes(), &sb_, sizeof(sb_)); }
	void expect(int err, const char *words)
	{
		std::string msg;
		EXPECT_EQ(attach_err(msg), -err) << msg;
		EXPECT_NE(msg.find(words), std::string::npos) << msg;
		restore();
	}
};

TEST_P(Header, DamageRefusesToAttachAndNamesTheField)
{
	r_.bytes()[3] ^= 0x20;
	expect(BELUGA_KVC_EFORMAT, "magic");
	forge<uint32_t>(offsetof(bkv::Super, version_major), 7);
	expect(BELUGA_KVC_EVERSION, "version is 7.");
	r_.bytes()[offsetof(bkv::Super, slots_per_host)] ^= 1; // checksum not fixed
	expect(BELUGA_KVC_EFORMAT, "checksum");
	forge<uint64_t>(offsetof(bkv::Super, region_bytes), kRegion * 2);
	expect(BELUGA_KVC_EFORMAT, "region_bytes");
	forge<uint64_t>(offsetof(bkv::Super, slots_per_host), 1ull << 40);
	expect(BELUGA_KVC_EFORMAT, "slots_per_host");
	// Products that wrap around 2^64 must not pass as small ones.
	forge<uint64_t>(offsetof(bkv::Super, buckets_per_host), 1ull << 58);
	expect(BELUGA_KVC_EFORMAT, "buckets_per_host");
	forge<uint32_t>(offsetof(bkv::Super, max_sessions), 1u << 20);
	forge<uint64_t>(offsetof(bkv::Super, session_bytes), 1ull << 44);
	expect(BELUGA_KVC_EFORMAT, "access_off");
	forge<uint64_t>(offsetof(bkv::Super, slot_stride), (1ull << 63) + 64);
	expect(BELUGA_KVC_EFORMAT, "part_bytes");
	forge<uint64_t>(offsetof(bkv::Super, data_off), ~0ull - 63);
	expect(BELUGA_KVC_EFORMAT, "damaged header");
	forge<uint64_t>(offsetof(bkv::Super, payload_bytes), 0);
	expect(BELUGA_KVC_EFORMAT, "payload_bytes");
	// Summaries only in caches of several hosts, and words
	// only with a summary.
	forge<uint64_t>(offsetof(bkv::Super, summary_off), 4096);
	expect(BELUGA_KVC_EFORMAT, "summary_off");
	forge<uint64_t>(offsetof(bkv::Super, summary_words), 1ull << 61);
	expect(BELUGA_KVC_EFORMAT, "summary_"); // _off with one host, _words with two
	forge<char>(offsetof(bkv::Super, fp) + 2, 'X'); // model_id
	expect(BELUGA_KVC_EFINGERPRINT, "model_id");
	uint64_t *ready = reinterpret_cast<uint64_t *>(r_.bytes() + bkv::kReadyOff);
	*ready ^= 1ull << 40;
	expect(BELUGA_KVC_EFORMAT, "ready word");
	*ready ^= 1ull << 40;
	*ready = 0;
	expect(BELUGA_KVC_ENOTREADY, "formatted");
	*ready = bkv::kReadyMagic;
	// Handles attached before the damage do not read the header again.
	EXPECT_EQ(put(1), 0);
	EXPECT_EQ(get(1), int(len_of(1)));
}

// ---- a full pool -----------------------------------------------------------

class Full : public Corrupt {
protected:
	void set_policy(uint32_t policy, uint64_t cap)
	{
		beluga_kvc_eviction e{};
		e.policy = policy;
		e.capacity_blocks = cap;
		e.high_watermark_pct = 100;
		e.low_watermark_pct = 75;
		ASSERT_EQ(beluga_kvc_set_eviction(w_, &e), 0) << beluga_kvc_last_error();
	}
	std::vector<beluga_kvc_ref> pin_all(beluga_kvc *kv, uint64_t first, uint64_t n)
	{
		std::vector<beluga_kvc_ref> refs(n);
		for (uint64_t k = 0; k < n; k++) {
			uint8_t key[1][32];
			make_key(first + k, key[0]);
			int res = 99;
			beluga_kvc_pin(kv, key, 1, 0, &refs[k], &res);
			EXPECT_EQ(res, 0) << "key " << first + k;
		}
		return refs;
	}
};

TEST_P(Full, PolicyNoneRefusesWithAClearMessage)
{
	set_policy(BELUGA_KVC_EVICT_NONE, 16);
	for (uint64_t i = 0; i < 16; i++)
		ASSERT_EQ(put(i), 0) << i;
	EXPECT_EQ(put(16), -ENOSPC);
	std::string msg = beluga_kvc_last_error();
	EXPECT_NE(msg.find("full (16 of 16 blocks"), std::string::npos) << msg;
	EXPECT_NE(msg.find("policy is none"), std::string::npos) << msg;
	EXPECT_EQ(stats(w_).put_nospace, 1u);
	EXPECT_EQ(remove(3), 0);
	EXPECT_EQ(put(16), 0);
	expect_intact(4, 13);
}

TEST_P(Full, ClockAndLruKeepStoringAndNeverEvictPinned)
{
	for (uint32_t policy : {BELUGA_KVC_EVICT_CLOCK, BELUGA_KVC_EVICT_LRU}) {
		make(policy);
		set_policy(policy, 16);
		for (uint64_t i = 0; i < 4; i++)
			ASSERT_EQ(put(i), 0);
		std::vector<beluga_kvc_ref> refs = pin_all(rd_, 0, 4);
		for (uint64_t i = 4; i < 100; i++)
			ASSERT_EQ(put(i), 0) << "policy " << policy << " key " << i << ": "
					     << beluga_kvc_last_error();
		EXPECT_GT(stats(w_).evictions, 0u);
		EXPECT_EQ(lookup(rd_, 0, 4), 4);
		for (uint64_t k = 0; k < 4; k++)
			EXPECT_TRUE(check_block(k, static_cast<const uint8_t *>(refs[k].data),
						refs[k].len));
		EXPECT_EQ(beluga_kvc_unpin(rd_, refs.data(), refs.size()), 0);
		expect_intact(0, 4);
	}
}

TEST_P(Full, EveryBlockPinnedRefusesUntilUnpinned)
{
	make(BELUGA_KVC_EVICT_CLOCK);
	set_policy(BELUGA_KVC_EVICT_CLOCK, 8);
	for (uint64_t i = 0; i < 8; i++)
		ASSERT_EQ(put(i), 0);
	std::vector<beluga_kvc_ref> refs = pin_all(rd_, 0, 8);
	EXPECT_EQ(put(8), -ENOSPC);
	std::string msg = beluga_kvc_last_error();
	EXPECT_NE(msg.find("pinned"), std::string::npos) << msg;
	EXPECT_EQ(lookup(rd_, 0, 8), 8);
	EXPECT_EQ(beluga_kvc_unpin(rd_, refs.data(), refs.size()), 0);
	EXPECT_EQ(put(8), 0) << beluga_kvc_last_error();
	EXPECT_EQ(get(8), int(len_of(8)));
}

// ---- fuzz ------------------------------------------------------------------

class Fuzz : public Corrupt {
protected:
	uint64_t rng_ = 0;
	uint64_t rnd(uint64_t n) { return splitmix(rng_) % n; }

	// Random bytes at a random place of the index, descriptors or payloads
	// (of the slots the blocks live in: the allocator fills from slot 0).
	void damage(uint64_t keys)
	{
		uint64_t live = std::min<uint64_t>(4 * keys, sb_.slots_per_host);
		uint64_t areas[3][2] = {
			{bucket(0), sb_.buckets_per_host * 64},
			{desc(0), live * 64},
			{data(0), live * sb_.slot_stride},
		};
		const uint64_t *a = areas[rnd(3)];
		uint8_t junk[16];
		size_t n = 1 + rnd(sizeof(junk));
		for (auto &b : junk)
			b = uint8_t(splitmix(rng_));
		uint64_t off = a[0] + rnd(a[1] - n);
		if (rnd(2)) { // a single bit flip, the commonest memory error
			n = 1;
			junk[0] = r_.bytes()[off] ^ uint8_t(1u << rnd(8));
		}
		poke(off, junk, n);
	}
	beluga_kvc *reader() { return rnd(2) ? rd_ : w_; }
	void op(uint64_t keys)
	{
		uint64_t i = rnd(keys);
		switch (rnd(5)) {
		case 0: {
			int r = get(reader(), i);
			EXPECT_TRUE(r == int(len_of(i)) || r == -ENOENT) << r;
			break;
		}
		case 1: {
			int r = pin_verified(reader(), i);
			EXPECT_TRUE(r == 0 || r == -ENOENT) << r;
			break;
		}
		case 2: {
			uint64_t n = 1 + rnd(8), first = rnd(keys);
			long r = lookup(reader(), first, n);
			EXPECT_TRUE(r >= 0 && uint64_t(r) <= n) << r;
			break;
		}
		case 3: {
			int r = put(i);
			EXPECT_TRUE(r == 0 || r == BELUGA_KVC_EXISTS || r == -ENOSPC) << r;
			break;
		}
		default: {
			int r = remove(i);
			EXPECT_TRUE(r == 0 || r == -ENOENT || r == -EBUSY) << r;
		}
		}
	}
};

uint64_t env_or(const char *name, uint64_t def)
{
	const char *s = std::getenv(name);
	return s && *s ? std::strtoull(s, nullptr, 0) : def;
}

// Seeded: BELUGA_TEST_SEED=<seed> replays a run exactly; longer runs with
// BELUGA_KVC_FUZZ_ITERS=<n> (default 2000, a fraction of a second).
TEST_P(Fuzz, RandomDamageNeverCrashesOrServesAWrongBlock)
{
	uint64_t seed = env_or("BELUGA_TEST_SEED", uint64_t(std::chrono::steady_clock::now()
								 .time_since_epoch()
								 .count()));
	uint64_t iters = env_or("BELUGA_KVC_FUZZ_ITERS", 2000);
	std::printf("kvc corrupt fuzz: seed %llu (BELUGA_TEST_SEED replays it)\n",
		    (unsigned long long)seed);
	std::fflush(stdout);
	rng_ = seed;
	// CLOCK, as deployed: blocks that damage made unreachable still hold
	// their slots, and only eviction gives those back (with policy none a
	// long run fills the partition with them).
	make(BELUGA_KVC_EVICT_CLOCK);
	constexpr uint64_t kKeys = 48;
	for (uint64_t i = 0; i < kKeys; i++)
		ASSERT_EQ(put(i), 0);
	for (uint64_t it = 0; it < iters && !HasFailure(); it++) {
		if (rnd(2) == 0)
			damage(kKeys);
		op(kKeys);
	}
	// The damage stops: every key is still there or stored again, and reads
	// back right.
	uint64_t good = 0;
	for (uint64_t i = 0; i < kKeys && !HasFailure(); i++) {
		get(w_, i); // the owner drops what it finds damaged
		int r = put(i);
		EXPECT_TRUE(r == 0 || r == BELUGA_KVC_EXISTS || r == -ENOSPC) << r;
		int g = get(i);
		good += g == int(len_of(i));
		EXPECT_EQ(g, int(len_of(i))) << "key " << i << " after a put that answered " << r
					     << " (seed " << seed << ")";
	}
	beluga_kvc_check_report rep;
	EXPECT_EQ(beluga_kvc_check(w_, 1, &rep), 0);
	std::printf("kvc corrupt fuzz: %llu of %llu keys readable after the damage stopped, "
		    "%llu checksum failures, %llu inconsistencies left\n",
		    (unsigned long long)good, (unsigned long long)kKeys,
		    (unsigned long long)stats(rd_).checksum_failures,
		    (unsigned long long)rep.errors);
	if (HasFailure())
		std::printf("kvc corrupt fuzz: FAILED with seed %llu\n", (unsigned long long)seed);
}

const auto kModes =
	::testing::Values(uint32_t(BELUGA_KVC_COHERENT), uint32_t(BELUGA_KVC_SIMULATE));
INSTANTIATE_TEST_SUITE_P(Modes, Corrupt, kModes, mode_name);
INSTANTIATE_TEST_SUITE_P(Modes, Header, kModes, mode_name);
INSTANTIATE_TEST_SUITE_P(Modes, Full, kModes, mode_name);
INSTANTIATE_TEST_SUITE_P(Modes, Fuzz, kModes, mode_name);

} // namespace
