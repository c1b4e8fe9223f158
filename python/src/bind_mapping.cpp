// SPDX-License-Identifier: Apache-2.0
// beluga.Mapping over beluga::Mapping: exports its memory with the buffer
// protocol and DLPack, and refuses close() while views exist, so numpy
// arrays never outlive the map.  Mapping.register_gpu() and the
// GpuRegistration it returns (beluga::GpuRegistration): the mapping made
// reachable by a CUDA device, for the GPU data path (GpuCopier).
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
		.def("register_gpu", [](py::object self, int device, bool read_only, bool verify) {
			Mapping &mp = self.cast<Mapping &>();
			if (mp.gpu)
				throw py::value_error("this mapping is registered with GPU " + std::to_string(mp.gpu->device) +
						      " already (once per mapping: use Mapping.gpu, or close() that "
						      "registration first)");
			const beluga::Mapping &map = mp.get();
			const uint32_t flags = (read_only ? BELUGA_GPU_READONLY : 0) | (verify ? 0 : BELUGA_GPU_NO_VERIFY);
			auto reg = nogil([&] { return map.register_gpu(device, flags); });
			return std::make_unique<GpuRegistration>(self, std::move(reg), device);
		}, py::arg("device") = 0, py::arg("read_only") = false, py::arg("verify") = true, R"doc(
Register the mapping with CUDA device `device` (libbeluga's
beluga_gpu_register: cudaHostRegister in chunks of at most the pool's
gpu_chunk_max, through the driver's GPU accounting with the kernel backend,
and a check that no page moved unless verify=False), so GpuCopier can copy
between it and GPU memory.  Once per mapping: a second call raises
ValueError.  Returns the GpuRegistration (unregistered by its close(), this
mapping's close(), or when collected).  Raises BelugaError ENOCUDA (libbeluga
built without CUDA) or ENOGPU (no usable GPU) where it cannot.)doc")
		.def_property_readonly("gpu", [](const Mapping &mp) -> py::object {
			if (!mp.gpu)
				return py::none();
			return py::cast(mp.gpu, py::return_value_policy::reference);
		}, "The live GpuRegistration of this mapping, or None.")
		.def("close", &Mapping::close)
		.def("__enter__", [](py::object self) { return self; })
		.def("__exit__", [](Mapping &mp, py::args) { mp.close(); });
}

void register_gpu_registration(py::module_ &m)
{
	py::class_<GpuRegistration>(m, "GpuRegistration", R"doc(
A Mapping registered with a CUDA device (Mapping.register_gpu).  Pool
addresses for GpuCopier come from device_address(): the device address of a
host address inside the mapping (Pin.address, Reservation.address(i) of a
cache attached over this mapping).  close() synchronises the device and
unregisters every chunk; the mapping's close() does it too.)doc")
		.def_property_readonly("device", [](const GpuRegistration &g) { return g.device; })
		.def_property_readonly("closed", [](const GpuRegistration &g) { return !g.reg.has_value(); })
		.def_property_readonly("device_pointer", [](const GpuRegistration &g) {
			return reinterpret_cast<uintptr_t>(g.get().device_pointer());
		}, "The device address of the mapping's first byte.")
		.def_property_readonly("host_address", [](const GpuRegistration &g) {
			g.get();
			return reinterpret_cast<uintptr_t>(g.mapping().get().data());
		})
		.def_property_readonly("size", [](const GpuRegistration &g) {
			g.get();
			return g.mapping().get().size();
		})
		.def_property_readonly("chunks", [](const GpuRegistration &g) { return g.get().chunks(); })
		.def_property_readonly("chunk_bytes", [](const GpuRegistration &g) { return g.get().chunk_bytes(); },
				       "Bytes per registered chunk: one CUDA memcpy must not cross a multiple of it.")
		.def_property_readonly("socket", [](const GpuRegistration &g) {
			switch (g.get().socket()) {
			case BELUGA_GPU_SOCKET_SAME: return "same";
			case BELUGA_GPU_SOCKET_OTHER: return "other";
			case BELUGA_GPU_SOCKET_MIXED: return "mixed";
			default: return "unknown";
			}
		}, "Whether the memory hangs off the GPU's socket, as the driver reports it.")
		.def("device_address", [](const GpuRegistration &g, uintptr_t host, size_t length) {
			const beluga::GpuRegistration &r = g.get();
			const auto base = reinterpret_cast<uintptr_t>(g.mapping().get().data());
			const size_t size = g.mapping().get().size();
			if (host < base || host - base > size || length > size - (host - base))
				throw py::value_error("host address range is not inside the registered mapping");
			return reinterpret_cast<uintptr_t>(r.device_pointer()) + (host - base);
		}, py::arg("host_address"), py::arg("length") = 1,
		   "The device address of [host_address, host_address + length) (ValueError unless inside the mapping).")
		.def("close", &GpuRegistration::close)
		.def("__enter__", [](py::object self) { return self; })
		.def("__exit__", [](GpuRegistration &g, py::args) { g.close(); });
}

} // namespace bpy
