// SPDX-License-Identifier: Apache-2.0
// Description: bandwidth measurements shared by the bandwidth, methods and
// patterns tests.
#include "access.hpp"

#include <string>

#include "offsets.hpp"

namespace bench {

Timing run_access(const Config &cfg, Memory &m, const Access &a)
{
	bool copy = std::string(a.method->op) == "copy";
	std::size_t span = copy ? m.size / 2 : m.size;

	return run_timed(cfg, a.threads, [&, span, copy](unsigned t) -> OpFn {
		auto off = std::make_shared<Offsets>(a.pattern, span, a.size, t, a.threads,
						     cfg.zipf_theta, cfg.seed);
		std::byte *base = m.data;
		std::size_t len = a.size;
		AccessFn fn = a.method->fn;

		return [=, sink = std::uint64_t{ t }]() mutable {
			std::size_t o = off->next();

			if (copy)
				fn(base + span + o, base + o, len, sink);
			else
				fn(base + o, nullptr, len, sink);
			return len;
		};
	});
}

Point access_point(const Access &a)
{
	Point p;

	p.op = a.method->op;
	p.method = a.method->name;
	p.pattern = a.pattern;
	p.threads = a.threads;
	p.size = a.size;
	return p;
}

void measure_access(Context &c, Section &s, const Access &a)
{
	std::string why = skip_reason(*a.method);

	if (!why.empty())
		return skip(c, s, access_point(a), why);
	measure(c, s, access_point(a),
		[&](Memory &m) { return run_access(c.cfg, m, a).bytes_per_s / 1e9; });
}

} // namespace bench
