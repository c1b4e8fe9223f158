// SPDX-License-Identifier: Apache-2.0
// The C++ interface (beluga/kvcache.hpp): RAII, exceptions, the same calls.
#include "kvc_util.hpp"

#include <beluga/kvcache.hpp>

#include <gtest/gtest.h>

namespace {

using namespace kvt;

TEST(Cpp, RoundTrip)
{
	ShmRegion r(8 << 20);
	beluga_kvc_config c = config(opaque_fp(4096));
	beluga::kvc::Cache::format(r.base(), r.size(), c);
	auto cache = beluga::kvc::Cache::attach(r.base(), r.size(), c.fingerprint);
	beluga::kvc::Key root = beluga::kvc::root_key("0");
	std::vector<uint32_t> tokens(40);
	for (uint32_t i = 0; i < tokens.size(); i++)
		tokens[i] = i;
	auto keys = beluga::kvc::hash_tokens(root, tokens, 16);
	ASSERT_EQ(keys.size(), 2u);
	std::vector<uint8_t> buf(4096), out(4096);
	fill_block(1, buf.data(), buf.size());
	EXPECT_EQ(cache.put(keys[0], buf.data(), buf.size()), 0);
	EXPECT_EQ(cache.put(keys[0], buf.data(), buf.size()), BELUGA_KVC_EXISTS);
	EXPECT_EQ(cache.lookup_prefix(keys), 1u);
	EXPECT_EQ(cache.get(keys[0], out.data(), out.size()), 4096);
	EXPECT_EQ(out, buf);
	EXPECT_EQ(cache.get(keys[1], out.data(), out.size()), -ENOENT);
	{
		beluga::kvc::Pin pin = cache.pin(keys[0], BELUGA_KVC_PIN_VERIFY);
		ASSERT_TRUE(pin);
		EXPECT_EQ(pin.size(), 4096u);
		EXPECT_TRUE(check_block(1, static_cast<const uint8_t *>(pin.data()), 4096));
		EXPECT_FALSE(cache.pin(keys[1]));
		EXPECT_EQ(cache.check_all().held_pins, 1u);
	}
	EXPECT_EQ(cache.check_all().held_pins, 0u);
	EXPECT_EQ(cache.stats().puts, 1u);
	EXPECT_EQ(cache.info().payload_bytes, 4096u);
	EXPECT_EQ(cache.remove(keys[0]), 0);
	EXPECT_EQ(cache.remove(keys[0]), -ENOENT);
	EXPECT_EQ(cache.reclaim(), 0);
	auto moved = std::move(cache);
	EXPECT_EQ(moved.stats().removes, 1u);
}

TEST(Cpp, ErrorsThrow)
{
	ShmRegion r(8 << 20);
	beluga_kvc_config c = config(opaque_fp(4096));
	beluga::kvc::Cache::format(r.base(), r.size(), c);
	beluga_kvc_fingerprint other = c.fingerprint;
	std::strcpy(other.hash_seed, "1");
	try {
		beluga::kvc::Cache::attach(r.base(), r.size(), other);
		FAIL() << "no exception";
	} catch (const beluga::kvc::Error &e) {
		EXPECT_EQ(e.code().value(), BELUGA_KVC_EFINGERPRINT);
		EXPECT_NE(std::string(e.what()).find("hash_seed"), std::string::npos);
	}
	c.max_hosts = 0;
	EXPECT_THROW(beluga::kvc::Cache::format(r.base(), r.size(), c), beluga::kvc::Error);
}

TEST(Cpp, Hosts)
{
	ShmRegion r(8 << 20);
	beluga_kvc_config c = config(opaque_fp(4096), 2);
	beluga::kvc::Cache::format(r.base(), r.size(), c);
	auto cache = beluga::kvc::Cache::attach(r.base(), r.size(), c.fingerprint);
	EXPECT_EQ(cache.host(0).state, uint32_t(BELUGA_KVC_HOST_SELF));
	EXPECT_EQ(cache.host(1).state, uint32_t(BELUGA_KVC_HOST_FREE));
	EXPECT_THROW(cache.host(2), beluga::kvc::Error);
	EXPECT_EQ(cache.take_over(1, BELUGA_KVC_TAKEOVER_RELEASE), 0); // free already
	EXPECT_THROW(cache.take_over(0), beluga::kvc::Error);	     // its own
}

} // namespace
