// SPDX-License-Identifier: Apache-2.0
// beluga.Pool over beluga::Pool.  Each Python object owns one reference of
// the C handle (libbeluga counts them: a region keeps its pool alive, a
// mapping its region), released by close() or when the object is collected.
#include "objects.hpp"

#include <optional>

namespace bpy {

namespace {

Pool open_pool(const std::string &backend, std::optional<std::string> pool_name,
	       std::optional<std::string> user_dir, std::optional<std::string> hugetlbfs_dir,
	       std::optional<std::string> device_path, std::optional<std::string> sysfs_dir,
	       int log_level)
{
	// beluga::PoolOptions reads "" as "the default"; to Python that is None,
	// and an empty string stays the error it is to the C API.
	for (const auto *v : { &pool_name, &user_dir, &hugetlbfs_dir, &device_path, &sysfs_dir })
		if (*v && (*v)->empty())
			throw beluga::Error(EINVAL, "open the beluga pool: an empty string as an "
					    "option (pass None for the default)");
	beluga::PoolOptions o;
	o.backend = beluga::parse_backend(backend);
	o.log_level = log_level;
	o.pool_name = pool_name.value_or("");
	o.user_dir = user_dir.value_or("");
	o.hugetlbfs_dir = hugetlbfs_dir;
	o.device_path = device_path.value_or("");
	o.sysfs_dir = sysfs_dir.value_or("");
	return Pool(nogil([&] { return beluga::Pool::open(o); }));
}

} // namespace

int socket_fd(py::handle sock)
{
	if (py::hasattr(sock, "fileno"))
		return sock.attr("fileno")().cast<int>();
	return sock.cast<int>();
}

void register_pool(py::module_ &m)
{
	py::class_<Pool>(m, "Pool", R"doc(
An opened Beluga memory pool (one backend instance).

Pool(backend="auto", pool_name=None, user_dir=None, hugetlbfs_dir=None,
     device_path=None, sysfs_dir=None, log_level=-1)

backend: "kernel" (the beluga driver, /dev/beluga), "user" (shared-memory
files, no driver needed) or "auto" ($BELUGA_BACKEND, else the driver when
/dev/beluga exists).  hugetlbfs_dir="none" keeps the user backend on tmpfs.
Errors raise BelugaError (an OSError with .errno).
)doc")
		.def(py::init(&open_pool), py::arg("backend") = "auto", py::arg("pool_name") = py::none(),
		     py::arg("user_dir") = py::none(), py::arg("hugetlbfs_dir") = py::none(),
		     py::arg("device_path") = py::none(), py::arg("sysfs_dir") = py::none(),
		     py::arg("log_level") = -1)
		.def_property_readonly("backend", [](const Pool &p) {
			return beluga::backend_name(p.get().backend());
		})
		.def_property_readonly("closed", &Pool::closed)
		.def("info", [](const Pool &p) { return pool_info_dict(p.get().info()); })
		.def("sources", [](const Pool &p) {
			py::list out;
			for (const auto &s : p.get().sources())
				out.append(source_dict(s));
			return out;
		})
		.def("counters", [](const Pool &p) { return counters_dict(p.get().counters()); })
		.def("create_region", [](const Pool &p, const std::string &name, uint64_t size,
					 uint32_t mode, bool ephemeral, int32_t source) {
			const beluga::Pool &pool = p.get();
			beluga::CreateOptions o{ mode, ephemeral, source };
			// zeroes and prefaults the memory
			return Region(nogil([&] { return pool.create_region(name, size, o); }));
		}, py::arg("name"), py::arg("size"), py::arg("mode") = 0600, py::arg("ephemeral") = false,
		     py::arg("source") = BELUGA_ALL_SOURCES,
		     "Create a named region (size: a multiple of REGION_ALIGN) and open it read-write.")
		.def("open_region", [](const Pool &p, const std::string &name, bool readonly) {
			return Region(p.get().open_region(name, readonly));
		}, py::arg("name"), py::arg("readonly") = false)
		.def("open_shared", [](const Pool &p, const std::string &name, bool readonly) {
			return Region(p.get().open_shared(name, readonly));
		}, py::arg("name"), py::arg("readonly") = false,
		   "Open a shared region by name (defined on this host with 'beluga-tool shared "
		   "define' or define_shared()); a private region of that name raises EMEDIUMTYPE.")
		.def("define_shared", [](const Pool &p, const std::string &name, uint32_t source,
					 uint64_t offset, uint64_t size, uint32_t mode) {
			return Region(p.get().define_shared(name, source, offset, size, mode));
		}, py::arg("name"), py::arg("source"), py::arg("offset"), py::arg("size"),
		     py::arg("mode") = 0600,
		     "Define a shared region: the fixed extent [offset, offset + size) of range "
		     "source `source`, the same bytes on every host, never zeroed (kernel backend, "
		     "CAP_SYS_ADMIN; the user backend raises EOPNOTSUPP).")
		.def("destroy_region", [](const Pool &p, const std::string &name) {
			p.get().destroy_region(name);
		}, py::arg("name"))
		.def("stat_region", [](const Pool &p, const std::string &name) {
			return region_info_dict(p.get().stat_region(name));
		}, py::arg("name"))
		.def("list_regions", [](const Pool &p) {
			py::list out;
			for (const auto &i : p.get().list_regions())
				out.append(region_info_dict(i));
			return out;
		})
		.def("chmod_region", [](const Pool &p, const std::string &name, uint32_t mode) {
			p.get().chmod_region(name, mode);
		}, py::arg("name"), py::arg("mode"))
		.def("chown_region", [](const Pool &p, const std::string &name, std::optional<uint32_t> uid,
					std::optional<uint32_t> gid) {
			p.get().chown_region(name, uid, gid);
		}, py::arg("name"), py::arg("uid") = py::none(), py::arg("gid") = py::none())
		.def("receive", [](const Pool &p, py::handle sock) {
			int fd = socket_fd(sock);
			const beluga::Pool &pool = p.get();
			return Region(nogil([&] { return pool.receive(fd); }));
		}, py::arg("sock"), "Receive a region sent with Region.send() over a unix socket.")
		.def("from_fd", [](const Pool &p, int fd) { return Region(p.get().from_fd(fd)); },
		     py::arg("fd"))
		.def("gpu_count", [](const Pool &p) { return p.get().gpu_count(); })
		.def("close", &Pool::close)
		.def("__enter__", [](py::object self) { return self; })
		.def("__exit__", [](Pool &p, py::args) { p.close(); });

	m.def("version", [] { return beluga::version(); }, "libbeluga's version string.");
	m.def("abi_version", [] { return beluga::abi_version(); }, "The driver ABI the library speaks.");
}

} // namespace bpy
