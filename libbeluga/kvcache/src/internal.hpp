// SPDX-License-Identifier: Apache-2.0
// The handle and the functions the store's files share.
#pragma once

#include <beluga/kvcache.h>

#include "checksum.hpp"
#include "copier.hpp"
#include "format.hpp"
#include "view.hpp"

#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace bkv {

// Offsets of everything, from the (validated) superblock.
struct Geo {
	uint64_t region = 0, hosts = 0, sessions = 0, pins = 0, batch = 0;
	uint64_t slots = 0, buckets = 0, payload = 0, stride = 0;
	uint64_t host_off = 0, host_bytes = 0, part_off = 0, part_bytes = 0;
	uint64_t index_off = 0, desc_off = 0, data_off = 0;
	uint64_t session_off = 0, session_bytes = 0, pins_off = 0;
	uint64_t access_off = 0, access_bytes = 0;
	uint64_t summary_off = 0, summary_words = 0; // 0: no summaries (one host)

	uint64_t host(uint64_t h) const { return host_off + h * host_bytes; }
	uint64_t stat(uint64_t h, unsigned i) const { return host(h) + kHostStats + 8 * i; }
	uint64_t session(uint64_t h, uint64_t s) const
	{
		return host(h) + session_off + s * session_bytes;
	}
	uint64_t resv(uint64_t h, uint64_t s, uint64_t i) const
	{
		return session(h, s) + kSesResv + 4 * i;
	}
	uint64_t pin(uint64_t h, uint64_t s, uint64_t i) const
	{
		return session(h, s) + pins_off + 16 * i;
	}
	uint64_t evict(uint64_t h, uint64_t field) const { return host(h) + field; }
	uint64_t access(uint64_t h, uint64_t p, uint64_t slot) const
	{
		return host(h) + access_off + 4 * (p * slots + slot);
	}
	uint64_t part(uint64_t p) const { return part_off + p * part_bytes; }
	uint64_t bucket(uint64_t p, uint64_t b) const { return part(p) + index_off + 64 * b; }
	uint64_t desc(uint64_t p, uint64_t slot) const { return part(p) + desc_off + 64 * slot; }
	uint64_t summary(uint64_t p, uint64_t field) const { return part(p) + summary_off + field; }
	uint64_t summary_word(uint64_t p, uint64_t w) const
	{
		return part(p) + summary_off + kSumWords + 8 * w;
	}
	uint64_t data(uint64_t p, uint64_t slot) const
	{
		return part(p) + data_off + stride * slot;
	}
};

// Sizing for a new cache (layout.cpp).  0 or -ENOSPC.
int compute_geometry(uint64_t size, const beluga_kvc_config &cfg, uint64_t payload, Geo &g);

// Where a key was found.
struct Found {
	uint32_t host = 0, slot = 0;
	uint64_t gen = 0, sum = 0, len = 0;
};

// Test hook events (kvcache_test.h).
enum HookEvent {
	kHookWriteBegin = 1, kHookWriteEnd, kHookPinned, kHookUnpinned, kHookPublished,
	kHookEvictChecked, // an eviction victim was found unpinned; it is about to go
	kHookFormatHalf,   // format: the superblock is written, the ready word not yet
	kHookFormatted,	   // format: done (count: 1)
	kHookRemoving,	   // a removal dropped the index entry; the slot is not yet retired
	kHookIndexed,	   // an insertion's entry is in place; its check word is not yet written
};
using HookFn = void (*)(int event, int count);
extern HookFn g_hook;
extern std::atomic<uint32_t> g_test_tick; // tests: a fixed tick_now() (0: the clock)
// Tests: a fixed monotonic clock (ms, 0: the real one), a function that
// replaces the claim protocol's waits, and an identity for the next attaches.
extern std::atomic<uint64_t> g_test_mono;
extern std::atomic<int64_t> g_test_skew; // tests: added to CLOCK_REALTIME
extern void (*g_test_wait)(uint64_t ms);
struct TestIdentity {
	uint64_t machine = 0, boot = 0; // 0: the real ones
	char name[64] = {};
};
extern TestIdentity g_test_identity;
inline void hook(int ev, int n)
{
	if (g_hook)
		g_hook(ev, n);
}

} // namespace bkv

struct beluga_kvc {
	std::unique_ptr<bkv::View> view;
	bkv::Geo g;
	beluga_kvc_fingerprint fp{};
	uint32_t host = 0;
	uint64_t created_ns = 0;
	bool observer = false; // BELUGA_KVC_ATTACH_OBSERVE: no session, no writes
	uint64_t rng = 0;      // sampled LRU's candidates (under mu)

