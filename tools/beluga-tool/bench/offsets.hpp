// SPDX-License-Identifier: Apache-2.0
// Description: where each access goes - sequential, uniform random or
// Zipf-skewed block offsets inside a span of memory.
#ifndef BELUGA_TOOL_BENCH_OFFSETS_HPP
#define BELUGA_TOOL_BENCH_OFFSETS_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bench {

const std::vector<std::string> &pattern_names();

// The offsets one thread visits.  Random and Zipf offsets are drawn up front
// into a table that is then cycled, so random-number generation stays out of
// the timed loop; sequential offsets are computed (a table would not fit).
class Offsets {
public:
	// Thread @t of @nthreads: sequential threads walk their own share of
	// @span; random and Zipf threads draw from all of it (Zipf rank r is
	// block r, so the hot blocks sit together, as without interleaving).
	Offsets(const std::string &pattern, std::size_t span, std::size_t block, unsigned t,
		unsigned nthreads, double theta, std::uint64_t seed);

	std::size_t next()
	{
		if (table_.empty()) {
			std::size_t o = base_ + pos_;

			pos_ += block_;
			if (pos_ + block_ > len_)
				pos_ = 0;
			return o;
		}
		std::size_t o = table_[i_];

		i_ = (i_ + 1) & (table_.size() - 1);
		return o;
	}

private:
	std::size_t block_, base_ = 0, len_ = 0, pos_ = 0, i_ = 0;
	std::vector<std::size_t> table_;
};

} // namespace bench

#endif // BELUGA_TOOL_BENCH_OFFSETS_HPP
