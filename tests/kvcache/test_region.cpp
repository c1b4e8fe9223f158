// SPDX-License-Identifier: Apache-2.0
// The adapter: a cache in a named libbeluga region.  Where /dev/beluga
// exists (the VM suite) this runs on the driver, elsewhere on the user-space
// backend in a private pool directory.
#include "kvc_util.hpp"

#include <beluga/beluga.h>

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cerrno>
#include <cstdlib>
#include <unistd.h>
#include <filesystem>
#include <string>

namespace {

using namespace kvt;

constexpr uint64_t kRegion = 16 << 20;

class Region : public ::testing::Test {
protected:
	void SetUp() override
	{
		beluga_pool_options o;
		beluga_pool_options_init(&o);
		kernel_ = access("/dev/beluga", F_OK) == 0;
		o.backend = kernel_ ? BELUGA_BACKEND_KERNEL : BELUGA_BACKEND_USER;
		if (!kernel_) {
			dir_ = "/dev/shm/kvc-test-" + std::to_string(getpid());
			o.user_dir = dir_.c_str();
			o.hugetlbfs_dir = "none";
		}
		int r = beluga_pool_open(&o, &pool_);
		ASSERT_EQ(r, 0) << beluga_strerror(r);
		name_ = "kvc-test-" + std::to_string(getpid());
		cfg_ = config(opaque_fp(64 * 1024));
	}
	void TearDown() override
	{
		if (pool_) {
			beluga_region_destroy(pool_, name_.c_str());
			beluga_pool_close(pool_);
		}
		if (!dir_.empty())
			std::filesystem::remove_all(dir_);
	}
	int open(beluga_kvc **kv, const beluga_kvc_fingerprint &fp, bool create)
	{
		auto o = opts(0, BELUGA_KVC_AUTO);
		return beluga_kvc_open(pool_, name_.c_str(), &fp, create ? &cfg_ : nullptr, kRegion,
				       0600, &o, kv);
	}
	bool kernel_ = false;
	std::string dir_, name_;
	beluga_pool *pool_ = nullptr;
	beluga_kvc_config cfg_;
};

TEST_F(Region, CreateOpenShare)
{
	beluga_kvc *a = nullptr, *b = nullptr;
	EXPECT_EQ(open(&a, cfg_.fingerprint, false), -ENOENT);
	ASSERT_EQ(open(&a, cfg_.fingerprint, true), 0) << beluga_kvc_last_error();
	long n = 0;
	put_block(a, 42, 5000, &n);
	ASSERT_EQ(n, 1);
	// Another opener (create allowed: it finds the region and does not
	// format it again), then one in a child process.
	ASSERT_EQ(open(&b, cfg_.fingerprint, true), 0) << beluga_kvc_last_error();
	GetResult g = get_block(b, 42, 5000);
	ASSERT_EQ(g.batch, 1);
	EXPECT_EQ(g.res, 5000);
	EXPECT_TRUE(g.intact);
	beluga_kvc_detach(b);
	pid_t pid = fork();
	if (pid == 0) {
		beluga_kvc *c = nullptr;
		uint8_t key[1][32];
		make_key(42, key[0]);
		int ok = open(&c, cfg_.fingerprint, false) == 0 && beluga_kvc_lookup_prefix(c, key, 1) == 1;
		beluga_kvc_detach(c);
		_exit(ok ? 0 : 1);
	}
	int status;
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	beluga_kvc_detach(a);
}

TEST_F(Region, Errors)
{
	beluga_kvc *kv = nullptr;
	ASSERT_EQ(open(&kv, cfg_.fingerprint, true), 0);
	beluga_kvc_detach(kv);
	beluga_kvc_fingerprint other = cfg_.fingerprint;
	std::strcpy(other.model_id, "another-model");
	EXPECT_EQ(open(&kv, other, false), -BELUGA_KVC_EFINGERPRINT);
	EXPECT_NE(std::string(beluga_kvc_last_error()).find("model_id"), std::string::npos);
	auto o = opts(0, BELUGA_KVC_AUTO);
	EXPECT_EQ(beluga_kvc_open(nullptr, "x", &cfg_.fingerprint, nullptr, 0, 0, &o, &kv), -EINVAL);
	EXPECT_EQ(beluga_kvc_open(pool_, nullptr, &cfg_.fingerprint, nullptr, 0, 0, &o, &kv), -EINVAL);
	EXPECT_EQ(beluga_kvc_open(pool_, "x", nullptr, nullptr, 0, 0, &o, &kv), -EINVAL);
	EXPECT_EQ(beluga_kvc_open(pool_, "bad/name", &cfg_.fingerprint, &cfg_, kRegion, 0600, &o, &kv),
		  -EINVAL);
	EXPECT_EQ(beluga_kvc_open(pool_, "odd-size", &cfg_.fingerprint, &cfg_, 12345, 0600, &o, &kv),
		  -EINVAL);
	// A region that exists but was never formatted: not ready, after the wait.
	beluga_region *raw;
	ASSERT_EQ(beluga_region_create(pool_, "kvc-raw", kRegion, 0600, 0, BELUGA_ALL_SOURCES, &raw), 0);
	o.ready_wait_ms = 20;
	EXPECT_EQ(beluga_kvc_open(pool_, "kvc-raw", &cfg_.fingerprint, nullptr, 0, 0, &o, &kv),
		  -BELUGA_KVC_ENOTREADY);
	beluga_region_close(raw);
	beluga_region_destroy(pool_, "kvc-raw");
}

// Several hosts share a region none of them created through the cache (the
// driver's shared regions): only the host configured as the formatter
// (BELUGA_KVC_ATTACH_FORMAT) formats it; another waits for it, bounded.
TEST_F(Region, TheConfiguredFormatterFormatsARegionItDidNotCreate)
{
	beluga_region *reg = nullptr;
	int r = beluga_region_create(pool_, name_.c_str(), kRegion, 0600, 0, BELUGA_ALL_SOURCES, &reg);
	ASSERT_EQ(r, 0) << beluga_strerror(r);
	beluga_region_close(reg);
	cfg_.max_hosts = 2;
	int go[2];
	ASSERT_EQ(pipe(go), 0);
	pid_t pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) { // host 1: no config, waits for the cache
		beluga_pool_options po;
		beluga_pool_options_init(&po);
		po.backend = kernel_ ? BELUGA_BACKEND_KERNEL : BELUGA_BACKEND_USER;
		po.user_dir = kernel_ ? nullptr : dir_.c_str();
		po.hugetlbfs_dir = "none";
		beluga_pool *p = nullptr;
		char c;
		if (beluga_pool_open(&po, &p) || read(go[0], &c, 1) != 1)
			_exit(2);
		auto o = opts(1, BELUGA_KVC_AUTO);
		o.lease_ms = 80;
		o.ready_wait_ms = 30000;
		beluga_kvc *kv = nullptr;
		if (beluga_kvc_open(p, name_.c_str(), &cfg_.fingerprint, nullptr, 0, 0, &o, &kv))
			_exit(3);
		beluga_kvc_info info;
		beluga_kvc_get_info(kv, &info);
		beluga_kvc_detach(kv);
		_exit(info.max_hosts == 2 ? 0 : 4);
	}
	ASSERT_EQ(write(go[1], "g", 1), 1); // the waiter may come before, during or after the format
	auto o = opts(0, BELUGA_KVC_AUTO);
	o.lease_ms = 80;
	o.flags = BELUGA_KVC_ATTACH_FORMAT;
	beluga_kvc *a = nullptr, *b = nullptr;
	ASSERT_EQ(beluga_kvc_open(pool_, name_.c_str(), &cfg_.fingerprint, &cfg_, kRegion, 0600, &o, &a),
		  0) << beluga_kvc_last_error();
	int st;
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
	long n = 0;
	put_block(a, 7, 5000, &n);
	ASSERT_EQ(n, 1);
	// The formatter starting again finds the cache and does not format it.
	ASSERT_EQ(beluga_kvc_open(pool_, name_.c_str(), &cfg_.fingerprint, &cfg_, kRegion, 0600, &o, &b),
		  0) << beluga_kvc_last_error();
	uint8_t key[1][32];
	make_key(7, key[0]);
	EXPECT_EQ(beluga_kvc_lookup_prefix(b, key, 1), 1);
	beluga_kvc_detach(b);
	// A host need not know the shared region's size: with a config and no
	// size it opens the existing region (a missing one: -ENOENT).
	b = nullptr;
	ASSERT_EQ(beluga_kvc_open(pool_, name_.c_str(), &cfg_.fingerprint, &cfg_, 0, 0600, &o, &b), 0)
		<< beluga_kvc_last_error();
	EXPECT_EQ(beluga_kvc_lookup_prefix(b, key, 1), 1);
	beluga_kvc_detach(b);
	b = nullptr;
	EXPECT_EQ(beluga_kvc_open(pool_, "kvc-missing", &cfg_.fingerprint, &cfg_, 0, 0600, &o, &b),
		  -ENOENT);
	beluga_kvc_detach(a);
	close(go[0]);
	close(go[1]);
}

