// SPDX-License-Identifier: Apache-2.0
// Description: beluga-tool internals - the subcommand table, global options,
// exit codes and output helpers shared by the cmd_*.cpp files.
#ifndef BELUGA_TOOL_HPP
#define BELUGA_TOOL_HPP

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <beluga/beluga.hpp>

namespace tool {

using json = nlohmann::ordered_json;

// Documented exit codes (beluga-tool --help prints this table).
enum Exit : int {
	kOk = 0,
	kUsage = 1,		// bad command line or invalid argument (EINVAL)
	kNotFound = 2,		// no such region (ENOENT)
	kPermission = 3,	// EACCES, EPERM
	kNoBackend = 4,		// driver missing or ABI mismatch
	kExists = 5,		// EEXIST
	kNoSpace = 6,		// ENOSPC, ENOMEM
	kNoGpu = 7,		// no GPU, or built without CUDA
	kBusy = 8,		// EBUSY
	kOther = 10,		// anything else
};

extern const char kExitCodeHelp[];

// Options every subcommand takes.
struct Globals {
	std::string backend = "auto";
	std::string pool;
	std::string user_dir;
	std::string device;
	std::string hugetlbfs;
	bool verbose = false;
};

// Output options of read commands.
struct Output {
	bool json = false;
	bool bytes = false;
};

// One row of the {name, help, setup} table: setup adds options to the
// subcommand and returns the function that runs it.
struct Subcommand {
	const char *name;
	const char *help;
	std::function<std::function<int()>(CLI::App &sub, const Globals &g)> setup;
};

std::vector<Subcommand> subcommands();

beluga::Pool open_pool(const Globals &g);
int exit_code(int err);				// positive errno / BELUGA_E* -> Exit
void add_output_flags(CLI::App &sub, Output &out);

// Sizes: "2M", "1.5GiB" (binary units) and back.
std::uint64_t parse_size(const std::string &text);
std::string human_size(std::uint64_t bytes);
std::string size_text(std::uint64_t bytes, const Output &out);

std::string mode_text(std::uint32_t mode);
std::string user_name(std::uint32_t uid);
std::vector<std::string> feature_names(std::uint64_t features);
std::vector<std::string> region_flag_names(std::uint32_t flags);

json region_json(const beluga::RegionInfo &r);
json source_json(const beluga::SourceInfo &s);
json info_json(const beluga::PoolInfo &i);

} // namespace tool

#endif // BELUGA_TOOL_HPP
