// SPDX-License-Identifier: Apache-2.0
// Description: beluga-tool helpers - pool opening from global options, exit
// codes, size parsing and formatting, JSON of the library's structures.
#include "tool.hpp"

#include <pwd.h>

#include <cerrno>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace tool {

const char kExitCodeHelp[] =
	"Exit codes:\n"
	"  0   success\n"
	"  1   usage error or invalid argument\n"
	"  2   no such region\n"
	"  3   permission denied\n"
	"  4   no backend: driver not loaded, or driver/library ABI mismatch\n"
	"  5   region already exists\n"
	"  6   not enough memory in the pool (or over quota)\n"
	"  7   no usable GPU, no such GPU, or built without CUDA\n"
	"  8   busy: in use, or a shared extent overlaps one already defined\n"
	"  10  any other error\n"
	"\n"
	"Environment: BELUGA_BACKEND=kernel|user, BELUGA_POOL, BELUGA_USER_DIR,\n"
	"BELUGA_HUGETLBFS, BELUGA_LOG=1..3 (library log to stderr).";

beluga::Pool open_pool(const Globals &g)
{
	beluga::PoolOptions o;

	if (g.backend == "kernel")
		o.backend = beluga::Backend::Kernel;
	else if (g.backend == "user")
		o.backend = beluga::Backend::User;
	o.pool_name = g.pool;
	o.user_dir = g.user_dir;
	o.device_path = g.device;
	if (!g.hugetlbfs.empty())
		o.hugetlbfs_dir = g.hugetlbfs;
	if (g.verbose)
		o.log_level = BELUGA_LOG_DEBUG;
	return beluga::Pool::open(o);
}

int exit_code(int err)
{
	switch (err) {
	case 0:
		return kOk;
	case EINVAL:
	case ENAMETOOLONG:
		return kUsage;
	case ENOENT:
		return kNotFound;
	case EACCES:
	case EPERM:
		return kPermission;
	case BELUGA_ENODRIVER:
	case BELUGA_EDRIVER_TOO_OLD:
	case BELUGA_ELIBRARY_TOO_OLD:
		return kNoBackend;
	case EEXIST:
		return kExists;
	case ENOSPC:
	case ENOMEM:
	case EDQUOT:
		return kNoSpace;
	case BELUGA_ENOGPU:
	case BELUGA_ENOCUDA:
	case ENODEV:
		return kNoGpu;
	case EBUSY:
	case EADDRINUSE:	// a shared extent overlaps one already defined
		return kBusy;
	default:
		return kOther;
	}
}

void add_output_flags(CLI::App &sub, Output &out)
{
	sub.add_flag("--json", out.json, "Print JSON instead of a table");
	sub.add_flag("--bytes", out.bytes, "Print sizes as exact byte counts");
}

std::uint64_t parse_size(const std::string &text)
{
	static const char units[] = "KMGTP";
	std::size_t used = 0;
	double v;

	try {
		v = std::stod(text, &used);
	} catch (const std::exception &) {
		throw CLI::ValidationError("SIZE", "not a size: " + text);
	}
	std::string unit = text.substr(used);
	int shift = 0;
	if (!unit.empty()) {
		const char *p = std::strchr(units, std::toupper(unit[0]));
		std::string rest = unit.substr(1);

		if (!p || !(rest.empty() || rest == "i" || rest == "iB" || rest == "B"))
			throw CLI::ValidationError("SIZE", "unknown unit in " + text +
							   " (use K, M, G, T or P: powers of 1024)");
		shift = 10 * static_cast<int>(p - units + 1);
	}
	v = std::ldexp(v, shift);
	if (!(v >= 0) || v > 1.8e19 || v != std::floor(v))
		throw CLI::ValidationError("SIZE", "not a whole number of bytes: " + text);
	return static_cast<std::uint64_t>(v);
}

std::string human_size(std::uint64_t bytes)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = static_cast<double>(bytes);
	int u = 0;
	char buf[32];

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(bytes));
	else
		std::snprintf(buf, sizeof(buf), "%.1f %s", v, units[u]);
	return buf;
}

std::string size_text(std::uint64_t bytes, const Output &out)
{
	return out.bytes ? std::to_string(bytes) : human_size(bytes);
}

