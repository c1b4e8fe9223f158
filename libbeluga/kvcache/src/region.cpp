// SPDX-License-Identifier: Apache-2.0
// beluga_kvc_open: the cache in a named libbeluga region (kernel driver or
// user-space backend).  The creating process formats the region; others
// that open it meanwhile wait until its ready word appears.
#include <beluga/beluga.h>
#include <beluga/kvcache.h>

#include "error.hpp"
#include "internal.hpp"

#include <cerrno>
#include <ctime>

namespace {

struct Held {
	beluga_region *region = nullptr;
	beluga_mapping *mapping = nullptr;
};

void release(void *arg)
{
	auto *h = static_cast<Held *>(arg);
	beluga_mapping_unmap(h->mapping);
	beluga_region_close(h->region);
	delete h;
}

// Formatting is over: the ready word is set, or damaged (neither 0 nor the
// magic; attach then says so) and waiting would not help.
bool ready(const void *base)
{
	return __atomic_load_n(reinterpret_cast<const uint64_t *>(
				       static_cast<const uint8_t *>(base) + bkv::kReadyOff),
			       __ATOMIC_ACQUIRE) != 0;
}

// Open or create the region; *created says which.
int get_region(beluga_pool *pool, const char *name, const beluga_kvc_config *cfg,
	       uint64_t bytes, uint32_t mode, bool rdonly, beluga_region **out, bool *created)
{
	*created = false;
	if (cfg) {
		int r = beluga_region_create(pool, name, bytes, mode, 0, BELUGA_ALL_SOURCES, out);
		if (!r) {
			*created = true;
			return 0;
		}
		if (r != -EEXIST)
			return bkv::fail(r, "beluga_kvc_open: cannot create region \"%s\": %s", name,
					 beluga_strerror(r));
	}
	int r = beluga_region_open(pool, name, rdonly ? BELUGA_REGION_RDONLY : 0, out);
	return r ? bkv::fail(r, "beluga_kvc_open: cannot open region \"%s\": %s", name,
			     beluga_strerror(r))
		 : 0;
}

} // namespace

extern "C" int beluga_kvc_open(beluga_pool *pool, const char *name,
			       const beluga_kvc_fingerprint *fp, const beluga_kvc_config *cfg,
			       uint64_t region_bytes, uint32_t mode,
			       const beluga_kvc_attach_opts *opts, beluga_kvc **out)
{
	bool observe = opts && (opts->flags & BELUGA_KVC_ATTACH_OBSERVE);
	if (!pool || !name || (!fp && !observe) || !out)
		return bkv::fail(-EINVAL, "beluga_kvc_open: NULL argument");
	if (observe && cfg)
		return bkv::fail(-EINVAL, "beluga_kvc_open: an observer cannot create a cache");
	beluga_kvc_config config;
	if (cfg) {
		config = *cfg;
		config.fingerprint = *fp;
		cfg = &config;
	}
	auto *h = new (std::nothrow) Held;
	if (!h)
		return bkv::fail(-ENOMEM, "beluga_kvc_open: out of memory");
	bool created;
	int r = get_region(pool, name, cfg, region_bytes, mode, observe, &h->region, &created);
	if (!r) {
		uint32_t prot = BELUGA_PROT_READ | (observe ? 0 : BELUGA_PROT_WRITE);
		r = beluga_region_map(h->region, 0, 0, prot, &h->mapping);
		if (r)
			bkv::fail(r, "beluga_kvc_open: cannot map region \"%s\": %s", name,
				  beluga_strerror(r));
	}
	void *base = r ? nullptr : beluga_mapping_addr(h->mapping);
	size_t size = r ? 0 : beluga_mapping_size(h->mapping);
	if (!r && created)
		r = beluga_kvc_format(base, size, cfg);
	if (!r && !created) {
		// Observers (tools) report what is there now; processes that will
		// use the cache wait for its creator to finish formatting it.
		unsigned wait = observe ? 0 : opts && opts->ready_wait_ms ? opts->ready_wait_ms : 5000;
		for (unsigned waited = 0; !ready(base) && waited < wait; waited++) {
			timespec ms = {0, 1000000};
			nanosleep(&ms, nullptr);
		}
	}
	if (!r)
		r = beluga_kvc_attach(base, size, fp, opts, out);
	if (r) {
		release(h);
		return r;
	}
	(*out)->release = release;
	(*out)->release_arg = h;
	return 0;
}
