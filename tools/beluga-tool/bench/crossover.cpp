// SPDX-License-Identifier: Apache-2.0
// Description: the crossover test - the paper's guideline O4 (load/store for
// small transfers, a bulk copy engine for large ones).  It times one copy
// from local DRAM into the memory (the direction of a KV-cache offload) with
// memcpy and with libbeluga's bulk copies, for every access size, and
// reports per memory the size from which each bulk copy stays faster.  The
// paper's bulk engine is DSA; where there is none, dsa-copy is skipped.
#include <algorithm>
#include <vector>

#include "access.hpp"
#include "offsets.hpp"

namespace bench {

namespace {

const char *const kMethods[] = { "memcpy", "copy_nt", "copy_bulk", "dsa-copy" };

double copy_us(const Config &cfg, Memory &m, const Memory &src, const Method &meth,
	       std::size_t size)
{
	auto t = run_timed(cfg, 1, [&](unsigned) -> OpFn {
		auto off = std::make_shared<Offsets>("seq", m.size, size, 0, 1, 0, 0);

		return [&, off, sink = std::uint64_t{ 0 }]() mutable {
			meth.fn(m.data + off->next(), src.data, size, sink);
			return size;
		};
	});
	return t.seconds_per_op * 1e6;
}

// The smallest size at which @bulk beats memcpy and keeps winning at least
// as many of the larger sizes as it loses (one noisy point neither makes
// nor breaks a crossover); 0 when there is none.
std::uint64_t crossover(const Section &s, std::size_t mem, const std::string &bulk)
{
	std::vector<std::pair<std::uint64_t, bool>> wins;	// by size, ascending

	for (const auto &p : s.points) {
		if (p.method != bulk || !p.skipped.empty())
			continue;
		auto base = std::find_if(s.points.begin(), s.points.end(), [&](const Point &q) {
			return q.method == "memcpy" && q.size == p.size;
		});
		wins.emplace_back(p.size, base != s.points.end() &&
						  p.value[mem] < base->value[mem]);
	}
	for (std::size_t i = 0; i < wins.size(); i++) {
		auto won = std::count_if(wins.begin() + static_cast<std::ptrdiff_t>(i), wins.end(),
					 [](const auto &w) { return w.second; });

		if (wins[i].second && 2 * static_cast<std::size_t>(won) >= wins.size() - i)
			return wins[i].first;
	}
	return 0;
}

} // namespace

void run_crossover(Context &c)
{
	Section &s = add_section(c, "crossover",
				 "Copy into the memory: load/store vs bulk copy (O4)", "us", false);
	std::unique_ptr<Memory> src;	// local DRAM source, made on first use

	for (auto size : c.cfg.sizes)
		for (const char *name : kMethods) {
			Access a{ find_method(name), "seq", size, 1 };
			std::string why = skip_reason(*a.method);

			if (!why.empty()) {
				skip(c, s, access_point(a), why);
				continue;
			}
			measure(c, s, access_point(a), [&](Memory &m) {
				if (!src)
					src = make_dram(c.cfg.sizes.back(), -1);
				return copy_us(c.cfg, m, *src, *a.method, size);
			});
		}
	if (!c.progress)
		return;
	for (std::size_t m = 0; m < c.mems.size(); m++)
		for (const char *bulk : { "copy_nt", "copy_bulk" })
			c.report.crossovers.push_back({ c.mems[m]->name, bulk,
							crossover(s, m, bulk) });
}

} // namespace bench
