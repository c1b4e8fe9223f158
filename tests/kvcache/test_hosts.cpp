// SPDX-License-Identifier: Apache-2.0
// Several hosts: claiming a host index (duplicates refused, naming the
// holder), formatting exactly once, liveness by heartbeat counters (not
// clocks), a host that dies (its blocks stay readable, its pins expire), a
// host that reboots, and taking over a dead host's index.  Every host is a
// simulated one (its own stale copy of the region) with its own machine
// identity; the monotonic clock is frozen and the claim protocol's waits
// are replaced by a function that advances it and lets the test decide
// what the other hosts do meanwhile, so nothing depends on timing.
#include "kvc_util.hpp"

#include "kvcache_test.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace kvt;

// Every other test of this binary attaches several hosts without caring
// about the claim protocol's waits: make them instant.
const bool g_instant_waits = [] {
	bkv::test::set_wait([](uint64_t) {});
	return true;
}();

constexpr size_t kRegion = 8 << 20;
constexpr size_t kPayload = 16 * 1024;
constexpr uint32_t kLease = 1000; // ms; the clock is frozen anyway

std::string err() { return beluga_kvc_last_error(); }

class Hosts : public ::testing::Test {
protected:
	void SetUp() override
	{
		(void)g_instant_waits;
		bkv::test::set_omit(nullptr);
		bkv::test::set_mono(1000000);
		s_during = nullptr;
		s_depth = 0;
		s_waits = 0;
		bkv::test::set_wait(wait_fn);
		cfg_ = config(opaque_fp(kPayload), 3);
		cfg_.eviction = BELUGA_KVC_EVICT_NONE;
		ASSERT_EQ(beluga_kvc_format(r_.base(), r_.size(), &cfg_), 0);
	}
	void TearDown() override
	{
		for (beluga_kvc *kv : live_) {
			if (check_violations_) {
				EXPECT_EQ(bkv::test::sim_violations(kv), 0u);
			}
			beluga_kvc_detach(kv);
		}
		live_.clear();
		s_during = nullptr;
		bkv::test::set_identity(0, 0, nullptr);
		bkv::test::set_wait([](uint64_t) {});
		bkv::test::set_mono(0);
		bkv::test::set_realtime_skew(0);
		bkv::test::set_omit(nullptr);
	}

	// The claim protocol's waits: the clock moves on, and (not nested)
	// whatever the test wants other hosts to do meanwhile happens.
	static inline std::function<void()> s_during;
	static inline int s_depth = 0, s_waits = 0;
	static void wait_fn(uint64_t ms)
	{
		s_waits++;
		bkv::test::set_mono(bkv::test::mono() + ms);
		if (s_depth == 0 && s_during) {
			s_depth++;
			auto f = s_during;
			f();
			s_depth--;
		}
	}

	// Attach host index @host as machine @machine, boot @boot.
	beluga_kvc *attach(uint32_t host, uint64_t machine, uint64_t boot, const char *name,
			   int *rc = nullptr)
	{
		bkv::test::set_identity(machine, boot, name);
		auto o = opts(host, BELUGA_KVC_SIMULATE);
		o.lease_ms = kLease;
		o.nt_min_bytes = 1 << 30;
		beluga_kvc *kv = nullptr;
		int r = beluga_kvc_attach(r_.base(), r_.size(), &cfg_.fingerprint, &o, &kv);
		bkv::test::set_identity(0, 0, nullptr);
		if (rc)
			*rc = r;
		else
			EXPECT_EQ(r, 0) << err();
		if (!r)
			live_.push_back(kv);
		return r ? nullptr : kv;
	}
	void detach(beluga_kvc *&kv)
	{
		std::erase(live_, kv);
		beluga_kvc_detach(kv);
		kv = nullptr;
	}
	void crash(beluga_kvc *&kv)
	{
		std::erase(live_, kv);
		bkv::test::crash(kv);
		kv = nullptr;
	}
	static beluga_kvc_host_info host(beluga_kvc *kv, uint32_t h)
	{
		beluga_kvc_host_info hi{};
		EXPECT_EQ(beluga_kvc_get_host(kv, h, &hi), 0);
		return hi;
	}
	static uint64_t stat(beluga_kvc *kv, int h, uint64_t beluga_kvc_stats::*field)
	{
		beluga_kvc_stats s{};
		beluga_kvc_get_stats(kv, h, &s);
		return s.*field;
	}

