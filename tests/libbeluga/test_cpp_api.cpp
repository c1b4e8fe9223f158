// SPDX-License-Identifier: Apache-2.0
// Description: GoogleTest suite of the C++ API, run against both backends
// (parametrized: .../user and .../kernel; the kernel instances skip where
// /dev/beluga is absent and run in the VM).  Covers sharing between
// processes (fork + exec), passing fds, permissions as uid 65534, cleanup,
// placement and the copy primitives on region memory.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <cstring>
#include <set>
#include <type_traits>

#include <gtest/gtest.h>

#include "backend_env.hpp"

using beluga::Error;
using beluga::Prot;
using namespace beluga_test;

namespace {

constexpr std::uint64_t MiB = 1ULL << 20;

static_assert(!std::is_copy_constructible_v<beluga::Pool>);
static_assert(!std::is_copy_assignable_v<beluga::Region>);
static_assert(!std::is_copy_constructible_v<beluga::Mapping>);
static_assert(std::is_nothrow_move_constructible_v<beluga::Region>);
static_assert(std::is_nothrow_move_assignable_v<beluga::Mapping>);

class BackendTest : public ::testing::TestWithParam<std::string> {
protected:
	void SetUp() override
	{
		if (GetParam() == "kernel" && !have_driver())
			GTEST_SKIP() << "no /dev/beluga here: the kernel backend runs in the VM suite";
		dir_ = "/dev/shm/" + unique_name("beluga-gtest");
		pool_.emplace(beluga::Pool::open(options()));
		baseline_ = pool_->info().nr_regions;
	}

	void TearDown() override
	{
		if (!pool_)
			return;
		for (const auto &name : names_)
			if (pool_->try_stat_region(name))
				pool_->destroy_region(name);
		// Cleanup: every region this test made is gone again.
		EXPECT_EQ(pool_->info().nr_regions, baseline_);
		if (GetParam() == "user") {
			EXPECT_EQ(dir_entries(dir_), 0);
			pool_.reset();
			remove_dir(dir_);
		}
	}

	beluga::PoolOptions options() const { return pool_options(GetParam(), dir_); }

	std::string name()
	{
		names_.push_back(unique_name("gt"));
		return names_.back();
	}

	beluga::Pool &pool() { return *pool_; }

