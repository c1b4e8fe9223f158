// SPDX-License-Identifier: Apache-2.0
// The on-media format, version 3 (Documentation/kvcache-format.md is the
// normative description; keep the two in step).  Everything is little-endian,
// every structure is addressed by its offset from the region's start, and
// every cache line has exactly one writing host.
#pragma once

#include <beluga/kvcache.h>

#include <cstddef>
#include <cstdint>

namespace bkv {

constexpr uint64_t kLine = 64;
constexpr uint64_t kPage = 4096;
constexpr char kMagic[8] = {'B', 'E', 'L', 'U', 'G', 'A', 'K', 'V'};
constexpr uint64_t kReadyMagic = 0x59444145524b5642ull; // "BVKREADY"

// ---- Superblock: [0, 4096), written once by the formatting process. ----
struct Super {
	char magic[8];			// 0   "BELUGAKV"
	uint32_t version_major;		// 8
	uint32_t version_minor;		// 12
	uint64_t region_bytes;		// 16
	uint64_t created_ns;		// 24  CLOCK_REALTIME at format
	uint32_t max_hosts;		// 32
	uint32_t max_sessions;		// 36
	uint32_t max_pins;		// 40
	uint32_t max_batch;		// 44
	uint64_t slots_per_host;	// 48
	uint64_t buckets_per_host;	// 56
	uint64_t payload_bytes;		// 64
	uint64_t slot_stride;		// 72
	uint64_t host_area_off;		// 80  first host area
	uint64_t host_area_bytes;	// 88  per host
	uint64_t part_off;		// 96  first partition
	uint64_t part_bytes;		// 104 per host
	uint64_t index_off;		// 112 in a partition
	uint64_t desc_off;		// 120 in a partition
	uint64_t data_off;		// 128 in a partition
	uint64_t session_off;		// 136 in a host area
	uint64_t session_bytes;		// 144 per session
	uint64_t access_off;		// 152 in a host area
	uint64_t access_bytes;		// 160 per host area
	uint64_t capacity_slots;	// 168 eviction hook
	uint32_t high_wm_pct;		// 176 eviction hook
	uint32_t low_wm_pct;		// 180 eviction hook
	uint64_t pins_off;		// 184 in a session
	uint64_t summary_off;		// 192 in a partition (0: one host, no summaries)
	uint64_t summary_words;		// 200 counter words per summary (multiple of 4096)
	uint8_t pad0[256 - 208];
	beluga_kvc_fingerprint fp;	// 256
	uint8_t pad1[4080 - 256 - sizeof(beluga_kvc_fingerprint)];
	uint64_t header_sum;		// 4080 BKV-F64 of bytes [0, 4080)
	uint64_t reserved_sum;		// 4088 must be 0
};
static_assert(sizeof(beluga_kvc_fingerprint) == 320);
static_assert(offsetof(Super, fp) == 256);
static_assert(offsetof(Super, pins_off) == 184);
static_assert(offsetof(Super, summary_words) == 200);
static_assert(sizeof(Super) == 4080 + 16);

// The ready word lives alone in the superblock's second page so that the
// header checksum never covers it: [4096, 4160).
constexpr uint64_t kReadyOff = 4096;
// Format lock (beluga_kvc_format_once): the formatting process's identity,
// taken by compare-and-swap among the processes of the formatting host and
// re-read after the claim window (kvcache-format.md, "Formatting").
constexpr uint64_t kFormatLock = 4104;	// u64 machine id of the formatter (0: none)
constexpr uint64_t kFormatPid = 4112;	// u64 boot id of the formatter
constexpr uint64_t kHeaderBytes = 8192;

// ---- Host area (one per host, written only by that host). ----
// Line 0: control.
constexpr uint64_t kHostActive = 0;		// boot id of the latest attach (0: never)
constexpr uint64_t kHostSessionSeq = 8;		// session incarnation counter
constexpr uint64_t kHostCursor = 16;		// allocator's next-fit cursor
// Line 1: eviction (evict.cpp), written only by the host's own processes.
constexpr uint64_t kHostEvict = 64;
constexpr uint64_t kEvCapacity = kHostEvict + 0;	// usable slots (<= slots_per_host)
constexpr uint64_t kEvWatermarks = kHostEvict + 8;	// low_pct << 32 | high_pct
constexpr uint64_t kEvPolicy = kHostEvict + 16;		// on-media policy code (below)
constexpr uint64_t kEvHand = kHostEvict + 24;		// clock hand: positions taken so far
constexpr uint64_t kEvUsed = kHostEvict + 32;		// occupied slots (approximate)
constexpr uint64_t kEvRevs = kHostEvict + 40;		// tick the hand's current revolution
							// began << 32 | the previous one's
// On-media eviction policy codes (= the API's BELUGA_KVC_EVICT_*).
constexpr uint64_t kPolicyClock = 0;
constexpr uint64_t kPolicyNone = 1;
constexpr uint64_t kPolicyLru = 2;
// Lines 2..5: statistics, 32 counters of 8 bytes, in beluga_kvc_stats order.
constexpr uint64_t kHostStats = 128;
constexpr uint64_t kStatCount = 32;
// Line 6: the claim of this host index (host.cpp, kvcache-format.md "Host
// identity and liveness").  Written by the host holding the index (and, while
// claiming, by a host that found it free or dead: the claim protocol settles
// which one keeps it without cross-host atomics).
constexpr uint64_t kHostClaim = 384;
constexpr uint64_t kClMachine = kHostClaim + 0;	// holder's machine id (0: free)
constexpr uint64_t kClBoot = kHostClaim + 8;	// holder's boot id
constexpr uint64_t kClBeat = kHostClaim + 16;	// heartbeat counter
constexpr uint64_t kClClock = kHostClaim + 24;	// holder's CLOCK_MONOTONIC ms at that beat
constexpr uint64_t kClLease = kHostClaim + 32;	// u32 lease_ms, u32 served_by + 1 (0: itself)
constexpr uint64_t kClSince = kHostClaim + 40;	// holder's CLOCK_REALTIME ns at the claim (display)
// Line 7: the holder's name (NUL-terminated, at most 63 bytes), for messages.
constexpr uint64_t kHostName = 448;
constexpr uint64_t kNameBytes = 64;
constexpr uint64_t kHostFixed = 512; // sessions follow

// Session record (session_bytes each, from session_off).
constexpr uint64_t kSesLock = 0;	// 0 free, else (incarnation << 32) | pid
constexpr uint64_t kSesReclaimer = 8;	// lock word of a process reclaiming this session
constexpr uint64_t kSesBoot = 16;	// boot id of the owner's host boot
constexpr uint64_t kSesStart = 24;	// owner's start time (clock ticks since boot)
constexpr uint64_t kSesLease = 32;	// host clock (kClClock units, ms) until which other hosts honour its pins
constexpr uint64_t kSesPinsHwm = 40;	// pin entries ever used (scan bound)
constexpr uint64_t kSesResv = 64;	// max_batch u32 entries: slot + 1 being reserved (0: none)
// Pins at pins_off: max_pins entries of 16 bytes: {ref, gen}
//   ref = 1 << 63 | host << 32 | slot (0: unused).
constexpr uint64_t kPinValid = 1ull << 63;

// ---- Partition (one per host, written only by that host). ----
// Index (format 3.0): buckets_per_host lines, each with 5 entries (u64 at
// 8e: tag << 32 | slot + 1, 0 = empty), their 5 check words (u32 at 40 +
// 4e: the high half of the key's 64-bit index hash, the tag its low half)
// and a u32 control word at 60 whose bit 0 (overflow) says that some key
// homed here or earlier was placed in a later bucket: a lookup goes on to
// the next bucket only when it is set.  Overflow bits are never cleared.
// A prefix lookup answers from the bucket line alone (tag and check), so
// that another host's key costs one line, not a bucket and a descriptor.
constexpr uint64_t kEntryEmpty = 0;
constexpr unsigned kBucketEntries = 5;
constexpr uint64_t kBucketCheck = 40;
constexpr uint64_t kBucketCtl = 60;
constexpr uint32_t kBucketOverflow = 1;
// Buckets per slot, 2/5: 2 entries per slot, 40 % of them used when every
// slot holds a block.
inline uint64_t buckets_for(uint64_t slots) { return (2 * slots + 4) / 5; }

// Summary (caches of several hosts): a counting filter of the
// keys in the partition's index, so that other hosts' lookups skip the
// partitions that cannot hold a key (index.cpp, kvcache-format.md
// "Summary").  Line 0: u64 generation; lines 1..64: 512 u64 segment
// versions; then summary_words u64 words of 16 4-bit counters.
constexpr uint64_t kSumGen = 0;
constexpr uint64_t kSumSegs = kLine;
constexpr unsigned kSumSegments = 512;
constexpr uint64_t kSumWords = kLine + kSumSegments * 8;
constexpr uint64_t kSumWordAlign = 8 * kSumSegments; // words: a segment is whole lines

// Slot descriptor: one line per slot, from desc_off.
constexpr uint64_t kDescOwn = 0;	// state << 56 | session << 32 | incarnation
constexpr uint64_t kDescGen = 8;	// odd while being written, even when stable
constexpr uint64_t kDescKey = 16;	// 32 bytes
constexpr uint64_t kDescSum = 48;	// BKV-F64 of the payload
constexpr uint64_t kDescLen = 56;	// u32 length, u32 inserted (tick of the commit)
constexpr uint64_t kDescInserted = 60;

enum State : uint64_t {
	kFree = 0,
	kReserved = 1,	// being written by the owning session
	kPublished = 2, // owning session set until the index entry is in place
	kRetired = 3,	// removed; reusable once no pin names (slot, gen)
	kEvicting = 4,	// being evicted by the owning session (it checks pins first)
};

inline uint64_t own_word(uint64_t state, uint64_t session, uint64_t inc)
{
	return state << 56 | (session & 0xffffff) << 32 | (inc & 0xffffffff);
}
inline uint64_t own_state(uint64_t own) { return own >> 56; }
inline uint32_t own_session(uint64_t own) { return uint32_t(own >> 32) & 0xffffff; }
inline uint32_t own_inc(uint64_t own) { return uint32_t(own); }

inline uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// Statistics counter indices (beluga_kvc_stats field order).
enum Stat : unsigned {
	kStPuts, kStPutBytes, kStPutExists, kStPutNospace, kStGets, kStGetHits,
	kStGetMisses, kStGetBytes, kStChecksumFailures, kStLookups, kStLookupKeys,
	kStLookupHits, kStPins, kStUnpins, kStRemoves, kStDupRetracted,
	kStSessionsOpened, kStSessionsReclaimed, kStReservationsReclaimed,
	kStPinsReclaimed, kStEvictions, kStEvictScanned, kStEvictPinned, kStEvictRounds,
	kStNumUsed
};
static_assert(kStNumUsed <= kStatCount);
static_assert(sizeof(beluga_kvc_stats) == kStatCount * 8);

} // namespace bkv
