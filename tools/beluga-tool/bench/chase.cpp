// SPDX-License-Identifier: Apache-2.0
// Description: pointer-chase chains.  Sattolo's shuffle gives one cycle
// through every line, so a chase never settles into a short loop that fits
// in a cache smaller than the working set.
#include "chase.hpp"

#include <numeric>
#include <random>
#include <vector>

#include "kernels.hpp"

namespace bench {

void *build_chase(std::byte *base, std::size_t len, std::uint64_t seed)
{
	std::size_t n = len / 64;
	std::vector<std::uint32_t> order(n);
	std::mt19937_64 rng(seed);

	std::iota(order.begin(), order.end(), 0u);
	for (std::size_t i = n - 1; i > 0; i--) {	// Sattolo: j < i, one cycle
		std::uniform_int_distribution<std::size_t> d(0, i - 1);

		std::swap(order[i], order[d(rng)]);
	}
	for (std::size_t i = 0; i < n; i++) {
		std::byte *from = base + static_cast<std::size_t>(order[i]) * 64;
		std::byte *to = base + static_cast<std::size_t>(order[(i + 1) % n]) * 64;

		*reinterpret_cast<void **>(from) = to;
	}
	return base + static_cast<std::size_t>(order[0]) * 64;
}

void *chase(void *p, std::size_t steps)
{
	for (std::size_t i = 0; i < steps; i++)
		p = chase_step(p);
	return p;
}

} // namespace bench
