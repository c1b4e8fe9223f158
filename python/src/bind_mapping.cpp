// SPDX-License-Identifier: Apache-2.0
// beluga.Mapping over beluga::Mapping: exports its memory with the buffer
// protocol and DLPack, and refuses close() while views exist, so numpy
// arrays never outlive the map.
#include "objects.hpp"

namespace bpy {

void register_mapping(py::module_ &m)
{
	py::class_<Mapping>(m, "Mapping", py::custom_type_setup(install_buffer_protocol<Mapping>),
			    R"doc(
A shared mapping of (part of) a region, exported zero-copy through the buffer
protocol (memoryview, numpy.frombuffer, torch.frombuffer) and DLPack
(torch.utils.dlpack.from_dlpack).  close() raises BufferError while any such
view exists; the memory is unmapped once the last reference is gone.
)doc")
		.def_property_readonly("address", [](const Mapping &mp) {
			return reinterpret_cast<uintptr_t>(mp.get().data());
		})
		.def_property_readonly("size", [](const Mapping &mp) { return mp.get().size(); })
		.def_property_readonly("offset", [](const Mapping &mp) { return mp.get().offset(); })
		.def_property_readonly("writable", [](const Mapping &mp) { return mp.get().writable(); })
		.def_property_readonly("closed", [](const Mapping &mp) { return mp.closed(); })
		.def("__len__", [](const Mapping &mp) { return mp.get().size(); })
		.def("save", [](const Mapping &mp, const std::string &path) {
			const beluga::Mapping &map = mp.get();
			nogil([&] { map.save(path); });
		}, py::arg("path"))
		.def("load", [](const Mapping &mp, const std::string &path) {
			const beluga::Mapping &map = mp.get();
			nogil([&] { map.load(path); });
		}, py::arg("path"))
		.def("__dlpack__", [](py::object self, py::object /*stream*/) {
			return make_dlpack(self, self.cast<Mapping &>());
		}, py::arg("stream") = py::none())
		.def("__dlpack_device__", [](const Mapping &) { return py::make_tuple(1, 0); })
		.def("close", &Mapping::close)
		.def("__enter__", [](py::object self) { return self; })
		.def("__exit__", [](Mapping &mp, py::args) { mp.close(); });
}

} // namespace bpy
