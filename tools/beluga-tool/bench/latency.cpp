// SPDX-License-Identifier: Apache-2.0
// Description: the latency test - nanoseconds per dependent load against the
// working-set size.  Small working sets show the caches; working sets well
// past the last-level cache show the memory itself (the paper's queue-depth-1
// latency).
#include "chase.hpp"
#include "runner.hpp"

namespace bench {

static constexpr std::size_t kSteps = 1024;	// loads per timed operation

double chase_ns(const Config &cfg, Memory &m, std::size_t ws)
{
	auto t = run_timed(cfg, 1, [&](unsigned) -> OpFn {
		void *p = build_chase(m.data, ws, cfg.seed);

		return [p]() mutable {
			p = chase(p, kSteps);
			return kSteps * 64;
		};
	});
	return t.seconds_per_op / kSteps * 1e9;
}

void run_latency(Context &c)
{
	Section &s = add_section(c, "latency", "Latency: dependent loads (pointer chase, QD1)",
				 "ns", false);

	for (auto ws : c.cfg.chase_sizes) {
		Point p;

		p.op = "chase";
		p.size = ws;
		measure(c, s, p, [&](Memory &m) { return chase_ns(c.cfg, m, ws); });
	}
}

} // namespace bench
