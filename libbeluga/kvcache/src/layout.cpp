// SPDX-License-Identifier: Apache-2.0
// Sizing a new cache and writing its superblock (beluga_kvc_format).
#include "error.hpp"
#include "fingerprint.hpp"
#include "internal.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace bkv {
namespace {

// Counter words of a partition's summary (several hosts): one per slot.
uint64_t summary_words(uint64_t slots) { return align_up(slots, kSumWordAlign); }
uint64_t summary_bytes(uint64_t slots) { return align_up(kSumWords + 8 * summary_words(slots), kPage); }

uint64_t part_need(uint64_t slots, uint64_t stride, bool summary)
{
	return align_up(buckets_for(slots) * kLine, kPage) + align_up(slots * kLine, kPage) +
	       (summary ? summary_bytes(slots) : 0) + slots * stride;
}

// Most slots a partition of @bytes holds: from the bytes a slot costs
// (payload stride, descriptor line, 2/5 of a bucket line, a summary word),
// then down past the page roundings.
uint64_t slots_for(uint64_t bytes, uint64_t stride, bool summary)
{
	uint64_t fifths = 5 * (stride + kLine + (summary ? 8 : 0)) + 2 * kLine;
	uint64_t n = uint64_t((unsigned __int128)bytes * 5 / fifths);
	while (n && part_need(n, stride, summary) > bytes)
		n--;
	return n;
}

void host_layout(const beluga_kvc_config &c, uint64_t slots, Geo &g)
{
	g.pins_off = kLine + align_up(uint64_t(c.max_batch) * 4, kLine);
	g.session_bytes = g.pins_off + align_up(uint64_t(c.max_pins) * 16, kLine);
	g.session_off = align_up(kHostFixed, kLine);
	g.access_off = g.session_off + uint64_t(c.max_sessions) * g.session_bytes;
	g.access_bytes = align_up(uint64_t(c.max_hosts) * slots * 4, kLine);
	g.host_bytes = align_up(g.access_off + g.access_bytes, kPage);
}

} // namespace

int compute_geometry(uint64_t size, const beluga_kvc_config &c, uint64_t payload, Geo &g)
{
	g = Geo{};
	g.region = size;
	g.hosts = c.max_hosts;
	g.sessions = c.max_sessions;
	g.pins = c.max_pins;
	g.batch = c.max_batch;
	g.payload = payload;
	g.stride = align_up(payload, payload >= kPage ? kPage : kLine);
	g.host_off = kHeaderBytes;
	// Two rounds: the access-tick table depends on the slot count, which
	// depends on what the host areas leave; the first round over-sizes it.
	uint64_t slots = 0;
	for (int round = 0; round < 2; round++) {
		host_layout(c, slots, g);
		uint64_t fixed = kHeaderBytes + g.hosts * g.host_bytes;
		if (fixed >= size)
			return -ENOSPC;
		g.part_bytes = (size - fixed) / g.hosts / kPage * kPage;
		uint64_t n = slots_for(g.part_bytes, g.stride, g.hosts > 1);
		if (round == 0)
			slots = n;
		else
			g.slots = n;
	}
	if (!g.slots)
		return -ENOSPC;
	if (g.slots > 0x7fffffffull)
		g.slots = 0x7fffffffull;
	g.part_off = kHeaderBytes + g.hosts * g.host_bytes;
	g.buckets = buckets_for(g.slots);
	g.index_off = 0;
	g.desc_off = align_up(g.buckets * kLine, kPage);
	g.data_off = g.desc_off + align_up(g.slots * kLine, kPage);
	if (g.hosts > 1) { // other hosts' lookups read the summary first
		g.summary_off = g.data_off;
		g.summary_words = summary_words(g.slots);
		g.data_off += summary_bytes(g.slots);
	}
	return 0;
}

} // namespace bkv

using namespace bkv;

