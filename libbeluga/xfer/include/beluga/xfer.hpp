// SPDX-License-Identifier: Apache-2.0
// beluga/xfer.hpp - C++ interface to the KV data path (beluga/kv_layout.h,
// beluga/xfer.h): value types for the layouts, a checked Transfer that owns
// its block refs, RAII for the CPU copier.  The GPU path: beluga/xfer_cuda.hpp.
//
// Error style: every failure throws beluga::xfer::Error, a std::system_error
// whose code() is the positive errno and whose what() says what was refused
// and why ("transfer: ref 3 names engine block 70, the cache has 64: ...").
// Header only, over the C API; C++20 (std::span).
//
//   beluga::xfer::Shape shape(32, 16, 8, 128, BELUGA_KV_BF16);
//   auto paged = beluga::xfer::Paged::vllm_per_layer(shape, num_blocks,
//                    beluga::xfer::Backend::FlashAttn, beluga::xfer::Order::NHD, layer_ptrs);
//   beluga::xfer::Transfer t(paged, {{block_id, pool_block}}, beluga::xfer::Dir::Gather);
//   beluga::xfer::CpuCopier cpu;
//   cpu.copy(t);                                      // every store visible on return
#pragma once

#include <beluga/kv_layout.h>
#include <beluga/xfer.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace beluga::xfer {

class Error : public std::system_error {
public:
	// "@context: <strerror(err)>", and " (@detail)" when given.
	Error(int err, std::string_view context, std::string_view detail = {})
		: std::system_error(err < 0 ? -err : err, std::generic_category()),
		  what_(std::string(context) + ": " + std::strerror(err < 0 ? -err : err) +
			(detail.empty() ? "" : " (" + std::string(detail) + ")"))
	{
	}
	const char *what() const noexcept override { return what_.c_str(); }

private:
	std::string what_;
};

// @r, or Error(@r, @what) when negative.
inline int check(int r, std::string_view what)
{
	if (r < 0)
		throw Error(r, what);
	return r;
}

namespace detail {
[[noreturn]] inline void invalid(std::string_view what, const std::string &why)
{
	throw Error(EINVAL, what, why);
}
} // namespace detail

// The shape of one KV block of a tensor-parallel rank, always valid.
class Shape {
public:
	Shape(uint32_t num_layers, uint32_t block_size, uint32_t num_kv_heads, uint32_t head_size,
	      uint32_t dtype)
		: s_{num_layers, block_size, num_kv_heads, head_size, dtype, 0}
	{
		validate();
	}
	explicit Shape(const beluga_kv_shape &s) : s_(s) { validate(); }

	uint32_t num_layers() const noexcept { return s_.num_layers; }
	uint32_t block_size() const noexcept { return s_.block_size; }
	uint32_t num_kv_heads() const noexcept { return s_.num_kv_heads; }
	uint32_t head_size() const noexcept { return s_.head_size; }
	uint32_t dtype() const noexcept { return s_.dtype; }
	size_t dtype_size() const noexcept { return beluga_kv_dtype_size(s_.dtype); }
	// Pool block geometry in bytes (beluga/kv_layout.h).
	size_t row_bytes() const noexcept { return beluga_kv_row_bytes(&s_); }
	size_t slice_bytes() const noexcept { return beluga_kv_slice_bytes(&s_); }
	size_t layer_bytes() const noexcept { return beluga_kv_layer_bytes(&s_); }
	size_t block_bytes() const noexcept { return beluga_kv_block_bytes(&s_); }
	size_t layer_offset(uint32_t layer) const
	{
		if (layer >= s_.num_layers)
			throw std::out_of_range("layer " + std::to_string(layer) + " of a " +
						std::to_string(s_.num_layers) + "-layer shape");
		return beluga_kv_layer_offset(&s_, layer);
	}
	size_t slice_offset(uint32_t layer, uint32_t kv) const
	{
		if (kv > 1)
			throw std::out_of_range("kv must be 0 (K) or 1 (V)");
		layer_offset(layer);
		return beluga_kv_slice_offset(&s_, layer, kv);
	}
	const beluga_kv_shape &c() const noexcept { return s_; }
	bool operator==(const Shape &o) const noexcept { return std::memcmp(&s_, &o.s_, sizeof(s_)) == 0; }

private:
	void validate() const
	{
		if (!beluga_kv_dtype_size(s_.dtype))
			detail::invalid("KV shape", "unknown dtype " + std::to_string(s_.dtype));
		if (s_.num_layers == 0 || s_.num_layers > BELUGA_KV_MAX_LAYERS)
			detail::invalid("KV shape", "num_layers " + std::to_string(s_.num_layers) + " is not in 1.." +
							    std::to_string(BELUGA_KV_MAX_LAYERS));
		if (beluga_kv_shape_check(&s_))
			detail::invalid("KV shape", "block_size " + std::to_string(s_.block_size) + ", num_kv_heads " +
							    std::to_string(s_.num_kv_heads) + ", head_size " +
							    std::to_string(s_.head_size) +
							    ": every size must be positive, the block under 256 TiB "
							    "and reserved 0");
	}
	beluga_kv_shape s_;
};

