// SPDX-License-Identifier: Apache-2.0
// Cache-line maintenance and fences: the only place the store touches CPU
// cache instructions.  Backed by libbeluga's primitives (beluga_writeback,
// beluga_flush, beluga_fence_*) when the library is built with libbeluga,
// by a small built-in copy of them otherwise (platform.cpp).
#pragma once

#include <cstddef>

namespace bkv::cpu {

// Push this host's modified lines of a range to memory (clwb, else clflushopt).
void writeback(const void *p, size_t len);
// Drop this host's copies of a range so the next loads come from memory
// (clflushopt/clflush), and order them before later loads.
void invalidate(const void *p, size_t len);
void fence_store();
void fence_full();
// Which instructions writeback/invalidate use, for logs and tests.
const char *method();

} // namespace bkv::cpu
