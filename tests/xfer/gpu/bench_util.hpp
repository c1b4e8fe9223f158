// SPDX-License-Identifier: Apache-2.0
// What the GPU benchmarks share: best-of-N event timing on a stream, GB/s,
// and the rows of the JSON report.
#pragma once

#include "gpu_util.hpp"

#include <cuda_runtime.h>

#include <functional>
#include <string>

namespace beluga::xfer::gpu_test {

struct BenchReport {
	int reps;	  // timed repetitions after one warm-up
	std::string json; // rows of the report's JSON array

	void row(const std::string &r)
	{
		if (!json.empty())
			json += ",\n";
		json += "    " + r;
	}

	// Best-of-reps time in ms of @enqueue on @s (one warm-up first).
	double time_ms(cudaStream_t s, const std::function<void()> &enqueue) const
	{
		cudaEvent_t a, b;
		check(cudaEventCreate(&a), "cudaEventCreate");
		check(cudaEventCreate(&b), "cudaEventCreate");
		float best = 0;
		for (int i = 0; i <= reps; i++) {
			check(cudaEventRecord(a, s), "record");
			enqueue();
			check(cudaEventRecord(b, s), "record");
			check(cudaEventSynchronize(b), "sync");
			float ms = 0;
			check(cudaEventElapsedTime(&ms, a, b), "elapsed");
			if (i > 0 && (best == 0 || ms < best))
				best = ms;
		}
		cudaEventDestroy(a);
		cudaEventDestroy(b);
		return best;
	}
};

inline double gbps(double bytes, double ms) { return ms > 0 ? bytes / (ms * 1e-3) / 1e9 : 0; }

} // namespace beluga::xfer::gpu_test