	std::string dir_;
	std::optional<beluga::Pool> pool_;
	std::vector<std::string> names_;
	std::uint32_t baseline_ = 0;
};

TEST_P(BackendTest, CreateMapAndReopenShareBytes)
{
	auto n = name();
	auto r = pool().create_region(n, 4 * MiB, { .mode = 0640 });
	EXPECT_EQ(r.name(), n);
	EXPECT_EQ(r.size(), 4 * MiB);
	auto w = r.map(Prot::ReadWrite);
	EXPECT_EQ(reinterpret_cast<std::uintptr_t>(w.data()) % (2 * MiB), 0u);
	std::memset(w.data(), 0x42, w.size());

	auto o = pool().open_region(n, true);
	EXPECT_EQ(o.id(), r.id());
	auto ro = o.map(Prot::Read, 2 * MiB);
	EXPECT_EQ(ro.size(), 2 * MiB);
	EXPECT_EQ(ro.offset(), 2 * MiB);
	EXPECT_EQ(static_cast<unsigned char>(ro.bytes()[12345]), 0x42);

	auto i = o.info();
	EXPECT_EQ(i.mode, 0640u);
	EXPECT_EQ(i.uid, geteuid());
	EXPECT_EQ(i.nr_chunks, 2u);
	EXPECT_EQ(i.source_kind, static_cast<std::uint32_t>(BELUGA_SOURCE_KIND_NODE));
	EXPECT_STREQ(i.name, n.c_str());
}

TEST_P(BackendTest, NewRegionsAreZeroed)
{
	auto r = pool().create_region(name(), 2 * MiB);
	auto m = r.map(Prot::Read);
	auto b = m.bytes();
	EXPECT_TRUE(std::all_of(b.begin(), b.end(), [](std::byte x) { return x == std::byte{ 0 }; }));
}

TEST_P(BackendTest, ErrorsCarryErrnoAndAdvice)
{
	auto n = name();
	auto r = pool().create_region(n, 2 * MiB);
	try {
		pool().create_region(n, 2 * MiB);
		FAIL() << "a second create of the same name succeeded";
	} catch (const Error &e) {
		EXPECT_EQ(e.code(), EEXIST);
		EXPECT_NE(std::string(e.what()).find("already exists"), std::string::npos);
		EXPECT_NE(std::string(e.what()).find(n), std::string::npos);
	}
	auto code = [&](auto &&fn) {
		try {
			fn();
		} catch (const Error &e) {
			return e.code();
		}
		return 0;
	};
	EXPECT_EQ(code([&] { pool().open_region(name() + "-missing"); }), ENOENT);
	EXPECT_EQ(code([&] { pool().create_region("bad/name", 2 * MiB); }), EINVAL);
	EXPECT_EQ(code([&] { pool().create_region(name(), 3 * MiB); }), EINVAL);
	EXPECT_EQ(code([&] { pool().create_region(name(), 2 * MiB, { .mode = 01000 }); }), EINVAL);
	EXPECT_EQ(code([&] { r.map(Prot::Read, 2 * MiB); }), ENXIO);
	EXPECT_EQ(code([&] { pool().open_region(n, true).map(Prot::ReadWrite); }), EACCES);
	EXPECT_EQ(code([&] { pool().destroy_region(name() + "-missing"); }), ENOENT);
	EXPECT_FALSE(pool().try_stat_region(name() + "-missing"));
}

TEST_P(BackendTest, ListIsSortedAndComplete)
{
	std::vector<beluga::Region> made;
	std::set<std::string> want;

	for (int i = 0; i < 3; i++) {
		want.insert(name());
		made.push_back(pool().create_region(names_.back(), 2 * MiB));
	}
	auto list = pool().list_regions();
	std::set<std::string> got;
	for (std::size_t i = 0; i < list.size(); i++) {
		got.insert(list[i].name);
		if (i) {
			EXPECT_LT(list[i - 1].id, list[i].id);
		}
	}
	for (const auto &w : want)
		EXPECT_TRUE(got.count(w)) << w;
	EXPECT_EQ(pool().info().nr_regions, baseline_ + 3);
}

TEST_P(BackendTest, DestroyRemovesTheNameButNotTheMemory)
{
	auto n = name();
	auto r = pool().create_region(n, 2 * MiB);
	auto m = r.map();
	std::memset(m.data(), 9, 4096);
	pool().destroy_region(n);
	EXPECT_FALSE(pool().try_stat_region(n));
	EXPECT_EQ(static_cast<char *>(m.data())[4095], 9);
	EXPECT_TRUE(r.info().flags & BELUGA_INFO_DESTROYED);
	// the name is free again at once
	auto again = pool().create_region(n, 2 * MiB);
	EXPECT_NE(again.id(), r.id());
}

// Ephemeral regions: no name, gone with the last handle.  The driver lists
// them (flagged); the user backend cannot (an unlinked file has no entry).
TEST_P(BackendTest, EphemeralRegionsHaveNoName)
{
	auto count = [&] {
		std::size_t named = 0, ephemeral = 0;
		for (const auto &i : pool().list_regions()) {
			named += i.name[0] != 0;
			ephemeral += (i.flags & BELUGA_INFO_EPHEMERAL) != 0;
		}
		return std::pair{ named, ephemeral };
	};
	auto before = count();
	{
		auto r = pool().create_region("", 2 * MiB, { .ephemeral = true });
		EXPECT_EQ(r.name(), "");
		EXPECT_TRUE(r.info().flags & BELUGA_INFO_EPHEMERAL);
		auto during = count();
		EXPECT_EQ(during.first, before.first);
		EXPECT_EQ(during.second, before.second + (GetParam() == "kernel" ? 1 : 0));
		auto m = r.map();
		std::memset(m.data(), 1, m.size());
	}
	EXPECT_EQ(count(), before) << "freed with its last handle";
}

TEST_P(BackendTest, ChunksFollowTheRequestedSources)
{
	auto sources = pool().sources();
	ASSERT_FALSE(sources.empty());
	auto one = pool().create_region(name(), 4 * MiB, { .source = 0 });
	for (auto node : one.layout())
		EXPECT_EQ(node, sources[0].node);

	auto all = pool().create_region(name(), 2 * MiB * (2 * sources.size()),
					{ .source = BELUGA_ALL_SOURCES });
	auto nodes = all.layout();
	ASSERT_EQ(nodes.size(), 2 * sources.size());
	// Interleaving uses every source of one kind (the driver never mixes kinds).
	std::set<std::int32_t> used(nodes.begin(), nodes.end()), want;
	std::set<std::uint32_t> kinds;
	for (const auto &s : sources) {
		want.insert(s.node);
		kinds.insert(s.kind);
	}
	if (kinds.size() == 1) {
		EXPECT_EQ(used, want) << "interleaving should use every source";
		for (std::size_t i = 1; i < nodes.size() && want.size() > 1; i++)
			EXPECT_NE(nodes[i], nodes[i - 1]) << "chunk " << i;
	} else {
		for (auto n : used)
			EXPECT_TRUE(want.count(n)) << n;
	}
}

TEST_P(BackendTest, ConcurrentCreatesOfOneNameLeaveOneWinner)
{
	auto n = name();
	std::atomic<int> won{ 0 }, lost{ 0 };
	std::vector<std::thread> threads;

	for (int i = 0; i < 4; i++)
		threads.emplace_back([&] {
			try {
				pool().create_region(n, 2 * MiB);
				won++;
			} catch (const Error &e) {
				if (e.code() == EEXIST)
					lost++;
			}
		});
	for (auto &t : threads)
		t.join();
	EXPECT_EQ(won.load(), 1);
	EXPECT_EQ(lost.load(), 3);
}

TEST_P(BackendTest, ChmodAndChownChangeTheRegion)
{
	auto n = name();
	auto r = pool().create_region(n, 2 * MiB);
	pool().chmod_region(n, 0604);
	EXPECT_EQ(pool().stat_region(n).mode, 0604u);
	if (geteuid() == 0) {
		pool().chown_region(n, 65534, std::nullopt);
		auto i = pool().stat_region(n);
		EXPECT_EQ(i.uid, 65534u);
		EXPECT_EQ(i.gid, getegid());
	}
}

TEST_P(BackendTest, AnotherProcessSharesTheRegionByName)
{
	auto n = name();
	auto r = pool().create_region(n, 2 * MiB, { .mode = 0600 });
	auto m = r.map();
	std::memset(m.data(), 0x21, 4096);
	EXPECT_EQ(run_peer({ GetParam(), dir_, "open", n, "33" }), 0);
	EXPECT_EQ(static_cast<unsigned char>(m.bytes()[(1 << 20) + 7]), 0x22);
}

TEST_P(BackendTest, AnotherProcessReceivesTheRegionOverASocket)
{
	int sv[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	auto n = name();
	auto r = pool().create_region(n, 2 * MiB);
	auto m = r.map();
	std::memset(m.data(), 0x50, 4096);
	r.send(sv[0]);
	EXPECT_EQ(run_peer({ GetParam(), dir_, "recv", std::to_string(sv[1]), n, "80" },
			   sv[1]), 0);
	EXPECT_EQ(static_cast<unsigned char>(m.bytes()[1 << 20]), 0x51);
	close(sv[0]);
	close(sv[1]);
}

TEST_P(BackendTest, OtherUsersAreHeldToTheMode)
{
	if (geteuid() != 0)
		GTEST_SKIP() << "needs root to drop to uid 65534";
	auto n = name();
	auto r = pool().create_region(n, 2 * MiB, { .mode = 0600 });
	auto &p = pool();
	auto code = [](auto &&fn) {
		try {
			fn();
		} catch (const Error &e) {
			return e.code();
		}
		return 0;
	};
	// As nobody, with the pool opened by root before the drop (like a
	// service handing out its pool fd): each check is one exit code.
	EXPECT_EQ(run_as_nobody([&] { return code([&] { p.open_region(n); }); }), EACCES);
	EXPECT_EQ(run_as_nobody([&] { return code([&] { p.open_region(n, true); }); }), EACCES);
	EXPECT_EQ(run_as_nobody([&] { return code([&] { p.destroy_region(n); }); }), EPERM);
	EXPECT_EQ(run_as_nobody([&] { return code([&] { p.chmod_region(n, 0666); }); }), EPERM);
	EXPECT_EQ(run_as_nobody([&] { return code([&] { p.chown_region(n, 65534, 65534); }); }),
		  EPERM);
	p.chmod_region(n, 0604);
	EXPECT_EQ(run_as_nobody([&] { return code([&] { p.open_region(n, true).map(Prot::Read); }); }),
		  0);
	EXPECT_EQ(run_as_nobody([&] { return code([&] { p.open_region(n); }); }), EACCES);
	p.chmod_region(n, 0606);
	EXPECT_EQ(run_as_nobody([&] {
			  return code([&] { std::memset(p.open_region(n).map().data(), 1, 64); });
		  }), 0);
	// nobody may create (and destroy) its own regions; root may destroy them too
	auto theirs = name();
	EXPECT_EQ(run_as_nobody([&] {
			  return code([&] { p.create_region(theirs, 2 * MiB, { .mode = 0644 }); });
		  }), 0);
	EXPECT_EQ(p.stat_region(theirs).uid, 65534u);
	p.destroy_region(theirs);
}

TEST_P(BackendTest, SaveAndLoadGoStraightToRegionMemory)
{
	auto r = pool().create_region(name(), 4 * MiB);
	auto m = r.map();
	auto *p = static_cast<unsigned char *>(m.data());
	for (std::size_t i = 0; i < m.size(); i++)
		p[i] = static_cast<unsigned char>(i * 7 + (i >> 12));
	std::vector<unsigned char> want(p, p + m.size());
	std::string file = "beluga-save-" + unique_name(GetParam()) + ".bin";
	m.save(file);
	std::memset(p, 0, m.size());
	m.load(file);
	EXPECT_EQ(0, std::memcmp(p, want.data(), want.size()));
	unlink(file.c_str());
}

// O_DIRECT into region memory: a block device has no page cache to hide in.
// The VM has brd; elsewhere this skips.
TEST_P(BackendTest, DirectIoOnABlockDeviceUsesRegionMemory)
{
	if (access("/dev/ram0", W_OK) && getenv("BELUGA_VM"))
		(void)!system("modprobe brd rd_nr=1 rd_size=16384 2>/dev/null");
	int fd = open("/dev/ram0", O_RDONLY | O_CLOEXEC);
	std::uint64_t size = 0;
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size) || size > 64 * MiB || size % (2 * MiB)) {
		if (fd >= 0)
			close(fd);
		GTEST_SKIP() << "needs /dev/ram0 of at most 64 MiB (modprobe brd rd_nr=1 rd_size=16384)";
	}
	close(fd);
	auto r = pool().create_region(name(), size);
	auto m = r.map();
	auto *p = static_cast<unsigned char *>(m.data());
	for (std::size_t i = 0; i < m.size(); i++)
		p[i] = static_cast<unsigned char>((i >> 9) ^ i);
	std::vector<unsigned char> want(p, p + m.size());
	m.save("/dev/ram0");
	std::memset(p, 0, m.size());
	m.load("/dev/ram0");
	EXPECT_EQ(0, std::memcmp(p, want.data(), want.size()));
}