	// Two claimants of index 1 at once: B starts claiming during A's first
	// window (B's copy of the region older than A's claim), or during A's
	// second one (after A wrote its claim).  Exactly one may hold it.
	::testing::AssertionResult concurrent_claims(bool b_first)
	{
		int ra = 99, rb = 99;
		beluga_kvc *a = nullptr, *b = nullptr;
		int window = 0;
		if (b_first) {
			s_during = [&] {
				if (++window == 1) // B's first window: its copy predates A's claim
					a = attach(1, 11, 101, "host-a", &ra);
			};
			b = attach(1, 12, 102, "host-b", &rb);
		} else {
			s_during = [&] {
				if (++window == 2) // A's second window: its claim is written
					b = attach(1, 12, 102, "host-b", &rb);
			};
			a = attach(1, 11, 101, "host-a", &ra);
		}
		s_during = nullptr;
		if ((ra == 0) + (rb == 0) != 1)
			return ::testing::AssertionFailure()
			       << "A " << ra << ", B " << rb << " (" << err() << ")";
		// The loser's refusal names the winner.
		if (err().find(ra == 0 ? "host-a" : "host-b") == std::string::npos ||
		    (ra != -EADDRINUSE && rb != -EADDRINUSE))
			return ::testing::AssertionFailure() << "message: " << err();
		(void)a;
		(void)b;
		return ::testing::AssertionSuccess();
	}

	// B holds index 1 and is alive (beats while C watches): C may not take it over.
	::testing::AssertionResult takeover_refused_while_alive()
	{
		beluga_kvc *b = attach(1, 12, 102, "host-b");
		beluga_kvc *c = attach(2, 13, 103, "host-c");
		if (!b || !c)
			return ::testing::AssertionFailure() << "attach";
		s_during = [&] { bkv::test::beat(b); };
		int r = beluga_kvc_take_over(c, 1, 0);
		s_during = nullptr;
		if (r != -EBUSY || err().find("alive") == std::string::npos)
			return ::testing::AssertionFailure() << "take over: " << r << " " << err();
		return ::testing::AssertionSuccess();
	}

	// C takes over crashed B's index; B reboots during C's claim window:
	// exactly one of them may end up holding index 1.
	::testing::AssertionResult takeover_then_return()
	{
		beluga_kvc *b = attach(1, 12, 102, "host-b");
		beluga_kvc *c = attach(2, 13, 103, "host-c");
		if (!b || !c || put_block(b, 5, kPayload) != 0)
			return ::testing::AssertionFailure() << "setup";
		crash(b);
		beluga_kvc *back = nullptr;
		int rback = 99, window = 0;
		s_during = [&] {
			if (++window == 2) // after C wrote its claim
				back = attach(1, 12, 104, "host-b", &rback);
		};
		int r = beluga_kvc_take_over(c, 1, 0);
		s_during = nullptr;
		if ((r >= 0) + (rback == 0) != 1)
			return ::testing::AssertionFailure() << "take over " << r << ", B back " << rback;
		if (rback == 0)
			return ::testing::AssertionSuccess() << "B won";
		if (err().find("host-c") == std::string::npos)
			return ::testing::AssertionFailure() << "B refused without naming C: " << err();
		(void)back;
		return ::testing::AssertionSuccess();
	}

	ShmRegion r_{kRegion};
	beluga_kvc_config cfg_;
	std::vector<beluga_kvc *> live_;
	bool check_violations_ = true;
};