// vLLM's attention backends and physical orders (beluga/kv_layout.h).
enum class Backend : uint32_t { FlashAttn = BELUGA_KV_VLLM_FLASH_ATTN, FlashInfer = BELUGA_KV_VLLM_FLASHINFER };
enum class Order : uint32_t { NHD = BELUGA_KV_NHD, HND = BELUGA_KV_HND };

inline const char *backend_name(Backend b) noexcept { return b == Backend::FlashAttn ? "flash_attn" : "flashinfer"; }
inline Backend parse_backend(std::string_view s)
{
	if (s == "flash_attn")
		return Backend::FlashAttn;
	if (s == "flashinfer")
		return Backend::FlashInfer;
	throw std::invalid_argument("backend must be 'flash_attn' or 'flashinfer', not '" + std::string(s) + "'");
}
inline const char *order_name(Order o) noexcept { return o == Order::NHD ? "NHD" : "HND"; }
inline Order parse_order(std::string_view s)
{
	if (s == "NHD")
		return Order::NHD;
	if (s == "HND")
		return Order::HND;
	throw std::invalid_argument("order must be 'NHD' or 'HND', not '" + std::string(s) + "'");
}

// Element strides of a paged cache (head_size is innermost and contiguous).
struct Strides {
	int64_t block = 0, kv = 0, token = 0, head = 0;
	bool operator==(const Strides &) const = default;
};

// A paged KV cache: struct beluga_kv_paged, always consistent.  Layer bases
// are host addresses for the CPU path, device addresses for the GPU path;
// the memory is the caller's and must outlive every transfer that uses it.
class Paged {
public:
	// Any strides: element (l, k, b, t, h, d) at
	// layer_bases[l] + (b*block + k*kv + t*token + h*head + d) * dtype size.
	static Paged strided(const Shape &shape, uint64_t num_blocks, const Strides &st,
			     std::span<void *const> layer_bases)
	{
		Paged p(shape, num_blocks, layer_bases, "strided");
		p.p_.stride_block = st.block;
		p.p_.stride_kv = st.kv;
		p.p_.stride_token = st.token;
		p.p_.stride_head = st.head;
		if (beluga_kv_paged_check(&p.p_))
			detail::invalid("paged KV cache",
					"strides (block " + std::to_string(st.block) + ", kv " + std::to_string(st.kv) +
						", token " + std::to_string(st.token) + ", head " +
						std::to_string(st.head) +
						") are negative or make two elements of a layer alias");
		return p;
	}
	// vLLM's per-layer tensors, contiguous in the backend's physical order.
	static Paged vllm_per_layer(const Shape &shape, uint64_t num_blocks, Backend b, Order o,
				    std::span<void *const> layer_tensors)
	{
		Paged p(shape, num_blocks, layer_tensors, "vllm_per_layer");
		check(beluga_kv_paged_vllm_per_layer(&p.p_, &shape.c(), num_blocks, uint32_t(b), uint32_t(o),
						     layer_tensors.data()),
		      "paged KV cache (vLLM per-layer layout)");
		return p;
	}
	// vLLM's cross-layer tensor (one for all layers) at @base.
	static Paged vllm_cross_layer(const Shape &shape, uint64_t num_blocks, Backend b, Order o, void *base)
	{
		if (!base)
			detail::invalid("paged KV cache (vLLM cross-layer layout)", "the base address is NULL");
		std::vector<void *> bases(shape.num_layers(), base);
		Paged p(shape, num_blocks, bases, "vllm_cross_layer");
		check(beluga_kv_paged_vllm_cross_layer(&p.p_, &shape.c(), num_blocks, uint32_t(b), uint32_t(o), base),
		      "paged KV cache (vLLM cross-layer layout)");
		return p;
	}

