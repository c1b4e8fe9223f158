// SPDX-License-Identifier: Apache-2.0
// Description: the timed loop every measurement shares - N pinned threads
// start together, warm up, repeat one operation for the configured time and
// report their combined throughput and the time of one operation.
#ifndef BELUGA_TOOL_BENCH_RUNNER_HPP
#define BELUGA_TOOL_BENCH_RUNNER_HPP

#include <cstddef>
#include <functional>

#include "bench.hpp"

namespace bench {

// One operation; returns the bytes it moved.
using OpFn = std::function<std::size_t()>;
// Builds thread @t's operation, on that thread (so its tables are local).
using MakeOp = std::function<OpFn(unsigned t)>;

struct Timing {
	double bytes_per_s = 0;		// sum over threads
	double seconds_per_op = 0;	// mean over threads
};

Timing run_timed(const Config &cfg, unsigned nthreads, const MakeOp &make_op);

// Pin the calling thread to the @i-th CPU it may run on (modulo their count).
void pin_to_cpu(unsigned i);

} // namespace bench

#endif // BELUGA_TOOL_BENCH_RUNNER_HPP
