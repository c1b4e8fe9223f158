// SPDX-License-Identifier: Apache-2.0
// beluga.Region over beluga::Region.
#include "objects.hpp"

namespace bpy {

void register_region(py::module_ &m)
{
	py::class_<Region>(m, "Region", "An open region of a pool (Pool.create_region / open_region).")
		.def_property_readonly("name", [](const Region &r) { return r.get().name(); })
		.def_property_readonly("size", [](const Region &r) { return r.get().size(); })
		.def_property_readonly("id", [](const Region &r) { return r.get().id(); })
		.def_property_readonly("fd", [](const Region &r) { return r.get().fd(); },
				       "The region fd, owned by the Region (os.dup() it to keep it).")
		.def_property_readonly("closed", &Region::closed)
		.def("info", [](const Region &r) { return region_info_dict(r.get().info()); })
		.def("layout", [](const Region &r) { return r.get().layout(); },
		     "The NUMA node of each 2 MiB chunk.")
		.def("map", [](const Region &r, uint64_t offset, size_t length, bool writable) {
			const beluga::Region &region = r.get();
			auto prot = writable ? beluga::Prot::ReadWrite : beluga::Prot::Read;
			return Mapping(nogil([&] { return region.map(prot, offset, length); }));
		}, py::arg("offset") = 0, py::arg("length") = 0, py::arg("writable") = true,
		     "Map [offset, offset+length) shared (length 0: to the end).  Returns a Mapping, "
		     "a buffer: memoryview(m), numpy.frombuffer(m, ...), torch.frombuffer(m, ...).")
		.def("send", [](const Region &r, py::handle sock) { r.get().send(socket_fd(sock)); },
		     py::arg("sock"))
		.def("close", &Region::close)
		.def("__enter__", [](py::object self) { return self; })
		.def("__exit__", [](Region &r, py::args) { r.close(); });
}

} // namespace bpy
