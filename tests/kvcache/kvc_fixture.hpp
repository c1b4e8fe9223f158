// SPDX-License-Identifier: Apache-2.0
// Shared by the store's gtest fixtures: attaching a host to the cache a
// fixture formatted, with the failure reported where it happens.
#pragma once

#include "kvc_util.hpp"

#include <gtest/gtest.h>

namespace kvt {

// Attaches the host @o names to the cache formatted in @r with @cfg: the
// handle, or NULL and a test failure with the store's error.
inline beluga_kvc *attach_checked(const ShmRegion &r, const beluga_kvc_config &cfg,
				  const beluga_kvc_attach_opts &o)
{
	beluga_kvc *kv = nullptr;
	EXPECT_EQ(beluga_kvc_attach(r.base(), r.size(), &cfg.fingerprint, &o, &kv), 0)
		<< beluga_kvc_last_error();
	return kv;
}

} // namespace kvt
