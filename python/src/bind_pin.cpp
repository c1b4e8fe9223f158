// SPDX-License-Identifier: Apache-2.0
// beluga.Pin over beluga::kvc::Pin: a pinned block exported read-only with
// the buffer protocol and DLPack (KVCache.pin makes them).
#include "objects.hpp"

namespace bpy {

void register_pin(py::module_ &m)
{
	py::class_<Pin>(m, "Pin", py::custom_type_setup(install_buffer_protocol<Pin>), R"doc(
A block pinned for zero-copy reading (KVCache.pin): a read-only buffer over
the block in the region (memoryview(pin), numpy.frombuffer(pin, ...)), valid
and unchanged until unpin().  unpin() raises BufferError while views exist;
a collected Pin unpins itself.  Never write through a DLPack tensor of it.
)doc")
		.def_property_readonly("key", [](const Pin &p) { return py::bytes(p.key()); })
		.def_property_readonly("pinned", &Pin::pinned)
		.def_property_readonly("address", [](const Pin &p) {
			return reinterpret_cast<uintptr_t>(p.buf_data());
		})
		.def("__len__", [](const Pin &p) { return p.buf_len(); })
		.def("unpin", &Pin::unpin)
		.def("__dlpack__", [](py::object self, py::object) {
			return make_dlpack(self, self.cast<Pin &>());
		}, py::arg("stream") = py::none())
		.def("__dlpack_device__", [](const Pin &) { return py::make_tuple(1, 0); })
		.def("__enter__", [](py::object self) { return self; })
		.def("__exit__", [](Pin &p, py::args) { p.unpin(); });
}

} // namespace bpy
