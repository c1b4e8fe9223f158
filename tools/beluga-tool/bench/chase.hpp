// SPDX-License-Identifier: Apache-2.0
// Description: pointer chasing - a chain of dependent loads through a
// working set in random order, so each load waits for the one before it
// (queue depth 1) and neither the prefetcher nor out-of-order execution can
// hide the memory's latency.
#ifndef BELUGA_TOOL_BENCH_CHASE_HPP
#define BELUGA_TOOL_BENCH_CHASE_HPP

#include <cstddef>
#include <cstdint>

namespace bench {

// Links the 64-byte lines of [base, base + len) into one random cycle and
// returns its first line.
void *build_chase(std::byte *base, std::size_t len, std::uint64_t seed);

// Follows @steps links from @p; returns where it stopped.
void *chase(void *p, std::size_t steps);

} // namespace bench

#endif // BELUGA_TOOL_BENCH_CHASE_HPP
