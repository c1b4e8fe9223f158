// SPDX-License-Identifier: Apache-2.0
// The reference is the oracle for every fast path, so it is checked here
// against the layout's definition written out independently: every element
// carries its own coordinates, and the test computes where it must land.
#include <beluga/xfer.h>

#include "layout_gen.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <vector>

namespace {

using beluga::xfer::test::Case;
using beluga::xfer::test::Generator;
using beluga::xfer::test::Kind;

// Bytes of element (l, k, b, t, h, d): distinct for every coordinate tuple in
// the small shapes used here (for 1-byte types, distinct with high probability).
void encode(unsigned char *dst, size_t esize, uint64_t l, uint64_t k, uint64_t b, uint64_t t, uint64_t h, uint64_t d)
{
	uint64_t v = ((((l * 2 + k) * 64 + b) * 64 + t) * 64 + h) * 256 + d;
	v = v * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < esize; i++)
		dst[i] = static_cast<unsigned char>(v >> (8 * i));
}

// Byte offset of (l, k, b, t, h, d) in the paged buffer, from the case's strides.
uint64_t paged_at(const Case &c, uint64_t l, uint64_t k, uint64_t b, uint64_t t, uint64_t h, uint64_t d)
{
	const int64_t e = int64_t(b) * c.strides[0] + int64_t(k) * c.strides[1] + int64_t(t) * c.strides[2] +
			  int64_t(h) * c.strides[3] + int64_t(d);
	return c.layer_off[l] + uint64_t(e) * c.esize();
}

// Byte offset inside a pool block: C order [L][2][T][H][D].
uint64_t pool_at(const Case &c, uint64_t l, uint64_t k, uint64_t t, uint64_t h, uint64_t d)
{
	const beluga_kv_shape &s = c.shape;
	return ((((l * 2 + k) * s.block_size + t) * s.num_kv_heads + h) * s.head_size + d) * c.esize();
}

template <typename F> void for_each_elem(const Case &c, F f)
{
	for (size_t r = 0; r < c.blocks.size(); r++)
		for (uint32_t l = c.layer_begin; l < c.layer_end; l++)
			for (uint32_t k = 0; k < 2; k++)
				for (uint32_t t = 0; t < c.shape.block_size; t++)
					for (uint32_t h = 0; h < c.shape.num_kv_heads; h++)
						for (uint32_t d = 0; d < c.shape.head_size; d++)
							f(r, l, k, t, h, d);
}

class RefTest : public ::testing::TestWithParam<int> {};

TEST_P(RefTest, GatherPlacesEveryElementByDefinition)
{
	Generator gen(beluga::xfer::test::test_seed() + 1000 * GetParam());
	for (int iter = 0; iter < 25; iter++) {
		const Case c = gen.make(Kind(GetParam()));
		SCOPED_TRACE(c.describe());
		const size_t es = c.esize();
		std::vector<unsigned char> paged(c.paged_bytes, 0xA5), pool(c.pool_bytes, 0x5A);
		for_each_elem(c, [&](size_t r, uint32_t l, uint32_t k, uint32_t t, uint32_t h, uint32_t d) {
			encode(&paged[paged_at(c, l, k, c.blocks[r], t, h, d)], es, l, k, c.blocks[r], t, h, d);
		});
		std::vector<unsigned char> expect = pool;
		for_each_elem(c, [&](size_t r, uint32_t l, uint32_t k, uint32_t t, uint32_t h, uint32_t d) {
			encode(&expect[c.pool_off[r] + pool_at(c, l, k, t, h, d)], es, l, k, c.blocks[r], t, h, d);
		});
		const beluga_kv_paged p = c.paged_at(paged.data());
		const auto refs = c.refs_at(pool.data());
		const beluga_kv_xfer x{&p, refs.data(), refs.size(), c.layer_begin, c.layer_end, BELUGA_KV_GATHER, 0};
		ASSERT_EQ(beluga_kv_ref_copy(&x), 0);
		ASSERT_TRUE(pool == expect); // includes: nothing outside the moved slices changed
	}
}

TEST_P(RefTest, ScatterPlacesEveryElementByDefinition)
{
	Generator gen(beluga::xfer::test::test_seed() + 1000 * GetParam() + 1);
	for (int iter = 0; iter < 25; iter++) {
		const Case c = gen.make(Kind(GetParam()));
		SCOPED_TRACE(c.describe());
		const size_t es = c.esize();
		std::vector<unsigned char> paged(c.paged_bytes, 0xA5), pool(c.pool_bytes, 0x5A);
		for_each_elem(c, [&](size_t r, uint32_t l, uint32_t k, uint32_t t, uint32_t h, uint32_t d) {
			encode(&pool[c.pool_off[r] + pool_at(c, l, k, t, h, d)], es, l, k, c.blocks[r], t, h, d);
		});
		std::vector<unsigned char> expect = paged;
		for_each_elem(c, [&](size_t r, uint32_t l, uint32_t k, uint32_t t, uint32_t h, uint32_t d) {
			encode(&expect[paged_at(c, l, k, c.blocks[r], t, h, d)], es, l, k, c.blocks[r], t, h, d);
		});
		const beluga_kv_paged p = c.paged_at(paged.data());
		const auto refs = c.refs_at(pool.data());
		const beluga_kv_xfer x{&p, refs.data(), refs.size(), c.layer_begin, c.layer_end, BELUGA_KV_SCATTER, 0};
		ASSERT_EQ(beluga_kv_ref_copy(&x), 0);
		ASSERT_TRUE(paged == expect);
	}
}

INSTANTIATE_TEST_SUITE_P(AllLayouts, RefTest, ::testing::Range(0, int(Kind::Count)),
			 [](const auto &info) { return beluga::xfer::test::kind_param_name(info.param); });

TEST(Ref, RejectsMalformedTransfers)
{
	EXPECT_EQ(beluga_kv_ref_copy(nullptr), -EINVAL);
	Generator gen(beluga::xfer::test::test_seed());
	Case c = gen.make(Kind::CrossNHD);
	std::vector<unsigned char> paged(c.paged_bytes), pool(c.pool_bytes);
	const beluga_kv_paged p = c.paged_at(paged.data());
	auto refs = c.refs_at(pool.data());
	beluga_kv_xfer x{&p, refs.data(), refs.size(), 0, c.shape.num_layers, BELUGA_KV_SCATTER, 0};
	refs[0].paged_block = c.num_blocks;
	const std::vector<unsigned char> before = paged;
	EXPECT_EQ(beluga_kv_ref_copy(&x), -EINVAL);
	EXPECT_TRUE(paged == before); // refused before touching anything
}

TEST(Ref, EmptyTransferIsANoOp)
{
	Generator gen(beluga::xfer::test::test_seed());
	Case c = gen.make(Kind::FlashAttnNHD);
	std::vector<unsigned char> paged(c.paged_bytes);
	const beluga_kv_paged p = c.paged_at(paged.data());
	const beluga_kv_xfer x{&p, nullptr, 0, 0, 1, BELUGA_KV_GATHER, 0};
	EXPECT_EQ(beluga_kv_ref_copy(&x), 0);
}

} // namespace
