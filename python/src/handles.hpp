// SPDX-License-Identifier: Apache-2.0
// The Python-visible handle classes of the pool binding (shared with the
// kvcache part, which attaches caches to pools and mappings).
#pragma once

#include "common.hpp"

#include <beluga/beluga.h>

#include <memory>
#include <optional>

namespace bpy {

struct PoolFree { void operator()(beluga_pool *p) const { beluga_pool_close(p); } };
struct RegionFree { void operator()(beluga_region *r) const { beluga_region_close(r); } };
struct MappingFree { void operator()(beluga_mapping *m) const { beluga_mapping_unmap(m); } };

class Region;
class Mapping;

class Pool {
public:
	static Pool open(const std::string &backend, std::optional<std::string> pool_name,
			 std::optional<std::string> user_dir, std::optional<std::string> hugetlbfs_dir,
			 std::optional<std::string> device_path, std::optional<std::string> sysfs_dir,
			 int log_level);
	beluga_pool *get() const;		// raises ValueError once closed
	bool open_() const { return bool(h_); }
	void reset() { h_.reset(); }
	Region create_region(const std::string &name, uint64_t size, uint32_t mode, bool ephemeral,
			     int32_t source) const;
	Region open_region(const std::string &name, bool readonly) const;

private:
	explicit Pool(beluga_pool *p) : h_(p) {}
	std::unique_ptr<beluga_pool, PoolFree> h_;
};

class Region {
public:
	explicit Region(beluga_region *r) : h_(r) {}
	beluga_region *get() const;
	bool open_() const { return bool(h_); }
	void reset() { h_.reset(); }
	Mapping map(uint64_t offset, size_t length, bool writable) const;

private:
	std::unique_ptr<beluga_region, RegionFree> h_;
};

class Mapping : public Exportable {
public:
	Mapping(beluga_mapping *m, bool writable) : h_(m), writable_(writable) {}
	beluga_mapping *get() const;
	bool open_() const { return bool(h_); }
	bool writable() const { return writable_; }
	void close();
	void *buf_data() const override { return h_ ? beluga_mapping_addr(h_.get()) : nullptr; }
	size_t buf_len() const override { return h_ ? beluga_mapping_size(h_.get()) : 0; }
	bool buf_readonly() const override { return !writable_; }
	const char *closed_message() const override { return "the mapping is closed"; }

private:
	std::unique_ptr<beluga_mapping, MappingFree> h_;
	bool writable_;
};

} // namespace bpy
