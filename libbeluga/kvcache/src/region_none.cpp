// SPDX-License-Identifier: Apache-2.0
// beluga_kvc_open without libbeluga: the store was built on its own.
#include <beluga/kvcache.h>

#include "error.hpp"

#include <cerrno>

extern "C" int beluga_kvc_open(beluga_pool *, const char *, const beluga_kvc_fingerprint *,
			       const beluga_kvc_config *, uint64_t, uint32_t,
			       const beluga_kvc_attach_opts *, beluga_kvc **)
{
	return bkv::fail(-EOPNOTSUPP, "beluga_kvc_open: this library was built without libbeluga");
}
