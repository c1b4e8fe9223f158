// SPDX-License-Identifier: Apache-2.0
// Description: beluga-tool bench - the memory benchmark's data model: what
// to run (Config), the memories measured side by side (Memory), and the
// results (Report: sections of points, one value per memory).  The engine
// files (bench/*.cpp) fill a Report; report_*.cpp and plot.cpp print it.
#ifndef BELUGA_TOOL_BENCH_HPP
#define BELUGA_TOOL_BENCH_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <beluga/beluga.hpp>

namespace bench {

// Everything the command line decides; defaults are the non-quick run.
struct Config {
	std::vector<std::string> tests;		// latency bandwidth methods patterns ...
	std::vector<std::uint64_t> sizes;	// access sizes (bandwidth, crossover)
	std::vector<std::uint64_t> chase_sizes;	// working sets (latency)
	std::vector<unsigned> threads;		// thread counts (patterns)
	std::vector<std::string> methods;	// access methods (methods table)
	std::vector<std::string> patterns;	// seq random zipf
	std::uint64_t buffer = 256ull << 20;	// bytes per memory
	std::uint64_t method_size = 64 << 10;	// access size of the methods table
	std::uint64_t coherence_size = 16 << 10;	// paper Table 4
	std::vector<std::uint64_t> pattern_sizes{ 64, 16 << 10 };	// paper Exp #3
	double duration_ms = 15;		// per measured window
	unsigned repeat = 3;			// windows per point; the median is kept
	double zipf_theta = 0.99;
	bool pin = true;
	bool progress = true;
	std::uint64_t seed = 1;
};

// One memory under test: a mapped, prefaulted buffer (RAII in the subclass).
class Memory {
public:
	virtual ~Memory() = default;
	std::string name;		// "dram", "beluga": the key in every result
	std::string description;	// e.g. "user backend, tmpfs, 4 KiB pages"
	std::byte *data = nullptr;
	std::size_t size = 0;
};

std::unique_ptr<Memory> make_dram(std::size_t size, int node);
// An ephemeral region of @pool (a source index, or BELUGA_ALL_SOURCES).
std::unique_ptr<Memory> make_beluga(beluga::Pool pool, std::size_t size, int source);

// One figure measured on every memory; NaN where not measured.
struct Point {
	std::string op;		// read, write, copy, ... ("" where meaningless)
	std::string method;	// access method
	std::string pattern;	// seq, random, zipf
	std::string metric;	// mean, p50, p99
	unsigned threads = 1;
	std::uint64_t size = 0;	// access size or working set, bytes
	std::vector<double> value;	// index = memory index
	std::string skipped;	// non-empty: why this machine cannot run it
	double paper = NAN;	// the paper's CXL figure for this point, if any
};

struct Section {
	std::string name;	// stable JSON key: latency, bandwidth, ...
	std::string title;
	std::string unit;	// ns, GB/s, us
	bool higher_is_better = false;
	std::vector<Point> points;
};

struct Skip {
	std::string section, method, reason;
};

struct Report {
	std::vector<std::string> memories;		// names, index = Point::value index
	std::vector<std::string> memory_descriptions;
	std::deque<Section> sections;	// deque: tests keep references
	std::vector<Skip> skipped;
	// O4: per memory and bulk method, the copy size from which bulk wins.
	struct Crossover {
		std::string memory, method;
		std::uint64_t size = 0;	// 0: bulk never won
	};
	std::vector<Crossover> crossovers;
	double seconds = 0;
	std::vector<std::string> plots;	// PNG files written
	std::string cpu_model;	// /proc/cpuinfo
	unsigned cpus = 0;	// CPUs this process may use
};

// Index of the local-DRAM baseline in Report::memories, or -1.
int baseline(const Report &r);
// value(memory) / value(DRAM) of the same point; NaN without a baseline.
double ratio(const Report &r, const Point &p, std::size_t mem);

// Progress on stderr: a rewritten line on a terminal, else one line per
// test; silent when disabled.
class Progress {
public:
	Progress(bool on, unsigned total);
	~Progress();
	void step(const std::string &what);
	void test(const std::string &name);

private:
	bool on_, tty_;
	unsigned done_ = 0, total_;
};

// What a test sees.  In a dry run measure() only counts points, so the same
// test code both sizes the progress counter and runs.
struct Context {
	const Config &cfg;
	std::vector<Memory *> mems;
	Report &report;
	Progress *progress = nullptr;	// nullptr: dry run
	unsigned counted = 0;
};

Section &add_section(Context &c, const std::string &name, const std::string &title,
		     const std::string &unit, bool higher_is_better);
// Measures @p on every memory (fn gives the value) and appends it to @s.
void measure(Context &c, Section &s, Point p, const std::function<double(Memory &)> &fn);
// Several points from one run per memory (fn gives one value per point).
void measure_group(Context &c, std::vector<std::pair<Section *, Point>> pts,
		   const std::function<std::vector<double>(Memory &)> &fn);
// Appends @p as skipped (no values) and records the reason once per method.
void skip(Context &c, Section &s, Point p, const std::string &reason);
std::string describe(const Point &p);

void run_latency(Context &c);
void run_bandwidth(Context &c);
void run_methods(Context &c);
void run_patterns(Context &c);
void run_coherence(Context &c);
void run_crossover(Context &c);
void run_interference(Context &c);

const std::vector<std::string> &test_names();
Report run_all(const Config &cfg, const std::vector<Memory *> &mems);

// Output.
std::string format_text(const Report &r);
std::string format_json(const Report &r, const Config &cfg);
// Writes <dir>/<section>.dat and <dir>/{latency,bandwidth,crossover}.png;
// returns the PNG paths; throws std::runtime_error when gnuplot fails.
std::vector<std::string> write_plots(const Report &r, const std::string &dir);
bool have_gnuplot();

} // namespace bench

#endif // BELUGA_TOOL_BENCH_HPP
