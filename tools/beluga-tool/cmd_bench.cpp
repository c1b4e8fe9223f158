// SPDX-License-Identifier: Apache-2.0
// Description: beluga-tool bench - measures a Beluga region and local DRAM
// side by side (latency, bandwidth, access methods, patterns, the paper's
// coherence table and O4 crossover, interference) and prints a table, JSON
// or PNG plots.  The engine is in bench/; this file is the command line:
// option parsing, validation (exit 1 with the option's name) and defaults,
// of which --quick picks smaller ones.
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "bench/bench.hpp"
#include "bench/methods.hpp"
#include "bench/offsets.hpp"
#include "commands.hpp"

namespace tool {

namespace {

struct BenchArgs {
	std::vector<std::string> tests, memories{ "dram", "beluga" }, methods, patterns;
	std::vector<std::string> sizes, chase_sizes;
	std::string buffer, plot_dir;
	unsigned threads = 0, repeat = 0;
	double duration_ms = 0, zipf = 0.99;
	int dram_node = -1, source = BELUGA_ALL_SOURCES;
	std::uint64_t seed = 1;
	bool quick = false, json = false, quiet = false, no_pin = false;
};

std::vector<std::uint64_t> powers(std::uint64_t from, std::uint64_t to, unsigned factor)
{
	std::vector<std::uint64_t> v;

	for (std::uint64_t s = from; s <= to; s *= factor)
		v.push_back(s);
	return v;
}

std::vector<std::uint64_t> parse_sizes(const std::vector<std::string> &text,
				       const char *opt)
{
	std::vector<std::uint64_t> v;

	for (const auto &t : text) {
		std::uint64_t s;

		try {
			s = parse_size(t);
		} catch (const CLI::ValidationError &e) {
			throw CLI::ValidationError(opt, e.what());
		}
		if (s < 64 || s % 64)
			throw CLI::ValidationError(opt, t + ": must be a multiple of 64 bytes");
		v.push_back(s);
	}
	std::sort(v.begin(), v.end());
	v.erase(std::unique(v.begin(), v.end()), v.end());
	return v;
}

std::vector<unsigned> thread_counts(unsigned max)
{
	std::vector<unsigned> v;

	for (unsigned n = 1; n < max; n *= 2)
		v.push_back(n);
	v.push_back(max);
	return v;
}

unsigned default_threads()
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? static_cast<unsigned>(n) : 1;
}

// Options and --quick defaults -> Config; every check names its option.
bench::Config make_config(const BenchArgs &a)
{
	bench::Config c;

	// In catalogue order, each once: a section appears once in the JSON.
	for (const auto &t : bench::test_names())
		if (a.tests.empty() || std::find(a.tests.begin(), a.tests.end(), t) != a.tests.end())
			c.tests.push_back(t);
	c.sizes = a.sizes.empty() ? powers(64, a.quick ? 4 << 20 : 64 << 20, a.quick ? 16 : 4)
				  : parse_sizes(a.sizes, "--sizes");
	c.chase_sizes = a.chase_sizes.empty()
				? powers(4 << 10, a.quick ? 16 << 20 : 64 << 20, a.quick ? 16 : 4)
				: parse_sizes(a.chase_sizes, "--chase-sizes");
	c.buffer = a.buffer.empty() ? (a.quick ? 32ull << 20 : 256ull << 20) : parse_size(a.buffer);
	c.duration_ms = a.duration_ms > 0 ? a.duration_ms : a.quick ? 5 : 15;
	c.repeat = a.repeat ? a.repeat : a.quick ? 1 : 3;
	c.threads = thread_counts(a.threads ? a.threads : default_threads());
	c.methods = a.methods;
	if (c.methods.empty())
		for (const auto &m : bench::all_methods())
			c.methods.push_back(m.name);
	c.patterns = a.patterns.empty() ? bench::pattern_names() : a.patterns;
	c.zipf_theta = a.zipf;
	c.pin = !a.no_pin;
	c.progress = !a.quiet;
	c.seed = a.seed;
	return c;
}

void validate(const bench::Config &c)
{
	std::uint64_t need = std::max({ c.sizes.back() * 2, c.chase_sizes.back(),
					c.method_size * 2, c.coherence_size * 2,
					c.pattern_sizes.back() * 2, std::uint64_t{ 4 << 20 } });

	if (c.buffer < need)
		throw CLI::ValidationError("--buffer", "must be at least " + human_size(need) +
							       " (twice the largest access size)");
	if (c.repeat > 100)
		throw CLI::ValidationError("--repeat", "at most 100");
	if (c.duration_ms > 60000)
		throw CLI::ValidationError("--duration", "at most 60000 ms per point");
	if (!(c.zipf_theta > 0 && c.zipf_theta < 10))
		throw CLI::ValidationError("--zipf", "theta must be in (0, 10)");
	if (c.threads.back() > 1024)
		throw CLI::ValidationError("--threads", "at most 1024");
}

std::vector<std::unique_ptr<bench::Memory>> make_memories(const Globals &g, const BenchArgs &a,
							   const bench::Config &c)
{
	std::vector<std::unique_ptr<bench::Memory>> v;

	// DRAM first: it is the baseline every ratio divides by.
	if (std::find(a.memories.begin(), a.memories.end(), "dram") != a.memories.end())
		v.push_back(bench::make_dram(c.buffer, a.dram_node));
	if (std::find(a.memories.begin(), a.memories.end(), "beluga") != a.memories.end())
		v.push_back(bench::make_beluga(open_pool(g), c.buffer, a.source));
	return v;
}

int run_bench(const Globals &g, const BenchArgs &a)
{
	bench::Config cfg = make_config(a);

	validate(cfg);
	if (!a.plot_dir.empty() && !bench::have_gnuplot()) {
		std::fprintf(stderr, "beluga-tool: --plot needs gnuplot: install it "
				     "(Debian: apt-get install gnuplot-nox) or drop --plot\n");
		return kOther;
	}
	auto owned = make_memories(g, a, cfg);
	std::vector<bench::Memory *> mems;
	for (auto &m : owned)
		mems.push_back(m.get());

	bench::Report r = bench::run_all(cfg, mems);
	if (!a.plot_dir.empty())
		r.plots = bench::write_plots(r, a.plot_dir);
	std::fputs((a.json ? bench::format_json(r, cfg) : bench::format_text(r)).c_str(), stdout);
	return kOk;
}

std::vector<std::string> method_names()
{
	std::vector<std::string> v;

	for (const auto &m : bench::all_methods())
		v.push_back(m.name);
	return v;
}

void add_options(CLI::App &sub, BenchArgs &a)
{
	sub.add_option("--tests", a.tests, "Tests to run (default: all)")
		->check(CLI::IsMember(bench::test_names()))->delimiter(',');
	sub.add_option("-m,--memory", a.memories, "Memories to measure: dram, beluga")
		->check(CLI::IsMember({ "dram", "beluga" }))->delimiter(',')->capture_default_str();
	sub.add_option("--sizes", a.sizes,
		       "Access sizes, multiples of 64 (default 64,256,..,64M; quick 64,1K,..,4M)")
		->delimiter(',');
	sub.add_option("--chase-sizes", a.chase_sizes,
		       "Latency working sets (default 4K,16K,..,64M; quick 4K,64K,1M,16M)")
		->delimiter(',');
	sub.add_option("--buffer", a.buffer,
		       "Bytes of each memory to use (default 256M; quick 32M)");
	sub.add_option("-t,--threads", a.threads,
		       "Most threads (counts 1,2,4,..,N; default: online CPUs)")
		->check(CLI::PositiveNumber);
	sub.add_option("-d,--duration", a.duration_ms,
		       "Milliseconds per measured window (default 15; quick 5)")
		->check(CLI::PositiveNumber);
	sub.add_option("-r,--repeat", a.repeat,
		       "Windows per point, alternating memories; the median is kept "
		       "(default 3; quick 1)")
		->check(CLI::PositiveNumber);
	sub.add_option("--methods", a.methods, "Access methods of the methods test (default: all)")
		->check(CLI::IsMember(method_names()))->delimiter(',');
	sub.add_option("--patterns", a.patterns, "Patterns of the patterns test (default: all)")
		->check(CLI::IsMember(bench::pattern_names()))->delimiter(',');
	sub.add_option("--zipf", a.zipf, "Zipf skew (theta)")->capture_default_str();
	sub.add_option("--dram-node", a.dram_node, "Bind the DRAM buffer to this NUMA node")
		->check(CLI::NonNegativeNumber);
	sub.add_option("-s,--source", a.source,
		       "Take the region from this pool source (see 'info'); default: interleave");
	sub.add_option("--seed", a.seed, "Seed of the random patterns")->capture_default_str();
	sub.add_flag("--quick", a.quick, "Smaller defaults: finishes in seconds");
	sub.add_flag("--no-pin", a.no_pin, "Do not pin threads to CPUs");
	sub.add_flag("--json", a.json, "Print JSON (schema: Documentation/bench-memory.md)");
	sub.add_option("--plot", a.plot_dir,
		       "Write latency, bandwidth and crossover PNGs (gnuplot) into this directory");
	sub.add_flag("-q,--quiet", a.quiet, "No progress on stderr");
}

} // namespace

Subcommand bench_command()
{
	return { "bench",
		 "Measure a Beluga region against local DRAM: latency, bandwidth, "
		 "coherence methods, copy crossover (see Documentation/bench-memory.md)",
		 [](CLI::App &sub, const Globals &g) {
			 auto a = std::make_shared<BenchArgs>();

			 add_options(sub, *a);
			 return [&g, a] { return run_bench(g, *a); };
		 } };
}

} // namespace tool
