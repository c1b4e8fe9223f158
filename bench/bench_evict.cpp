// SPDX-License-Identifier: Apache-2.0
// The eviction section: hit rates of eviction policies on a shared-prefix
// trace against exact LRU.  The replay is kvc_evict_trace
// (tests/kvcache/kvc_evict_trace.cpp, where the trace and the policies are
// described), a program of the store's tests because it sets the store's
// clock to the request number through the store's test interface; bench/
// uses the public headers only.  CMake builds it beside beluga-bench, and
// this file runs it and turns its records into the section's table.
#include "bench.hpp"

#include <sys/wait.h>

#include <cstdio>
#include <sstream>

#ifndef BELUGA_EVICT_TRACE
#error "BELUGA_EVICT_TRACE: the path of kvc_evict_trace (bench/CMakeLists.txt)"
#endif

namespace bench {

namespace {

std::vector<std::string> fields(const std::string &line)
{
	std::vector<std::string> f;
	std::istringstream in(line);
	for (std::string s; std::getline(in, s, '\t');)
		f.push_back(s);
	return f;
}

} // namespace

void run_eviction(const Options &o, Report &rep)
{
	std::string cmd = std::string("'") + BELUGA_EVICT_TRACE + "' --requests " + (o.quick ? "3000" : "20000");
	FILE *p = popen(cmd.c_str(), "r");
	if (!p)
		throw std::runtime_error("cannot run " + cmd);
	std::vector<Row> *rows = nullptr;
	double requested = 0, lru = 0;
	char buf[1024];
	std::string bad;
	while (std::fgets(buf, sizeof(buf), p)) {
		std::string line(buf);
		if (!line.empty() && line.back() == '\n')
			line.pop_back();
		if (line.empty() || line[0] == '#')
			continue;
		auto f = fields(line);
		if (f.size() == 5 && f[0] == "trace") {
			requested = std::stod(f[2]);
			rows = &rep.section(fmt("Eviction: hit rate on the shared-prefix trace (%s requests, "
						"%s blocks, %s distinct; an infinite cache hits %.1f %%)",
						f[1].c_str(), f[2].c_str(), f[3].c_str(),
						100 * std::stod(f[4]) / requested));
		} else if (f.size() == 6 && f[0] == "hits" && rows) {
			double rate = std::stod(f[4]) / requested;
			if (f[5] == "baseline")
				lru = rate;
			rows->push_back({fmt("capacity %.1f %% (%s blocks): %s", std::stod(f[1]) / 10,
					     f[2].c_str(), f[3].c_str()),
					 fmt("%.1f %%", 100 * rate), fmt("LRU %.1f %%", 100 * lru),
					 ratio(rate, lru), f[5]});
		} else if (bad.empty()) {
			bad = line;
		}
	}
	int status = pclose(p);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status))
		throw std::runtime_error(cmd + " failed (wait status " + std::to_string(status) +
					 "); its messages are above");
	if (!rows || !bad.empty())
		throw std::runtime_error(cmd + ": unexpected output" + (bad.empty() ? "" : ": " + bad));
}

} // namespace bench
