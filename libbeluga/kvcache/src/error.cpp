// SPDX-License-Identifier: Apache-2.0
// Error sentences: thread-local, so that threads sharing a handle do not
// overwrite each other's explanation.
#include "error.hpp"

#include <beluga/kvcache.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace bkv {
namespace {
thread_local char t_msg[512];
}

int fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	std::vsnprintf(t_msg, sizeof(t_msg), fmt, ap);
	va_end(ap);
	return code;
}

const char *last_error() { return t_msg; }

} // namespace bkv

extern "C" {

const char *beluga_kvc_last_error(void) { return bkv::last_error(); }

const char *beluga_kvc_strerror(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return "success";
	case BELUGA_KVC_EFINGERPRINT:
		return "the cache was made for another model, layout or key hash "
		       "(beluga_kvc_last_error() names the field): use the same "
		       "fingerprint or another cache";
	case BELUGA_KVC_EFORMAT:
		return "the region does not hold a Beluga KV cache, or its header is damaged";
	case BELUGA_KVC_EVERSION:
		return "the cache's on-media format version is not supported by this library";
	case BELUGA_KVC_ENOTREADY:
		return "the cache is still being formatted; if its creator died, destroy "
		       "the region and create it again";
	default:
		return std::strerror(err);
	}
}

} // extern "C"
