// SPDX-License-Identifier: Apache-2.0
// The CPU data path against the reference, byte for byte, on random layouts
// of every kind, odd sizes, every dtype, layer subsets, both directions, with
// and without threads and non-temporal stores.
#include <beluga/xfer.h>

#include "layout_gen.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <vector>

namespace {

using beluga::xfer::test::Case;
using beluga::xfer::test::Generator;
using beluga::xfer::test::Kind;
using beluga::xfer::test::Limits;

struct CpuDeleter {
	void operator()(beluga_kv_cpu *c) const { beluga_kv_cpu_destroy(c); }
};
using CpuPtr = std::unique_ptr<beluga_kv_cpu, CpuDeleter>;

CpuPtr make_cpu(uint32_t threads, uint32_t nt_mode, size_t mt_min = 1)
{
	beluga_kv_cpu_opts o{threads, nt_mode, 1, mt_min};
	beluga_kv_cpu *c = nullptr;
	EXPECT_EQ(beluga_kv_cpu_create(&o, &c), 0);
	return CpuPtr(c);
}

// Runs the reference and `cpu` (NULL: the caller-only path) on identical
// random buffers and compares every byte of both buffers afterwards.
void check_case(const Case &c, uint32_t dir, beluga_kv_cpu *cpu, std::mt19937_64 &rng)
{
	SCOPED_TRACE(c.describe() + (dir == BELUGA_KV_GATHER ? " gather" : " scatter"));
	std::vector<unsigned char> paged(c.paged_bytes), pool(c.pool_bytes);
	beluga::xfer::test::fill_random(paged, rng);
	beluga::xfer::test::fill_random(pool, rng);
	std::vector<unsigned char> paged2 = paged, pool2 = pool;

	const beluga_kv_paged p1 = c.paged_at(paged.data()), p2 = c.paged_at(paged2.data());
	const auto r1 = c.refs_at(pool.data()), r2 = c.refs_at(pool2.data());
	const beluga_kv_xfer x1{&p1, r1.data(), r1.size(), c.layer_begin, c.layer_end, dir, 0};
	const beluga_kv_xfer x2{&p2, r2.data(), r2.size(), c.layer_begin, c.layer_end, dir, 0};
	ASSERT_EQ(beluga_kv_ref_copy(&x1), 0);
	ASSERT_EQ(beluga_kv_cpu_copy(cpu, &x2), 0);
	ASSERT_TRUE(paged == paged2) << "paged cache differs";
	ASSERT_TRUE(pool == pool2) << "pool differs";
}

class CpuVsRef : public ::testing::TestWithParam<int> {};

TEST_P(CpuVsRef, RandomLayoutsMatchByteForByte)
{
	const Kind kind = Kind(GetParam());
	Generator gen(beluga::xfer::test::test_seed() + 77 * GetParam());
	CpuPtr threaded = make_cpu(3, BELUGA_KV_NT_AUTO);
	CpuPtr nt = make_cpu(2, BELUGA_KV_NT_ALWAYS);
	for (int iter = 0; iter < 40; iter++) {
		const Case c = gen.make(kind);
		for (uint32_t dir : {BELUGA_KV_GATHER, BELUGA_KV_SCATTER}) {
			check_case(c, dir, nullptr, gen.rng());
			check_case(c, dir, threaded.get(), gen.rng());
			check_case(c, dir, nt.get(), gen.rng());
			if (HasFatalFailure())
				return;
		}
	}
}

INSTANTIATE_TEST_SUITE_P(AllLayouts, CpuVsRef, ::testing::Range(0, int(Kind::Count)),
			 [](const auto &info) { return beluga::xfer::test::kind_param_name(info.param); });

// Real model shapes (Llama-3-8B: 32 layers, 8 heads of 128, bf16) in every
// vLLM layout, large enough to be split across threads and to stream.
TEST(CpuVsRefLarge, ModelShapesAllVllmLayouts)
{
	Generator gen(beluga::xfer::test::test_seed() + 5);
	CpuPtr cpu = make_cpu(4, BELUGA_KV_NT_AUTO, 1 << 20);
	const beluga_kv_shape shape = {32, 16, 8, 128, BELUGA_KV_BF16, 0};
	for (int k = 0; k < int(Kind::Count); k++) {
		const Case c = gen.make_shape(Kind(k), shape, 12, 6);
		for (uint32_t dir : {BELUGA_KV_GATHER, BELUGA_KV_SCATTER})
			check_case(c, dir, cpu.get(), gen.rng());
		if (HasFatalFailure())
			return;
	}
}

TEST(Cpu, CreateRejectsBadOptions)
{
	beluga_kv_cpu *c = reinterpret_cast<beluga_kv_cpu *>(1);
	EXPECT_EQ(beluga_kv_cpu_create(nullptr, nullptr), -EINVAL);
	beluga_kv_cpu_opts o{1, 3, 0, 0}; // nt_mode
	EXPECT_EQ(beluga_kv_cpu_create(&o, &c), -EINVAL);
	o = {5000, 0, 0, 0}; // threads
	EXPECT_EQ(beluga_kv_cpu_create(&o, &c), -EINVAL);
	ASSERT_EQ(beluga_kv_cpu_create(nullptr, &c), 0);
	ASSERT_NE(c, nullptr);
	beluga_kv_cpu_destroy(c);
	beluga_kv_cpu_destroy(nullptr);
}

TEST(Cpu, RejectsMalformedTransfersUntouched)
{
	Generator gen(beluga::xfer::test::test_seed() + 9);
	const Case c = gen.make(Kind::FlashInferNHD);
	std::vector<unsigned char> paged(c.paged_bytes, 1), pool(c.pool_bytes, 2);
	const auto before = pool;
	beluga_kv_paged p = c.paged_at(paged.data());
	auto refs = c.refs_at(pool.data());
	CpuPtr cpu = make_cpu(2, BELUGA_KV_NT_AUTO);
	EXPECT_EQ(beluga_kv_cpu_copy(cpu.get(), nullptr), -EINVAL);
	beluga_kv_xfer x{&p, refs.data(), refs.size(), 0, c.shape.num_layers, BELUGA_KV_GATHER, 0};
	refs.back().pool = nullptr;
	EXPECT_EQ(beluga_kv_cpu_copy(cpu.get(), &x), -EINVAL);
	EXPECT_TRUE(pool == before);
	refs = c.refs_at(pool.data());
	x.refs = refs.data();
	x.layer_end = c.shape.num_layers + 1;
	EXPECT_EQ(beluga_kv_cpu_copy(nullptr, &x), -EINVAL);
	x.layer_end = c.shape.num_layers;
	p.stride_head = 0;
	p.shape.num_kv_heads = 2;
	EXPECT_EQ(beluga_kv_cpu_copy(nullptr, &x), -EINVAL);
	EXPECT_TRUE(pool == before);
}

// Many copies through one copier, alternating directions and sizes around the
// threading threshold: the pool's job hand-off must not lose or mix parts.
TEST(Cpu, ManyCopiesThroughOneCopier)
{
	Generator gen(beluga::xfer::test::test_seed() + 11);
	CpuPtr cpu = make_cpu(4, BELUGA_KV_NT_AUTO, 4096);
	for (int i = 0; i < 300; i++) {
		const Case c = gen.make_random(Limits{4, 16, 4, 64, 12, 12});
		check_case(c, i % 2 ? BELUGA_KV_GATHER : BELUGA_KV_SCATTER, cpu.get(), gen.rng());
		if (HasFatalFailure())
			return;
	}
}

} // namespace
