// SPDX-License-Identifier: Apache-2.0
// The CPU data path between an engine's paged KV cache and pool blocks
// (beluga/kv_layout.h, beluga/xfer.h): KVShape (pool block geometry),
// PagedKV (a paged cache described by layer base addresses and element
// strides, e.g. from torch tensors' data_ptr()/stride()), CpuCopier
// (gather-write into pool blocks, scatter-read from them, e.g. from Pins).
#include "common.hpp"

#include <beluga/kv_layout.h>
#include <beluga/kvcache.hpp>
#include <beluga/xfer.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace bpy {

using beluga::kvc::dtype_name;

namespace {

beluga_kv_shape make_shape(uint32_t num_layers, uint32_t block_size, uint32_t num_kv_heads,
			   uint32_t head_size, py::handle dtype)
{
	beluga_kv_shape s{num_layers, block_size, num_kv_heads, head_size, dtype_of(dtype), 0};
	xcheck(beluga_kv_shape_check(&s), "KVShape");
	return s;
}

// A paged cache plus whatever keeps its memory alive (tensors, buffers).
struct PagedKV {
	beluga_kv_paged desc;
	py::list owners;
	std::vector<std::unique_ptr<Buffer>> held;
};

// Bytes a layer spans from its base (the largest element offset + 1 element).
size_t layer_span(const beluga_kv_paged &p)
{
	const auto &s = p.shape;
	int64_t last = int64_t(p.num_blocks - 1) * p.stride_block + p.stride_kv +
		       int64_t(s.block_size - 1) * p.stride_token + int64_t(s.num_kv_heads - 1) * p.stride_head +
		       int64_t(s.head_size);
	return size_t(last) * beluga_kv_dtype_size(s.dtype);
}

// A layer base: an int address (torch: tensor.data_ptr()) or a writable
// buffer, which is then held and bounds-checked.
void *base_of(PagedKV &pk, py::handle b, size_t need, uint32_t layer)
{
	if (PyLong_Check(b.ptr()))
		return reinterpret_cast<void *>(b.cast<uintptr_t>());
	pk.held.push_back(std::make_unique<Buffer>(b, true));
	if (pk.held.back()->size() < need)
		throw py::value_error("layer " + std::to_string(layer) + ": buffer of " +
				      std::to_string(pk.held.back()->size()) + " bytes, the strides reach " +
				      std::to_string(need));
	return pk.held.back()->data();
}

std::unique_ptr<PagedKV> make_paged(const beluga_kv_shape &shape, uint64_t num_blocks,
				    std::array<int64_t, 4> strides, py::sequence layer_bases,
				    py::object owners)
{
	auto pk = std::make_unique<PagedKV>();
	std::memset(&pk->desc, 0, sizeof(pk->desc));
	pk->desc.shape = shape;
	pk->desc.num_blocks = num_blocks;
	pk->desc.stride_block = strides[0];
	pk->desc.stride_kv = strides[1];
	pk->desc.stride_token = strides[2];
	pk->desc.stride_head = strides[3];
	if (size_t(py::len(layer_bases)) != shape.num_layers)
		throw py::value_error("need one layer base per layer (" + std::to_string(shape.num_layers) + ")");
	if (num_blocks == 0)
		throw py::value_error("num_blocks must be positive");
	size_t need = layer_span(pk->desc);
	for (uint32_t l = 0; l < shape.num_layers; l++)
		pk->desc.layer_base[l] = base_of(*pk, layer_bases[l], need, l);
	xcheck(beluga_kv_paged_check(&pk->desc), "PagedKV (strides alias or are negative)");
	if (!owners.is_none())
		pk->owners = py::list(owners);
	return pk;
}

uint32_t backend_of(const std::string &s)
{
	if (s == "flash_attn")
		return BELUGA_KV_VLLM_FLASH_ATTN;
	if (s == "flashinfer")
		return BELUGA_KV_VLLM_FLASHINFER;
	throw py::value_error("backend must be 'flash_attn' or 'flashinfer'");
}

uint32_t order_of(const std::string &s)
{
	if (s == "NHD")
		return BELUGA_KV_NHD;
	if (s == "HND")
		return BELUGA_KV_HND;
	throw py::value_error("order must be 'NHD' or 'HND'");
}

struct CpuFree { void operator()(beluga_kv_cpu *c) const { beluga_kv_cpu_destroy(c); } };

struct CpuCopier {
	std::unique_ptr<beluga_kv_cpu, CpuFree> h;
};

// One transfer: refs from block ids and pool block buffers (list, or one
// buffer split evenly), layers [begin, end).
void run_copy(CpuCopier &c, PagedKV &pk, py::sequence block_ids, py::handle pool_blocks,
	      py::object layers, uint32_t dir)
{
	const auto &s = pk.desc.shape;
	uint32_t begin = 0, end = s.num_layers;
	if (!layers.is_none()) {
		auto t = layers.cast<std::pair<uint32_t, uint32_t>>();
		begin = t.first;
		end = t.second;
	}
	size_t n = py::len(block_ids);
	bool gather = dir == BELUGA_KV_GATHER;
	auto bufs = buffer_set(pool_blocks, n, gather, gather ? "gather" : "scatter");
	size_t need = end > begin && end <= s.num_layers ? beluga_kv_layer_offset(&s, end - 1) +
								   beluga_kv_layer_bytes(&s)
							 : 0;
	std::vector<beluga_kv_block_ref> refs(n);
	for (size_t i = 0; i < n; i++) {
		long long b = block_ids[i].cast<long long>();
		if (b < 0)
			throw py::value_error("negative block id");
		if (bufs.parts[i].second < need)
			throw py::value_error("pool block " + std::to_string(i) + " has " +
					      std::to_string(bufs.parts[i].second) + " bytes, the layers need " +
					      std::to_string(need));
		refs[i] = {uint64_t(b), bufs.parts[i].first};
	}
	// Overlapping writes race between the copier's threads: refuse them here
	// (beluga_kv_xfer_check in libbeluga/xfer does not check this yet).
	std::vector<uintptr_t> dst(n);
	for (size_t i = 0; i < n; i++)
		dst[i] = gather ? reinterpret_cast<uintptr_t>(refs[i].pool) : uintptr_t(refs[i].paged_block);
	std::sort(dst.begin(), dst.end());
	if (std::adjacent_find(dst.begin(), dst.end()) != dst.end())
		throw py::value_error(gather ? "gather: a pool block is named twice"
					     : "scatter: an engine block is named twice");
	beluga_kv_xfer x{&pk.desc, refs.data(), n, begin, end, dir, 0};
	xcheck(beluga_kv_xfer_check(&x), gather ? "gather (block id out of range, a pool block named "
						  "twice, or bad layers)"
						: "scatter (block id out of range, a block named twice, or bad layers)");
	int r;
	{
		py::gil_scoped_release nogil;
		r = beluga_kv_cpu_copy(c.h.get(), &x);
	}
	xcheck(r, gather ? "gather" : "scatter");
}

} // namespace

