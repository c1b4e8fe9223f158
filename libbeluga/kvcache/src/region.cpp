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

// Open or create the region; *created says which.  @bytes 0: never create
// (a shared region, defined by the administrator on every host).
int get_region(beluga_pool *pool, const char *name, const beluga_kvc_config *cfg,
	       uint64_t bytes, uint32_t mode, bool rdonly, beluga_region **out, bool *created)
{
	*created = false;
	// No size: nothing to create; the region must exist (a shared region
	// every host defined over the same memory, whose size is its extent's).
	if (cfg && bytes) {
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
	// Who formats: the process that created the region, or (several hosts,
	// whose shared region none of them creates) the one configured with
	// BELUGA_KVC_ATTACH_FORMAT, once.  Everybody else waits for the ready
	// word (attach, ready_wait_ms); observers report what is there now.
	// The creator takes the format lock too: a process of its host with
	// BELUGA_KVC_ATTACH_FORMAT may find the new region before it is formatted.
	if (!r && (created || (cfg && opts && (opts->flags & BELUGA_KVC_ATTACH_FORMAT)))) {
		r = beluga_kvc_format_once(base, size, cfg);
		if (r == BELUGA_KVC_EXISTS)
			r = 0;
	}
	beluga_kvc_attach_opts o;
	if (opts)
		o = *opts;
	else
		beluga_kvc_attach_opts_init(&o);
	if (!observe && !o.ready_wait_ms && o.size == sizeof(o))
		o.ready_wait_ms = 5000;
	if (!r)
		r = beluga_kvc_attach(base, size, fp, &o, out);
	if (r) {
		release(h);
		return r;
	}
	(*out)->release = release;
	(*out)->release_arg = h;
	return 0;
}