TEST_F(Hosts, DuplicateIndexIsRefusedNamingTheHolder)
{
	beluga_kvc *a = attach(1, 11, 101, "host-a");
	ASSERT_TRUE(a);
	// A is alive: its heartbeat moves while B watches.
	s_during = [&] { bkv::test::beat(a); };
	int rc;
	EXPECT_FALSE(attach(1, 12, 102, "host-b", &rc));
	EXPECT_EQ(rc, -EADDRINUSE);
	EXPECT_NE(err().find("host-a"), std::string::npos) << err();
	EXPECT_NE(err().find("alive"), std::string::npos) << err();
	// A silent holder is refused too (it may only be taken over).
	s_during = nullptr;
	EXPECT_FALSE(attach(1, 12, 102, "host-b", &rc));
	EXPECT_EQ(rc, -EADDRINUSE);
	EXPECT_NE(err().find("did not move"), std::string::npos) << err();
	EXPECT_NE(err().find("takeover"), std::string::npos) << err();
	// A keeps its index and works.
	EXPECT_EQ(put_block(a, 1, kPayload), 0);
	EXPECT_EQ(host(a, 1).state, uint32_t(BELUGA_KVC_HOST_SELF));
	EXPECT_STREQ(host(a, 1).name, "host-a");
	// Another index is no problem, and attaching a free one waits twice.
	s_waits = 0;
	EXPECT_TRUE(attach(2, 12, 102, "host-b"));
	EXPECT_EQ(s_waits, 2);
}

TEST_F(Hosts, ConcurrentClaimsLeaveOneHolder)
{
	EXPECT_TRUE(concurrent_claims(true));
}

TEST_F(Hosts, ConcurrentClaimsLeaveOneHolderAfterTheWrite)
{
	EXPECT_TRUE(concurrent_claims(false));
}

TEST_F(Hosts, ProcessesOfOneHostJoinWithoutWaiting)
{
	// Coherent handles: two processes of one host (same boot) share its index.
	bkv::test::set_identity(11, 101, "host-a");
	auto o = opts(1, BELUGA_KVC_COHERENT);
	o.lease_ms = kLease;
	beluga_kvc *a1, *a2;
	ASSERT_EQ(beluga_kvc_attach(r_.base(), r_.size(), &cfg_.fingerprint, &o, &a1), 0) << err();
	s_waits = 0;
	ASSERT_EQ(beluga_kvc_attach(r_.base(), r_.size(), &cfg_.fingerprint, &o, &a2), 0) << err();
	EXPECT_EQ(s_waits, 0);
	EXPECT_EQ(host(a2, 1).sessions, 2u);
	beluga_kvc_detach(a1);
	beluga_kvc_detach(a2);
	bkv::test::set_identity(0, 0, nullptr);
}

TEST_F(Hosts, LivenessIsJudgedByHeartbeatsNotClocks)
{
	beluga_kvc *a = attach(0, 11, 101, "host-a");
	beluga_kvc *b = attach(1, 12, 102, "host-b");
	ASSERT_TRUE(a && b);
	beluga_kvc_info info;
	beluga_kvc_get_info(a, &info);
	for (uint64_t i = 0; i < info.slots_per_host; i++)
		ASSERT_EQ(put_block(a, i, kPayload), 0) << i;
	// B's clock is an hour slow, A's an hour fast: B pins A's block 0.
	uint8_t key[1][32];
	make_key(0, key[0]);
	beluga_kvc_ref ref;
	int res;
	bkv::test::set_realtime_skew(-3600ll * 1000000000);
	ASSERT_EQ(beluga_kvc_pin(b, key, 1, 0, &ref, &res), 1);
	bkv::test::set_realtime_skew(3600ll * 1000000000);
	// A removes it and needs a slot: the pinned one must not be reused,
	// whatever the clocks say (with leases on CLOCK_REALTIME, A would
	// have found B's lease an hour past and reused it).
	ASSERT_EQ(beluga_kvc_remove(a, key, 1, &res), 1);
	EXPECT_EQ(put_block(a, 100000, kPayload), -ENOSPC);
	EXPECT_EQ(host(a, 1).state, uint32_t(BELUGA_KVC_HOST_SILENT)); // not seen moving yet
	// Time passes (A's own monotonic clock), B beats: still alive, still pinned.
	for (int i = 0; i < 5; i++) {
		bkv::test::set_mono(bkv::test::mono() + kLease / 2);
		bkv::test::beat(b);
		EXPECT_EQ(put_block(a, 100000, kPayload), -ENOSPC) << i;
		EXPECT_EQ(host(a, 1).state, uint32_t(BELUGA_KVC_HOST_ALIVE)) << i;
	}
	EXPECT_GT(host(a, 1).heartbeat, 5u);
	// B dies holding the pin: A honours it until it has watched B's
	// heartbeat stand still for longer than B's lease.
	crash(b);
	bkv::test::set_mono(bkv::test::mono() + kLease / 2);
	EXPECT_EQ(put_block(a, 100000, kPayload), -ENOSPC);
	EXPECT_EQ(host(a, 1).observed_ms, kLease / 2);
	bkv::test::set_mono(bkv::test::mono() + kLease / 2 + 1);
	EXPECT_EQ(host(a, 1).state, uint32_t(BELUGA_KVC_HOST_DEAD));
	EXPECT_EQ(put_block(a, 100000, kPayload), 0) << err();
	EXPECT_EQ(host(a, 1).sessions, 0u); // its session counts no more
}

