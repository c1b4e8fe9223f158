// SPDX-License-Identifier: Apache-2.0
// Description: the user-space backend on a real hugetlbfs mount.  Needs root:
// mounts hugetlbfs (pagesize=2M) on a private directory and reserves four
// more 2 MiB pages for the test, restoring both afterwards; skips otherwise.
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "backend_env.hpp"

using namespace beluga_test;

namespace {

constexpr std::uint64_t MiB = 1ULL << 20;
const char *const kNrHuge = "/proc/sys/vm/nr_hugepages";

long read_long(const char *path)
{
	std::ifstream f(path);
	long v = -1;

	f >> v;
	return v;
}

bool write_long(const char *path, long v)
{
	std::ofstream f(path);

	f << v;
	f.flush();
	return f.good();
}

// Page size the kernel uses for the mapping at @addr, from /proc/self/smaps.
long kernel_page_kb(const void *addr)
{
	std::ifstream f("/proc/self/smaps");
	std::string line;
	bool in = false;
	char buf[64];

	std::snprintf(buf, sizeof(buf), "%lx-", reinterpret_cast<unsigned long>(addr));
	while (std::getline(f, line)) {
		if (line.rfind(buf, 0) == 0)
			in = true;
		else if (in && line.rfind("KernelPageSize:", 0) == 0)
			return std::stol(line.substr(15));
	}
	return -1;
}

class Hugetlbfs : public ::testing::Test {
protected:
	void SetUp() override
	{
		if (geteuid() != 0 || access(kNrHuge, W_OK))
			GTEST_SKIP() << "needs root and a writable " << kNrHuge;
		mnt_ = "/tmp/" + unique_name("beluga-hugetlbfs");
		dir_ = "/dev/shm/" + unique_name("beluga-gtest-huge");
		ASSERT_EQ(mkdir(mnt_.c_str(), 0755), 0);
		if (mount("none", mnt_.c_str(), "hugetlbfs", 0, "pagesize=2M")) {
			rmdir(mnt_.c_str());
			GTEST_SKIP() << "cannot mount hugetlbfs: " << std::strerror(errno);
		}
		mounted_ = true;
		old_ = read_long(kNrHuge);
		set_ = old_ + 4;
		ASSERT_TRUE(write_long(kNrHuge, set_));
		if (read_long(kNrHuge) < set_)
			GTEST_SKIP() << "the kernel could not find 4 free 2 MiB pages";
	}

	void TearDown() override
	{
		if (mounted_) {
			umount(mnt_.c_str());
			rmdir(mnt_.c_str());
		}
		if (set_ >= 0 && read_long(kNrHuge) == set_)
			write_long(kNrHuge, old_);
		remove_dir(dir_);
	}

	beluga::Pool open_pool()
	{
		beluga::PoolOptions o;

		o.backend = beluga::Backend::User;
		o.user_dir = dir_;
		o.hugetlbfs_dir = mnt_;
		return beluga::Pool::open(o);
	}

	std::string mnt_, dir_;
	bool mounted_ = false;
	long old_ = -1, set_ = -1;
};

TEST_F(Hugetlbfs, RegionsUseHugePagesWhileTheyLast)
{
	auto pool = open_pool();
	EXPECT_TRUE(pool.info().features & BELUGA_FEATURE_PMD_MAPPINGS);
	auto n = unique_name("h");
	auto r = pool.create_region(n, 4 * MiB);
	EXPECT_TRUE(r.info().flags & BELUGA_INFO_HUGETLB);
	EXPECT_EQ(dir_entries(mnt_ + "/beluga-default"), 1);
	auto m = r.map();
	std::memset(m.data(), 0x61, m.size());
	EXPECT_EQ(kernel_page_kb(m.data()), 2048);
	EXPECT_EQ(r.layout().size(), 2u);

	// The other process's view: open by name finds it on hugetlbfs.
	auto o = pool.open_region(n, true);
	EXPECT_EQ(static_cast<char *>(o.map(beluga::Prot::Read).data())[77], 0x61);

	// More than the free pages: tmpfs takes it.
	auto big = unique_name("big");
	auto t = pool.create_region(big, 8 * MiB);
	EXPECT_FALSE(t.info().flags & BELUGA_INFO_HUGETLB);
	EXPECT_EQ(dir_entries(dir_), 1);

	// Same name in the other directory: refused.
	EXPECT_THROW(pool.create_region(n, 2 * MiB), beluga::Error);
	pool.destroy_region(n);
	pool.destroy_region(big);
	EXPECT_EQ(dir_entries(mnt_ + "/beluga-default"), 0);
	EXPECT_EQ(dir_entries(dir_), 0);
}

} // namespace
