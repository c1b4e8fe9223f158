// SPDX-License-Identifier: Apache-2.0
// Description: beluga-tool - command-line front end of libbeluga for
// operators: info, ls, create, destroy, wipe, shared, source, stat, gpu, top, bench.  Subcommands come
// from one table (commands.hpp); errors print what failed and what to do,
// and map to the documented exit codes.
#include <cstdio>

#include "commands.hpp"

namespace tool {

std::vector<Subcommand> subcommands()
{
	return { info_command(), ls_command(), create_command(), destroy_command(),
		 wipe_command(), shared_command(), source_command(), stat_command(), gpu_command(), top_command(), kv_command(),
		 bench_command() };
}

static void add_globals(CLI::App &app, Globals &g)
{
	app.add_option("-b,--backend", g.backend,
		       "kernel, user or auto (default: $BELUGA_BACKEND, else the driver "
		       "if /dev/beluga exists)")
		->check(CLI::IsMember({ "auto", "kernel", "user" }));
	app.add_option("--pool", g.pool, "User backend: pool name (default: $BELUGA_POOL or 'default')");
	app.add_option("--user-dir", g.user_dir,
		       "User backend: pool directory (default: /dev/shm/beluga-<pool>)");
	app.add_option("--hugetlbfs", g.hugetlbfs,
		       "User backend: hugetlbfs mount to use, or 'none' (default: detect)");
	app.add_option("--device", g.device, "Kernel backend: device (default: /dev/beluga)");
	app.add_flag("-v,--verbose", g.verbose, "Log library debug messages to stderr");
}

static int run(int argc, char **argv)
{
	CLI::App app{ "beluga-tool: manage the Beluga CXL memory pool", "beluga-tool" };
	Globals g;
	std::function<int()> runner;

	app.require_subcommand(1);
	app.set_version_flag("--version", std::string("beluga-tool ") + beluga::version());
	add_globals(app, g);
	for (const auto &cmd : subcommands()) {
		CLI::App *sub = app.add_subcommand(cmd.name, cmd.help);
		auto fn = cmd.setup(*sub, g);

		sub->fallthrough();	/* global options may follow the subcommand */
		sub->callback([&runner, fn] { runner = fn; });
	}
	app.footer(kExitCodeHelp);	/* after the subcommands, which would copy it */
	try {
		app.parse(argc, argv);
		return runner();
	} catch (const CLI::ParseError &e) {
		int code = app.exit(e);

		return code == 0 ? kOk : kUsage;
	} catch (const beluga::Error &e) {
		std::fprintf(stderr, "beluga-tool: %s\n", e.what());
		return exit_code(e.code());
	}
}

} // namespace tool

int main(int argc, char **argv)
{
	return tool::run(argc, argv);
}
