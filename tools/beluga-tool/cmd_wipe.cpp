// SPDX-License-Identifier: Apache-2.0
// Description: beluga-tool wipe - zero a region's memory before it is used
// again: above all a shared extent, which the driver never zeroes, before a
// KV cache is formatted in it anew.  Refuses while the region is open or
// mapped on this host, or while a KV cache in it shows a host alive or
// processes attached (--force overrides); asks for confirmation (--yes).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <thread>

#include "cmd_kv.hpp"
#include "commands.hpp"

namespace tool {

namespace {

struct WipeArgs {
	std::string name;
	bool yes = false;
	bool force = false;
	bool progress = false;
	bool no_progress = false;
	long watch_ms = -1;
	Output out;
};

using Clock = std::chrono::steady_clock;

// What the checks found: a reason to refuse per line, and what the KV
// header (if any) said, for the report.
struct Findings {
	std::vector<std::string> refusals;
	json cache = nullptr; // null: no KV cache in the region
};

// The region's own users on this host (the driver counts them; the user
// backend cannot).
void check_local(const beluga::RegionInfo &r, Findings &f)
{
	if (r.flags & BELUGA_INFO_NO_USAGE)
		return;
	if (r.open_count || r.map_count || r.pinned_chunks)
		f.refusals.push_back("it is in use on this host: " + std::to_string(r.open_count) +
				     " open, " + std::to_string(r.map_count) + " mapped, " +
				     std::to_string(r.pinned_chunks) +
				     " chunks pinned (beluga-tool stat " + r.name +
				     "; stop the processes that use it)");
}

// A KV cache in the region: every host index that shows signs of life
// (its heartbeat moved while watched, or processes attached) is a reason
// to refuse.  Not a complete cache (none, a damaged header, or a format
// that did not finish within the watch): nothing alive to find.
void check_cache(const beluga::Pool &pool, const WipeArgs &a, Findings &f)
{
	std::optional<beluga::kvc::Cache> cache;
	for (int look = 0; !cache; look++) {
		try {
			cache.emplace(kv::observe(pool, a.name));
		} catch (const beluga::kvc::Error &e) {
			switch (e.code().value()) {
			case BELUGA_KVC_EFORMAT:
				return; // not a cache (or a damaged header): nothing alive to find
			case BELUGA_KVC_ENOTREADY:
				// Empty, or a format begun (maybe interrupted): look
				// again after the watch, so that a format in progress
				// shows as a cache with a live host.
				if (look)
					return;
				std::this_thread::sleep_for(
					std::chrono::milliseconds(a.watch_ms < 0 ? 1000 : a.watch_ms));
				continue;
			case BELUGA_KVC_EVERSION:
				f.refusals.push_back("it holds a KV cache of a newer on-media format than "
						     "this tool reads, whose hosts it cannot judge (" +
						     std::string(e.what()) + "; --force)");
				return;
			default:
				throw;
			}
		}
	}
	kv::Snapshot s = kv::snapshot(*cache, a.name, a.watch_ms);
	json hosts = json::array();
	for (const auto &hi : s.host_info) {
		if (!hi.machine_id)
			continue;
		hosts.push_back({ { "host", hi.host }, { "name", hi.name },
				  { "state", kv::host_state_name(hi.state) },
				  { "processes", hi.sessions }, { "heartbeat", hi.heartbeat } });
		std::string who = "host " + std::to_string(hi.host) + " (\"" + hi.name + "\")";
		if (hi.state == BELUGA_KVC_HOST_ALIVE)
			f.refusals.push_back(who + " is alive: its heartbeat moved while watched "
						   "for " + std::to_string(s.watched_ms) + " ms");
		else if (hi.sessions)
			f.refusals.push_back(
				who + " shows " + std::to_string(hi.sessions) +
				" process(es) attached although its heartbeat did not move in " +
				std::to_string(s.watched_ms) + " ms: stop them, or if the host is "
				"down, 'beluga-tool kv takeover " + a.name + " --host " +
				std::to_string(hi.host) + " --by <a live host> --release' reclaims them");
	}
	if (s.host_info.empty() && s.check.live_sessions)
		f.refusals.push_back("a KV cache in it has " + std::to_string(s.check.live_sessions) +
				     " process(es) attached (beluga-tool kv stats " + a.name + ")");
	f.cache = { { "max_hosts", s.info.max_hosts },
		    { "model_id", s.info.fingerprint.model_id },
		    { "live_sessions", s.check.live_sessions },
		    { "heartbeat_watch_ms", s.watched_ms },
		    { "hosts", hosts } };
}

// Asks on the terminal; false when the answer is not the region's name.
bool confirmed(const WipeArgs &a, const beluga::RegionInfo &r)
{
	if (!isatty(STDIN_FILENO)) {
		std::fprintf(stderr, "beluga-tool: wipe zeroes %s of %s, for every host that maps it: "
				     "add --yes to confirm (stdin is not a terminal)\n",
			     human_size(r.size).c_str(), a.name.c_str());
		return false;
	}
	std::fprintf(stderr, "This zeroes all %s of region %s%s; whatever it holds is lost. "
			     "Type its name to go on: ",
		     human_size(r.size).c_str(), a.name.c_str(),
		     (r.flags & BELUGA_INFO_SHARED) ? ", for every host that shares it" : "");
	std::string answer;
	std::getline(std::cin, answer);
	if (answer == a.name)
		return true;
	std::fprintf(stderr, "beluga-tool: not confirmed; nothing written\n");
	return false;
}

// Zero the mapping from its start (the KV header is the first thing to
// go, so an interrupted wipe leaves no valid cache behind), with
// non-temporal stores that reach memory (other hosts read it directly).
void zero(const beluga::Mapping &m, const WipeArgs &a)
{
	static const std::vector<char> zeroes(BELUGA_REGION_ALIGN);
	const bool tty = isatty(STDERR_FILENO);
	const bool show = a.progress || (tty && !a.out.json && !a.no_progress);
	auto *p = static_cast<char *>(m.data());
	const std::size_t total = m.size();
	const auto t0 = Clock::now();
	auto last = t0;

	for (std::size_t off = 0; off < total;) {
		std::size_t n = std::min(zeroes.size(), total - off);
		beluga_copy_nt(p + off, zeroes.data(), n);
		off += n;
		auto now = Clock::now();
		if (show && (now - last >= std::chrono::seconds(1) ||
			     (off == total && (a.progress || last != t0)))) {
			double s = std::chrono::duration<double>(now - t0).count();
			std::fprintf(stderr, "%swiping %s: %s of %s (%.0f %%), %s/s%s", tty ? "\r" : "",
				     a.name.c_str(), human_size(off).c_str(), human_size(total).c_str(),
				     100.0 * double(off) / double(total),
				     human_size(std::uint64_t(double(off) / s)).c_str(),
				     tty && off < total ? "" : "\n");
			std::fflush(stderr);
			last = now;
		}
	}
}

json report_json(const WipeArgs &a, const beluga::RegionInfo &r, const Findings &f, bool wiped,
		 double seconds)
{
	json j = { { "region", a.name }, { "wiped", wiped }, { "bytes", r.size },
		   { "shared", (r.flags & BELUGA_INFO_SHARED) != 0 } };
	if (r.flags & BELUGA_INFO_SHARED) {
		j["source"] = r.shared_source;
		j["offset"] = r.shared_offset;
	}
	j["cache"] = f.cache;
	j["refusals"] = f.refusals;
	j["forced"] = a.force && !f.refusals.empty();
	if (wiped)
		j["seconds"] = seconds;
	return j;
}

int run_wipe(const Globals &g, const WipeArgs &a)
{
	auto pool = open_pool(g);
	beluga::RegionInfo r = pool.stat_region(a.name);
	Findings f;

	check_local(r, f);
	check_cache(pool, a, f);
	if (!f.refusals.empty()) {
		for (const auto &why : f.refusals)
			std::fprintf(stderr, "beluga-tool: %s %s: %s\n", a.force ? "ignoring" : "refused:",
				     a.name.c_str(), why.c_str());
		if (!a.force) {
			std::fprintf(stderr, "beluga-tool: nothing written (exit status 8); --force "
					     "wipes anyway, for whoever still uses it\n");
			if (a.out.json)
				std::printf("%s\n", report_json(a, r, f, false, 0).dump(2).c_str());
			return kBusy;
		}
	}
	if (!a.yes && !confirmed(a, r))
		return kUsage;

	auto t0 = Clock::now();
	{
		beluga::Region region = pool.open_region(a.name);
		beluga::Mapping m = region.map(beluga::Prot::ReadWrite);
		zero(m, a);
	}
	double s = std::chrono::duration<double>(Clock::now() - t0).count();
	if (a.out.json) {
		std::printf("%s\n", report_json(a, r, f, true, s).dump(2).c_str());
	} else {
		std::string where = (r.flags & BELUGA_INFO_SHARED)
					    ? " (shared extent: source " + std::to_string(r.shared_source) +
						      ", offset " + size_text(r.shared_offset, a.out) + ")"
					    : "";
		std::printf("wiped %s: %s zeroed%s in %.1f s; %s\n", a.name.c_str(),
			    (size_text(r.size, a.out) + (a.out.bytes ? " bytes" : "")).c_str(),
			    where.c_str(), s,
			    f.cache.is_null() ? "it held no complete KV cache"
					      : "the KV cache it held is gone (format it again)");
	}
	return kOk;
}

} // namespace

Subcommand wipe_command()
{
	return { "wipe",
		 "Zero a region (a shared extent before it is used again: the driver never zeroes "
		 "one); refused while it is in use here or a KV cache in it shows a live host",
		 [](CLI::App &sub, const Globals &g) {
			 auto a = std::make_shared<WipeArgs>();

			 sub.add_option("NAME", a->name, "Region name (shared or private)")->required();
			 sub.add_flag("-y,--yes", a->yes,
				      "Do not ask for confirmation (needed when stdin is not a terminal)");
			 sub.add_flag("-f,--force", a->force,
				      "Wipe even while the region is in use on this host or a KV cache "
				      "in it shows a live host or attached processes");
			 sub.add_option("--watch-ms", a->watch_ms,
					"A KV cache of several hosts: watch the heartbeats this long "
					"(default: two heartbeat periods; 0: one look).  No complete "
					"cache: look again this much later (default 1000)")
				 ->check(CLI::Range(0L, 600000L));
			 auto *progress = sub.add_flag(
				 "--progress", a->progress,
				 "Print progress on stderr at most once a second (default: when "
				 "stderr is a terminal and not --json)");
			 sub.add_flag("--no-progress", a->no_progress, "Print no progress")
				 ->excludes(progress);
			 add_output_flags(sub, a->out);
			 sub.footer(
				 "Checks first, and refuses (exit 8, nothing written) when: the driver "
				 "counts the region open, mapped or pinned on this host (the user "
				 "backend cannot count); or a KV cache in it shows a host whose "
				 "heartbeat moved while watched, or processes attached (a region "
				 "without a complete cache is looked at twice, --watch-ms apart, so "
				 "that a format in progress shows its host); or the cache's format "
				 "is newer than this tool.  Other hosts' use of a shared extent outside a KV cache "
				 "cannot be seen: stop every user on every host first.  Then asks "
				 "for the region's name on the terminal (--yes: not).  Writes from "
				 "the start with non-temporal stores, so the KV header goes first: "
				 "an interrupted wipe leaves no usable cache; run it again.\n"
				 "Exit status: 0 wiped; 1 usage error or not confirmed; 2 no such "
				 "region; 3 no permission to read or write it; 4 no backend; 8 "
				 "refused: in use; 10 anything else.");
			 return [&g, a] {
				 try {
					 return run_wipe(g, *a);
				 } catch (const beluga::kvc::Error &e) {
					 std::fprintf(stderr, "beluga-tool: %s\n", e.what());
					 return kv::exit_for(e.code().value());
				 }
			 };
		 } };
}

} // namespace tool
