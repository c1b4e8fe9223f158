// SPDX-License-Identifier: Apache-2.0
// Description: beluga-tool shared - shared regions: a fixed extent of a range
// source that every host sharing the source defines identically (define,
// list, undefine).  The driver never zeroes their memory.
#include <algorithm>
#include <cstdio>
#include <optional>

#include "commands.hpp"

namespace tool {

struct SharedArgs {
	std::string name;
	std::vector<std::string> names;
	int source = -1;
	std::string offset;
	std::string size;
	std::string mode = "0600";
	std::optional<std::uint32_t> uid;
	std::optional<std::uint32_t> gid;
	bool force = false;
	Output out;
};

static std::uint32_t parse_mode(const std::string &text)
{
	std::uint32_t mode = 0;
	std::size_t used = 0;

	try {
		mode = static_cast<std::uint32_t>(std::stoul(text, &used, 8));
	} catch (const std::exception &) {
		used = 0;
	}
	if (used != text.size() || text.empty() || mode > 0777)
		throw CLI::ValidationError("--mode", "expected octal permission bits, e.g. 0640");
	return mode;
}

// Offsets and sizes: a size with a binary unit, or a number of bytes ("0" too).
static std::uint64_t parse_extent(const std::string &what, const std::string &text)
{
	std::uint64_t v = text == "0" ? 0 : parse_size(text);

	if (v % BELUGA_REGION_ALIGN)
		throw CLI::ValidationError(what, "must be a multiple of 2 MiB (got " + text + ")");
	return v;
}

static json shared_json(const beluga::RegionInfo &r)
{
	json j = region_json(r);

	j["source"] = r.shared_source;
	j["offset"] = r.shared_offset;
	return j;
}

static int run_define(const Globals &g, const SharedArgs &a)
{
	std::uint64_t offset = parse_extent("--offset", a.offset);
	std::uint64_t size = parse_extent("--size", a.size);
	std::uint32_t mode = parse_mode(a.mode);

	if (!size)
		throw CLI::ValidationError("--size", "must not be 0");
	auto pool = open_pool(g);
	if (pool.backend() != beluga::Backend::Kernel) {
		std::fprintf(stderr, "beluga-tool: shared regions need the kernel backend (the "
				     "beluga driver): user-space pools have no memory another "
				     "host can map\n");
		return kNoBackend;
	}
	auto sources = pool.sources();
	auto it = std::find_if(sources.begin(), sources.end(), [&](const beluga::SourceInfo &s) {
		return a.source >= 0 && s.index == static_cast<std::uint32_t>(a.source);
	});
	if (it == sources.end())
		throw CLI::ValidationError("--source", "no source " + std::to_string(a.source) +
							     " (see 'beluga-tool info')");
	const auto &src = *it;
	if (src.kind != BELUGA_SOURCE_KIND_RANGE)
		throw CLI::ValidationError("--source",
					   "source " + std::to_string(a.source) +
						   " is a NUMA node, memory each host's kernel "
						   "owns: only range sources can be shared");
	if (offset >= src.total_bytes || size > src.total_bytes - offset)
		throw CLI::ValidationError("--size", "the extent ends past the source (" +
							     human_size(src.total_bytes) + ")");

	beluga::RegionInfo info;
	{
		auto r = pool.define_shared(a.name, static_cast<std::uint32_t>(a.source), offset,
					    size, mode);
		info = r.info();
	}	// closed: an undefine below must not find it open
	if (a.uid || a.gid) {
		try {
			pool.chown_region(a.name, a.uid, a.gid);
		} catch (const beluga::Error &) {
			pool.destroy_region(a.name);	// no half-configured definition
			throw;
		}
		info = pool.stat_region(a.name);
	}
	if (a.out.json) {
		std::printf("%s\n", shared_json(info).dump(2).c_str());
	} else {
		std::printf("defined %s: source %d, offset %s, %s, mode %s, id %llu\n",
			    a.name.c_str(), a.source, size_text(offset, a.out).c_str(),
			    size_text(size, a.out).c_str(), mode_text(mode).c_str(),
			    static_cast<unsigned long long>(info.id));
	}
	return kOk;
}

static int run_list(const Globals &g, const SharedArgs &a)
{
	json j = json::array();

	if (!a.out.json)
		std::printf("%-24s %6s %12s %12s %5s %-10s %5s %5s %8s\n", "NAME", "SOURCE",
			    "OFFSET", "SIZE", "MODE", "OWNER", "OPEN", "MAPS", "ID");
	for (const auto &r : open_pool(g).list_regions()) {
		if (!(r.flags & BELUGA_INFO_SHARED))
			continue;
		if (a.out.json) {
			j.push_back(shared_json(r));
			continue;
		}
		std::printf("%-24s %6u %12s %12s %5s %-10s %5u %5u %8llu\n", r.name,
			    r.shared_source, size_text(r.shared_offset, a.out).c_str(),
			    size_text(r.size, a.out).c_str(), mode_text(r.mode).c_str(),
			    user_name(r.uid).c_str(), r.open_count, r.map_count,
			    static_cast<unsigned long long>(r.id));
	}
	if (a.out.json)
		std::printf("%s\n", j.dump(2).c_str());
	return kOk;
}

static int run_undefine(const Globals &g, const SharedArgs &a)
{
	auto pool = open_pool(g);

	for (const auto &n : a.names) {
		auto info = pool.try_stat_region(n);

		if (!info && a.force)
			continue;
		if (info && !(info->flags & BELUGA_INFO_SHARED)) {
			std::fprintf(stderr, "beluga-tool: %s is not a shared region (use 'destroy')\n",
				     n.c_str());
			return kUsage;
		}
		pool.destroy_region(n);
		std::printf("undefined %s\n", n.c_str());
	}
	return kOk;
}

Subcommand shared_command()
{
	return { "shared",
		 "Shared regions: a fixed extent of a range source, the same on every host, "
		 "never zeroed",
		 [](CLI::App &sub, const Globals &g) {
			 auto a = std::make_shared<SharedArgs>();
			 sub.require_subcommand(1);

			 auto *define = sub.add_subcommand(
				 "define",
				 "Define a shared region (root): the same NAME, source, offset and "
				 "size on every host that shares the source");
			 define->add_option("NAME", a->name, "Region name: 1-63 of [A-Za-z0-9._-]")
				 ->required();
			 define->add_option("-s,--source", a->source,
					    "Index of a range source (see 'info')")
				 ->required();
			 define->add_option("-o,--offset", a->offset,
					    "Start of the extent in the source, a multiple of 2M "
					    "(K, M, G, T units)")
				 ->required();
			 define->add_option("-S,--size", a->size,
					    "Size of the extent, a non-zero multiple of 2M")
				 ->required();
			 define->add_option("-m,--mode", a->mode, "Permission bits, octal")
				 ->capture_default_str();
			 define->add_option("--uid", a->uid,
					    "Owner, numeric (the same user on every host; default: "
					    "the caller)");
			 define->add_option("--gid", a->gid,
					    "Group, numeric (the same group on every host; default: "
					    "the caller's)");
			 add_output_flags(*define, a->out);

			 auto *list = sub.add_subcommand("list", "List the shared regions with their extents");
			 add_output_flags(*list, a->out);

			 auto *undefine = sub.add_subcommand(
				 "undefine",
				 "Remove shared regions on this host (busy while open or mapped); "
				 "their memory is not zeroed");
			 undefine->add_option("NAME", a->names, "Shared region names")->required();
			 undefine->add_flag("-f,--force", a->force, "Ignore names that do not exist");

			 for (auto *s : { define, list, undefine })
				 s->fallthrough();
			 return [&g, a, define, list] {
				 if (define->parsed())
					 return run_define(g, *a);
				 if (list->parsed())
					 return run_list(g, *a);
				 return run_undefine(g, *a);
			 };
		 } };
}

} // namespace tool
