// SPDX-License-Identifier: Apache-2.0
// Fingerprint checks: normalization (defaults, derived payload size) and the
// field-by-field comparison that names what differs.
#pragma once

#include <beluga/kvcache.h>

namespace bkv {

// Check @in and fill @out with its canonical form (payload_bytes computed
// for LAYOUT_KV_BLOCK, tp_size 0 -> 1).  0 or -EINVAL with a message.
int fingerprint_normalize(const beluga_kvc_fingerprint &in, beluga_kvc_fingerprint &out);
// 0 if equal, else -BELUGA_KVC_EFINGERPRINT with a message naming the field.
int fingerprint_compare(const beluga_kvc_fingerprint &cache, const beluga_kvc_fingerprint &mine);

} // namespace bkv
