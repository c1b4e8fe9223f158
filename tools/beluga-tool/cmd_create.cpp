// SPDX-License-Identifier: Apache-2.0
// Description: beluga-tool create - a named region that outlives the tool.
#include <cstdio>

#include "commands.hpp"

namespace tool {

struct CreateArgs {
	std::string name;
	std::string size;
	std::string mode = "0600";
	int source = BELUGA_ALL_SOURCES;
};

static int run_create(const Globals &g, const CreateArgs &a)
{
	std::uint64_t size = parse_size(a.size);
	std::uint32_t mode = 0;
	std::size_t used = 0;

	try {
		mode = static_cast<std::uint32_t>(std::stoul(a.mode, &used, 8));
	} catch (const std::exception &) {
		used = 0;
	}
	if (used != a.mode.size() || mode > 0777)
		throw CLI::ValidationError("--mode", "expected octal permission bits, e.g. 0640");
	if (size % BELUGA_REGION_ALIGN)
		throw CLI::ValidationError("SIZE", "must be a multiple of 2 MiB, e.g. " +
						   human_size((size / BELUGA_REGION_ALIGN + 1) *
							      BELUGA_REGION_ALIGN));
	auto pool = open_pool(g);
	auto r = pool.create_region(a.name, size, { .mode = mode, .source = a.source });
	std::printf("created %s: %s, mode %s, id %llu\n", a.name.c_str(),
		    human_size(size).c_str(), mode_text(mode).c_str(),
		    static_cast<unsigned long long>(r.id()));
	return kOk;
}

Subcommand create_command()
{
	return { "create", "Create a named region (it stays until destroyed)",
		 [](CLI::App &sub, const Globals &g) {
			 auto a = std::make_shared<CreateArgs>();

			 sub.add_option("NAME", a->name, "Region name: 1-63 of [A-Za-z0-9._-]")
				 ->required();
			 sub.add_option("SIZE", a->size,
					"Size with a binary unit (K, M, G, T), a multiple of 2M")
				 ->required();
			 sub.add_option("-m,--mode", a->mode, "Permission bits, octal")
				 ->capture_default_str();
			 sub.add_option("-s,--source", a->source,
					"Take every chunk from this source index (see 'info'); "
					"default: interleave over all sources");
			 return [&g, a] { return run_create(g, *a); };
		 } };
}

} // namespace tool
