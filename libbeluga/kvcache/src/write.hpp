// SPDX-License-Identifier: Apache-2.0
// The write path shared by put (put.cpp: copy from a caller buffer) and
// reserve/commit (reserve.cpp: the caller writes into the slot itself).
// Both store a block the same way:
//   exists?  -> one index lookup (any host): a cached key is not stored again
//   claim    -> a reservation log entry, then a slot (RESERVED, generation
//               odd, flushed), evicting first above the high watermark
//   (payload written and made visible: the callers differ here)
//   publish  -> descriptor committed (key, checksum, length, even
//               generation, PUBLISHED, flushed), index entry (flushed),
//               the writer lets go of the slot, the log entry is cleared
#pragma once

#include "internal.hpp"

namespace bkv {

// A slot being written: its log entry, the slot and its (odd) generation.
struct Claim {
	uint32_t resv = 0;
	uint32_t slot = 0;
	uint64_t gen = 0;
};

// @key is cached already (by any host): counted as put_exists.
bool write_exists(beluga_kvc *kv, const uint8_t key[32]);

// Claim a slot with log entry @c.resv (taken by the caller, given back by
// it on failure).  0, or -ENOSPC (counted, beluga_kvc_last_error() says
// why).  @reclaimed: dead writers were already reclaimed during this batch.
int write_claim(beluga_kvc *kv, Claim &c, bool &reclaimed);

// Publish the written slot of @c under @key.  0 stored; BELUGA_KVC_EXISTS
// another process of this host stored the key meanwhile (this copy is
// retired); -ENOSPC the index is full.  The log entry is cleared either way
// (the caller gives it back).
int write_publish(beluga_kvc *kv, const uint8_t key[32], const Claim &c, uint64_t sum,
		  uint64_t len);

} // namespace bkv
