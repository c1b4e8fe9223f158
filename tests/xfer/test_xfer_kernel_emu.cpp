// SPDX-License-Identifier: Apache-2.0
// The GPU kernel's addressing, run on the CPU: the exact unit_addr() the
// kernel uses (compiled here by the host compiler), driven by the kernel's
// grid-stride/unroll loop, against the reference, byte for byte, on random
// layouts.  Also checks that every access is aligned to the vector width the
// launcher picked, since a misaligned vector access faults on a GPU.  This
// runs everywhere, so the kernel's logic is covered even where no GPU is.
#include <beluga/xfer.h>

#include "cuda/kernel_args.hpp"
#include "layout_gen.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace {

using namespace beluga::xfer::cuda;
using beluga::xfer::test::Case;
using beluga::xfer::test::Generator;
using beluga::xfer::test::Kind;

// One launch of copy_kernel<W, I> with `grid` blocks, thread by thread.
template <unsigned W, typename I> bool emulate(const KernelArgs &a, unsigned grid)
{
	const I total = I(a.nrefs * a.pieces_per_ref * a.units_per_piece);
	const I step = I(grid) * kThreads * kUnroll;
	for (unsigned b = 0; b < grid; b++)
		for (unsigned tid = 0; tid < kThreads; tid++)
			for (I base = I(b) * kThreads * kUnroll + tid; base < total; base += step) {
				unsigned char v[kUnroll][W];
				char *dst[kUnroll];
				for (int i = 0; i < kUnroll; i++) {
					const I u = base + I(i) * kThreads;
					dst[i] = nullptr;
					if (u < total) {
						const UnitAddr ad = unit_addr<W, I>(a, u);
						if (reinterpret_cast<uintptr_t>(ad.src) % W || reinterpret_cast<uintptr_t>(ad.dst) % W)
							return false;
						std::memcpy(v[i], ad.src, W);
						dst[i] = ad.dst;
					}
				}
				for (int i = 0; i < kUnroll; i++)
					if (dst[i])
						std::memcpy(dst[i], v[i], W);
			}
	return true;
}

template <unsigned W> bool emulate_any(const KernelArgs &a, unsigned grid, bool wide)
{
	if (!wide && !fits_32bit(a))
		return false;
	return wide ? emulate<W, uint64_t>(a, grid) : emulate<W, uint32_t>(a, grid);
}

// The launcher's choices, with the index width forced (wide: 64-bit).
bool launch(const beluga_kv_xfer &x, unsigned max_ctas, bool wide, unsigned *vec_out)
{
	const beluga::xfer::Plan pl = beluga::xfer::make_plan(x);
	const unsigned vec = vector_bytes(x, pl);
	*vec_out = vec;
	const KernelArgs a = kernel_args(x, pl, x.refs, vec);
	const uint64_t total = a.nrefs * a.pieces_per_ref * a.units_per_piece;
	const uint64_t per_cta = uint64_t(kThreads) * kUnroll;
	const unsigned grid = unsigned(std::min<uint64_t>((total + per_cta - 1) / per_cta, max_ctas));
	switch (vec) {
	case 16:
		return emulate_any<16>(a, grid, wide);
	case 8:
		return emulate_any<8>(a, grid, wide);
	case 4:
		return emulate_any<4>(a, grid, wide);
	case 2:
		return emulate_any<2>(a, grid, wide);
	default:
		return emulate_any<1>(a, grid, wide);
	}
}

class KernelEmu : public ::testing::TestWithParam<int> {};

