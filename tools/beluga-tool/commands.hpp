// SPDX-License-Identifier: Apache-2.0
// Description: beluga-tool subcommands, one file each (cmd_*.cpp).
#ifndef BELUGA_TOOL_COMMANDS_HPP
#define BELUGA_TOOL_COMMANDS_HPP

#include <memory>

#include "tool.hpp"

namespace tool {

Subcommand info_command();
Subcommand ls_command();
Subcommand create_command();
Subcommand destroy_command();
Subcommand wipe_command();
Subcommand shared_command();
Subcommand source_command();
Subcommand stat_command();
Subcommand gpu_command();
Subcommand top_command();
Subcommand kv_command();
Subcommand bench_command();

} // namespace tool

#endif // BELUGA_TOOL_COMMANDS_HPP