TEST_P(BackendTest, CopyPrimitivesWorkOnRegionMemory)
{
	auto r = pool().create_region(name(), 16 * MiB);
	auto m = r.map();
	std::vector<unsigned char> src(m.size());
	for (std::size_t i = 0; i < src.size(); i++)
		src[i] = static_cast<unsigned char>(i ^ (i >> 9));
	beluga::copy_bulk(m.data(), src.data(), src.size(), 4);
	beluga::flush(m.data(), m.size());
	EXPECT_EQ(0, std::memcmp(m.data(), src.data(), src.size()));
	beluga::copy_nt(static_cast<char *>(m.data()) + 3, src.data() + 100, 1000);
	beluga::writeback(m.data(), 4096);
	beluga::fence_full();
	EXPECT_EQ(0, std::memcmp(static_cast<char *>(m.data()) + 3, src.data() + 100, 1000));
}

TEST_P(BackendTest, HandlesOutliveEachOther)
{
	auto n = name();
	std::optional<beluga::Mapping> m;
	{
		auto p = beluga::Pool::open(options());
		auto r = p.create_region(n, 2 * MiB);
		m.emplace(r.map());
		// pool and region handles go away here; the mapping keeps them alive
	}
	std::memset(m->data(), 3, 4096);
	auto moved = std::move(*m);
	m.reset();
	EXPECT_EQ(static_cast<char *>(moved.data())[10], 3);
}

