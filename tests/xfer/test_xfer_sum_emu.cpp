// SPDX-License-Identifier: Apache-2.0
// The GPU checksum kernels (libbeluga/xfer/src/cuda/sum_kernel.cu), run on
// the CPU: their per-unit math and work split (f64_sum.hpp, the header the
// kernels include, compiled here by the host compiler), driven by the
// kernels' block/thread/unroll loops, with each block's threads and the
// blocks added in a scrambled order (as warps and atomics would), against the
// KV store's own checksum (beluga_kvc_checksum: libbeluga/cpu's lane sums)
// for every length up to 320 bytes and many more, at every alignment, and
// for gathers of random layouts of every kind.  This runs everywhere; the
// same checks on a GPU are in gpu/test_xfer_gpu.cpp (GpuChecksum.*).
#include <beluga/kvcache.h>
#include <beluga/xfer.h>

#include "cuda/f64_sum.hpp"
#include "cuda/kernel_args.hpp"
#include "layout_gen.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace {

using namespace beluga::xfer::cuda;
using beluga::xfer::test::Case;
using beluga::xfer::test::Generator;
using beluga::xfer::test::Kind;

// The unit's bytes as the kernel's registers hold them (little-endian).
void unit_words(const unsigned char *b, unsigned W, uint64_t &lo, uint64_t &hi)
{
	lo = hi = 0;
	std::memcpy(&lo, b, W < 8 ? W : 8);
	if (W == 16)
		std::memcpy(&hi, b + 8, 8);
}

// Adds per-thread partial sums as the kernel's reduction does, but in an
// order scrambled by `rng` (the atomics' order is not defined).
F64Acc add_scrambled(std::vector<F64Acc> parts, std::mt19937_64 &rng)
{
	std::shuffle(parts.begin(), parts.end(), rng);
	F64Acc s;
	f64_zero(s);
	for (const F64Acc &p : parts)
		f64_merge(s, p);
	return s;
}

// checksum_kernel for one buffer, thread by thread.
uint64_t emulate_checksum(const unsigned char *p, uint64_t len, unsigned max_ctas, std::mt19937_64 &rng)
{
	const unsigned W = sum_vec_bytes(reinterpret_cast<uintptr_t>(p));
	const uint64_t units = len / W;
	const SumGrid g = sum_grid(1, units, max_ctas);
	std::vector<F64Acc> parts;
	for (unsigned bx = 0; bx < g.x; bx++)
		for (unsigned tid = 0; tid < kSumThreads; tid++) {
			F64Acc s;
			f64_zero(s);
			const uint64_t step = uint64_t(g.x) * kSumThreads * kSumUnroll;
			for (uint64_t base = uint64_t(bx) * kSumThreads * kSumUnroll + tid; base < units; base += step)
				for (unsigned i = 0; i < kSumUnroll; i++) {
					const uint64_t u = base + i * kSumThreads;
					if (u >= units)
						continue;
					uint64_t lo, hi;
					unit_words(p + u * W, W, lo, hi);
					f64_add_unit(s, u * W, lo, hi, W);
				}
			const uint64_t tail = units * W;
			if (bx == 0 && tail + tid < len)
				f64_add_unit(s, tail + tid, p[tail + tid], 0, 1);
			parts.push_back(s);
		}
	return f64_finish(add_scrambled(std::move(parts), rng), len);
}

TEST(SumEmu, KnownVectorsOfTheFormat)
{
	std::vector<unsigned char> b(1000 + 16);
	std::mt19937_64 rng(1);
	for (unsigned mis = 0; mis < 16; mis++) {
		unsigned char *p = b.data() + mis;
		for (size_t i = 0; i < 1000; i++)
			p[i] = uint8_t(i);
		EXPECT_EQ(emulate_checksum(p, 0, 4, rng), 0xe20cd9a04c3e3c37ull) << mis;
		EXPECT_EQ(emulate_checksum(p, 1000, 4, rng), 0x0e580d5039ea8ef6ull) << mis;
	}
}

TEST(SumEmu, ChecksumKernelMatchesTheStoreAtEveryLengthAndAlignment)
{
	const uint64_t seed = beluga::xfer::test::test_seed();
	std::mt19937_64 rng(seed);
	std::vector<unsigned char> buf(1 << 18);
	for (auto &c : buf)
		c = uint8_t(rng());
	std::vector<uint64_t> lens;
	for (uint64_t l = 0; l <= 320; l++)
		lens.push_back(l);
	for (uint64_t l : {1023ull, 1024ull, 1025ull, 4095ull, 4096ull, 4097ull, 65535ull, 65536ull, 65537ull,
			   131072ull + 24, 200000ull})
		lens.push_back(l);
	for (int i = 0; i < 40; i++)
		lens.push_back(rng() % 250000);
	for (uint64_t len : lens)
		for (unsigned mis = 0; mis < 16; mis++) {
			const unsigned char *p = buf.data() + 64 + mis;
			// One block, a few, and more blocks than units (idle threads).
			for (unsigned ctas : {1u, 3u, 528u})
				ASSERT_EQ(emulate_checksum(p, len, ctas, rng), beluga_kvc_checksum(p, len))
					<< "len " << len << " misalignment " << mis << " grid cap " << ctas;
		}
}