void register_xfer(py::module_ &m)
{
	py::class_<beluga_kv_shape>(m, "KVShape", R"doc(
The shape of one KV block of a tensor-parallel rank.  A pool block is the
C-order array [num_layers][2 (K, V)][block_size][num_kv_heads][head_size].
)doc")
		.def(py::init(&make_shape), py::arg("num_layers"), py::arg("block_size"),
		     py::arg("num_kv_heads"), py::arg("head_size"), py::arg("dtype") = "bf16")
		.def_readonly("num_layers", &beluga_kv_shape::num_layers)
		.def_readonly("block_size", &beluga_kv_shape::block_size)
		.def_readonly("num_kv_heads", &beluga_kv_shape::num_kv_heads)
		.def_readonly("head_size", &beluga_kv_shape::head_size)
		.def_property_readonly("dtype", [](const beluga_kv_shape &s) { return dtype_name(s.dtype); })
		.def_property_readonly("dtype_size", [](const beluga_kv_shape &s) { return beluga_kv_dtype_size(s.dtype); })
		.def_property_readonly("row_bytes", [](const beluga_kv_shape &s) { return beluga_kv_row_bytes(&s); })
		.def_property_readonly("slice_bytes", [](const beluga_kv_shape &s) { return beluga_kv_slice_bytes(&s); })
		.def_property_readonly("layer_bytes", [](const beluga_kv_shape &s) { return beluga_kv_layer_bytes(&s); })
		.def_property_readonly("block_bytes", [](const beluga_kv_shape &s) { return beluga_kv_block_bytes(&s); })
		.def("layer_offset", [](const beluga_kv_shape &s, uint32_t l) {
			if (l >= s.num_layers) throw py::index_error("layer out of range");
			return beluga_kv_layer_offset(&s, l);
		})
		.def("slice_offset", [](const beluga_kv_shape &s, uint32_t l, uint32_t kv) {
			if (l >= s.num_layers || kv > 1) throw py::index_error("layer or kv out of range");
			return beluga_kv_slice_offset(&s, l, kv);
		})
		.def("__repr__", [](const beluga_kv_shape &s) {
			return "KVShape(num_layers=" + std::to_string(s.num_layers) + ", block_size=" +
			       std::to_string(s.block_size) + ", num_kv_heads=" + std::to_string(s.num_kv_heads) +
			       ", head_size=" + std::to_string(s.head_size) + ", dtype='" + dtype_name(s.dtype) + "')";
		});

	py::class_<PagedKV>(m, "PagedKV", R"doc(
An engine's paged KV cache.  Element (layer l, kv k, block b, token t, head h,
dim d) is at layer_bases[l] + (b*sb + k*skv + t*st + h*sh + d) * dtype size,
strides = (sb, skv, st, sh) in elements.  A layer base is an int address
(torch: tensor.data_ptr(); pass the tensors as `owners` to keep them alive)
or a writable buffer (held, and bounds-checked against the strides).
)doc")
		.def(py::init(&make_paged), py::arg("shape"), py::arg("num_blocks"), py::arg("strides"),
		     py::arg("layer_bases"), py::arg("owners") = py::none())
		.def_static("vllm", [](const beluga_kv_shape &shape, uint64_t num_blocks,
				       const std::string &backend, const std::string &order,
				       py::sequence layer_bases, py::object owners) {
			// vLLM's per-layer tensors, contiguous in its physical order.
			auto pk = std::make_unique<PagedKV>();
			// The probe only computes strides; any aligned non-null base does.
			std::vector<void *> bases(shape.num_layers, reinterpret_cast<void *>(uintptr_t(4096)));
			if (size_t(py::len(layer_bases)) != shape.num_layers)
				throw py::value_error("need one layer base per layer");
			beluga_kv_paged probe;
			xcheck(beluga_kv_paged_vllm_per_layer(&probe, &shape, num_blocks, backend_of(backend),
							      order_of(order), bases.data()),
			       "PagedKV.vllm");
			size_t need = layer_span(probe);
			for (uint32_t l = 0; l < shape.num_layers; l++)
				bases[l] = base_of(*pk, layer_bases[l], need, l);
			xcheck(beluga_kv_paged_vllm_per_layer(&pk->desc, &shape, num_blocks, backend_of(backend),
							      order_of(order), bases.data()),
			       "PagedKV.vllm");
			if (!owners.is_none())
				pk->owners = py::list(owners);
			return pk;
		}, py::arg("shape"), py::arg("num_blocks"), py::arg("backend"), py::arg("order"),
		   py::arg("layer_bases"), py::arg("owners") = py::none(),
		   "vLLM per-layer layout: backend 'flash_attn' [2,NB,T,H,D] or 'flashinfer' [NB,2,T,H,D], "
		   "order 'NHD' or 'HND'.")
		.def_property_readonly("shape", [](const PagedKV &p) { return p.desc.shape; })
		.def_property_readonly("num_blocks", [](const PagedKV &p) { return p.desc.num_blocks; })
		.def_property_readonly("strides", [](const PagedKV &p) {
			return py::make_tuple(p.desc.stride_block, p.desc.stride_kv, p.desc.stride_token,
					      p.desc.stride_head);
		})
		.def("run_bytes", [](const PagedKV &p) {
			beluga_kv_block_ref ref{0, nullptr};
			static uint8_t dummy alignas(64)[1];
			ref.pool = dummy;
			beluga_kv_xfer x{&p.desc, &ref, 1, 0, p.desc.shape.num_layers, BELUGA_KV_GATHER, 0};
			size_t run = 0;
			uint64_t runs = 0;
			xcheck(beluga_kv_xfer_runs(&x, &run, &runs), "run_bytes");
			return py::make_tuple(run, runs);
		}, "(bytes per contiguous run, runs per block): how well the layout merges.");

	py::class_<CpuCopier>(m, "CpuCopier", R"doc(
The CPU data path: multi-threaded memcpy of the longest contiguous runs, with
non-temporal stores for large gathers.  gather() copies paged blocks into
pool blocks (writable buffers), scatter() pool blocks (e.g. Pins) into the
paged cache; layers=(begin, end) moves part of each block.
)doc")
		.def(py::init([](uint32_t threads, const std::string &nt, size_t nt_min_bytes, size_t mt_min_bytes) {
			beluga_kv_cpu_opts o{};
			o.threads = threads;
			if (nt == "auto") o.nt_mode = BELUGA_KV_NT_AUTO;
			else if (nt == "always") o.nt_mode = BELUGA_KV_NT_ALWAYS;
			else if (nt == "never") o.nt_mode = BELUGA_KV_NT_NEVER;
			else throw py::value_error("nt must be 'auto', 'always' or 'never'");
			o.nt_min_bytes = nt_min_bytes;
			o.mt_min_bytes = mt_min_bytes;
			beluga_kv_cpu *c = nullptr;
			xcheck(beluga_kv_cpu_create(&o, &c), "CpuCopier");
			return CpuCopier{std::unique_ptr<beluga_kv_cpu, CpuFree>(c)};
		}), py::arg("threads") = 0, py::arg("nt") = "auto", py::arg("nt_min_bytes") = 0,
		    py::arg("mt_min_bytes") = 0)
		.def("gather", [](CpuCopier &c, PagedKV &pk, py::sequence ids, py::handle pool, py::object layers) {
			run_copy(c, pk, ids, pool, layers, BELUGA_KV_GATHER);
		}, py::arg("paged"), py::arg("block_ids"), py::arg("pool_blocks"), py::arg("layers") = py::none())
		.def("scatter", [](CpuCopier &c, PagedKV &pk, py::sequence ids, py::handle pool, py::object layers) {
			run_copy(c, pk, ids, pool, layers, BELUGA_KV_SCATTER);
		}, py::arg("paged"), py::arg("block_ids"), py::arg("pool_blocks"), py::arg("layers") = py::none());

	py::dict dt;
	for (auto d : {BELUGA_KV_FP16, BELUGA_KV_BF16, BELUGA_KV_FP8_E4M3, BELUGA_KV_FP8_E5M2, BELUGA_KV_FP32})
		dt[py::str(dtype_name(d))] = beluga_kv_dtype_size(d);
	m.attr("DTYPE_SIZES") = dt;
}

} // namespace bpy
