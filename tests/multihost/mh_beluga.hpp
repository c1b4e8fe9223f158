// SPDX-License-Identifier: Apache-2.0
//
// What the multi-host driver tests (mh_shared.cpp, mh_source.cpp) share on
// top of the rendezvous: the driver's pool, the range source the profile
// gave it (the shared CXL device), and a region's mapping as pattern words.
#pragma once

#include <beluga/beluga.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "rendezvous.hpp"

namespace beluga::mh {

// The kernel backend's pool (/dev/beluga).
beluga::Pool open_kernel_pool();

// The index of the range source named @name (sysfs sources/N/name), or with
// @name empty of the last range source; none when there is none.
std::optional<std::uint32_t> range_source(const beluga::Pool& pool, const std::string& name = {});

// A mapping's bytes as pattern words (fill(), check()).
inline Words words(const beluga::Mapping& m) {
  return {static_cast<volatile std::uint64_t*>(m.data()), m.size() / 8};
}

}  // namespace beluga::mh