TEST_F(Hosts, DeadHostsBlocksStayReadableAndItRebootsToReclaim)
{
	beluga_kvc *a = attach(0, 11, 101, "host-a");
	ASSERT_TRUE(a);
	// Host B, in a child: stores 3 blocks, then dies in the middle of the 4th.
	pid_t pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		bkv::test::set_identity(12, 102, "host-b");
		auto o = opts(1, BELUGA_KVC_SIMULATE);
		o.lease_ms = kLease;
		o.nt_min_bytes = 1 << 30;
		beluga_kvc *b;
		if (beluga_kvc_attach(r_.base(), r_.size(), &cfg_.fingerprint, &o, &b))
			_exit(3);
		for (int i = 0; i < 3; i++)
			if (put_block(b, 10 + i, kPayload))
				_exit(4);
		bkv::test::set_hook([](int ev, int) {
			if (ev == bkv::test::write_begin) // reserved, not written
				raise(SIGKILL);
		});
		put_block(b, 13, kPayload);
		_exit(5);
	}
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	ASSERT_TRUE(WIFSIGNALED(st)) << st;
	// A reads B's published blocks byte for byte; never the torn one.
	for (int i = 0; i < 3; i++)
		EXPECT_TRUE(reads_back(a, 10 + i, kPayload)) << i;
	EXPECT_FALSE(reads_back(a, 13, kPayload));
	uint8_t key[1][32];
	make_key(13, key[0]);
	EXPECT_EQ(beluga_kvc_lookup_prefix(a, key, 1), 0);
	// B's heartbeat stands still: after its lease A judges it dead.
	EXPECT_EQ(host(a, 1).state, uint32_t(BELUGA_KVC_HOST_SILENT));
	bkv::test::set_mono(bkv::test::mono() + kLease + 1);
	EXPECT_EQ(host(a, 1).state, uint32_t(BELUGA_KVC_HOST_DEAD));
	EXPECT_EQ(put_block(a, 1, kPayload), 0);
	// B reboots (same machine, new boot): it re-attaches at once and
	// reclaims what its previous boot left half-done.
	s_waits = 0;
	beluga_kvc *b = attach(1, 12, 202, "host-b");
	ASSERT_TRUE(b);
	EXPECT_EQ(s_waits, 0);
	EXPECT_EQ(stat(b, 1, &beluga_kvc_stats::sessions_reclaimed), 1u);
	EXPECT_EQ(stat(b, 1, &beluga_kvc_stats::reservations_reclaimed), 1u);
	beluga_kvc_eviction ev;
	ASSERT_EQ(beluga_kvc_get_eviction(b, 1, &ev), 0);
	EXPECT_EQ(ev.used_blocks, 3u);
	EXPECT_EQ(put_block(b, 13, kPayload), 0);
	for (int i = 0; i < 4; i++)
		EXPECT_TRUE(reads_back(a, 10 + i, kPayload)) << i;
	bkv::test::beat(b);
	EXPECT_EQ(host(a, 1).state, uint32_t(BELUGA_KVC_HOST_ALIVE));
	beluga_kvc_check_report rep;
	ASSERT_EQ(beluga_kvc_check(b, 1, &rep), 0);
	EXPECT_EQ(rep.errors, 0u);
}

