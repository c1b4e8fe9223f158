// SPDX-License-Identifier: Apache-2.0
// Description: the --json report.  The schema (Documentation/bench-memory.md)
// is versioned by "schema_version"; every point carries every key, null where
// it does not apply, so consumers never need to test for presence.
#include <cmath>

#include <nlohmann/json.hpp>

#include <beluga/beluga.hpp>

#include "bench.hpp"
#include "kernels.hpp"

namespace bench {

namespace {

using json = nlohmann::ordered_json;

json number(double v)
{
	return std::isnan(v) || std::isinf(v) ? json(nullptr) : json(v);
}

json text_or_null(const std::string &s)
{
	return s.empty() ? json(nullptr) : json(s);
}

json point_json(const Report &r, const Point &p)
{
	json values = json::object(), ratios = json::object();

	for (std::size_t m = 0; m < r.memories.size(); m++) {
		values[r.memories[m]] = number(p.value[m]);
		ratios[r.memories[m]] = number(ratio(r, p, m));
	}
	return { { "op", text_or_null(p.op) },		{ "method", text_or_null(p.method) },
		 { "pattern", text_or_null(p.pattern) },	{ "metric", text_or_null(p.metric) },
		 { "threads", p.threads },			{ "size", p.size },
		 { "values", values },				{ "ratio_to_dram", ratios },
		 { "paper", number(p.paper) },			{ "skipped", text_or_null(p.skipped) } };
}

json config_json(const Config &c)
{
	return { { "tests", c.tests },		      { "sizes", c.sizes },
		 { "chase_sizes", c.chase_sizes },   { "threads", c.threads },
		 { "methods", c.methods },	      { "patterns", c.patterns },
		 { "buffer", c.buffer },	      { "method_size", c.method_size },
		 { "coherence_size", c.coherence_size }, { "pattern_sizes", c.pattern_sizes },
		 { "duration_ms", c.duration_ms },   { "repeat", c.repeat },   { "zipf_theta", c.zipf_theta },
		 { "pin", c.pin },		      { "seed", c.seed } };
}

json machine_json(const Report &r)
{
	const CpuFeatures &f = cpu();

	return { { "cpu", r.cpu_model },	{ "cpus", r.cpus },
		 { "clflush", f.clflush },	{ "clflushopt", f.clflushopt },
		 { "clwb", f.clwb },		{ "movdir64b", f.movdir64b },
		 { "flush_method", beluga::flush_method() } };
}

} // namespace

std::string format_json(const Report &r, const Config &cfg)
{
	json j = { { "schema_version", 1 },
		   { "library_version", beluga::version() },
		   { "machine", machine_json(r) },
		   { "config", config_json(cfg) },
		   { "memories", json::array() },
		   { "baseline", baseline(r) >= 0 ? json("dram") : json(nullptr) },
		   { "sections", json::object() },
		   { "crossover", json::array() },
		   { "skipped", json::array() },
		   { "plots", r.plots },
		   { "seconds", r.seconds } };

	for (std::size_t m = 0; m < r.memories.size(); m++)
		j["memories"].push_back({ { "name", r.memories[m] },
					  { "description", r.memory_descriptions[m] } });
	for (const auto &s : r.sections) {
		json pts = json::array();

		for (const auto &p : s.points)
			pts.push_back(point_json(r, p));
		j["sections"][s.name] = { { "title", s.title }, { "unit", s.unit },
					  { "higher_is_better", s.higher_is_better },
					  { "points", pts } };
	}
	for (const auto &x : r.crossovers)
		j["crossover"].push_back({ { "memory", x.memory }, { "method", x.method },
					   { "size", x.size ? json(x.size) : json(nullptr) } });
	for (const auto &k : r.skipped)
		j["skipped"].push_back(
			{ { "section", k.section }, { "method", k.method }, { "reason", k.reason } });
	return j.dump(2) + "\n";
}

} // namespace bench
