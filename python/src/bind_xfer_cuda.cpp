// SPDX-License-Identifier: Apache-2.0
// The GPU data path over the C++ API (beluga/xfer_cuda.hpp): GpuCopier
// (gather/scatter between paged KV in GPU memory and registered pool blocks,
// on a caller-given CUDA stream) and GpuEvent (what a copy returns: query,
// synchronize, make another stream wait).  Raw device addresses and integer
// stream handles only: no torch dependency (beluga/gpu.py accepts tensors).
// Compiled with the GPU path only when libbeluga/xfer's CUDA library was
// built (BELUGA_XFER_HAVE_CUDA); otherwise HAVE_CUDA_XFER is False and
// gpu_available() says why.
#include "xfer_objects.hpp"

#ifdef BELUGA_XFER_HAVE_CUDA
#include <beluga/xfer_cuda.hpp>
#include <pybind11/stl.h>
#endif

#include <memory>
#include <string>
#include <utility>

namespace bpy {

#ifdef BELUGA_XFER_HAVE_CUDA

namespace {

namespace bx = beluga::xfer;
namespace bxc = beluga::xfer::cuda;

// A copy's completion, keeping what it reads and writes referenced (the
// PagedKV and its owners) until it is collected.
struct GpuEvent {
	bxc::Event ev;
	py::object keep;
	// gather_sum: the checksums the copy writes (pinned), read once it completed.
	std::shared_ptr<bxc::PinnedArray<uint64_t>> sums;
};

// A copier that remembers its device (checked against each PagedKV).
struct GpuCopier {
	explicit GpuCopier(const bxc::GpuOptions &o) : c(o) {}
	bxc::GpuCopier c;
};

GpuEvent copy(GpuCopier &g, py::object paged_obj, py::sequence ids, py::sequence addrs, py::handle layers,
	      uintptr_t stream, bx::Dir dir)
{
	PagedKV &pk = paged_obj.cast<PagedKV &>();
	const bx::Transfer t = gpu_transfer(pk, ids, addrs, dir, layers);
	if (pk.device != g.c.device())
		throw py::value_error("this PagedKV is in the memory of GPU " + std::to_string(pk.device) +
				      ", the copier works on GPU " + std::to_string(g.c.device()));
	const bxc::Stream s = bxc::stream_of(stream);
	bxc::Event ev = nogil([&] {
		g.c.make_current(); // the device torch uses here: nothing switches and back
		return g.c.copy(t, s);
	});
	return GpuEvent{std::move(ev), paged_obj, nullptr};
}

GpuEvent gather_sum(GpuCopier &g, py::object paged_obj, py::sequence ids, py::sequence addrs, uintptr_t stream,
		    uint32_t method)
{
	PagedKV &pk = paged_obj.cast<PagedKV &>();
	const bx::Transfer t = gpu_transfer(pk, ids, addrs, bx::Dir::Gather, py::none());
	if (pk.device != g.c.device())
		throw py::value_error("this PagedKV is in the memory of GPU " + std::to_string(pk.device) +
				      ", the copier works on GPU " + std::to_string(g.c.device()));
	if (method > BELUGA_KV_SUM_READBACK)
		throw py::value_error("method: SUM_AUTO, SUM_FUSED, SUM_SOURCE or SUM_READBACK");
	const bxc::Stream s = bxc::stream_of(stream);
	std::shared_ptr<bxc::PinnedArray<uint64_t>> sums;
	bxc::Event ev = nogil([&] { // no Python object is touched in here
		g.c.make_current();
		sums = std::make_shared<bxc::PinnedArray<uint64_t>>(t.refs().size());
		return g.c.gather_sum(t, s, sums->span(), static_cast<bxc::SumMethod>(method));
	});
	return GpuEvent{std::move(ev), paged_obj, std::move(sums)};
}

} // namespace

void register_xfer_cuda(py::module_ &m)
{
	m.attr("HAVE_CUDA_XFER") = true;
	m.def("gpu_available", [] {
		const bxc::Availability a = bxc::available();
		return py::make_tuple(a.usable, a.why);
	}, "(usable, reason): whether a CUDA device is usable now, and why not.");

	py::class_<GpuEvent>(m, "GpuEvent", R"doc(
The completion of a GpuCopier.gather/scatter: a CUDA event recorded on the
copy's stream right after it.  query() is True once the copy finished,
synchronize() blocks until then (GIL released), wait(stream) makes another
stream (an int handle) wait for it without blocking the host.  It keeps the
PagedKV (and the tensors it owns) referenced while it lives.)doc")
		.def("query", [](const GpuEvent &e) { return e.ev.query(); })
		.def("synchronize", [](const GpuEvent &e) { nogil([&] { e.ev.synchronize(); }); })
		.def("wait", [](const GpuEvent &e, uintptr_t stream) { e.ev.wait(bxc::stream_of(stream)); },
		     py::arg("stream"))
		.def_property_readonly("sums", [](const GpuEvent &e) {
			if (!e.sums)
				throw py::attribute_error("only the event of GpuCopier.gather_sum has sums");
			if (!e.ev.query())
				throw std::runtime_error("the sums are read once the copy completed "
							 "(synchronize() or query() first)");
			return std::vector<uint64_t>(e.sums->data(), e.sums->data() + e.sums->size());
		}, "gather_sum: the store checksum of each block, in the pool addresses' order "
		   "(RuntimeError before the copy completed).")
		.def_property_readonly("device", [](const GpuEvent &e) { return e.ev.device(); })
		.def_property_readonly("cuda_event", [](const GpuEvent &e) { return reinterpret_cast<uintptr_t>(e.ev.get()); },
				       "The cudaEvent_t as an int (owned by this object).");

	py::class_<GpuCopier>(m, "GpuCopier", R"doc(
The GPU data path (libbeluga/xfer's CUDA kernels and copy engines): gather
copies blocks of a PagedKV in GPU memory into pool blocks, scatter the other
way.  Pool block addresses must be device-visible: host memory registered
with CUDA (Mapping.register_gpu(), then GpuRegistration.device_address()) or
pinned.  Work is enqueued on `stream` (an int cudaStream_t handle, e.g.
torch.cuda.current_stream().cuda_stream; 0: the legacy default stream, kernel
only) and the call returns a GpuEvent without waiting.  Without a usable GPU
the constructor raises BelugaError(ENODEV) saying why.)doc")
		.def(py::init([](int device, uint32_t staging_slots, size_t staging_refs, uint32_t max_ctas,
				 size_t batch_min_bytes) {
			return std::make_unique<GpuCopier>(
				bxc::GpuOptions{device, staging_slots, staging_refs, max_ctas, batch_min_bytes});
		}), py::arg("device") = 0, py::arg("staging_slots") = 0, py::arg("staging_refs") = 0,
		     py::arg("max_ctas") = 0, py::arg("batch_min_bytes") = 0)
		.def_property_readonly("device", [](const GpuCopier &g) { return g.c.device(); })
		.def_property("batch_min_bytes", [](const GpuCopier &g) { return g.c.batch_min_bytes(); },
			      [](GpuCopier &g, size_t b) { g.c.set_batch_min_bytes(b); },
			      "Contiguous run size from which the copy engines are used (2**64-1: kernel only).")
		.def_property_readonly("has_batch_copy", [](const GpuCopier &g) { return g.c.has_batch_copy(); })
		.def("gather", [](GpuCopier &g, py::object paged, py::sequence ids, py::sequence addrs, py::handle layers,
				  uintptr_t stream) { return copy(g, paged, ids, addrs, layers, stream, bx::Dir::Gather); },
		     py::arg("paged"), py::arg("block_ids"), py::arg("pool_addresses"), py::arg("layers") = py::none(),
		     py::arg("stream") = 0)
		.def("scatter", [](GpuCopier &g, py::object paged, py::sequence ids, py::sequence addrs, py::handle layers,
				   uintptr_t stream) { return copy(g, paged, ids, addrs, layers, stream, bx::Dir::Scatter); },
		     py::arg("paged"), py::arg("block_ids"), py::arg("pool_addresses"), py::arg("layers") = py::none(),
		     py::arg("stream") = 0)
		.def("gather_sum", &gather_sum, py::arg("paged"), py::arg("block_ids"), py::arg("pool_addresses"),
		     py::arg("stream") = 0, py::arg("method") = uint32_t(BELUGA_KV_SUM_AUTO), R"doc(
gather of whole blocks (every layer) that also computes each block's store
checksum on the GPU (beluga_kv_gpu_gather_sum): the returned GpuEvent's
`sums`, one per pool address in their order, once it completed, are what
Reservation.commit(sums=) takes for the reserved slots written.  method:
SUM_AUTO (default), SUM_FUSED, SUM_SOURCE, SUM_READBACK.)doc");
	m.attr("SUM_AUTO") = uint32_t(BELUGA_KV_SUM_AUTO);
	m.attr("SUM_FUSED") = uint32_t(BELUGA_KV_SUM_FUSED);
	m.attr("SUM_SOURCE") = uint32_t(BELUGA_KV_SUM_SOURCE);
	m.attr("SUM_READBACK") = uint32_t(BELUGA_KV_SUM_READBACK);
}

#else // !BELUGA_XFER_HAVE_CUDA

void register_xfer_cuda(py::module_ &m)
{
	m.attr("HAVE_CUDA_XFER") = false;
	m.def("gpu_available", [] {
		return py::make_tuple(false, std::string("this beluga module was built without the CUDA data path "
							 "(no CUDA toolkit, or BELUGA_WITH_CUDA=OFF, at configure time)"));
	}, "(usable, reason): whether a CUDA device is usable now, and why not.");
}

#endif

} // namespace bpy
