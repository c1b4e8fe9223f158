// SPDX-License-Identifier: Apache-2.0
// Description: beluga-tool stat - one region in detail, optionally with
// the NUMA node of each chunk (needs permission to open the region).
#include <cstdio>
#include <map>

#include "commands.hpp"

namespace tool {

struct StatArgs {
	std::string name;
	bool layout = false;
	Output out;
};

static int run_stat(const Globals &g, const StatArgs &a)
{
	auto pool = open_pool(g);
	auto r = pool.stat_region(a.name);
	std::vector<std::int32_t> nodes;
	std::map<std::int32_t, std::size_t> per_node;

	if (a.layout) {
		nodes = pool.open_region(a.name, true).layout();
		for (auto n : nodes)
			per_node[n]++;
	}
	if (a.out.json) {
		json j = region_json(r);

		if (a.layout)
			j["layout"] = nodes;
		std::printf("%s\n", j.dump(2).c_str());
		return kOk;
	}
	std::printf("name:    %s\n", r.name);
	std::printf("id:      %llu\n", static_cast<unsigned long long>(r.id));
	std::printf("size:    %s (%u chunks)\n", size_text(r.size, a.out).c_str(), r.nr_chunks);
	std::printf("mode:    %s\n", mode_text(r.mode).c_str());
	std::printf("owner:   %s (uid %u, gid %u)\n", user_name(r.uid).c_str(), r.uid, r.gid);
	if (r.flags & BELUGA_INFO_NO_USAGE)
		std::printf("usage:   not tracked by this backend\n");
	else
		std::printf("usage:   %u open, %u mappings, %u pinned chunks\n",
			    r.open_count, r.map_count, r.pinned_chunks);
	std::string flags;
	for (const auto &f : region_flag_names(r.flags))
		flags += (flags.empty() ? "" : " ") + f;
	if (!flags.empty())
		std::printf("flags:   %s\n", flags.c_str());
	for (const auto &[node, n] : per_node)
		std::printf("node %d: %zu chunks (%s)\n", node, n,
			    size_text(n * BELUGA_REGION_ALIGN, a.out).c_str());
	return kOk;
}

Subcommand stat_command()
{
	return { "stat", "Show one region in detail",
		 [](CLI::App &sub, const Globals &g) {
			 auto a = std::make_shared<StatArgs>();

			 sub.add_option("NAME", a->name, "Region name")->required();
			 sub.add_flag("-l,--layout", a->layout,
				      "Also show the NUMA node of each chunk (opens the region read-only)");
			 add_output_flags(sub, a->out);
			 return [&g, a] { return run_stat(g, *a); };
		 } };
}

} // namespace tool