TEST_P(BackendTest, MappingsKnowTheirProtection)
{
	auto r = pool().create_region(name(), 2 * MiB);
	auto w = r.map();
	auto ro = r.map(Prot::Read);
	EXPECT_EQ(w.prot(), Prot::ReadWrite);
	EXPECT_TRUE(w.writable());
	EXPECT_EQ(ro.prot(), Prot::Read);
	EXPECT_FALSE(ro.writable());
	auto moved = std::move(ro);
	EXPECT_FALSE(moved.writable());
}

// open_shared() opens shared regions only: a private region of the name
// would give every host different bytes.  (Defining shared regions needs a
// range source: the multi-host VM tests open them.)
TEST_P(BackendTest, OpenSharedRefusesAPrivateRegion)
{
	auto n = name();
	auto r = pool().create_region(n, 2 * MiB);
	try {
		pool().open_shared(n);
		FAIL() << "open_shared opened a private region";
	} catch (const Error &e) {
		EXPECT_EQ(e.code(), EMEDIUMTYPE);
		std::string what = e.what();
		EXPECT_NE(what.find("'" + n + "'"), std::string::npos) << what;
		EXPECT_NE(what.find("beluga-tool shared define"), std::string::npos) << what;
	}
	try {
		pool().open_shared(n + "-missing");
		FAIL() << "open_shared opened a missing region";
	} catch (const Error &e) {
		EXPECT_EQ(e.code(), ENOENT);
	}
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendTest, ::testing::Values("user", "kernel"),
			 [](const auto &info) { return info.param; });

