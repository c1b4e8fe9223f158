// SPDX-License-Identifier: Apache-2.0
// The C++ interface of the data path (beluga/xfer.hpp): its value types agree
// with the C API, its errors name what was refused, and CpuCopier through a
// Transfer matches the reference byte for byte on every layout kind.
#include <beluga/xfer.hpp>

#include "layout_gen.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace {

using beluga::xfer::Backend;
using beluga::xfer::BlockRef;
using beluga::xfer::CpuCopier;
using beluga::xfer::CpuOptions;
using beluga::xfer::Dir;
using beluga::xfer::Error;
using beluga::xfer::LayerRange;
using beluga::xfer::Order;
using beluga::xfer::Paged;
using beluga::xfer::Shape;
using beluga::xfer::Strides;
using beluga::xfer::Transfer;
using beluga::xfer::test::Case;
using beluga::xfer::test::Generator;
using beluga::xfer::test::Kind;

// what() of the Error @f throws, with its code checked.
template <class F> std::string error_of(F &&f, int code = EINVAL)
{
	try {
		f();
	} catch (const Error &e) {
		EXPECT_EQ(e.code().value(), code) << e.what();
		return e.what();
	}
	ADD_FAILURE() << "no beluga::xfer::Error thrown";
	return {};
}

TEST(XferHpp, ShapeMatchesTheCGeometry)
{
	const Shape s(4, 16, 8, 128, BELUGA_KV_BF16);
	const beluga_kv_shape &c = s.c();
	EXPECT_EQ(s.dtype_size(), 2u);
	EXPECT_EQ(s.row_bytes(), beluga_kv_row_bytes(&c));
	EXPECT_EQ(s.slice_bytes(), 16u * 8 * 128 * 2);
	EXPECT_EQ(s.layer_bytes(), 2 * s.slice_bytes());
	EXPECT_EQ(s.block_bytes(), 4 * s.layer_bytes());
	EXPECT_EQ(s.layer_offset(3), 3 * s.layer_bytes());
	EXPECT_EQ(s.slice_offset(2, 1), beluga_kv_slice_offset(&c, 2, 1));
	EXPECT_THROW(s.layer_offset(4), std::out_of_range);
	EXPECT_THROW(s.slice_offset(0, 2), std::out_of_range);
	EXPECT_TRUE(Shape(c) == s);
}

TEST(XferHpp, BadShapesSayWhy)
{
	EXPECT_NE(error_of([] { Shape(4, 16, 8, 128, 99); }).find("unknown dtype 99"), std::string::npos);
	EXPECT_NE(error_of([] { Shape(0, 16, 8, 128, BELUGA_KV_FP16); }).find("num_layers 0"), std::string::npos);
	EXPECT_NE(error_of([] { Shape(BELUGA_KV_MAX_LAYERS + 1, 16, 8, 128, BELUGA_KV_FP16); }).find("1..256"),
		  std::string::npos);
	EXPECT_NE(error_of([] { Shape(2, 0, 8, 128, BELUGA_KV_FP16); }).find("block_size 0"), std::string::npos);
	beluga_kv_shape c{2, 16, 8, 128, BELUGA_KV_FP16, 1};
	EXPECT_NE(error_of([&] { Shape{c}; }).find("reserved 0"), std::string::npos);
}

