// SPDX-License-Identifier: Apache-2.0
// Description: the bandwidth tests.
//  bandwidth: GB/s of read, write and copy against the access size, one
//             thread and all threads, sequential - the paper's Fig. 6 axes.
//  methods:   every access method at one size - what each coherence
//             technique costs in throughput.
//  patterns:  sequential, random and Zipf(0.99) accesses of 64 B and 16 KiB
//             by 1..N threads - the paper's skewed-access experiment (#3).
#include "access.hpp"

namespace bench {

void run_bandwidth(Context &c)
{
	Section &s = add_section(c, "bandwidth", "Bandwidth by access size (sequential)",
				 "GB/s", true);
	std::vector<unsigned> counts{ 1 };

	if (c.cfg.threads.back() > 1)
		counts.push_back(c.cfg.threads.back());
	for (const char *op : { "read", "write", "copy" })
		for (unsigned n : counts)
			for (auto size : c.cfg.sizes)
				measure_access(c, s, { &default_method(op), "seq", size, n });
}

void run_methods(Context &c)
{
	Section &s = add_section(c, "methods", "Access methods (sequential, one thread)",
				 "GB/s", true);

	for (const auto &name : c.cfg.methods)
		measure_access(c, s, { find_method(name), "seq", c.cfg.method_size, 1 });
}

void run_patterns(Context &c)
{
	Section &s = add_section(c, "patterns", "Access patterns and threads (reads)", "GB/s",
				 true);

	for (auto size : c.cfg.pattern_sizes)
		for (const auto &pattern : c.cfg.patterns)
			for (unsigned n : c.cfg.threads)
				measure_access(c, s, { &default_method("read"), pattern, size, n });
}

} // namespace bench
