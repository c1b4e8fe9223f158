// SPDX-License-Identifier: Apache-2.0
// Description: beluga-tool kv - what the kv subcommands share: opening a
// KV cache as a read-only observer, one snapshot of its counters, and the
// Prometheus text and HTTP endpoint of cmd_kv_metrics.cpp / cmd_kv_http.cpp.
#ifndef BELUGA_TOOL_CMD_KV_HPP
#define BELUGA_TOOL_CMD_KV_HPP

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <beluga/kvcache.hpp>

#include "tool.hpp"

namespace tool::kv {

// Everything `kv stats` and `kv metrics` report about one cache.
struct Snapshot {
	std::string name;
	beluga_kvc_info info{};
	beluga_kvc_stats total{};
	std::vector<beluga_kvc_stats> hosts;	   // per host partition
	std::vector<beluga_kvc_eviction> eviction; // per host partition
	std::vector<beluga_kvc_host_info> host_info; // several hosts: claim, heartbeat
	long watched_ms = 0;			   // several hosts: heartbeats watched this long
	beluga_kvc_check_report check{};
};

// A cache opened as an observer (beluga_kvc_open with ATTACH_OBSERVE): it
// never writes to the region.  Throws beluga::kvc::Error.
beluga::kvc::Cache observe(const beluga::Pool &pool, const std::string &name);
// @watch_ms (several hosts): look at the heartbeats, wait that long and
// look again, so that a host seen moving shows as alive (-1: two heartbeat
// periods of the slowest host).
Snapshot snapshot(beluga::kvc::Cache &cache, const std::string &name, long watch_ms = 0);
std::string host_state_name(std::uint32_t state);

// Names of the regions of the pool that hold a KV cache this user may read.
std::vector<std::string> discover(const beluga::Pool &pool);

std::string dtype_name(uint32_t dtype);
std::string key_hex(const uint8_t *key);
std::string policy_name(uint32_t policy);

// Prometheus text exposition (format 0.0.4) of @snaps.
std::string prometheus(const std::vector<Snapshot> &snaps);

// Serve prometheus() of the named caches (all caches when empty) on
// @listen ("127.0.0.1:9464"; port 0 picks one, printed on stdout) until
// SIGINT/SIGTERM or @max_requests answers.  Non-loopback addresses only with
// @allow_remote.  Returns an exit code.
struct HttpOptions {
	std::string listen;
	bool allow_remote = false;
	unsigned max_requests = 0; // 0: no limit
	unsigned timeout_ms = 5000; // per connection
};
int serve(const Globals &g, const std::vector<std::string> &names, const HttpOptions &o);

// The cache errors as the tool's exit codes.
int exit_for(int err);

} // namespace tool::kv

#endif // BELUGA_TOOL_CMD_KV_HPP