TEST(XferHpp, PagedConstructorsMatchTheC)
{
	const Shape s(3, 16, 4, 64, BELUGA_KV_FP16);
	std::vector<char> buf(64);
	std::vector<void *> bases = {buf.data(), buf.data() + 16, buf.data() + 32};
	for (Backend b : {Backend::FlashAttn, Backend::FlashInfer})
		for (Order o : {Order::NHD, Order::HND}) {
			SCOPED_TRACE(std::string(backend_name(b)) + "/" + order_name(o));
			beluga_kv_paged want;
			ASSERT_EQ(beluga_kv_paged_vllm_per_layer(&want, &s.c(), 10, uint32_t(b), uint32_t(o), bases.data()), 0);
			const Paged p = Paged::vllm_per_layer(s, 10, b, o, bases);
			EXPECT_EQ(p.num_blocks(), 10u);
			EXPECT_EQ(p.strides(), (Strides{want.stride_block, want.stride_kv, want.stride_token, want.stride_head}));
			for (uint32_t l = 0; l < 3; l++)
				EXPECT_EQ(p.layer_base(l), bases[l]);
			ASSERT_EQ(beluga_kv_paged_vllm_cross_layer(&want, &s.c(), 10, uint32_t(b), uint32_t(o), buf.data()), 0);
			const Paged x = Paged::vllm_cross_layer(s, 10, b, o, buf.data());
			EXPECT_EQ(x.strides(), (Strides{want.stride_block, want.stride_kv, want.stride_token, want.stride_head}));
			for (uint32_t l = 0; l < 3; l++)
				EXPECT_EQ(x.layer_base(l), want.layer_base[l]);
		}
	// The span a layer covers: NHD FlashAttention, contiguous per layer.
	const Paged fa = Paged::vllm_per_layer(s, 10, Backend::FlashAttn, Order::NHD, bases);
	EXPECT_EQ(fa.layer_span_bytes(), 2u * 10 * 16 * 4 * 64 * 2);
	EXPECT_THROW(fa.layer_base(3), std::out_of_range);
	EXPECT_EQ(beluga::xfer::parse_backend("flashinfer"), Backend::FlashInfer);
	EXPECT_EQ(beluga::xfer::parse_order("HND"), Order::HND);
	EXPECT_THROW(beluga::xfer::parse_backend("mla"), std::invalid_argument);
	EXPECT_THROW(beluga::xfer::parse_order("nhd"), std::invalid_argument);
}

TEST(XferHpp, BadPagedCachesSayWhy)
{
	const Shape s(2, 16, 4, 64, BELUGA_KV_FP16);
	std::vector<char> buf(64);
	std::vector<void *> two = {buf.data(), buf.data()}, one = {buf.data()}, null = {buf.data(), nullptr};
	const Strides ok{2 * 16 * 4 * 64, 16 * 4 * 64, 4 * 64, 64};
	EXPECT_NE(error_of([&] { Paged::strided(s, 0, ok, two); }).find("num_blocks must be positive"), std::string::npos);
	EXPECT_NE(error_of([&] { Paged::strided(s, 4, ok, one); }).find("1 layer bases for 2 layers"), std::string::npos);
	EXPECT_NE(error_of([&] { Paged::strided(s, 4, ok, null); }).find("layer 1's base address is NULL"),
		  std::string::npos);
	EXPECT_NE(error_of([&] { Paged::strided(s, 4, {ok.block, ok.kv, 1, ok.head}, two); }).find("alias"),
		  std::string::npos);
	EXPECT_NE(error_of([&] { Paged::vllm_cross_layer(s, 4, Backend::FlashAttn, Order::NHD, nullptr); }).find("NULL"),
		  std::string::npos);
	EXPECT_NO_THROW(Paged::strided(s, 4, ok, two));
}

TEST(XferHpp, TransfersNameTheItemTheyRefuse)
{
	const Shape s(2, 16, 4, 64, BELUGA_KV_FP16);
	std::vector<char> paged_mem(s.block_bytes() * 4), pool(s.block_bytes() * 4);
	std::vector<void *> bases = {paged_mem.data(), paged_mem.data() + paged_mem.size() / 2};
	const Paged p = Paged::vllm_per_layer(s, 2, Backend::FlashAttn, Order::NHD, bases);
	char *b0 = pool.data(), *b1 = pool.data() + s.block_bytes();
	EXPECT_NE(error_of([&] { Transfer(p, {{0, b0}, {2, b1}}, Dir::Gather); }).find("item 1 names engine block 2, the cache has 2"),
		  std::string::npos);
	EXPECT_NE(error_of([&] { Transfer(p, {{0, b0}, {1, nullptr}}, Dir::Scatter); }).find("item 1's pool block is NULL"),
		  std::string::npos);
	try {
		Transfer(p, {{0, b0}, {1, b0}}, Dir::Gather);
		ADD_FAILURE() << "a pool block written twice was accepted";
	} catch (const std::invalid_argument &e) {
		EXPECT_NE(std::string(e.what()).find("a pool block is named twice (items 0 and 1)"), std::string::npos);
	}
	EXPECT_THROW(Transfer(p, {{1, b0}, {1, b1}}, Dir::Scatter), std::invalid_argument);
	EXPECT_NE(error_of([&] { Transfer(p, {{0, b0}}, Dir::Gather, LayerRange{1, 1}); }).find("layers [1, 1)"),
		  std::string::npos);
	EXPECT_NE(error_of([&] { Transfer(p, {{0, b0}}, Dir::Gather, LayerRange{0, 3}); }).find("of the 2 layers"),
		  std::string::npos);
	// Reading one pool block into two engine blocks and writing one engine
	// block into two pool blocks are fine.
	EXPECT_NO_THROW(Transfer(p, {{0, b0}, {1, b0}}, Dir::Scatter));
	EXPECT_NO_THROW(Transfer(p, {{1, b0}, {1, b1}}, Dir::Gather));
	const Transfer t(p, {{1, b0}}, Dir::Gather, LayerRange{1, 2});
	EXPECT_EQ(t.pool_bytes_needed(), s.block_bytes());
	EXPECT_EQ(t.runs(), std::make_pair(size_t(s.slice_bytes()), uint64_t(2)));
	EXPECT_EQ(Transfer(p, {}, Dir::Gather).size(), 0u);
}

