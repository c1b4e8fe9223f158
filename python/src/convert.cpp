// SPDX-License-Identifier: Apache-2.0
// Conversions between Python objects and the C++ API's types: the structs
// the info calls return, as dicts with their field names; dtypes; keys.
#include "objects.hpp"

#include <cstring>

namespace bpy {

uint32_t dtype_of(py::handle d)
{
	if (py::isinstance<py::int_>(d))
		return d.cast<uint32_t>();
	std::string s = py::str(d);
	if (s.rfind("torch.", 0) == 0)	// accept torch.bfloat16 etc.
		s = s.substr(6);
	return beluga::kvc::parse_dtype(s);
}

std::vector<beluga::kvc::Key> keys_of(py::handle keys)
{
	using beluga::kvc::Key;
	// One converter for both spellings: buffer_parts() yields each key's
	// bytes from a sequence of 32-byte buffers or from one packed buffer.
	auto bufs = buffer_parts(keys, BELUGA_KVC_KEY_BYTES, "keys",
				 "a key is 32 bytes (a vLLM sha256/sha256_cbor block hash)");
	std::vector<Key> out(bufs.parts.size());
	for (size_t i = 0; i < out.size(); i++)
		std::memcpy(out[i].data(), bufs.parts[i].first, BELUGA_KVC_KEY_BYTES);
	return out;
}

py::dict pool_info_dict(const beluga::PoolInfo &i)
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

py::dict source_dict(const beluga::SourceInfo &s)
{
	py::dict d;
	d["index"] = s.index;
	d["kind"] = s.kind == BELUGA_SOURCE_KIND_RANGE ? "range" : "node";
	d["node"] = s.node;
	d["has_cpus"] = bool(s.flags & BELUGA_SOURCE_HAS_CPUS);
	d["total_bytes"] = s.total_bytes;
	d["free_bytes"] = s.free_bytes;
	return d;
}

py::dict counters_dict(const beluga::Counters &c)
{
	py::dict d;
	d["pmd_faults"] = c.pmd_faults;
	d["pte_faults"] = c.pte_faults;
	d["pinned_chunks"] = c.pinned_chunks;
	d["alloc_failures"] = c.alloc_failures;
	d["regions_created"] = c.regions_created;
	d["regions_freed"] = c.regions_freed;
	return d;
}

py::dict region_info_dict(const beluga::RegionInfo &i)
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

py::dict fingerprint_dict(const beluga_kvc_fingerprint &f)
{
	py::dict d;
	d["model_id"] = std::string(f.model_id);
	d["hash_fn"] = std::string(f.hash_fn);
	d["hash_seed"] = std::string(f.hash_seed);
	d["num_layers"] = f.shape.num_layers;
	d["block_size"] = f.shape.block_size;
	d["num_kv_heads"] = f.shape.num_kv_heads;
	d["head_size"] = f.shape.head_size;
	d["dtype"] = beluga::kvc::dtype_name(f.shape.dtype);
	d["tp_rank"] = f.tp_rank;
	d["tp_size"] = f.tp_size;
	d["layout"] = beluga::kvc::layout_name(f.layout);
	d["payload_bytes"] = f.payload_bytes;
	return d;
}

} // namespace bpy
