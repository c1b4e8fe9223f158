// SPDX-License-Identifier: Apache-2.0
// The C++ interface of the GPU data path (beluga/xfer_cuda.hpp), the layer the
// Python binding calls: GpuCopier::copy through a Transfer against the CPU
// reference byte for byte on every layout kind, both directions, with the
// Event it returns (query, synchronize, wait on another stream) and
// LayerEvents.  Without a usable GPU the GPU cases skip with the reason, the
// no-GPU case checks the error, and the program exits 77.
#include <beluga/xfer_cuda.hpp>

#include "../layout_gen.hpp"
#include "checksum.hpp" // the KV store's own checksum (kvcache/src, libbeluga/cpu), compiled in
#include "gpu_util.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace {

namespace bx = beluga::xfer;
namespace bxc = beluga::xfer::cuda;
using beluga::xfer::test::Case;
using beluga::xfer::test::Generator;
using beluga::xfer::test::Kind;
using namespace beluga::xfer::gpu_test;

bxc::Availability g_gpu;

#define REQUIRE_GPU()                                                                                          \
	do {                                                                                                   \
		if (!g_gpu.usable)                                                                             \
			GTEST_SKIP() << "no GPU found: " << g_gpu.why;                                         \
	} while (0)

class Stream {
public:
	Stream() { check(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking), "cudaStreamCreate"); }
	~Stream() { cudaStreamDestroy(s_); }
	Stream(const Stream &) = delete;
	Stream &operator=(const Stream &) = delete;
	cudaStream_t get() const { return s_; }

private:
	cudaStream_t s_ = nullptr;
};

TEST(XferCudaHppNoDevice, CopierAndEventRefuseWithTheReason)
{
	if (g_gpu.usable)
		GTEST_SKIP() << "a GPU is present; this test covers machines without one";
	EXPECT_FALSE(g_gpu.why.empty());
	try {
		bxc::GpuCopier gpu;
		ADD_FAILURE() << "GpuCopier made without a GPU";
	} catch (const bx::Error &e) {
		EXPECT_EQ(e.code().value(), ENODEV);
		EXPECT_NE(std::string(e.what()).find(g_gpu.why), std::string::npos) << e.what();
	}
	EXPECT_THROW(bxc::Event{}, bx::Error);
}

// Paged cache on the GPU, pool blocks in registered host memory; the same
// start state on the host for the reference.
void run_case(bxc::GpuCopier &gpu, const Case &c, bx::Dir dir, std::mt19937_64 &rng, cudaStream_t s, bool layerwise)
{
	SCOPED_TRACE(c.describe() + " " + bx::dir_name(dir) + (layerwise ? " layer-wise" : ""));
	std::vector<unsigned char> ref_paged(c.paged_bytes), ref_pool(c.pool_bytes);
	beluga::xfer::test::fill_random(ref_paged, rng);
	beluga::xfer::test::fill_random(ref_pool, rng);
	DeviceBuf dev(c.paged_bytes);
	HostBuf pool(c.pool_bytes, HostKind::Registered);
	check(cudaMemcpy(dev.get(), ref_paged.data(), c.paged_bytes, cudaMemcpyHostToDevice), "upload");
	std::memcpy(pool.host(), ref_pool.data(), c.pool_bytes);

	const bx::Strides st{c.strides[0], c.strides[1], c.strides[2], c.strides[3]};
	const bx::LayerRange lr{c.layer_begin, c.layer_end};
	const beluga_kv_paged hp = c.paged_at(ref_paged.data()), dp = c.paged_at(dev.get());
	const bx::Paged href = bx::Paged::strided(bx::Shape(c.shape), c.num_blocks, st,
						   std::vector<void *>(hp.layer_base, hp.layer_base + c.shape.num_layers));
	const bx::Paged dpaged = bx::Paged::strided(bx::Shape(c.shape), c.num_blocks, st,
						     std::vector<void *>(dp.layer_base, dp.layer_base + c.shape.num_layers));
	bx::ref_copy(bx::Transfer(href, c.refs_at(ref_pool.data()), dir, lr));

	const bx::Transfer t(dpaged, c.refs_at(pool.dev()), dir, lr);
	if (layerwise) {
		bxc::LayerEvents ev(c.shape.num_layers);
		gpu.copy_layerwise(t, s, ev);
		ev.synchronize(c.layer_end - 1);
		EXPECT_TRUE(ev.query(c.layer_end - 1));
	} else {
		bxc::Event done = gpu.copy(t, s);
		// Another stream waits on the event: a copy ordered after it sees the result.
		Stream other;
		done.wait(other.get());
		check(cudaStreamSynchronize(other.get()), "other stream");
		EXPECT_TRUE(done.query());
		done.synchronize();
	}
	std::vector<unsigned char> out(c.paged_bytes);
	check(cudaMemcpy(out.data(), dev.get(), c.paged_bytes, cudaMemcpyDeviceToHost), "download");
	ASSERT_TRUE(out == ref_paged) << "paged cache differs from the reference";
	ASSERT_EQ(std::memcmp(pool.host(), ref_pool.data(), c.pool_bytes), 0) << "pool differs from the reference";
}

class HppGpuVsRef : public ::testing::TestWithParam<int> {};