// ---- backend choice ----------------------------------------------------------

TEST(BackendChoice, AutoUsesTheDriverExactlyWhenPresent)
{
	if (getenv("BELUGA_BACKEND"))
		GTEST_SKIP() << "BELUGA_BACKEND is set";
	std::string dir = "/dev/shm/" + unique_name("beluga-gtest-auto");
	beluga::PoolOptions o;
	o.user_dir = dir;
	o.hugetlbfs_dir = "none";
	auto p = beluga::Pool::open(o);
	EXPECT_EQ(p.backend(), have_driver() ? beluga::Backend::Kernel : beluga::Backend::User);
	remove_dir(dir);
}

TEST(BackendChoice, NamesRoundTripAndUnknownOnesAreRefused)
{
	for (auto b : { beluga::Backend::Auto, beluga::Backend::Kernel, beluga::Backend::User })
		EXPECT_EQ(beluga::parse_backend(beluga::backend_name(b)), b);
	EXPECT_STREQ(beluga::backend_name(beluga::Backend::Kernel), "kernel");
	try {
		beluga::parse_backend("floppy");
		FAIL() << "parsed an unknown backend";
	} catch (const std::invalid_argument &e) {
		EXPECT_NE(std::string(e.what()).find("'floppy'"), std::string::npos);
	}
}

TEST(BackendChoice, MissingDriverSaysHowToFallBack)
{
	beluga::PoolOptions o;
	o.backend = beluga::Backend::Kernel;
	o.device_path = "/nonexistent/beluga";
	try {
		beluga::Pool::open(o);
		FAIL() << "opened a missing device";
	} catch (const Error &e) {
		EXPECT_EQ(e.code(), BELUGA_ENODRIVER);
		EXPECT_NE(std::string(e.what()).find("BELUGA_BACKEND=user"), std::string::npos);
	}
}

} // namespace

int main(int argc, char **argv)
{
	if (argc > 1 && !std::strcmp(argv[1], "--peer"))
		return peer_main(argc, argv);
	::testing::InitGoogleTest(&argc, argv);
	return RUN_ALL_TESTS();
}
