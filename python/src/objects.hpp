// SPDX-License-Identifier: Apache-2.0
// The Python-visible objects: each holds one object of the C++ API
// (beluga::Pool, Region, Mapping; beluga::kvc::Cache, Pin) and adds what
// Python needs on top: close() before collection (then ValueError on use),
// buffer-export counting, and keeping Python owners alive.
#pragma once

#include "common.hpp"

#include <beluga/beluga.hpp>
#include <beluga/kvcache.hpp>

#include <optional>
#include <string>
#include <utility>

namespace bpy {

// An open handle of the C++ API, or nothing once closed.
template <class T> class Closable {
public:
	explicit Closable(T t, const char *closed_message)
		: t_(std::move(t)), closed_message_(closed_message)
	{
	}
	const T &get() const
	{
		if (!t_)
			throw py::value_error(closed_message_);
		return *t_;
	}
	T &get()
	{
		if (!t_)
			throw py::value_error(closed_message_);
		return *t_;
	}
	bool closed() const { return !t_; }
	void close() { t_.reset(); }

protected:
	std::optional<T> t_;
	const char *closed_message_;
};

struct Pool : Closable<beluga::Pool> {
	explicit Pool(beluga::Pool p) : Closable(std::move(p), "the pool is closed") {}
};

struct Region : Closable<beluga::Region> {
	explicit Region(beluga::Region r) : Closable(std::move(r), "the region is closed") {}
};

struct GpuRegistration;

// Exported with the buffer protocol and DLPack; close() refuses while views
// exist, and unregisters it from the GPU first (Mapping.register_gpu).
struct Mapping : Closable<beluga::Mapping>, Exportable {
	explicit Mapping(beluga::Mapping m) : Closable(std::move(m), "the mapping is closed") {}
	void close();
	// The live registration of this mapping, if any (it holds the mapping).
	GpuRegistration *gpu = nullptr;
	void *buf_data() const override { return t_ ? t_->data() : nullptr; }
	size_t buf_len() const override { return t_ ? t_->size() : 0; }
	bool buf_readonly() const override { return !t_ || !t_->writable(); }
	const char *closed_message() const override { return closed_message_; }
};

// A GPU registration of a Mapping (beluga::GpuRegistration: cudaHostRegister
// in chunks, through the driver with the kernel backend), at most one per
// Mapping; unregistered by close(), by the Mapping's close(), or when
// collected.  Keeps the Mapping object alive.
struct GpuRegistration {
	GpuRegistration(py::object mapping_obj, beluga::GpuRegistration r, int dev)
		: mapping_obj_(std::move(mapping_obj)), mapping_(&mapping_obj_.cast<Mapping &>()),
		  reg(std::move(r)), device(dev)
	{
		mapping_->gpu = this;
	}
	GpuRegistration(const GpuRegistration &) = delete;
	GpuRegistration &operator=(const GpuRegistration &) = delete;
	~GpuRegistration() { close(); }
	void close()
	{
		if (!reg)
			return;
		mapping_->gpu = nullptr;
		// Synchronises the device: other threads may run meanwhile.
		nogil([&] { reg.reset(); });
	}
	const beluga::GpuRegistration &get() const
	{
		if (!reg)
			throw py::value_error("the GPU registration is closed");
		return *reg;
	}
	Mapping &mapping() const { return *mapping_; }