std::string mode_text(std::uint32_t mode)
{
	char buf[8];

	std::snprintf(buf, sizeof(buf), "%04o", mode & 0777);
	return buf;
}

std::string user_name(std::uint32_t uid)
{
	struct passwd pw, *res = nullptr;
	char buf[1024];

	if (!getpwuid_r(uid, &pw, buf, sizeof(buf), &res) && res)
		return res->pw_name;
	return std::to_string(uid);
}

std::vector<std::string> feature_names(std::uint64_t f)
{
	static const std::pair<std::uint64_t, const char *> names[] = {
		{ BELUGA_FEATURE_NODE_SOURCES, "node-sources" },
		{ BELUGA_FEATURE_EPHEMERAL, "ephemeral" },
		{ BELUGA_FEATURE_PMD_MAPPINGS, "pmd-mappings" },
		{ BELUGA_FEATURE_LONGTERM_PIN, "longterm-pin" },
		{ BELUGA_FEATURE_RANGE_SOURCES, "range-sources" },
		{ BELUGA_FEATURE_GPU_REGISTER, "gpu-register" },
		{ BELUGA_FEATURE_QUOTAS, "quotas" },
		{ BELUGA_FEATURE_SHARED_REGIONS, "shared-regions" },
		{ BELUGA_FEATURE_SOURCE_HOTPLUG, "source-hotplug" },
		{ BELUGA_FEATURE_USAGE_COUNTS, "usage-counts" },
		{ BELUGA_FEATURE_COUNTERS, "counters" },
	};
	std::vector<std::string> v;

	for (const auto &[bit, name] : names)
		if (f & bit)
			v.emplace_back(name);
	return v;
}

std::vector<std::string> region_flag_names(std::uint32_t flags)
{
	std::vector<std::string> v;

	if (flags & BELUGA_INFO_EPHEMERAL)
		v.emplace_back("ephemeral");
	if (flags & BELUGA_INFO_DESTROYED)
		v.emplace_back("destroyed");
	if (flags & BELUGA_INFO_HUGETLB)
		v.emplace_back("hugetlb");
	if (flags & BELUGA_INFO_SHARED)
		v.emplace_back("shared");
	return v;
}

json region_json(const beluga::RegionInfo &r)
{
	json j = {
		{ "name", r.name }, { "id", r.id }, { "size", r.size },
		{ "nr_chunks", r.nr_chunks }, { "mode", mode_text(r.mode) },
		{ "uid", r.uid }, { "gid", r.gid }, { "owner", user_name(r.uid) },
		{ "flags", region_flag_names(r.flags) },
	};

	if (r.flags & BELUGA_INFO_NO_USAGE) {	// unknown, not zero
		j["open_count"] = nullptr;
		j["map_count"] = nullptr;
		j["pinned_chunks"] = nullptr;
	} else {
		j["open_count"] = r.open_count;
		j["map_count"] = r.map_count;
		j["pinned_chunks"] = r.pinned_chunks;
	}
	return j;
}

json source_json(const beluga::SourceInfo &s)
{
	return {
		{ "index", s.index },
		{ "kind", s.kind == BELUGA_SOURCE_KIND_RANGE ? "range" : "node" },
		{ "node", s.node },
		{ "has_cpus", (s.flags & BELUGA_SOURCE_HAS_CPUS) != 0 },
		{ "total_bytes", s.total_bytes },
		{ "free_bytes", s.free_bytes },
	};
}

static std::string abi_text(std::uint32_t v)
{
	return std::to_string(v >> 16) + "." + std::to_string(v & 0xffff);
}

json info_json(const beluga::PoolInfo &i)
{
	return {
		{ "backend", i.backend == BELUGA_BACKEND_KERNEL ? "kernel" : "user" },
		{ "library_version", beluga::version() },
		{ "abi_version", abi_text(i.abi_version) },
		{ "min_abi_version", abi_text(i.min_abi_version) },
		{ "library_abi_version", abi_text(beluga::abi_version()) },
		{ "features", feature_names(i.features) },
		{ "chunk_size", i.chunk_size },
		{ "total_bytes", i.total_bytes },
		{ "free_bytes", i.free_bytes },
		{ "quarantined_bytes", i.quarantined_bytes },
		{ "nr_sources", i.nr_sources },
		{ "nr_regions", i.nr_regions },
	};
}

} // namespace tool