extern "C" {

void beluga_kvc_config_init(beluga_kvc_config *cfg)
{
	if (!cfg)
		return;
	std::memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	cfg->fingerprint.tp_size = 1;
	cfg->max_hosts = 1;
	cfg->max_sessions = 64;
	cfg->max_pins = 1024;
	cfg->max_batch = 64;
	cfg->high_watermark_pct = 95;
	cfg->low_watermark_pct = 85;
}

int beluga_kvc_format(void *base, size_t size, const beluga_kvc_config *cfg)
{
	if (!base || !cfg)
		return fail(-EINVAL, "beluga_kvc_format: NULL argument");
	if (cfg->size != sizeof(*cfg))
		return fail(-EINVAL, "beluga_kvc_format: config.size is %zu, expected %zu "
				     "(use beluga_kvc_config_init)", cfg->size, sizeof(*cfg));
	if (reinterpret_cast<uintptr_t>(base) % kPage)
		return fail(-EINVAL, "beluga_kvc_format: base is not 4096-byte aligned");
	const beluga_kvc_config &c = *cfg;
	if (!c.max_hosts || c.max_hosts > BELUGA_KVC_MAX_HOSTS || !c.max_sessions ||
	    c.max_sessions > 0xffffff || !c.max_pins || c.max_pins > (1u << 20) ||
	    !c.max_batch || c.max_batch > 4096)
		return fail(-EINVAL, "beluga_kvc_format: max_hosts must be 1..%d, max_sessions "
				     "1..16777215, max_pins 1..1048576, max_batch 1..4096",
			    BELUGA_KVC_MAX_HOSTS);
	if (c.low_watermark_pct > c.high_watermark_pct || c.high_watermark_pct > 100 ||
	    !c.low_watermark_pct)
		return fail(-EINVAL, "beluga_kvc_format: watermarks must be 1 <= low <= high <= 100");
	if (c.eviction > BELUGA_KVC_EVICT_LRU)
		return fail(-EINVAL, "beluga_kvc_format: unknown eviction policy %u", c.eviction);
	for (uint64_t r : c.reserved)
		if (r)
			return fail(-EINVAL, "beluga_kvc_format: reserved config fields must be 0");
	if (c.reserved0)
		return fail(-EINVAL, "beluga_kvc_format: reserved config fields must be 0");
	beluga_kvc_fingerprint fp;
	if (int r = fingerprint_normalize(c.fingerprint, fp))
		return r;
	Geo g;
	if (compute_geometry(size, c, fp.payload_bytes, g))
		return fail(-ENOSPC, "beluga_kvc_format: %zu bytes cannot hold one %llu-byte block "
				     "per host with %u hosts", size,
			    (unsigned long long)fp.payload_bytes, c.max_hosts);
	if (c.capacity_blocks > g.slots)
		return fail(-EINVAL, "beluga_kvc_format: capacity_blocks %llu is more than the %llu "
				     "blocks a host's partition holds",
			    (unsigned long long)c.capacity_blocks, (unsigned long long)g.slots);
	uint64_t capacity = c.capacity_blocks ? c.capacity_blocks : g.slots;

	auto *mem = static_cast<uint8_t *>(base);
	// A half-formatted region must never look ready: drop the ready word
	// first, and write it last.
	__atomic_store_n(reinterpret_cast<uint64_t *>(mem + kReadyOff), 0, __ATOMIC_RELEASE);
	Super s;
	std::memset(&s, 0, sizeof(s));
	std::memcpy(s.magic, kMagic, 8);
	s.version_major = BELUGA_KVC_FORMAT_MAJOR;
	s.version_minor = BELUGA_KVC_FORMAT_MINOR;
	s.region_bytes = size;
	s.created_ns = now_ns();
	s.max_hosts = c.max_hosts;
	s.max_sessions = c.max_sessions;
	s.max_pins = c.max_pins;
	s.max_batch = c.max_batch;
	s.slots_per_host = g.slots;
	s.buckets_per_host = g.buckets;
	s.payload_bytes = g.payload;
	s.slot_stride = g.stride;
	s.host_area_off = g.host_off;
	s.host_area_bytes = g.host_bytes;
	s.part_off = g.part_off;
	s.part_bytes = g.part_bytes;
	s.index_off = g.index_off;
	s.desc_off = g.desc_off;
	s.data_off = g.data_off;
	s.session_off = g.session_off;
	s.session_bytes = g.session_bytes;
	s.access_off = g.access_off;
	s.access_bytes = g.access_bytes;
	s.capacity_slots = capacity;
	s.high_wm_pct = c.high_watermark_pct;
	s.low_wm_pct = c.low_watermark_pct;
	s.pins_off = g.pins_off;
	s.summary_off = g.summary_off;
	s.summary_words = g.summary_words;
	s.fp = fp;
	s.header_sum = f64(&s, offsetof(Super, header_sum));
	std::memcpy(mem, &s, sizeof(s));
	// Host areas: the eviction line gets the settings (each host may change
	// its own later); the rest of the region is zero already (fresh regions
	// are zeroed).
	for (uint64_t h = 0; h < g.hosts; h++) {
		auto *ev = reinterpret_cast<uint64_t *>(mem + g.host(h) + kHostEvict);
		ev[0] = capacity;
		ev[1] = uint64_t(c.low_watermark_pct) << 32 | c.high_watermark_pct;
		ev[2] = c.eviction;
	}
	View(mem, size, View::noncoherent).flush(0, g.part_off);
	hook(kHookFormatHalf, 0);
	__atomic_store_n(reinterpret_cast<uint64_t *>(mem + kReadyOff), kReadyMagic, __ATOMIC_RELEASE);
	View(mem, size, View::noncoherent).flush(kReadyOff, 8);
	hook(kHookFormatted, 1);
	return 0;
}

int beluga_kvc_format_once(void *base, size_t size, const beluga_kvc_config *cfg)
{
	if (!base || !cfg || size < kHeaderBytes)
		return fail(-EINVAL, "beluga_kvc_format_once: NULL argument or a region smaller "
				     "than the %llu-byte header", (unsigned long long)kHeaderBytes);
	auto *mem = static_cast<uint8_t *>(base);
	auto *ready = reinterpret_cast<uint64_t *>(mem + kReadyOff);
	auto *lock = reinterpret_cast<uint64_t *>(mem + kFormatLock);
	auto *lock_boot = reinterpret_cast<uint64_t *>(mem + kFormatPid);
	View v(mem, size, View::noncoherent);
	v.invalidate(kReadyOff, kLine);
	if (__atomic_load_n(ready, __ATOMIC_ACQUIRE) == kReadyMagic)
		return BELUGA_KVC_EXISTS;
	// The processes of the formatting host are coherent with each other:
	// the one whose compare-and-swap takes the lock formats, the others
	// wait.  The lock names the formatter (pid, boot), so that a formatter
	// that died half-way is replaced.
	uint64_t me = 1ull << 63 | uint32_t(getpid());
	uint64_t boot = 0;
	{
		beluga_kvc probe(1);
		if (identity(&probe, false) == 0)
			boot = probe.boot;
	}
	for (int waited = 0;; waited++) {
		uint64_t cur = __atomic_load_n(lock, __ATOMIC_ACQUIRE);
		bool dead = cur && __atomic_load_n(lock_boot, __ATOMIC_ACQUIRE) == boot &&
			    kill(pid_t(uint32_t(cur)), 0) && errno == ESRCH;
		if ((!cur || dead) &&
		    __atomic_compare_exchange_n(lock, &cur, me, false, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST)) {
			__atomic_store_n(lock_boot, boot, __ATOMIC_RELEASE);
			v.flush(kFormatLock, 16);
			if (__atomic_load_n(ready, __ATOMIC_ACQUIRE) == kReadyMagic)
				return BELUGA_KVC_EXISTS; // formatted between our look and the lock
			int r = beluga_kvc_format(base, size, cfg);
			if (r) {
				__atomic_store_n(lock, 0, __ATOMIC_RELEASE);
				v.flush(kFormatLock, 16);
			}
			return r;
		}
		v.invalidate(kReadyOff, kLine);
		if (__atomic_load_n(ready, __ATOMIC_ACQUIRE) == kReadyMagic)
			return BELUGA_KVC_EXISTS;
		if (waited >= 10000)
			return fail(-BELUGA_KVC_ENOTREADY, "beluga_kvc_format_once: another process "
							   "(pid %u) has been formatting the region "
							   "for 10 s", unsigned(uint32_t(cur)));
		timespec ms = {0, 1000000};
		nanosleep(&ms, nullptr);
	}
}

} // extern "C"
