// SPDX-License-Identifier: Apache-2.0
// Eviction (libbeluga/kvcache/src/evict.cpp): settings and their errors,
// the watermarks, what CLOCK and LRU choose, never a pinned or in-flight
// block, a lowered capacity, an evictor killed half-way; read-only observers
// and the block listing.  Single host in every coherence mode; two hosts in
// the non-coherent simulation, where dropping any of the eviction's flushes
// and invalidates (evict_take, tick_flush, inval_ticks) must be caught.
// The clock is frozen (bkv::test::set_tick), so nothing depends on timing.
#include "kvc_crash.hpp"

#include <beluga/kvcache.hpp>

#include <gtest/gtest.h>

#include <signal.h>

#include <cerrno>
#include <string>
#include <vector>

namespace {

using namespace kvt;

constexpr size_t kRegion = 8 << 20;
constexpr size_t kPayload = 16 * 1024;

std::string mode_name(uint32_t m)
{
	return m == BELUGA_KVC_COHERENT ? "Coherent" : m == BELUGA_KVC_NONCOHERENT ? "NonCoherent"
										    : "Simulated";
}



bool cached(beluga_kvc *kv, uint64_t i)
{
	uint8_t key[1][32];
	make_key(i, key[0]);
	return beluga_kvc_lookup_prefix(kv, key, 1) == 1;
}

beluga_kvc_eviction settings(uint32_t policy, uint64_t cap, uint32_t high, uint32_t low)
{
	beluga_kvc_eviction e{};
	e.policy = policy;
	e.capacity_blocks = cap;
	e.high_watermark_pct = high;
	e.low_watermark_pct = low;
	return e;
}

beluga_kvc_stats stats_of(beluga_kvc *kv)
{
	beluga_kvc_stats s{};
	EXPECT_EQ(beluga_kvc_get_stats(kv, -1, &s), 0);
	return s;
}

uint64_t used_of(beluga_kvc *kv)
{
	beluga_kvc_eviction e{};
	EXPECT_EQ(beluga_kvc_get_eviction(kv, -1, &e), 0);
	return e.used_blocks;
}

// Single host, every coherence mode.
class Evict : public ::testing::TestWithParam<uint32_t> {
protected:
	void SetUp() override
	{
		bkv::test::set_tick(100);
		open(config(opaque_fp(kPayload)));
	}
	void TearDown() override
	{
		if (kv_) {
			EXPECT_EQ(bkv::test::sim_violations(kv_), 0u);
		}
		beluga_kvc_detach(kv_);
		bkv::test::set_tick(0);
	}
	void open(const beluga_kvc_config &c, size_t region = kRegion)
	{
		beluga_kvc_detach(kv_);
		kv_ = nullptr;
		r_ = std::make_unique<ShmRegion>(region);
		cfg_ = c;
		ASSERT_EQ(beluga_kvc_format(r_->base(), r_->size(), &cfg_), 0) << beluga_kvc_last_error();
		kv_ = attach();
		ASSERT_NE(kv_, nullptr);
	}
	beluga_kvc *attach(uint32_t flags = 0)
	{
		auto o = opts(0, GetParam());
		o.flags = flags;
		return attach_checked(*r_, cfg_, o);
	}
	void set(const beluga_kvc_eviction &e)
	{
		ASSERT_EQ(beluga_kvc_set_eviction(kv_, &e), 0) << beluga_kvc_last_error();
	}
	void expect_healthy()
	{
		beluga_kvc_check_report rep;
		ASSERT_EQ(beluga_kvc_check(kv_, 1, &rep), 0);
		EXPECT_EQ(rep.errors, 0u);
		EXPECT_EQ(rep.reserved_slots, 0u);
		EXPECT_EQ(rep.index_entries, rep.published_slots);
		EXPECT_EQ(used_of(kv_), rep.published_slots); // the occupancy counter is exact
	}
	std::unique_ptr<ShmRegion> r_;
	beluga_kvc_config cfg_;
	beluga_kvc *kv_ = nullptr;
};

TEST_P(Evict, FormatSettingsAndDefaults)
{
	beluga_kvc_eviction e;
	ASSERT_EQ(beluga_kvc_get_eviction(kv_, -1, &e), 0);
	EXPECT_EQ(e.policy, uint32_t(BELUGA_KVC_EVICT_CLOCK));
	EXPECT_EQ(e.high_watermark_pct, 95u);
	EXPECT_EQ(e.low_watermark_pct, 85u);
	beluga_kvc_info info;
	ASSERT_EQ(beluga_kvc_get_info(kv_, &info), 0);
	EXPECT_EQ(e.capacity_blocks, info.slots_per_host);
	EXPECT_EQ(e.used_blocks, 0u);
	EXPECT_EQ(info.observer, 0u);

	beluga_kvc_config c = config(opaque_fp(kPayload));
	c.eviction = BELUGA_KVC_EVICT_LRU;
	c.capacity_blocks = 10;
	c.high_watermark_pct = 80;
	c.low_watermark_pct = 50;
	open(c);
	ASSERT_EQ(beluga_kvc_get_eviction(kv_, 0, &e), 0);
	EXPECT_EQ(e.policy, uint32_t(BELUGA_KVC_EVICT_LRU));
	EXPECT_EQ(e.capacity_blocks, 10u);
	EXPECT_EQ(e.high_watermark_pct, 80u);
	EXPECT_EQ(e.low_watermark_pct, 50u);
	ASSERT_EQ(beluga_kvc_get_info(kv_, &info), 0);
	EXPECT_EQ(info.capacity_slots, 10u);
	EXPECT_EQ(info.eviction, uint32_t(BELUGA_KVC_EVICT_LRU));
	EXPECT_EQ(info.high_watermark_pct, 80u);
	// Capacity caps the blocks held even below the watermarks' reach.
	for (int i = 0; i < 30; i++)
		ASSERT_EQ(put_block(kv_, i, kPayload), 0) << i;
	EXPECT_LE(used_of(kv_), 10u);
	expect_healthy();
}

TEST_P(Evict, SettingErrors)
{
	beluga_kvc_info info;
	ASSERT_EQ(beluga_kvc_get_info(kv_, &info), 0);
	const uint64_t slots = info.slots_per_host;
	beluga_kvc_eviction good = settings(BELUGA_KVC_EVICT_CLOCK, slots, 90, 50), bad;
	EXPECT_EQ(beluga_kvc_set_eviction(kv_, &good), 0);
	for (int field = 0; field < 9; field++) {
		bad = good;
		switch (field) {
		case 0: bad.policy = 3; break;
		case 1: bad.capacity_blocks = 0; break;
		case 2: bad.capacity_blocks = slots + 1; break;
		case 3: bad.low_watermark_pct = 0; break;
		case 4: bad.low_watermark_pct = 91; break;
		case 5: bad.high_watermark_pct = 101; break;
		case 6: bad.reserved0 = 1; break;
		case 7: bad.reserved[3] = 1; break;
		case 8: bad.high_watermark_pct = 0; break;
		}
		EXPECT_EQ(beluga_kvc_set_eviction(kv_, &bad), -EINVAL) << field;
		EXPECT_NE(std::string(beluga_kvc_last_error()).find("set_eviction"), std::string::npos);
	}
	EXPECT_EQ(beluga_kvc_set_eviction(kv_, nullptr), -EINVAL);
	EXPECT_EQ(beluga_kvc_set_eviction(nullptr, &good), -EINVAL);
	beluga_kvc_eviction e;
	EXPECT_EQ(beluga_kvc_get_eviction(kv_, 1, &e), -EINVAL); // one host
	EXPECT_EQ(beluga_kvc_get_eviction(kv_, -2, &e), -EINVAL);
	EXPECT_EQ(beluga_kvc_get_eviction(kv_, 0, nullptr), -EINVAL);
	EXPECT_EQ(beluga_kvc_get_eviction(nullptr, 0, &e), -EINVAL);
	EXPECT_EQ(beluga_kvc_evict(nullptr, 1), -EINVAL);
	ASSERT_EQ(beluga_kvc_get_eviction(kv_, 0, &e), 0);
	EXPECT_EQ(e.high_watermark_pct, 90u); // the failed calls changed nothing
	EXPECT_EQ(e.low_watermark_pct, 50u);
}

TEST_P(Evict, HighWatermarkEvictsDownToLow)
{
	set(settings(BELUGA_KVC_EVICT_CLOCK, 20, 90, 50)); // evict at 18, down to 10
	for (int i = 0; i < 18; i++)
		ASSERT_EQ(put_block(kv_, i, kPayload), 0) << i;
	EXPECT_EQ(used_of(kv_), 18u);
	EXPECT_EQ(stats_of(kv_).evictions, 0u);
	ASSERT_EQ(put_block(kv_, 18, kPayload), 0);
	beluga_kvc_stats s = stats_of(kv_);
	EXPECT_EQ(s.evict_rounds, 1u);
	EXPECT_EQ(s.evictions, 8u);
	EXPECT_GE(s.evict_scanned, 8u);
	EXPECT_EQ(used_of(kv_), 11u);
	// Every block still cached reads back intact; the evicted ones miss.
	int kept = 0;
	for (int i = 0; i < 19; i++)
		if (cached(kv_, i)) {
			EXPECT_TRUE(get_block(kv_, i, kPayload).intact) << i;
			kept++;
		}
	EXPECT_EQ(kept, 11);
	expect_healthy();
}

TEST_P(Evict, FullWatermarksEvictOneAtATime)
{
	set(settings(BELUGA_KVC_EVICT_CLOCK, 8, 100, 100));
	for (int i = 0; i < 8; i++)
		ASSERT_EQ(put_block(kv_, i, kPayload), 0);
	for (int i = 8; i < 12; i++) {
		ASSERT_EQ(put_block(kv_, i, kPayload), 0);
		EXPECT_EQ(used_of(kv_), 8u);
	}
	EXPECT_EQ(stats_of(kv_).evictions, 4u);
	EXPECT_EQ(stats_of(kv_).put_nospace, 0u);
	expect_healthy();
}

TEST_P(Evict, ClockKeepsWhatWasRead)
{
	set(settings(BELUGA_KVC_EVICT_CLOCK, 10, 100, 100));
	for (int i = 0; i < 10; i++)
		ASSERT_EQ(put_block(kv_, i, kPayload), 0);
	bkv::test::set_tick(200);
	for (int i : {1, 3, 5, 7, 9})
		ASSERT_TRUE(get_block(kv_, i, kPayload).intact);
	bkv::test::set_tick(300);
	EXPECT_EQ(beluga_kvc_evict(kv_, 5), 5);
	for (int i = 0; i < 10; i++)
		EXPECT_EQ(cached(kv_, i), i % 2 == 1) << i;
	// A second chance is not a pass forever: nothing read since, all go.
	bkv::test::set_tick(400);
	EXPECT_EQ(beluga_kvc_evict(kv_, 2), 2); // a new revolution begins ...
	bkv::test::set_tick(500);
	EXPECT_EQ(beluga_kvc_evict(kv_, 3), 3); // ... after which the reads are old
	EXPECT_EQ(used_of(kv_), 0u);
	expect_healthy();
}

TEST_P(Evict, LruEvictsLeastRecentlyRead)
{
	beluga_kvc_config c = config(opaque_fp(kPayload));
	c.eviction = BELUGA_KVC_EVICT_LRU;
	c.max_sessions = 4;
	c.max_pins = 64;
	open(c, 1 << 20); // so few slots that LRU looks at all of them
	beluga_kvc_info info;
	ASSERT_EQ(beluga_kvc_get_info(kv_, &info), 0);
	ASSERT_LE(info.slots_per_host, 64u);
	set(settings(BELUGA_KVC_EVICT_LRU, 8, 100, 100));
	for (int i = 0; i < 8; i++)
		ASSERT_EQ(put_block(kv_, i, kPayload), 0);
	// Read in the order 5 2 7 0 4 1 6 3: 5 is the least recently read.
	uint32_t tick = 200;
	for (int i : {5, 2, 7, 0, 4, 1, 6, 3}) {
		bkv::test::set_tick(tick++);
		ASSERT_TRUE(get_block(kv_, i, kPayload).intact);
	}
	EXPECT_EQ(beluga_kvc_evict(kv_, 3), 3);
	for (int i = 0; i < 8; i++)
		EXPECT_EQ(cached(kv_, i), i != 5 && i != 2 && i != 7) << i;
	// A block stored after the reads is the youngest.
	ASSERT_EQ(put_block(kv_, 8, kPayload), 0);
	EXPECT_EQ(beluga_kvc_evict(kv_, 1), 1);
	EXPECT_FALSE(cached(kv_, 0));
	EXPECT_TRUE(cached(kv_, 8));
	expect_healthy();
}

TEST_P(Evict, NeverEvictsPinnedBlocks)
{
	set(settings(BELUGA_KVC_EVICT_CLOCK, 10, 100, 100));
	for (int i = 0; i < 10; i++)
		ASSERT_EQ(put_block(kv_, i, kPayload), 0);
	uint8_t keys[3][32];
	make_key(2, keys[0]);
	make_key(5, keys[1]);
	make_key(8, keys[2]);
	beluga_kvc_ref refs[3];
	int res[3];
	ASSERT_EQ(beluga_kvc_pin(kv_, keys, 3, 0, refs, res), 3);
	bkv::test::set_tick(1000); // the pins' reads are old by now
	EXPECT_EQ(beluga_kvc_evict(kv_, 10), 7);
	EXPECT_GE(stats_of(kv_).evict_pinned, 3u);
	for (int i = 0; i < 10; i++)
		EXPECT_EQ(cached(kv_, i), i == 2 || i == 5 || i == 8) << i;
	// A full cache of pinned blocks: the put has nothing to evict.
	set(settings(BELUGA_KVC_EVICT_CLOCK, 3, 100, 100));
	EXPECT_EQ(put_block(kv_, 20, kPayload), -ENOSPC);
	ASSERT_EQ(beluga_kvc_unpin(kv_, refs, 3), 0);
	EXPECT_EQ(put_block(kv_, 20, kPayload), 0);
	EXPECT_EQ(beluga_kvc_evict(kv_, 10), 3);
	EXPECT_FALSE(cached(kv_, 20));
	expect_healthy();
}

// In-flight blocks, from the writer's own hooks: a second handle of the same
// host evicts everything it can while a put is between reserving and
// settling its block.
beluga_kvc *g_evictor;
long g_evicted_in_hook = -1;
int g_hook_event;
void evict_from_hook(int ev, int)
{
	if (ev == g_hook_event && g_evictor)
		g_evicted_in_hook = beluga_kvc_evict(g_evictor, 1000);
}

TEST_P(Evict, NeverEvictsBlocksBeingWritten)
{
	if (GetParam() == BELUGA_KVC_SIMULATE)
		GTEST_SKIP() << "one simulating handle per host and process";
	for (int event : {bkv::test::write_begin, bkv::test::published}) {
		for (int i = 0; i < 4; i++)
			ASSERT_EQ(put_block(kv_, 10 * event + i, kPayload), 0);
		g_evictor = attach();
		g_hook_event = event;
		g_evicted_in_hook = -1;
		bkv::test::set_hook(evict_from_hook);
		int r = put_block(kv_, 99 + event, kPayload);
		bkv::test::set_hook(nullptr);
		EXPECT_EQ(r, 0);
		EXPECT_EQ(g_evicted_in_hook, 4) << "event " << event; // the settled ones only
		EXPECT_TRUE(get_block(kv_, 99 + event, kPayload).intact) << "event " << event;
		beluga_kvc_detach(g_evictor);
		g_evictor = nullptr;
		EXPECT_EQ(beluga_kvc_evict(kv_, 1000), 1);
	}
	expect_healthy();
}

TEST_P(Evict, LoweredCapacityEvictsTheSurplus)
{
	for (int i = 0; i < 12; i++)
		ASSERT_EQ(put_block(kv_, i, kPayload), 0);
	set(settings(BELUGA_KVC_EVICT_CLOCK, 4, 100, 75)); // evicts the 8 above slot 3
	EXPECT_EQ(used_of(kv_), 4u);
	EXPECT_EQ(stats_of(kv_).evictions, 8u);
	EXPECT_EQ(beluga_kvc_evict(kv_, 0), 1); // down to the low watermark: 3
	ASSERT_EQ(put_block(kv_, 100, kPayload), 0);
	EXPECT_EQ(used_of(kv_), 4u);
	uint64_t cursor = 0;
	beluga_kvc_block_info b[16];
	long n = beluga_kvc_list_blocks(kv_, 0, &cursor, 0, b, 16);
	ASSERT_EQ(n, 4);
	for (long i = 0; i < n; i++)
		EXPECT_LT(b[i].slot, 4u); // nothing left above the capacity
	expect_healthy();
}

TEST_P(Evict, EvictZeroStopsAtTheLowWatermark)
{
	set(settings(BELUGA_KVC_EVICT_CLOCK, 20, 90, 50));
	for (int i = 0; i < 15; i++)
		ASSERT_EQ(put_block(kv_, i, kPayload), 0);
	EXPECT_EQ(stats_of(kv_).evictions, 0u);
	EXPECT_EQ(beluga_kvc_evict(kv_, 0), 5);
	EXPECT_EQ(used_of(kv_), 10u);
	EXPECT_EQ(beluga_kvc_evict(kv_, 0), 0);
	expect_healthy();
}

TEST_P(Evict, PolicyNoneRefusesButEvictStillWorks)
{
	set(settings(BELUGA_KVC_EVICT_NONE, 6, 100, 85));
	for (int i = 0; i < 6; i++)
		ASSERT_EQ(put_block(kv_, i, kPayload), 0);
	EXPECT_EQ(put_block(kv_, 6, kPayload), -ENOSPC);
	EXPECT_EQ(stats_of(kv_).put_nospace, 1u);
	EXPECT_EQ(beluga_kvc_evict(kv_, 2), 2);
	EXPECT_EQ(put_block(kv_, 6, kPayload), 0);
	expect_healthy();
}

TEST_P(Evict, ObserverWritesNothing)
{
	if (GetParam() == BELUGA_KVC_SIMULATE)
		GTEST_SKIP() << "observers never simulate";
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(put_block(kv_, i, kPayload), 0);
	ASSERT_TRUE(get_block(kv_, 1, kPayload).intact);
	std::vector<uint8_t> before(r_->bytes(), r_->bytes() + r_->size());
	beluga_kvc_attach_opts o = opts(0, GetParam());
	o.flags = BELUGA_KVC_ATTACH_OBSERVE | BELUGA_KVC_ATTACH_PREFAULT; // reading every page
	beluga_kvc *obs = nullptr;
	ASSERT_EQ(beluga_kvc_attach(r_->base(), r_->size(), nullptr, &o, &obs), 0)
		<< beluga_kvc_last_error();
	beluga_kvc_info info;
	ASSERT_EQ(beluga_kvc_get_info(obs, &info), 0);
	EXPECT_EQ(info.observer, 1u);
	EXPECT_STREQ(info.fingerprint.model_id, "test-model");
	EXPECT_TRUE(cached(obs, 3));
	beluga_kvc_stats s;
	ASSERT_EQ(beluga_kvc_get_stats(obs, -1, &s), 0);
	EXPECT_EQ(s.puts, 5u);
	beluga_kvc_check_report rep;
	ASSERT_EQ(beluga_kvc_check(obs, 1, &rep), 0);
	EXPECT_EQ(rep.published_slots, 5u);
	EXPECT_EQ(rep.live_sessions, 1u); // the observer has none
	beluga_kvc_block_info b[8];
	uint64_t cursor = 0;
	EXPECT_EQ(beluga_kvc_list_blocks(obs, -1, &cursor, BELUGA_KVC_LIST_VERIFY, b, 8), 5);
	beluga_kvc_eviction e;
	EXPECT_EQ(beluga_kvc_get_eviction(obs, 0, &e), 0);
	EXPECT_EQ(e.used_blocks, 5u);
	// Everything that writes is refused, with a sentence.
	std::vector<uint8_t> buf(kPayload);
	beluga_kvc_put p{};
	p.data = buf.data();
	p.len = buf.size();
	beluga_kvc_get g{};
	make_key(1, g.key);
	g.dst = buf.data();
	g.cap = buf.size();
	uint8_t key[1][32];
	make_key(1, key[0]);
	beluga_kvc_ref ref{};
	int res;
	EXPECT_EQ(beluga_kvc_put_batch(obs, &p, 1, &res), -EPERM);
	EXPECT_NE(std::string(beluga_kvc_last_error()).find("observer"), std::string::npos);
	EXPECT_EQ(beluga_kvc_get_batch(obs, &g, 1, &res), -EPERM);
	EXPECT_EQ(beluga_kvc_pin(obs, key, 1, 0, &ref, &res), -EPERM);
	EXPECT_EQ(beluga_kvc_unpin(obs, &ref, 1), -EPERM);
	EXPECT_EQ(beluga_kvc_remove(obs, key, 1, &res), -EPERM);
	EXPECT_EQ(beluga_kvc_reclaim(obs), -EPERM);
	EXPECT_EQ(beluga_kvc_evict(obs, 1), -EPERM);
	EXPECT_EQ(beluga_kvc_set_eviction(obs, &e), -EPERM);
	beluga_kvc_detach(obs);
	EXPECT_EQ(std::memcmp(before.data(), r_->bytes(), r_->size()), 0)
		<< "an observer changed the region";
	// Attach errors of observers.
	o.flags = 0;
	EXPECT_EQ(beluga_kvc_attach(r_->base(), r_->size(), nullptr, &o, &obs), -EINVAL);
	o.flags = 1u << 3; // no such flag
	EXPECT_EQ(beluga_kvc_attach(r_->base(), r_->size(), &cfg_.fingerprint, &o, &obs), -EINVAL);
	o.flags = BELUGA_KVC_ATTACH_OBSERVE;
	o.coherence = BELUGA_KVC_SIMULATE;
	EXPECT_EQ(beluga_kvc_attach(r_->base(), r_->size(), nullptr, &o, &obs), -EINVAL);
	// An observer that names a fingerprint is still held to it.
	o.coherence = GetParam();
	beluga_kvc_fingerprint other = opaque_fp(kPayload, "another-model");
	EXPECT_EQ(beluga_kvc_attach(r_->base(), r_->size(), &other, &o, &obs),
		  -BELUGA_KVC_EFINGERPRINT);
}

TEST_P(Evict, ListAndInspectBlocks)
{
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(put_block(kv_, i, 1000 + i), 0);
	bkv::test::set_tick(150);
	ASSERT_TRUE(get_block(kv_, 1, kPayload).intact);
	uint8_t key[1][32];
	make_key(2, key[0]);
	beluga_kvc_ref ref;
	int res;
	ASSERT_EQ(beluga_kvc_pin(kv_, key, 1, 0, &ref, &res), 1);
	beluga_kvc_block_info b[4];
	uint64_t cursor = 0;
	ASSERT_EQ(beluga_kvc_list_blocks(kv_, -1, &cursor, BELUGA_KVC_LIST_VERIFY, b, 4), 3);
	for (int i = 0; i < 3; i++) {
		uint8_t want[32];
		make_key(uint64_t(i), want);
		EXPECT_EQ(std::memcmp(b[i].key, want, 32), 0) << i; // slot order = put order here
		EXPECT_EQ(b[i].len, 1000u + i);
		EXPECT_EQ(b[i].host, 0u);
		EXPECT_EQ(b[i].inserted_ms, 100u);
		EXPECT_EQ(b[i].checksum_state, uint32_t(BELUGA_KVC_SUM_OK));
		EXPECT_EQ(b[i].gen % 2, 0u);
	}
	EXPECT_EQ(b[0].accessed_ms, 0u);
	EXPECT_EQ(b[1].accessed_ms, 150u);
	EXPECT_EQ(b[2].accessed_ms, 150u); // pinning is reading
	EXPECT_EQ(b[0].pins + b[1].pins, 0u);
	EXPECT_EQ(b[2].pins, 1u);
	// Paging: one at a time.
	cursor = 0;
	int seen = 0;
	while (beluga_kvc_list_blocks(kv_, 0, &cursor, 0, b, 1) == 1) {
		EXPECT_EQ(b[0].checksum_state, uint32_t(BELUGA_KVC_SUM_UNCHECKED));
		seen++;
	}
	EXPECT_EQ(seen, 3);
	beluga_kvc_block_info one;
	make_key(1, key[0]);
	ASSERT_EQ(beluga_kvc_inspect(kv_, key[0], BELUGA_KVC_LIST_VERIFY, &one), 0);
	EXPECT_EQ(one.len, 1001u);
	EXPECT_EQ(one.checksum_state, uint32_t(BELUGA_KVC_SUM_OK));
	make_key(77, key[0]);
	EXPECT_EQ(beluga_kvc_inspect(kv_, key[0], 0, &one), -ENOENT);
	EXPECT_NE(std::string(beluga_kvc_last_error()).find("not cached"), std::string::npos);
	EXPECT_EQ(beluga_kvc_inspect(kv_, nullptr, 0, &one), -EINVAL);
	EXPECT_EQ(beluga_kvc_inspect(kv_, key[0], 8, &one), -EINVAL);
	EXPECT_EQ(beluga_kvc_inspect(kv_, key[0], 0, nullptr), -EINVAL);
	EXPECT_EQ(beluga_kvc_list_blocks(kv_, 1, &cursor, 0, b, 1), -EINVAL);
	EXPECT_EQ(beluga_kvc_list_blocks(kv_, -1, nullptr, 0, b, 1), -EINVAL);
	EXPECT_EQ(beluga_kvc_list_blocks(kv_, -1, &cursor, 4, b, 1), -EINVAL);
	EXPECT_EQ(beluga_kvc_list_blocks(kv_, -1, &cursor, 0, nullptr, 1), -EINVAL);
	EXPECT_EQ(beluga_kvc_list_blocks(nullptr, -1, &cursor, 0, b, 1), -EINVAL);
	ASSERT_EQ(beluga_kvc_unpin(kv_, &ref, 1), 0);
	// A damaged payload shows as BAD (in the region itself: not simulated).
	if (GetParam() != BELUGA_KVC_SIMULATE) {
		uint64_t off = bkv::test::payload_offset(kv_, 0, b[0].slot);
		r_->bytes()[off + 10] ^= 0xff;
		cursor = 0;
		ASSERT_EQ(beluga_kvc_list_blocks(kv_, -1, &cursor, BELUGA_KVC_LIST_VERIFY, b, 4), 3);
		EXPECT_EQ(b[2].checksum_state, uint32_t(BELUGA_KVC_SUM_BAD));
	}
}

TEST_P(Evict, CppInterface)
{
	beluga::kvc::Cache cache = beluga::kvc::Cache::attach(r_->base(), r_->size(),
							      cfg_.fingerprint);
	cache.set_eviction(settings(BELUGA_KVC_EVICT_LRU, 5, 100, 60));
	EXPECT_EQ(cache.eviction().capacity_blocks, 5u);
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(put_block(cache.get(), i, kPayload), 0);
	EXPECT_EQ(cache.evict(), 2u); // down to 3
	EXPECT_EQ(cache.blocks().size(), 3u);
	beluga_kvc_block_info info;
	beluga::kvc::Key k;
	make_key(1000, k.data());
	EXPECT_FALSE(cache.inspect(k, info));
	EXPECT_THROW(cache.set_eviction(settings(9, 5, 100, 60)), beluga::kvc::Error);
	if (GetParam() != BELUGA_KVC_SIMULATE) {
		auto obs = beluga::kvc::Cache::observe(r_->base(), r_->size());
		EXPECT_EQ(obs.blocks().size(), 3u);
		EXPECT_THROW(obs.evict(1), beluga::kvc::Error);
	}
}

INSTANTIATE_TEST_SUITE_P(Modes, Evict,
			 ::testing::Values(uint32_t(BELUGA_KVC_COHERENT),
					   uint32_t(BELUGA_KVC_NONCOHERENT),
					   uint32_t(BELUGA_KVC_SIMULATE)),
			 [](const auto &i) { return mode_name(i.param); });

// ---------------------------------------------------------------------------
// Two hosts in the non-coherent simulation.

class EvictSim : public ::testing::Test {
protected:
	void SetUp() override
	{
		bkv::test::set_omit(nullptr);
		bkv::test::set_tick(100);
		cfg_ = config(opaque_fp(kPayload), 2);
		ASSERT_EQ(beluga_kvc_format(r_.base(), r_.size(), &cfg_), 0);
		a_ = attach(0);
		b_ = attach(1);
		ASSERT_TRUE(a_ && b_);
		beluga_kvc_eviction e = settings(BELUGA_KVC_EVICT_CLOCK, 10, 100, 100);
		ASSERT_EQ(beluga_kvc_set_eviction(a_, &e), 0);
	}
	void TearDown() override
	{
		if (a_) {
			EXPECT_EQ(bkv::test::sim_violations(a_), 0u);
		}
		if (b_) {
			EXPECT_EQ(bkv::test::sim_violations(b_), 0u);
		}
		beluga_kvc_detach(a_);
		beluga_kvc_detach(b_);
		bkv::test::set_omit(nullptr);
		bkv::test::set_hook(nullptr);
		bkv::test::set_tick(0);
	}
	beluga_kvc *attach(uint32_t host)
	{
		return attach_checked(r_, cfg_, opts(host, BELUGA_KVC_SIMULATE));
	}
	// A stores 10 blocks; B reads the odd ones later; A evicts 5.  CLOCK
	// must keep what B read: A learns of it only from B's access ticks.
	::testing::AssertionResult foreign_reads_count()
	{
		for (int i = 0; i < 10; i++)
			if (put_block(a_, i, kPayload))
				return ::testing::AssertionFailure() << "put " << i;
		bkv::test::set_tick(200);
		for (int i = 1; i < 10; i += 2)
			if (!get_block(b_, i, kPayload).intact)
				return ::testing::AssertionFailure() << "B cannot read " << i;
		bkv::test::set_tick(300);
		if (beluga_kvc_evict(a_, 5) != 5)
			return ::testing::AssertionFailure() << "A evicted too little";
		for (int i = 1; i < 10; i += 2)
			if (!cached(a_, i))
				return ::testing::AssertionFailure() << "A evicted " << i << ", read by B";
		return ::testing::AssertionSuccess();
	}
	// B pins the victim right after A found it unpinned: B must miss, or
	// the block must stay (never both a pin and an eviction).
	static inline beluga_kvc *s_b;
	static inline int s_b_pinned;
	static inline beluga_kvc_ref s_ref;
	static void pin_in_window(int ev, int)
	{
		if (ev != bkv::test::evict_checked || !s_b || s_b_pinned >= 0)
			return;
		uint8_t key[1][32];
		make_key(0, key[0]);
		int res;
		s_b_pinned = int(beluga_kvc_pin(s_b, key, 1, 0, &s_ref, &res));
	}
	::testing::AssertionResult pin_races_eviction()
	{
		if (put_block(a_, 0, kPayload))
			return ::testing::AssertionFailure() << "put";
		s_b = b_;
		s_b_pinned = -1;
		bkv::test::set_hook(pin_in_window);
		long n = beluga_kvc_evict(a_, 1);
		bkv::test::set_hook(nullptr);
		s_b = nullptr;
		bool gone = !cached(b_, 0);
		if (s_b_pinned == 1)
			beluga_kvc_unpin(b_, &s_ref, 1);
		if (s_b_pinned == 1 && gone)
			return ::testing::AssertionFailure() << "a block was evicted while B held it pinned";
		if (n != 1 || s_b_pinned != 0)
			return ::testing::AssertionFailure() << "unexpected: evicted " << n << ", pinned "
							     << s_b_pinned;
		return ::testing::AssertionSuccess();
	}
	ShmRegion r_{kRegion};
	beluga_kvc_config cfg_;
	beluga_kvc *a_ = nullptr, *b_ = nullptr;
};

TEST_F(EvictSim, OtherHostsReadsCount) { EXPECT_TRUE(foreign_reads_count()); }

TEST_F(EvictSim, PinTakenDuringEvictionMisses) { EXPECT_TRUE(pin_races_eviction()); }

TEST_F(EvictSim, PinOnAnotherHostBlocksEviction)
{
	for (int i = 0; i < 4; i++)
		ASSERT_EQ(put_block(a_, i, kPayload), 0);
	uint8_t key[1][32];
	make_key(2, key[0]);
	beluga_kvc_ref ref;
	int res;
	ASSERT_EQ(beluga_kvc_pin(b_, key, 1, 0, &ref, &res), 1);
	bkv::test::set_tick(1000);
	EXPECT_EQ(beluga_kvc_evict(a_, 10), 3);
	EXPECT_TRUE(cached(b_, 2));
	ASSERT_EQ(beluga_kvc_unpin(b_, &ref, 1), 0);
	EXPECT_EQ(beluga_kvc_evict(a_, 10), 1);
	// B's occupancy view of A, and A's own.
	beluga_kvc_eviction e;
	ASSERT_EQ(beluga_kvc_get_eviction(b_, 0, &e), 0);
	EXPECT_EQ(e.used_blocks, 0u);
	EXPECT_EQ(e.capacity_blocks, 10u);
	ASSERT_EQ(beluga_kvc_get_eviction(b_, 1, &e), 0);
	EXPECT_GT(e.capacity_blocks, 10u); // B's own settings: the default, every slot
}

TEST_F(EvictSim, ListingSeesOtherHostsPinsAndReads)
{
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(put_block(a_, i, kPayload), 0);
	bkv::test::set_tick(250);
	uint8_t key[1][32];
	make_key(1, key[0]);
	beluga_kvc_ref ref;
	int res;
	ASSERT_EQ(beluga_kvc_pin(b_, key, 1, 0, &ref, &res), 1);
	beluga_kvc_block_info b[2];
	uint64_t cursor = 0;
	ASSERT_EQ(beluga_kvc_list_blocks(a_, 0, &cursor, BELUGA_KVC_LIST_VERIFY, b, 2), 2);
	EXPECT_EQ(b[1].pins, 1u);
	EXPECT_EQ(b[1].accessed_ms, 250u);
	EXPECT_EQ(b[0].pins, 0u);
	cursor = 0;
	ASSERT_EQ(beluga_kvc_list_blocks(b_, -1, &cursor, BELUGA_KVC_LIST_VERIFY, b, 2), 2);
	EXPECT_EQ(b[1].checksum_state, uint32_t(BELUGA_KVC_SUM_OK));
	ASSERT_EQ(beluga_kvc_unpin(b_, &ref, 1), 0);
}

// Each eviction flush/invalidate, dropped once, must be caught.
struct EvictOmission {
	const char *point;
	bool pin_race;
};

class EvictOmit : public EvictSim, public ::testing::WithParamInterface<EvictOmission> {};

TEST_P(EvictOmit, IsDetected)
{
	ASSERT_TRUE(bkv::test::set_omit(GetParam().point));
	if (GetParam().pin_race)
		EXPECT_FALSE(pin_races_eviction()) << "omitting " << GetParam().point << " went unnoticed";
	else
		EXPECT_FALSE(foreign_reads_count()) << "omitting " << GetParam().point
						    << " went unnoticed";
	bkv::test::set_omit(nullptr);
}

INSTANTIATE_TEST_SUITE_P(Points, EvictOmit,
			 ::testing::Values(EvictOmission{"evict_take", true},
					   EvictOmission{"tick_flush", false},
					   EvictOmission{"inval_ticks", false}),
			 [](const auto &i) { return std::string(i.param.point); });

// ---------------------------------------------------------------------------
// An evictor SIGKILLed between finding its victim unpinned and removing it:
// the host's next process puts the block back.

void die_at_evict(int ev, int)
{
	if (ev == bkv::test::evict_checked)
		raise(SIGKILL);
}

class EvictCrash : public CrashTest {
protected:
	EvictCrash() : CrashTest(kRegion, kPayload) {}
};

TEST_P(EvictCrash, EvictorKilledHalfWay)
{
	pid_t pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		beluga_kvc *kv = attach(1);
		if (!kv)
			_exit(2);
		for (int i = 0; i < 3; i++)
			if (put_block(kv, i, kPayload))
				_exit(3);
		bkv::test::set_hook(die_at_evict);
		beluga_kvc_evict(kv, 1);
		_exit(4); // the hook should have killed us
	}
	ASSERT_TRUE(killed(pid));
	beluga_kvc *kv = attach(1);
	ASSERT_NE(kv, nullptr);
	beluga_kvc_check_report rep;
	ASSERT_EQ(beluga_kvc_check(kv, 1, &rep), 0);
	EXPECT_EQ(rep.errors, 0u);
	EXPECT_EQ(rep.published_slots, 3u); // the victim is back
	EXPECT_EQ(rep.dead_sessions, 0u);
	for (int i = 0; i < 3; i++)
		EXPECT_TRUE(get_block(kv, i, kPayload).intact) << i;
	EXPECT_EQ(used_of(kv), 3u);
	EXPECT_EQ(beluga_kvc_evict(kv, 3), 3); // and can be evicted again
	EXPECT_EQ(bkv::test::sim_violations(kv), 0u);
	beluga_kvc_detach(kv);
}

INSTANTIATE_TEST_SUITE_P(Modes, EvictCrash, crash_modes(), crash_mode_name);

} // namespace
