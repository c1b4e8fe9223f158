// SPDX-License-Identifier: Apache-2.0
// Description: beluga-tool destroy - remove region names (like rm on shm
// files: the memory returns when the last user unmaps it).
#include <cstdio>

#include "commands.hpp"

namespace tool {

struct DestroyArgs {
	std::vector<std::string> names;
	bool force = false;
};

static int run_destroy(const Globals &g, const DestroyArgs &a)
{
	auto pool = open_pool(g);

	for (const auto &n : a.names) {
		if (a.force && !pool.try_stat_region(n))
			continue;
		pool.destroy_region(n);
		std::printf("destroyed %s\n", n.c_str());
	}
	return kOk;
}

Subcommand destroy_command()
{
	return { "destroy",
		 "Remove regions by name; memory returns to the pool when the last "
		 "user unmaps it",
		 [](CLI::App &sub, const Globals &g) {
			 auto a = std::make_shared<DestroyArgs>();

			 sub.add_option("NAME", a->names, "Region names")->required();
			 sub.add_flag("-f,--force", a->force, "Ignore names that do not exist");
			 return [&g, a] { return run_destroy(g, *a); };
		 } };
}

} // namespace tool
