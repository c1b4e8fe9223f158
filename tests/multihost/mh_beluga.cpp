// SPDX-License-Identifier: Apache-2.0
#include "mh_beluga.hpp"

#include <fstream>

namespace beluga::mh {

beluga::Pool open_kernel_pool() {
  beluga::PoolOptions o;
  o.backend = beluga::Backend::Kernel;
  return beluga::Pool::open(o);
}

std::optional<std::uint32_t> range_source(const beluga::Pool& pool, const std::string& name) {
  std::optional<std::uint32_t> found;
  for (const auto& s : pool.sources()) {
    if (s.kind != BELUGA_SOURCE_KIND_RANGE) continue;
    if (!name.empty()) {
      std::ifstream f("/sys/kernel/beluga/sources/" + std::to_string(s.index) + "/name");
      std::string line;
      std::getline(f, line);
      if (line != name) continue;
    }
    found = s.index;
  }
  return found;
}

}  // namespace beluga::mh
