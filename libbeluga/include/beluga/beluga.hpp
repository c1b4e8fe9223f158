// SPDX-License-Identifier: Apache-2.0
// Description: libbeluga C++ API - RAII, move-only handles over the C API.
//
// Error style: every failure throws beluga::Error, which carries the positive
// error code (an errno value or BELUGA_E*) in code() and a message saying
// what failed and what to do in what().  Nothing returns error codes, except
// the try_* helpers, which return std::nullopt for "no such region" only.
// Arguments the library is never asked about (an unknown backend name) throw
// std::invalid_argument.
//
// Lifetimes follow the C API's reference counting: a Region keeps its pool
// alive, a Mapping its region, a GpuRegistration its mapping, so objects may
// be destroyed in any order; the GPU is unregistered before the memory is
// unmapped.  Destructors never throw.
#ifndef BELUGA_BELUGA_HPP
#define BELUGA_BELUGA_HPP

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <beluga/beluga.h>

namespace beluga {

// The one exception type of the library.
class Error : public std::runtime_error {
public:
	Error(int code, const std::string &context)
		: std::runtime_error(context + ": " + beluga_strerror(code)),
		  code_(code < 0 ? -code : code)
	{
	}
	// Positive errno value or BELUGA_E* code.
	int code() const noexcept { return code_; }

private:
	int code_;
};

namespace detail {
inline int check(int ret, const std::string &what)
{
	if (ret < 0)
		throw Error(-ret, what);
	return ret;
}
struct PoolFree { void operator()(beluga_pool *p) const noexcept { beluga_pool_close(p); } };
struct RegionFree { void operator()(beluga_region *r) const noexcept { beluga_region_close(r); } };
struct MappingFree { void operator()(beluga_mapping *m) const noexcept { beluga_mapping_unmap(m); } };
struct GpuFree { void operator()(beluga_gpu_reg *g) const noexcept { beluga_gpu_unregister(g); } };
// A region name in messages: 'name'.
inline std::string quoted(const std::string &name) { return "'" + name + "'"; }
} // namespace detail

enum class Backend { Auto = BELUGA_BACKEND_AUTO, Kernel = BELUGA_BACKEND_KERNEL, User = BELUGA_BACKEND_USER };

// "auto", "kernel", "user" (the names of $BELUGA_BACKEND and the tools' --backend).
inline const char *backend_name(Backend b) noexcept
{
	switch (b) {
	case Backend::Kernel: return "kernel";
	case Backend::User: return "user";
	default: return "auto";
	}
}
inline Backend parse_backend(std::string_view s)
{
	for (Backend b : { Backend::Auto, Backend::Kernel, Backend::User })
		if (s == backend_name(b))
			return b;
	throw std::invalid_argument("backend must be 'auto', 'kernel' or 'user', not '" +
				    std::string(s) + "'");
}

using PoolInfo = beluga_pool_info;
using SourceInfo = beluga_pool_source_info;
using RegionInfo = beluga_region_info;
using Counters = beluga_pool_counters;

// Protection of a mapping.
enum class Prot : std::uint32_t {
	Read = BELUGA_PROT_READ,
	Write = BELUGA_PROT_WRITE,
	ReadWrite = BELUGA_PROT_READ | BELUGA_PROT_WRITE,
};

// How to open a pool; empty strings mean "the default".
struct PoolOptions {
	Backend backend = Backend::Auto;
	std::string device_path;
	std::string sysfs_dir;
	std::string pool_name;
	std::string user_dir;
	std::optional<std::string> hugetlbfs_dir;	// nullopt: detect; "none": never
	const beluga_ops *ops = nullptr;
	int log_level = -1;				// -1: $BELUGA_LOG
	std::uint64_t gpu_chunk_max = 0;		// 0: 64 GiB
};

// How to create a region.
struct CreateOptions {
	std::uint32_t mode = 0600;
	bool ephemeral = false;
	std::int32_t source = BELUGA_ALL_SOURCES;
};

// A GPU registration (cudaHostRegister in chunks) of a mapping.
class GpuRegistration {
public:
	void *device_pointer() const noexcept { return beluga_gpu_reg_device_pointer(h_.get()); }
	std::size_t chunks() const noexcept { return beluga_gpu_reg_chunks(h_.get()); }
	// One CUDA copy must not cross a multiple of this (see beluga.h).
	std::uint64_t chunk_bytes() const noexcept { return beluga_gpu_reg_chunk_bytes(h_.get()); }
	int socket() const noexcept { return beluga_gpu_reg_socket(h_.get()); }
	beluga_gpu_reg *get() const noexcept { return h_.get(); }

private:
	friend class Mapping;
	explicit GpuRegistration(beluga_gpu_reg *h) : h_(h) {}
	std::unique_ptr<beluga_gpu_reg, detail::GpuFree> h_;
};

// A shared mapping of (part of) a region.
class Mapping {
public:
	void *data() const noexcept { return beluga_mapping_addr(h_.get()); }
	std::size_t size() const noexcept { return beluga_mapping_size(h_.get()); }
	std::uint64_t offset() const noexcept { return beluga_mapping_offset(h_.get()); }
	std::span<std::byte> bytes() const noexcept
	{
		return { static_cast<std::byte *>(data()), size() };
	}
	// The protection it was mapped with.
	Prot prot() const noexcept { return prot_; }
	bool writable() const noexcept
	{
		return static_cast<std::uint32_t>(prot_) & BELUGA_PROT_WRITE;
	}
	// Write the bytes to a file / read a file into the start (io_uring, O_DIRECT).
	void save(const std::string &path) const
	{
		detail::check(beluga_mapping_save(h_.get(), path.c_str()),
			      "save the mapping to " + path);
	}
	void load(const std::string &path) const
	{
		detail::check(beluga_mapping_load(h_.get(), path.c_str()),
			      "load the mapping from " + path);
	}
	// Page-lock the mapping for a CUDA device (flags: BELUGA_GPU_*).
	GpuRegistration register_gpu(int device, std::uint32_t flags = 0) const
	{
		beluga_gpu_reg *g = nullptr;

		detail::check(beluga_gpu_register(h_.get(), device, flags, &g),
			      "register with GPU " + std::to_string(device));
		return GpuRegistration(g);
	}
	beluga_mapping *get() const noexcept { return h_.get(); }

private:
	friend class Region;
	Mapping(beluga_mapping *h, Prot prot) : h_(h), prot_(prot) {}
	std::unique_ptr<beluga_mapping, detail::MappingFree> h_;
	Prot prot_;
};

// An open region.
class Region {
public:
	std::string name() const { return beluga_region_name(h_.get()); }
	std::uint64_t size() const noexcept { return beluga_region_size(h_.get()); }
	std::uint64_t id() const noexcept { return beluga_region_id(h_.get()); }
	// Owned by the Region (close-on-exec); dup() it to keep it.
	int fd() const noexcept { return beluga_region_fd(h_.get()); }
	RegionInfo info() const
	{
		RegionInfo i;

		detail::check(beluga_region_fstat(h_.get(), &i), "stat region " + detail::quoted(name()));
		return i;
	}
	// NUMA node of each 2 MiB chunk.
	std::vector<std::int32_t> layout() const
	{
		std::vector<std::int32_t> nodes(size() / BELUGA_REGION_ALIGN);
		std::size_t n = 0;

		detail::check(beluga_region_layout(h_.get(), nodes.data(), nodes.size(), &n),
			      "layout of region " + detail::quoted(name()));
		nodes.resize(n < nodes.size() ? n : nodes.size());
		return nodes;
	}
	// Map [offset, offset + length); length 0: to the end.
	Mapping map(Prot prot = Prot::ReadWrite, std::uint64_t offset = 0,
		    std::size_t length = 0) const
	{
		beluga_mapping *m = nullptr;

		detail::check(beluga_region_map(h_.get(), offset, length,
						static_cast<std::uint32_t>(prot), &m),
			      "map region " + detail::quoted(name()));
		return Mapping(m, prot);
	}
	// Pass to another process over a unix socket (Pool::receive there).
	void send(int sock) const
	{
		detail::check(beluga_region_send(h_.get(), sock), "send region " + detail::quoted(name()));
	}
	beluga_region *get() const noexcept { return h_.get(); }

private:
	friend class Pool;
	explicit Region(beluga_region *h) : h_(h) {}
	std::unique_ptr<beluga_region, detail::RegionFree> h_;
};

// An opened pool: one backend instance.
class Pool {
public:
	static Pool open(const PoolOptions &o = {})
	{
		beluga_pool_options c;
		beluga_pool *p = nullptr;

		beluga_pool_options_init(&c);
		c.backend = static_cast<int>(o.backend);
		c.log_level = o.log_level;
		c.device_path = o.device_path.empty() ? nullptr : o.device_path.c_str();
		c.sysfs_dir = o.sysfs_dir.empty() ? nullptr : o.sysfs_dir.c_str();
		c.pool_name = o.pool_name.empty() ? nullptr : o.pool_name.c_str();
		c.user_dir = o.user_dir.empty() ? nullptr : o.user_dir.c_str();
		c.hugetlbfs_dir = o.hugetlbfs_dir ? o.hugetlbfs_dir->c_str() : nullptr;
		c.ops = o.ops;
		c.gpu_chunk_max = o.gpu_chunk_max;
		detail::check(beluga_pool_open(&c, &p), "open the beluga pool");
		return Pool(p);
	}

