// SPDX-License-Identifier: Apache-2.0
// Pools, regions and mappings.  Each Python object owns one reference of
// the C handle (libbeluga counts them: a region keeps its pool alive, a
// mapping its region), released by close() or when the object is collected.
// A Mapping exports its memory with the buffer protocol and DLPack, and
// refuses close() while views exist, so numpy arrays never outlive the map.
#include "common.hpp"
#include "handles.hpp"

#include <beluga/beluga.h>

#include <cerrno>
#include <optional>

namespace bpy {

namespace {

py::dict pool_info_dict(const beluga_pool_info &i)
{
	py::dict d;
	d["backend"] = i.backend == BELUGA_BACKEND_KERNEL ? "kernel" : "user";
	d["abi_version"] = i.abi_version;
	d["min_abi_version"] = i.min_abi_version;
	d["nr_sources"] = i.nr_sources;
	d["features"] = i.features;
	d["chunk_size"] = i.chunk_size;
	d["total_bytes"] = i.total_bytes;
	d["free_bytes"] = i.free_bytes;
	d["quarantined_bytes"] = i.quarantined_bytes;
	d["nr_regions"] = i.nr_regions;
	return d;
}

py::dict region_info_dict(const beluga_region_info &i)
{
	py::dict d;
	d["name"] = std::string(i.name);
	d["id"] = i.id;
	d["size"] = i.size;
	d["flags"] = i.flags;
	d["ephemeral"] = bool(i.flags & BELUGA_INFO_EPHEMERAL);
	d["destroyed"] = bool(i.flags & BELUGA_INFO_DESTROYED);
	d["hugetlb"] = bool(i.flags & BELUGA_INFO_HUGETLB);
	d["shared"] = bool(i.flags & BELUGA_INFO_SHARED);
	if (i.flags & BELUGA_INFO_SHARED) {
		d["shared_source"] = i.shared_source;
		d["shared_offset"] = i.shared_offset;
	}
	d["mode"] = i.mode;
	d["uid"] = i.uid;
	d["gid"] = i.gid;
	d["source_kind"] = i.source_kind;
	d["nr_chunks"] = i.nr_chunks;
	if (!(i.flags & BELUGA_INFO_NO_USAGE)) {
		d["open_count"] = i.open_count;
		d["map_count"] = i.map_count;
		d["pinned_chunks"] = i.pinned_chunks;
	}
	return d;
}

int backend_of(const std::string &s)
{
	if (s == "auto")
		return BELUGA_BACKEND_AUTO;
	if (s == "kernel")
		return BELUGA_BACKEND_KERNEL;
	if (s == "user")
		return BELUGA_BACKEND_USER;
	throw py::value_error("backend must be 'auto', 'kernel' or 'user', not '" + s + "'");
}

// A socket argument: an int fd or anything with fileno().
int fd_of(py::handle sock)
{
	if (py::hasattr(sock, "fileno"))
		return sock.attr("fileno")().cast<int>();
	return sock.cast<int>();
}

} // namespace

Pool Pool::open(const std::string &backend, std::optional<std::string> pool_name,
		std::optional<std::string> user_dir, std::optional<std::string> hugetlbfs_dir,
		std::optional<std::string> device_path, std::optional<std::string> sysfs_dir,
		int log_level)
{
	beluga_pool_options o;
	beluga_pool_options_init(&o);
	o.backend = backend_of(backend);
	o.log_level = log_level;
	o.pool_name = pool_name ? pool_name->c_str() : nullptr;
	o.user_dir = user_dir ? user_dir->c_str() : nullptr;
	o.hugetlbfs_dir = hugetlbfs_dir ? hugetlbfs_dir->c_str() : nullptr;
	o.device_path = device_path ? device_path->c_str() : nullptr;
	o.sysfs_dir = sysfs_dir ? sysfs_dir->c_str() : nullptr;
	beluga_pool *p = nullptr;
	int r;
	{
		py::gil_scoped_release nogil;
		r = beluga_pool_open(&o, &p);
	}
	check(r, "open the beluga pool");
	return Pool(p);
}

beluga_pool *Pool::get() const
{
	if (!h_)
		throw py::value_error("the pool is closed");
	return h_.get();
}

Region Pool::create_region(const std::string &name, uint64_t size, uint32_t mode,
			   bool ephemeral, int32_t source) const
{
	beluga_region *r = nullptr;
	int ret;
	{
		py::gil_scoped_release nogil;	// zeroes and prefaults the memory
		ret = beluga_region_create(get(), name.empty() ? nullptr : name.c_str(), size, mode,
					   ephemeral ? BELUGA_REGION_EPHEMERAL : 0, source, &r);
	}
	check(ret, "create region '" + name + "'");
	return Region(r);
}

Region Pool::open_region(const std::string &name, bool readonly) const
{
	beluga_region *r = nullptr;
	check(beluga_region_open(get(), name.c_str(), readonly ? BELUGA_REGION_RDONLY : 0, &r),
	      "open region '" + name + "'");
	return Region(r);
}

beluga_region *Region::get() const
{
	if (!h_)
		throw py::value_error("the region is closed");
	return h_.get();
}

Mapping Region::map(uint64_t offset, size_t length, bool writable) const
{
	beluga_mapping *m = nullptr;
	uint32_t prot = BELUGA_PROT_READ | (writable ? BELUGA_PROT_WRITE : 0);
	int ret;
	{
		py::gil_scoped_release nogil;
		ret = beluga_region_map(get(), offset, length, prot, &m);
	}
	check(ret, "map region '" + std::string(beluga_region_name(get())) + "'");
	return Mapping(m, writable);
}

beluga_mapping *Mapping::get() const
{
	if (!h_)
		throw py::value_error(closed_message());
	return h_.get();
}

void Mapping::close()
{
	ensure_no_exports("close the mapping");
	h_.reset();
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
		.def(py::init(&Pool::open), py::arg("backend") = "auto", py::arg("pool_name") = py::none(),
		     py::arg("user_dir") = py::none(), py::arg("hugetlbfs_dir") = py::none(),
		     py::arg("device_path") = py::none(), py::arg("sysfs_dir") = py::none(),
		     py::arg("log_level") = -1)
		.def_property_readonly("backend", [](const Pool &p) {
			return beluga_pool_backend(p.get()) == BELUGA_BACKEND_KERNEL ? "kernel" : "user";
		})
		.def_property_readonly("closed", [](const Pool &p) { return !p.open_(); })
		.def("info", [](const Pool &p) {
			beluga_pool_info i;
			check(beluga_pool_get_info(p.get(), &i), "pool info");
			return pool_info_dict(i);
		})
		.def("sources", [](const Pool &p) {
			beluga_pool_info i;
			check(beluga_pool_get_info(p.get(), &i), "pool info");
			py::list out;
			for (uint32_t k = 0; k < i.nr_sources; k++) {
				beluga_pool_source_info s;
				int ret = beluga_pool_get_source(p.get(), k, &s);
				if (ret == -ENOENT)
					continue;	// removed at run time (driver ABI 1.3)
				check(ret, "pool source " + std::to_string(k));
				py::dict d;
				d["index"] = s.index;
				d["kind"] = s.kind == BELUGA_SOURCE_KIND_RANGE ? "range" : "node";
				d["node"] = s.node;
				d["has_cpus"] = bool(s.flags & BELUGA_SOURCE_HAS_CPUS);
				d["total_bytes"] = s.total_bytes;
				d["free_bytes"] = s.free_bytes;
				out.append(d);
			}
			return out;
		})
		.def("counters", [](const Pool &p) {
			beluga_pool_counters c;
			check(beluga_pool_get_counters(p.get(), &c), "pool counters");
			py::dict d;
			d["pmd_faults"] = c.pmd_faults;
			d["pte_faults"] = c.pte_faults;
			d["pinned_chunks"] = c.pinned_chunks;
			d["alloc_failures"] = c.alloc_failures;
			d["regions_created"] = c.regions_created;
			d["regions_freed"] = c.regions_freed;
			return d;
		})
		.def("create_region", &Pool::create_region, py::arg("name"), py::arg("size"),
		     py::arg("mode") = 0600, py::arg("ephemeral") = false,
		     py::arg("source") = BELUGA_ALL_SOURCES,
		     "Create a named region (size: a multiple of REGION_ALIGN) and open it read-write.")
		.def("open_region", &Pool::open_region, py::arg("name"), py::arg("readonly") = false)
		.def("define_shared", [](const Pool &p, const std::string &name, uint32_t source,
					 uint64_t offset, uint64_t size, uint32_t mode) {
			beluga_region *r = nullptr;
			check(beluga_shared_define(p.get(), name.c_str(), source, offset, size, mode,
						   &r),
			      "define shared region '" + name + "'");
			return Region(r);
		}, py::arg("name"), py::arg("source"), py::arg("offset"), py::arg("size"),
		     py::arg("mode") = 0600,
		     "Define a shared region: the fixed extent [offset, offset + size) of range "
		     "source `source`, the same bytes on every host, never zeroed (kernel backend, "
		     "CAP_SYS_ADMIN; the user backend raises EOPNOTSUPP).")
		.def("destroy_region", [](const Pool &p, const std::string &name) {
			check(beluga_region_destroy(p.get(), name.c_str()), "destroy region '" + name + "'");
		}, py::arg("name"))
		.def("stat_region", [](const Pool &p, const std::string &name) {
			beluga_region_info i;
			check(beluga_region_stat(p.get(), name.c_str(), &i), "stat region '" + name + "'");
			return region_info_dict(i);
		}, py::arg("name"))
		.def("list_regions", [](const Pool &p) {
			std::vector<beluga_region_info> v;
			size_t count = 0;
			do {	// regions may appear between the two calls
				v.resize(count + 8);
				check(beluga_region_list(p.get(), v.data(), v.size(), &count), "list regions");
			} while (count > v.size());
			py::list out;
			for (size_t i = 0; i < count; i++)
				out.append(region_info_dict(v[i]));
			return out;
		})
		.def("chmod_region", [](const Pool &p, const std::string &name, uint32_t mode) {
			check(beluga_region_chmod(p.get(), name.c_str(), mode), "chmod region '" + name + "'");
		}, py::arg("name"), py::arg("mode"))
		.def("chown_region", [](const Pool &p, const std::string &name, std::optional<uint32_t> uid,
					std::optional<uint32_t> gid) {
			check(beluga_region_chown(p.get(), name.c_str(), uid.value_or(UINT32_MAX),
						  gid.value_or(UINT32_MAX)),
			      "chown region '" + name + "'");
		}, py::arg("name"), py::arg("uid") = py::none(), py::arg("gid") = py::none())
		.def("receive", [](const Pool &p, py::handle sock) {
			beluga_region *r = nullptr;
			int fd = fd_of(sock);
			int ret;
			{
				py::gil_scoped_release nogil;
				ret = beluga_region_recv(p.get(), fd, &r);
			}
			check(ret, "receive a region");
			return Region(r);
		}, py::arg("sock"), "Receive a region sent with Region.send() over a unix socket.")
		.def("from_fd", [](const Pool &p, int fd) {
			beluga_region *r = nullptr;
			check(beluga_region_from_fd(p.get(), fd, &r), "region from fd");
			return Region(r);
		}, py::arg("fd"))
		.def("gpu_count", [](const Pool &p) {
			int n = 0;
			check(beluga_gpu_count(p.get(), &n), "count GPUs");
			return n;
		})
		.def("close", [](Pool &p) { p.reset(); })
		.def("__enter__", [](py::object self) { return self; })
		.def("__exit__", [](Pool &p, py::args) { p.reset(); });

	py::class_<Region>(m, "Region", "An open region of a pool (Pool.create_region / open_region).")
		.def_property_readonly("name", [](const Region &r) { return std::string(beluga_region_name(r.get())); })
		.def_property_readonly("size", [](const Region &r) { return beluga_region_size(r.get()); })
		.def_property_readonly("id", [](const Region &r) { return beluga_region_id(r.get()); })
		.def_property_readonly("fd", [](const Region &r) { return beluga_region_fd(r.get()); },
				       "The region fd, owned by the Region (os.dup() it to keep it).")
		.def_property_readonly("closed", [](const Region &r) { return !r.open_(); })
		.def("info", [](const Region &r) {
			beluga_region_info i;
			check(beluga_region_fstat(r.get(), &i), "stat region");
			return region_info_dict(i);
		})
		.def("layout", [](const Region &r) {
			std::vector<int32_t> nodes(beluga_region_size(r.get()) / BELUGA_REGION_ALIGN);
			size_t n = 0;
			check(beluga_region_layout(r.get(), nodes.data(), nodes.size(), &n), "region layout");
			nodes.resize(std::min(n, nodes.size()));
			return nodes;
		}, "The NUMA node of each 2 MiB chunk.")
		.def("map", &Region::map, py::arg("offset") = 0, py::arg("length") = 0,
		     py::arg("writable") = true,
		     "Map [offset, offset+length) shared (length 0: to the end).  Returns a Mapping, "
		     "a buffer: memoryview(m), numpy.frombuffer(m, ...), torch.frombuffer(m, ...).")
		.def("send", [](const Region &r, py::handle sock) {
			int fd = fd_of(sock);
			check(beluga_region_send(r.get(), fd), "send region");
		}, py::arg("sock"))
		.def("close", [](Region &r) { r.reset(); })
		.def("__enter__", [](py::object self) { return self; })
		.def("__exit__", [](Region &r, py::args) { r.reset(); });

	py::class_<Mapping>(m, "Mapping", py::custom_type_setup(install_buffer_protocol<Mapping>),
			    R"doc(
A shared mapping of (part of) a region, exported zero-copy through the buffer
protocol (memoryview, numpy.frombuffer, torch.frombuffer) and DLPack
(torch.utils.dlpack.from_dlpack).  close() raises BufferError while any such
view exists; the memory is unmapped once the last reference is gone.
)doc")
		.def_property_readonly("address", [](const Mapping &mp) {
			return reinterpret_cast<uintptr_t>(beluga_mapping_addr(mp.get()));
		})
		.def_property_readonly("size", [](const Mapping &mp) { return beluga_mapping_size(mp.get()); })
		.def_property_readonly("offset", [](const Mapping &mp) { return beluga_mapping_offset(mp.get()); })
		.def_property_readonly("writable", [](const Mapping &mp) { return mp.writable(); })
		.def_property_readonly("closed", [](const Mapping &mp) { return !mp.open_(); })
		.def("__len__", [](const Mapping &mp) { return beluga_mapping_size(mp.get()); })
		.def("save", [](const Mapping &mp, const std::string &path) {
			int r;
			{
				py::gil_scoped_release nogil;
				r = beluga_mapping_save(mp.get(), path.c_str());
			}
			check(r, "save the mapping to " + path);
		}, py::arg("path"))
		.def("load", [](const Mapping &mp, const std::string &path) {
			int r;
			{
				py::gil_scoped_release nogil;
				r = beluga_mapping_load(mp.get(), path.c_str());
			}
			check(r, "load the mapping from " + path);
		}, py::arg("path"))
		.def("__dlpack__", [](py::object self, py::object /*stream*/) {
			return make_dlpack(self, self.cast<Mapping &>());
		}, py::arg("stream") = py::none())
		.def("__dlpack_device__", [](const Mapping &) { return py::make_tuple(1, 0); })
		.def("close", &Mapping::close)
		.def("__enter__", [](py::object self) { return self; })
		.def("__exit__", [](Mapping &mp, py::args) { mp.close(); });

	m.def("version", [] { return std::string(beluga_version()); }, "libbeluga's version string.");
	m.def("abi_version", [] { return beluga_abi_version(); }, "The driver ABI the library speaks.");
}

} // namespace bpy
