// SPDX-License-Identifier: Apache-2.0
// Every data call and its errors, in each coherence mode (one host here; the
// several-host cases are in test_sim.cpp).
#include "kvc_fixture.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

namespace {

using namespace kvt;

constexpr size_t kRegion = 16 << 20;
constexpr size_t kPayload = 64 * 1024;

class Store : public ::testing::TestWithParam<uint32_t> {
protected:
	void SetUp() override { open(config(opaque_fp(kPayload))); }
	void TearDown() override { beluga_kvc_detach(kv_); }
	void open(const beluga_kvc_config &c, uint32_t threads = 1, uint64_t nt_min = 0)
	{
		beluga_kvc_detach(kv_);
		kv_ = nullptr;
		std::memset(r_.base(), 0, r_.size());
		cfg_ = c;
		ASSERT_EQ(beluga_kvc_format(r_.base(), r_.size(), &cfg_), 0) << beluga_kvc_last_error();
		auto o = opts(0, GetParam(), threads);
		o.nt_min_bytes = nt_min;
		kv_ = attach_checked(r_, cfg_, o);
		ASSERT_NE(kv_, nullptr);
	}
	int put(uint64_t i, size_t len = kPayload)
	{
		long n = 0;
		int res = put_block(kv_, i, len, &n);
		EXPECT_EQ(n, res == 0 ? 1 : 0);
		return res;
	}
	int get(uint64_t i, std::vector<uint8_t> &out, size_t cap = kPayload)
	{
		GetResult g = get_block(kv_, i, out, cap);
		EXPECT_EQ(g.batch, g.res > 0 ? 1 : 0);
		return g.res;
	}
	beluga_kvc_stats stats()
	{
		beluga_kvc_stats s;
		EXPECT_EQ(beluga_kvc_get_stats(kv_, -1, &s), 0);
		return s;
	}
	void expect_healthy(bool verify = true)
	{
		beluga_kvc_check_report rep;
		ASSERT_EQ(beluga_kvc_check(kv_, verify, &rep), 0);
		EXPECT_EQ(rep.errors, 0u);
		EXPECT_EQ(rep.reserved_slots, 0u);
		EXPECT_EQ(rep.dead_sessions, 0u);
		EXPECT_EQ(rep.slots, rep.free_slots + rep.published_slots + rep.retired_slots);
		EXPECT_EQ(rep.index_entries, rep.published_slots);
	}
	ShmRegion r_{kRegion};
	beluga_kvc_config cfg_;
	beluga_kvc *kv_ = nullptr;
};

TEST_P(Store, PutGetRoundTrip)
{
	std::vector<uint8_t> out;
	for (size_t len : {size_t(1), size_t(31), size_t(100), size_t(4096), kPayload - 3, kPayload}) {
		uint64_t id = 1000 + len;
		ASSERT_EQ(put(id, len), 0) << len;
		ASSERT_EQ(get(id, out), int(len)) << len;
		EXPECT_TRUE(check_block(id, out.data(), len)) << len;
	}
	beluga_kvc_stats s = stats();
	EXPECT_EQ(s.puts, 6u);
	EXPECT_EQ(s.get_hits, 6u);
	EXPECT_EQ(s.gets, 6u);
	EXPECT_EQ(s.checksum_failures, 0u);
	EXPECT_GT(s.put_bytes, 0u);
	EXPECT_EQ(s.put_bytes, s.get_bytes);
	expect_healthy();
}

TEST_P(Store, BatchesThreadsAndNonTemporalStores)
{
	// Four copy threads, non-temporal stores from 4 KiB, a region whose
	// blocks are larger than one copy piece (512 KiB), batches above max_batch.
	beluga_kvc_config c = config(opaque_fp(1200 * 1024));
	c.max_batch = 3;
	open(c, 4, 4096);
	const size_t n = 7, len = 1200 * 1024 - 5;
	std::vector<std::vector<uint8_t>> bufs(n, std::vector<uint8_t>(len));
	std::vector<beluga_kvc_put> puts(n);
	for (size_t i = 0; i < n; i++) {
		fill_block(i, bufs[i].data(), len);
		make_key(i, puts[i].key);
		puts[i].data = bufs[i].data();
		puts[i].len = len;
	}
	std::vector<int> res(n, 99);
	EXPECT_EQ(beluga_kvc_put_batch(kv_, puts.data(), n, res.data()), long(n));
	for (int r : res)
		EXPECT_EQ(r, 0);
	std::vector<std::vector<uint8_t>> outs(n, std::vector<uint8_t>(len));
	std::vector<beluga_kvc_get> gets(n);
	for (size_t i = 0; i < n; i++) {
		make_key(i, gets[i].key);
		gets[i].dst = outs[i].data();
		gets[i].cap = len;
	}
	EXPECT_EQ(beluga_kvc_get_batch(kv_, gets.data(), n, res.data()), long(n));
	for (size_t i = 0; i < n; i++) {
		EXPECT_EQ(res[i], int(len));
		EXPECT_TRUE(check_block(i, outs[i].data(), len));
	}
	expect_healthy();
}

TEST_P(Store, PutErrorsAndExisting)
{
	EXPECT_EQ(put(1), 0);
	EXPECT_EQ(put(1), BELUGA_KVC_EXISTS);
	EXPECT_EQ(stats().put_exists, 1u);
	uint8_t buf[8] = {};
	beluga_kvc_put p[3] = {};
	make_key(2, p[0].key); // NULL data
	p[0].len = 8;
	make_key(3, p[1].key); // length 0
	p[1].data = buf;
	make_key(4, p[2].key); // too long
	p[2].data = buf;
	p[2].len = kPayload + 1;
	int res[3];
	EXPECT_EQ(beluga_kvc_put_batch(kv_, p, 3, res), 0);
	for (int r : res)
		EXPECT_EQ(r, -EINVAL);
	EXPECT_EQ(beluga_kvc_put_batch(kv_, nullptr, 1, res), -EINVAL);
	EXPECT_EQ(beluga_kvc_put_batch(kv_, p, 1, nullptr), -EINVAL);
	EXPECT_EQ(beluga_kvc_put_batch(nullptr, p, 1, res), -EINVAL);
	EXPECT_EQ(beluga_kvc_put_batch(kv_, nullptr, 0, nullptr), 0);
	expect_healthy();
}

TEST_P(Store, GetErrors)
{
	std::vector<uint8_t> out;
	EXPECT_EQ(get(5, out), -ENOENT);
	ASSERT_EQ(put(5, 1000), 0);
	EXPECT_EQ(get(5, out, 999), -ENOBUFS);
	EXPECT_EQ(get(5, out, 1000), 1000);
	beluga_kvc_get g{};
	make_key(5, g.key);
	int res;
	EXPECT_EQ(beluga_kvc_get_batch(kv_, &g, 1, &res), 0); // NULL dst
	EXPECT_EQ(res, -EINVAL);
	EXPECT_EQ(beluga_kvc_get_batch(kv_, nullptr, 1, &res), -EINVAL);
	EXPECT_EQ(beluga_kvc_get_batch(nullptr, &g, 1, &res), -EINVAL);
	beluga_kvc_stats s = stats();
	EXPECT_EQ(s.get_misses, 2u);
	EXPECT_EQ(s.get_hits, 1u);
}

TEST_P(Store, LookupPrefix)
{
	uint8_t keys[12][32];
	for (int i = 0; i < 12; i++)
		make_key(i, keys[i]);
	EXPECT_EQ(beluga_kvc_lookup_prefix(kv_, keys, 12), 0);
	for (int i = 0; i < 8; i++)
		ASSERT_EQ(put(i, 256), 0);
	EXPECT_EQ(beluga_kvc_lookup_prefix(kv_, keys, 12), 8);
	EXPECT_EQ(beluga_kvc_lookup_prefix(kv_, keys, 5), 5);
	EXPECT_EQ(beluga_kvc_lookup_prefix(kv_, keys, 0), 0);
	ASSERT_EQ(put(10, 256), 0); // after a gap: not part of the prefix
	EXPECT_EQ(beluga_kvc_lookup_prefix(kv_, keys, 12), 8);
	EXPECT_EQ(beluga_kvc_lookup_prefix(kv_, nullptr, 1), -EINVAL);
	EXPECT_EQ(beluga_kvc_lookup_prefix(nullptr, keys, 1), -EINVAL);
	beluga_kvc_stats s = stats();
	EXPECT_EQ(s.lookups, 5u);
	EXPECT_EQ(s.lookup_hits, 8u + 5 + 8);
}

TEST_P(Store, FullThenRemoveThenReuse)
{
	beluga_kvc_config c = config(opaque_fp(kPayload));
	c.eviction = BELUGA_KVC_EVICT_NONE; // a full partition refuses (eviction: test_evict.cpp)
	open(c);
	beluga_kvc_info info;
	ASSERT_EQ(beluga_kvc_get_info(kv_, &info), 0);
	uint64_t slots = info.slots_per_host;
	for (uint64_t i = 0; i < slots; i++)
		ASSERT_EQ(put(i, 512), 0) << i;
	EXPECT_EQ(put(slots, 512), -ENOSPC);
	EXPECT_EQ(stats().put_nospace, 1u);
	uint8_t keys[3][32];
	make_key(0, keys[0]);
	make_key(1, keys[1]);
	make_key(slots + 7, keys[2]); // never stored
	int res[3];
	EXPECT_EQ(beluga_kvc_remove(kv_, keys, 3, res), 2);
	EXPECT_EQ(res[0], 0);
	EXPECT_EQ(res[1], 0);
	EXPECT_EQ(res[2], -ENOENT);
	std::vector<uint8_t> out;
	EXPECT_EQ(get(0, out), -ENOENT);
	EXPECT_EQ(put(slots, 512), 0);
	EXPECT_EQ(put(slots + 1, 512), 0);
	EXPECT_EQ(put(slots + 2, 512), -ENOSPC);
	EXPECT_EQ(get(slots + 1, out), 512);
	EXPECT_TRUE(check_block(slots + 1, out.data(), 512));
	EXPECT_EQ(stats().removes, 2u);
	EXPECT_EQ(beluga_kvc_remove(kv_, nullptr, 1, res), -EINVAL);
	EXPECT_EQ(beluga_kvc_remove(kv_, keys, 1, nullptr), -EINVAL);
	expect_healthy();
}

TEST_P(Store, PinIsZeroCopyAndBlocksReuse)
{
	beluga_kvc_config c = config(opaque_fp(kPayload));
	c.eviction = BELUGA_KVC_EVICT_NONE;
	open(c);
	beluga_kvc_info info;
	ASSERT_EQ(beluga_kvc_get_info(kv_, &info), 0);
	uint64_t slots = info.slots_per_host;
	for (uint64_t i = 0; i < slots; i++)
		ASSERT_EQ(put(i, 2048), 0);
	uint8_t keys[2][32];
	make_key(3, keys[0]);
	make_key(slots + 50, keys[1]); // missing
	beluga_kvc_ref refs[2];
	int res[2];
	EXPECT_EQ(beluga_kvc_pin(kv_, keys, 2, BELUGA_KVC_PIN_VERIFY, refs, res), 1);
	EXPECT_EQ(res[0], 0);
	EXPECT_EQ(res[1], -ENOENT);
	ASSERT_EQ(refs[0].len, 2048u);
	EXPECT_TRUE(check_block(3, static_cast<const uint8_t *>(refs[0].data), 2048));
	// Removed while pinned: gone from the index, but its slot is not reused.
	EXPECT_EQ(beluga_kvc_remove(kv_, keys, 1, res), 1);
	EXPECT_EQ(put(slots + 1, 2048), -ENOSPC);
	EXPECT_TRUE(check_block(3, static_cast<const uint8_t *>(refs[0].data), 2048));
	beluga_kvc_check_report rep;
	ASSERT_EQ(beluga_kvc_check(kv_, 0, &rep), 0);
	EXPECT_EQ(rep.held_pins, 1u);
	EXPECT_EQ(rep.retired_slots, 1u);
	EXPECT_EQ(beluga_kvc_unpin(kv_, refs, 1), 0);
	EXPECT_EQ(refs[0].data, nullptr);
	EXPECT_EQ(beluga_kvc_unpin(kv_, refs, 1), -EINVAL); // twice
	EXPECT_EQ(put(slots + 1, 2048), 0);
	beluga_kvc_stats s = stats();
	EXPECT_EQ(s.pins, 1u);
	EXPECT_EQ(s.unpins, 1u);
	expect_healthy();
}

TEST_P(Store, PinErrors)
{
	beluga_kvc_config c = config(opaque_fp(kPayload));
	c.max_pins = 2;
	open(c);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(put(i, 100), 0);
	uint8_t keys[3][32];
	for (int i = 0; i < 3; i++)
		make_key(i, keys[i]);
	beluga_kvc_ref refs[3];
	int res[3];
	EXPECT_EQ(beluga_kvc_pin(kv_, keys, 3, 0, refs, res), 2);
	EXPECT_EQ(res[2], -ENOBUFS);
	// get needs a pin entry while it copies: none left.
	std::vector<uint8_t> out;
	EXPECT_EQ(get(2, out), -ENOBUFS);
	EXPECT_EQ(beluga_kvc_pin(kv_, keys, 1, 0x80, refs, res), -EINVAL);
	EXPECT_EQ(beluga_kvc_pin(kv_, nullptr, 1, 0, refs, res), -EINVAL);
	EXPECT_EQ(beluga_kvc_pin(kv_, keys, 1, 0, nullptr, res), -EINVAL);
	beluga_kvc_ref forged = refs[0];
	forged.slot ^= 1;
	EXPECT_EQ(beluga_kvc_unpin(kv_, &forged, 1), -EINVAL);
	forged = refs[0];
	forged.pin = 1 << 30;
	EXPECT_EQ(beluga_kvc_unpin(kv_, &forged, 1), -EINVAL);
	EXPECT_EQ(beluga_kvc_unpin(kv_, nullptr, 1), -EINVAL);
	EXPECT_EQ(beluga_kvc_unpin(kv_, refs, 2), 0);
	EXPECT_EQ(get(2, out), 100);
	expect_healthy();
}

TEST_P(Store, StatsInfoReclaimCheckErrors)
{
	beluga_kvc_stats s;
	EXPECT_EQ(beluga_kvc_get_stats(kv_, 1, &s), -EINVAL);
	EXPECT_EQ(beluga_kvc_get_stats(kv_, -2, &s), -EINVAL);
	EXPECT_EQ(beluga_kvc_get_stats(kv_, 0, nullptr), -EINVAL);
	EXPECT_EQ(beluga_kvc_get_stats(nullptr, 0, &s), -EINVAL);
	EXPECT_EQ(beluga_kvc_get_stats(kv_, 0, &s), 0);
	EXPECT_EQ(s.sessions_opened, 1u);
	EXPECT_EQ(beluga_kvc_reclaim(kv_), 0);
	EXPECT_EQ(beluga_kvc_reclaim(nullptr), -EINVAL);
	beluga_kvc_check_report rep;
	EXPECT_EQ(beluga_kvc_check(nullptr, 0, &rep), -EINVAL);
	EXPECT_EQ(beluga_kvc_check(kv_, 0, nullptr), -EINVAL);
	ASSERT_EQ(beluga_kvc_check(kv_, 1, &rep), 0);
	EXPECT_EQ(rep.live_sessions, 1u);
	EXPECT_EQ(rep.published_slots, 0u);
}

TEST_P(Store, CheckFindsCorruption)
{
	ASSERT_EQ(put(1, 4096), 0);
	expect_healthy();
	// Flip one payload byte behind the store's back (in this host's view).
	beluga_kvc_info info;
	beluga_kvc_get_info(kv_, &info);
	uint8_t *mem = r_.bytes();
	bool flipped = false;
	for (size_t off = r_.size() - 1; off > 8192 && !flipped; off--)
		if (mem[off]) { // the last non-zero byte belongs to the only block
			mem[off] ^= 0xff;
			flipped = true;
		}
	ASSERT_TRUE(flipped);
	if (GetParam() == BELUGA_KVC_SIMULATE)
		return; // this handle reads its own (still intact) copy
	beluga_kvc_check_report rep;
	ASSERT_EQ(beluga_kvc_check(kv_, 1, &rep), 0);
	EXPECT_EQ(rep.errors, 1u);
	std::vector<uint8_t> out;
	EXPECT_EQ(get(1, out), -ENOENT); // a checksum mismatch is a miss
	EXPECT_EQ(stats().checksum_failures, 1u);
}

std::string mode_name(const ::testing::TestParamInfo<uint32_t> &i)
{
	return i.param == BELUGA_KVC_COHERENT	 ? "Coherent"
	       : i.param == BELUGA_KVC_NONCOHERENT ? "NonCoherent"
						   : "Simulated";
}

INSTANTIATE_TEST_SUITE_P(Modes, Store,
			 ::testing::Values(uint32_t(BELUGA_KVC_COHERENT),
					   uint32_t(BELUGA_KVC_NONCOHERENT),
					   uint32_t(BELUGA_KVC_SIMULATE)),
			 mode_name);

} // namespace