	// This process's identity and session.
	uint32_t pid = 0;
	uint64_t boot = 0, start = 0;
	uint64_t machine = 0;	 // stable machine id (host.cpp)
	char name[64] = {};	 // this host's name, for other hosts' messages
	bool internal = false;	 // beluga_kvc_take_over's helper handle: no claim, no beats
	// Our host index was claimed by another host (we stalled for longer
	// than our lease and were taken over): every call that writes refuses.
	std::atomic<bool> lost{false};
	std::mutex beat_mu;

	// What this handle saw of other hosts' heartbeats (host.cpp).
	struct Seen {
		bool valid = false, moved = false;
		uint64_t machine = 0, boot = 0, beat = 0;
		uint64_t at_ms = 0; // our monotonic clock when it last changed (or first looked)
	};
	std::mutex seen_mu;
	Seen seen[BELUGA_KVC_MAX_HOSTS];
	uint32_t session = 0;
	uint64_t lock_word = 0; // (incarnation << 32) | pid
	uint64_t lease_ns = 0;
	uint64_t nt_min = 0;

	// Pin and reservation entries of our session handed out to callers.
	std::mutex mu;
	std::vector<uint32_t> free_pins, free_resv;
	uint64_t pins_hwm = 0;
	// Reservation entries held by beluga_kvc_reserve() callers across calls
	// (reserve.cpp): per entry 0 not, 1 held, 2 being committed or aborted.
	std::vector<uint8_t> resv_held;
	uint32_t resv_held_n = 0;

	// Slots this process's evictions retired, claimed first by its next
	// puts.  Only a hint, private to the process: the claim's CAS on the
	// descriptor decides, whoever else took the slot meanwhile.
	std::mutex freed_mu;
	std::vector<uint32_t> freed;

	bkv::Copier copier;

	// This handle's copy of the other hosts' summaries (index.cpp; caches
	// of several hosts): for counter word w of host h, bit i of
	// bits[w * stride + h] is set when counter i is non-zero, so one line
	// holds a key's bits for every host (stride: hosts, rounded up to a
	// multiple of 8 from 8 hosts on, so that a key's row is whole 16-byte
	// vectors; the padding stays 0).  gen[h] and seg[h * 512 + s] are the
	// generation and segment versions the copy reflects.  Refreshed under
	// sum_mu; read without a lock.  Mapped with transparent huge pages
	// where the kernel gives them: lookups read it at random.
	struct SumCopy {
		uint16_t *bits = nullptr; // mmap'ed, zero: words * stride
		uint32_t stride = 0;
		void *map = nullptr;
		size_t map_len = 0;
		std::atomic<uint64_t> gen[BELUGA_KVC_MAX_HOSTS] = {};
		std::vector<uint64_t> seg;
		~SumCopy();
	};
	std::unique_ptr<SumCopy> sum;
	std::mutex sum_mu;

	// Lease keeper (several hosts only): renews the lease while we live.
	std::thread keeper;
	std::mutex keeper_mu;
	std::condition_variable keeper_cv;
	bool keeper_stop = false;

	// beluga_kvc_open(): what to release on detach.
	void (*release)(void *) = nullptr;
	void *release_arg = nullptr;

	explicit beluga_kvc(unsigned threads) : copier(threads) {}

	bkv::View &v() { return *view; }
	bool foreign(uint32_t h) const { return h != host; }
	// Sessions of host @h are judged by its heartbeat and their leases, not
	// by /proc: another host's, or any host's for an observer of several
	// hosts (it may run on any machine).
	bool remote(uint32_t h) const { return g.hosts > 1 && (h != host || observer); }
	uint32_t inc() const { return uint32_t(lock_word >> 32); }
	void stat(unsigned i, uint64_t n)
	{
		if (n && !observer)
			view->add(g.stat(host, i), n);
	}
};

