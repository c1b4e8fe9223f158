// SPDX-License-Identifier: Apache-2.0
// Several hosts in the non-coherent simulation: each handle sees its own
// stale copy of the region until it flushes or invalidates.  Every flush and
// invalidate the protocol needs is dropped once (kvcache_test.h omission
// points) to show that a build without it fails these checks.
#include "kvc_fixture.hpp"

#include "kvcache_test.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <string>
#include <vector>

namespace {

using namespace kvt;

constexpr size_t kRegion = 8 << 20;
constexpr size_t kPayload = 16 * 1024;

class Sim : public ::testing::Test {
protected:
	void SetUp() override
	{
		bkv::test::set_omit(nullptr);
		cfg_ = config(opaque_fp(kPayload), 2);
		// These tests fill a partition and expect it to refuse (eviction
		// in the simulation: test_evict.cpp).
		cfg_.eviction = BELUGA_KVC_EVICT_NONE;
		ASSERT_EQ(beluga_kvc_format(r_.base(), r_.size(), &cfg_), 0);
		a_ = attach(0);
		b_ = attach(1);
	}
	void TearDown() override
	{
		// No line may ever have been written by two hosts.
		if (a_) {
			EXPECT_EQ(bkv::test::sim_violations(a_), 0u);
		}
		if (b_) {
			EXPECT_EQ(bkv::test::sim_violations(b_), 0u);
		}
		beluga_kvc_detach(a_);
		beluga_kvc_detach(b_);
		bkv::test::set_omit(nullptr);
	}
	beluga_kvc *attach(uint32_t host)
	{
		auto o = opts(host, BELUGA_KVC_SIMULATE);
		o.nt_min_bytes = nt_min_; // default: ordinary stores + write-back: payload_wb matters
		return attach_checked(r_, cfg_, o);
	}
	// Host B must find and correctly read what host A stored, both the
	// moment A's index entry is in place (from A's publish hook, before A
	// finishes the call) and afterwards.
	static ::testing::AssertionResult b_reads(beluga_kvc *b, uint64_t id)
	{
		uint8_t key[1][32];
		make_key(id, key[0]);
		long prefix = beluga_kvc_lookup_prefix(b, key, 1);
		GetResult g = get_block(b, id, kPayload);
		if (prefix != 1 || g.res != int(kPayload) || !g.intact)
			return ::testing::AssertionFailure()
			       << "B: lookup " << prefix << ", get " << g.res << ", content " << g.intact;
		return ::testing::AssertionSuccess();
	}
	static inline beluga_kvc *s_reader;
	static inline ::testing::AssertionResult s_early = ::testing::AssertionSuccess();
	static void on_publish(int ev, int)
	{
		if (ev == bkv::test::published && s_reader)
			s_early = b_reads(s_reader, 7);
	}
	::testing::AssertionResult b_reads_a()
	{
		s_reader = b_;
		s_early = ::testing::AssertionFailure() << "A never published";
		bkv::test::set_hook(on_publish);
		int r = put_block(a_, 7, kPayload);
		bkv::test::set_hook(nullptr);
		s_reader = nullptr;
		if (r != 0)
			return ::testing::AssertionFailure() << "A's put failed";
		if (!s_early)
			return s_early << " (while A publishes)";
		return b_reads(b_, 7);
	}
	// Host A must not reuse the slot of a block B holds pinned.
	::testing::AssertionResult pin_blocks_reuse()
	{
		beluga_kvc_info info;
		beluga_kvc_get_info(a_, &info);
		for (uint64_t i = 0; i < info.slots_per_host; i++)
			if (put_block(a_, i, kPayload) != 0)
				return ::testing::AssertionFailure() << "fill failed at " << i;
		uint8_t key[1][32];
		make_key(0, key[0]);
		beluga_kvc_ref ref;
		int res;
		if (beluga_kvc_pin(b_, key, 1, BELUGA_KVC_PIN_VERIFY, &ref, &res) != 1)
			return ::testing::AssertionFailure() << "B could not pin: " << res;
		beluga_kvc_remove(a_, key, 1, &res);
		int again = put_block(a_, 100000, kPayload);
		beluga_kvc_unpin(b_, &ref, 1);
		if (again != -ENOSPC)
			return ::testing::AssertionFailure() << "A reused a pinned slot (put " << again << ")";
		if (put_block(a_, 100000, kPayload) != 0)
			return ::testing::AssertionFailure() << "slot not reusable after unpin";
		return ::testing::AssertionSuccess();
	}
	ShmRegion r_{kRegion};
	uint64_t nt_min_ = 1 << 30;
	beluga_kvc_config cfg_;
	beluga_kvc *a_ = nullptr, *b_ = nullptr;
};

TEST_F(Sim, OtherHostReadsWhatWasStored) { EXPECT_TRUE(b_reads_a()); }

TEST_F(Sim, PinOnAnotherHostBlocksReuse) { EXPECT_TRUE(pin_blocks_reuse()); }

TEST_F(Sim, UnflushedDataIsInvisible)
{
	// Sanity of the simulation itself: a store that was never flushed does
	// not reach the region, and a host that does not invalidate keeps its
	// stale copy.
	uint8_t *mine = bkv::test::view_ptr(a_, 8192 + 64);
	uint8_t *theirs = bkv::test::view_ptr(b_, 8192 + 64);
	mine[0] = 0x5a;
	EXPECT_NE(bkv::test::shared_ptr(a_, 8192 + 64)[0], 0x5a);
	EXPECT_NE(theirs[0], 0x5a);
}

TEST_F(Sim, HostsStatsAndRemoveAcrossHosts)
{
	ASSERT_EQ(put_block(a_, 1, kPayload), 0);
	EXPECT_EQ(put_block(b_, 1, kPayload), BELUGA_KVC_EXISTS); // cached by another host counts
	EXPECT_EQ(get_block(b_, 1, kPayload).res, int(kPayload));
	uint8_t key[1][32];
	make_key(1, key[0]);
	int res;
	EXPECT_EQ(beluga_kvc_remove(b_, key, 1, &res), 0);
	EXPECT_EQ(res, -EXDEV); // only A may remove it
	beluga_kvc_stats sa, sb, all;
	ASSERT_EQ(beluga_kvc_get_stats(b_, 0, &sa), 0);
	ASSERT_EQ(beluga_kvc_get_stats(b_, 1, &sb), 0);
	ASSERT_EQ(beluga_kvc_get_stats(b_, -1, &all), 0);
	EXPECT_EQ(sa.puts, 1u);
	EXPECT_EQ(sb.put_exists, 1u);
	EXPECT_EQ(sb.get_hits, 1u);
	EXPECT_EQ(all.puts + all.put_exists, 2u);
	EXPECT_EQ(beluga_kvc_remove(a_, key, 1, &res), 1);
	EXPECT_EQ(get_block(b_, 1, kPayload).res, -ENOENT);
	beluga_kvc_check_report rep;
	ASSERT_EQ(beluga_kvc_check(b_, 1, &rep), 0);
	EXPECT_EQ(rep.errors, 0u);
	EXPECT_EQ(rep.live_sessions, 2u);
}

// Prefix lookups of several keys across hosts (lookup_prefix_hosts): the
// other hosts' buckets are invalidated a window of keys at a time, with one
// fence, when this host's copy of their summaries already says they may
// hold the keys, and answer alone (tag and check word; no descriptor).
class SimWindow : public Sim {
protected:
	static long lookup(beluga_kvc *kv, uint64_t first, size_t n)
	{
		std::vector<std::array<uint8_t, 32>> keys(n);
		for (size_t i = 0; i < n; i++)
			make_key(first + i, keys[i].data());
		return beluga_kvc_lookup_prefix(kv, reinterpret_cast<const uint8_t(*)[32]>(keys.data()), n);
	}
	// A stores keys 100..139 after B attached (B's copy of A's lines is
	// stale); a lookup of another key brings B's copy of A's summary up to
	// date, so that the chain's lookup finds A as a candidate and relies on
	// the window's invalidations alone.  With @omit dropped in that lookup.
	long chain_after_sync(const char *omit)
	{
		EXPECT_EQ(put_block(a_, 1, kPayload), 0);
		for (uint64_t i = 100; i < 140; i++)
			EXPECT_EQ(put_block(a_, i, kPayload), 0);
		EXPECT_EQ(lookup(b_, 1, 1), 1);
		EXPECT_TRUE(bkv::test::set_omit(omit));
		long n = lookup(b_, 100, 40);
		bkv::test::set_omit(nullptr);
		return n;
	}
};

TEST_F(SimWindow, FindsWhatAnotherHostStored) { EXPECT_EQ(chain_after_sync("none"), 40); }

TEST_F(SimWindow, DroppedBucketInvalidationIsDetected)
{
	EXPECT_LT(chain_after_sync("inval_index"), 40) << "a stale bucket went unnoticed";
}

// Lookups read no descriptor: without their invalidation (which gets need,
// Omit.IsDetected/inval_desc) the chain is found all the same.
TEST_F(SimWindow, LookupsReadNoDescriptor) { EXPECT_EQ(chain_after_sync("inval_desc"), 40); }

// The check word is written back with its entry (index_publish): without
// that write-back, B's lookups miss what A stored.
TEST_F(SimWindow, DroppedIndexWriteBackIsDetected)
{
	EXPECT_EQ(put_block(a_, 1, kPayload), 0);
	EXPECT_EQ(lookup(b_, 1, 1), 1);
	ASSERT_TRUE(bkv::test::set_omit("index_publish"));
	for (uint64_t i = 100; i < 140; i++)
		EXPECT_EQ(put_block(a_, i, kPayload), 0);
	bkv::test::set_omit(nullptr);
	EXPECT_LT(lookup(b_, 100, 40), 40) << "an entry A never wrote back went unnoticed";
}

TEST_F(SimWindow, KeysPastAStaleSummaryAreFound)
{
	// B's copy of A's summary is stale when the call begins: the keys it
	// does not know yet would end the window early, and must be looked up
	// once the generation read in the same call shows that it moved.
	ASSERT_EQ(put_block(a_, 200, kPayload), 0);
	EXPECT_EQ(lookup(b_, 200, 1), 1);
	for (uint64_t i = 201; i < 220; i++)
		ASSERT_EQ(put_block(a_, i, kPayload), 0);
	EXPECT_EQ(lookup(b_, 200, 30), 20);
	EXPECT_EQ(lookup(b_, 200, 30), 20);
}

// Non-temporal puts (libbeluga/cpu bcpu_copy_nt_sum) of blocks whose ends
// are not whole lines: the copy writes the partial last line with ordinary
// stores and writes it back itself, and the simulation learns of both only
// through the CPU primitives' trace.
class SimNt : public Sim {
protected:
	SimNt() { nt_min_ = 1; }
	// B reads block @id of @len bytes as A stored it.
	static ::testing::AssertionResult b_reads_len(beluga_kvc *a, beluga_kvc *b, uint64_t id,
						      size_t len)
	{
		if (int r = put_block(a, id, len); r != 0)
			return ::testing::AssertionFailure() << "A's put failed: " << r;
		GetResult g = get_block(b, id, kPayload);
		if (g.res != int(len) || !g.intact)
			return ::testing::AssertionFailure()
			       << "B: get " << g.res << " of " << len << ", content " << g.intact;
		return ::testing::AssertionSuccess();
	}
};

TEST_F(SimNt, OtherHostReadsPartialLines)
{
	for (size_t len : {kPayload, kPayload - 1, kPayload - 24, size_t(100), size_t(1)})
		EXPECT_TRUE(b_reads_len(a_, b_, 20 + len, len)) << len << " bytes";
}

TEST_F(SimNt, DroppedPartialLineWriteBackIsDetected)
{
	ASSERT_TRUE(bkv::test::set_omit("payload_nt_wb"));
	EXPECT_FALSE(b_reads_len(a_, b_, 21, kPayload - 24))
		<< "a partial line the copy did not write back went unnoticed";
	bkv::test::set_omit(nullptr);
	// Whole lines go around the cache: nothing to write back, nothing lost.
	EXPECT_TRUE(b_reads_len(a_, b_, 22, kPayload));
}

// Each omission point, with the check that catches it.
struct Omission {
	const char *point;
	bool pin_scenario;
};

class Omit : public Sim, public ::testing::WithParamInterface<Omission> {};

TEST_P(Omit, IsDetected)
{
	ASSERT_TRUE(bkv::test::set_omit(GetParam().point));
	if (GetParam().pin_scenario)
		EXPECT_FALSE(pin_blocks_reuse()) << "omitting " << GetParam().point << " went unnoticed";
	else
		EXPECT_FALSE(b_reads_a()) << "omitting " << GetParam().point << " went unnoticed";
	bkv::test::set_omit(nullptr);
	// The readers' stale copies are legitimate here; what matters is that no
	// wrong data was ever returned as a hit (b_reads_a checks content).
}

INSTANTIATE_TEST_SUITE_P(Points, Omit,
			 ::testing::Values(Omission{"payload_wb", false}, Omission{"desc_commit", false},
					   Omission{"index_publish", false},
					   Omission{"inval_index", false}, Omission{"inval_desc", false},
					   Omission{"inval_payload", false}, Omission{"pin_flush", true},
					   Omission{"inval_pins", true},
					   // The summaries: B would skip A's partition.
					   Omission{"summary_flush", false}, Omission{"summary_seg", false},
					   Omission{"summary_gen", false}, Omission{"inval_sum_gen", false},
					   Omission{"inval_sum_seg", false},
					   Omission{"inval_summary", false}),
			 [](const auto &i) { return std::string(i.param.point); });

TEST(SimPoints, EveryPointHasADetectionTest)
{
	// Adding a flush point without a test above must fail here.
	// (The eviction points are detected in test_evict.cpp, EvictOmit; the
	// hosts' claim, heartbeat and takeover points in test_hosts.cpp, HostOmit.)
	// payload_nt_wb: SimNt.DroppedPartialLineWriteBackIsDetected.
	std::vector<std::string> tested = {"payload_wb",  "payload_nt_wb", "desc_commit",   "index_publish",
					   "inval_index", "inval_desc",	   "inval_payload",
					   "pin_flush",	  "inval_pins",	   "evict_take",
					   "tick_flush",  "inval_ticks",   "claim_flush",
					   "inval_claim", "beat_flush",	   "takeover_flush",
					   "summary_flush", "summary_seg", "summary_gen",
					   "inval_sum_gen", "inval_sum_seg", "inval_summary"};
	size_t n = 0;
	for (const char *const *p = bkv::test::points(); *p; p++, n++)
		EXPECT_NE(std::find(tested.begin(), tested.end(), *p), tested.end()) << *p;
	EXPECT_EQ(n, tested.size());
	EXPECT_FALSE(bkv::test::set_omit("no_such_point"));
}

} // namespace
