// SPDX-License-Identifier: Apache-2.0
// Zero-copy stores (beluga_kvc_reserve / _commit / _abort): every result and
// error in each coherence mode, readers never seeing a reserved block, the
// reservation limit leaving puts room, detach aborting, a writer-computed
// checksum, the C++ RAII wrapper; a writer SIGKILLed half-way through writing
// a reserved slot (never published, reclaimed); and, in the non-coherent
// simulation, another host reading what a commit published, with each of the
// commit's flushes omitted in turn to show that the omission is caught.
#include "kvc_crash.hpp"

#include <beluga/kvcache.hpp>

#include <gtest/gtest.h>

#include <signal.h>

#include <cerrno>
#include <string>
#include <vector>

namespace {

using namespace kvt;

constexpr size_t kRegion = 16 << 20;
constexpr size_t kPayload = 64 * 1024;

beluga_kvc_reservation item(uint64_t i, size_t len = kPayload)
{
	beluga_kvc_reservation r{};
	make_key(i, r.key);
	r.len = len;
	return r;
}

class Reserve : public ::testing::TestWithParam<uint32_t> {
protected:
	void SetUp() override
	{
		bkv::test::set_omit(nullptr);
		open(config(opaque_fp(kPayload)));
	}
	void TearDown() override { beluga_kvc_detach(kv_); }
	void open(const beluga_kvc_config &c, uint32_t threads = 1)
	{
		beluga_kvc_detach(kv_);
		kv_ = nullptr;
		std::memset(r_.base(), 0, r_.size());
		cfg_ = c;
		ASSERT_EQ(beluga_kvc_format(r_.base(), r_.size(), &cfg_), 0) << beluga_kvc_last_error();
		kv_ = attach(threads);
	}
	beluga_kvc *attach(uint32_t threads = 1)
	{
		return attach_checked(r_, cfg_, opts(0, GetParam(), threads));
	}
	int get(uint64_t i, size_t len = kPayload)
	{
		GetResult g = get_block(kv_, i, len);
		if (g.res > 0 && !g.intact)
			return -EBADMSG; // a hit with the wrong content
		return g.res;
	}
	beluga_kvc_check_report check()
	{
		beluga_kvc_check_report rep;
		EXPECT_EQ(beluga_kvc_check(kv_, 1, &rep), 0);
		EXPECT_EQ(rep.errors, 0u);
		return rep;
	}
	ShmRegion r_{kRegion};
	beluga_kvc_config cfg_;
	beluga_kvc *kv_ = nullptr;
};

TEST_P(Reserve, WriteInPlaceThenCommit)
{
	std::vector<beluga_kvc_reservation> it = {item(1), item(2), item(3, 1000)};
	std::vector<int> res(it.size(), 99);
	ASSERT_EQ(beluga_kvc_reserve(kv_, it.data(), it.size(), res.data()), 3);
	for (size_t i = 0; i < it.size(); i++) {
		EXPECT_EQ(res[i], 0);
		ASSERT_NE(it[i].data, nullptr);
		EXPECT_EQ(uintptr_t(it[i].data) % 64, 0u);
		EXPECT_EQ(bkv::test::view_ptr(kv_, it[i].offset), it[i].data);
	}
	EXPECT_EQ(check().reserved_slots, 3u);
	for (size_t i = 0; i < it.size(); i++)
		fill_block(i + 1, static_cast<uint8_t *>(it[i].data), it[i].len);
	ASSERT_EQ(beluga_kvc_commit(kv_, it.data(), it.size(), 0, res.data()), 3);
	for (size_t i = 0; i < it.size(); i++) {
		EXPECT_EQ(res[i], 0);
		EXPECT_EQ(it[i].data, nullptr); // the reservation ended
	}
	EXPECT_EQ(get(1), int(kPayload));
	EXPECT_EQ(get(2), int(kPayload));
	EXPECT_EQ(get(3), 1000);
	auto rep = check();
	EXPECT_EQ(rep.reserved_slots, 0u);
	EXPECT_EQ(rep.published_slots, 3u);
	beluga_kvc_stats s;
	ASSERT_EQ(beluga_kvc_get_stats(kv_, -1, &s), 0);
	EXPECT_EQ(s.puts, 3u);
	EXPECT_EQ(s.put_bytes, 2 * kPayload + 1000);
	// Committing again: nothing is held any more.
	EXPECT_EQ(beluga_kvc_commit(kv_, it.data(), 1, 0, res.data()), 0);
	EXPECT_EQ(res[0], -ENOENT);
}

TEST_P(Reserve, ExistingKeysAndBadItems)
{
	std::vector<beluga_kvc_reservation> it = {item(1)};
	int res = 99;
	ASSERT_EQ(beluga_kvc_reserve(kv_, it.data(), 1, &res), 1);
	fill_block(1, static_cast<uint8_t *>(it[0].data), kPayload);
	ASSERT_EQ(beluga_kvc_commit(kv_, it.data(), 1, 0, &res), 1);
	// Cached: nothing reserved, one lookup said so.
	it = {item(1), item(2, 0), item(3, kPayload + 1), item(4)};
	std::vector<int> r(it.size(), 99);
	ASSERT_EQ(beluga_kvc_reserve(kv_, it.data(), it.size(), r.data()), 1);
	EXPECT_EQ(r[0], BELUGA_KVC_EXISTS);
	EXPECT_EQ(r[1], -EINVAL);
	EXPECT_EQ(r[2], -EINVAL);
	EXPECT_EQ(r[3], 0);
	EXPECT_EQ(it[0].data, nullptr);
	EXPECT_EQ(it[1].data, nullptr);
	// A reservation whose fields were changed is refused and stays held.
	beluga_kvc_reservation forged = it[3];
	forged.slot ^= 1;
	EXPECT_EQ(beluga_kvc_commit(kv_, &forged, 1, 0, &res), 0);
	EXPECT_EQ(res, -EINVAL);
	forged = it[3];
	forged.gen += 2;
	EXPECT_EQ(beluga_kvc_abort(kv_, &forged, 1), -EINVAL);
	EXPECT_EQ(check().reserved_slots, 1u);
	EXPECT_EQ(beluga_kvc_commit(kv_, it.data(), it.size(), 2, r.data()), -EINVAL); // flags
	// The real one commits; the others held nothing.
	fill_block(4, static_cast<uint8_t *>(it[3].data), kPayload);
	ASSERT_EQ(beluga_kvc_commit(kv_, it.data(), it.size(), 0, r.data()), 1);
	EXPECT_EQ(r[0], -ENOENT);
	EXPECT_EQ(r[3], 0);
	EXPECT_EQ(get(4), int(kPayload));
	EXPECT_EQ(beluga_kvc_reserve(kv_, nullptr, 1, &res), -EINVAL);
	EXPECT_EQ(check().reserved_slots, 0u);
}

TEST_P(Reserve, SameKeyTwiceOneWins)
{
	// Both reserve (neither is cached yet); the second commit withdraws.
	std::vector<beluga_kvc_reservation> it = {item(5), item(5)};
	std::vector<int> r(2, 99);
	ASSERT_EQ(beluga_kvc_reserve(kv_, it.data(), 2, r.data()), 2);
	for (auto &x : it)
		fill_block(5, static_cast<uint8_t *>(x.data), kPayload);
	ASSERT_EQ(beluga_kvc_commit(kv_, it.data(), 2, 0, r.data()), 1);
	EXPECT_EQ(r[0], 0);
	EXPECT_EQ(r[1], BELUGA_KVC_EXISTS);
	EXPECT_EQ(get(5), int(kPayload));
	auto rep = check();
	EXPECT_EQ(rep.published_slots, 1u);
	EXPECT_EQ(rep.reserved_slots, 0u);
}

TEST_P(Reserve, ReadersNeverSeeAReservedBlock)
{
	beluga_kvc_reservation it = item(7);
	int res;
	ASSERT_EQ(beluga_kvc_reserve(kv_, &it, 1, &res), 1);
	fill_block(7, static_cast<uint8_t *>(it.data), kPayload / 2); // half written
	uint8_t key[1][32];
	make_key(7, key[0]);
	EXPECT_EQ(beluga_kvc_lookup_prefix(kv_, key, 1), 0);
	EXPECT_EQ(get(7), -ENOENT);
	beluga_kvc_ref ref;
	EXPECT_EQ(beluga_kvc_pin(kv_, key, 1, 0, &ref, &res), 0);
	EXPECT_EQ(res, -ENOENT);
	// A put of the same key meanwhile stores its own copy; the commit then
	// withdraws.
	std::vector<uint8_t> buf(kPayload);
	fill_block(7, buf.data(), kPayload);
	beluga_kvc_put p{};
	make_key(7, p.key);
	p.data = buf.data();
	p.len = kPayload;
	ASSERT_EQ(beluga_kvc_put_batch(kv_, &p, 1, &res), 1);
	ASSERT_EQ(beluga_kvc_commit(kv_, &it, 1, 0, &res), 0);
	EXPECT_EQ(res, BELUGA_KVC_EXISTS);
	EXPECT_EQ(get(7), int(kPayload));
	EXPECT_EQ(check().reserved_slots, 0u);
}

TEST_P(Reserve, AbortGivesTheSlotBack)
{
	beluga_kvc_reservation it[2] = {item(8), item(9)};
	int res[2];
	ASSERT_EQ(beluga_kvc_reserve(kv_, it, 2, res), 2);
	fill_block(8, static_cast<uint8_t *>(it[0].data), kPayload);
	auto before = check();
	EXPECT_EQ(before.reserved_slots, 2u);
	EXPECT_EQ(beluga_kvc_abort(kv_, it, 2), 2);
	EXPECT_EQ(it[0].data, nullptr);
	EXPECT_EQ(beluga_kvc_abort(kv_, it, 2), 0); // nothing held any more
	auto after = check();
	EXPECT_EQ(after.reserved_slots, 0u);
	EXPECT_EQ(after.free_slots, before.free_slots + 2);
	EXPECT_EQ(get(8), -ENOENT);
	beluga_kvc_eviction ev;
	ASSERT_EQ(beluga_kvc_get_eviction(kv_, -1, &ev), 0);
	EXPECT_EQ(ev.used_blocks, 0u);
	// The key can be stored again.
	ASSERT_EQ(beluga_kvc_reserve(kv_, it, 1, res), 1);
	fill_block(8, static_cast<uint8_t *>(it[0].data), kPayload);
	ASSERT_EQ(beluga_kvc_commit(kv_, it, 1, 0, res), 1);
	EXPECT_EQ(get(8), int(kPayload));
}

TEST_P(Reserve, LimitLeavesPutsAnEntry)
{
	beluga_kvc_config c = config(opaque_fp(kPayload));
	c.max_batch = 4;
	open(c);
	std::vector<beluga_kvc_reservation> it;
	for (uint64_t i = 0; i < 5; i++)
		it.push_back(item(100 + i));
	std::vector<int> r(5, 99);
	ASSERT_EQ(beluga_kvc_reserve(kv_, it.data(), 5, r.data()), 3);
	EXPECT_EQ(r[3], -ENOBUFS);
	EXPECT_EQ(r[4], -ENOBUFS);
	EXPECT_NE(std::string(beluga_kvc_last_error()).find("max_batch"), std::string::npos);
	// Puts, removals and evictions of this process still run (the entry
	// kept for them), one block at a time.
	std::vector<uint8_t> a(kPayload), b(kPayload);
	fill_block(200, a.data(), kPayload);
	fill_block(201, b.data(), kPayload);
	beluga_kvc_put p[2] = {};
	make_key(200, p[0].key);
	make_key(201, p[1].key);
	p[0].data = a.data();
	p[1].data = b.data();
	p[0].len = p[1].len = kPayload;
	int pr[2];
	EXPECT_EQ(beluga_kvc_put_batch(kv_, p, 2, pr), 2);
	uint8_t key[1][32];
	make_key(200, key[0]);
	EXPECT_EQ(beluga_kvc_remove(kv_, key, 1, pr), 1);
	EXPECT_GE(beluga_kvc_evict(kv_, 1), 0);
	// Ending one reservation frees an entry for the next.
	EXPECT_EQ(beluga_kvc_abort(kv_, it.data(), 1), 1);
	EXPECT_EQ(beluga_kvc_reserve(kv_, &it[3], 1, r.data()), 1);
	EXPECT_EQ(beluga_kvc_abort(kv_, it.data(), it.size()), 3);
	// max_batch 1: no reservation is possible at all.
	c.max_batch = 1;
	open(c);
	EXPECT_EQ(beluga_kvc_reserve(kv_, it.data(), 1, r.data()), 0);
	EXPECT_EQ(r[0], -ENOBUFS);
}

TEST_P(Reserve, DetachAbortsWhatIsHeld)
{
	// (One handle at a time: a simulated host has one per process.)
	beluga_kvc_detach(kv_);
	kv_ = nullptr;
	beluga_kvc *other = attach();
	ASSERT_NE(other, nullptr);
	beluga_kvc_reservation it[2] = {item(11), item(12)};
	int res[2];
	ASSERT_EQ(beluga_kvc_reserve(other, it, 2, res), 2);
	fill_block(11, static_cast<uint8_t *>(it[0].data), kPayload);
	beluga_kvc_detach(other);
	kv_ = attach();
	auto rep = check();
	EXPECT_EQ(rep.reserved_slots, 0u);
	EXPECT_EQ(rep.published_slots, 0u);
	EXPECT_EQ(rep.live_sessions, 1u);
	beluga_kvc_stats s;
	ASSERT_EQ(beluga_kvc_get_stats(kv_, -1, &s), 0);
	EXPECT_EQ(s.reservations_reclaimed, 0u); // given back by its owner, not reclaimed
	EXPECT_EQ(get(11), -ENOENT);
}

TEST_P(Reserve, WriterComputedChecksum)
{
	beluga_kvc_reservation it[2] = {item(20), item(21)};
	int res[2];
	ASSERT_EQ(beluga_kvc_reserve(kv_, it, 2, res), 2);
	for (int i = 0; i < 2; i++) {
		fill_block(20 + i, static_cast<uint8_t *>(it[i].data), kPayload);
		it[i].sum = beluga_kvc_checksum(it[i].data, kPayload);
	}
	it[1].sum ^= 1; // a writer whose checksum does not match what it wrote
	ASSERT_EQ(beluga_kvc_commit(kv_, it, 2, BELUGA_KVC_COMMIT_CHECKSUM, res), 2);
	EXPECT_EQ(get(20), int(kPayload));
	// Readers that verify miss the mismatched block; it is never a hit.
	uint8_t key[1][32];
	make_key(21, key[0]);
	beluga_kvc_ref ref;
	int r;
	EXPECT_EQ(beluga_kvc_pin(kv_, key, 1, BELUGA_KVC_PIN_VERIFY, &ref, &r), 0);
	EXPECT_EQ(r, -ENOENT);
	EXPECT_EQ(get(21), -ENOENT);
	beluga_kvc_stats s;
	ASSERT_EQ(beluga_kvc_get_stats(kv_, -1, &s), 0);
	EXPECT_GE(s.checksum_failures, 1u);
}

TEST_P(Reserve, LargeBlocksOverCopyThreads)
{
	// Blocks of several 512 KiB pieces, checksummed by two threads at commit.
	constexpr size_t kBig = (1 << 20) + 4096 + 96;
	beluga_kvc_config c = config(opaque_fp(kBig));
	open(c, 2);
	std::vector<beluga_kvc_reservation> it = {item(30, kBig), item(31, kBig), item(32, 777)};
	std::vector<int> r(3);
	ASSERT_EQ(beluga_kvc_reserve(kv_, it.data(), 3, r.data()), 3);
	for (size_t i = 0; i < 3; i++)
		fill_block(30 + i, static_cast<uint8_t *>(it[i].data), it[i].len);
	ASSERT_EQ(beluga_kvc_commit(kv_, it.data(), 3, 0, r.data()), 3);
	EXPECT_EQ(get(30, kBig), int(kBig));
	EXPECT_EQ(get(31, kBig), int(kBig));
	EXPECT_EQ(get(32, kBig), 777);
	check(); // verify_data: every stored checksum matches its payload
}

TEST_P(Reserve, ObserverIsRefused)
{
	// (An observer never simulates: it writes nothing to flush.)
	beluga_kvc_attach_opts o = opts(0, BELUGA_KVC_COHERENT);
	o.flags = BELUGA_KVC_ATTACH_OBSERVE;
	beluga_kvc *obs = nullptr;
	ASSERT_EQ(beluga_kvc_attach(r_.base(), r_.size(), nullptr, &o, &obs), 0);
	beluga_kvc_reservation it = item(40);
	int res;
	EXPECT_EQ(beluga_kvc_reserve(obs, &it, 1, &res), -EPERM);
	EXPECT_EQ(beluga_kvc_commit(obs, &it, 1, 0, &res), -EPERM);
	EXPECT_EQ(beluga_kvc_abort(obs, &it, 1), -EPERM);
	beluga_kvc_detach(obs);
}

TEST_P(Reserve, CppRaii)
{
	beluga_kvc_detach(kv_);
	kv_ = nullptr;
	{
		auto cache = beluga::kvc::Cache::attach(r_.base(), r_.size(), cfg_.fingerprint);
		std::vector<beluga::kvc::Key> keys(3);
		for (uint64_t i = 0; i < 3; i++)
			make_key(50 + i, keys[i].data());
		{
			auto res = cache.reserve(keys, kPayload);
			ASSERT_EQ(res.size(), 3u);
			for (size_t i = 0; i < 3; i++) {
				EXPECT_EQ(res.result(i), 0);
				ASSERT_TRUE(res.reserved(i));
				fill_block(50 + i, static_cast<uint8_t *>(res.data(i)), res.len(i));
			}
			res.abort(2); // say the gather of this one failed
			EXPECT_FALSE(res.reserved(2));
			auto stored = res.commit();
			EXPECT_EQ(stored, (std::vector<int>{0, 0, -ENOENT}));
		}
		{
			auto res = cache.reserve(keys, kPayload);
			EXPECT_EQ(res.result(0), BELUGA_KVC_EXISTS);
			EXPECT_EQ(res.result(2), 0);
			EXPECT_EQ(cache.check_all().reserved_slots, 1u);
			beluga::kvc::Reservation moved = std::move(res);
			EXPECT_TRUE(moved.reserved(2));
		} // destroyed uncommitted: aborted
		EXPECT_EQ(cache.check_all().reserved_slots, 0u);
		EXPECT_EQ(cache.lookup_prefix(keys), 2u);
		std::vector<beluga::kvc::Key> none;
		EXPECT_EQ(cache.reserve(none, kPayload).size(), 0u);
	}
	kv_ = attach();
}

TEST_P(Reserve, CppCommitWithWriterSums)
{
	beluga_kvc_detach(kv_);
	kv_ = nullptr;
	{
		auto cache = beluga::kvc::Cache::attach(r_.base(), r_.size(), cfg_.fingerprint);
		std::vector<beluga::kvc::Key> keys(3);
		for (uint64_t i = 0; i < 3; i++)
			make_key(60 + i, keys[i].data());
		auto res = cache.reserve(keys, kPayload);
		std::vector<uint64_t> sums(3);
		for (size_t i = 0; i < 3; i++) {
			ASSERT_TRUE(res.reserved(i));
			fill_block(60 + i, static_cast<uint8_t *>(res.data(i)), res.len(i));
			sums[i] = beluga_kvc_checksum(res.data(i), res.len(i));
		}
		EXPECT_THROW(res.commit(std::span<const uint64_t>(sums.data(), 2)), std::invalid_argument);
		EXPECT_TRUE(res.reserved(0)); // a refused call commits nothing
		std::swap(sums[1], sums[2]);  // sums out of the items' order: both blocks are wrong
		EXPECT_EQ(res.commit(std::span<const uint64_t>(sums)), (std::vector<int>{0, 0, 0}));
		// Readers that verify see only the block whose sum matches.
		for (uint64_t i = 0; i < 3; i++)
			EXPECT_EQ(bool(cache.pin(keys[i], BELUGA_KVC_PIN_VERIFY)), i == 0) << "item " << i;
	}
	kv_ = attach();
}

INSTANTIATE_TEST_SUITE_P(Modes, Reserve,
			 ::testing::Values(uint32_t(BELUGA_KVC_COHERENT), uint32_t(BELUGA_KVC_NONCOHERENT),
					   uint32_t(BELUGA_KVC_SIMULATE)),
			 [](const auto &i) {
				 return std::string(i.param == BELUGA_KVC_COHERENT	 ? "Coherent"
						    : i.param == BELUGA_KVC_NONCOHERENT ? "Noncoherent"
											 : "Simulated");
			 });

// ---- A writer killed while its reservations are half-written. ----------

class ReserveCrash : public CrashTest {
protected:
	ReserveCrash() : CrashTest(kRegion, kPayload) {}
};

TEST_P(ReserveCrash, HalfWrittenSlotIsReclaimedNeverPublished)
{
	pid_t pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		beluga_kvc *kv = attach(1);
		// One block committed, then three reserved and half written.
		beluga_kvc_reservation it[4] = {item(0), item(1), item(2), item(3)};
		int res[4];
		if (beluga_kvc_reserve(kv, it, 1, res) != 1)
			_exit(2);
		fill_block(0, static_cast<uint8_t *>(it[0].data), kPayload);
		if (beluga_kvc_commit(kv, it, 1, 0, res) != 1)
			_exit(2);
		if (beluga_kvc_reserve(kv, it + 1, 3, res) != 3)
			_exit(2);
		for (int i = 1; i < 4; i++)
			fill_block(uint64_t(i), static_cast<uint8_t *>(it[i].data), kPayload / 2);
		raise(SIGKILL);
		_exit(3);
	}
	ASSERT_TRUE(killed(pid));
	beluga_kvc *kv = attach(1); // the host's next process reclaims at attach
	expect_reclaimed(kv, 3, 0);
	beluga_kvc_check_report rep;
	ASSERT_EQ(beluga_kvc_check(kv, 1, &rep), 0);
	EXPECT_EQ(rep.published_slots, 1u);
	uint8_t keys[4][32];
	for (int i = 0; i < 4; i++)
		make_key(uint64_t(i), keys[i]);
	EXPECT_EQ(beluga_kvc_lookup_prefix(kv, keys, 4), 1); // only the committed one
	// The keys and slots are usable again.
	beluga_kvc_reservation it[3] = {item(1), item(2), item(3)};
	int res[3];
	ASSERT_EQ(beluga_kvc_reserve(kv, it, 3, res), 3);
	for (int i = 0; i < 3; i++)
		fill_block(uint64_t(i + 1), static_cast<uint8_t *>(it[i].data), kPayload);
	ASSERT_EQ(beluga_kvc_commit(kv, it, 3, 0, res), 3);
	EXPECT_EQ(beluga_kvc_lookup_prefix(kv, keys, 4), 4);
	EXPECT_EQ(bkv::test::sim_violations(kv), 0u);
	beluga_kvc_detach(kv);
}

