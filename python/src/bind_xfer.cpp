// SPDX-License-Identifier: Apache-2.0
// The data path between an engine's paged KV cache and pool blocks, over the
// C++ API (beluga/xfer.hpp): KVShape (pool block geometry), PagedKV (a paged
// cache described by layer base addresses and element strides, e.g. from
// torch tensors' data_ptr()/stride(), in host or GPU memory), CpuCopier
// (gather-write into pool blocks, scatter-read from them, e.g. from Pins),
// check_gpu_transfer (what the GPU copier checks first, runnable without a
// GPU).  The GPU copier itself: bind_xfer_cuda.cpp.
#include "xfer_objects.hpp"

#include <beluga/kvcache.hpp>

#include <array>
#include <cstring>
#include <memory>
#include <string>

namespace bpy {

namespace bx = beluga::xfer;
using beluga::kvc::dtype_name;

bx::Dir dir_of(const std::string &s)
{
	if (s == "gather")
		return bx::Dir::Gather;
	if (s == "scatter")
		return bx::Dir::Scatter;
	throw py::value_error("direction must be 'gather' (engine -> pool) or 'scatter' (pool -> engine), not '" +
			      s + "'");
}

std::optional<bx::LayerRange> layers_of(py::handle layers)
{
	if (layers.is_none())
		return std::nullopt;
	auto t = layers.cast<std::pair<uint32_t, uint32_t>>();
	return bx::LayerRange{t.first, t.second};
}

namespace {

std::vector<uint64_t> block_ids_of(py::sequence ids)
{
	std::vector<uint64_t> out(py::len(ids));
	for (size_t i = 0; i < out.size(); i++) {
		const long long b = ids[i].cast<long long>();
		if (b < 0)
			throw py::value_error("negative block id (item " + std::to_string(i) + ")");
		out[i] = uint64_t(b);
	}
	return out;
}

// A layer base: an int address (torch: tensor.data_ptr()) or, for host
// memory only, a writable buffer, which is then held and bounds-checked.
void *base_of(PagedKV &pk, py::handle b, size_t need, uint32_t layer)
{
	if (PyLong_Check(b.ptr())) {
		const auto a = b.cast<uintptr_t>();
		if (!a)
			throw py::value_error("layer " + std::to_string(layer) + ": base address 0");
		return reinterpret_cast<void *>(a);
	}
	if (pk.device >= 0)
		throw py::type_error("layer " + std::to_string(layer) + ": a PagedKV in GPU memory takes device "
				     "addresses (ints, e.g. tensor.data_ptr()), not buffers");
	pk.held.push_back(std::make_unique<Buffer>(b, true));
	if (pk.held.back()->size() < need)
		throw py::value_error("layer " + std::to_string(layer) + ": buffer of " +
				      std::to_string(pk.held.back()->size()) + " bytes, the strides reach " +
				      std::to_string(need));
	return pk.held.back()->data();
}

// Builds the PagedKV twice when buffers are involved: first with stand-in
// bases to learn the span a layer needs, then with the real ones.
template <class Make>
std::unique_ptr<PagedKV> make_paged(const bx::Shape &shape, py::sequence layer_bases, py::object owners, int device,
				    Make make)
{
	if (device < -1)
		throw py::value_error("device must be -1 (host memory) or a CUDA device ordinal");
	if (size_t(py::len(layer_bases)) != shape.num_layers())
		throw py::value_error("need one layer base per layer (" + std::to_string(shape.num_layers()) +
				      "), got " + std::to_string(py::len(layer_bases)));
	// The probe only computes strides; any aligned non-null base does.
	std::vector<void *> bases(shape.num_layers(), reinterpret_cast<void *>(uintptr_t(4096)));
	const size_t need = make(bases).layer_span_bytes();
	auto pk = std::make_unique<PagedKV>(make(bases));
	pk->device = device;
	for (uint32_t l = 0; l < shape.num_layers(); l++)
		bases[l] = base_of(*pk, layer_bases[l], need, l);
	pk->paged = make(bases);
	if (!owners.is_none())
		pk->owners = py::list(owners);
	return pk;
}

// One CPU transfer: refs from block ids and pool block buffers (list, or one
// buffer split evenly), layers [begin, end).
void cpu_copy(bx::CpuCopier &cpu, PagedKV &pk, py::sequence block_ids, py::handle pool_blocks, py::handle layers,
	      bx::Dir dir)
{
	if (pk.device >= 0)
		throw py::value_error("this PagedKV is in the memory of GPU " + std::to_string(pk.device) +
				      ": the CPU copier moves host memory only (use GpuCopier)");
	const bool gather = dir == bx::Dir::Gather;
	const auto ids = block_ids_of(block_ids);
	auto bufs = buffer_set(pool_blocks, ids.size(), gather, gather ? "gather" : "scatter");
	std::vector<bx::BlockRef> refs(ids.size());
	for (size_t i = 0; i < ids.size(); i++)
		refs[i] = {ids[i], bufs.parts[i].first};
	const bx::Transfer t(pk.paged, std::move(refs), dir, layers_of(layers));
	const size_t need = t.pool_bytes_needed();
	for (size_t i = 0; i < ids.size(); i++)
		if (bufs.parts[i].second < need)
			throw py::value_error("pool block " + std::to_string(i) + " has " +
					      std::to_string(bufs.parts[i].second) + " bytes, the layers need " +
					      std::to_string(need));
	nogil([&] { cpu.copy(t); });
}

} // namespace

bx::Transfer gpu_transfer(const PagedKV &pk, py::sequence block_ids, py::sequence pool_addresses, bx::Dir dir,
			  py::handle layers)
{
	if (pk.device < 0)
		throw py::value_error("this PagedKV is in host memory: the GPU copier moves between GPU memory "
				      "and pool blocks (make it with device=<CUDA ordinal>, or use CpuCopier)");
	const auto ids = block_ids_of(block_ids);
	if (size_t(py::len(pool_addresses)) != ids.size())
		throw py::value_error(std::to_string(py::len(pool_addresses)) + " pool addresses for " +
				      std::to_string(ids.size()) + " block ids");
	std::vector<bx::BlockRef> refs(ids.size());
	for (size_t i = 0; i < ids.size(); i++) {
		py::handle a = pool_addresses[i];
		if (!PyLong_Check(a.ptr()))
			throw py::type_error("pool address " + std::to_string(i) + " must be an int (a device-visible "
					     "address, e.g. GpuRegistration.device_address())");
		refs[i] = {ids[i], reinterpret_cast<void *>(a.cast<uintptr_t>())};
	}
	return bx::Transfer(pk.paged, std::move(refs), dir, layers_of(layers));
}

void register_xfer(py::module_ &m)
{
	py::class_<bx::Shape>(m, "KVShape", R"doc(
The shape of one KV block of a tensor-parallel rank.  A pool block is the
C-order array [num_layers][2 (K, V)][block_size][num_kv_heads][head_size].
)doc")
		.def(py::init([](uint32_t num_layers, uint32_t block_size, uint32_t num_kv_heads, uint32_t head_size,
				 py::handle dtype) {
			return bx::Shape(num_layers, block_size, num_kv_heads, head_size, dtype_of(dtype));
		}), py::arg("num_layers"), py::arg("block_size"), py::arg("num_kv_heads"), py::arg("head_size"),
		     py::arg("dtype") = "bf16")
		.def_property_readonly("num_layers", &bx::Shape::num_layers)
		.def_property_readonly("block_size", &bx::Shape::block_size)
		.def_property_readonly("num_kv_heads", &bx::Shape::num_kv_heads)
		.def_property_readonly("head_size", &bx::Shape::head_size)
		.def_property_readonly("dtype", [](const bx::Shape &s) { return dtype_name(s.dtype()); })
		.def_property_readonly("dtype_size", &bx::Shape::dtype_size)
		.def_property_readonly("row_bytes", &bx::Shape::row_bytes)
		.def_property_readonly("slice_bytes", &bx::Shape::slice_bytes)
		.def_property_readonly("layer_bytes", &bx::Shape::layer_bytes)
		.def_property_readonly("block_bytes", &bx::Shape::block_bytes)
		.def("layer_offset", &bx::Shape::layer_offset, py::arg("layer"))
		.def("slice_offset", &bx::Shape::slice_offset, py::arg("layer"), py::arg("kv"))
		.def("__eq__", [](const bx::Shape &a, const bx::Shape &b) { return a == b; })
		.def("__repr__", [](const bx::Shape &s) {
			return "KVShape(num_layers=" + std::to_string(s.num_layers()) + ", block_size=" +
			       std::to_string(s.block_size()) + ", num_kv_heads=" + std::to_string(s.num_kv_heads()) +
			       ", head_size=" + std::to_string(s.head_size()) + ", dtype='" + dtype_name(s.dtype()) + "')";
		});

	py::class_<PagedKV>(m, "PagedKV", R"doc(
An engine's paged KV cache.  Element (layer l, kv k, block b, token t, head h,
dim d) is at layer_bases[l] + (b*sb + k*skv + t*st + h*sh + d) * dtype size,
strides = (sb, skv, st, sh) in elements.  A layer base is an int address
(torch: tensor.data_ptr(); pass the tensors as `owners` to keep them alive)
or, in host memory, a writable buffer (held, and bounds-checked against the
strides).  device=-1: host memory (CpuCopier); device=N: the memory of CUDA
device N, layer bases being device addresses (GpuCopier).
)doc")
		.def(py::init([](const bx::Shape &shape, uint64_t num_blocks, std::array<int64_t, 4> st,
				 py::sequence layer_bases, py::object owners, int device) {
			return make_paged(shape, layer_bases, owners, device, [&](const std::vector<void *> &b) {
				return bx::Paged::strided(shape, num_blocks, {st[0], st[1], st[2], st[3]}, b);
			});
		}), py::arg("shape"), py::arg("num_blocks"), py::arg("strides"), py::arg("layer_bases"),
		     py::arg("owners") = py::none(), py::arg("device") = -1)
		.def_static("vllm", [](const bx::Shape &shape, uint64_t num_blocks, const std::string &backend,
				       const std::string &order, py::sequence layer_bases, py::object owners, int device) {
			const bx::Backend b = bx::parse_backend(backend);
			const bx::Order o = bx::parse_order(order);
			return make_paged(shape, layer_bases, owners, device, [&](const std::vector<void *> &bases) {
				return bx::Paged::vllm_per_layer(shape, num_blocks, b, o, bases);
			});
		}, py::arg("shape"), py::arg("num_blocks"), py::arg("backend"), py::arg("order"),
		   py::arg("layer_bases"), py::arg("owners") = py::none(), py::arg("device") = -1,
		   "vLLM per-layer layout: backend 'flash_attn' [2,NB,T,H,D] or 'flashinfer' [NB,2,T,H,D], "
		   "order 'NHD' or 'HND', one contiguous tensor per layer.")
		.def_static("vllm_cross_layer", [](const bx::Shape &shape, uint64_t num_blocks, const std::string &backend,
						   const std::string &order, py::handle base, py::object owners, int device) {
			const bx::Backend b = bx::parse_backend(backend);
			const bx::Order o = bx::parse_order(order);
			// One base for every layer: the cross-layer tensor.
			py::list bases;
			for (uint32_t l = 0; l < shape.num_layers(); l++)
				bases.append(base);
			auto pk = make_paged(shape, bases, owners, device, [&](const std::vector<void *> &bs) {
				return bx::Paged::vllm_cross_layer(shape, num_blocks, b, o, bs[0]);
			});
			return pk;
		}, py::arg("shape"), py::arg("num_blocks"), py::arg("backend"), py::arg("order"), py::arg("base"),
		   py::arg("owners") = py::none(), py::arg("device") = -1,
		   "vLLM cross-layer layout: one contiguous tensor for all layers at `base` (physical order "
		   "[NB, L, 2, T, H, D] for NHD; see beluga/kv_layout.h for HND).")
		.def_property_readonly("shape", [](const PagedKV &p) { return p.paged.shape(); })
		.def_property_readonly("num_blocks", [](const PagedKV &p) { return p.paged.num_blocks(); })
		.def_property_readonly("device", [](const PagedKV &p) { return p.device; })
		.def_property_readonly("strides", [](const PagedKV &p) {
			const bx::Strides s = p.paged.strides();
			return py::make_tuple(s.block, s.kv, s.token, s.head);
		})
		.def("layer_base", [](const PagedKV &p, uint32_t l) {
			return reinterpret_cast<uintptr_t>(p.paged.layer_base(l));
		}, py::arg("layer"))
		.def_property_readonly("layer_span_bytes", [](const PagedKV &p) { return p.paged.layer_span_bytes(); })
		.def("run_bytes", [](const PagedKV &p) {
			alignas(64) static uint8_t dummy[1];
			return bx::Transfer(p.paged, {{0, dummy}}, bx::Dir::Gather).runs();
		}, "(bytes per contiguous run, runs per block): how well the layout merges.");

