// SPDX-License-Identifier: Apache-2.0
// Test-only interface of the store (not installed, not part of the API):
// omission points for the non-coherent simulation, and event hooks that let
// the stress test know whether a process it kills is mid-write or holds pins.
#pragma once

#include <beluga/kvcache.h>

#include <cstdint>

namespace bkv::test {

// Omit one flush/invalidate point (view.hpp Point names, e.g. "inval_payload";
// "none" or "" for none; NULL for the process default: $BELUGA_KVC_TEST_OMIT,
// else the build's BELUGA_KVC_OMIT_POINT).  Process-wide.  false if unknown.
bool set_omit(const char *name);
const char *omitted();
// Names of every omission point, NULL-terminated.
const char *const *points();

enum Event {
	write_begin = 1, write_end, pinned, unpinned, published, evict_checked,
	format_half, // beluga_kvc_format: superblock written, ready word not yet
	formatted,   // beluga_kvc_format: done
	removing,    // beluga_kvc_remove: the index entry is gone, the slot not yet retired
	indexed,     // put: the index entry is in place, its check word not yet written
};
// Called (from any thread) at those events with a count; NULL to stop.
void set_hook(void (*fn)(int event, int count));

// Freeze the access/insertion clock at @tick (ms since format + 1), so that
// eviction tests decide by what they read, not by timing; 0: the real clock.
void set_tick(uint32_t tick);

// Several hosts.  Freeze the monotonic clock (ms; 0: the real one) that
// heartbeats, leases and liveness are judged by.
void set_mono(uint64_t ms);
uint64_t mono();
// Shift what this process reads of CLOCK_REALTIME by @ns (a host whose
// clock is off); 0: the real clock.
void set_realtime_skew(int64_t ns);
// Replace every wait of the claim protocol and of takeover by @fn(ms) (NULL:
// really wait): a test decides what other hosts do meanwhile (beat, claim)
// and advances the frozen clock itself.
void set_wait(void (*fn)(uint64_t ms));
// The machine id, boot id and name the next attaches take (0/NULL: the real
// ones), so that one process can play several machines.
void set_identity(uint64_t machine, uint64_t boot, const char *name);
// Advance @kv's host heartbeat now and renew its lease if due (what the
// keeper thread does).
void beat(beluga_kvc *kv);
// The host of @kv crashes: its handle goes without closing its session
// (pins, reservations and lease stay as they were) and it beats no more.
void crash(beluga_kvc *kv);
// Offset of host @h's claim line (kvcache-format.md).
uint64_t claim_offset(beluga_kvc *kv, uint32_t h);

// Single-writer violations the simulation saw (dirty lines of another host).
uint64_t sim_violations(beluga_kvc *kv);
// The region as other hosts see it, and this handle's view of it.
uint8_t *shared_ptr(beluga_kvc *kv, uint64_t off);
uint8_t *view_ptr(beluga_kvc *kv, uint64_t off);
// Offset of a slot's payload in partition @host.
uint64_t payload_offset(beluga_kvc *kv, uint32_t host, uint32_t slot);

} // namespace bkv::test