	Shape shape() const { return Shape(p_.shape); }
	uint64_t num_blocks() const noexcept { return p_.num_blocks; }
	Strides strides() const noexcept { return {p_.stride_block, p_.stride_kv, p_.stride_token, p_.stride_head}; }
	void *layer_base(uint32_t layer) const
	{
		if (layer >= p_.shape.num_layers)
			throw std::out_of_range("layer " + std::to_string(layer) + " of " +
						std::to_string(p_.shape.num_layers));
		return p_.layer_base[layer];
	}
	// Bytes one layer spans from its base: the largest element offset + 1
	// element (what a buffer holding one layer must have).
	size_t layer_span_bytes() const noexcept
	{
		const auto &s = p_.shape;
		const int64_t last = int64_t(p_.num_blocks - 1) * p_.stride_block + p_.stride_kv +
				     int64_t(s.block_size - 1) * p_.stride_token +
				     int64_t(s.num_kv_heads - 1) * p_.stride_head + int64_t(s.head_size);
		return size_t(last) * beluga_kv_dtype_size(s.dtype);
	}
	const beluga_kv_paged &c() const noexcept { return p_; }

private:
	Paged(const Shape &shape, uint64_t num_blocks, std::span<void *const> bases, const char *how)
	{
		std::memset(&p_, 0, sizeof(p_));
		p_.shape = shape.c();
		p_.num_blocks = num_blocks;
		const std::string what = std::string("paged KV cache (") + how + ")";
		if (num_blocks == 0)
			detail::invalid(what, "num_blocks must be positive");
		if (bases.size() != shape.num_layers())
			detail::invalid(what, std::to_string(bases.size()) + " layer bases for " +
						      std::to_string(shape.num_layers()) + " layers");
		for (uint32_t l = 0; l < shape.num_layers(); l++) {
			if (!bases[l])
				detail::invalid(what, "layer " + std::to_string(l) + "'s base address is NULL");
			p_.layer_base[l] = bases[l];
		}
	}
	beluga_kv_paged p_;
};

enum class Dir : uint32_t { Gather = BELUGA_KV_GATHER, Scatter = BELUGA_KV_SCATTER };
inline const char *dir_name(Dir d) noexcept { return d == Dir::Gather ? "gather" : "scatter"; }

using BlockRef = beluga_kv_block_ref;

// Layers [begin, end) of each block.
struct LayerRange {
	uint32_t begin = 0, end = 0;
};

// One checked transfer: refs (owned), a layer range and a direction over a
// Paged that must outlive it.  The constructor refuses, naming the item, a
// block id out of range, a NULL pool block and a bad layer range (Error,
// EINVAL), and a block named twice on the side the transfer writes
// (std::invalid_argument).
class Transfer {
public:
	Transfer(const Paged &paged, std::vector<BlockRef> refs, Dir dir,
		 std::optional<LayerRange> layers = std::nullopt)
		: paged_(&paged), refs_(std::move(refs)), dir_(dir),
		  layers_(layers.value_or(LayerRange{0, paged.c().shape.num_layers}))
	{
		validate();
	}

