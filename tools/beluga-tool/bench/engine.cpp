// SPDX-License-Identifier: Apache-2.0
// Description: runs the selected tests over the memories and collects one
// Report.  Every test goes through measure()/skip(), which is where dry runs
// (counting points for the progress bar) and the per-memory loop live, so
// the tests themselves only say what to measure.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

#include "../tool.hpp"
#include "bench.hpp"

namespace bench {

const std::vector<std::string> &test_names()
{
	static const std::vector<std::string> v = { "latency",	 "bandwidth", "methods",
						    "patterns",	 "coherence", "crossover",
						    "interference" };
	return v;
}

Progress::Progress(bool on, unsigned total)
	: on_(on), tty_(isatty(STDERR_FILENO)), total_(total)
{
}

Progress::~Progress()
{
	if (on_ && tty_ && done_)
		std::fprintf(stderr, "\r\033[K");
}

void Progress::test(const std::string &name)
{
	if (on_ && !tty_)
		std::fprintf(stderr, "bench: %s (%u of %u points done)\n", name.c_str(), done_,
			     total_);
}

void Progress::step(const std::string &what)
{
	done_++;
	if (on_ && tty_)
		std::fprintf(stderr, "\r\033[K[%3u%%] %s", total_ ? 100 * done_ / total_ : 100,
			     what.c_str());
}

std::string describe(const Point &p)
{
	std::string s = p.op;

	// The pattern only varies in the patterns test; elsewhere it is seq.
	for (const auto &x : { p.method, p.pattern == "seq" ? std::string() : p.pattern,
			       p.metric })
		if (!x.empty())
			s += (s.empty() ? "" : " ") + x;
	if (p.threads > 1)
		s += " x" + std::to_string(p.threads);
	if (p.size)
		s += " " + tool::human_size(p.size);
	return s;
}

Section &add_section(Context &c, const std::string &name, const std::string &title,
		     const std::string &unit, bool higher_is_better)
{
	return c.report.sections.emplace_back(
		Section{ name, title, unit, higher_is_better, {} });
}

static double median(std::vector<double> v)
{
	if (v.empty())
		return NAN;
	std::sort(v.begin(), v.end());
	return v[v.size() / 2];
}

// Repetitions alternate between the memories, so a burst of load from other
// work on a shared machine hits every memory alike, and the median of the
// repetitions drops such bursts.
void measure_group(Context &c, std::vector<std::pair<Section *, Point>> pts,
		   const std::function<std::vector<double>(Memory &)> &fn)
{
	unsigned reps = std::max(1u, c.cfg.repeat);
	std::size_t nm = c.mems.size();

	if (!c.progress) {
		c.counted += static_cast<unsigned>(nm) * reps;
		return;
	}
	// samples[point][memory] = one value per repetition
	std::vector<std::vector<std::vector<double>>> samples(pts.size(),
							      std::vector<std::vector<double>>(nm));
	for (unsigned rep = 0; rep < reps; rep++)
		for (std::size_t m = 0; m < nm; m++) {
			c.progress->step(pts[0].first->name + " " + describe(pts[0].second) + " " +
					 c.mems[m]->name);
			auto v = fn(*c.mems[m]);
			for (std::size_t i = 0; i < pts.size() && i < v.size(); i++)
				samples[i][m].push_back(v[i]);
		}
	for (std::size_t i = 0; i < pts.size(); i++) {
		auto &[s, p] = pts[i];

		p.value.assign(nm, NAN);
		for (std::size_t m = 0; m < nm; m++)
			p.value[m] = median(samples[i][m]);
		s->points.push_back(std::move(p));
	}
}

void measure(Context &c, Section &s, Point p, const std::function<double(Memory &)> &fn)
{
	measure_group(c, { { &s, std::move(p) } },
		      [&fn](Memory &m) { return std::vector<double>{ fn(m) }; });
}

void skip(Context &c, Section &s, Point p, const std::string &reason)
{
	if (!c.progress)
		return;
	auto &list = c.report.skipped;
	if (std::none_of(list.begin(), list.end(), [&](const Skip &k) {
		    return k.section == s.name && k.method == p.method;
	    }))
		list.push_back({ s.name, p.method, reason });
	p.value.assign(c.mems.size(), NAN);
	p.skipped = reason;
	s.points.push_back(std::move(p));
}

static void run_test(Context &c, const std::string &name)
{
	static const std::map<std::string, void (*)(Context &)> table = {
		{ "latency", run_latency },	{ "bandwidth", run_bandwidth },
		{ "methods", run_methods },	{ "patterns", run_patterns },
		{ "coherence", run_coherence }, { "crossover", run_crossover },
		{ "interference", run_interference },
	};

	if (c.progress)
		c.progress->test(name);
	table.at(name)(c);
}

int baseline(const Report &r)
{
	for (std::size_t i = 0; i < r.memories.size(); i++)
		if (r.memories[i] == "dram")
			return static_cast<int>(i);
	return -1;
}

double ratio(const Report &r, const Point &p, std::size_t mem)
{
	int b = baseline(r);

	if (b < 0 || mem >= p.value.size())
		return NAN;
	return p.value[mem] / p.value[static_cast<std::size_t>(b)];
}

static std::string cpu_model()
{
	std::ifstream f("/proc/cpuinfo");

	for (std::string line; std::getline(f, line);)
		if (line.starts_with("model name")) {
			auto colon = line.find(':');

			return colon == std::string::npos ? "" : line.substr(colon + 2);
		}
	return "unknown";
}

static unsigned usable_cpus()
{
	cpu_set_t set;

	return sched_getaffinity(0, sizeof(set), &set) ? 1 : CPU_COUNT(&set);
}

Report run_all(const Config &cfg, const std::vector<Memory *> &mems)
{
	Report dry_report, report;
	Context dry{ cfg, mems, dry_report };
	auto t0 = std::chrono::steady_clock::now();

	for (const auto &t : cfg.tests)
		run_test(dry, t);
	Progress progress(cfg.progress, dry.counted);
	Context c{ cfg, mems, report, &progress };
	report.cpu_model = cpu_model();
	report.cpus = usable_cpus();
	for (const auto *m : mems) {
		report.memories.push_back(m->name);
		report.memory_descriptions.push_back(m->description);
	}
	for (const auto &t : cfg.tests)
		run_test(c, t);
	report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
				 .count();
	return report;
}

} // namespace bench