namespace bkv {

// host.cpp: identity, the claim protocol, heartbeats, liveness, takeover.
uint64_t mono_ms();
uint64_t beat_period_ms(uint64_t lease_ms);
void host_identity(beluga_kvc *kv);
int host_claim(beluga_kvc *kv); // 0 or -EADDRINUSE (message names the holder)
// Advance this host's heartbeat if a period has passed (@force: now).
void host_beat(beluga_kvc *kv, bool force);
// The state of host @h (BELUGA_KVC_HOST_*), updating what we saw of it.
struct HostView {
	uint64_t machine, boot, beat, clock, since;
	uint32_t lease_ms, served_by;
	uint32_t state;
	uint64_t observed_ms;
};
HostView host_view(beluga_kvc *kv, uint32_t h);
// Hosts whose sessions count for pins (not DEAD, not FREE; us always).
uint64_t live_hosts(beluga_kvc *kv);
// A session of another host @h, its record at @off (already invalidated):
// held, its host not dead, its lease (in its host's clock) not passed.
bool foreign_session_live(beluga_kvc *kv, uint32_t h, uint64_t off, uint64_t live);
int take_over(beluga_kvc *kv, uint32_t h, uint32_t flags);
// attach.cpp: attach for take_over (no claim, no keeper).
int attach_internal(beluga_kvc *like, uint32_t host, beluga_kvc **out);
void stop_keeper(beluga_kvc *kv);

// session.cpp
uint64_t now_ns();
// Access/insertion ticks: ms since the cache was formatted, + 1 (0 = never).
uint32_t tick_now(beluga_kvc *kv);
int identity(beluga_kvc *kv, bool simulate);
int session_open(beluga_kvc *kv);
void session_close(beluga_kvc *kv);
void lease_renew(beluga_kvc *kv, bool force);
int reclaim_dead(beluga_kvc *kv);
bool slot_pinned(beluga_kvc *kv, uint32_t slot, uint64_t gen);
// Remember that our eviction retired @slot (at most kFreedHints are kept).
constexpr size_t kFreedHints = 1024;
void note_freed(beluga_kvc *kv, uint32_t slot);
int pin_take(beluga_kvc *kv, const Found &f);
void pin_drop(beluga_kvc *kv, uint32_t idx);
bool local_alive(beluga_kvc *kv, uint64_t lock, uint64_t boot, uint64_t start);

// index.cpp
// A key's home bucket, tag and check word (format.hpp, "Index").
struct KeyPos {
	uint64_t b;
	uint32_t tag, check;
};
KeyPos key_pos(const uint8_t key[32], uint64_t buckets);
// @fresh: another host's descriptor already invalidated in this call.
bool read_desc(beluga_kvc *kv, uint32_t p, uint32_t slot, const uint8_t *key, Found &f,
	       bool fresh = false);
// After a pinned copy: generation, length and checksum unchanged (any state).
bool still_same(beluga_kvc *kv, const Found &f);
bool lookup_host(beluga_kvc *kv, uint32_t p, const uint8_t key[32], Found &f);
// Own partition first, then the other hosts in @hosts (0: read which are active).
bool lookup_any(beluga_kvc *kv, const uint8_t key[32], Found &f, uint64_t hosts = 0);
// Insert into our partition; 0, BELUGA_KVC_EXISTS (another copy won), -ENOSPC.
int index_insert(beluga_kvc *kv, const uint8_t key[32], uint32_t slot);
// Remove every entry for @key in our partition; returns how many.
int index_remove(beluga_kvc *kv, const uint8_t key[32], uint32_t resv_idx);
bool index_points_to(beluga_kvc *kv, uint32_t p, const uint8_t key[32], uint32_t slot);
// Whether our partition's index names @slot for @key; if it does, its check
// word is made right (a writer killed between the entry and its check).
bool index_adopt(beluga_kvc *kv, const uint8_t key[32], uint32_t slot);
// A prefix lookup in a cache of one host (no other partition, nothing to
// invalidate): how many leading keys are cached, software-pipelined.
size_t lookup_prefix_own(beluga_kvc *kv, const uint8_t (*keys)[32], size_t n);
// Remove the entry of @key that names @slot from our partition (eviction).
void index_drop(beluga_kvc *kv, const uint8_t key[32], uint32_t slot);
uint64_t active_hosts(beluga_kvc *kv); // bit mask
// A prefix lookup in a cache of several hosts: how many leading keys are
// cached.  A window of up to 32 keys at a time: each key's hash and the
// hosts to probe (our copy of their summaries); those hosts' home buckets
// invalidated with one fence (each issued as soon as it is known, so that
// the fence finds most of them done), then fetched a few keys ahead of
// their comparison.  A window stops at the first key that no summary
// holds.  The other hosts' summary generations are invalidated under the
// first window's fence and read once a key misses: if one moved, our copy
// is brought up to date and the lookup goes on from that key.
size_t lookup_prefix_hosts(beluga_kvc *kv, const uint8_t (*keys)[32], size_t n);
// Allocate the handle's copy of the other hosts' summaries (attach); -ENOMEM.
int summary_init(beluga_kvc *kv);

// slots.cpp
// -ENOSPC when full; *busy (optional) tells whether reserved slots were seen.
int slot_claim(beluga_kvc *kv, uint32_t resv_idx, uint32_t &slot, uint64_t &gen,
	       bool *busy = nullptr);
void slot_commit(beluga_kvc *kv, uint32_t slot, uint64_t gen, const uint8_t key[32],
		 uint64_t sum, uint64_t len);
void slot_retire(beluga_kvc *kv, uint32_t slot);
void slot_settle(beluga_kvc *kv, uint32_t slot);
bool slot_take(beluga_kvc *kv, uint32_t slot, uint32_t resv_idx);
uint32_t resv_take(beluga_kvc *kv);
void resv_give(beluga_kvc *kv, uint32_t r);
void slot_reclaim(beluga_kvc *kv, uint32_t slot, uint32_t session, uint32_t inc);
// A slot reserved under owner word @own goes back to the allocator
// unpublished: generation even again, FREE, uncounted (the caller flushes
// the descriptor).  false if @own no longer holds it.
bool slot_unreserve(beluga_kvc *kv, uint32_t slot, uint64_t own);
// Our slot's own word is damage: a state no writer stores, or RESERVED or
// EVICTING by an owner that does not hold the slot (no such session
// incarnation, or the slot is not in its reservation log).  The allocator
// takes such slots back and the occupancy count leaves them out.
bool slot_damaged(beluga_kvc *kv, uint32_t slot, uint64_t own);
// Occupancy counter of this host (kEvUsed).
void used_add(beluga_kvc *kv, int64_t d);

// evict.cpp
// A host's eviction line as it is in effect: every field is clamped to what
// set_eviction could have stored (the line may be damaged).
struct EvictCfg {
	uint64_t policy, capacity, high, low; // high/low in slots
	uint32_t high_pct, low_pct;
};
EvictCfg evict_cfg(beluga_kvc *kv, uint32_t h);
// Before claiming a slot: evict down to the low watermark when one more
// block would cross the high one.  @resv: a reservation entry to use.
void evict_for_put(beluga_kvc *kv, uint32_t resv);
// Evict up to @n blocks (by @policy; CLOCK for NONE); returns how many.
uint64_t evict_blocks(beluga_kvc *kv, uint64_t n, uint32_t resv);
// Occupied slots of host @h (the counter), and whether we may add one.
uint64_t used_now(beluga_kvc *kv, uint32_t h);
bool room_for_one(beluga_kvc *kv);
// Evict every unpinned block at or above slot @cap (a lowered capacity).
uint64_t evict_above(beluga_kvc *kv, uint64_t cap, uint32_t resv);
// Count this host's occupied slots and store the count (after crashes).
void used_resync(beluga_kvc *kv);
// Latest read of (@p, @slot) by any active host (a tick, 0 = never).
uint32_t last_access(beluga_kvc *kv, uint32_t p, uint32_t slot, uint64_t hosts);

// store_*.cpp
long put_batch(beluga_kvc *kv, const beluga_kvc_put *items, size_t n, int *res);
long reserve_batch(beluga_kvc *kv, beluga_kvc_reservation *items, size_t n, int *res);
long commit_batch(beluga_kvc *kv, beluga_kvc_reservation *items, size_t n, uint32_t flags,
		  int *res);
long abort_batch(beluga_kvc *kv, beluga_kvc_reservation *items, size_t n);
// Give back every reservation this handle still holds, unpublished (detach).
void reserve_abort_all(beluga_kvc *kv);
long get_batch(beluga_kvc *kv, const beluga_kvc_get *items, size_t n, int *res);
long pin_batch(beluga_kvc *kv, const uint8_t (*keys)[32], size_t n, uint32_t flags,
	       beluga_kvc_ref *refs, int *res);
int unpin_batch(beluga_kvc *kv, beluga_kvc_ref *refs, size_t n);
long remove_batch(beluga_kvc *kv, const uint8_t (*keys)[32], size_t n, int *res);
long lookup_prefix(beluga_kvc *kv, const uint8_t (*keys)[32], size_t n);
void touch(beluga_kvc *kv, const Found &f);
void flush_stats(beluga_kvc *kv);
void read_stats(beluga_kvc *kv, uint32_t h, beluga_kvc_stats &s);
int check(beluga_kvc *kv, bool verify, beluga_kvc_check_report &r);

// blocks.cpp
long list_blocks(beluga_kvc *kv, int host, uint64_t &cursor, uint32_t flags,
		 beluga_kvc_block_info *out, size_t max);
int inspect(beluga_kvc *kv, const uint8_t key[32], uint32_t flags, beluga_kvc_block_info &out);

} // namespace bkv