// Every layout kind: CpuCopier through Transfer == ref_copy through Transfer
// == the C reference on a copy of the same buffers.
class HppVsC : public ::testing::TestWithParam<int> {};

TEST_P(HppVsC, CpuCopierMatchesTheCReference)
{
	Generator gen(beluga::xfer::test::test_seed() + 31 * GetParam());
	std::mt19937_64 rng(beluga::xfer::test::test_seed() ^ 0x9e37);
	CpuCopier cpu(CpuOptions{2, beluga::xfer::NtMode::Always, 1, 1});
	for (int round = 0; round < 20; round++) {
		const Case c = gen.make(Kind(GetParam()));
		for (Dir dir : {Dir::Gather, Dir::Scatter}) {
			SCOPED_TRACE(c.describe() + " " + dir_name(dir));
			std::vector<unsigned char> paged(c.paged_bytes), pool(c.pool_bytes);
			beluga::xfer::test::fill_random(paged, rng);
			beluga::xfer::test::fill_random(pool, rng);
			auto paged2 = paged, pool2 = pool, paged3 = paged, pool3 = pool;

			const beluga_kv_paged cp = c.paged_at(paged.data());
			const auto cr = c.refs_at(pool.data());
			const beluga_kv_xfer x{&cp, cr.data(), cr.size(), c.layer_begin, c.layer_end, uint32_t(dir), 0};
			ASSERT_EQ(beluga_kv_ref_copy(&x), 0);

			const beluga_kv_paged cp2 = c.paged_at(paged2.data()), cp3 = c.paged_at(paged3.data());
			std::vector<void *> b2(cp2.layer_base, cp2.layer_base + c.shape.num_layers);
			std::vector<void *> b3(cp3.layer_base, cp3.layer_base + c.shape.num_layers);
			const Strides st{c.strides[0], c.strides[1], c.strides[2], c.strides[3]};
			const Paged p2 = Paged::strided(Shape(c.shape), c.num_blocks, st, b2);
			const Paged p3 = Paged::strided(Shape(c.shape), c.num_blocks, st, b3);
			const LayerRange lr{c.layer_begin, c.layer_end};
			cpu.copy(Transfer(p2, c.refs_at(pool2.data()), dir, lr));
			beluga::xfer::ref_copy(Transfer(p3, c.refs_at(pool3.data()), dir, lr));
			ASSERT_TRUE(paged == paged2 && pool == pool2) << "CpuCopier differs from the C reference";
			ASSERT_TRUE(paged == paged3 && pool == pool3) << "ref_copy differs from the C reference";
		}
	}
}

INSTANTIATE_TEST_SUITE_P(AllLayouts, HppVsC, ::testing::Range(0, int(Kind::Count)),
			 [](const ::testing::TestParamInfo<int> &i) {
				 std::string n = beluga::xfer::test::kind_name(Kind(i.param));
				 for (char &ch : n)
					 if (!std::isalnum(static_cast<unsigned char>(ch)))
						 ch = '_';
				 return n;
			 });

TEST(XferHpp, ErrorCarriesTheCodeAndTheContext)
{
	const Error e(-EINVAL, "gather transfer", "item 3");
	EXPECT_EQ(e.code().value(), EINVAL);
	EXPECT_STREQ(e.what(), (std::string("gather transfer: ") + std::strerror(EINVAL) + " (item 3)").c_str());
	EXPECT_THROW(beluga::xfer::check(-ENOMEM, "x"), Error);
	EXPECT_EQ(beluga::xfer::check(3, "x"), 3);
	EXPECT_THROW(CpuCopier(CpuOptions{2000, beluga::xfer::NtMode::Auto, 0, 0}), Error);
	EXPECT_THROW(beluga::xfer::parse_nt_mode("sometimes"), std::invalid_argument);
}

} // namespace