TEST_F(Hosts, DeadHostIsTakenOverByCommand)
{
	beluga_kvc *a = attach(0, 11, 101, "host-a");
	ASSERT_TRUE(a);
	EXPECT_TRUE(takeover_refused_while_alive());
	beluga_kvc *b = nullptr, *c = nullptr;
	for (beluga_kvc *kv : live_) {
		beluga_kvc_info i;
		beluga_kvc_get_info(kv, &i);
		(i.host_id == 1 ? b : i.host_id == 2 ? c : a) = kv;
	}
	ASSERT_TRUE(b && c);
	ASSERT_EQ(put_block(b, 20, kPayload), 0);
	ASSERT_EQ(put_block(b, 21, kPayload), 0);
	// B pins a block of A and dies.
	ASSERT_EQ(put_block(a, 1, kPayload), 0);
	uint8_t key[1][32];
	make_key(1, key[0]);
	beluga_kvc_ref ref;
	int res;
	ASSERT_EQ(beluga_kvc_pin(b, key, 1, 0, &ref, &res), 1);
	crash(b);
	EXPECT_EQ(beluga_kvc_take_over(c, 2, 0), -EINVAL); // its own
	EXPECT_EQ(beluga_kvc_take_over(c, 3, 0), -EINVAL);
	int n = beluga_kvc_take_over(c, 1, 0);
	EXPECT_EQ(n, 1) << err();
	// B's blocks stay readable by everyone; its pin went.
	EXPECT_TRUE(reads_back(a, 20, kPayload));
	EXPECT_TRUE(reads_back(c, 21, kPayload));
	beluga_kvc_check_report rep;
	ASSERT_EQ(beluga_kvc_check(a, 0, &rep), 0);
	EXPECT_EQ(rep.held_pins, 0u);
	EXPECT_EQ(rep.dead_sessions, 0u);
	beluga_kvc_host_info hi = host(a, 1);
	EXPECT_EQ(hi.served_by, 2u);
	EXPECT_STREQ(hi.name, "host-c");
	// C's machine now serves index 1: it attaches to it at once and evicts
	// and removes B's blocks there.
	s_waits = 0;
	beluga_kvc *c1 = attach(1, 13, 103, "host-c");
	ASSERT_TRUE(c1);
	EXPECT_EQ(s_waits, 0);
	make_key(20, key[0]);
	EXPECT_EQ(beluga_kvc_remove(c1, key, 1, &res), 1);
	EXPECT_EQ(beluga_kvc_evict(c1, 1), 1);
	EXPECT_EQ(put_block(c1, 22, kPayload), 0);
	EXPECT_TRUE(reads_back(a, 22, kPayload));
	// B comes back: index 1 is C's now.
	int rc;
	EXPECT_FALSE(attach(1, 12, 105, "host-b", &rc));
	EXPECT_EQ(rc, -EADDRINUSE);
	EXPECT_NE(err().find("host-c"), std::string::npos) << err();
	// Declared dead and released instead: a replacement machine claims it.
	detach(c1);
	bkv::test::set_mono(bkv::test::mono() + 10 * kLease);
	EXPECT_EQ(beluga_kvc_take_over(a, 1, BELUGA_KVC_TAKEOVER_RELEASE), 0) << err();
	EXPECT_EQ(host(a, 1).state, uint32_t(BELUGA_KVC_HOST_FREE));
	EXPECT_TRUE(attach(1, 14, 106, "host-d"));
	EXPECT_TRUE(reads_back(a, 22, kPayload));
}