// gather_sum_kernel (fused mode), thread by thread: copies and sums.
template <unsigned W, typename I>
bool emulate_gather_sum(const KernelArgs &a, unsigned max_ctas, std::vector<F64Acc> &acc, std::mt19937_64 &rng)
{
	const I upr = I(a.pieces_per_ref * a.units_per_piece);
	const SumGrid g = sum_grid(a.nrefs, upr, max_ctas);
	const I step = I(g.x) * kSumThreads * kSumUnroll;
	acc.assign(a.nrefs, F64Acc{});
	for (uint64_t by = 0; by < g.y; by++)
		for (uint64_t r = by; r < a.nrefs; r += g.y) {
			const char *pool = static_cast<const char *>(a.refs[r].pool);
			std::vector<F64Acc> parts;
			for (unsigned bx = 0; bx < g.x; bx++)
				for (unsigned tid = 0; tid < kSumThreads; tid++) {
					F64Acc s;
					f64_zero(s);
					for (I base = I(bx) * kSumThreads * kSumUnroll + tid; base < upr; base += step)
						for (unsigned i = 0; i < kSumUnroll; i++) {
							const I u = base + I(i) * kSumThreads;
							if (u >= upr)
								continue;
							const UnitAddr ad = unit_addr<W, I>(a, I(r) * upr + u);
							if (reinterpret_cast<uintptr_t>(ad.src) % W ||
							    reinterpret_cast<uintptr_t>(ad.dst) % W)
								return false;
							unsigned char v[W];
							std::memcpy(v, ad.src, W);
							std::memcpy(ad.dst, v, W);
							uint64_t lo, hi;
							unit_words(v, W, lo, hi);
							f64_add_unit(s, uint64_t(ad.dst - pool), lo, hi, W);
						}
					parts.push_back(s);
				}
			acc[r] = add_scrambled(std::move(parts), rng);
		}
	return true;
}

template <unsigned W>
bool emulate_any(const KernelArgs &a, unsigned ctas, bool wide, std::vector<F64Acc> &acc, std::mt19937_64 &rng)
{
	return wide ? emulate_gather_sum<W, uint64_t>(a, ctas, acc, rng)
		    : emulate_gather_sum<W, uint32_t>(a, ctas, acc, rng);
}

TEST(SumEmu, FusedGatherMatchesTheReferenceAndTheStoreChecksum)
{
	Generator gen(beluga::xfer::test::test_seed() + 7);
	unsigned widths_seen = 0;
	for (int i = 0; i < 240; i++) {
		Case c = gen.make(Kind(i % int(Kind::Count)));
		c.layer_begin = 0; // a checksum covers whole blocks
		c.layer_end = c.shape.num_layers;
		SCOPED_TRACE(c.describe());
		std::vector<unsigned char> paged(c.paged_bytes), pool(c.pool_bytes);
		beluga::xfer::test::fill_random(paged, gen.rng());
		beluga::xfer::test::fill_random(pool, gen.rng());
		std::vector<unsigned char> want = pool;

		const beluga_kv_paged pg = c.paged_at(paged.data());
		const auto want_refs = c.refs_at(want.data());
		const beluga_kv_xfer wx{&pg, want_refs.data(), want_refs.size(), 0, c.layer_end, BELUGA_KV_GATHER, 0};
		ASSERT_EQ(beluga_kv_ref_copy(&wx), 0);

		const auto refs = c.refs_at(pool.data());
		const beluga_kv_xfer x{&pg, refs.data(), refs.size(), 0, c.layer_end, BELUGA_KV_GATHER, 0};
		ASSERT_EQ(beluga_kv_xfer_check(&x), 0);
		const beluga::xfer::Plan pl = beluga::xfer::make_plan(x);
		const unsigned vec = vector_bytes(x, pl);
		widths_seen |= vec;
		const KernelArgs a = kernel_args(x, pl, refs.data(), vec);
		const unsigned ctas = unsigned(gen.uniform(1, 600));
		const bool wide = i % 3 == 0;
		std::vector<F64Acc> acc;
		bool aligned = false;
		switch (vec) {
		case 16: aligned = emulate_any<16>(a, ctas, wide, acc, gen.rng()); break;
		case 8: aligned = emulate_any<8>(a, ctas, wide, acc, gen.rng()); break;
		case 4: aligned = emulate_any<4>(a, ctas, wide, acc, gen.rng()); break;
		case 2: aligned = emulate_any<2>(a, ctas, wide, acc, gen.rng()); break;
		default: aligned = emulate_any<1>(a, ctas, wide, acc, gen.rng()); break;
		}
		ASSERT_TRUE(aligned) << "an access is not aligned to the " << vec << "-byte unit";
		ASSERT_TRUE(pool == want) << "the fused gather's pool differs from the reference";
		const size_t block = beluga_kv_block_bytes(&c.shape);
		for (size_t r = 0; r < refs.size(); r++)
			ASSERT_EQ(f64_finish(acc[r], block), beluga_kvc_checksum(refs[r].pool, block)) << "ref " << r;
	}
	EXPECT_EQ(widths_seen & 16, 16u) << "no case used 16-byte units";
	EXPECT_NE(widths_seen & 7, 0u) << "no case used narrow units";
}

} // namespace
