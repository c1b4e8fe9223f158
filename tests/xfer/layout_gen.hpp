// SPDX-License-Identifier: Apache-2.0
// Random KV layouts for the data-path tests: every vLLM layout plus arbitrary
// strided ones (permuted dimensions, padding, interleaved layers), odd sizes,
// and base addresses that are only element-aligned.  A case describes memory
// as byte offsets so that the same case can be placed in host memory (CPU
// tests) and in device memory with a host mirror (GPU tests).
#pragma once

#include <beluga/kv_layout.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

namespace beluga::xfer::test {

// BELUGA_TEST_SEED if set, else a fresh one; printed so a failure can be replayed.
inline uint64_t test_seed()
{
	static const uint64_t seed = [] {
		const char *env = std::getenv("BELUGA_TEST_SEED");
		// Not std::random_device: with a static libstdc++ it needs glibc 2.36
		// (arc4random), and the GPU binaries must start on older systems.
		uint64_t s = env && *env ? std::strtoull(env, nullptr, 0)
					 : uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) ^
						   (uint64_t(getpid()) << 32);
		s %= 1000000007ull; // short enough to retype
		std::printf("BELUGA_TEST_SEED=%llu\n", static_cast<unsigned long long>(s));
		return s;
	}();
	return seed;
}

enum class Kind {
	FlashAttnNHD,
	FlashAttnHND,
	FlashInferNHD,
	FlashInferHND,
	CrossNHD,
	CrossFlashAttnHND,
	CrossFlashInferHND,
	Strided,
	Count,
};

inline const char *kind_name(Kind k)
{
	static const char *names[] = {"flash_attn/NHD",       "flash_attn/HND",       "flashinfer/NHD",
				      "flashinfer/HND",       "cross-layer/NHD",      "cross-layer/flash_attn-HND",
				      "cross-layer/flashinfer-HND", "strided"};
	return names[int(k)];
}

// kind_name() of layout @k as a test parameter's name (gtest takes letters,
// digits and '_' only): every other character becomes '_'.
inline std::string kind_param_name(int k)
{
	std::string n = kind_name(Kind(k));
	for (char &ch : n)
		if (!std::isalnum(static_cast<unsigned char>(ch)))
			ch = '_';
	return n;
}

struct Case {
	Kind kind{};
	beluga_kv_shape shape{};
	uint64_t num_blocks = 0;
	int64_t strides[4] = {}; // block, kv, token, head (elements)
	std::vector<uint64_t> layer_off; // byte offset of each layer's base in the paged buffer
	size_t paged_bytes = 0;
	std::vector<uint64_t> blocks;   // paged block of each ref (distinct)
	std::vector<uint64_t> pool_off; // byte offset of each ref's pool block in the pool buffer
	size_t pool_bytes = 0;
	uint32_t layer_begin = 0, layer_end = 0;

	size_t esize() const { return beluga_kv_dtype_size(shape.dtype); }

	std::string describe() const
	{
		char buf[256];
		std::snprintf(buf, sizeof(buf),
			      "%s L=%u T=%u H=%u D=%u dtype=%u blocks=%llu refs=%zu layers=[%u,%u) strides=%lld,%lld,%lld,%lld",
			      kind_name(kind), shape.num_layers, shape.block_size, shape.num_kv_heads, shape.head_size,
			      shape.dtype, (unsigned long long)num_blocks, blocks.size(), layer_begin, layer_end,
			      (long long)strides[0], (long long)strides[1], (long long)strides[2], (long long)strides[3]);
		return buf;
	}

	beluga_kv_paged paged_at(void *base) const
	{
		beluga_kv_paged p;
		std::memset(&p, 0, sizeof(p));
		p.shape = shape;
		p.num_blocks = num_blocks;
		p.stride_block = strides[0], p.stride_kv = strides[1];
		p.stride_token = strides[2], p.stride_head = strides[3];
		for (uint32_t l = 0; l < shape.num_layers; l++)
			p.layer_base[l] = static_cast<char *>(base) + layer_off[l];
		return p;
	}

	std::vector<beluga_kv_block_ref> refs_at(void *pool) const
	{
		std::vector<beluga_kv_block_ref> r(blocks.size());
		for (size_t i = 0; i < r.size(); i++)
			r[i] = {blocks[i], static_cast<char *>(pool) + pool_off[i]};
		return r;
	}
};

