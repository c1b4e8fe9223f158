// SPDX-License-Identifier: Apache-2.0
// Block listing and inspection for tools (beluga-tool kv ls / inspect):
// per cached block its key, size, insertion and last-read times, the pins
// live processes hold on it and, on request, whether its payload still
// matches its checksum.  Read-only: observers may call it.
#include "internal.hpp"

#include <cerrno>
#include <cstring>
#include <map>
#include <utility>

namespace bkv {
namespace {

using PinCount = std::map<std::pair<uint64_t, uint64_t>, uint32_t>; // (ref, gen) -> pins

bool session_alive(beluga_kvc *kv, uint32_t h, uint64_t off, uint64_t live)
{
	View &v = kv->v();
	if (!v.ld(off + kSesLock))
		return false;
	if (kv->remote(h))
		return foreign_session_live(kv, h, off, live);
	return local_alive(kv, v.ld(off + kSesLock), v.ld(off + kSesBoot), v.ld(off + kSesStart));
}

PinCount collect_pins(beluga_kvc *kv)
{
	View &v = kv->v();
	const Geo &g = kv->g;
	PinCount pins;
	uint64_t hosts = active_hosts(kv), live = live_hosts(kv);
	for (uint32_t h = 0; h < g.hosts; h++) {
		if (!(hosts >> h & 1))
			continue;
		for (uint32_t s = 0; s < g.sessions; s++) {
			uint64_t off = g.session(h, s);
			if (kv->remote(h))
				v.invalidate(off, kLine);
			if (!session_alive(kv, h, off, live))
				continue;
			uint64_t hwm = std::min<uint64_t>(v.ld(off + kSesPinsHwm), g.pins);
			if (kv->remote(h))
				v.invalidate(g.pin(h, s, 0), 16 * hwm);
			for (uint64_t i = 0; i < hwm; i++)
				if (uint64_t ref = v.ld(g.pin(h, s, i)))
					pins[{ref, v.ld(g.pin(h, s, i) + 8)}]++;
		}
	}
	return pins;
}

uint32_t verify_payload(beluga_kvc *kv, uint32_t p, uint32_t slot, uint64_t gen, uint64_t len,
			uint64_t sum)
{
	View &v = kv->v();
	uint64_t data = kv->g.data(p, slot);
	if (kv->foreign(p))
		v.invalidate(data, len);
	uint64_t got = f64(v.ptr(data), len);
	uint64_t d = kv->g.desc(p, slot);
	if (kv->foreign(p))
		v.invalidate(d, kLine);
	if (v.ld(d + kDescGen) != gen)
		return BELUGA_KVC_SUM_CHANGED;
	return got == sum ? BELUGA_KVC_SUM_OK : BELUGA_KVC_SUM_BAD;
}

// One slot's snapshot; false when it holds no stable, published block.
bool describe(beluga_kvc *kv, uint32_t p, uint32_t slot, uint64_t hosts, const PinCount &pins,
	      uint32_t flags, beluga_kvc_block_info &out)
{
	View &v = kv->v();
	uint64_t d = kv->g.desc(p, slot);
	if (kv->foreign(p))
		v.invalidate(d, kLine);
	uint64_t gen = v.ld(d + kDescGen);
	uint64_t st = own_state(v.ld(d + kDescOwn));
	if ((gen & 1) || (st != kPublished && st != kEvicting))
		return false;
	std::memset(&out, 0, sizeof(out));
	std::memcpy(out.key, v.ptr(d + kDescKey), 32);
	uint64_t lenword = v.ld(d + kDescLen);
	out.host = p;
	out.slot = slot;
	out.len = uint32_t(lenword);
	out.gen = gen;
	out.checksum = v.ld(d + kDescSum);
	out.inserted_ms = lenword >> 32;
	if (v.ld(d + kDescGen) != gen || !out.len || out.len > kv->g.payload)
		return false; // changed while we read it
	out.accessed_ms = last_access(kv, p, slot, hosts);
	auto it = pins.find({kPinValid | uint64_t(p) << 32 | slot, gen});
	out.pins = it == pins.end() ? 0 : it->second;
	if (flags & BELUGA_KVC_LIST_VERIFY)
		out.checksum_state = verify_payload(kv, p, slot, gen, out.len, out.checksum);
	return true;
}

} // namespace

long list_blocks(beluga_kvc *kv, int host, uint64_t &cursor, uint32_t flags,
		 beluga_kvc_block_info *out, size_t max)
{
	const uint64_t slots = kv->g.slots;
	uint64_t first = host < 0 ? 0 : uint64_t(host) * slots;
	uint64_t end = host < 0 ? kv->g.hosts * slots : first + slots;
	uint64_t pos = std::max(cursor, first);
	if (!max || pos >= end) {
		cursor = std::max(cursor, pos);
		return 0;
	}
	PinCount pins = collect_pins(kv);
	uint64_t hosts = active_hosts(kv);
	size_t n = 0;
	for (; pos < end && n < max; pos++)
		n += describe(kv, uint32_t(pos / slots), uint32_t(pos % slots), hosts, pins, flags,
			      out[n]);
	cursor = pos;
	return long(n);
}

int inspect(beluga_kvc *kv, const uint8_t key[32], uint32_t flags, beluga_kvc_block_info &out)
{
	Found f;
	if (!lookup_any(kv, key, f))
		return -ENOENT;
	PinCount pins = collect_pins(kv);
	if (!describe(kv, f.host, f.slot, active_hosts(kv), pins, flags, out) ||
	    std::memcmp(out.key, key, 32))
		return -ENOENT; // evicted or removed meanwhile
	return 0;
}

} // namespace bkv