TEST_F(Hosts, ATakenOverHostStopsWriting)
{
	beluga_kvc *a = attach(0, 11, 101, "host-a");
	beluga_kvc *c = attach(2, 13, 103, "host-c");
	ASSERT_TRUE(a && c);
	ASSERT_EQ(put_block(a, 1, kPayload), 0);
	// A stalls (no heartbeat) for longer than its lease: C takes it over.
	ASSERT_EQ(beluga_kvc_take_over(c, 0, 0), 1) << err(); // A's session
	// A wakes up: its next heartbeat finds the claim gone; it writes no more.
	bkv::test::set_mono(bkv::test::mono() + kLease);
	bkv::test::beat(a);
	std::vector<uint8_t> buf(kPayload);
	beluga_kvc_put p{};
	make_key(2, p.key);
	p.data = buf.data();
	p.len = kPayload;
	int res;
	EXPECT_EQ(beluga_kvc_put_batch(a, &p, 1, &res), -ESTALE);
	EXPECT_NE(err().find("claimed by another host"), std::string::npos) << err();
	EXPECT_TRUE(reads_back(c, 1, kPayload));
	check_violations_ = false; // A's stale lines are the point here
}

TEST_F(Hosts, ObserverSeesEveryHost)
{
	beluga_kvc *a = attach(0, 11, 101, "host-a");
	ASSERT_TRUE(a);
	ASSERT_EQ(put_block(a, 1, kPayload), 0);
	auto o = opts(0, BELUGA_KVC_NONCOHERENT);
	o.flags = BELUGA_KVC_ATTACH_OBSERVE;
	beluga_kvc *obs;
	ASSERT_EQ(beluga_kvc_attach(r_.base(), r_.size(), nullptr, &o, &obs), 0);
	beluga_kvc_host_info hi = host(obs, 0);
	EXPECT_EQ(hi.state, uint32_t(BELUGA_KVC_HOST_SILENT));
	EXPECT_EQ(hi.machine_id, 11u);
	EXPECT_EQ(hi.sessions, 1u);
	EXPECT_EQ(hi.used_blocks, 1u);
	EXPECT_EQ(hi.lease_ms, kLease);
	bkv::test::set_mono(bkv::test::mono() + 10);
	bkv::test::beat(a);
	hi = host(obs, 0);
	EXPECT_EQ(hi.state, uint32_t(BELUGA_KVC_HOST_ALIVE));
	EXPECT_EQ(hi.observed_ms, 0u);
	EXPECT_EQ(host(obs, 1).state, uint32_t(BELUGA_KVC_HOST_FREE));
	EXPECT_EQ(beluga_kvc_take_over(obs, 1, 0), -EPERM);
	EXPECT_EQ(beluga_kvc_get_host(obs, 3, &hi), -EINVAL);
	beluga_kvc_detach(obs);
}

// ---- Formatting and attaching while another host formats. ----

TEST(HostFormat, FormatRaceEndsWithOneFormat)
{
	ShmRegion r(kRegion);
	beluga_kvc_config c = config(opaque_fp(kPayload), 2);
	static std::atomic<int> formats;
	formats = 0;
	bkv::test::set_hook([](int ev, int) {
		if (ev == bkv::test::formatted)
			formats++;
	});
	constexpr int kThreads = 6;
	std::vector<int> rc(kThreads, 99);
	std::atomic<bool> go{false};
	std::vector<std::thread> t;
	for (int i = 0; i < kThreads; i++)
		t.emplace_back([&, i] {
			while (!go.load())
				;
			rc[size_t(i)] = beluga_kvc_format_once(r.base(), r.size(), &c);
		});
	// One that only attaches, waiting (bounded) for the cache.
	int attached = 99;
	t.emplace_back([&] {
		while (!go.load())
			;
		auto o = opts(1, BELUGA_KVC_COHERENT);
		o.ready_wait_ms = 20000;
		beluga_kvc *kv = nullptr;
		attached = beluga_kvc_attach(r.base(), r.size(), &c.fingerprint, &o, &kv);
		beluga_kvc_detach(kv);
	});
	go = true;
	for (auto &th : t)
		th.join();
	bkv::test::set_hook(nullptr);
	EXPECT_EQ(formats.load(), 1);
	EXPECT_EQ(std::count(rc.begin(), rc.end(), 0), 1);
	EXPECT_EQ(std::count(rc.begin(), rc.end(), BELUGA_KVC_EXISTS), kThreads - 1);
	EXPECT_EQ(attached, 0) << err();
	EXPECT_EQ(beluga_kvc_format_once(r.base(), r.size(), &c), BELUGA_KVC_EXISTS);
}