struct Limits {
	uint32_t max_layers = 6, max_tokens = 17, max_heads = 5, max_head_size = 40;
	uint64_t max_blocks = 9;
	size_t max_refs = 6;
};

class Generator {
public:
	explicit Generator(uint64_t seed) : rng_(seed) {}

	uint64_t uniform(uint64_t lo, uint64_t hi) { return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_); }
	std::mt19937_64 &rng() { return rng_; }

	Case make(Kind kind, const Limits &lim = {})
	{
		static const uint32_t dtypes[] = {BELUGA_KV_FP16, BELUGA_KV_BF16, BELUGA_KV_FP8_E4M3, BELUGA_KV_FP8_E5M2,
						  BELUGA_KV_FP32};
		beluga_kv_shape shape{};
		shape.num_layers = uint32_t(uniform(1, lim.max_layers));
		shape.block_size = uint32_t(uniform(1, lim.max_tokens));
		shape.num_kv_heads = uint32_t(uniform(1, lim.max_heads));
		shape.head_size = uint32_t(uniform(1, lim.max_head_size));
		shape.dtype = dtypes[uniform(0, 4)];
		// A third of the cases keep every address 16-byte aligned (head rows a
		// multiple of 16 bytes, aligned bases and gaps): the GPU's fast path.
		aligned_ = uniform(0, 2) == 0;
		if (aligned_) {
			const uint32_t per16 = uint32_t(16 / beluga_kv_dtype_size(shape.dtype));
			shape.head_size = (shape.head_size + per16 - 1) / per16 * per16;
		}
		Case c = make_shape(kind, shape, uniform(1, lim.max_blocks), lim.max_refs);
		aligned_ = false;
		return c;
	}

	// A case of a given shape: random placement, refs and layer range.
	Case make_shape(Kind kind, const beluga_kv_shape &shape, uint64_t num_blocks, size_t max_refs)
	{
		Case c;
		c.kind = kind;
		c.shape = shape;
		c.num_blocks = num_blocks;
		place_paged(c);
		place_refs(c, max_refs);
		c.layer_begin = uint32_t(uniform(0, c.shape.num_layers - 1));
		c.layer_end = uint32_t(uniform(c.layer_begin + 1, c.shape.num_layers));
		if (uniform(0, 2) == 0) // a third of the cases move every layer
			c.layer_begin = 0, c.layer_end = c.shape.num_layers;
		return c;
	}

	Case make_random(const Limits &lim = {}) { return make(Kind(uniform(0, int(Kind::Count) - 1)), lim); }