TEST_P(KernelEmu, MatchesReferenceAndStaysAligned)
{
	Generator gen(beluga::xfer::test::test_seed() + 101 * GetParam());
	unsigned widths_seen = 0;
	for (int iter = 0; iter < 40; iter++) {
		const Case c = gen.make(Kind(GetParam()));
		for (uint32_t dir : {BELUGA_KV_GATHER, BELUGA_KV_SCATTER}) {
			SCOPED_TRACE(c.describe() + (dir == BELUGA_KV_GATHER ? " gather" : " scatter"));
			std::vector<unsigned char> paged(c.paged_bytes + 16), pool(c.pool_bytes + 16);
			beluga::xfer::test::fill_random(paged, gen.rng());
			beluga::xfer::test::fill_random(pool, gen.rng());
			auto paged2 = paged, pool2 = pool;
			// Vector buffers are 16-byte aligned, like device allocations; the
			// case's own offsets then decide the alignment that matters.
			auto align16 = [](std::vector<unsigned char> &v) {
				return v.data() + ((16 - reinterpret_cast<uintptr_t>(v.data()) % 16) % 16);
			};
			const beluga_kv_paged p1 = c.paged_at(align16(paged)), p2 = c.paged_at(align16(paged2));
			const auto r1 = c.refs_at(align16(pool)), r2 = c.refs_at(align16(pool2));
			const beluga_kv_xfer x1{&p1, r1.data(), r1.size(), c.layer_begin, c.layer_end, dir, 0};
			const beluga_kv_xfer x2{&p2, r2.data(), r2.size(), c.layer_begin, c.layer_end, dir, 0};
			ASSERT_EQ(beluga_kv_ref_copy(&x1), 0);
			unsigned vec = 0;
			ASSERT_TRUE(launch(x2, 1 + iter % 4, iter % 2, &vec))
				<< "misaligned access (or no 32-bit fit) for vector width " << vec;
			widths_seen |= vec;
			ASSERT_TRUE(paged == paged2) << "paged cache differs (vector width " << vec << ")";
			ASSERT_TRUE(pool == pool2) << "pool differs (vector width " << vec << ")";
		}
	}
	std::printf("vector widths used: %s%s%s%s%s\n", widths_seen & 16 ? "16 " : "", widths_seen & 8 ? "8 " : "",
		    widths_seen & 4 ? "4 " : "", widths_seen & 2 ? "2 " : "", widths_seen & 1 ? "1" : "");
}

INSTANTIATE_TEST_SUITE_P(AllLayouts, KernelEmu, ::testing::Range(0, int(Kind::Count)),
			 [](const auto &info) { return beluga::xfer::test::kind_param_name(info.param); });

// 16-byte vectors on the model shapes with 16-byte aligned bases: the fast case.
TEST(KernelEmu, ModelShapeUses16ByteVectors)
{
	const beluga_kv_shape s = {32, 16, 8, 128, BELUGA_KV_BF16, 0};
	std::vector<unsigned char> cache(4 * beluga_kv_block_bytes(&s) + 16), pool(2 * beluga_kv_block_bytes(&s) + 16);
	unsigned char *c16 = cache.data() + ((16 - reinterpret_cast<uintptr_t>(cache.data()) % 16) % 16);
	unsigned char *p16 = pool.data() + ((16 - reinterpret_cast<uintptr_t>(pool.data()) % 16) % 16);
	for (uint32_t order : {BELUGA_KV_NHD, BELUGA_KV_HND}) {
		beluga_kv_paged p;
		ASSERT_EQ(beluga_kv_paged_vllm_cross_layer(&p, &s, 4, BELUGA_KV_VLLM_FLASH_ATTN, order, c16), 0);
		const beluga_kv_block_ref refs[2] = {{3, p16}, {1, p16 + beluga_kv_block_bytes(&s)}};
		const beluga_kv_xfer x{&p, refs, 2, 0, 32, BELUGA_KV_GATHER, 0};
		const beluga::xfer::Plan pl = beluga::xfer::make_plan(x);
		EXPECT_EQ(vector_bytes(x, pl), 16u);
		EXPECT_EQ(pl.run_bytes, order == BELUGA_KV_NHD ? beluga_kv_block_bytes(&s) : beluga_kv_row_bytes(&s));
	}
}

} // namespace