TEST(HostFormat, FormatRaceBetweenProcesses)
{
	ShmRegion r(kRegion);
	beluga_kvc_config c = config(opaque_fp(kPayload), 2);
	int p[2];
	ASSERT_EQ(pipe(p), 0);
	std::vector<pid_t> kids;
	for (int i = 0; i < 2; i++) {
		pid_t pid = fork();
		ASSERT_GE(pid, 0);
		if (pid == 0) {
			char go;
			if (read(p[0], &go, 1) != 1) // both start at once
				_exit(9);
			int rc = beluga_kvc_format_once(r.base(), r.size(), &c);
			_exit(rc == 0 ? 0 : rc == BELUGA_KVC_EXISTS ? 1 : 2);
		}
		kids.push_back(pid);
	}
	ASSERT_EQ(write(p[1], "gg", 2), 2);
	int formatted = 0, existed = 0;
	for (pid_t k : kids) {
		int st;
		ASSERT_EQ(waitpid(k, &st, 0), k);
		ASSERT_TRUE(WIFEXITED(st));
		formatted += WEXITSTATUS(st) == 0;
		existed += WEXITSTATUS(st) == 1;
	}
	close(p[0]);
	close(p[1]);
	EXPECT_EQ(formatted, 1);
	EXPECT_EQ(existed, 1);
	beluga_kvc *kv;
	auto o = opts(0, BELUGA_KVC_COHERENT);
	EXPECT_EQ(beluga_kvc_attach(r.base(), r.size(), &c.fingerprint, &o, &kv), 0) << err();
	beluga_kvc_detach(kv);
}

TEST(HostFormat, AWaiterNeverActsOnAHalfWrittenHeader)
{
	ShmRegion r(kRegion);
	beluga_kvc_config c = config(opaque_fp(kPayload), 2);
	// A complete cache, to take a superblock from.
	ShmRegion full(kRegion);
	ASSERT_EQ(beluga_kvc_format(full.base(), full.size(), &c), 0);
	// Half of the superblock written, no ready word: waiters wait (here
	// for a bounded 30 ms), write nothing, and give up with ENOTREADY.
	std::memcpy(r.bytes(), full.bytes(), 2048);
	std::vector<uint8_t> before(r.bytes(), r.bytes() + 3 * 4096 + 4096 * 8);
	auto o = opts(1, BELUGA_KVC_COHERENT);
	o.ready_wait_ms = 30;
	beluga_kvc *kv = nullptr;
	EXPECT_EQ(beluga_kvc_attach(r.base(), r.size(), &c.fingerprint, &o, &kv),
		  -BELUGA_KVC_ENOTREADY);
	EXPECT_NE(err().find("being formatted"), std::string::npos) << err();
	EXPECT_EQ(std::memcmp(before.data(), r.bytes(), before.size()), 0);
	// While a format is half done (from inside it), a waiter with no time
	// left refuses; one that waits gets the complete cache.
	static beluga_kvc_config *s_cfg;
	static ShmRegion *s_r;
	static int s_mid;
	s_cfg = &c;
	s_r = &r;
	s_mid = 99;
	bkv::test::set_hook([](int ev, int) {
		if (ev != bkv::test::format_half)
			return;
		auto o2 = opts(1, BELUGA_KVC_COHERENT);
		beluga_kvc *k = nullptr;
		s_mid = beluga_kvc_attach(s_r->base(), s_r->size(), &s_cfg->fingerprint, &o2, &k);
		beluga_kvc_detach(k);
	});
	std::memset(r.bytes(), 0, 8192);
	int waited = 99;
	std::atomic<bool> started{false};
	std::thread waiter([&] {
		auto o3 = opts(1, BELUGA_KVC_COHERENT);
		o3.ready_wait_ms = 20000;
		beluga_kvc *k = nullptr;
		started = true;
		waited = beluga_kvc_attach(r.base(), r.size(), &c.fingerprint, &o3, &k);
		beluga_kvc_info info{};
		if (k)
			beluga_kvc_get_info(k, &info);
		if (!waited && info.max_hosts != 2)
			waited = -1000;
		beluga_kvc_detach(k);
	});
	while (!started)
		;
	ASSERT_EQ(beluga_kvc_format(r.base(), r.size(), &c), 0);
	waiter.join();
	bkv::test::set_hook(nullptr);
	EXPECT_EQ(s_mid, -BELUGA_KVC_ENOTREADY);
	EXPECT_EQ(waited, 0) << err();
	// A torn header under a ready word is damage, not a format in progress.
	r.bytes()[300] ^= 1;
	o.ready_wait_ms = 20000;
	EXPECT_EQ(beluga_kvc_attach(r.base(), r.size(), &c.fingerprint, &o, &kv),
		  -BELUGA_KVC_EFORMAT);
}