	py::class_<bx::CpuCopier>(m, "CpuCopier", R"doc(
The CPU data path: multi-threaded memcpy of the longest contiguous runs, with
non-temporal stores for large gathers.  gather() copies paged blocks into
pool blocks (writable buffers), scatter() pool blocks (e.g. Pins) into the
paged cache; layers=(begin, end) moves part of each block.
)doc")
		.def(py::init([](uint32_t threads, const std::string &nt, size_t nt_min_bytes, size_t mt_min_bytes) {
			return std::make_unique<bx::CpuCopier>(
				bx::CpuOptions{threads, bx::parse_nt_mode(nt), nt_min_bytes, mt_min_bytes});
		}), py::arg("threads") = 0, py::arg("nt") = "auto", py::arg("nt_min_bytes") = 0,
		    py::arg("mt_min_bytes") = 0)
		.def("gather", [](bx::CpuCopier &c, PagedKV &pk, py::sequence ids, py::handle pool, py::handle layers) {
			cpu_copy(c, pk, ids, pool, layers, bx::Dir::Gather);
		}, py::arg("paged"), py::arg("block_ids"), py::arg("pool_blocks"), py::arg("layers") = py::none())
		.def("scatter", [](bx::CpuCopier &c, PagedKV &pk, py::sequence ids, py::handle pool, py::handle layers) {
			cpu_copy(c, pk, ids, pool, layers, bx::Dir::Scatter);
		}, py::arg("paged"), py::arg("block_ids"), py::arg("pool_blocks"), py::arg("layers") = py::none());

	m.def("check_gpu_transfer", [](const PagedKV &pk, py::sequence ids, py::sequence addrs,
				       const std::string &direction, py::handle layers) {
		return gpu_transfer(pk, ids, addrs, dir_of(direction), layers).runs();
	}, py::arg("paged"), py::arg("block_ids"), py::arg("pool_addresses"), py::arg("direction") = "gather",
	      py::arg("layers") = py::none(), R"doc(
Check a GPU transfer as GpuCopier.gather/scatter do before touching the GPU
(block ids in range, no NULL pool address, no block written twice, layers in
range, a PagedKV in GPU memory), without needing a GPU.  Returns (bytes per
contiguous run, runs).  Pool addresses cannot be checked for reachability:
they must be device-visible (GpuRegistration.device_address()).)doc");

	py::dict dt;
	for (auto d : {BELUGA_KV_FP16, BELUGA_KV_BF16, BELUGA_KV_FP8_E4M3, BELUGA_KV_FP8_E5M2, BELUGA_KV_FP32})
		dt[py::str(dtype_name(d))] = beluga_kv_dtype_size(d);
	m.attr("DTYPE_SIZES") = dt;
}

} // namespace bpy
