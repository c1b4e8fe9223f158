// SPDX-License-Identifier: Apache-2.0
// Zero-copy stores: KVCache.reserve() and the Reservation it returns, over
// beluga::kvc::Cache::reserve and beluga::kvc::Reservation (kvcache.hpp).
#include "objects.hpp"

#include <pybind11/stl.h>

namespace bpy {

py::memoryview Reservation::view(size_t i)
{
	if (i >= res_.size())
		throw py::index_error("reservation item out of range");
	if (!res_.reserved(i))
		throw py::value_error("item " + std::to_string(i) + " holds no slot (result " +
				      std::to_string(res_.result(i)) + ": cached already, no space, "
				      "committed or aborted)");
	auto v = py::memoryview::from_memory(res_.data(i), py::ssize_t(res_.len(i)), false);
	views_.push_back(v);
	return v;
}

void Reservation::release_views()
{
	for (auto &v : views_)
		v.attr("release")();
	views_.clear();
}

std::vector<int> Reservation::commit(std::optional<std::vector<uint64_t>> sums)
{
	if (sums && sums->size() != res_.size())
		throw py::value_error("commit(sums): " + std::to_string(sums->size()) + " sums for " +
				      std::to_string(res_.size()) + " items (give one per item, in their order)");
	release_views();
	if (sums)
		return nogil([&] { return res_.commit(std::span<const uint64_t>(*sums)); });
	return nogil([&] { return res_.commit(); });
}

void Reservation::abort(std::optional<size_t> i)
{
	release_views();
	if (!i) {
		res_.abort();
		return;
	}
	if (*i >= res_.size())
		throw py::index_error("reservation item out of range");
	res_.abort(*i);
}

void register_reservation(py::module_ &m)
{
	py::class_<Reservation>(m, "Reservation", R"doc(
Slots reserved by KVCache.reserve(keys, length) for a zero-copy store: write
each reserved block's payload in place (view(i), e.g. as the destination of
CpuCopier.gather), then commit() checksums, writes back and publishes them,
one copy and one lookup per key.  results[i]: 0 reserved, EXISTS (cached
already: nothing to write), -ENOSPC, -ENOBUFS (too many reservations held by
this process: max_batch - 1), -EINVAL.  Readers never see a reserved block
before commit(); a process that dies holding one has it reclaimed.  Views are
released at commit()/abort(), so using one afterwards raises ValueError;
arrays or views made from a view (numpy.frombuffer, slices) are not tracked:
do not write through them after commit().  Whatever is still reserved is
aborted when the object is collected or leaves a `with` block; the cache
cannot be detached while a reservation is open.)doc")
		.def("__len__", &Reservation::size)
		.def_property_readonly("results", [](Reservation &r) {
			std::vector<int> out(r.size());
			for (size_t i = 0; i < r.size(); i++)
				out[i] = r.get().result(i);
			return out;
		})
		.def("reserved", [](Reservation &r, size_t i) {
			if (i >= r.size())
				throw py::index_error("reservation item out of range");
			return r.get().reserved(i);
		}, py::arg("i"), "Whether item i holds a slot now (reserved, not committed or aborted).")
		.def("view", &Reservation::view, py::arg("i"),
		     "A writable memoryview of item i's slot (released at commit/abort).")
		.def("address", [](Reservation &r, size_t i) {
			if (i >= r.size() || !r.get().reserved(i))
				throw py::value_error("item holds no slot");
			return reinterpret_cast<uintptr_t>(r.get().data(i));
		}, py::arg("i"), "Item i's slot as a host address (GpuRegistration.device_address() maps it).")
		.def("offset", [](Reservation &r, size_t i) {
			if (i >= r.size() || !r.get().reserved(i))
				throw py::value_error("item holds no slot");
			return r.get().offset(i);
		}, py::arg("i"), "Item i's slot as an offset from the region's start (a device mapping).")
		.def("commit", &Reservation::commit, py::arg("sums") = py::none(), R"doc(
Publish every reserved item.  Per item: 0 published, -ENOENT held no slot
(cached already, aborted), or the store's error.  The views end here.
sums: the checksums (beluga.checksum) the writer computed, one per item in
the items' order (entries of items holding no slot are ignored), e.g. by
the GPU during GpuCopier.gather_sum: the payload is then not read again,
and a reader that verifies misses a block whose payload does not match its
sum.  Without: the library checksums each slot.)doc")
		.def("abort", &Reservation::abort, py::arg("i") = py::none(),
		     "Give back item i (default: every item still reserved) unpublished.")
		.def("__enter__", [](py::object self) { return self; })
		.def("__exit__", [](Reservation &r, py::handle, py::handle, py::handle) {
			r.abort(std::nullopt);
			return false;
		});
}

} // namespace bpy