// A config with region_bytes 0 never creates the region (a shared region
// is defined by the administrator on every host, never by the cache): a
// missing one is ENOENT; an existing one is formatted only with
// BELUGA_KVC_ATTACH_FORMAT, else waited for.
TEST_F(Region, ZeroRegionBytesOpensAnExistingRegionOnly)
{
	auto o = opts(0, BELUGA_KVC_AUTO);
	o.flags = BELUGA_KVC_ATTACH_FORMAT;
	beluga_kvc *kv = nullptr;
	EXPECT_EQ(beluga_kvc_open(pool_, name_.c_str(), &cfg_.fingerprint, &cfg_, 0, 0600, &o, &kv),
		  -ENOENT);
	beluga_region_info info;
	EXPECT_EQ(beluga_region_stat(pool_, name_.c_str(), &info), -ENOENT) << "created a region";
	beluga_region *reg = nullptr;
	int r = beluga_region_create(pool_, name_.c_str(), kRegion, 0600, 0, BELUGA_ALL_SOURCES, &reg);
	ASSERT_EQ(r, 0) << beluga_strerror(r);
	beluga_region_close(reg);
	auto waiter = opts(0, BELUGA_KVC_AUTO);
	waiter.ready_wait_ms = 20;
	EXPECT_EQ(beluga_kvc_open(pool_, name_.c_str(), &cfg_.fingerprint, &cfg_, 0, 0600, &waiter, &kv),
		  -BELUGA_KVC_ENOTREADY);
	ASSERT_EQ(beluga_kvc_open(pool_, name_.c_str(), &cfg_.fingerprint, &cfg_, 0, 0600, &o, &kv), 0)
		<< beluga_kvc_last_error();
	beluga_kvc_info ki;
	ASSERT_EQ(beluga_kvc_get_info(kv, &ki), 0);
	EXPECT_EQ(ki.region_bytes, kRegion);
	beluga_kvc_detach(kv);
}

} // namespace