	py::object mapping_obj_;
	Mapping *mapping_;
	std::optional<beluga::GpuRegistration> reg;
	int device;
};

inline void Mapping::close()
{
	ensure_no_exports("close the mapping");
	if (gpu)
		gpu->close();
	Closable::close();
}

// An attached cache, with what keeps its memory alive: the pool (open), or
// the caller's buffer (attach).  detach() refuses while Pins are held.
class KVCache : public Closable<beluga::kvc::Cache> {
public:
	KVCache(beluga::kvc::Cache c, py::object keep, std::optional<Buffer> span)
		: Closable(std::move(c), "the cache is detached"), keep_(std::move(keep)),
		  span_(std::move(span))
	{
	}
	KVCache(KVCache &&) = default;
	void detach()
	{
		if (live_pins > 0) {
			PyErr_Format(PyExc_BufferError, "cannot detach: %d block(s) still pinned "
				     "(unpin them first)", live_pins);
			throw py::error_already_set();
		}
		if (live_reservations > 0) {
			PyErr_Format(PyExc_BufferError, "cannot detach: %d reservation(s) still open "
				     "(commit() or abort() them first)", live_reservations);
			throw py::error_already_set();
		}
		if (t_)
			nogil([&] { t_.reset(); });
		span_.reset();
		keep_ = py::none();
	}
	int live_pins = 0;
	int live_reservations = 0;

private:
	py::object keep_;
	std::optional<Buffer> span_;
};

// A pinned block, readable in place until unpin(); keeps its cache attached.
class Pin : public Exportable {
public:
	Pin(py::object cache_obj, beluga::kvc::Pin pin, std::string key)
		: cache_obj_(std::move(cache_obj)), cache_(&cache_obj_.cast<KVCache &>()),
		  pin_(std::move(pin)), key_(std::move(key))
	{
		cache_->live_pins++;
	}
	~Pin() override
	{
		if (pin_) {
			pin_.release();
			cache_->live_pins--;
		}
	}
	void unpin()
	{
		if (!pin_)
			return;
		ensure_no_exports("unpin the block");
		cache_->live_pins--;
		pin_.unpin();	// gone even when it reports a failure
	}
	bool pinned() const { return bool(pin_); }
	const std::string &key() const { return key_; }
	void *buf_data() const override { return pin_ ? const_cast<void *>(pin_.data()) : nullptr; }
	size_t buf_len() const override { return pin_ ? pin_.size() : 0; }
	bool buf_readonly() const override { return true; }
	const char *closed_message() const override { return "the block is no longer pinned"; }

private:
	py::object cache_obj_;
	KVCache *cache_;
	beluga::kvc::Pin pin_;
	std::string key_;
};

// Slots reserved for a zero-copy store (beluga::kvc::Reservation): the
// caller writes each reserved block in place through view(i), then commit()
// publishes.  Views are released at commit/abort (objects derived from a
// view are not tracked); whatever is still reserved is aborted when the
// object goes away.  Keeps its cache attached.
class Reservation {
public:
	Reservation(py::object cache_obj, beluga::kvc::Reservation res)
		: cache_obj_(std::move(cache_obj)), cache_(&cache_obj_.cast<KVCache &>()),
		  res_(std::move(res))
	{
		cache_->live_reservations++;
	}
	Reservation(const Reservation &) = delete;
	Reservation &operator=(const Reservation &) = delete;
	~Reservation()
	{
		res_.abort();
		cache_->live_reservations--;
	}
	beluga::kvc::Reservation &get() { return res_; }
	size_t size() const { return res_.size(); }
	// Writable memoryview of item @i's slot (ValueError unless reserved).
	py::memoryview view(size_t i);
	// Release every view handed out (using one afterwards raises ValueError).
	void release_views();
	// With @sums: the writer's checksums, one per item in the items' order
	// (kvc::Reservation::commit(sums)); without: computed over the slots.
	std::vector<int> commit(std::optional<std::vector<uint64_t>> sums);
	void abort(std::optional<size_t> i);

private:
	py::object cache_obj_;
	KVCache *cache_;
	beluga::kvc::Reservation res_;
	std::vector<py::object> views_;
};

// A socket argument: an int fd or anything with fileno().
int socket_fd(py::handle sock);

// Keys: a list/tuple of 32-byte bytes-likes, or one buffer of n * 32 bytes.
std::vector<beluga::kvc::Key> keys_of(py::handle keys);

// Dicts of the C structs, for the info/stats calls.
py::dict pool_info_dict(const beluga::PoolInfo &i);
py::dict source_dict(const beluga::SourceInfo &s);
py::dict counters_dict(const beluga::Counters &c);
py::dict region_info_dict(const beluga::RegionInfo &i);
py::dict fingerprint_dict(const beluga_kvc_fingerprint &f);

} // namespace bpy
