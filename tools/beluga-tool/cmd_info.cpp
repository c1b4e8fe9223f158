// SPDX-License-Identifier: Apache-2.0
// Description: beluga-tool info - backend, ABI, features, pool size, sources.
#include <cstdio>

#include "commands.hpp"

namespace tool {

static int run_info(const Globals &g, const Output &out)
{
	auto pool = open_pool(g);
	auto i = pool.info();
	auto sources = pool.sources();

	if (out.json) {
		json j = info_json(i);

		j["sources"] = json::array();
		for (const auto &s : sources)
			j["sources"].push_back(source_json(s));
		std::printf("%s\n", j.dump(2).c_str());
		return kOk;
	}
	std::printf("backend:     %s\n", beluga::backend_name(pool.backend()));
	std::printf("library:     %s (ABI %s)\n", beluga::version().c_str(),
		    info_json(i)["library_abi_version"].get<std::string>().c_str());
	std::printf("ABI:         %s (serves >= %s)\n",
		    info_json(i)["abi_version"].get<std::string>().c_str(),
		    info_json(i)["min_abi_version"].get<std::string>().c_str());
	std::string features;
	for (const auto &f : feature_names(i.features))
		features += (features.empty() ? "" : " ") + f;
	std::printf("features:    %s\n", features.c_str());
	std::printf("chunk size:  %s\n", size_text(i.chunk_size, out).c_str());
	std::printf("total:       %s\n", size_text(i.total_bytes, out).c_str());
	std::printf("free:        %s\n", size_text(i.free_bytes, out).c_str());
	if (i.quarantined_bytes)
		std::printf("quarantined: %s\n", size_text(i.quarantined_bytes, out).c_str());
	std::printf("regions:     %u\n", i.nr_regions);
	std::printf("\n%-6s %-5s %-5s %-5s %12s %12s\n", "SOURCE", "KIND", "NODE",
		    "CPUS", "TOTAL", "FREE");
	for (const auto &s : sources)
		std::printf("%-6u %-5s %-5d %-5s %12s %12s\n", s.index,
			    s.kind == BELUGA_SOURCE_KIND_RANGE ? "range" : "node", s.node,
			    s.flags & BELUGA_SOURCE_HAS_CPUS ? "yes" : "no",
			    size_text(s.total_bytes, out).c_str(),
			    size_text(s.free_bytes, out).c_str());
	return kOk;
}

Subcommand info_command()
{
	return { "info", "Show the backend, ABI versions, features, pool size and sources",
		 [](CLI::App &sub, const Globals &g) {
			 auto out = std::make_shared<Output>();

			 add_output_flags(sub, *out);
			 return [&g, out] { return run_info(g, *out); };
		 } };
}

} // namespace tool
