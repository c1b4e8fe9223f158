// SPDX-License-Identifier: Apache-2.0
// Description: the human-readable report - one table per section, a column
// per memory, the ratio of each memory to local DRAM measured in the same
// run, the paper's CXL figure where it has one, and the reason for every
// skipped method.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "../tool.hpp"
#include "bench.hpp"

namespace bench {

namespace {

std::string num(double v)
{
	char buf[32];

	if (std::isnan(v))
		return "-";
	std::snprintf(buf, sizeof(buf), v < 10 ? "%.2f" : v < 1000 ? "%.1f" : "%.0f", v);
	return buf;
}

std::string pad(const std::string &s, std::size_t w, bool left = false)
{
	if (s.size() >= w)
		return s;
	std::string fill(w - s.size(), ' ');
	return left ? s + fill : fill + s;
}

bool has_paper(const Section &s)
{
	for (const auto &p : s.points)
		if (!std::isnan(p.paper))
			return true;
	return false;
}

void section_text(std::string &out, const Report &r, const Section &s)
{
	int base = baseline(r);
	bool paper = has_paper(s);
	std::string head = pad("", 36, true);

	out += "\n" + s.title + "  [" + s.unit + ", " +
	       (s.higher_is_better ? "higher" : "lower") + " is better]\n";
	for (const auto &m : r.memories)
		head += pad(m, 10);
	for (std::size_t m = 0; m < r.memories.size(); m++)
		if (static_cast<int>(m) != base && base >= 0)
			head += pad(r.memories[m] + "/dram", 14);
	if (paper)
		head += pad("paper CXL", 11);
	out += head + "\n";
	for (const auto &p : s.points) {
		std::string line = "  " + pad(describe(p) + " ", 34, true);

		if (!p.skipped.empty()) {
			out += line + "  skipped (below)\n";
			continue;
		}
		for (double v : p.value)
			line += pad(num(v), 10);
		for (std::size_t m = 0; m < p.value.size(); m++)
			if (static_cast<int>(m) != base && base >= 0)
				line += pad(num(ratio(r, p, m)), 14);
		if (paper)
			line += pad(num(p.paper), 11);
		out += line + "\n";
	}
}

void crossover_text(std::string &out, const Report &r)
{
	if (r.crossovers.empty())
		return;
	out += "\nBulk copy overtakes memcpy (O4; paper: about 4 KiB for DSA on CXL):\n";
	for (const auto &x : r.crossovers)
		out += "  " + pad(x.memory, 8, true) + pad(x.method, 10, true) + " from " +
		       (x.size ? tool::human_size(x.size) : std::string("never (in the sizes run)")) +
		       "\n";
}

} // namespace

std::string format_text(const Report &r)
{
	std::string out = "beluga-tool bench: " + r.cpu_model + ", " + std::to_string(r.cpus) +
			  " CPUs\n";

	for (std::size_t m = 0; m < r.memories.size(); m++)
		out += "  " + r.memories[m] + ": " + r.memory_descriptions[m] + "\n";
	for (const auto &s : r.sections)
		section_text(out, r, s);
	crossover_text(out, r);
	if (!r.skipped.empty()) {
		std::vector<std::string> seen;

		out += "\nSkipped (this machine cannot run them):\n";
		for (const auto &k : r.skipped) {
			if (std::find(seen.begin(), seen.end(), k.method) != seen.end())
				continue;
			seen.push_back(k.method);
			out += "  " + k.method + ": " + k.reason + "\n";
		}
	}
	for (const auto &png : r.plots)
		out += (&png == &r.plots.front() ? "\nPlots: " : ", ") + png;
	char t[64];
	std::snprintf(t, sizeof(t), "\n%.1f s\n", r.seconds);
	return out + t;
}

} // namespace bench
