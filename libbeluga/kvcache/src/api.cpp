// SPDX-License-Identifier: Apache-2.0
// The C entry points of the store: argument checks, lease renewal and
// error sentences around the operations in put.cpp, reserve.cpp, get.cpp
// and misc.cpp.
#include "error.hpp"
#include "internal.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <thread>

using namespace bkv;

namespace {

// Runs @fn, turning an allocation failure into -ENOMEM.
template <typename Fn> long guarded(const char *what, Fn fn)
{
	try {
		return fn();
	} catch (const std::bad_alloc &) {
		return fail(-ENOMEM, "%s: out of memory", what);
	}
}

// Calls that write to the region are refused to observers, and to a host
// whose index another host has taken over (it stalled for longer than its
// lease): it must not write lines that are not its own any more.
int refuse_observer(beluga_kvc *kv, const char *what)
{
	if (kv->observer)
		return fail(-EPERM, "%s: this handle is a read-only observer "
				    "(BELUGA_KVC_ATTACH_OBSERVE)", what);
	if (kv->lost.load())
		return fail(-ESTALE, "%s: host index %u has been claimed by another host (this "
				     "host was taken over); detach and attach again", what, kv->host);
	return 0;
}

} // namespace

extern "C" {

long beluga_kvc_put_batch(beluga_kvc *kv, const beluga_kvc_put *items, size_t n, int *results)
{
	if (!kv || (!items && n) || (!results && n))
		return fail(-EINVAL, "beluga_kvc_put_batch: NULL argument");
	if (int r = refuse_observer(kv, "beluga_kvc_put_batch"))
		return r;
	lease_renew(kv, false);
	return guarded("beluga_kvc_put_batch", [&] { return put_batch(kv, items, n, results); });
}

long beluga_kvc_get_batch(beluga_kvc *kv, const beluga_kvc_get *items, size_t n, int *results)
{
	if (!kv || (!items && n) || (!results && n))
		return fail(-EINVAL, "beluga_kvc_get_batch: NULL argument");
	if (int r = refuse_observer(kv, "beluga_kvc_get_batch"))
		return r;
	lease_renew(kv, false);
	return guarded("beluga_kvc_get_batch", [&] { return get_batch(kv, items, n, results); });
}

long beluga_kvc_lookup_prefix(beluga_kvc *kv, const uint8_t (*keys)[32], size_t n)
{
	if (!kv || (!keys && n))
		return fail(-EINVAL, "beluga_kvc_lookup_prefix: NULL argument");
	return lookup_prefix(kv, keys, n);
}

long beluga_kvc_pin(beluga_kvc *kv, const uint8_t (*keys)[32], size_t n, uint32_t flags,
		    beluga_kvc_ref *refs, int *results)
{
	if (!kv || ((!keys || !refs || !results) && n))
		return fail(-EINVAL, "beluga_kvc_pin: NULL argument");
	if (flags & ~BELUGA_KVC_PIN_VERIFY)
		return fail(-EINVAL, "beluga_kvc_pin: unknown flags 0x%x", flags);
	if (int r = refuse_observer(kv, "beluga_kvc_pin"))
		return r;
	lease_renew(kv, false);
	return pin_batch(kv, keys, n, flags, refs, results);
}

int beluga_kvc_unpin(beluga_kvc *kv, beluga_kvc_ref *refs, size_t n)
{
	if (!kv || (!refs && n))
		return fail(-EINVAL, "beluga_kvc_unpin: NULL argument");
	if (int r = refuse_observer(kv, "beluga_kvc_unpin"))
		return r;
	int r = unpin_batch(kv, refs, n);
	return r ? fail(r, "beluga_kvc_unpin: a ref is not a pin this handle holds") : 0;
}

long beluga_kvc_remove(beluga_kvc *kv, const uint8_t (*keys)[32], size_t n, int *results)
{
	if (!kv || ((!keys || !results) && n))
		return fail(-EINVAL, "beluga_kvc_remove: NULL argument");
	if (int r = refuse_observer(kv, "beluga_kvc_remove"))
		return r;
	lease_renew(kv, false);
	return remove_batch(kv, keys, n, results);
}

long beluga_kvc_reserve(beluga_kvc *kv, beluga_kvc_reservation *items, size_t n, int *results)
{
	if (!kv || ((!items || !results) && n))
		return fail(-EINVAL, "beluga_kvc_reserve: NULL argument");
	if (int r = refuse_observer(kv, "beluga_kvc_reserve"))
		return r;
	lease_renew(kv, false);
	return guarded("beluga_kvc_reserve", [&] { return reserve_batch(kv, items, n, results); });
}

long beluga_kvc_commit(beluga_kvc *kv, beluga_kvc_reservation *items, size_t n, uint32_t flags,
		       int *results)
{
	if (!kv || ((!items || !results) && n))
		return fail(-EINVAL, "beluga_kvc_commit: NULL argument");
	if (flags & ~BELUGA_KVC_COMMIT_CHECKSUM)
		return fail(-EINVAL, "beluga_kvc_commit: unknown flags 0x%x", flags);
	if (int r = refuse_observer(kv, "beluga_kvc_commit"))
		return r;
	lease_renew(kv, false);
	return guarded("beluga_kvc_commit",
		       [&] { return commit_batch(kv, items, n, flags, results); });
}

long beluga_kvc_abort(beluga_kvc *kv, beluga_kvc_reservation *items, size_t n)
{
	if (!kv || (!items && n))
		return fail(-EINVAL, "beluga_kvc_abort: NULL argument");
	if (kv->observer)
		return refuse_observer(kv, "beluga_kvc_abort");
	// Also when this host was taken over: the handle's bookkeeping goes.
	return abort_batch(kv, items, n);
}

int beluga_kvc_get_info(beluga_kvc *kv, beluga_kvc_info *info)
{
	if (!kv || !info)
		return fail(-EINVAL, "beluga_kvc_get_info: NULL argument");
	std::memset(info, 0, sizeof(*info));
	info->fingerprint = kv->fp;
	info->format_major = BELUGA_KVC_FORMAT_MAJOR;
	info->format_minor = BELUGA_KVC_FORMAT_MINOR;
	info->max_hosts = uint32_t(kv->g.hosts);
	info->host_id = kv->host;
	info->max_sessions = uint32_t(kv->g.sessions);
	info->max_pins = uint32_t(kv->g.pins);
	info->max_batch = uint32_t(kv->g.batch);
	info->coherence = kv->v().mode() == View::coherent	 ? BELUGA_KVC_COHERENT
			  : kv->v().mode() == View::noncoherent ? BELUGA_KVC_NONCOHERENT
								 : BELUGA_KVC_SIMULATE;
	info->region_bytes = kv->g.region;
	info->payload_bytes = kv->g.payload;
	info->slot_stride = kv->g.stride;
	info->slots_per_host = kv->g.slots;
	beluga_kvc_eviction ev;
	beluga_kvc_get_eviction(kv, -1, &ev);
	info->capacity_slots = ev.capacity_blocks;
	info->high_watermark_pct = ev.high_watermark_pct;
	info->low_watermark_pct = ev.low_watermark_pct;
	info->eviction = ev.policy;
	info->observer = kv->observer;
	info->created_ns = kv->created_ns;
	return 0;
}

int beluga_kvc_get_stats(beluga_kvc *kv, int host, beluga_kvc_stats *stats)
{
	if (!kv || !stats)
		return fail(-EINVAL, "beluga_kvc_get_stats: NULL argument");
	if (host < -1 || host >= int(kv->g.hosts))
		return fail(-EINVAL, "beluga_kvc_get_stats: host %d out of range (-1..%d)", host,
			    int(kv->g.hosts) - 1);
	std::memset(stats, 0, sizeof(*stats));
	for (uint32_t h = 0; h < kv->g.hosts; h++)
		if (host == -1 || uint32_t(host) == h)
			read_stats(kv, h, *stats);
	return 0;
}

int beluga_kvc_reclaim(beluga_kvc *kv)
{
	if (!kv)
		return fail(-EINVAL, "beluga_kvc_reclaim: NULL argument");
	if (int r = refuse_observer(kv, "beluga_kvc_reclaim"))
		return r;
	lease_renew(kv, false);
	return reclaim_dead(kv);
}

int beluga_kvc_get_host(beluga_kvc *kv, uint32_t host, beluga_kvc_host_info *info)
{
	if (!kv || !info || host >= kv->g.hosts)
		return fail(-EINVAL, "beluga_kvc_get_host: NULL argument or host %u out of range",
			    host);
	std::memset(info, 0, sizeof(*info));
	HostView hv = host_view(kv, host);
	info->host = host;
	info->state = hv.state;
	info->served_by = hv.served_by;
	info->lease_ms = hv.lease_ms;
	info->machine_id = hv.machine;
	info->boot_id = hv.boot;
	info->heartbeat = hv.beat;
	info->observed_ms = hv.observed_ms;
	info->claimed_ns = hv.since;
	View &v = kv->v();
	uint64_t off = kv->g.host(host);
	for (unsigned i = 0; i < sizeof(info->name) - 1; i++) {
		char c = char(v.ptr(off + kHostName)[i]); // invalidated by host_view
		if (!c)
			break;
		info->name[i] = c >= 0x20 && c < 0x7f ? c : '?';
	}
	uint64_t live = live_hosts(kv);
	// An observer of several hosts may run on any of them: it judges every
	// host by its heartbeat.
	bool foreign = kv->remote(host);
	for (uint32_t s = 0; s < kv->g.sessions; s++) {
		uint64_t so = kv->g.session(host, s);
		if (foreign)
			v.invalidate(so, kLine);
		uint64_t lock = v.ld(so + kSesLock);
		if (!lock)
			continue;
		info->sessions += foreign
					  ? foreign_session_live(kv, host, so, live)
					  : local_alive(kv, lock, v.ld(so + kSesBoot), v.ld(so + kSesStart));
	}
	beluga_kvc_eviction ev;
	beluga_kvc_get_eviction(kv, int(host), &ev);
	info->used_blocks = ev.used_blocks;
	info->capacity_blocks = ev.capacity_blocks;
	return 0;
}

int beluga_kvc_take_over(beluga_kvc *kv, uint32_t host, uint32_t flags)
{
	if (!kv)
		return fail(-EINVAL, "beluga_kvc_take_over: NULL argument");
	if (int r = refuse_observer(kv, "beluga_kvc_take_over"))
		return r;
	lease_renew(kv, false);
	return int(guarded("beluga_kvc_take_over", [&] { return long(take_over(kv, host, flags)); }));
}

int beluga_kvc_check(beluga_kvc *kv, int verify_data, beluga_kvc_check_report *report)
{
	if (!kv || !report)
		return fail(-EINVAL, "beluga_kvc_check: NULL argument");
	return check(kv, verify_data != 0, *report);
}

int beluga_kvc_get_eviction(beluga_kvc *kv, int host, beluga_kvc_eviction *ev)
{
	if (!kv || !ev)
		return fail(-EINVAL, "beluga_kvc_get_eviction: NULL argument");
	if (host < -1 || host >= int(kv->g.hosts))
		return fail(-EINVAL, "beluga_kvc_get_eviction: host %d out of range (-1..%d)", host,
			    int(kv->g.hosts) - 1);
	uint32_t h = host < 0 ? kv->host : uint32_t(host);
	View &v = kv->v();
	EvictCfg c = evict_cfg(kv, h); // invalidates another host's line
	std::memset(ev, 0, sizeof(*ev));
	ev->policy = uint32_t(c.policy); // the settings in effect, even on a damaged line
	ev->high_watermark_pct = c.high_pct;
	ev->low_watermark_pct = c.low_pct;
	ev->capacity_blocks = c.capacity;
	auto used = int64_t(v.ld(kv->g.evict(h, kEvUsed)));
	ev->used_blocks = uint64_t(std::clamp<int64_t>(used, 0, int64_t(kv->g.slots)));
	return 0;
}

int beluga_kvc_set_eviction(beluga_kvc *kv, const beluga_kvc_eviction *ev)
{
	if (!kv || !ev)
		return fail(-EINVAL, "beluga_kvc_set_eviction: NULL argument");
	if (int r = refuse_observer(kv, "beluga_kvc_set_eviction"))
		return r;
	bool reserved = ev->reserved0;
	for (uint64_t r : ev->reserved)
		reserved |= r != 0;
	if (ev->policy > BELUGA_KVC_EVICT_LRU || !ev->capacity_blocks ||
	    ev->capacity_blocks > kv->g.slots || !ev->low_watermark_pct ||
	    ev->low_watermark_pct > ev->high_watermark_pct || ev->high_watermark_pct > 100 ||
	    reserved)
		return fail(-EINVAL, "beluga_kvc_set_eviction: need a known policy, capacity "
				     "1..%llu, watermarks 1 <= low <= high <= 100 and zero reserved "
				     "fields", (unsigned long long)kv->g.slots);
	View &v = kv->v();
	lease_renew(kv, false);
	v.st(kv->g.evict(kv->host, kEvCapacity), ev->capacity_blocks);
	v.st(kv->g.evict(kv->host, kEvWatermarks),
	     uint64_t(ev->low_watermark_pct) << 32 | ev->high_watermark_pct);
	v.st(kv->g.evict(kv->host, kEvPolicy), ev->policy);
	v.flush(kv->g.evict(kv->host, kHostEvict), kLine);
	// Blocks above a lowered capacity go now (pinned ones at a later pass).
	uint32_t resv;
	while ((resv = resv_take(kv)) == ~0u)
		std::this_thread::yield();
	evict_above(kv, ev->capacity_blocks, resv);
	resv_give(kv, resv);
	return 0;
}

long beluga_kvc_evict(beluga_kvc *kv, uint64_t max_blocks)
{
	if (!kv)
		return fail(-EINVAL, "beluga_kvc_evict: NULL argument");
	if (int r = refuse_observer(kv, "beluga_kvc_evict"))
		return r;
	lease_renew(kv, false);
	uint32_t resv;
	while ((resv = resv_take(kv)) == ~0u) // every entry busy with puts of other threads
		std::this_thread::yield();
	long n = long(evict_blocks(kv, max_blocks, resv));
	resv_give(kv, resv);
	return n;
}

long beluga_kvc_list_blocks(beluga_kvc *kv, int host, uint64_t *cursor, uint32_t flags,
			    beluga_kvc_block_info *out, size_t max)
{
	if (!kv || !cursor || (!out && max))
		return fail(-EINVAL, "beluga_kvc_list_blocks: NULL argument");
	if (host < -1 || host >= int(kv->g.hosts) || (flags & ~BELUGA_KVC_LIST_VERIFY))
		return fail(-EINVAL, "beluga_kvc_list_blocks: host %d out of range (-1..%d) or "
				     "unknown flags 0x%x", host, int(kv->g.hosts) - 1, flags);
	return guarded("beluga_kvc_list_blocks",
		       [&] { return list_blocks(kv, host, *cursor, flags, out, max); });
}

int beluga_kvc_inspect(beluga_kvc *kv, const uint8_t key[32], uint32_t flags,
		       beluga_kvc_block_info *out)
{
	if (!kv || !key || !out || (flags & ~BELUGA_KVC_LIST_VERIFY))
		return fail(-EINVAL, "beluga_kvc_inspect: NULL argument or unknown flags");
	int r = int(guarded("beluga_kvc_inspect", [&] { return long(inspect(kv, key, flags, *out)); }));
	return r == -ENOENT ? fail(r, "beluga_kvc_inspect: the key is not cached") : r;
}

uint64_t beluga_kvc_checksum(const void *data, size_t len)
{
	return data || !len ? f64(data, len) : f64("", 0);
}

} // extern "C"
