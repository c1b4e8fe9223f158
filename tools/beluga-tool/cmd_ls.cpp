// SPDX-License-Identifier: Apache-2.0
// Description: beluga-tool ls - list regions.
#include <cstdio>

#include "commands.hpp"

namespace tool {

static std::string count_text(const beluga::RegionInfo &r, std::uint32_t v)
{
	return r.flags & BELUGA_INFO_NO_USAGE ? "-" : std::to_string(v);
}

void print_region_table(const std::vector<beluga::RegionInfo> &regions,
			const Output &out)
{
	std::printf("%-24s %12s %5s %-10s %5s %5s %6s %8s %s\n", "NAME", "SIZE",
		    "MODE", "OWNER", "OPEN", "MAPS", "PINNED", "ID", "FLAGS");
	for (const auto &r : regions) {
		std::string flags;

		for (const auto &f : region_flag_names(r.flags))
			flags += (flags.empty() ? "" : ",") + f;
		std::printf("%-24s %12s %5s %-10s %5s %5s %6s %8llu %s\n",
			    *r.name ? r.name : "(ephemeral)",
			    size_text(r.size, out).c_str(), mode_text(r.mode).c_str(),
			    user_name(r.uid).c_str(), count_text(r, r.open_count).c_str(),
			    count_text(r, r.map_count).c_str(),
			    count_text(r, r.pinned_chunks).c_str(),
			    static_cast<unsigned long long>(r.id), flags.c_str());
	}
}

static int run_ls(const Globals &g, const Output &out)
{
	auto regions = open_pool(g).list_regions();

	if (out.json) {
		json j = json::array();

		for (const auto &r : regions)
			j.push_back(region_json(r));
		std::printf("%s\n", j.dump(2).c_str());
	} else {
		print_region_table(regions, out);
	}
	return kOk;
}

Subcommand ls_command()
{
	return { "ls", "List the regions of the pool",
		 [](CLI::App &sub, const Globals &g) {
			 auto out = std::make_shared<Output>();

			 add_output_flags(sub, *out);
			 return [&g, out] { return run_ls(g, *out); };
		 } };
}

} // namespace tool
