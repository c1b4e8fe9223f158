// SPDX-License-Identifier: Apache-2.0
// Description: beluga-tool top - a live view of the pool, the driver's
// counters (with rates) and the regions.  On a terminal each frame replaces
// the last; otherwise (pipes, logs) frames follow each other, and --once
// prints a single frame.  --json prints one JSON object per frame and line.
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <optional>

#include "commands.hpp"

namespace tool {

void print_region_table(const std::vector<beluga::RegionInfo> &regions,
			const Output &out);

struct TopArgs {
	double interval = 2.0;
	unsigned count = 0;
	bool once = false;
	Output out;
};

struct Frame {
	beluga::PoolInfo info;
	std::optional<beluga::Counters> counters;
	std::vector<beluga::RegionInfo> regions;
};

static Frame sample(const beluga::Pool &pool)
{
	Frame f{ pool.info(), std::nullopt, pool.list_regions() };

	if (f.info.features & BELUGA_FEATURE_COUNTERS)
		f.counters = pool.counters();
	std::sort(f.regions.begin(), f.regions.end(),
		  [](const auto &a, const auto &b) { return a.size > b.size; });
	return f;
}

#define COUNTER_FIELDS(X) X(pmd_faults) X(pte_faults) X(pinned_chunks) \
	X(alloc_failures) X(regions_created) X(regions_freed)

static json counters_json(const beluga::Counters &c)
{
	json j;
#define X(f) j[#f] = c.f;
	COUNTER_FIELDS(X)
#undef X
	return j;
}

static json rates_json(const beluga::Counters &c, const beluga::Counters &p, double dt)
{
	json j;
#define X(f) j[#f] = (static_cast<double>(c.f) - static_cast<double>(p.f)) / dt;
	COUNTER_FIELDS(X)
#undef X
	return j;
}

static void print_json(const Frame &f, const std::optional<Frame> &prev, double dt)
{
	json j = { { "time", static_cast<long long>(::time(nullptr)) },
		   { "pool", info_json(f.info) } };

	if (f.counters) {
		j["counters"] = counters_json(*f.counters);
		if (prev && prev->counters)
			j["rates"] = rates_json(*f.counters, *prev->counters, dt);
	}
	j["regions"] = json::array();
	for (const auto &r : f.regions)
		j["regions"].push_back(region_json(r));
	std::printf("%s\n", j.dump().c_str());
}

static void print_text(const Frame &f, const std::optional<Frame> &prev, double dt,
		       const Output &out)
{
	const auto &i = f.info;
	double used = i.total_bytes ? 100.0 * static_cast<double>(i.total_bytes - i.free_bytes) /
					      static_cast<double>(i.total_bytes) : 0;
	char when[32];
	time_t now = ::time(nullptr);
	struct tm tm;

	strftime(when, sizeof(when), "%H:%M:%S", localtime_r(&now, &tm));
	std::printf("beluga top - %s - %s backend - %s total, %s free (%.1f%% used), %u regions\n",
		    when, i.backend == BELUGA_BACKEND_KERNEL ? "kernel" : "user",
		    size_text(i.total_bytes, out).c_str(), size_text(i.free_bytes, out).c_str(),
		    used, i.nr_regions);
	if (f.counters) {
		const auto &c = *f.counters;
		bool rates = prev && prev->counters;
		auto rate = [&](std::uint64_t now_v, std::uint64_t then_v) {
			return rates ? (static_cast<double>(now_v) - static_cast<double>(then_v)) / dt : 0.0;
		};
		std::printf("faults: %llu pmd (%.1f/s), %llu pte (%.1f/s); pinned chunks %llu; "
			    "regions +%llu -%llu; alloc failures %llu\n",
			    static_cast<unsigned long long>(c.pmd_faults),
			    rate(c.pmd_faults, rates ? prev->counters->pmd_faults : 0),
			    static_cast<unsigned long long>(c.pte_faults),
			    rate(c.pte_faults, rates ? prev->counters->pte_faults : 0),
			    static_cast<unsigned long long>(c.pinned_chunks),
			    static_cast<unsigned long long>(c.regions_created),
			    static_cast<unsigned long long>(c.regions_freed),
			    static_cast<unsigned long long>(c.alloc_failures));
	} else {
		std::printf("(no activity counters: the user-space backend does not track them)\n");
	}
	std::printf("\n");
	print_region_table(f.regions, out);
}

static void pause_for(double seconds)
{
	struct timespec ts;

	ts.tv_sec = static_cast<time_t>(seconds);
	ts.tv_nsec = static_cast<long>((seconds - static_cast<double>(ts.tv_sec)) * 1e9);
	while (nanosleep(&ts, &ts) && errno == EINTR) {
	}
}

static int run_top(const Globals &g, const TopArgs &a)
{
	auto pool = open_pool(g);
	bool tty = isatty(STDOUT_FILENO) && !a.out.json;
	unsigned frames = a.once ? 1 : a.count;
	std::optional<Frame> prev;

	if (a.interval <= 0)
		throw CLI::ValidationError("--interval", "must be more than 0 seconds");
	for (unsigned n = 0; frames == 0 || n < frames; n++) {
		Frame f = sample(pool);

		if (tty)
			std::printf("\033[H\033[2J");
		else if (n && !a.out.json)
			std::printf("\n");
		if (a.out.json)
			print_json(f, prev, a.interval);
		else
			print_text(f, prev, a.interval, a.out);
		std::fflush(stdout);
		prev = std::move(f);
		if (frames == 0 || n + 1 < frames)
			pause_for(a.interval);
	}
	return kOk;
}

Subcommand top_command()
{
	return { "top", "Live view of pool usage, driver counters and regions",
		 [](CLI::App &sub, const Globals &g) {
			 auto a = std::make_shared<TopArgs>();

			 sub.add_option("-i,--interval", a->interval, "Seconds between frames")
				 ->capture_default_str();
			 sub.add_option("-n,--count", a->count,
					"Stop after this many frames (0: until interrupted)")
				 ->capture_default_str();
			 sub.add_flag("--once", a->once,
				      "Print one frame and exit (for scripts; no terminal needed)");
			 add_output_flags(sub, a->out);
			 return [&g, a] { return run_top(g, *a); };
		 } };
}

} // namespace tool
