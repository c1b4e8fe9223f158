// SPDX-License-Identifier: Apache-2.0
// The calling thread's last error sentence (beluga_kvc_last_error()).
#pragma once

namespace bkv {

// Record a printf-style sentence for the calling thread and return @code.
int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Clear it (successful calls leave the previous sentence alone).
const char *last_error();

} // namespace bkv
