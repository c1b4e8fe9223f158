// SPDX-License-Identifier: Apache-2.0
// Description: one bandwidth measurement - an access method applied to
// blocks of one size at offsets from one pattern, by N threads.
#ifndef BELUGA_TOOL_BENCH_ACCESS_HPP
#define BELUGA_TOOL_BENCH_ACCESS_HPP

#include "bench.hpp"
#include "methods.hpp"
#include "runner.hpp"

namespace bench {

struct Access {
	const Method *method;
	std::string pattern = "seq";
	std::size_t size = 0;
	unsigned threads = 1;
};

// Reads and writes use the whole buffer; copies go from its first half to
// its second half (both ends in the memory under test, like STREAM copy).
Timing run_access(const Config &cfg, Memory &m, const Access &a);

// The point (op, method, pattern, threads, size) describing @a.
Point access_point(const Access &a);

// Measures @a on every memory, or records it as skipped.
void measure_access(Context &c, Section &s, const Access &a);

} // namespace bench

#endif // BELUGA_TOOL_BENCH_ACCESS_HPP