	Backend backend() const noexcept
	{
		return static_cast<Backend>(beluga_pool_backend(h_.get()));
	}
	PoolInfo info() const
	{
		PoolInfo i;

		detail::check(beluga_pool_get_info(h_.get(), &i), "pool info");
		return i;
	}
	// Every source, ascending index; an index removed at run time (driver
	// ABI 1.3) is left out, so use SourceInfo::index, not the position.
	std::vector<SourceInfo> sources() const
	{
		std::vector<SourceInfo> v;
		std::uint32_t n = info().nr_sources;

		for (std::uint32_t i = 0; i < n; i++) {
			SourceInfo s;
			int ret = beluga_pool_get_source(h_.get(), i, &s);

			if (ret == -ENOENT)
				continue;
			detail::check(ret, "pool source " + std::to_string(i));
			v.push_back(s);
		}
		return v;
	}
	// Pool [start, start + size) as range source @name (driver ABI 1.3);
	// returns its index.  See beluga_source_add().
	std::uint32_t add_source(std::uint64_t start, std::uint64_t size, const std::string &name,
				 const std::string &identity = {}) const
	{
		std::uint32_t index = 0;

		detail::check(beluga_source_add(h_.get(), start, size, name.c_str(),
						identity.c_str(), &index),
			      "add source " + name);
		return index;
	}
	// Remove a range source by name (or by index with an empty name).
	void remove_source(const std::string &name, std::uint32_t index = 0) const
	{
		detail::check(beluga_source_remove(h_.get(), name.c_str(), index),
			      "remove source " + (name.empty() ? std::to_string(index) : name));
	}
	Counters counters() const
	{
		Counters c;

		detail::check(beluga_pool_get_counters(h_.get(), &c), "pool counters");
		return c;
	}