TEST(HostFormat, OlderLibraryIsRefused)
{
	ShmRegion r(kRegion);
	beluga_kvc_config c = config(opaque_fp(kPayload), 2);
	ASSERT_EQ(beluga_kvc_format(r.base(), r.size(), &c), 0);
	auto reseal = [&] {
		uint64_t sum = beluga_kvc_checksum(r.bytes(), 4080);
		std::memcpy(r.bytes() + 4080, &sum, 8);
	};
	auto o = opts(0, BELUGA_KVC_COHERENT);
	beluga_kvc *kv = nullptr;
	uint32_t minor = BELUGA_KVC_FORMAT_MINOR + 1;
	std::memcpy(r.bytes() + 12, &minor, 4);
	reseal();
	EXPECT_EQ(beluga_kvc_attach(r.base(), r.size(), &c.fingerprint, &o, &kv),
		  -BELUGA_KVC_EVERSION);
	EXPECT_NE(err().find("newer than this library"), std::string::npos) << err();
	minor = 0;
	uint32_t major = 1; // format 1.x: leases on CLOCK_REALTIME, no claims
	std::memcpy(r.bytes() + 12, &minor, 4);
	std::memcpy(r.bytes() + 8, &major, 4);
	reseal();
	EXPECT_EQ(beluga_kvc_attach(r.base(), r.size(), &c.fingerprint, &o, &kv),
		  -BELUGA_KVC_EVERSION);
	major = BELUGA_KVC_FORMAT_MAJOR;
	std::memcpy(r.bytes() + 8, &major, 4);
	reseal();
	EXPECT_EQ(beluga_kvc_attach(r.base(), r.size(), &c.fingerprint, &o, &kv), 0) << err();
	beluga_kvc_detach(kv);
}

// ---- The new flush/invalidate points, each dropped in turn. ----

class HostOmit : public Hosts, public ::testing::WithParamInterface<const char *> {};

TEST_P(HostOmit, IsDetected)
{
	std::string p = GetParam();
	auto scenario = [&]() -> ::testing::AssertionResult {
		if (p == "claim_flush")
			return concurrent_claims(false);
		if (p == "inval_claim")
			return concurrent_claims(true);
		if (p == "beat_flush")
			return takeover_refused_while_alive();
		return takeover_then_return();
	};
	ASSERT_TRUE(bkv::test::set_omit(p.c_str()));
	EXPECT_FALSE(scenario()) << "omitting " << p << " went unnoticed";
	check_violations_ = false; // with a point omitted, stale lines are expected
}

INSTANTIATE_TEST_SUITE_P(Points, HostOmit,
			 ::testing::Values("claim_flush", "inval_claim", "beat_flush",
					   "takeover_flush"),
			 [](const auto &i) { return std::string(i.param); });

// The same scenarios with every point in place (the baseline of the above).
TEST_F(Hosts, ClaimScenariosPassWithEveryPoint)
{
	EXPECT_TRUE(concurrent_claims(false));
	EXPECT_TRUE(attach(2, 13, 103, "host-c"));
}

TEST_F(Hosts, TakeoverScenariosPassWithEveryPoint)
{
	EXPECT_TRUE(takeover_refused_while_alive());
}

TEST_F(Hosts, TakeoverRaceScenarioPassesWithEveryPoint)
{
	::testing::AssertionResult r = takeover_then_return();
	EXPECT_TRUE(r);
	EXPECT_STRNE(r.message(), "B won");
}

} // namespace
