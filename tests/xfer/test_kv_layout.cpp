// SPDX-License-Identifier: Apache-2.0
// Pool-block geometry, vLLM layout constructors (strides written out by hand
// from vLLM's shapes and stride orders) and every validation error.
#include <beluga/kv_layout.h>

#include <gtest/gtest.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

namespace {

// Llama-3-8B: 32 layers, 8 KV heads of 128, bf16, 16-token blocks.
beluga_kv_shape llama8b()
{
	return {32, 16, 8, 128, BELUGA_KV_BF16, 0};
}

char *fake(uint64_t off = 0)
{
	return reinterpret_cast<char *>(uintptr_t(1) << 32) + off;
}

TEST(KvLayout, DtypeSizes)
{
	EXPECT_EQ(beluga_kv_dtype_size(BELUGA_KV_FP16), 2u);
	EXPECT_EQ(beluga_kv_dtype_size(BELUGA_KV_BF16), 2u);
	EXPECT_EQ(beluga_kv_dtype_size(BELUGA_KV_FP8_E4M3), 1u);
	EXPECT_EQ(beluga_kv_dtype_size(BELUGA_KV_FP8_E5M2), 1u);
	EXPECT_EQ(beluga_kv_dtype_size(BELUGA_KV_FP32), 4u);
	EXPECT_EQ(beluga_kv_dtype_size(0), 0u);
	EXPECT_EQ(beluga_kv_dtype_size(99), 0u);
}

TEST(KvLayout, PoolGeometryLlama8B)
{
	const beluga_kv_shape s = llama8b();
	ASSERT_EQ(beluga_kv_shape_check(&s), 0);
	EXPECT_EQ(beluga_kv_row_bytes(&s), 256u);
	EXPECT_EQ(beluga_kv_slice_bytes(&s), 32768u);       // 16 tokens * 8 heads * 128 * 2 B
	EXPECT_EQ(beluga_kv_layer_bytes(&s), 65536u);
	EXPECT_EQ(beluga_kv_block_bytes(&s), 2097152u);      // 2 MiB per 16-token block
	EXPECT_EQ(beluga_kv_layer_offset(&s, 31), 31u * 65536);
	EXPECT_EQ(beluga_kv_slice_offset(&s, 3, 1), 3u * 65536 + 32768);
	// [layer][kv][token][head][dim], C order.
	EXPECT_EQ(beluga_kv_elem_offset(&s, 2, 1, 5, 3, 7), (((2u * 2 + 1) * 16 + 5) * 8 + 3) * 128 * 2 + 7 * 2);
	const beluga_kv_shape q = {64, 16, 8, 128, BELUGA_KV_BF16, 0}; // Qwen2.5-32B
	EXPECT_EQ(beluga_kv_block_bytes(&q), 4194304u);
}

TEST(KvLayout, ShapeErrors)
{
	beluga_kv_shape s = llama8b();
	EXPECT_EQ(beluga_kv_shape_check(nullptr), -EINVAL);
	uint32_t beluga_kv_shape::*fields[] = {&beluga_kv_shape::num_layers, &beluga_kv_shape::block_size,
					      &beluga_kv_shape::num_kv_heads, &beluga_kv_shape::head_size,
					      &beluga_kv_shape::dtype, &beluga_kv_shape::reserved};
	for (auto f : fields) {
		s = llama8b();
		s.*f = f == &beluga_kv_shape::reserved ? 1 : 0; // reserved must be 0, the others must not
		EXPECT_EQ(beluga_kv_shape_check(&s), -EINVAL);
	}
	s = llama8b();
	s.num_layers = BELUGA_KV_MAX_LAYERS + 1;
	EXPECT_EQ(beluga_kv_shape_check(&s), -EINVAL);
	s.num_layers = BELUGA_KV_MAX_LAYERS;
	EXPECT_EQ(beluga_kv_shape_check(&s), 0);
	s.dtype = 77;
	EXPECT_EQ(beluga_kv_shape_check(&s), -EINVAL);
	s = llama8b();
	s.head_size = 0xffffffffu; // pool block past 2^48 bytes
	s.block_size = 0xffffffffu;
	EXPECT_EQ(beluga_kv_shape_check(&s), -EINVAL);
}

// vLLM FlashAttention, per layer: shape (2, NB, T, H, D), stride order NHD
// (0,1,2,3,4) / HND (0,1,3,2,4).
TEST(KvLayout, VllmFlashAttnPerLayer)
{
	const beluga_kv_shape s = {3, 16, 4, 64, BELUGA_KV_FP16, 0};
	std::vector<void *> t = {fake(0), fake(1 << 20), fake(2 << 20)};
	beluga_kv_paged p;
	ASSERT_EQ(beluga_kv_paged_vllm_per_layer(&p, &s, 10, BELUGA_KV_VLLM_FLASH_ATTN, BELUGA_KV_NHD, t.data()), 0);
	EXPECT_EQ(p.stride_head, 64);
	EXPECT_EQ(p.stride_token, 4 * 64);
	EXPECT_EQ(p.stride_block, 16 * 4 * 64);
	EXPECT_EQ(p.stride_kv, 10 * 16 * 4 * 64);
	EXPECT_EQ(p.layer_base[2], t[2]);
	EXPECT_EQ(p.num_blocks, 10u);
	ASSERT_EQ(beluga_kv_paged_vllm_per_layer(&p, &s, 10, BELUGA_KV_VLLM_FLASH_ATTN, BELUGA_KV_HND, t.data()), 0);
	EXPECT_EQ(p.stride_token, 64);          // physical (2, NB, H, T, D)
	EXPECT_EQ(p.stride_head, 16 * 64);
	EXPECT_EQ(p.stride_block, 4 * 16 * 64);
	EXPECT_EQ(p.stride_kv, 10 * 4 * 16 * 64);
	EXPECT_EQ(beluga_kv_paged_elem_offset(&p, 2, 1, 3, 1), 2 * 4096 + 40960 + 3 * 64 + 1 * 1024);
}

// vLLM FlashInfer, per layer: shape (NB, 2, T, H, D).
TEST(KvLayout, VllmFlashInferPerLayer)
{
	const beluga_kv_shape s = {2, 16, 4, 64, BELUGA_KV_BF16, 0};
	std::vector<void *> t = {fake(0), fake(1 << 20)};
	beluga_kv_paged p;
	ASSERT_EQ(beluga_kv_paged_vllm_per_layer(&p, &s, 10, BELUGA_KV_VLLM_FLASHINFER, BELUGA_KV_NHD, t.data()), 0);
	EXPECT_EQ(p.stride_head, 64);
	EXPECT_EQ(p.stride_token, 256);
	EXPECT_EQ(p.stride_kv, 16 * 256);
	EXPECT_EQ(p.stride_block, 2 * 16 * 256);
	ASSERT_EQ(beluga_kv_paged_vllm_per_layer(&p, &s, 10, BELUGA_KV_VLLM_FLASHINFER, BELUGA_KV_HND, t.data()), 0);
	EXPECT_EQ(p.stride_token, 64); // physical (NB, 2, H, T, D)
	EXPECT_EQ(p.stride_head, 16 * 64);
	EXPECT_EQ(p.stride_kv, 4 * 16 * 64);
	EXPECT_EQ(p.stride_block, 2 * 4 * 16 * 64);
}

// Cross-layer: physical (NB, L, 2, T, H, D) for NHD; (NB, H, L, 2, T, D) for
// FlashAttention HND; (NB, 2, H, L, T, D) for FlashInfer HND.
TEST(KvLayout, VllmCrossLayer)
{
	const beluga_kv_shape s = {5, 16, 4, 64, BELUGA_KV_FP8_E4M3, 0};
	const int64_t D = 64, T = 16, H = 4, L = 5;
	beluga_kv_paged p;
	for (uint32_t backend : {BELUGA_KV_VLLM_FLASH_ATTN, BELUGA_KV_VLLM_FLASHINFER}) {
		ASSERT_EQ(beluga_kv_paged_vllm_cross_layer(&p, &s, 7, backend, BELUGA_KV_NHD, fake()), 0);
		EXPECT_EQ(p.stride_head, D);
		EXPECT_EQ(p.stride_token, H * D);
		EXPECT_EQ(p.stride_kv, T * H * D);
		EXPECT_EQ(p.stride_block, L * 2 * T * H * D);
		EXPECT_EQ(static_cast<char *>(p.layer_base[3]) - fake(), 3 * 2 * T * H * D);
		// A block's layers are one pool block, byte for byte.
		EXPECT_EQ(size_t(p.stride_block), beluga_kv_block_bytes(&s));
	}
	ASSERT_EQ(beluga_kv_paged_vllm_cross_layer(&p, &s, 7, BELUGA_KV_VLLM_FLASH_ATTN, BELUGA_KV_HND, fake()), 0);
	EXPECT_EQ(p.stride_token, D);
	EXPECT_EQ(p.stride_kv, T * D);
	EXPECT_EQ(static_cast<char *>(p.layer_base[1]) - fake(), 2 * T * D);
	EXPECT_EQ(p.stride_head, L * 2 * T * D);
	EXPECT_EQ(p.stride_block, H * L * 2 * T * D);
	ASSERT_EQ(beluga_kv_paged_vllm_cross_layer(&p, &s, 7, BELUGA_KV_VLLM_FLASHINFER, BELUGA_KV_HND, fake()), 0);
	EXPECT_EQ(p.stride_token, D);
	EXPECT_EQ(static_cast<char *>(p.layer_base[1]) - fake(), T * D);
	EXPECT_EQ(p.stride_head, L * T * D);
	EXPECT_EQ(p.stride_kv, H * L * T * D);
	EXPECT_EQ(p.stride_block, 2 * H * L * T * D);
}

TEST(KvLayout, ConstructorErrors)
{
	beluga_kv_shape s = llama8b();
	std::vector<void *> t(32, fake());
	beluga_kv_paged p;
	EXPECT_EQ(beluga_kv_paged_vllm_per_layer(nullptr, &s, 4, 1, 0, t.data()), -EINVAL);
	EXPECT_EQ(beluga_kv_paged_vllm_per_layer(&p, nullptr, 4, 1, 0, t.data()), -EINVAL);
	EXPECT_EQ(beluga_kv_paged_vllm_per_layer(&p, &s, 0, 1, 0, t.data()), -EINVAL);     // no blocks
	EXPECT_EQ(beluga_kv_paged_vllm_per_layer(&p, &s, 4, 3, 0, t.data()), -EINVAL);     // backend
	EXPECT_EQ(beluga_kv_paged_vllm_per_layer(&p, &s, 4, 1, 2, t.data()), -EINVAL);     // order
	EXPECT_EQ(beluga_kv_paged_vllm_per_layer(&p, &s, 4, 1, 0, nullptr), -EINVAL);      // tensors
	t[7] = nullptr;
	EXPECT_EQ(beluga_kv_paged_vllm_per_layer(&p, &s, 4, 1, 0, t.data()), -EINVAL);     // one null tensor
	EXPECT_EQ(beluga_kv_paged_vllm_cross_layer(&p, &s, 4, 1, 0, nullptr), -EINVAL);
	EXPECT_EQ(beluga_kv_paged_vllm_cross_layer(&p, &s, 4, 0, 0, fake()), -EINVAL);
	EXPECT_EQ(beluga_kv_paged_vllm_cross_layer(&p, &s, 4, 1, 5, fake()), -EINVAL);
	EXPECT_EQ(beluga_kv_paged_vllm_cross_layer(&p, &s, uint64_t(1) << 60, 1, 0, fake()), -EINVAL); // overflow
	s.reserved = 1;
	EXPECT_EQ(beluga_kv_paged_vllm_cross_layer(&p, &s, 4, 1, 0, fake()), -EINVAL);
}

beluga_kv_paged good_paged()
{
	const beluga_kv_shape s = {2, 4, 2, 8, BELUGA_KV_FP16, 0};
	beluga_kv_paged p;
	EXPECT_EQ(beluga_kv_paged_vllm_cross_layer(&p, &s, 3, BELUGA_KV_VLLM_FLASH_ATTN, BELUGA_KV_NHD, fake()), 0);
	return p;
}

TEST(KvLayout, PagedCheckErrors)
{
	EXPECT_EQ(beluga_kv_paged_check(nullptr), -EINVAL);
	beluga_kv_paged p = good_paged();
	ASSERT_EQ(beluga_kv_paged_check(&p), 0);
	p.num_blocks = 0;
	EXPECT_EQ(beluga_kv_paged_check(&p), -EINVAL);
	p = good_paged();
	p.stride_kv = -1; // negative
	EXPECT_EQ(beluga_kv_paged_check(&p), -EINVAL);
	p = good_paged();
	p.stride_head = 4; // heads overlap (head_size 8)
	EXPECT_EQ(beluga_kv_paged_check(&p), -EINVAL);
	p = good_paged();
	p.stride_block = p.stride_kv; // block 1 aliases V of block 0
	EXPECT_EQ(beluga_kv_paged_check(&p), -EINVAL);
	p = good_paged();
	p.stride_token = 0;
	EXPECT_EQ(beluga_kv_paged_check(&p), -EINVAL);
	p = good_paged();
	p.layer_base[1] = nullptr;
	EXPECT_EQ(beluga_kv_paged_check(&p), -EINVAL);
	p = good_paged();
	p.shape.dtype = 0;
	EXPECT_EQ(beluga_kv_paged_check(&p), -EINVAL);
	p = good_paged();
	p.stride_block = int64_t(1) << 61; // 3 blocks span past 2^62 elements
	EXPECT_EQ(beluga_kv_paged_check(&p), -EINVAL);
	// Unused dimensions (size 1) may have any non-negative stride.
	p = good_paged();
	p.shape.num_kv_heads = 1;
	p.stride_head = 0;
	EXPECT_EQ(beluga_kv_paged_check(&p), 0);
}

TEST(KvLayout, XferCheckErrors)
{
	beluga_kv_paged p = good_paged();
	char pool[2][8];
	beluga_kv_block_ref refs[2] = {{0, pool[0]}, {2, pool[1]}};
	beluga_kv_xfer x{&p, refs, 2, 0, 2, BELUGA_KV_GATHER, 0};
	ASSERT_EQ(beluga_kv_xfer_check(&x), 0);
	EXPECT_EQ(beluga_kv_xfer_check(nullptr), -EINVAL);
	beluga_kv_xfer y = x;
	y.paged = nullptr;
	EXPECT_EQ(beluga_kv_xfer_check(&y), -EINVAL);
	y = x, y.flags = 1;
	EXPECT_EQ(beluga_kv_xfer_check(&y), -EINVAL);
	y = x, y.dir = 0;
	EXPECT_EQ(beluga_kv_xfer_check(&y), -EINVAL);
	y = x, y.dir = 3;
	EXPECT_EQ(beluga_kv_xfer_check(&y), -EINVAL);
	y = x, y.layer_begin = 1, y.layer_end = 1; // empty range
	EXPECT_EQ(beluga_kv_xfer_check(&y), -EINVAL);
	y = x, y.layer_end = 3; // past num_layers
	EXPECT_EQ(beluga_kv_xfer_check(&y), -EINVAL);
	y = x, y.refs = nullptr;
	EXPECT_EQ(beluga_kv_xfer_check(&y), -EINVAL);
	y = x, y.refs = nullptr, y.nrefs = 0; // nothing to do is fine
	EXPECT_EQ(beluga_kv_xfer_check(&y), 0);
	refs[1].paged_block = 3; // == num_blocks
	EXPECT_EQ(beluga_kv_xfer_check(&x), -EINVAL);
	refs[1] = {1, nullptr};
	EXPECT_EQ(beluga_kv_xfer_check(&x), -EINVAL);
	// The written side named twice: one pool block gathered into twice...
	refs[1] = {2, pool[0]};
	EXPECT_EQ(beluga_kv_xfer_check(&x), -EINVAL);
	y = x, y.dir = BELUGA_KV_SCATTER; // ...is fine when it is only read
	EXPECT_EQ(beluga_kv_xfer_check(&y), 0);
	// ...and one paged block scattered into twice.
	refs[1] = {0, pool[1]};
	EXPECT_EQ(beluga_kv_xfer_check(&y), -EINVAL);
	EXPECT_EQ(beluga_kv_xfer_check(&x), 0);
}

// Duplicates among many refs (the sorted check) are found too.
TEST(KvLayout, XferCheckDuplicatesInLargeTransfers)
{
	beluga_kv_paged p = good_paged();
	std::vector<std::array<char, 8>> pools(100);
	std::vector<beluga_kv_block_ref> refs(100);
	for (size_t i = 0; i < refs.size(); i++)
		refs[i] = {uint32_t(i % p.num_blocks), pools[i].data()};
	beluga_kv_xfer x{&p, refs.data(), refs.size(), 0, 2, BELUGA_KV_GATHER, 0};
	EXPECT_EQ(beluga_kv_xfer_check(&x), 0); // paged blocks repeat: read only
	refs[77].pool = pools[3].data();
	EXPECT_EQ(beluga_kv_xfer_check(&x), -EINVAL);
}

// Contiguous runs per vLLM layout for Llama-3-8B (the GPU path's choice hinges on them).
TEST(KvLayout, RunsPerLayout)
{
	const beluga_kv_shape s = llama8b();
	std::vector<void *> t(32);
	for (uint32_t l = 0; l < 32; l++)
		t[l] = fake(uint64_t(l) << 30);
	char pool[16];
	const beluga_kv_block_ref refs[3] = {{0, pool}, {5, pool}, {9, pool}};
	struct {
		uint32_t backend, order;
		bool cross;
		size_t run;
		uint64_t per_block;
	} want[] = {
		{BELUGA_KV_VLLM_FLASH_ATTN, BELUGA_KV_NHD, false, 32768, 64},  // K or V slice of a layer
		{BELUGA_KV_VLLM_FLASHINFER, BELUGA_KV_NHD, false, 65536, 32},  // K+V of a layer
		{BELUGA_KV_VLLM_FLASH_ATTN, BELUGA_KV_HND, false, 256, 64 * 128}, // one head row
		{BELUGA_KV_VLLM_FLASHINFER, BELUGA_KV_HND, false, 256, 64 * 128},
		{BELUGA_KV_VLLM_FLASH_ATTN, BELUGA_KV_NHD, true, 2097152, 1},  // the whole block
		{BELUGA_KV_VLLM_FLASH_ATTN, BELUGA_KV_HND, true, 256, 64 * 128},
	};
	for (const auto &w : want) {
		beluga_kv_paged p;
		ASSERT_EQ(w.cross ? beluga_kv_paged_vllm_cross_layer(&p, &s, 10, w.backend, w.order, fake())
				  : beluga_kv_paged_vllm_per_layer(&p, &s, 10, w.backend, w.order, t.data()),
			  0);
		const beluga_kv_xfer x{&p, refs, 3, 0, 32, BELUGA_KV_SCATTER, 0};
		size_t run = 0;
		uint64_t runs = 0;
		ASSERT_EQ(beluga_kv_xfer_runs(&x, &run, &runs), 0);
		EXPECT_EQ(run, w.run) << w.backend << "/" << w.order << (w.cross ? " cross" : "");
		EXPECT_EQ(runs, 3 * w.per_block);
		// A layer subset of a cross-layer NHD cache is one run per block too.
		const beluga_kv_xfer sub{&p, refs, 3, 4, 7, BELUGA_KV_SCATTER, 0};
		ASSERT_EQ(beluga_kv_xfer_runs(&sub, &run, &runs), 0);
		if (w.cross && w.order == BELUGA_KV_NHD) {
			EXPECT_EQ(run, 3u * 65536);
		}
	}
	const beluga_kv_xfer bad{nullptr, refs, 3, 0, 32, BELUGA_KV_SCATTER, 0};
	size_t run;
	uint64_t runs;
	EXPECT_EQ(beluga_kv_xfer_runs(&bad, &run, &runs), -EINVAL);
}

} // namespace
