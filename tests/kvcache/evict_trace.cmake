# SPDX-License-Identifier: Apache-2.0
# kvc_evict_trace (kvc_evict_trace.cpp): the eviction section of `make bench`.
# Included by tests/kvcache/CMakeLists.txt (built and run small by make
# check, so it keeps working) and by bench/CMakeLists.txt (built optimized
# beside beluga-bench, which runs it).  It sets the store's clock through the
# store's test interface (kvcache_test.h), which bench/ may not include.
find_package(CLI11 CONFIG REQUIRED)
add_executable(kvc_evict_trace ${CMAKE_CURRENT_LIST_DIR}/kvc_evict_trace.cpp)
target_include_directories(kvc_evict_trace PRIVATE
  ${CMAKE_CURRENT_LIST_DIR} $<TARGET_PROPERTY:beluga_kvcache,SOURCE_DIR>/src)
target_link_libraries(kvc_evict_trace PRIVATE beluga_kvcache CLI11::CLI11)
