// SPDX-License-Identifier: Apache-2.0
// Description: GPU registration on a real GPU: a region registered with
// CUDA is read and written by the device through its device pointer, in
// several chunks, on the user backend (and the kernel backend where
// /dev/beluga exists).  Exits 77 (skip) with the reason when no GPU or no
// NVIDIA driver is present: the CUDA runtime is linked statically, so the
// binary starts anyway.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include "backend_env.hpp"

using namespace beluga_test;

namespace {

constexpr std::uint64_t MiB = 1ULL << 20;

class Gpu : public ::testing::TestWithParam<std::string> {
protected:
	void SetUp() override
	{
		if (GetParam() == "kernel" && !have_driver())
			GTEST_SKIP() << "no /dev/beluga here";
		dir_ = "/dev/shm/" + unique_name("beluga-gpu");
		opts_ = pool_options(GetParam(), dir_);
		opts_.gpu_chunk_max = 16 * MiB;
		pool_.emplace(beluga::Pool::open(opts_));
	}
	void TearDown() override
	{
		for (const auto &n : names_)
			if (pool_ && pool_->try_stat_region(n))
				pool_->destroy_region(n);
		pool_.reset();
		remove_dir(dir_);
	}
	std::string name()
	{
		names_.push_back(unique_name("gpu"));
		return names_.back();
	}

