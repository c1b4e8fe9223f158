// SPDX-License-Identifier: Apache-2.0
// Description: the coherence test - the paper's Table 4, CPU columns: how
// long one 16 KiB transfer takes with each way of making a write visible to
// another host (non-temporal stores, a flush after storing, uncached memory)
// and each way of not reading stale data (a flush before loading, uncached
// memory).  Plain store and load are listed as the incoherent reference.
// Blocks are visited sequentially through the whole buffer, so, as for a new
// KV block, the data is not already in this CPU's cache.
#include "access.hpp"

namespace bench {

namespace {

struct Row {
	const char *method;
	double paper_us;	// Table 4, CPU store / CPU load column (CXL)
};

const Row kRows[] = {
	{ "store", NAN },	     { "ntstore", 2.41 },	{ "store+clflush", 8.50 },
	{ "store+clflushopt", NAN }, { "store+clwb", NAN },	{ "uc-store", 281.56 },
	{ "dsa-write", 1.76 },	     { "load", NAN },		{ "flush+load", 5.98 },
	{ "uc-load", 166.49 },	     { "dsa-read", 2.12 },
};

} // namespace

void run_coherence(Context &c)
{
	Section &s = add_section(c, "coherence",
				 "Coherence methods: one transfer (paper Table 4, CPU)", "us",
				 false);

	for (const auto &row : kRows) {
		Access a{ find_method(row.method), "seq", c.cfg.coherence_size, 1 };
		Point p = access_point(a);
		std::string why = skip_reason(*a.method);

		p.paper = row.paper_us;
		if (!why.empty()) {
			skip(c, s, p, why);
			continue;
		}
		measure(c, s, p, [&](Memory &m) {
			return run_access(c.cfg, m, a).seconds_per_op * 1e6;
		});
	}
}

} // namespace bench