	const Paged &paged() const noexcept { return *paged_; }
	std::span<const BlockRef> refs() const noexcept { return refs_; }
	size_t size() const noexcept { return refs_.size(); }
	Dir dir() const noexcept { return dir_; }
	LayerRange layers() const noexcept { return layers_; }
	// Bytes each pool block must hold for this transfer (up to its last layer).
	size_t pool_bytes_needed() const
	{
		const Shape s = paged_->shape();
		return s.layer_offset(layers_.end - 1) + s.layer_bytes();
	}
	// How the transfer splits into contiguous runs: bytes per run, runs.
	std::pair<size_t, uint64_t> runs() const
	{
		const beluga_kv_xfer x = c();
		size_t run = 0;
		uint64_t n = 0;
		check(beluga_kv_xfer_runs(&x, &run, &n), "transfer runs");
		return {run, n};
	}
	// The C view; valid while this Transfer (and its Paged) is.
	beluga_kv_xfer c() const noexcept
	{
		return {&paged_->c(), refs_.data(), refs_.size(), layers_.begin, layers_.end, uint32_t(dir_), 0};
	}

private:
	void validate() const
	{
		const std::string what = std::string(dir_name(dir_)) + " transfer";
		const auto &p = paged_->c();
		if (layers_.begin >= layers_.end || layers_.end > p.shape.num_layers)
			detail::invalid(what, "layers [" + std::to_string(layers_.begin) + ", " +
						      std::to_string(layers_.end) + ") are not a non-empty range of the " +
						      std::to_string(p.shape.num_layers) + " layers");
		for (size_t i = 0; i < refs_.size(); i++) {
			if (refs_[i].paged_block >= p.num_blocks)
				detail::invalid(what, "item " + std::to_string(i) + " names engine block " +
							      std::to_string(refs_[i].paged_block) + ", the cache has " +
							      std::to_string(p.num_blocks));
			if (!refs_[i].pool)
				detail::invalid(what, "item " + std::to_string(i) + "'s pool block is NULL");
		}
		// Two writers of one block race: name the first duplicate.  A
		// caller's bug the library is never asked about: invalid_argument.
		std::vector<std::pair<uintptr_t, size_t>> dst(refs_.size());
		for (size_t i = 0; i < refs_.size(); i++)
			dst[i] = {dir_ == Dir::Gather ? reinterpret_cast<uintptr_t>(refs_[i].pool)
						      : uintptr_t(refs_[i].paged_block),
				  i};
		std::sort(dst.begin(), dst.end());
		for (size_t i = 1; i < dst.size(); i++)
			if (dst[i].first == dst[i - 1].first)
				throw std::invalid_argument(
					what + ": " + (dir_ == Dir::Gather ? "a pool block" : "an engine block") +
					" is named twice (items " + std::to_string(std::min(dst[i - 1].second, dst[i].second)) +
					" and " + std::to_string(std::max(dst[i - 1].second, dst[i].second)) +
					"): two writers of one block race");
		const beluga_kv_xfer x = c();
		check(beluga_kv_xfer_check(&x), what);
	}

	const Paged *paged_;
	std::vector<BlockRef> refs_;
	Dir dir_;
	LayerRange layers_;
};

// The reference copy (slow on purpose: the oracle of the tests).
inline void ref_copy(const Transfer &t)
{
	const beluga_kv_xfer x = t.c();
	check(beluga_kv_ref_copy(&x), "reference copy");
}

enum class NtMode : uint32_t { Auto = BELUGA_KV_NT_AUTO, Always = BELUGA_KV_NT_ALWAYS, Never = BELUGA_KV_NT_NEVER };
inline NtMode parse_nt_mode(std::string_view s)
{
	if (s == "auto")
		return NtMode::Auto;
	if (s == "always")
		return NtMode::Always;
	if (s == "never")
		return NtMode::Never;
	throw std::invalid_argument("nt must be 'auto', 'always' or 'never', not '" + std::string(s) + "'");
}

struct CpuOptions {
	uint32_t threads = 0; // 0: all online CPUs, capped at 16
	NtMode nt = NtMode::Auto;
	size_t nt_min_bytes = 0; // 0: 256 KiB
	size_t mt_min_bytes = 0; // 0: 1 MiB
};

// The CPU copier (a small thread pool): one copy at a time.
class CpuCopier {
public:
	explicit CpuCopier(const CpuOptions &o = {})
	{
		const beluga_kv_cpu_opts c{o.threads, uint32_t(o.nt), o.nt_min_bytes, o.mt_min_bytes};
		beluga_kv_cpu *h = nullptr;
		check(beluga_kv_cpu_create(&c, &h), "CPU copier");
		h_.reset(h);
	}
	// Gather or scatter on the CPU; every store is visible when it returns.
	void copy(const Transfer &t)
	{
		const beluga_kv_xfer x = t.c();
		check(beluga_kv_cpu_copy(h_.get(), &x), std::string("CPU ") + dir_name(t.dir()));
	}
	beluga_kv_cpu *get() const noexcept { return h_.get(); }

private:
	struct Free {
		void operator()(beluga_kv_cpu *c) const noexcept { beluga_kv_cpu_destroy(c); }
	};
	std::unique_ptr<beluga_kv_cpu, Free> h_;
};

} // namespace beluga::xfer