TEST_P(HppGpuVsRef, CopyAndLayerwiseMatchTheReference)
{
	REQUIRE_GPU();
	bxc::GpuCopier gpu;
	Stream s;
	Generator gen(beluga::xfer::test::test_seed() + 131 * GetParam());
	std::mt19937_64 rng(beluga::xfer::test::test_seed() ^ 0x51);
	for (int round = 0; round < 6; round++) {
		const Case c = gen.make(Kind(GetParam()));
		for (bx::Dir dir : {bx::Dir::Gather, bx::Dir::Scatter})
			for (bool lw : {false, true})
				run_case(gpu, c, dir, rng, s.get(), lw);
	}
}

INSTANTIATE_TEST_SUITE_P(AllLayouts, HppGpuVsRef, ::testing::Range(0, int(Kind::Count)),
			 [](const ::testing::TestParamInfo<int> &i) {
				 return beluga::xfer::test::kind_param_name(i.param);
			 });

// GpuCopier::gather_sum: whole blocks gathered into registered pool memory
// with the store's checksum of each, in the refs' order, into a PinnedArray
// (what the connector commits a reservation with), against the reference.
TEST(XferCudaHpp, GatherSumWritesTheBlocksAndTheirStoreChecksums)
{
	REQUIRE_GPU();
	bxc::GpuCopier gpu;
	Stream s;
	Generator gen(beluga::xfer::test::test_seed() + 151);
	std::mt19937_64 rng(beluga::xfer::test::test_seed() ^ 0x53);
	for (int k = 0; k < int(Kind::Count); k++) {
		Case c = gen.make(Kind(k));
		c.layer_begin = 0; // gather_sum moves whole blocks
		c.layer_end = c.shape.num_layers;
		SCOPED_TRACE(c.describe());
		std::vector<unsigned char> ref_paged(c.paged_bytes), ref_pool(c.pool_bytes, 0);
		beluga::xfer::test::fill_random(ref_paged, rng);
		DeviceBuf dev(c.paged_bytes);
		HostBuf pool(c.pool_bytes, HostKind::Registered);
		check(cudaMemcpy(dev.get(), ref_paged.data(), c.paged_bytes, cudaMemcpyHostToDevice), "upload");
		std::memset(pool.host(), 0, c.pool_bytes);
		const bx::Strides st{c.strides[0], c.strides[1], c.strides[2], c.strides[3]};
		const bx::LayerRange lr{c.layer_begin, c.layer_end};
		const beluga_kv_paged hp = c.paged_at(ref_paged.data()), dp = c.paged_at(dev.get());
		const bx::Paged href = bx::Paged::strided(
			bx::Shape(c.shape), c.num_blocks, st,
			std::vector<void *>(hp.layer_base, hp.layer_base + c.shape.num_layers));
		const bx::Paged dpaged = bx::Paged::strided(
			bx::Shape(c.shape), c.num_blocks, st,
			std::vector<void *>(dp.layer_base, dp.layer_base + c.shape.num_layers));
		const auto href_refs = c.refs_at(ref_pool.data());
		if (href_refs.empty())
			continue;
		bx::ref_copy(bx::Transfer(href, href_refs, bx::Dir::Gather, lr));
		const bx::Transfer t(dpaged, c.refs_at(pool.dev()), bx::Dir::Gather, lr);
		bxc::PinnedArray<uint64_t> sums(href_refs.size());
		EXPECT_THROW(gpu.gather_sum(t, s.get(), sums.span().first(href_refs.size() - 1)), bx::Error);
		bxc::Event done = gpu.gather_sum(t, s.get(), sums.span());
		done.synchronize();
		ASSERT_EQ(std::memcmp(pool.host(), ref_pool.data(), c.pool_bytes), 0) << "pool differs from the reference";
		const size_t bb = beluga_kv_block_bytes(&c.shape);
		for (size_t i = 0; i < href_refs.size(); i++)
			EXPECT_EQ(sums.data()[i], bkv::f64(href_refs[i].pool, bb)) << "sum of ref " << i;
	}
}

TEST(XferCudaHpp, EventAndCopierBasics)
{
	REQUIRE_GPU();
	bxc::GpuCopier gpu;
	EXPECT_EQ(gpu.device(), 0);
	gpu.make_current();
	gpu.set_batch_min_bytes(SIZE_MAX);
	EXPECT_EQ(gpu.batch_min_bytes(), SIZE_MAX);
	bxc::Event e;
	EXPECT_TRUE(e.query()); // never recorded: complete
	Stream s;
	e.record(s.get());
	e.synchronize();
	EXPECT_TRUE(e.query());
	EXPECT_THROW(bxc::LayerEvents(0), bx::Error);
	EXPECT_THROW(bxc::GpuCopier(bxc::GpuOptions{-1}), bx::Error);
}

} // namespace

int main(int argc, char **argv)
{
	std::setvbuf(stdout, nullptr, _IOLBF, 0);
	::testing::InitGoogleTest(&argc, argv);
	g_gpu = bxc::available();
	if (g_gpu.usable)
		std::printf("GPU: usable; pool memory: %s\n", host_kind_name(HostKind::Registered).c_str());
	else
		std::printf("no GPU found: %s; GPU tests are skipped\n", g_gpu.why.c_str());
	beluga::xfer::test::test_seed();
	const int rc = RUN_ALL_TESTS();
	if (rc == 0 && !g_gpu.usable)
		return 77;
	return rc;
}