INSTANTIATE_TEST_SUITE_P(Modes, ReserveCrash, crash_modes(), crash_mode_name);

// ---- The simulation: another host reads what a commit published. -------

class ReserveSim : public ::testing::TestWithParam<const char *> {
protected:
	void SetUp() override
	{
		bkv::test::set_omit(nullptr);
		cfg_ = config(opaque_fp(kPayload), 2);
		ASSERT_EQ(beluga_kvc_format(r_.base(), r_.size(), &cfg_), 0);
		a_ = attach(0);
		b_ = attach(1);
	}
	void TearDown() override
	{
		bkv::test::set_omit(nullptr);
		beluga_kvc_detach(a_);
		beluga_kvc_detach(b_);
	}
	beluga_kvc *attach(uint32_t host)
	{
		return attach_checked(r_, cfg_, opts(host, BELUGA_KVC_SIMULATE));
	}
	// B reads block @i: found and intact.
	static ::testing::AssertionResult b_reads(beluga_kvc *b, uint64_t i)
	{
		uint8_t key[1][32];
		make_key(i, key[0]);
		GetResult g = get_block(b, i, kPayload);
		long prefix = beluga_kvc_lookup_prefix(b, key, 1);
		if (prefix != 1 || g.res != int(kPayload) || !g.intact)
			return ::testing::AssertionFailure()
			       << "B: block " << i << ": lookup " << prefix << ", get " << g.res;
		return ::testing::AssertionSuccess();
	}
	// B reads block 1 the moment A's index entry for it is in place (A's
	// publish hook, before A lets go of the slot), as test_sim.cpp does.
	static inline beluga_kvc *s_reader;
	static inline ::testing::AssertionResult s_early = ::testing::AssertionSuccess();
	static inline bool s_done;
	static void on_publish(int ev, int)
	{
		if (ev == bkv::test::published && s_reader && !s_done) {
			s_done = true;
			s_early = b_reads(s_reader, 1);
		}
	}
	// A stores blocks 1..3 by reserve/commit; B must find each one and
	// read it intact, while A publishes and afterwards.
	::testing::AssertionResult b_reads_a()
	{
		s_reader = b_;
		s_done = false;
		s_early = ::testing::AssertionFailure() << "A never published";
		bkv::test::set_hook(on_publish);
		auto r = store_and_read();
		bkv::test::set_hook(nullptr);
		s_reader = nullptr;
		if (!r)
			return r;
		return s_early << " (while A publishes)";
	}
	::testing::AssertionResult store_and_read()
	{
		beluga_kvc_reservation it[3] = {item(1), item(2), item(3)};
		int res[3];
		if (beluga_kvc_reserve(a_, it, 3, res) != 3)
			return ::testing::AssertionFailure() << "A could not reserve";
		for (int i = 0; i < 3; i++)
			fill_block(uint64_t(i + 1), static_cast<uint8_t *>(it[i].data), kPayload);
		if (beluga_kvc_commit(a_, it, 3, 0, res) != 3)
			return ::testing::AssertionFailure() << "A's commit failed";
		for (uint64_t i = 1; i <= 3; i++)
			if (auto r = b_reads(b_, i); !r)
				return r;
		return ::testing::AssertionSuccess();
	}
	ShmRegion r_{8 << 20};
	beluga_kvc_config cfg_;
	beluga_kvc *a_ = nullptr, *b_ = nullptr;
};

TEST_F(ReserveSim, OtherHostReadsWhatWasCommitted)
{
	EXPECT_TRUE(b_reads_a());
	EXPECT_EQ(bkv::test::sim_violations(a_), 0u);
	EXPECT_EQ(bkv::test::sim_violations(b_), 0u);
}

// The commit's own flushes, each dropped in turn: B must not get the block
// (a wrong block is never a hit: b_reads_a checks the content).
TEST_P(ReserveSim, OmittedFlushIsDetected)
{
	ASSERT_TRUE(bkv::test::set_omit(GetParam()));
	EXPECT_FALSE(b_reads_a()) << "omitting " << GetParam() << " went unnoticed";
	bkv::test::set_omit(nullptr);
}

INSTANTIATE_TEST_SUITE_P(Points, ReserveSim,
			 ::testing::Values("payload_wb", "desc_commit", "index_publish"),
			 [](const auto &i) { return std::string(i.param); });

} // namespace