	Region create_region(const std::string &name, std::uint64_t size,
			     const CreateOptions &o = {}) const
	{
		beluga_region *r = nullptr;

		detail::check(beluga_region_create(h_.get(), name.empty() ? nullptr : name.c_str(),
						   size, o.mode,
						   o.ephemeral ? BELUGA_REGION_EPHEMERAL : 0,
						   o.source, &r),
			      "create region " + detail::quoted(name));
		return Region(r);
	}
	// A shared region: the fixed extent [offset, offset + size) of range
	// source `source`, never zeroed (beluga_shared_define() in beluga.h).
	Region define_shared(const std::string &name, std::uint32_t source,
			     std::uint64_t offset, std::uint64_t size,
			     std::uint32_t mode = 0600) const
	{
		beluga_region *r = nullptr;

		detail::check(beluga_shared_define(h_.get(), name.c_str(), source, offset,
						   size, mode, &r),
			      "define shared region " + detail::quoted(name));
		return Region(r);
	}
	Region open_region(const std::string &name, bool read_only = false) const
	{
		beluga_region *r = nullptr;

		detail::check(beluga_region_open(h_.get(), name.c_str(),
						 read_only ? BELUGA_REGION_RDONLY : 0, &r),
			      "open region " + detail::quoted(name));
		return Region(r);
	}
	// Open a shared region by name (one that beluga-tool shared define, or
	// define_shared(), made on this host): like open_region(), but a private
	// region of that name is refused with EMEDIUMTYPE, since on a shared
	// range source every host places private regions on its own and the
	// hosts would not see the same bytes.
	Region open_shared(const std::string &name, bool read_only = false) const
	{
		Region r = open_region(name, read_only);

		if (!(r.info().flags & BELUGA_INFO_SHARED))
			throw Error(EMEDIUMTYPE, "open shared region " + detail::quoted(name) +
					      ": this host has a private region of that name, not a "
					      "shared one (define the shared region on every host "
					      "with 'beluga-tool shared define', admin-guide.md "
					      "section 9)");
		return r;
	}
	void destroy_region(const std::string &name) const
	{
		detail::check(beluga_region_destroy(h_.get(), name.c_str()),
			      "destroy region " + detail::quoted(name));
	}
	RegionInfo stat_region(const std::string &name) const
	{
		RegionInfo i;

		detail::check(beluga_region_stat(h_.get(), name.c_str(), &i),
			      "stat region " + detail::quoted(name));
		return i;
	}
	// nullopt when no region has that name; other errors still throw.
	std::optional<RegionInfo> try_stat_region(const std::string &name) const
	{
		RegionInfo i;
		int ret = beluga_region_stat(h_.get(), name.c_str(), &i);

		if (ret == -ENOENT)
			return std::nullopt;
		detail::check(ret, "stat region " + detail::quoted(name));
		return i;
	}
	std::vector<RegionInfo> list_regions() const
	{
		std::vector<RegionInfo> v;
		std::size_t count = 0;

		do {	// regions may appear between the two calls: retry
			v.resize(count + 8);
			detail::check(beluga_region_list(h_.get(), v.data(), v.size(), &count),
				      "list regions");
		} while (count > v.size());
		v.resize(count);
		return v;
	}
	void chmod_region(const std::string &name, std::uint32_t mode) const
	{
		detail::check(beluga_region_chmod(h_.get(), name.c_str(), mode),
			      "chmod region " + detail::quoted(name));
	}
	// std::nullopt keeps the field.
	void chown_region(const std::string &name, std::optional<std::uint32_t> uid,
			  std::optional<std::uint32_t> gid) const
	{
		detail::check(beluga_region_chown(h_.get(), name.c_str(), uid.value_or(UINT32_MAX),
						  gid.value_or(UINT32_MAX)),
			      "chown region " + detail::quoted(name));
	}
	Region receive(int sock) const
	{
		beluga_region *r = nullptr;

		detail::check(beluga_region_recv(h_.get(), sock, &r), "receive a region");
		return Region(r);
	}
	// Wrap a region fd obtained another way (it is duplicated).
	Region from_fd(int fd) const
	{
		beluga_region *r = nullptr;

		detail::check(beluga_region_from_fd(h_.get(), fd, &r), "region from fd");
		return Region(r);
	}
	int gpu_count() const
	{
		int n = 0;

		detail::check(beluga_gpu_count(h_.get(), &n), "count GPUs");
		return n;
	}
	beluga_pool *get() const noexcept { return h_.get(); }

private:
	explicit Pool(beluga_pool *h) : h_(h) {}
	std::unique_ptr<beluga_pool, detail::PoolFree> h_;
};

// Coherence and copy primitives (see beluga.h).
inline void copy_nt(void *dst, const void *src, std::size_t len) noexcept
{
	beluga_copy_nt(dst, src, len);
}
inline void copy_bulk(void *dst, const void *src, std::size_t len, unsigned threads = 0)
{
	detail::check(beluga_copy_bulk(dst, src, len, threads), "bulk copy");
}
inline void flush(const void *addr, std::size_t len) noexcept { beluga_flush(addr, len); }
inline void writeback(const void *addr, std::size_t len) noexcept { beluga_writeback(addr, len); }
inline void fence_store() noexcept { beluga_fence_store(); }
inline void fence_load() noexcept { beluga_fence_load(); }
inline void fence_full() noexcept { beluga_fence_full(); }
inline std::string flush_method() { return beluga_cpu_flush_method(); }
inline std::string version() { return beluga_version(); }
inline std::uint32_t abi_version() noexcept { return beluga_abi_version(); }

} // namespace beluga

#endif // BELUGA_BELUGA_HPP