private:
	// A base shift that keeps element alignment but often breaks 16-byte alignment.
	uint64_t shift(size_t esize) { return aligned_ ? 0 : uniform(0, 16 / esize) * esize; }
	// Padding of 0..max elements (whole 16-byte units in aligned cases).
	uint64_t pad(uint64_t max, size_t esize) { return aligned_ ? uniform(0, max) * (16 / esize) : uniform(0, max); }

	// Where each element of each layer lands, from the library's own vLLM
	// constructors (at a fake base) or from a random nested stride order.
	void place_paged(Case &c)
	{
		const size_t es = c.esize();
		char *const fake = reinterpret_cast<char *>(uintptr_t(1) << 40);
		beluga_kv_paged p;
		const uint32_t L = c.shape.num_layers;
		const uint64_t per_layer = 2 * c.num_blocks * c.shape.block_size * c.shape.num_kv_heads * c.shape.head_size;
		std::vector<void *> tensors(L);
		uint64_t off = shift(es);
		for (uint32_t l = 0; l < L; l++) { // per-layer tensors with random gaps
			tensors[l] = fake + off;
			off += (per_layer + pad(3, es)) * es;
		}
		switch (c.kind) {
		case Kind::FlashAttnNHD:
		case Kind::FlashAttnHND:
		case Kind::FlashInferNHD:
		case Kind::FlashInferHND: {
			const uint32_t backend = c.kind <= Kind::FlashAttnHND ? BELUGA_KV_VLLM_FLASH_ATTN : BELUGA_KV_VLLM_FLASHINFER;
			const uint32_t order = (c.kind == Kind::FlashAttnHND || c.kind == Kind::FlashInferHND) ? BELUGA_KV_HND
														: BELUGA_KV_NHD;
			if (beluga_kv_paged_vllm_per_layer(&p, &c.shape, c.num_blocks, backend, order, tensors.data()))
				std::abort();
			break;
		}
		case Kind::CrossNHD:
		case Kind::CrossFlashAttnHND:
		case Kind::CrossFlashInferHND: {
			const uint32_t backend = c.kind == Kind::CrossFlashInferHND ? BELUGA_KV_VLLM_FLASHINFER
										   : BELUGA_KV_VLLM_FLASH_ATTN;
			const uint32_t order = c.kind == Kind::CrossNHD ? BELUGA_KV_NHD : BELUGA_KV_HND;
			if (beluga_kv_paged_vllm_cross_layer(&p, &c.shape, c.num_blocks, backend, order, fake + shift(es)))
				std::abort();
			break;
		}
		default:
			p = strided(c, fake);
		}
		c.strides[0] = p.stride_block, c.strides[1] = p.stride_kv;
		c.strides[2] = p.stride_token, c.strides[3] = p.stride_head;
		c.layer_off.resize(L);
		uint64_t end = 0;
		const int64_t last = int64_t(c.num_blocks - 1) * p.stride_block + p.stride_kv +
				     int64_t(c.shape.block_size - 1) * p.stride_token +
				     int64_t(c.shape.num_kv_heads - 1) * p.stride_head + c.shape.head_size;
		for (uint32_t l = 0; l < L; l++) {
			c.layer_off[l] = uint64_t(static_cast<char *>(p.layer_base[l]) - fake);
			end = std::max<uint64_t>(end, c.layer_off[l] + uint64_t(last) * es);
		}
		c.paged_bytes = end + uniform(0, 64);
	}

	// Dimensions (D, then a random order of block, kv, token, head and
	// sometimes layer) nested with random padding: never aliasing.
	beluga_kv_paged strided(Case &c, char *fake)
	{
		const size_t es = c.esize();
		const uint64_t sizes[5] = {c.num_blocks, 2, c.shape.block_size, c.shape.num_kv_heads, c.shape.num_layers};
		std::vector<int> order = {0, 1, 2, 3};
		const bool layer_dim = uniform(0, 1) == 1; // interleave layers like cross-layer layouts
		if (layer_dim)
			order.push_back(4);
		std::shuffle(order.begin(), order.end(), rng_);
		int64_t st[5] = {};
		uint64_t extent = c.shape.head_size + pad(2, es);
		for (int d : order) {
			st[d] = int64_t(extent);
			extent = extent * sizes[d] + pad(3, es);
		}
		beluga_kv_paged p;
		std::memset(&p, 0, sizeof(p));
		p.shape = c.shape;
		p.num_blocks = c.num_blocks;
		p.stride_block = st[0], p.stride_kv = st[1], p.stride_token = st[2], p.stride_head = st[3];
		uint64_t off = shift(es);
		for (uint32_t l = 0; l < c.shape.num_layers; l++) {
			if (layer_dim) {
				p.layer_base[l] = fake + off + uint64_t(l) * st[4] * es;
			} else {
				p.layer_base[l] = fake + off;
				off += (extent + pad(3, es)) * es;
			}
		}
		return p;
	}

	void place_refs(Case &c, size_t max_refs)
	{
		const size_t n = std::min<uint64_t>(uniform(1, max_refs), c.num_blocks);
		std::vector<uint64_t> ids(c.num_blocks);
		std::iota(ids.begin(), ids.end(), 0);
		std::shuffle(ids.begin(), ids.end(), rng_);
		c.blocks.assign(ids.begin(), ids.begin() + n);
		const size_t es = c.esize();
		const size_t bytes = beluga_kv_block_bytes(&c.shape);
		uint64_t off = shift(es);
		for (size_t i = 0; i < n; i++) {
			c.pool_off.push_back(off);
			off += bytes + pad(5, es) * es;
		}
		c.pool_bytes = off + uniform(0, 64);
	}

	std::mt19937_64 rng_;
	bool aligned_ = false;
};

inline void fill_random(std::vector<unsigned char> &v, std::mt19937_64 &rng)
{
	size_t i = 0;
	for (; i + 8 <= v.size(); i += 8) {
		const uint64_t r = rng();
		std::memcpy(&v[i], &r, 8);
	}
	for (; i < v.size(); i++)
		v[i] = static_cast<unsigned char>(rng());
}

} // namespace beluga::xfer::test