	std::string dir_;
	beluga::PoolOptions opts_;
	std::optional<beluga::Pool> pool_;
	std::vector<std::string> names_;
};

TEST_P(Gpu, DeviceReadsAndWritesRegisteredRegion)
{
	auto r = pool_->create_region(name(), 64 * MiB);
	auto m = r.map();
	auto *host = static_cast<unsigned char *>(m.data());
	for (std::size_t i = 0; i < m.size(); i++)
		host[i] = static_cast<unsigned char>(i * 13 + (i >> 20));

	auto t0 = std::chrono::steady_clock::now();
	auto reg = m.register_gpu(0);
	auto t1 = std::chrono::steady_clock::now();
	std::printf("registered 64 MiB in %zu chunks in %.2f ms (socket %d)\n", reg.chunks(),
		    std::chrono::duration<double, std::milli>(t1 - t0).count(),
		    beluga_gpu_reg_socket(reg.get()));
	EXPECT_EQ(reg.chunks(), 4u);
	ASSERT_NE(reg.device_pointer(), nullptr);

	// Device copies out of the registered memory, one per chunk: CUDA sees
	// each chunk as its own allocation (a copy across two fails).
	void *dbuf = nullptr;
	ASSERT_EQ(cudaMalloc(&dbuf, m.size()), cudaSuccess);
	EXPECT_EQ(reg.chunk_bytes(), 16 * MiB);
	auto *dsrc = static_cast<char *>(reg.device_pointer());
	for (std::size_t off = 0; off < m.size(); off += reg.chunk_bytes())
		ASSERT_EQ(cudaMemcpy(static_cast<char *>(dbuf) + off, dsrc + off,
				     reg.chunk_bytes(), cudaMemcpyDefault), cudaSuccess);
	cudaError_t across = cudaMemcpy(dbuf, dsrc, 2 * reg.chunk_bytes(), cudaMemcpyDefault);
	std::printf("a copy across two chunks: %s\n", cudaGetErrorString(across));
	(void)cudaGetLastError();
	std::vector<unsigned char> back(m.size());
	ASSERT_EQ(cudaMemcpy(back.data(), dbuf, m.size(), cudaMemcpyDeviceToHost), cudaSuccess);
	EXPECT_EQ(0, std::memcmp(back.data(), host, m.size()));
	auto *dev = static_cast<unsigned char *>(reg.device_pointer());
	ASSERT_EQ(cudaMemset(dev + 16 * MiB - 2048, 0x5a, 2048), cudaSuccess);
	ASSERT_EQ(cudaMemset(dev + 16 * MiB, 0x5a, 2048), cudaSuccess);
	ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
	EXPECT_EQ(host[16 * MiB - 2048], 0x5a);
	EXPECT_EQ(host[16 * MiB + 2047], 0x5a);
	cudaFree(dbuf);
}

TEST_P(Gpu, SecondRegistrationIsEexistAndUnregisterAllowsAnother)
{
	auto r = pool_->create_region(name(), 4 * MiB);
	auto m = r.map();
	(void)cudaGetLastError();	/* start clean: only this test's errors count */
	{
		auto reg = m.register_gpu(0);
		try {
			m.register_gpu(0);
			ADD_FAILURE() << "registered the same memory twice";
		} catch (const beluga::Error &e) {
			EXPECT_EQ(e.code(), EEXIST) << e.what();
		}
	}
	auto again = m.register_gpu(0);
	EXPECT_EQ(again.chunks(), 1u);
	EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "no sticky error left behind";
}

TEST_P(Gpu, ReadOnlyRegistration)
{
	auto n = name();
	auto w = pool_->create_region(n, 2 * MiB);
	std::memset(w.map().data(), 7, 4096);
	auto r = pool_->open_region(n, true);
	auto m = r.map(beluga::Prot::Read);
	try {
		auto reg = m.register_gpu(0, BELUGA_GPU_READONLY);
		unsigned char b = 0;
		ASSERT_EQ(cudaMemcpy(&b, reg.device_pointer(), 1, cudaMemcpyDefault), cudaSuccess);
		EXPECT_EQ(b, 7);
	} catch (const beluga::Error &e) {
		if (e.code() != EOPNOTSUPP)
			throw;
		GTEST_SKIP() << "this GPU cannot register read-only memory";
	}
}

TEST_P(Gpu, LargeRegionRegistersInChunks)
{
	auto o = opts_;
	o.gpu_chunk_max = 512 * MiB;
	auto pool = beluga::Pool::open(o);
	auto n = name();
	auto r = pool.create_region(n, 2048 * MiB);
	auto m = r.map();
	auto t0 = std::chrono::steady_clock::now();
	auto reg = m.register_gpu(0);
	auto t1 = std::chrono::steady_clock::now();
	std::printf("registered 2 GiB in %zu chunks in %.1f ms\n", reg.chunks(),
		    std::chrono::duration<double, std::milli>(t1 - t0).count());
	EXPECT_EQ(reg.chunks(), 4u);
	auto *dev = static_cast<unsigned char *>(reg.device_pointer());
	ASSERT_EQ(cudaMemset(dev + m.size() - 4096, 0x77, 4096), cudaSuccess);
	ASSERT_EQ(cudaMemset(dev + 512 * MiB - 1, 0x66, 1), cudaSuccess);
	ASSERT_EQ(cudaMemset(dev + 512 * MiB, 0x66, 1), cudaSuccess);
	ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
	auto *host = static_cast<unsigned char *>(m.data());
	EXPECT_EQ(host[m.size() - 1], 0x77);
	EXPECT_EQ(host[512 * MiB - 1], 0x66);
	EXPECT_EQ(host[512 * MiB], 0x66);
}

TEST_P(Gpu, UnknownDeviceIsEnodev)
{
	auto r = pool_->create_region(name(), 2 * MiB);
	auto m = r.map();
	try {
		m.register_gpu(pool_->gpu_count());
		ADD_FAILURE() << "registered with a device that does not exist";
	} catch (const beluga::Error &e) {
		EXPECT_EQ(e.code(), ENODEV) << e.what();
	}
}

TEST_P(Gpu, UnmappingWaitsForTheGpuRegistration)
{
	auto r = pool_->create_region(name(), 8 * MiB);
	std::optional<beluga::Mapping> m(r.map());
	auto reg = m->register_gpu(0);
	void *dev = reg.device_pointer();
	m.reset();	// still mapped and registered: the registration holds it
	ASSERT_EQ(cudaMemset(dev, 1, 4096), cudaSuccess);
	ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

INSTANTIATE_TEST_SUITE_P(Backends, Gpu, ::testing::Values("user", "kernel"),
			 [](const auto &info) { return info.param; });

} // namespace

int main(int argc, char **argv)
{
	int n = 0;
	cudaError_t err = cudaGetDeviceCount(&n);

	if (err != cudaSuccess || n == 0) {
		std::printf("SKIP: no GPU (%s): GPU registration is tested where one is present\n",
			    err != cudaSuccess ? cudaGetErrorString(err) : "no CUDA device");
		return 77;
	}
	::testing::InitGoogleTest(&argc, argv);
	return RUN_ALL_TESTS();
}
