// SPDX-License-Identifier: Apache-2.0
// See kvcache_test.h.
#include "kvcache_test.h"

#include "internal.hpp"

#include <cstdio>

namespace bkv::test {

bool set_omit(const char *name)
{
	if (!name) { // back to the process default (environment, build option)
		set_omitted_point(Point::count);
		return true;
	}
	if (!*name)
		name = "none";
	Point p = point_from_name(name);
	if (p == Point::count)
		return false;
	set_omitted_point(p);
	return true;
}

const char *omitted() { return point_name(omitted_point()); }

const char *const *points()
{
	static const char *names[int(Point::count)];
	for (int i = 1; i < int(Point::count); i++)
		names[i - 1] = point_name(Point(i));
	names[int(Point::count) - 1] = nullptr;
	return names;
}

void set_hook(void (*fn)(int, int)) { g_hook = fn; }

void set_tick(uint32_t tick) { g_test_tick.store(tick); }

void set_mono(uint64_t ms) { g_test_mono.store(ms); }
uint64_t mono() { return mono_ms(); }
void set_realtime_skew(int64_t ns) { g_test_skew.store(ns); }
void set_wait(void (*fn)(uint64_t ms)) { g_test_wait = fn; }

void set_identity(uint64_t machine, uint64_t boot, const char *name)
{
	g_test_identity.machine = machine;
	g_test_identity.boot = boot;
	std::snprintf(g_test_identity.name, sizeof(g_test_identity.name), "%s", name ? name : "");
}

void beat(beluga_kvc *kv)
{
	host_beat(kv, true);
	lease_renew(kv, false); // what the keeper thread does
}

void crash(beluga_kvc *kv)
{
	stop_keeper(kv);
	delete kv;
}

uint64_t claim_offset(beluga_kvc *kv, uint32_t h) { return kv->g.host(h) + kHostClaim; }

uint64_t sim_violations(beluga_kvc *kv) { return kv->v().violations(); }
uint8_t *shared_ptr(beluga_kvc *kv, uint64_t off) { return kv->v().shared(off); }
uint8_t *view_ptr(beluga_kvc *kv, uint64_t off) { return kv->v().ptr(off); }
uint64_t payload_offset(beluga_kvc *kv, uint32_t host, uint32_t slot)
{
	return kv->g.data(host, slot);
}

} // namespace bkv::test
