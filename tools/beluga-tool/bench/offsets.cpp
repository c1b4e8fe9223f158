// SPDX-License-Identifier: Apache-2.0
// Description: access patterns.  Zipf samples come from the inverse of the
// cumulative distribution (binary search), which is exact for any theta and
// cheap enough because it runs once per thread before timing starts.
#include "offsets.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

namespace bench {

static constexpr std::size_t kTable = 1 << 14;	// power of two: cheap wrap

const std::vector<std::string> &pattern_names()
{
	static const std::vector<std::string> v = { "seq", "random", "zipf" };

	return v;
}

static std::vector<double> zipf_cdf(std::size_t n, double theta)
{
	std::vector<double> cdf(n);
	double sum = 0;

	for (std::size_t r = 0; r < n; r++) {
		sum += 1.0 / std::pow(static_cast<double>(r + 1), theta);
		cdf[r] = sum;
	}
	for (auto &c : cdf)
		c /= sum;
	return cdf;
}

static std::vector<std::size_t> draw(const std::string &pattern, std::size_t blocks,
				     double theta, std::mt19937_64 &rng)
{
	std::vector<std::size_t> v(kTable);

	if (pattern == "random") {
		std::uniform_int_distribution<std::size_t> d(0, blocks - 1);

		for (auto &x : v)
			x = d(rng);
		return v;
	}
	auto cdf = zipf_cdf(blocks, theta);
	std::uniform_real_distribution<double> u(0.0, 1.0);

	for (auto &x : v) {
		auto it = std::lower_bound(cdf.begin(), cdf.end(), u(rng));

		x = std::min<std::size_t>(static_cast<std::size_t>(it - cdf.begin()), blocks - 1);
	}
	return v;
}

Offsets::Offsets(const std::string &pattern, std::size_t span, std::size_t block, unsigned t,
		 unsigned nthreads, double theta, std::uint64_t seed)
	: block_(block)
{
	std::size_t blocks = span / block;

	if (blocks == 0)
		throw std::invalid_argument("access size larger than the buffer");
	if (pattern == "seq") {
		std::size_t share = blocks / nthreads;

		// Fewer blocks than threads: every thread walks the whole span.
		len_ = (share ? share : blocks) * block;
		base_ = share ? t * len_ : 0;
		return;
	}
	std::mt19937_64 rng(seed * 1000003 + t);

	table_ = draw(pattern, blocks, theta, rng);
	for (auto &x : table_)
		x *= block;
}

} // namespace bench
